"""``iec104 sql DIR "SELECT ..."``: SQL over a dataset with DuckDB (embedded).

The dataset's rows are the view ``iec104`` (every column of the schema, ``capture`` and the
partition ``date``), its manifest the view ``captures`` (:func:`iec104.dataset.connect`).
DuckDB reads the Parquet files itself, in parallel, skipping partitions and row groups a
``WHERE`` on ``date`` or ``time`` excludes, and spills to disk rather than run out of memory.
The answer is printed as a table, or written with ``-o`` as CSV or Parquet (by the file's
suffix) by DuckDB directly, under a hidden name renamed when complete.

Exit codes: 0 success; 2 bad usage, DIR is no dataset, an SQL error (DuckDB's message), or an
output that cannot be written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import CliError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sql", help="run SQL (DuckDB) over a dataset: views iec104 and captures",
        description="Run one SQL query with DuckDB over a dataset written by 'iec104 convert "
        "--dataset'. The rows are the view 'iec104' (columns as in the README, plus 'capture' "
        "and 'date'), the manifest the view 'captures'.",
        epilog="Exit status: 0 ok; 2 bad usage, DIR is no dataset, an SQL error, or an output "
        "that cannot be written.")
    p.add_argument("dataset", metavar="DIR", help="dataset directory (path or fsspec URL)")
    p.add_argument("query", metavar="SQL", help="one SQL statement, e.g. \"SELECT capture, "
                   "count(*) FROM iec104 GROUP BY ALL\"")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the answer to FILE.csv or FILE.parquet instead of printing it")
    p.add_argument("--max-rows", type=int, default=1000, metavar="N",
                   help="rows printed at most (default 1000; -o writes all)")
    return p


def run(args: argparse.Namespace) -> int:
    import duckdb

    from ..dataset import connect, is_dataset

    if not is_dataset(args.dataset):
        raise CliError(f"{args.dataset}: not a dataset (no _captures.parquet or date= "
                       "partitions); write one with iec104 convert CAPTURE... --dataset DIR")
    if args.max_rows < 1:
        raise CliError("--max-rows must be at least 1")
    out = _output(args.output) if args.output else None
    con = connect(args.dataset)
    try:
        rel = con.sql(args.query)
        if rel is None:
            raise CliError("the statement returned no rows (give a query, e.g. SELECT ...)")
        if out is not None:
            return _write(rel, out)
        return _print(rel, args.max_rows)
    except duckdb.Error as exc:
        raise CliError(f"SQL: {' '.join(str(exc).split())}") from None
    finally:
        con.close()


def _output(name: str) -> Path:
    out = Path(name)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise CliError(f"{out}: -o writes .csv or .parquet files")
    if out.is_dir():
        raise CliError(f"{out}: is a directory")
    if not out.parent.is_dir():
        raise CliError(f"{out.parent}: no such directory")
    return out


def _write(rel: Any, out: Path) -> int:
    partial = out.with_name(f".{out.name}.partial")
    try:
        if out.suffix.lower() == ".csv":
            rel.write_csv(str(partial))
        else:
            rel.write_parquet(str(partial), compression="zstd")
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"{out}: cannot write: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return 0


def _print(rel: Any, limit: int) -> int:
    frame = rel.limit(limit + 1).df()
    more = len(frame) > limit
    if not len(frame):  # pandas would print 'Empty DataFrame'
        text = "  ".join(map(str, frame.columns)) + "\n(no rows)"
    else:
        text = frame.head(limit).to_string(index=False, na_rep="NULL")
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    if more:
        print(f"iec104: note: only the first {limit} rows are shown (--max-rows, or -o FILE "
              "for all of them)", file=sys.stderr)
    return 0
