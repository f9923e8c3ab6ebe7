"""``iec104 report SOURCE -o report.html``: one self-contained HTML report.

SOURCE is a capture (pcap/pcapng, decoded on the fly), a Parquet file written by
``iec104 convert``, or a directory of Parquet files. The report holds the overview, a
message-rate chart and a value timeline, then one table per investigation (connections,
sequence numbers and timeouts, command audit, interrogations, anomalies, points, type and
cause statistics); see :mod:`iec104.analyzer.report`.

The input side is the one of ``summary`` (:func:`~iec104.cli.read.load_frame`): the same
options (``--filter``, ``--port``, ``--heuristic/--no-heuristic``, ``--profile``), the same
checks and the same exit codes. The HTML is written to a hidden ``.FILE.partial`` and renamed
when complete, so a failed write never leaves a half report (or a damaged input) behind.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import CliError
from .common import (
    add_input_options,
    add_range_options,
    check_output,
    exit_status,
    load_frame,
    report_problems,
)


def _points(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        ca, sep, ioa = item.strip().partition(":")
        if not sep:
            raise argparse.ArgumentTypeError(f"point {item!r} is not CA:IOA")
        out.append((int(ca), int(ioa)))
    return out


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report", help="write a self-contained HTML report of a capture or Parquet data",
        description="Analyze a capture or Parquet data and write one HTML file with tables "
        "and plots (no scripts, no external resources).",
        epilog=exit_status("in the report"))
    p.add_argument("source", metavar="CAPTURE|PARQUET",
                   help="pcap/pcapng file, Parquet file, directory of Parquet files, or "
                   "a dataset directory (its selected rows are loaded into memory)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="HTML file to write ('-' for standard output)")
    p.add_argument("--title", help="report heading (default: the source file name)")
    p.add_argument("--max-rows", type=int, default=500,
                   help="rows shown per table (default 500)")
    p.add_argument("--points", type=_points, metavar="CA:IOA,...",
                   help="points for the value timeline (default: the busiest six)")
    add_input_options(p, filter_help="report only APDUs with a row matching EXPR")
    add_range_options(p)
    g = p.add_argument_group("thresholds")
    g.add_argument("--k", type=int, default=12, help="send window k (default 12)")
    g.add_argument("--w", type=int, default=None,
                   help="acknowledge-after count w (default: not checked)")
    g.add_argument("--t1", type=float, default=15.0, help="t1 in seconds (default 15)")
    g.add_argument("--t2", type=float, default=10.0, help="t2 in seconds (default 10)")
    g.add_argument("--t3", type=float, default=20.0, help="t3 in seconds (default 20)")
    g.add_argument("--masters", metavar="IP,...",
                   help="hosts allowed to send commands (default: those that ran a general "
                   "interrogation)")
    g.add_argument("--known-ca", metavar="CA,...",
                   help="common addresses that exist (others are flagged)")
    g.add_argument("--max-drift", type=float, default=60.0,
                   help="seconds a time tag may differ from capture time (default 60)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..analyzer.report import report_html

    out = None if args.output == "-" else check_output(args.output, [args.source])
    options: dict[str, Any] = {"k": args.k, "w": args.w, "t1": args.t1, "t2": args.t2,
                               "t3": args.t3, "max_drift": args.max_drift}
    if args.masters:
        options["masters"] = [m.strip() for m in args.masters.split(",") if m.strip()]
    if args.known_ca:
        try:
            options["known_cas"] = [int(c) for c in args.known_ca.split(",") if c.strip()]
        except ValueError as exc:
            raise CliError(f"--known-ca: {exc}") from None
    df, inputs = load_frame(args, args.source)
    text = report_html(df, title=args.title or f"IEC 104 report: {Path(args.source).name}",
                       max_rows=args.max_rows, points=args.points, **options)
    if out is None:
        sys.stdout.write(text)
    else:
        _write(out, text)
    return report_problems(inputs)


def _write(out: Path, text: str) -> None:
    """Write ``text`` to a hidden partial file beside ``out``, then rename it into place."""
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"{out}: cannot write: {exc.strerror or exc}") from None
