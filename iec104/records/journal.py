"""A rotating Parquet log that survives crashes: the storage of the live recorders.

Theory of operation
-------------------
A Parquet file is readable only once its footer is written, at close. A recorder that
keeps one Parquet file open for an hour would lose the whole hour to a SIGKILL, and a
recorder that closes a file per flush would leave thousands of tiny files. So the open
*segment* is not Parquet:

* Every flush (a batch of rows, e.g. once a second) is appended to the segment's
  *journal*, a hidden Arrow IPC stream ``.<name>.arrows``, and handed to the operating
  system at once (``write(2)``; :func:`os.fsync` too with ``fsync=True``). The IPC stream
  format is readable message by message, so a journal cut anywhere still yields every
  batch written completely before the cut.
* When the segment reaches ``max_bytes`` (journal size) or ``max_seconds`` (age), it
  *rotates*: the journal is read back and written as ``<name>.parquet`` (through the
  hidden ``.<name>.parquet.partial`` and an atomic rename, see
  :class:`~iec104.records.sink.ParquetSink`), then the journal is deleted.
* Names starting with ``.`` are skipped by ``pandas.read_parquet(directory)`` (pyarrow
  ignores ``.``/``_`` prefixes) and by :func:`iec104.analyzer.load`: the directory only
  ever shows complete Parquet files.
* The writer holds an exclusive :func:`fcntl.flock` on its journal. :func:`recover` (run
  when a sink opens a directory, or by hand) converts journals that nobody holds, i.e.
  those left by a process that died, into Parquet files. A journal whose Parquet file
  already exists (a crash between rename and delete) is deleted only if that file's footer
  is readable and lists all of the journal's rows; otherwise the file is made again.

A full disk (or a file size limit, or an I/O error) loses nothing that was written:

* A journal write that fails is cut back to the end of its last complete batch and the
  segment is closed there; :meth:`JournaledParquetSink.append` raises the
  :class:`OSError`, so the caller (:class:`~iec104.recorder.logwriter.LogWriter`) keeps the
  batch and tries again later, into a new segment.
* A conversion that fails (:class:`~iec104.records.sink.ParquetSink` with
  ``salvage=False`` leaves nothing behind) keeps its journal, locked, as *pending*;
  :meth:`JournaledParquetSink.tick` tries pending journals again every ``retry_seconds``.
  Journals still pending at :meth:`~JournaledParquetSink.close` are unlocked and left for
  :func:`recover`.
* So at every moment the directory holds only complete, verified Parquet files under
  visible names, and ``pandas.read_parquet(directory)`` works.

Given a ``session``, the directory is a dataset (:mod:`iec104.dataset`; what ``iec104
proxy -o`` and ``iec104 capture -o`` write): the journals stay hidden at its top, every row
gets the ``capture`` column naming the *log session* (:func:`new_session`:
``<prefix>@<UTC start>-<pid>-<random>``, one per recorder run, kept when the proxy restarts
its logger process, so that ``(capture, stream)`` stays one TCP connection), and a
segment becomes one file per UTC day of its rows, ``date=YYYY-MM-DD/<name>.parquet``
(:func:`~iec104.records.partitions.split_by_day`), each published by its own atomic rename.
The journal carries the ``capture`` column, so :func:`recover` knows the mode and the session
of a dead writer's journal by reading it; the journal is deleted only once the day files
together list all of its rows (otherwise they are made again).
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

import pyarrow as pa
import pyarrow.parquet as pq

from .partitions import CAPTURE_FIELD, DATASET_SCHEMA, partition_dir, split_by_day, with_capture
from .reader import conform_batch, whole_apdus
from .schema import SCHEMA
from .sink import FileOutput, ParquetSink, partial_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JOURNAL_SUFFIX", "JournaledParquetSink", "new_session", "read_journal", "recover"]

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".arrows"
_ROW_GROUP = 128 * 1024
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(
    compression="lz4" if pa.Codec.is_available("lz4") else None)


def new_session(prefix: str) -> str:
    """A new log session's ``capture`` value: ``<prefix>@<UTC now>-<pid>-<6 hex digits>``
    (the random part tells apart two recorders of one process started in one second)."""
    return (f"{prefix}@{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}-"
            f"{secrets.token_hex(3)}")


def _journal_path(final: Path) -> Path:
    return final.with_name(f".{final.stem}{JOURNAL_SUFFIX}")


def _final_path(journal: Path) -> Path:
    return journal.with_name(journal.name[1:-len(JOURNAL_SUFFIX)] + ".parquet")


def _conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A journal batch in the current schema (a dataset journal's keeps ``capture``)."""
    if "capture" not in batch.schema.names:
        return conform_batch(batch)
    rest = conform_batch(batch.drop_columns(["capture"]))
    return pa.RecordBatch.from_arrays(
        [batch.column("capture").cast(CAPTURE_FIELD.type), *rest.columns],
        schema=DATASET_SCHEMA)


def read_journal(path: str | os.PathLike[str]) -> tuple[list[pa.RecordBatch], str | None]:
    """The complete batches of a journal, and why reading stopped early (None if it did not).

    A journal cut in the middle of a batch (a process killed while writing) yields the
    batches before the cut. A journal of an older schema version (left by an older
    recorder) comes back in the current schema; a dataset journal's batches have the
    ``capture`` column in front (:data:`~iec104.records.partitions.DATASET_SCHEMA`).
    """
    batches: list[pa.RecordBatch] = []
    try:
        with pa.OSFile(os.fspath(path), "rb") as f:
            reader = pa.ipc.open_stream(f)
            while True:
                try:
                    batches.append(_conform(reader.read_next_batch()))
                except StopIteration:
                    return batches, None
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        return batches, f"{type(exc).__name__}: {exc}"


def _row_groups(batches: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Regroup small flush batches into row groups of about ``_ROW_GROUP`` rows, cut at APDU
    boundaries: a filter pushed down to row groups skips a group only whole, so an APDU
    must not span two (iec104.records.reader.row_groups)."""
    if not batches:
        return
    table = pa.Table.from_batches(batches, schema=batches[0].schema).combine_chunks()
    yield from whole_apdus(table.to_batches(max_chunksize=_ROW_GROUP))


def _convert(journal: Path, batches: list[pa.RecordBatch], compression: str) -> list[Path]:
    """Write ``batches`` as the journal's Parquet file, or a dataset journal's day files
    (none when there are no rows).

    Raises:
        StorageError: a file could not be written; nothing is left under its name (the
            journal holds the rows; day files written before it are made again).
    """
    final = _final_path(journal)
    if not any(b.num_rows for b in batches):
        return []
    schema = batches[0].schema
    if "capture" not in schema.names:
        days = [(final, batches)]
    else:
        table = pa.Table.from_batches(batches, schema=DATASET_SCHEMA)
        days = [(final.parent / partition_dir(day) / final.name, rows.to_batches())
                for day, rows in split_by_day(table)]
    for path, rows in days:
        path.parent.mkdir(exist_ok=True)
        with ParquetSink(path, compression=compression, salvage=False, schema=schema) as sink:
            for group in _row_groups(rows):
                sink.write(group)
    return [path for path, _ in days]


def _outputs(journal: Path) -> list[Path]:
    """The Parquet files a journal was (perhaps partly) converted to: its file, or a
    dataset journal's day files."""
    final = _final_path(journal)
    return [p for p in (final, *sorted(final.parent.glob(f"*/{final.name}"))) if p.is_file()]


def _rows_in(path: Path) -> int | None:
    """Rows listed by a Parquet file's footer (None: no file, or no readable footer)."""
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, ValueError):  # ValueError: pyarrow's ArrowInvalid
        return None


def recover(directory: str | os.PathLike[str], compression: str = "zstd") -> list[Path]:
    """Turn journals left by dead writers into Parquet files; return the files written.

    Journals held by a live writer (this process or another) are left alone. A journal is
    deleted only once a Parquet file under its final name lists all of its rows; one that
    cannot be converted now (disk full) is kept for the next call. Leftover hidden
    ``.partial`` files of interrupted conversions are deleted.
    """
    directory = Path(directory)
    written: list[Path] = []
    for journal in sorted(directory.glob(f".*{JOURNAL_SUFFIX}")):
        try:
            fd = os.open(journal, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer owns it
            final = _final_path(journal)
            for path in [final, *final.parent.glob(f"*/{final.name}")]:
                partial_path(path).unlink(missing_ok=True)
            batches, problem = read_journal(journal)
            rows = sum(b.num_rows for b in batches)
            outputs = _outputs(journal)
            counts = [_rows_in(p) for p in outputs]
            have = None if None in counts or not counts else sum(counts)  # type: ignore[arg-type]
            if have is not None and have >= rows:
                log.info("%s: already converted to %s; deleting it", journal, final.name)
                journal.unlink(missing_ok=True)
                continue
            if outputs:  # no footer, or fewer rows: their rows are all in the journal
                log.warning("%s: %s is incomplete (%s of %d rows); making it again", journal,
                            final.name, "no footer" if have is None else have, rows)
                for path in outputs:
                    path.unlink()
            if problem:
                log.warning("%s: recovered %d batches; then %s", journal, len(batches),
                            problem)
            try:
                paths = _convert(journal, batches, compression)
            except OSError as exc:
                log.warning("%s: cannot be converted now (%s); kept for the next recover()",
                            journal, exc)
                continue
            if paths:
                written += paths
                log.warning("recovered %d rows of an interrupted recorder into %s", rows,
                            ", ".join(str(p) for p in paths))
            journal.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return written


class _Segment:
    """An open journal: its file (locked), IPC writer, final name and rows."""

    __slots__ = ("out", "rows", "writer")

    def __init__(self, out: FileOutput, writer: pa.ipc.RecordBatchStreamWriter) -> None:
        self.out = out
        self.writer = writer
        self.rows = 0

    @property
    def journal(self) -> Path:
        return self.out.path

    def seal(self, size: int) -> None:
        """Stop writing: the IPC writer's last words go to memory, the file is cut to
        ``size`` (a stream without its end marker reads to its last complete batch)."""
        out = self.out
        if out.failed is None:
            out.failed = OSError("sealed")
            out.failed_at = out.pos
        try:
            self.writer.close()
        except (OSError, pa.ArrowException):
            pass
        out.truncate(size)


class JournaledParquetSink:
    """A directory of Parquet files written crash-safely; see the module docstring.

    Args:
        directory: created if needed; journals left there by dead writers are recovered.
        max_bytes: rotate when the open journal reaches this size (the Parquet file made
            from it is typically 2-4 times smaller).
        max_seconds: rotate when the open segment is this old (checked on each write and
            on :meth:`tick`).
        prefix: file names are ``<prefix>-<UTC open time>-<run id>-<n>.parquet``.
        compression: Parquet compression codec.
        fsync: also ``fsync`` the journal after every write (survives power loss; slower).
        retry_seconds: after a conversion failed, try pending journals again this often.
        clock: monotonic clock in seconds (tests pass a fake one).
        session: write a dataset (module docstring): rows get the ``capture`` column with
            this value (see :func:`new_session`) and files go to ``date=YYYY-MM-DD/``
            partitions. None: a flat directory of records-schema files.

    Not thread-safe: one thread (the recorder's writer thread) calls every method.
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int = 64 << 20,
                 max_seconds: float = 3600.0, prefix: str = "iec104",
                 compression: str = "zstd", fsync: bool = False, retry_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 session: str | None = None) -> None:
        if max_bytes <= 0 or max_seconds <= 0:
            raise ValueError("max_bytes and max_seconds must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.prefix = prefix
        self.compression = compression
        self.fsync = fsync
        self.retry_seconds = retry_seconds
        self._clock = clock
        self.run_id = secrets.token_hex(3)
        self.capture = session
        """The log session's ``capture`` value (dataset mode), None otherwise."""
        self.schema = SCHEMA if session is None else DATASET_SCHEMA
        """The rows' schema: the records schema, with ``capture`` in dataset mode."""
        self.files: list[Path] = []
        """Parquet files completed by this sink, in order."""
        self.recovered = recover(self.directory, compression)
        """Parquet files made from journals of earlier, dead writers when opening."""
        self.rows = 0
        self._count = 0
        self._segment: _Segment | None = None
        self._opened = 0.0
        self._pending: list[_Segment] = []
        self._retry_at = 0.0

    @property
    def journal(self) -> Path | None:
        """The open segment's journal, if any."""
        return self._segment.journal if self._segment is not None else None

    @property
    def pending(self) -> list[Path]:
        """Journals whose conversion failed, waiting for another try."""
        return [s.journal for s in self._pending]

    def _open(self) -> _Segment:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        final = self.directory / f"{self.prefix}-{stamp}-{self.run_id}-{self._count:05d}.parquet"
        self._count += 1
        out = FileOutput(_journal_path(final))
        try:
            fcntl.flock(out.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            writer = pa.ipc.new_stream(pa.PythonFile(out, mode="w"), self.schema,
                                       options=_IPC_OPTIONS)
            if out.failed is not None:
                raise out.failed
        except BaseException:
            out.discard()
            raise
        self._segment = _Segment(out, writer)
        self._opened = self._clock()
        return self._segment

    def append(self, batch: pa.RecordBatch) -> None:
        """Append rows to the open segment's journal (opening one if needed).

        Raises:
            OSError: the rows were not written (disk full...); the journal is cut back to
                its last complete batch and its segment closed (converted later).
        """
        if not batch.num_rows:
            return
        if self.capture is not None:
            batch = with_capture(batch, self.capture)
        segment = self._segment or self._open()
        out = segment.out
        size = out.pos
        segment.writer.write_batch(batch)
        if self.fsync and out.failed is None:
            try:
                os.fsync(out.fd)
            except OSError as exc:
                out.failed, out.failed_at = exc, size
        if out.failed is not None:
            cause = out.failed
            self._segment = None
            segment.seal(size)
            if segment.rows:
                self._pending.append(segment)  # converted later, with the other pending
            else:
                segment.out.discard()
            raise cause
        segment.rows += batch.num_rows
        self.rows += batch.num_rows

    def write(self, batch: pa.RecordBatch) -> None:
        """:meth:`append`, then :meth:`tick`."""
        self.append(batch)
        self.tick()

    def tick(self) -> Path | None:
        """Rotate if the open segment is too big or too old, and try pending journals
        again when due; returns the file completed by a rotation. Conversion failures are
        logged, not raised: their rows are safe in the journals."""
        done = None
        segment = self._segment
        if segment is not None and (segment.out.pos >= self.max_bytes
                                    or self._clock() - self._opened >= self.max_seconds):
            try:
                done = self.rotate()
            except OSError as exc:
                log.warning("converting a journal in %s failed (%s); it is kept and tried "
                            "again", self.directory, exc)
        elif self._pending and self._clock() >= self._retry_at:
            try:
                self.retry()
            except OSError as exc:
                log.debug("pending journals in %s: %s", self.directory, exc)
        return done

    def seconds_to_rotation(self) -> float | None:
        """Seconds until the open segment is due by age, or until pending journals are
        tried again (None when neither applies)."""
        now = self._clock()
        due = []
        if self._segment is not None:
            due.append(self._opened + self.max_seconds - now)
        if self._pending:
            due.append(self._retry_at - now)
        return max(0.0, min(due)) if due else None

    def rotate(self) -> Path | None:
        """Close the open segment into its Parquet file now; returns it (None if no rows).

        Raises:
            OSError: the conversion failed; the journal is kept as pending.
        """
        segment, self._segment = self._segment, None
        if segment is None:
            return None
        segment.seal(segment.out.pos)  # a failed end-of-stream marker is simply not there
        self._pending.append(segment)
        done = self.retry()
        return done[-1] if done else None

    def retry(self) -> list[Path]:
        """Convert pending journals, oldest first; returns the files written.

        Raises:
            OSError: a conversion failed (it and the younger ones stay pending).
        """
        done: list[Path] = []
        while self._pending:
            segment = self._pending[0]
            try:
                batches, problem = read_journal(segment.journal)
                if problem:  # our own journal: only an I/O error can cause this
                    raise OSError(f"{segment.journal}: {problem}")
                paths = _convert(segment.journal, batches, self.compression)
            except OSError:
                self._retry_at = self._clock() + self.retry_seconds
                raise
            segment.journal.unlink()
            segment.out.release()  # releases the lock
            self._pending.pop(0)
            self.files += paths
            done += paths
        return done

    def close(self) -> None:
        """Complete the open segment (nothing is lost).

        Raises:
            OSError: a journal could not be converted; it is left (unlocked) for
                :func:`recover`.
        """
        try:
            self.rotate()
            self.retry()
        finally:
            for segment in self._pending:
                segment.out.release()
            self._pending.clear()

    def read(self) -> pd.DataFrame:
        """Everything this sink wrote: its Parquet files and the journals' rows, in order."""
        sources: list[tuple[str, pa.Table]] = [  # a segment's day files: days in order
            (p.name, pq.ParquetFile(p).read()) for p in self.files]
        segments = [*self._pending, *([self._segment] if self._segment else [])]
        for segment in segments:
            batches, _ = read_journal(segment.journal)
            sources.append((_final_path(segment.journal).name,
                            pa.Table.from_batches(batches, schema=self.schema)))
        tables = [t for _, t in sorted(sources, key=lambda item: item[0])]
        return pa.concat_tables([self.schema.empty_table(), *tables]).to_pandas()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
