"""One capture -> its files in a dataset: the task each Dask worker runs.

Theory of operation
-------------------
:func:`convert_capture` is a plain function of picklable arguments that returns a small
picklable result, so the same code runs in this process, on a local Dask cluster or on a
remote one. It

1. hashes the capture (SHA-256 of its content) and returns :class:`Skipped` if the dataset
   already holds that content (``known``): converting a capture twice adds nothing;
2. decodes it exactly as ``iec104 convert CAPTURE -o FILE`` does (streams and APDUs numbered
   from 0 in the capture; the ``capture`` column tells captures apart), splitting each batch
   by the UTC date of ``time``; an APDU's rows share one time, so an APDU never spans two
   files or two row groups;
3. writes one file per day (a new part every ``file_rows`` rows) in a staging directory and
   publishes them all only when the whole capture is decoded (:meth:`Store.publish`);
4. returns :class:`Converted` with the capture's manifest row. Only the caller writes the
   manifest, which commits the capture (:mod:`iec104.dataset.store`).

A file that is not a capture, or cannot be read, gives :class:`Failed` (nothing published); a
capture damaged part-way through keeps every row before the damage and says why in the
manifest's ``problem``.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..records.sink import writer_options
from .layout import (
    DATASET_SCHEMA,
    DATASET_VERSION,
    capture_name,
    data_file,
    file_digest,
    split_by_day,
    with_capture,
)
from .store import Store


class Options(NamedTuple):
    """How captures are decoded and written (the same for every capture of a run)."""

    ports: tuple[int, ...] | None = None
    heuristic: bool = True
    profile: tuple[int, int, int] | None = None  # COT, CA, IOA sizes in octets
    batch_rows: int = 65536  # rows per row group, >= 1
    compression: str = "zstd"
    file_rows: int = 1 << 22  # rows per data file before a new part starts, >= 1

    def describe(self) -> str:
        """The decoding options as recorded in the manifest."""
        ports = ",".join(map(str, self.ports)) if self.ports else "2404"
        profile = ",".join(map(str, self.profile)) if self.profile else "2,2,3"
        return f"ports={ports} heuristic={'on' if self.heuristic else 'off'} profile={profile}"


class Converted(NamedTuple):
    """A capture decoded and published; ``entry`` is its manifest row."""

    source: str
    entry: dict[str, Any]
    undecoded: dict[int, int]  # server port -> TCP connections with data not decoded


class Skipped(NamedTuple):
    """The dataset holds this content already (``capture`` names it)."""

    source: str
    sha256: str


class Failed(NamedTuple):
    """Not converted: ``reason`` is one line (not a capture, unreadable, disk full...)."""

    source: str
    reason: str


Result = Converted | Skipped | Failed


def convert_capture(source: str, url: str, known: frozenset[str] | set[str],
                    options: Options | None = None) -> Result:
    """Convert one capture into the dataset at ``url`` (see the module docstring)."""
    import fsspec

    from ..capture.errors import CaptureError, CaptureWarning
    from ..capture.reader import CaptureReader
    from ..capture.reassembly import Reassembler
    from ..codec import Profile
    from ..dissector import dissect

    options = options if options is not None else Options()
    store = Store(url)
    try:
        with fsspec.open(source, "rb") as fh:
            sha256 = file_digest(fh)
            size = fh.tell()
    except OSError as exc:
        return Failed(source, f"{source}: cannot read: {exc}")
    if sha256 in known:
        return Skipped(source, sha256)
    capture = capture_name(source, sha256)
    staging = store.staging()
    writers: dict[dt.date | None, _DayWriter] = {}
    stats = _Stats()
    try:
        with fsspec.open(source, "rb") as fh:
            try:
                reader = CaptureReader(fh, name=source)
            except CaptureError as exc:
                return Failed(source, str(exc))
            reassembler = Reassembler(options.ports, heuristic=options.heuristic)
            profile = Profile(*options.profile) if options.profile else None
            with reader, warnings.catch_warnings():
                # damage is recorded in the manifest's problem (and reported by the caller)
                warnings.simplefilter("ignore", CaptureWarning)
                for batch in dissect(reader, reassembler=reassembler, profile=profile,
                                     batch_rows=options.batch_rows):
                    stats.add(batch)
                    for day, part in split_by_day(with_capture(batch, capture)):
                        if day not in writers:
                            writers[day] = _DayWriter(staging, sha256, day, options)
                        writers[day].write(part)
            problems = [p for p in (reader.time_problem, reader.problem) if p]
        files: list[tuple[str, str]] = []
        for writer in writers.values():
            files.extend(writer.close())
        for local, relative in files:
            store.publish(staging / local, relative)
    except OSError as exc:
        for writer in writers.values():
            writer.abort()
        return Failed(source, f"{source}: cannot convert: {exc}")
    finally:
        store.discard_staging(staging)
    entry = {
        "capture": capture, "source": source, "sha256": sha256, "size": size,
        "rows": stats.rows, "apdus": stats.apdus, "streams": stats.streams,
        "start": stats.start, "end": stats.end, "files": sorted(r for _, r in files),
        "problem": "; ".join(problems) or None, "options": options.describe(),
        "tool_version": _tool_version(), "schema_version": DATASET_VERSION,
        "converted": dt.datetime.now(dt.UTC),
    }
    return Converted(source, entry, dict(reassembler.undecoded))


def _tool_version() -> str:
    """iec104's version (from the installed distribution: the package's own ``__init__``
    imports this one lazily, so importing it back would make a cycle)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iec104")
    except PackageNotFoundError:
        return "unknown"


class _Stats:
    """Counts of the rows of one capture (the manifest's figures)."""

    def __init__(self) -> None:
        self.rows = 0
        self.apdus = 0
        self.streams = 0
        self.start: dt.datetime | None = None
        self.end: dt.datetime | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.rows += batch.num_rows
        # batches never split an APDU, and APDU numbers only grow
        self.apdus += pc.count_distinct(batch.column("apdu")).as_py()
        top = pc.max(batch.column("stream")).as_py()
        if top is not None:
            self.streams = max(self.streams, top + 1)
        span = pc.min_max(batch.column("time")).as_py()
        if span["min"] is not None:
            self.start = span["min"] if self.start is None else min(self.start, span["min"])
            self.end = span["max"] if self.end is None else max(self.end, span["max"])


class _DayWriter:
    """The staging files of one capture on one day (a new part every ``file_rows`` rows)."""

    def __init__(self, staging: Any, sha256: str, day: dt.date | None, options: Options) -> None:
        self.staging = staging
        self.sha256 = sha256
        self.day = day
        self.options = options
        self.done: list[tuple[str, str]] = []  # (staging name, dataset-relative path)
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is not None and self._rows + batch.num_rows > self.options.file_rows:
            self._finish()
        if self._writer is None:
            relative = data_file(self.sha256, self.day, len(self.done))
            local = relative.replace("/", "_")  # one staging directory for every day
            self.done.append((local, relative))
            self._writer = pq.ParquetWriter(
                self.staging / local, DATASET_SCHEMA,
                **writer_options(DATASET_SCHEMA, self.options.compression))
            self._rows = 0
        self._writer.write_batch(batch)
        self._rows += batch.num_rows

    def _finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def close(self) -> list[tuple[str, str]]:
        """Finish the open file; the (staging name, relative path) of every part."""
        self._finish()
        return self.done

    def abort(self) -> None:
        try:
            self._finish()
        except (OSError, pa.ArrowException):
            pass
