"""``iec104 files CAPTURE|PARQUET [-o DIR]``: the files transferred in a capture.

Lists every file transfer (F_* type IDs 120-127, read from or written to an outstation)
that :func:`iec104.analyzer.files` rebuilds, one line each; with ``-o DIR`` also writes each
transfer's octets to ``DIR``: ``NNN-ca<CA>-ioa<IOA>-nof<NOF>.bin`` for a file that arrived
whole with the right checksum, ``... .<status>.bin`` for the others (the sections that
arrived whole: 'incomplete', 'checksum', 'rejected', 'aborted'; a refused file has none).

Exit codes (:func:`~iec104.cli.common.exit_status`): as ``iec104 summary``; 2 also when
``DIR`` cannot be created or written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import CliError
from .common import add_input_options, exit_status, load_frame, report_problems


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "files", help="files transferred (IEC 101 file transfer), rebuilt and saved",
        description="List the file transfers in decoded IEC 104 traffic (directory "
        "excluded), rebuilt with the receiver's checks (section and file checksums, "
        "repeated sections), and optionally save the files.",
        epilog=exit_status("listed"))
    p.add_argument("source", metavar="PARQUET|CAPTURE",
                   help="Parquet file or directory written by iec104 convert or the proxy, "
                   "or a pcap/pcapng capture")
    p.add_argument("-o", "--output-dir", metavar="DIR",
                   help="write each transfer's octets into DIR (created if missing)")
    add_input_options(p, filter_help="rebuild only from APDUs with a row matching EXPR")
    return p


def _output_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CliError(f"{out}: is not a directory")
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise CliError(f"{out}: cannot create the directory: {exc.strerror}") from exc
    return out


def file_name(index: int, row: Any) -> str:
    """The name a transfer is saved under (see the module docstring)."""
    base = f"{index:03d}-ca{row.ca}-ioa{row.ioa}-nof{row.name}"
    return f"{base}.bin" if row.checksum_ok and row.status == "complete" \
        else f"{base}.{row.status}.bin"


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..analyzer import files
    from ..codec import DEFAULT_PROFILE

    out = _output_dir(args.output_dir) if args.output_dir else None
    df, inputs = load_frame(args, args.source)
    table = files(df, profile=args.profile or DEFAULT_PROFILE)
    lines = [f"{len(table)} file transfer(s) in {args.source}"]
    for index, row in enumerate(table.itertuples(index=False), start=1):
        what = "read" if row.direction == "s2c" else "written"
        length = "?" if pd.isna(row.length) else int(row.length)
        line = (f"{index:3d} stream {row.stream} {what:7} CA {row.ca} IOA {row.ioa} "
                f"NOF {row.name}: {row.size} of {length} octets, {row.status}")
        if out is not None and (row.size or row.status != "refused"):
            path = out / file_name(index, row)
            try:
                path.write_bytes(row.bytes)
            except OSError as exc:
                raise CliError(f"{path}: cannot write: {exc.strerror}") from exc
            line += f" -> {path}"
        lines.append(line)
    sys.stdout.write("\n".join(lines) + "\n")  # a closed pipe is handled by main()
    sys.stdout.flush()
    return report_problems(inputs)
