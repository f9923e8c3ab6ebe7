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
  :class:`~iec104.analyzer.storage.ParquetSink`), then the journal is deleted.
* Names starting with ``.`` are skipped by ``pandas.read_parquet(directory)`` (pyarrow
  ignores ``.``/``_`` prefixes) and by :func:`iec104.analyzer.load`: the directory only
  ever shows complete Parquet files.
* The writer holds an exclusive :func:`fcntl.flock` on its journal. :func:`recover` (run
  when a sink opens a directory, or by hand) converts journals that nobody holds, i.e.
  those left by a process that died, into Parquet files; a journal whose Parquet file
  already exists (a crash between rename and delete) is simply deleted.

Loss bound: a SIGKILL or crash loses only the rows not yet flushed to the journal (at most
one flush interval); the rows of the open segment are invisible until :func:`recover`
runs. SIGINT/SIGTERM handled by the recorder close the segment: nothing is lost. Without
``fsync`` a power failure may lose what the OS had not written back.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self

import pyarrow as pa

from ..analyzer.schema import SCHEMA
from ..analyzer.storage import ParquetSink

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JOURNAL_SUFFIX", "JournaledParquetSink", "read_journal", "recover"]

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".arrows"
_ROW_GROUP = 128 * 1024
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(
    compression="lz4" if pa.Codec.is_available("lz4") else None)


def _journal_path(final: Path) -> Path:
    return final.with_name(f".{final.stem}{JOURNAL_SUFFIX}")


def _final_path(journal: Path) -> Path:
    return journal.with_name(journal.name[1:-len(JOURNAL_SUFFIX)] + ".parquet")


def read_journal(path: str | os.PathLike[str]) -> tuple[list[pa.RecordBatch], str | None]:
    """The complete batches of a journal, and why reading stopped early (None if it did not).

    A journal cut in the middle of a batch (a process killed while writing) yields the
    batches before the cut.
    """
    batches: list[pa.RecordBatch] = []
    try:
        with pa.OSFile(os.fspath(path), "rb") as f:
            reader = pa.ipc.open_stream(f)
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    return batches, None
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        return batches, f"{type(exc).__name__}: {exc}"


def _row_groups(batches: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Regroup small flush batches into row groups of about ``_ROW_GROUP`` rows."""
    if not batches:
        return
    table = pa.Table.from_batches(batches, schema=SCHEMA).combine_chunks()
    yield from table.to_batches(max_chunksize=_ROW_GROUP)


def _convert(journal: Path, batches: list[pa.RecordBatch], compression: str) -> Path | None:
    """Write ``batches`` as the journal's Parquet file (None when there are no rows)."""
    final = _final_path(journal)
    if not any(b.num_rows for b in batches):
        return None
    with ParquetSink(final, compression=compression) as sink:
        for group in _row_groups(batches):
            sink.write(group)
    return final


def recover(directory: str | os.PathLike[str], compression: str = "zstd") -> list[Path]:
    """Turn journals left by dead writers into Parquet files; return the files written.

    Journals held by a live writer (this process or another) are left alone. Leftover
    hidden ``.partial`` files of interrupted conversions are deleted.
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
            partial = final.with_name(f".{final.name}.partial")
            if final.exists():
                log.info("%s: already converted to %s; deleting it", journal, final.name)
            else:
                batches, problem = read_journal(journal)
                if problem:
                    log.warning("%s: recovered %d batches; then %s", journal, len(batches),
                                problem)
                path = _convert(journal, batches, compression)
                if path is not None:
                    written.append(path)
                    log.warning("recovered %d rows of an interrupted recorder into %s",
                                sum(b.num_rows for b in batches), path)
            partial.unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return written


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

    Not thread-safe: one thread (the recorder's writer thread) calls every method.
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int = 64 << 20,
                 max_seconds: float = 3600.0, prefix: str = "iec104",
                 compression: str = "zstd", fsync: bool = False) -> None:
        if max_bytes <= 0 or max_seconds <= 0:
            raise ValueError("max_bytes and max_seconds must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.prefix = prefix
        self.compression = compression
        self.fsync = fsync
        self.run_id = secrets.token_hex(3)
        self.files: list[Path] = []
        """Parquet files completed by this sink, in order."""
        self.recovered = recover(self.directory, compression)
        """Parquet files made from journals of earlier, dead writers when opening."""
        self.rows = 0
        self._count = 0
        self._file: IO[bytes] | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._journal: Path | None = None
        self._opened = 0.0

    @property
    def journal(self) -> Path | None:
        """The open segment's journal, if any."""
        return self._journal

    def _open(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        final = self.directory / f"{self.prefix}-{stamp}-{self.run_id}-{self._count:05d}.parquet"
        self._count += 1
        journal = _journal_path(final)
        f = open(journal, "xb", buffering=0)  # noqa: SIM115 -- closed in rotate()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._writer = pa.ipc.new_stream(f, SCHEMA, options=_IPC_OPTIONS)
        except BaseException:
            f.close()
            journal.unlink(missing_ok=True)
            raise
        self._file = f
        self._journal = journal
        self._opened = time.monotonic()

    def write(self, batch: pa.RecordBatch) -> None:
        """Append rows to the open segment's journal (opening one if needed), then rotate
        if the segment is due."""
        if batch.num_rows:
            if self._writer is None:
                self._open()
            assert self._writer is not None and self._file is not None
            self._writer.write_batch(batch)
            if self.fsync:
                os.fsync(self._file.fileno())
            self.rows += batch.num_rows
        self.tick()

    def tick(self) -> Path | None:
        """Rotate if the open segment is too big or too old; returns the file completed."""
        if self._file is None:
            return None
        if (self._file.tell() >= self.max_bytes
                or time.monotonic() - self._opened >= self.max_seconds):
            return self.rotate()
        return None

    def seconds_to_rotation(self) -> float | None:
        """Seconds until the open segment is due by age (None when none is open)."""
        if self._file is None:
            return None
        return max(0.0, self._opened + self.max_seconds - time.monotonic())

    def rotate(self) -> Path | None:
        """Close the open segment into its Parquet file now; returns it (None if no rows)."""
        if self._writer is None or self._file is None or self._journal is None:
            return None
        journal, f = self._journal, self._file
        self._writer.close()
        self._writer = None
        self._file = None
        self._journal = None
        try:
            batches, problem = read_journal(journal)
            if problem:  # our own journal: only an I/O error can cause this
                raise OSError(f"{journal}: {problem}")
            path = _convert(journal, batches, self.compression)
            journal.unlink()
        finally:
            f.close()  # releases the lock; on error the journal stays for recover()
        if path is not None:
            self.files.append(path)
        return path

    def close(self) -> None:
        """Complete the open segment (nothing is lost)."""
        self.rotate()

    def read(self) -> pd.DataFrame:
        """Everything this sink wrote: its Parquet files and the open journal's rows."""
        tables = [pa.Table.from_batches([], schema=SCHEMA)]
        import pyarrow.parquet as pq

        tables += [pq.read_table(p) for p in self.files]
        if self._journal is not None:
            batches, _ = read_journal(self._journal)
            tables.append(pa.Table.from_batches(batches, schema=SCHEMA))
        return pa.concat_tables(tables).to_pandas()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
