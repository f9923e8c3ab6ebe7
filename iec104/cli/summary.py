"""``iec104 summary OUT.parquet|CAPTURE``: what is in a capture, in one screen of text.

Prints :func:`iec104.analyzer.summary_text`: the overview (time span, APDU and object counts,
undecodable APDUs, capture gaps), the connections, the findings of each investigation, and
the counts by type and by cause of transmission. The input is a Parquet file (or directory)
written by ``iec104 convert`` / the proxy, or a capture decoded on the fly.

Exit codes (:func:`~iec104.cli.read.exit_status`): 0 success; 1 an input was damaged
part-way through, a Parquet file of a directory could not be read (it is skipped), or packets
had impossible timestamps (the summary covers everything else, a warning went to stderr); 2 bad
usage, or an input that is missing or is neither a capture nor Parquet of the schema.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .common import (
    Inputs,
    add_input_options,
    add_range_options,
    compile_filter_option,
    dataset_url,
    exit_status,
    load_frame,
    parse_size,
    report_problems,
    summarize,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "summary", help="connections, counts by type and cause, time span, errors and gaps",
        description="Summarize decoded IEC 104 traffic: time span, connections, counts by "
        "type and by cause, undecodable APDUs, capture gaps and the findings of the "
        "analyzer's investigations.",
        epilog=exit_status("summarized"))
    p.add_argument("source", metavar="PARQUET|CAPTURE",
                   help="Parquet file or directory written by iec104 convert, a dataset "
                   "directory (summarized in bounded memory), or a pcap/pcapng capture")
    add_input_options(p, filter_help="summarize only APDUs with a row matching EXPR")
    add_range_options(p)
    p.add_argument("--max-rows", type=int, default=20, metavar="N",
                   help="rows shown per table (default 20)")
    p.add_argument("--memory-limit", type=parse_size, default=None, metavar="SIZE",
                   help="on a dataset: DuckDB's memory for its sort of each capture by "
                   "connection, e.g. 1G (default 256M); beyond it DuckDB spills to a "
                   "temporary directory")
    return p


def run(args: argparse.Namespace) -> int:
    from ..analyzer import summary_text

    dataset = dataset_url(args.source, args)
    if dataset is not None:
        inputs = Inputs([], [], [], dataset=dataset)
        text = summarize(args, dataset, compile_filter_option(args.filter))
    else:
        df, inputs = load_frame(args, args.source)
        text = summary_text(df, max_rows=args.max_rows)
    try:
        sys.stdout.write(f"Source: {args.source}\n{text}")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return report_problems(inputs)
