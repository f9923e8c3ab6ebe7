"""``iec104 convert CAPTURE... --dataset DIR``: add captures to a partitioned dataset.

One Dask task per capture (:mod:`iec104.dataset.run`): ``--workers N`` starts a local cluster
of N processes (default: the machine's cores; 0 converts in this process), ``--scheduler
ADDRESS`` uses an existing cluster whose workers see the captures and DIR under the same
names. A capture already in the dataset (same content) is skipped; a capture whose content
changed since it was converted is replaced. A progress bar (captures and APDUs done) is drawn
on stderr when stderr is a terminal.

Exit codes: 0 every capture is in the dataset; 1 a capture could not be converted (not a
capture, unreadable, disk full: one line each, the other captures are converted) or was
damaged part-way through (its rows before the damage are in); 2 bad usage, a missing input, a
DIR that is no dataset, or a Dask scheduler that cannot be reached (nothing is written).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import Any

from . import CliError


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--scheduler`` (with ``--dataset`` only)."""
    g = p.add_argument_group("datasets (with --dataset)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="local Dask worker processes, one capture each at a time (default: "
                   "the machine's cores; 0: convert in this process)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="submit the captures to an existing Dask cluster, e.g. "
                   "tcp://10.0.0.5:8786 (its workers must see the captures and DIR)")


def refuse_dataset_options(args: argparse.Namespace) -> None:
    if args.workers is not None or args.scheduler is not None:
        raise CliError("--workers and --scheduler apply with --dataset DIR")


def _url(name: str) -> str:
    """A path made absolute (workers may run elsewhere); URLs unchanged."""
    return name if "://" in name else os.path.abspath(name)


def convert_dataset(args: argparse.Namespace) -> int:
    from ..dataset import Converted, Failed, Options, convert_many, default_workers
    from ..dataset.store import Store
    from .read import check_input, undecoded_note

    if args.filter is not None:
        raise CliError("--filter: a dataset holds every row of its captures; select rows "
                       "when reading it (iec104 read/summary/sql DIR)")
    if args.jobs:
        raise CliError("--jobs decodes one capture on several CPUs; with --dataset, "
                       "--workers converts several captures at once")
    if args.batch_rows < 1:
        raise CliError("--batch-rows must be positive")
    if args.workers is not None and args.workers < 0:
        raise CliError("--workers must be 0 or more")
    sources = [name if "://" in name else str(check_input(name).resolve())
               for name in args.captures]
    url = _url(args.dataset)
    _check_dataset(Store(url), args.dataset)
    options = Options(ports=tuple(args.ports) if args.ports else None,
                      heuristic=args.heuristic is not False,
                      profile=tuple(args.profile) if args.profile else None,
                      batch_rows=args.batch_rows,
                      compression="none" if args.compression == "none" else args.compression)
    workers = args.workers if args.workers is not None else default_workers()
    bar = _bar(len(sources), args.quiet)
    totals: Counter[str] = Counter()
    undecoded: Counter[int] = Counter()
    problems: list[str] = []

    def on_result(result: Any) -> None:
        kind = type(result).__name__
        totals[kind] += 1
        if isinstance(result, Converted):
            totals["apdus"] += result.entry["apdus"]
            totals["rows"] += result.entry["rows"]
            undecoded.update(result.undecoded)
            if result.entry["problem"]:
                problems.append(f"{result.source}: {result.entry['problem']}; every whole "
                                "record before it was converted")
        elif isinstance(result, Failed):
            problems.append(f"{result.reason}; skipped")
        if bar is not None:
            bar.set_postfix_str(f"{totals['apdus']} APDUs", refresh=False)
            bar.update(1)

    try:
        convert_many(sources, url, options=options, workers=workers,
                     scheduler=args.scheduler, on_result=on_result)
    except (OSError, TimeoutError) as exc:
        if args.scheduler is not None and not totals:
            raise CliError(f"{args.scheduler}: cannot reach the Dask scheduler ({exc})") from None
        raise CliError(f"{args.dataset}: cannot write: {exc}") from None
    finally:
        if bar is not None:
            bar.close()
    note = undecoded_note(undecoded, args.heuristic is not False)
    if note:
        print(f"iec104: note: {note}", file=sys.stderr)
    for problem in problems:
        print(f"iec104: warning: {problem}", file=sys.stderr)
    if not args.quiet:
        print(f"iec104 convert: {totals['Converted']} captures converted, {totals['Skipped']} "
              f"already in the dataset, {totals['Failed']} failed; {totals['apdus']} APDUs, "
              f"{totals['rows']} rows -> {args.dataset}", file=sys.stderr)
    return 1 if problems else 0


def _check_dataset(store: Any, name: str) -> None:
    """DIR must be new, empty, or a dataset (never a file or a folder of other things)."""
    from ..dataset.layout import STAGING
    from ..dataset.read import is_dataset

    if store.fs.isfile(store.root):
        raise CliError(f"{name}: is a file; give a directory for the dataset")
    if store.exists() and not is_dataset(store.url):
        other = [p for p in store.fs.ls(store.root, detail=False)
                 if os.path.basename(str(p).rstrip("/")) != STAGING]
        if other:
            raise CliError(f"{name}: a directory that is no dataset (no _captures.parquet); "
                           "give a new or empty directory")


def _bar(total: int, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="capture", file=sys.stderr, desc="iec104 convert",
                dynamic_ncols=True, leave=False)
