"""``iec104 summary OUT.parquet|CAPTURE``: what is in a capture, in one screen of text.

Prints :func:`iec104.analyzer.summary_text`: the overview (time span, APDU and object counts,
undecodable APDUs, capture gaps), the connections, the findings of each investigation, and
the counts by type and by cause of transmission. The input is a Parquet file (or directory)
written by ``iec104 convert`` / the proxy, or a capture decoded on the fly.

Exit codes: 0 success; 1 a capture was damaged part-way through (the summary covers everything
before the damage, a warning went to stderr); 2 bad usage, or an input that is missing or is
neither a capture nor Parquet.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import CliError
from .read import (
    add_input_options,
    check_input,
    compile_filter_option,
    dissect_inputs,
    is_parquet,
    open_captures,
    report_problems,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "summary", help="connections, counts by type and cause, time span, errors and gaps",
        description="Summarize decoded IEC 104 traffic: time span, connections, counts by "
        "type and by cause, undecodable APDUs, capture gaps and the findings of the "
        "analyzer's investigations.",
        epilog="Exit status: 0 ok; 1 a capture is damaged part-way through; 2 bad usage, or an "
        "input that is missing or neither a capture nor Parquet.")
    p.add_argument("source", metavar="PARQUET|CAPTURE",
                   help="Parquet file or directory written by iec104 convert, or a "
                   "pcap/pcapng capture")
    add_input_options(p, filter_help="summarize only APDUs with a row matching EXPR")
    p.add_argument("--max-rows", type=int, default=20, metavar="N",
                   help="rows shown per table (default 20)")
    return p


def run(args: argparse.Namespace) -> int:
    import pyarrow as pa

    from ..analyzer import summary_text
    from ..analyzer.schema import SCHEMA
    from ..analyzer.storage import load

    flt = compile_filter_option(args.filter)
    source = Path(args.source)
    problems: list[str] = []
    if source.is_dir():
        if not any(source.glob("*.parquet")):
            raise CliError(f"{source}: a directory without Parquet files")
        df = load(source)
        if flt is not None:
            table = pa.Table.from_pandas(df, schema=SCHEMA, preserve_index=False)
            df = pa.Table.from_batches([flt.apply(b) for b in table.to_batches()],
                                       schema=SCHEMA).to_pandas()
    else:
        check_input(args.source)
        if is_parquet(source):
            from .read import parquet_batches

            batches = list(parquet_batches(source))
        else:
            inputs = open_captures([args.source])
            try:
                batches = list(dissect_inputs(inputs, ports=args.ports, heuristic=args.heuristic,
                                              profile=args.profile))
            finally:
                inputs.close()
            problems = inputs.problems
        if flt is not None:
            batches = [flt.apply(b) for b in batches]
        df = pa.Table.from_batches(batches, schema=SCHEMA).to_pandas()
    text = summary_text(df, max_rows=args.max_rows)
    try:
        sys.stdout.write(f"Source: {source}\n{text}")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return report_problems(problems)
