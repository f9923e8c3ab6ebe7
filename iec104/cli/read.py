"""``iec104 read CAPTURE``: decoded APDUs on the terminal, one line each (or a tree with -V).

Like ``tshark -r``: one line per APDU with frame number, time, ``src:port -> dst:port``, the
APCI (``I(N(S),N(R))``, ``S(N(R))`` or the U function), then for I-frames the type, cause,
common address and the objects with their values. ``-V`` prints every field of every APDU
and object instead. ``--filter`` selects APDUs with the expression language of
:mod:`iec104.records.filter` (an APDU is shown when any of its rows matches).

CAPTURE may also be a Parquet file written by ``iec104 convert``.

The input options, checks and exit codes are those of every subcommand
(:mod:`iec104.cli.common`).

Exit codes: 0 success; 1 an input was damaged part-way through or had packets with
impossible timestamps (everything else was decoded and shown, and a warning went to stderr);
2 bad usage, a bad filter, or an input that is missing or is neither a capture nor Parquet.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..codec.values import FLOAT32_TYPE_IDS, float32_text
from . import CliError
from .common import (
    Inputs,
    add_input_options,
    add_range_options,
    compile_filter_option,
    exit_status,
    open_source,
    report_problems,
    source_batches,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from ..records.filter import Filter


# -- formatting --------------------------------------------------------------------------

# single and double points (SIQ/DIQ) have no OV bit
_NO_OV_TYPES = frozenset((1, 2, 3, 4, 30, 31))


def _bit(value: Any) -> str:
    return "-" if value is None else str(int(bool(value)))


def apdu_tree(rows: list[dict[str, Any]]) -> list[str]:
    """The detailed view of one APDU (``-V``): every header field and every object."""
    from .oneline import QUALIFIER_NAMES, format_endpoint, format_time

    head = rows[0]
    where = f"capture {head['capture']}, " if head.get("capture") else ""  # a dataset's row
    lines = [(f"Frame {head['frame']}: {format_time(head['time'])} UTC, {where}TCP stream "
              f"{head['stream']} ({head['direction']}), "
              f"{format_endpoint(head['src'], head['sport'])} -> "
              f"{format_endpoint(head['dst'], head['dport'])}")]
    raw = head["raw"]
    if head["apci"] is None:
        lines.append(f"  {head['error']}")
    elif head["apci"] == "I":
        lines.append(f"  APCI: I-format, N(S)={head['ssn']}, N(R)={head['rsn']}, "
                     f"length {len(raw) - 2 if raw else '?'}")
        if head.get("profile") is not None:  # (Parquet of schema 1 before the column: none)
            confidence = head.get("profile_confidence")
            lines.append(f"  Field sizes (COT/CA/IOA): {head['profile']}, " + (
                "given" if confidence is None else f"detected, confidence {confidence:.2f}"))
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
            ioa = "(no IOA)" if r["ioa"] is None else f"IOA {r['ioa']}"
            lines.append(f"    {ioa}: {value or '(no value)'}{number}")
            quality = [f"{name.upper()}={_bit(r[name])}" for name in ("iv", "nt", "sb", "bl",
                                                                      "ov", "ei")
                       if r[name] is not None
                       and not (name == "ov" and type_id in _NO_OV_TYPES)]
            if quality:
                lines.append(f"      quality: {' '.join(quality)}")
            if r["time_tag"] is not None or r["time_tag_iv"] is not None:
                lines.append(f"      time tag: {format_time(r['time_tag'])} UTC "
                             f"(IV={_bit(r['time_tag_iv'])})")
            if r["select"] is not None:
                lines.append(f"      S/E: {'select' if r['select'] else 'execute'}")
            if r["qualifier"] is not None:
                lines.append(f"      qualifier: {QUALIFIER_NAMES.get(type_id, 'Q')}="
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


_FIELDS_GROUPING = ("apdu", "obj", "type_id")
"""The columns -T fields reads beside the -e ones (APDUs, objects, float texts)."""


# -- the command ---------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "read", help="print the decoded APDUs of a capture (one line each, or a tree with -V)",
        description="Decode the IEC 104 traffic of a pcap/pcapng capture (or a Parquet file "
        "written by 'iec104 convert') and print one line per APDU, like tshark: frame, time "
        "(UTC), src:port -> dst:port, I(N(S),N(R)) / S(N(R)) / U(function), type, cause, "
        "CA and the objects (IOA=value [quality] @time-tag select/execute qualifier).",
        epilog=exit_status("printed"))
    p.add_argument("capture", metavar="CAPTURE", help="pcap/pcapng file (.gz allowed), a "
                   "Parquet file written by iec104 convert, or a dataset directory")
    add_range_options(p)
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
        # -t r counts from the first row of the source: nothing may be skipped before it
        pushdown = flt if args.time != "r" else None
        return _print(source_batches(inputs, args, _batch_rows(args), pushdown,
                                     _columns(args, flt)), args, flt, inputs)
    finally:
        inputs.close()


def _batch_rows(args: argparse.Namespace) -> int:
    """Rows per batch: as many as convert's (every batch costs a fixed number of Arrow calls,
    and a line appears at most a fraction of a second later), fewer for a few APDUs (-c)."""
    if args.count is not None and args.count < 65536 and args.filter is None:
        return max(args.count, 1024)  # (an APDU has one row or more)
    return 65536


def _columns(args: argparse.Namespace, flt: Filter | None) -> list[str] | None:
    """The columns the output shows or the filter reads (None: all, for -V and JSON)."""
    from .oneline import COLUMNS

    if args.output == "fields":
        shown = [*args.fields, *_FIELDS_GROUPING]
    elif args.output == "text" and not args.verbose:
        shown = list(COLUMNS)
    else:
        return None
    return [*shown, *sorted(flt.columns if flt is not None else ())]


def _check_output_options(args: argparse.Namespace) -> None:
    """-T/-e/-E checked before anything is decoded (CliError: exit 2)."""
    from ..records.output import parse_field_options

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
    from ..records.schema import SCHEMA

    unknown = [name for name in args.fields if name not in SCHEMA.names]
    if unknown:
        raise CliError(f"-e {unknown[0]}: no such column (columns: {', '.join(SCHEMA.names)})")


def _format(groups: list[list[dict[str, Any]]], args: argparse.Namespace,
            first: bool) -> list[str]:
    """The output lines of some APDUs in the -T format or as -V trees (``first``: the first
    APDUs printed, so the JSON array opens here)."""
    from ..records.output import fields_lines, json_lines

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
    lines: list[str] = []  # -V (the one-line view is formatted by column: _print)
    for rows in groups:
        lines.extend(apdu_tree(rows))
        lines.append("")
    return lines


def _print(batches: Iterator[pa.RecordBatch], args: argparse.Namespace, flt: Filter | None,
           inputs: Inputs) -> int:
    from .oneline import batch_text

    out = sys.stdout
    binary = getattr(out, "buffer", None)  # the one-line view is written as octets
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
            if args.output == "text" and not args.verbose:
                # formatted by column into one block of octets (iec104.cli.oneline)
                block, count = batch_text(batch, args.time, t0 or 0,
                                          None if limit is None else limit - shown)
                shown += count
                if binary is not None:
                    binary.write(block)
                else:  # a text stream without octets below (e.g. redirected to a StringIO)
                    out.write(str(block, "utf-8"))
                lines = []
            else:
                if args.output == "fields":  # only the cells -T fields prints or groups by
                    batch = batch.select(list(dict.fromkeys([*args.fields,
                                                             *_FIELDS_GROUPING])))
                groups = list(group_apdus(_rows(batch)))
                if limit is not None:
                    groups = groups[:limit - shown]
                shown += len(groups)
                lines = _format(groups, args, first=shown == len(groups))
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
