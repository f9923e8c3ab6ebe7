"""``iec104 convert CAPTURE... -o OUT.parquet``: decode captures into one Parquet file.

Memory stays constant whatever the capture size: packets are read in 1 MiB chunks, decoded
rows are handed out in batches of ``--batch-rows`` rows, and each batch is written as one
Parquet row group at once (:class:`iec104.records.sink.ParquetSink`, which writes a
hidden ``.OUT.parquet.partial`` and renames it when complete and checked), in a background thread while
the next batch is decoded. With ``--jobs N``, N worker
processes decode the ASDUs while this one reads, reassembles and frames: faster on several
CPUs, the same rows, but each worker is another Python process with pyarrow (~150 MB). Several captures are read one after
the other as one capture (``mergecap -a``): connections continue across files, frame numbers
keep counting. With ``--filter`` only the rows of matching APDUs are written.

A progress bar (tqdm, bytes read) is drawn on stderr when stderr is a terminal.

Exit codes (:func:`~iec104.cli.read.exit_status`): 0 success; 1 a capture was damaged
part-way through or had packets with impossible timestamps (everything else is in the output,
a warning went to stderr), or the disk filled up part-way through (the output holds the rows
written before, a message went to stderr); 2 bad usage, a missing input, an input that is no
capture, or an output that cannot be written (nothing is left under the output name). Never is
an incomplete file left under the output name.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
from typing import Any

from . import CliError
from .common import (
    add_input_options,
    check_output,
    compile_filter_option,
    dissect_inputs,
    exit_status,
    open_captures,
    report_problems,
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
    p.add_argument("-o", "--output", required=True, metavar="OUT.parquet",
                   help="Parquet file to write (replaced if it exists)")
    add_input_options(p, filter_help="write only the rows of APDUs with a row matching EXPR")
    p.add_argument("--batch-rows", type=int, default=65536, metavar="N",
                   help="rows per Parquet row group (default 65536; memory grows with it)")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   default=0, help="worker processes that decode ASDUs while this one "
                   "reads (default 0: everything in this process, peak RSS about 250 MB "
                   "whatever the capture size); faster on several CPUs, the rows are the "
                   "same, but each worker adds about 150 MB")
    p.add_argument("--compression", default="zstd",
                   choices=["zstd", "snappy", "gzip", "lz4", "none"],
                   help="Parquet compression (default zstd)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no closing line on stderr")
    return p


def run(args: argparse.Namespace) -> int:
    from ..records.sink import ParquetSink, StorageError

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
    import pyarrow.compute as pc

    return int(pc.count_distinct(batch.column("apdu")).as_py())


def _progress(total: int, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                desc="iec104 convert", dynamic_ncols=True, leave=False)
