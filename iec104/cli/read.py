"""``iec104 read CAPTURE``: decoded APDUs on the terminal, one line each (or a tree with -V).

Like ``tshark -r``: one line per APDU with frame number, time, ``src:port -> dst:port``, the
APCI (``I(N(S),N(R))``, ``S(N(R))`` or the U function), then for I-frames the type, cause,
common address and the objects with their values. ``-V`` prints every field of every APDU
and object instead. ``--filter`` selects APDUs with the expression language of
:mod:`iec104.dissectors.filter` (an APDU is shown when any of its rows matches).

CAPTURE may also be a Parquet file written by ``iec104 convert``.

This module also holds what ``convert``, ``summary`` and ``report`` share, so that they keep
one contract: the input options (``--port``, ``--heuristic/--no-heuristic``, ``--profile``,
``--filter``), the exit-status text of ``--help``, checking inputs and outputs with one-line
errors (:func:`open_source`, :func:`check_output`), :func:`dissect_inputs` (several captures
read one after the other as one) and :func:`report_problems` (notes and warnings on stderr,
the exit code).

Exit codes: 0 success; 1 an input was damaged part-way through or had packets with
impossible timestamps (everything else was decoded and shown, and a warning went to stderr);
2 bad usage, a bad filter, or an input that is missing or is neither a capture nor Parquet.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..codec.values import FLOAT32_TYPE_IDS, float32_text
from . import CliError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..codec import Profile
    from ..dissectors.capture import CaptureReader
    from ..dissectors.filter import Filter

# -- what convert, summary and report share --------------------------------------------------


def parse_profile(text: str) -> Profile:
    """``'1,1,2'`` -> ``Profile(cot_size=1, ca_size=1, ioa_size=2)``."""
    from ..codec import Profile

    try:
        sizes = [int(part) for part in text.split(",")]
        if len(sizes) != 3:
            raise ValueError
        return Profile(*sizes).check()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not COT,CA,IOA octet sizes such as 2,2,3 (COT 1-2, CA 1-2, "
            "IOA 1-3)") from None


FILTER_DOC = "see 'Filter language' in README.md"
"""Where the filter language is documented (in filter errors and --help)."""


def exit_status(output: str) -> str:
    """The ``Exit status`` paragraph of a subcommand's ``--help`` (one text for all of them;
    ``output`` says where the decoded data goes, e.g. 'in the output file')."""
    return (f"Exit status: 0 ok; 1 an input is damaged part-way through or has packets with "
            f"an impossible timestamp (everything else is {output}, a warning naming the file "
            "and frame goes to stderr), or the output's disk filled up part-way through (what "
            "was written before is kept); 2 bad usage or a bad filter, an input that is missing "
            "or neither a capture nor a Parquet file of iec104's schema, or an output that "
            "cannot be written (nothing is written).")


def add_input_options(p: argparse.ArgumentParser, *, filter_help: str) -> None:
    """``-d/--port``, ``--heuristic/--no-heuristic``, ``--profile`` and ``-Y/--filter``."""
    p.add_argument("-d", "--port", type=int, action="append", dest="ports", metavar="N",
                   help="TCP port of IEC 104 servers (repeatable; default 2404)")
    # default None: "not given", so a Parquet input can refuse it; None means on for captures
    p.add_argument("--heuristic", action=argparse.BooleanOptionalAction, default=None,
                   help="decode TCP connections on other ports too when their first bytes "
                   "frame as IEC 104 (default: on; --no-heuristic decodes only --port)")
    p.add_argument("--profile", type=parse_profile, metavar="COT,CA,IOA",
                   help="field sizes in octets for non-standard devices, e.g. 1,1,2 "
                   "(default 2,2,3, the IEC 104 profile)")
    p.add_argument("-Y", "--filter", metavar="EXPR", help=f"{filter_help} ({FILTER_DOC})")


def compile_filter_option(expr: str | None) -> Filter | None:
    if expr is None:
        return None
    from ..dissectors.filter import FilterError, compile_filter

    try:
        return compile_filter(expr)
    except FilterError as exc:
        raise CliError(f"--filter: {exc.reason}\n  {exc.caret().replace(chr(10), chr(10) + '  ')}"
                       f"\n({FILTER_DOC})") from None


def _no_capture_options(args: argparse.Namespace, source: Path) -> None:
    if args.profile or args.ports or args.heuristic is not None:
        raise CliError(f"{source}: --port, --heuristic and --profile apply to captures, not "
                       "to Parquet data (it is decoded already)")


# -- inputs ------------------------------------------------------------------------------


def check_input(path: str) -> Path:
    """The path of an input file, or a clear CliError (missing, a directory, unreadable)."""
    p = Path(path)
    if not p.exists():
        raise CliError(f"{path}: no such file")
    if p.is_dir():
        raise CliError(f"{path}: is a directory, not a capture file")
    if not os.access(p, os.R_OK):
        raise CliError(f"{path}: permission denied")
    return p


def check_output(path: str, inputs: Sequence[str]) -> Path:
    """The path of an output file, or a clear CliError: a directory, a missing directory, an
    existing non-regular file (a device: the output is renamed into place), or one of
    ``inputs`` (it would be overwritten)."""
    out = Path(path)
    if out.is_dir():
        raise CliError(f"{out}: is a directory; give a file name such as {out / 'out'}")
    if not out.parent.is_dir():
        raise CliError(f"{out.parent}: no such directory")
    if out.exists() and not out.is_file():
        raise CliError(f"{out}: is not a regular file")
    for name in inputs:
        if Path(name).resolve() == out.resolve():
            raise CliError(f"{name}: the output would overwrite this input")
    return out


def is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


@dataclass
class Inputs:
    """Checked inputs (captures, or Parquet files of the schema) and what happened reading
    them: ``problems`` (damage: warnings, exit 1) and ``notes`` (hints, exit unchanged)."""

    paths: list[Path]
    readers: list[CaptureReader]
    files: list[IO[bytes]]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parquet: list[Path] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    def bytes_read(self) -> int:
        done = 0
        for f in self.files:
            try:
                done += f.tell() if not f.closed else os.fstat(f.fileno()).st_size
            except (OSError, ValueError):
                pass
        return done

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        for f in self.files:
            f.close()


def open_captures(paths: Sequence[str]) -> Inputs:
    """Open and check every capture before anything is decoded (so nothing is written for a
    bad argument list). Raises CliError for a missing file or one that is not a capture."""
    from ..dissectors.capture import CaptureReader
    from ..dissectors.errors import CaptureError

    checked = [check_input(p) for p in paths]
    inputs = Inputs([], [], [])
    try:
        for path in checked:
            fh = open(path, "rb")  # noqa: SIM115 - closed by Inputs.close
            inputs.files.append(fh)
            try:
                inputs.readers.append(CaptureReader(fh, name=str(path)))
            except CaptureError as exc:
                hint = (" (it is a Parquet file: use 'iec104 read' or 'iec104 summary' on it)"
                        if is_parquet(path) else "")
                raise CliError(f"{exc}{hint}") from None
            except (OSError, EOFError) as exc:
                raise CliError(f"{path}: cannot read: {exc}") from None
            inputs.paths.append(path)
    except BaseException:
        inputs.close()
        raise
    return inputs


def open_source(name: str, args: argparse.Namespace, *, directories: bool = False) -> Inputs:
    """Check and open the SOURCE of read/summary/report: a capture, a Parquet file of the
    schema or, with ``directories``, a directory of them. Every check happens here, before
    anything is decoded or written; raises CliError (exit 2) for a bad source. In a
    directory a damaged or foreign Parquet file is a problem (warning, exit 1) and is
    skipped, unless no file is readable."""
    path = Path(name)
    if directories and path.is_dir():
        found = sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))
        if not found:
            captures = any(p.suffix in (".pcap", ".pcapng", ".gz") for p in path.iterdir())
            hint = ": give one of its captures instead" if captures else ""
            raise CliError(f"{path}: a directory without Parquet files{hint}")
        _no_capture_options(args, path)
        inputs = Inputs([], [], [])
        for p in found:
            try:
                _parquet_file(p)
                inputs.parquet.append(p)
            except CliError as exc:
                inputs.problems.append(f"{exc}; skipped")
        if not inputs.parquet:
            raise CliError(f"{path}: no readable Parquet file of iec104's schema "
                           f"({inputs.problems[0]})")
        return inputs
    checked = check_input(name)
    if is_parquet(checked):
        _no_capture_options(args, checked)
        _parquet_file(checked)
        return Inputs([], [], [], parquet=[checked])
    return open_captures([name])


def source_batches(inputs: Inputs, args: argparse.Namespace,
                   batch_rows: int = 65536) -> Iterator[pa.RecordBatch]:
    """Record batches of an :func:`open_source` (captures decoded with the input options)."""
    if inputs.parquet:
        for path in inputs.parquet:
            yield from parquet_batches(path, batch_rows, inputs.problems)
        return
    yield from dissect_inputs(inputs, ports=args.ports, heuristic=args.heuristic is not False,
                              profile=args.profile, batch_rows=batch_rows)


def load_frame(args: argparse.Namespace, name: str) -> tuple[pd.DataFrame, Inputs]:
    """SOURCE (see :func:`open_source`, directories allowed) filtered by ``--filter``, as a
    DataFrame of the schema (summary and report)."""
    import pyarrow as pa

    from ..analyzer.schema import SCHEMA

    flt = compile_filter_option(args.filter)
    inputs = open_source(name, args, directories=True)
    try:
        batches = [b if flt is None else flt.apply(b) for b in source_batches(inputs, args)]
    finally:
        inputs.close()
    return pa.Table.from_batches(batches, schema=SCHEMA).to_pandas(), inputs


def dissect_inputs(inputs: Inputs, *, ports: Sequence[int] | None = None,
                   heuristic: bool = True, profile: Profile | None = None,
                   batch_rows: int = 65536, workers: int = 0,
                   progress: Callable[[], None] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the captures in ``inputs``, read one after the other as one capture
    (as ``mergecap -a`` would join them): TCP connections continue across files, frame
    numbers continue counting, and stream and APDU numbers stay unique.

    A capture damaged part-way through is read up to the damage; the reason is appended to
    ``inputs.problems`` (no warning is issued) and the next file is read. So are packets kept
    without a time (their timestamp was out of range, see :mod:`~iec104.dissectors.capture`).
    TCP connections with data that were not decoded give a line in ``inputs.notes``.
    ``workers`` > 0 decodes ASDUs in that many worker processes
    (:func:`~iec104.dissectors.stream.dissect_segments`).
    """
    from ..dissectors.errors import CaptureWarning
    from ..dissectors.packet import TcpSegment, decode_tcp
    from ..dissectors.reassembly import Reassembler
    from ..dissectors.stream import dissect_segments

    def segments() -> Iterator[TcpSegment]:
        offset = 0
        for reader in inputs.readers:
            with reader:
                for pkt in reader:
                    seg = decode_tcp(pkt.frame + offset, pkt.time_ns, pkt.linktype, pkt.data)
                    if seg is not None:
                        yield seg
            offset += reader.frames
            if reader.time_problem:
                inputs.problems.append(f"{reader.name}: {reader.time_problem}")
            if reader.problem:
                inputs.problems.append(f"{reader.name}: {reader.problem}; every whole record "
                                       "before it was decoded")

    reassembler = Reassembler(ports, heuristic=heuristic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        for batch in dissect_segments(segments(), reassembler, profile=profile,
                                      batch_rows=batch_rows, workers=workers):
            if progress is not None:
                progress()
            yield batch
    note = undecoded_note(reassembler.undecoded, heuristic)
    if note:
        inputs.notes.append(note)


def undecoded_note(undecoded: Mapping[int, int], heuristic: bool) -> str | None:
    """Why TCP connections were left out (server port -> count), so that an empty answer is
    never silent; None if none was."""
    total = sum(undecoded.values())
    if not total:
        return None
    ports = sorted(undecoded, key=lambda port: (-undecoded[port], port))
    shown = ", ".join(f"{port} x{undecoded[port]}" if undecoded[port] > 1 < len(ports)
                      else str(port) for port in ports[:6])
    more = f" and {len(ports) - 6} more" if len(ports) > 6 else ""
    what = (f"{total} TCP connection{'s' if total > 1 else ''} "
            f"{'were' if total > 1 else 'was'} not decoded (server "
            f"{'port' if len(ports) == 1 else 'ports'} {shown}{more})")
    if heuristic:
        return (f"{what}: {'their' if total > 1 else 'its'} first bytes do not frame as "
                "IEC 104; -d PORT decodes a port anyway")
    return f"{what}: drop --no-heuristic to detect IEC 104 on any port, or add -d PORT"


def report_problems(inputs: Inputs) -> int:
    """Notes and warnings about the inputs on stderr; the exit code (1 if there were
    problems, else 0)."""
    for note in inputs.notes:
        print(f"iec104: note: {note}", file=sys.stderr)
    for problem in inputs.problems:
        print(f"iec104: warning: {problem}", file=sys.stderr)
    return 1 if inputs.problems else 0


def _parquet_file(path: Path) -> pq.ParquetFile:
    """An open Parquet file of the schema, or a CliError saying why it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..analyzer.schema import SCHEMA

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise CliError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())})"
                       ) from None
    schema = pf.schema_arrow
    if "apdu" not in schema.names:
        raise CliError(f"{path}: not a Parquet file of iec104's schema (no 'apdu' column)")
    for f in SCHEMA:
        if f.name in schema.names and _family(schema.field(f.name).type) != _family(f.type):
            raise CliError(f"{path}: not a Parquet file of iec104's schema (column "
                           f"{f.name!r} is {schema.field(f.name).type}, not {f.type})")
    return pf


def _family(dtype: pa.DataType) -> str:
    """What a column type must stay across schema versions (widths may change)."""
    import pyarrow as pa

    for name, test in (("integer", pa.types.is_integer), ("float", pa.types.is_floating),
                       ("bool", pa.types.is_boolean), ("timestamp", pa.types.is_timestamp),
                       ("string", pa.types.is_string), ("string", pa.types.is_large_string),
                       ("binary", pa.types.is_binary), ("binary", pa.types.is_large_binary)):
        if test(dtype):
            return name
    return str(dtype)


def parquet_batches(path: Path, batch_rows: int = 65536,
                    problems: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Batches of a Parquet file of the schema, cut so that no APDU spans two batches.

    A file that cannot be opened, or is of another schema, raises CliError. A row group
    that cannot be read (damage inside the file) is skipped and its reason appended to
    ``problems`` (every other row group is read), or raised as CliError without a list.
    """
    import pyarrow as pa

    from ..analyzer.schema import SCHEMA

    pf = _parquet_file(path)
    names = [f.name for f in SCHEMA if f.name in pf.schema_arrow.names]
    tail: pa.RecordBatch | None = None
    groups = pf.metadata.num_row_groups
    for group in range(groups):
        try:  # row groups are independent: one damaged group loses only its own rows
            table = pf.read_row_group(group, columns=names)
            chunks = [_conform(b) for b in table.to_batches(max_chunksize=batch_rows)]
        except (pa.ArrowException, OSError) as exc:
            reason = (f"{path}: row group {group + 1} of {groups} cannot be read "
                      f"({' '.join(str(exc).split())}); its rows are missing, the other row "
                      "groups were read")
            if problems is None:
                raise CliError(reason) from None
            problems.append(reason)
            continue
        for batch in chunks:
            if tail is not None and tail.num_rows:
                batch = pa.Table.from_batches([tail, batch]).combine_chunks().to_batches()[0]
            apdu = batch.column("apdu")
            last = apdu[batch.num_rows - 1].as_py() if batch.num_rows else None
            cut = batch.num_rows
            if last is not None:
                while cut > 0 and apdu[cut - 1].as_py() == last:
                    cut -= 1
            tail = batch.slice(cut)
            if cut:
                yield batch.slice(0, cut)
    if tail is not None and tail.num_rows:
        yield tail


def _conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch with every column of the schema (older files: missing columns are null)."""
    import pyarrow as pa

    from ..analyzer.schema import SCHEMA

    if batch.schema.names == SCHEMA.names:
        return batch
    arrays = [batch.column(f.name).cast(f.type) if f.name in batch.schema.names
              else pa.nulls(batch.num_rows, f.type) for f in SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


# -- formatting --------------------------------------------------------------------------

_QUALIFIER_NAMES = {100: "QOI", 101: "RQT", 105: "QRP", 113: "QPA", 110: "QPM", 111: "QPM",
                    112: "QPM", 45: "QU", 46: "QU", 47: "QU", 58: "QU", 59: "QU", 60: "QU",
                    48: "QL", 49: "QL", 50: "QL", 61: "QL", 62: "QL", 63: "QL"}


# single and double points (SIQ/DIQ) have no OV bit
_NO_OV_TYPES = frozenset((1, 2, 3, 4, 30, 31))


def _ts(ns: int | None, mode: str = "a", t0: int = 0) -> str:
    if ns is None:
        return "-"
    if mode == "r":
        return f"{(ns - t0) / 1e9:.6f}"
    if mode == "e":
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{when:%Y-%m-%d %H:%M:%S}.{(ns % 1_000_000_000) // 1000:06d}"


def _endpoint(ip: str | None, port: int | None) -> str:
    if ip is None:
        return "?"
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _apci(row: dict[str, Any]) -> str:
    if row["apci"] == "I":
        return f"I({row['ssn']},{row['rsn']})"
    if row["apci"] == "S":
        return f"S({row['rsn']})"
    if row["apci"] == "U":
        return f"U({row['u_func']})"
    return "?"


def _flags(row: dict[str, Any]) -> str:
    set_bits = [name.upper() for name in ("iv", "nt", "sb", "bl", "ov", "ei") if row[name]]
    return f"[{' '.join(set_bits)}]" if set_bits else ""


def _value(row: dict[str, Any]) -> str:
    """The value as shown on the one-line view: ``value_text`` made compact
    (``'value=5 transient=False'`` -> ``'5'``, ``'... transient=True'`` -> ``'5,transient'``)."""
    text = row["value_text"]
    if text is None:
        value = row["value"]
        return "" if value is None else (str(int(value)) if float(value).is_integer()
                                         else repr(value))
    if " " not in text:
        if row["type_id"] in FLOAT32_TYPE_IDS and row["value"] is not None:
            return float32_text(row["value"])  # 3.14, as the device sent it
        return text
    parts = []
    for i, item in enumerate(text.split(" ")):
        key, sep, val = item.partition("=")
        if i == 0 and sep:
            parts.append(val)
        elif val == "False":
            continue
        elif val == "True":
            parts.append(key)
        else:
            parts.append(item)
    return ",".join(parts)


def _object_short(row: dict[str, Any], type_id: int | None) -> str:
    parts = [str(row["ioa"])]
    value = _value(row)
    if value:
        parts[0] += f"={value}"
    flags = _flags(row)
    if flags:
        parts.append(flags)
    if row["time_tag"] is not None:
        parts.append("@" + _ts(row["time_tag"])[11:23])
    if row["select"] is not None:
        parts.append("select" if row["select"] else "execute")
    if row["qualifier"] is not None:
        parts.append(f"{_QUALIFIER_NAMES.get(type_id or 0, 'Q')}={row['qualifier']}")
    return " ".join(parts)


def apdu_line(rows: list[dict[str, Any]], time_mode: str = "a", t0: int = 0) -> str:
    """One line for one APDU (its rows), as ``iec104 read`` prints it."""
    head = rows[0]
    frame = "-" if head["frame"] is None else str(head["frame"])
    where = (f"{frame:>6} {_ts(head['time'], time_mode, t0)} "
             f"{_endpoint(head['src'], head['sport'])} -> {_endpoint(head['dst'], head['dport'])}")
    if head["apci"] is None:
        error = head["error"] or ""
        tag = ("[gap]" if error.startswith("gap:") else "[note]" if head["apdu"] is None
               else "[malformed]")
        raw = head["raw"]
        extra = f" raw={bytes(raw[:16]).hex(' ')}{'...' if len(raw) > 16 else ''}" if raw else ""
        return f"{where} {tag} {error}{extra}"
    parts = [where, _apci(head)]
    if head["apci"] == "I" and head["type_id"] is not None:
        type_id = head["type_id"]
        parts.append(head["type_name"] or f"TYPE_{type_id}")
        parts.append(head["cot_name"] or f"CAUSE_{head['cot']}")
        if head["negative"]:
            parts.append("NEGATIVE")
        if head["test"]:
            parts.append("TEST")
        if head["oa"]:
            parts.append(f"OA={head['oa']}")
        parts.append(f"CA={head['ca']}")
        objects = [r for r in rows if r["obj"] is not None]
        if objects:
            parts.append("IOA " + "; ".join(_object_short(r, type_id) for r in objects))
    if head["error"]:
        parts.append(f"!! {head['error']}")
    return " ".join(parts)


def _bit(value: Any) -> str:
    return "-" if value is None else str(int(bool(value)))


def apdu_tree(rows: list[dict[str, Any]]) -> list[str]:
    """The detailed view of one APDU (``-V``): every header field and every object."""
    head = rows[0]
    lines = [(f"Frame {head['frame']}: {_ts(head['time'])} UTC, TCP stream {head['stream']} "
              f"({head['direction']}), {_endpoint(head['src'], head['sport'])} -> "
              f"{_endpoint(head['dst'], head['dport'])}")]
    raw = head["raw"]
    if head["apci"] is None:
        lines.append(f"  {head['error']}")
    elif head["apci"] == "I":
        lines.append(f"  APCI: I-format, N(S)={head['ssn']}, N(R)={head['rsn']}, "
                     f"length {len(raw) - 2 if raw else '?'}")
    elif head["apci"] == "S":
        lines.append(f"  APCI: S-format, N(R)={head['rsn']}")
    else:
        lines.append(f"  APCI: U-format, function {head['u_func']}")
    if head["apci"] == "I" and head["type_id"] is not None:
        type_id = head["type_id"]
        lines.append(f"  ASDU: type {type_id} {head['type_name']}, SQ={_bit(head['sq'])}, "
                     f"{head['num_objects']} object(s), COT {head['cot']} {head['cot_name']}, "
                     f"P/N={_bit(head['negative'])}, T={_bit(head['test'])}, OA {head['oa']}, "
                     f"CA {head['ca']}")
        for r in rows:
            if r["obj"] is None:
                continue
            value = r["value_text"]
            number = "" if r["value"] is None else f" (value {r['value']!r})"
            if type_id in FLOAT32_TYPE_IDS and r["value"] is not None:
                value, number = float32_text(r["value"]), ""  # 3.14, as the device sent it
            lines.append(f"    IOA {r['ioa']}: {value or '(no value)'}{number}")
            quality = [f"{name.upper()}={_bit(r[name])}" for name in ("iv", "nt", "sb", "bl",
                                                                      "ov", "ei")
                       if r[name] is not None
                       and not (name == "ov" and type_id in _NO_OV_TYPES)]
            if quality:
                lines.append(f"      quality: {' '.join(quality)}")
            if r["time_tag"] is not None or r["time_tag_iv"] is not None:
                lines.append(f"      time tag: {_ts(r['time_tag'])} UTC "
                             f"(IV={_bit(r['time_tag_iv'])})")
            if r["select"] is not None:
                lines.append(f"      S/E: {'select' if r['select'] else 'execute'}")
            if r["qualifier"] is not None:
                lines.append(f"      qualifier: {_QUALIFIER_NAMES.get(type_id, 'Q')}="
                             f"{r['qualifier']}")
            if r["error"] and r["error"] != head["error"]:
                lines.append(f"      error: {r['error']}")
    if head["apci"] is not None and head["error"]:
        lines.append(f"  error: {head['error']}")
    if raw:
        lines.append(f"  raw: {bytes(raw).hex(' ')}")
    return lines


def _rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """Rows of a batch as dicts, times as int nanoseconds."""
    import pyarrow as pa

    cols: dict[str, list[Any]] = {}
    for f, column in zip(batch.schema, batch.columns):
        if pa.types.is_timestamp(f.type):
            column = column.cast(pa.int64())
        cols[f.name] = column.to_pylist()
    names = list(cols)
    return [dict(zip(names, values)) for values in zip(*cols.values())]


def group_apdus(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive rows of one APDU together; rows without APDU alone."""
    group: list[dict[str, Any]] = []
    for row in rows:
        if group and (row["apdu"] is None or row["apdu"] != group[0]["apdu"]):
            yield group
            group = []
        group.append(row)
    if group:
        yield group


# -- the command ---------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "read", help="print the decoded APDUs of a capture (one line each, or a tree with -V)",
        description="Decode the IEC 104 traffic of a pcap/pcapng capture (or a Parquet file "
        "written by 'iec104 convert') and print one line per APDU, like tshark: frame, time "
        "(UTC), src:port -> dst:port, I(N(S),N(R)) / S(N(R)) / U(function), type, cause, "
        "CA and the objects (IOA=value [quality] @time-tag select/execute qualifier).",
        epilog=exit_status("printed"))
    p.add_argument("capture", metavar="CAPTURE", help="pcap/pcapng file (.gz allowed) or a "
                   "Parquet file written by iec104 convert")
    add_input_options(p, filter_help="show only APDUs with a row matching EXPR, e.g. "
                      "'type_id == 45 and ca == 1', 'apci == \"U\"', 'ioa in (1, 2, 3)'")
    p.add_argument("-V", "--verbose", action="store_true",
                   help="print every field of every APDU and object (a tree per APDU)")
    p.add_argument("-t", "--time", choices=["a", "r", "e"], default="a",
                   help="time format: a = absolute UTC date and time (default), r = seconds "
                   "since the first decoded row, e = seconds since the epoch")
    p.add_argument("-c", "--count", type=int, metavar="N", help="stop after N APDUs")
    p.add_argument("-T", dest="output", choices=["text", "json", "jsonl", "fields"],
                   default="text",
                   help="output format, as tshark's -T: text (default; -V for the tree), "
                   "json (an array of APDU objects with their information objects nested), "
                   "jsonl (one such object per line), fields (the -e columns, one line per "
                   "APDU); names are the Parquet schema's")
    p.add_argument("-e", dest="fields", action="append", default=[], metavar="COLUMN",
                   help="a column for -T fields (repeatable), e.g. -e frame -e ioa -e value")
    p.add_argument("-E", dest="field_options", action="append", default=[],
                   metavar="NAME=VALUE",
                   help="-T fields option as tshark's: separator=,|/t|/s, header=y|n, "
                   "quote=d|s|n, aggregator=, (joins the values of several objects), "
                   "occurrence=a|f|l")
    return p


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise CliError("-c/--count must be at least 1")
    _check_output_options(args)
    flt = compile_filter_option(args.filter)
    inputs = open_source(args.capture, args)
    try:
        return _print(source_batches(inputs, args, 8192), args, flt, inputs)
    finally:
        inputs.close()


def _check_output_options(args: argparse.Namespace) -> None:
    """-T/-e/-E checked before anything is decoded (CliError: exit 2)."""
    from ..output import parse_field_options

    if args.output != "text" and args.verbose:
        raise CliError(f"-V prints the text tree; it does not combine with -T {args.output}")
    if args.output == "fields" and not args.fields:
        raise CliError("-T fields needs at least one -e COLUMN")
    if args.output != "fields" and (args.fields or args.field_options):
        raise CliError("-e and -E apply to -T fields")
    try:
        args.fields_opts = parse_field_options(args.field_options)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    from ..analyzer.schema import SCHEMA

    unknown = [name for name in args.fields if name not in SCHEMA.names]
    if unknown:
        raise CliError(f"-e {unknown[0]}: no such column (columns: {', '.join(SCHEMA.names)})")


def _format(groups: list[list[dict[str, Any]]], args: argparse.Namespace, t0: int,
            first: bool) -> list[str]:
    """The output lines of some APDUs in the -T format (``first``: the first APDUs
    printed, so the JSON array opens here)."""
    from ..output import fields_lines, json_lines

    if args.output == "json":
        body = list(json_lines(groups))
        if not body:
            return []
        return ["[" + body[0] if first else "," + body[0], *("," + b for b in body[1:])]
    if args.output == "jsonl":
        return list(json_lines(groups))
    if args.output == "fields":
        return list(fields_lines(groups, args.fields, args.fields_opts._replace(
            header=args.fields_opts.header and first)))
    lines: list[str] = []
    for rows in groups:
        if args.verbose:
            lines.extend(apdu_tree(rows))
            lines.append("")
        else:
            lines.append(apdu_line(rows, args.time, t0))
    return lines


def _print(batches: Iterator[pa.RecordBatch], args: argparse.Namespace, flt: Filter | None,
           inputs: Inputs) -> int:
    out = sys.stdout
    shown = 0
    t0: int | None = None
    limit = args.count
    try:
        for batch in batches:
            if t0 is None:
                times = batch.column("time").drop_null()
                t0 = times[0].value if len(times) else None
            if flt is not None:
                batch = flt.apply(batch)
            if not batch.num_rows:
                continue
            groups = list(group_apdus(_rows(batch)))
            if limit is not None:
                groups = groups[:limit - shown]
            shown += len(groups)
            lines = _format(groups, args, t0 or 0, first=shown == len(groups))
            if lines:
                out.write("\n".join(lines) + "\n")
            if limit is not None and shown >= limit:
                break
        if args.output == "json":
            out.write("[]\n" if not shown else "]\n")
        elif args.output == "fields" and not shown and args.fields_opts.header:
            out.write(args.fields_opts.separator.join(args.fields) + "\n")
        out.flush()
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly, as other Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
        return 0
    return report_problems(inputs)
