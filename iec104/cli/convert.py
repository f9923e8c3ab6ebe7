"""``iec104 convert CAPTURE... -o OUT.parquet``: decode captures into one Parquet file.

Memory stays constant whatever the capture size: packets are read in 1 MiB chunks, decoded
rows are handed out in batches of ``--batch-rows`` rows, and each batch is written as one
Parquet row group at once (:class:`iec104.records.sink.ParquetSink`, which writes a
hidden ``.OUT.parquet.partial`` and renames it when complete and checked), in a background thread while
the next batch is decoded. With ``--jobs N``, N worker
processes decode the ASDUs (by column, as this process does without them) while this one
reads, reassembles and frames: the same rows, but each worker is another Python process with
pyarrow (~150 MB), and since the columnar decode is a small share of the work it pays only
with idle CPUs (see bench/README.md). Several captures are read one after
the other as one capture (``mergecap -a``): connections continue across files, frame numbers
keep counting. With ``--filter`` only the rows of matching APDUs are written.

A progress bar (tqdm, bytes read) is drawn on stderr when stderr is a terminal.

Exit codes (:func:`~iec104.cli.read.exit_status`): 0 success; 1 a capture was damaged
part-way through or had packets with impossible timestamps (everything else is in the output,
a warning went to stderr), or the disk filled up part-way through (the output holds the rows
written before, a message went to stderr); 2 bad usage, a missing input, an input that is no
capture, or an output that cannot be written (nothing is left under the output name). Never is
an incomplete file left under the output name.

With ``--dataset DIR`` the captures are added to a partitioned dataset instead, one Dask task
per capture (:mod:`iec104.dataset.run`): ``--workers N`` starts a local cluster
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
import queue
import sys
import threading
from collections import Counter
from typing import Any

from . import CliError
from .common import (
    add_input_options,
    check_input,
    check_output,
    compile_filter_option,
    dissect_inputs,
    exit_status,
    open_captures,
    report_problems,
    undecoded_note,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert", help="decode captures into a Parquet file (constant memory)",
        description="Decode the IEC 104 traffic of one or more pcap/pcapng captures into one "
        "Parquet file of iec104's schema (one row per information object; see the README's "
        "column reference). Captures are read one after the other as one capture.",
        epilog=exit_status("in the output file"))
    p.add_argument("captures", nargs="+", metavar="CAPTURE",
                   help="pcap/pcapng files (.gz allowed), read in the order given")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", metavar="OUT.parquet",
                       help="Parquet file to write (replaced if it exists)")
    where.add_argument("--dataset", metavar="DIR",
                       help="add the captures to a partitioned dataset instead, one task per "
                       "capture (see 'Datasets' in README.md); a path or fsspec URL")
    add_input_options(p, filter_help="write only the rows of APDUs with a row matching EXPR")
    p.add_argument("--batch-rows", type=int, default=65536, metavar="N",
                   help="rows per Parquet row group (default 65536; memory grows with it)")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   default=0, help="worker processes that decode ASDUs while this one "
                   "reads (default 0: everything in this process, peak RSS about 250 MB "
                   "whatever the capture size); the rows are the same, each worker adds "
                   "about 150 MB, and it pays only with idle CPUs")
    p.add_argument("--compression", default="zstd",
                   choices=["zstd", "snappy", "gzip", "lz4", "none"],
                   help="Parquet compression (default zstd)")
    add_dataset_options(p)
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no closing line on stderr")
    return p


def run(args: argparse.Namespace) -> int:
    from ..records.sink import ParquetSink, StorageError

    if args.dataset is not None:
        return convert_dataset(args)
    refuse_dataset_options(args)
    if args.batch_rows < 1:
        raise CliError("--batch-rows must be positive")
    if args.jobs < 0:
        raise CliError("--jobs must be 0 or more")
    flt = compile_filter_option(args.filter)
    out = check_output(args.output, args.captures)
    inputs = open_captures(args.captures)
    bar = _progress(inputs.total_bytes, args.quiet)
    done = [0]

    def progress() -> None:
        if bar is not None:
            now = inputs.bytes_read()
            bar.update(max(0, now - done[0]))
            done[0] = max(done[0], now)

    try:
        try:
            sink = ParquetSink(out, compression=args.compression)
        except OSError as exc:
            raise CliError(f"{out}: cannot write: {exc}") from None
        apdus = 0
        writer = _BackgroundWriter(sink)
        try:
            for batch in dissect_inputs(inputs, ports=args.ports,
                                        heuristic=args.heuristic is not False,
                                        profile=args.profile, batch_rows=args.batch_rows,
                                        workers=args.jobs,
                                        progress=progress if bar is not None else None):
                if flt is not None:
                    batch = flt.apply(batch)
                if batch.num_rows:
                    apdus += _count_apdus(batch)
                writer.write(batch)
            writer.finish()
            sink.close()
        except StorageError as exc:  # the sink kept what it could (or nothing)
            writer.finish(discard=True)
            if exc.rows_kept is None:
                raise CliError(f"{out}: cannot write: {exc}") from None
            print(f"iec104: {exc}", file=sys.stderr)
            report_problems(inputs)
            return 1
        except BaseException:
            writer.finish(discard=True)
            sink.discard()
            raise
    finally:
        if bar is not None:
            bar.update(max(0, inputs.total_bytes - done[0]))
            bar.close()
        inputs.close()
    if not args.quiet:
        print(f"iec104 convert: {apdus} APDUs, {sink.rows} rows -> {out}", file=sys.stderr)
    return report_problems(inputs)


class _BackgroundWriter:
    """Writes batches to a sink in one background thread, in order.

    pyarrow releases the GIL while it encodes and compresses a row group, so on a second
    CPU writing a batch overlaps with decoding the next one (about a tenth of the wall time
    of a conversion). At most one batch waits in the queue, so memory stays bounded.
    """

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._discard = False
        self._thread = threading.Thread(target=self._run, name="iec104-convert-writer",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is None and not self._discard:
                try:
                    self._sink.write(batch)
                except Exception as exc:  # noqa: BLE001 -- re-raised in the main thread
                    self._error = exc

    def write(self, batch: Any) -> None:
        """Queue a batch (waits while the previous one is still queued)."""
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def finish(self, discard: bool = False) -> None:
        """Wait until every queued batch is written (or, with ``discard``, dropped); then
        re-raise the error of a failed write, unless discarding."""
        if discard:
            self._discard = True
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and not discard:
            raise self._error


def _count_apdus(batch: Any) -> int:
    """Distinct APDU numbers among a batch's rows (gap and event rows have none).

    The rows of a batch come in APDU order, so the numbers never decrease and counting where
    they change counts them without hashing (``pc.count_distinct`` cost 0.04-0.1 CPU-s per
    600k APDUs); a batch out of order would be counted by hashing, with the same answer.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..records.arrays import to_numpy

    column = batch.column("apdu")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        column = column.drop_null()
    numbers = to_numpy(column)
    if not len(numbers):
        return 0
    after, before = numbers[1:], numbers[:-1]
    if bool((after >= before).all()):
        return 1 + int(np.count_nonzero(after != before))
    return int(pc.count_distinct(column).as_py())


def _progress(total: int, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                desc="iec104 convert", dynamic_ncols=True, leave=False)


# -- convert CAPTURE... --dataset DIR ---------------------------------------------------------


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
