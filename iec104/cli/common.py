"""What the subcommands share, so that they keep one contract.

* the input options of read/convert/summary/report (``--port``,
  ``--heuristic/--no-heuristic``, ``--profile``, ``--filter``) and the exit-status text of
  ``--help``;
* checking inputs and outputs with one-line errors (:func:`open_source`, :func:`check_output`,
  :func:`check_output_dir`),
  :func:`dissect_inputs` (several captures read one after the other as one) and
  :func:`report_problems` (notes and warnings on stderr, the exit code);
* the log options of the recorders (``proxy`` and ``capture``: flushing, rotation, profile).

No subcommand module imports another; they all import this one.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import CliError

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd
    import pyarrow as pa

    from ..capture.reader import CaptureReader
    from ..codec import Profile
    from ..records.filter import Filter
    from ..records.profiles import ProfileOverrides

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


def parse_profile_entry(text: str) -> tuple[str | None, int | None, Profile]:
    """``'1,1,2'`` -> ``(None, None, profile)``; ``'10.0.0.5:2404=1,1,2'`` or
    ``'[fe80::1]=1,1,2'`` -> ``(host, port or None, profile)``."""
    target, sep, sizes = text.rpartition("=")
    profile = parse_profile(sizes)
    if not sep:
        return None, None, profile
    host, port = target, None
    if target.startswith("["):  # [IPv6] or [IPv6]:port
        host, _, rest = target[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port_text is None:
            host = ""
    elif target.count(":") == 1:
        host, port_text = target.split(":")
    else:
        port_text = None
    try:
        if port_text is not None:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
    except ValueError:
        host = ""
    if not host:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected HOST[:PORT]=COT,CA,IOA, e.g. 10.0.0.5:2404=1,1,2 or "
            "[fe80::1]=1,1,2")
    return host, port, profile


class _ProfileAction(argparse.Action):
    """Collects repeated ``--profile`` values into one ``ProfileOverrides``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from ..records.profiles import ProfileOverrides

        host, port, profile = values
        current = getattr(namespace, self.dest, None) or ProfileOverrides()
        if host is None:
            current = current._replace(default=profile)
        else:
            current = current._replace(endpoints=(*current.endpoints, (host, port, profile)))
        setattr(namespace, self.dest, current)


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
    p.add_argument("--profile", type=parse_profile_entry, action=_ProfileAction,
                   metavar="[HOST[:PORT]=]COT,CA,IOA",
                   help="field sizes in octets instead of detecting them per connection: "
                   "1,1,2 for every connection, 10.0.0.5:2404=1,1,2 for the connections of "
                   "one device (repeatable; default: detected, 2,2,3 when unsure)")
    p.add_argument("-Y", "--filter", metavar="EXPR", help=f"{filter_help} ({FILTER_DOC})")


def compile_filter_option(expr: str | None) -> Filter | None:
    if expr is None:
        return None
    from ..records.filter import FilterError, compile_filter

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
    _check_parent(out)
    if out.exists() and not out.is_file():
        raise CliError(f"{out}: is not a regular file")
    for name in inputs:
        if Path(name).resolve() == out.resolve():
            raise CliError(f"{name}: the output would overwrite this input")
    return out


def check_output_dir(path: str) -> Path:
    """The path of an output directory, or a clear CliError: an existing file, a missing
    parent directory (the directory itself is made when missing, its parents are not, as
    for a file output), or a directory this process may not write into."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CliError(f"{out}: is not a directory")
    where = out if out.is_dir() else _check_parent(out)
    if not os.access(where, os.W_OK | os.X_OK):
        raise CliError(f"{where}: permission denied (cannot write the output there)")
    return out


def _check_parent(out: Path) -> Path:
    if not out.parent.is_dir():
        what = "is not a directory" if out.parent.exists() else "no such directory"
        raise CliError(f"{out.parent}: {what}")
    return out.parent


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
    dataset: str | None = None  # a dataset directory (see 'a dataset as the SOURCE' below)

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
    from ..capture.errors import CaptureError
    from ..capture.reader import CaptureReader
    from ..records.reader import is_parquet

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
    from ..records.reader import SchemaError, is_parquet, open_parquet

    dataset = dataset_url(name, args)
    if dataset is not None:
        return Inputs([], [], [], dataset=dataset)
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
                open_parquet(p)
                inputs.parquet.append(p)
            except SchemaError as exc:
                inputs.problems.append(f"{exc}; skipped")
        if not inputs.parquet:
            raise CliError(f"{path}: no readable Parquet file of iec104's schema "
                           f"({inputs.problems[0]})")
        return inputs
    checked = check_input(name)
    if is_parquet(checked):
        _no_capture_options(args, checked)
        _checked_parquet(checked)
        return Inputs([], [], [], parquet=[checked])
    return open_captures([name])


def _checked_parquet(path: Path) -> None:
    """``path`` is a Parquet file of the schema, or a CliError saying why not."""
    from ..records.reader import SchemaError, open_parquet

    try:
        open_parquet(path)
    except SchemaError as exc:
        raise CliError(str(exc)) from None


def source_batches(inputs: Inputs, args: argparse.Namespace, batch_rows: int = 65536,
                   pushdown: Filter | None = None, columns: Sequence[str] | None = None
                   ) -> Iterator[pa.RecordBatch]:
    """Record batches of an :func:`open_source` (captures decoded with the input options),
    within ``--start``/``--end`` where the command has them. ``pushdown``: the filter the
    caller applies to the batches; a Parquet file or a dataset then skips the row groups
    its statistics rule out (iec104.records.reader.row_groups), a dataset also filters.
    ``columns``: the caller uses only these (``time`` and the filter's included); a
    Parquet file or a dataset reads no other (batches of a capture have every column:
    the decoder builds the others for about 1 % of its time)."""
    from ..records.reader import SchemaError, parquet_batches
    if columns is not None:
        columns = list(dict.fromkeys([*columns, "time", *sorted(
            pushdown.columns if pushdown is not None else ())]))
    if inputs.dataset is not None:
        yield from dataset_batches(inputs.dataset, args, batch_rows, pushdown, columns)
        return
    if inputs.parquet:
        for path in inputs.parquet:
            try:
                yield from in_range(parquet_batches(path, batch_rows, inputs.problems,
                                                    pushdown, columns), args)
            except SchemaError as exc:
                raise CliError(str(exc)) from None
        return
    yield from in_range(dissect_inputs(inputs, ports=args.ports,
                                       heuristic=args.heuristic is not False,
                                       profile=args.profile, batch_rows=batch_rows), args)


def load_frame(args: argparse.Namespace, name: str) -> tuple[pd.DataFrame, Inputs]:
    """SOURCE (see :func:`open_source`, directories allowed) filtered by ``--filter``, as a
    DataFrame of the schema (summary and report)."""
    import pyarrow as pa

    from ..records.schema import SCHEMA

    flt = compile_filter_option(args.filter)
    inputs = open_source(name, args, directories=True)
    if inputs.dataset is not None:
        return dataset_frame(inputs.dataset, args, flt), inputs
    try:
        batches = [b if flt is None else flt.apply(b)
                   for b in source_batches(inputs, args, pushdown=flt)]
    finally:
        inputs.close()
    return pa.Table.from_batches(batches, schema=SCHEMA).to_pandas(), inputs


def dissect_inputs(inputs: Inputs, *, ports: Sequence[int] | None = None,
                   heuristic: bool = True,
                   profile: Profile | ProfileOverrides | None = None,
                   batch_rows: int = 65536, workers: int = 0,
                   progress: Callable[[], None] | None = None,
                   block: int | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the captures in ``inputs``, read one after the other as one capture
    (as ``mergecap -a`` would join them): TCP connections continue across files, frame
    numbers continue counting, and stream and APDU numbers stay unique.

    A capture damaged part-way through is read up to the damage; the reason is appended to
    ``inputs.problems`` (no warning is issued) and the next file is read. So are packets kept
    without a time (their timestamp was out of range, see :mod:`~iec104.capture.reader`).
    TCP connections with data that were not decoded, and IP datagrams left incomplete, give a
    line in ``inputs.notes``.
    ``workers`` > 0 decodes ASDUs in that many worker processes
    (:func:`~iec104.dissector.dissect_segments`); in one process ``block`` is the fast
    lane's (:func:`~iec104.dissector.dissect_packets`; None: its default, 0: none).
    """
    from ..capture.errors import CaptureWarning
    from ..capture.ipfrag import Defragmenter
    from ..capture.packet import TcpSegment, tcp_segments
    from ..capture.reassembly import Reassembler
    from ..dissector import DEFAULT_BLOCK, dissect_packets, dissect_segments

    def files() -> Iterator[tuple[CaptureReader, int, Defragmenter]]:
        offset = 0
        for reader in inputs.readers:
            defrag = Defragmenter()  # IP fragments, per file
            with reader:
                yield reader, offset, defrag  # read to its end before this resumes
            defrag.close()
            if defrag.stats.incomplete:
                inputs.notes.append(f"{reader.name}: {defrag.stats.describe()}")
            offset += reader.frames
            if reader.time_problem:
                inputs.problems.append(f"{reader.name}: {reader.time_problem}")
            if reader.problem:
                inputs.problems.append(f"{reader.name}: {reader.problem}; every whole record "
                                       "before it was decoded")

    def segments() -> Iterator[TcpSegment]:
        for reader, offset, defrag in files():
            yield from tcp_segments(reader, offset, defrag)

    reassembler = Reassembler(ports, heuristic=heuristic)
    batches = (dissect_segments(segments(), reassembler, profile=profile,
                                batch_rows=batch_rows, workers=workers) if workers > 0
               else dissect_packets(files(), reassembler,  # type: ignore[arg-type]
                                    profile=profile, batch_rows=batch_rows,
                                    block=DEFAULT_BLOCK if block is None else block))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        for batch in batches:
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


# -- options shared with ``iec104 capture`` (log flushing and rotation) --
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``'64M'`` -> 67108864 (k/M/G/T are powers of 1024; a plain number is bytes)."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 500k, 64M or 1G")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return value


def parse_duration(text: str) -> float:
    """``'90'``, ``'30s'``, ``'15m'``, ``'1h'``, ``'1d'`` -> seconds."""
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 15m or 1h")
    value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[
        m.group(2).lower()]
    if value <= 0:
        raise argparse.ArgumentTypeError("duration must be positive")
    return value


def add_log_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("log output (Parquet directory)")
    g.add_argument("--flush-rows", type=int, default=10_000, metavar="N",
                   help="write rows to disk at least every N rows (default 10000)")
    g.add_argument("--flush-seconds", type=parse_duration, default=1.0, metavar="T",
                   help="... and at least every T seconds (default 1): at most this much is "
                   "lost on SIGKILL or a crash")
    g.add_argument("--rotate-size", type=parse_size, default=64 << 20, metavar="SIZE",
                   help="start a new file when the open one holds SIZE of rows "
                   "(size of the open lz4 journal; the Parquet file made from it is smaller; default 64M)")
    g.add_argument("--rotate-seconds", type=parse_duration, default=3600.0, metavar="T",
                   help="start a new file every T (default 1h)")
    g.add_argument("--fsync", action="store_true",
                   help="fsync every flush (survives power loss, slower)")
    # none given: detected per connection and direction, as convert does
    g.add_argument("--cot-size", type=int, choices=(1, 2),
                   help="cause of transmission octets (2 if another size is given; default: "
                   "detect the field sizes per connection and direction, as convert does)")
    g.add_argument("--ca-size", type=int, choices=(1, 2),
                   help="common address octets (2 if another size is given)")
    g.add_argument("--ioa-size", type=int, choices=(1, 2, 3),
                   help="information object address octets (3 if another size is given)")


def log_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.flush_rows <= 0:
        raise CliError("--flush-rows must be positive")
    from ..codec import Profile

    sizes = (args.cot_size, args.ca_size, args.ioa_size)
    profile = None if sizes == (None, None, None) else Profile(
        *(given or default for given, default in zip(sizes, (2, 2, 3), strict=True)))
    return {"profile": profile,
            "flush_rows": args.flush_rows, "flush_seconds": args.flush_seconds,
            "max_bytes": args.rotate_size, "max_seconds": args.rotate_seconds,
            "fsync": args.fsync, "dataset": True}  # -o DIR is a dataset (README 'Datasets')


# -- a dataset as the SOURCE of read, summary and report -------------------------------------
# --start/--end select a time range: on a dataset they skip whole partitions and row groups
# (iec104.dataset.read); on a capture or Parquet file they drop rows outside as they are
# decoded. -Y is pushed down (row groups it rules out are skipped) and applied batch by
# batch as the dataset is scanned. read DIR prints the rows
# day by day, capture by capture; summary DIR runs in bounded memory (iec104.dataset.summary);
# report DIR loads the selected rows, its streams numbered across the dataset by (capture,
# stream) so that the investigations never merge two captures' connections.


def add_range_options(p: argparse.ArgumentParser) -> None:
    """``--start`` and ``--end``."""
    p.add_argument("--start", metavar="TIME", help="only rows at or after TIME (ISO 8601, "
                   "UTC unless it has an offset, e.g. 2024-03-01T08:00); on a dataset, "
                   "partitions and row groups before it are not read")
    p.add_argument("--end", metavar="TIME", help="only rows before TIME (as --start)")


def time_range(args: argparse.Namespace) -> tuple[dt.datetime | None, dt.datetime | None]:
    if getattr(args, "start", None) is None and getattr(args, "end", None) is None:
        return None, None  # (without importing the dataset package)
    from ..dataset.read import time_bound

    out = []
    for option in ("start", "end"):
        try:
            out.append(time_bound(getattr(args, option, None)))
        except ValueError:
            raise CliError(f"--{option}: {getattr(args, option)!r} is not an ISO date/time "
                           "such as 2024-03-01T08:00 or 2024-03-01") from None
    return out[0], out[1]


def dataset_url(name: str, args: argparse.Namespace) -> str | None:
    """``name`` if it is a dataset (capture options refused), else None."""
    if os.path.isfile(name):  # a file is never one (and fsspec need not be imported)
        return None
    from ..dataset import is_dataset

    if not is_dataset(name):
        return None
    if args.profile or args.ports or args.heuristic is not None:
        raise CliError(f"{name}: --port, --heuristic and --profile apply to captures, not "
                       "to a dataset (it is decoded already)")
    return name


def in_range(batches: Iterator[pa.RecordBatch], args: argparse.Namespace
             ) -> Iterator[pa.RecordBatch]:
    """Rows of a capture or Parquet file within ``--start``/``--end``."""
    import pyarrow.compute as pc

    # bounds as Arrow scalars of the column's type: a datetime or a bool given to a compute
    # function is converted by pyarrow.scalar, which imports pandas (iec104.records.arrays)
    from ..records.arrays import scalar

    start, end = time_range(args)
    if start is None and end is None:
        yield from batches
        return
    false = scalar(False)
    for batch in batches:
        time = batch.column("time")
        mask = None
        for bound, kernel in ((start, pc.greater_equal), (end, pc.less)):
            if bound is not None:
                cond = pc.fill_null(kernel(time, scalar(bound, time.type)), false)
                mask = cond if mask is None else pc.and_(mask, cond)
        yield batch.filter(mask)


def dataset_batches(url: str, args: argparse.Namespace, batch_rows: int,
                    flt: Filter | None = None, columns: Sequence[str] | None = None
                    ) -> Iterator[pa.RecordBatch]:
    from ..dataset import batches

    start, end = time_range(args)
    yield from batches(url, start=start, end=end, batch_rows=batch_rows, filter=flt,
                       columns=columns)


def dataset_frame(url: str, args: argparse.Namespace, flt: Filter | None) -> pd.DataFrame:
    """The selected rows for the analyzer: records schema, ``stream`` and ``apdu`` numbered
    across the dataset in order of (capture, stream) and (capture, apdu)."""
    import pyarrow as pa

    from ..dataset import batches
    from ..records.schema import SCHEMA

    start, end = time_range(args)
    table = pa.Table.from_batches(
        list(batches(url, start=start, end=end, filter=flt)),
        schema=pa.schema([pa.field("capture", pa.dictionary(pa.int32(), pa.string())),
                          *SCHEMA]))
    if table.num_rows:
        capture = table.column("capture").cast(pa.string())
        for column in ("stream", "apdu"):
            key = pa.Table.from_arrays([capture, table.column(column)], ["c", "v"])
            pairs = key.group_by(["c", "v"]).aggregate([]).sort_by([("c", "ascending"),
                                                                      ("v", "ascending")])
            pairs = pairs.append_column("n", pa.array(range(pairs.num_rows),
                                                      SCHEMA.field(column).type))
            joined = key.append_column("i", pa.array(range(key.num_rows))).join(
                pairs, ["c", "v"], join_type="left outer").sort_by("i")
            table = table.set_column(table.schema.get_field_index(column), column,
                                     joined.column("n").cast(SCHEMA.field(column).type))
    return table.select(SCHEMA.names).to_pandas()


def summarize(args: argparse.Namespace, url: str, flt: Filter | None) -> str:
    from ..dataset.summary import MEMORY_LIMIT, summary_text

    start, end = time_range(args)
    import duckdb

    limit = args.memory_limit if args.memory_limit is not None else MEMORY_LIMIT
    try:
        return summary_text(url, start=start, end=end, filter=flt, max_rows=args.max_rows,
                            memory_limit=limit)
    except duckdb.OutOfMemoryException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
        raise CliError(f"{url}: {first}; give summary a larger --memory-limit") from None
