"""Parquet files of decoded traffic: where rows are written, in row groups.

:class:`ParquetSink` writes one file incrementally (constant memory: each batch becomes
a row group). Long-running recorders write a rotating, crash-safe directory instead
(:class:`iec104.recorder.JournaledParquetSink`, which converts its journals through a
:class:`ParquetSink`); :mod:`.reader` reads either.

Theory of operation
-------------------
A Parquet file is readable only once its footer is on disk. So a file gets its final name
only when it is complete: it is written under the hidden name ``.<name>.partial`` (pyarrow
and pandas skip names starting with ``.`` or ``_``, so ``pandas.read_parquet(directory)``
never sees it), then :meth:`ParquetSink.close` writes the footer, ``fsync`` s the file,
reads the footer back and checks its row count, renames the file and ``fsync`` s the
directory.

A full disk (``ENOSPC``), a file size limit (``EFBIG``) or an I/O error must not leave
pyarrow's writer half-way through a row group: it could then write no footer at all. So
pyarrow writes into :class:`FileOutput`, which never raises into pyarrow: after the first
failed ``write(2)`` it records the error and keeps the remaining bytes in memory (at most
one row group and the footer, since the sink stops at once). The writer's state stays
whole, it produces its footer, and the sink then either

* *salvages* (the default, e.g. ``iec104 convert``): cuts the file after the last row
  group that is completely on disk, appends the footer rewritten to list only those row
  groups (:func:`_footer_keeping`; fewer row groups if even that does not fit), checks and
  renames it: every row written before the failure stays readable; or
* *discards* (``salvage=False``, when the rows are safe elsewhere, such as a recorder's
  journal): deletes the hidden file.

Either way it raises :class:`StorageError`, which says how many rows were kept.

Every Parquet file of rows (this sink, so ``convert`` and the recorders' journals, and the
dataset writer) is written with :func:`writer_options`: the encoding and statistics choices
per column are made there once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq

from ..codec.errors import Iec104Error
from .schema import SCHEMA

_MAGIC = b"PAR1"
_BUFFER = 1 << 20
"""Bytes pyarrow collects before it calls :meth:`FileOutput.write` (fewer GIL round trips)."""


# Columns whose values rarely repeat within a row group (counters, times, measured values,
# octets): a dictionary would hold nearly every value once and cost a hash per value for
# nothing (it falls back to plain pages only past 1 MiB). On the 600k-APDU bench capture,
# dictionaries only on the other columns cut the writer's CPU time by about a fifth and
# the file from 37.0 to 29.4 MB (zstd compresses the plain pages of these better).
# ``ioa`` keeps its dictionary: a station's point list is small.
_PLAIN_COLUMNS = frozenset({"time", "frame", "apdu", "ssn", "rsn", "value", "value_text",
                            "time_tag", "raw"})
# Columns without row-group statistics: no filter can skip a row group by them (the filter
# language compares ``raw`` with nothing; a text's min/max rarely excludes a value) and
# their min/max are the costliest to find. Every other column keeps them: the filter
# pushdown (:func:`iec104.records.reader.row_groups`, the dataset reader, DuckDB, Polars)
# may be asked about any of them, and ``apdu``'s keep APDUs whole across row groups.
_NO_STATISTICS = frozenset({"raw", "value_text"})


def writer_options(schema: pa.Schema, compression: str = "zstd") -> dict[str, Any]:
    """The keyword arguments of :class:`pyarrow.parquet.ParquetWriter` for files of rows
    of ``schema`` (the records schema, or a dataset's with ``capture``): which columns are
    dictionary-encoded and which get statistics (see the comments above), and
    ``compression`` (a Parquet codec name, or "none")."""
    names = schema.names
    return {"compression": compression,
            "use_dictionary": [n for n in names if n not in _PLAIN_COLUMNS
                               and not pa.types.is_boolean(schema.field(n).type)],
            "write_statistics": [n for n in names if n not in _NO_STATISTICS]}


class StorageError(Iec104Error, OSError):
    """Writing a Parquet file failed (disk full, file too large, I/O error).

    Attributes:
        path: the file's final name.
        rows_kept: rows readable under ``path`` (>= 0; rows written before the failure), or
            None when nothing was left under that name.
        cause: the underlying :class:`OSError`.
    """

    def __init__(self, path: Path, rows: int, rows_kept: int | None, cause: OSError) -> None:
        kept = ("nothing was kept" if rows_kept is None else
                f"the first {rows_kept} rows are kept in {path}")
        super().__init__(f"writing {path.name} failed after {rows} rows ({cause}); {kept}")
        self.errno = cause.errno
        self.path = path
        self.rows_kept = rows_kept
        self.cause = cause


def partial_path(path: Path) -> Path:
    """The hidden name a file is written under until it is complete."""
    return path.with_name(f".{path.name}.partial")


class FileOutput:
    """A new file for pyarrow to write into (through :class:`pyarrow.PythonFile`) that
    never raises into pyarrow: see the module docstring.

    Writes go straight to ``write(2)`` (no buffer: what :meth:`write` returned for is with
    the operating system). After the first failure, :attr:`failed` holds the error, bytes
    from :attr:`failed_at` on are kept in memory, and :attr:`pos` counts on as if written.
    """

    closed = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self.pos = 0
        self.failed: OSError | None = None
        self.failed_at = 0
        self._tail = bytearray()

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        size = len(view)
        if self.failed is None:
            done = 0
            try:
                while done < size:
                    done += os.write(self.fd, view[done:])
            except OSError as exc:
                self.failed = exc
                self.failed_at = self.pos + done
                self._tail += view[done:]
        else:
            self._tail += view
        self.pos += size
        return size

    def tell(self) -> int:
        return self.pos

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True  # pyarrow's close; the descriptor stays open for fsync/truncate

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of what was written, from the disk or the memory tail."""
        out = b""
        if start < self.failed_at or self.failed is None:
            stop = end if self.failed is None else min(end, self.failed_at)
            out = os.pread(self.fd, stop - start, start)
        if self.failed is not None and end > self.failed_at:
            lo = max(start, self.failed_at) - self.failed_at
            out += bytes(self._tail[lo:end - self.failed_at])
        return out

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` octets and forget the failure (written anew from there)."""
        os.ftruncate(self.fd, size)
        os.lseek(self.fd, size, os.SEEK_SET)
        self.pos = size
        self.failed = None
        self._tail = bytearray()

    def release(self) -> None:
        """Close the descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def sync_and_release(self) -> None:
        """``fsync`` the file, then close the descriptor."""
        try:
            os.fsync(self.fd)
        finally:
            self.release()

    def discard(self) -> None:
        """Close and delete the file."""
        self.release()
        self.path.unlink(missing_ok=True)


class ParquetSink:
    """Write RecordBatches of :data:`SCHEMA` into one Parquet file that appears under
    ``path`` only when complete (see the module docstring).

    Args:
        path: the file to write (replaced on success if it exists).
        compression: Parquet compression codec.
        salvage: on a write failure, keep the rows written before it (True) or leave
            nothing (False).
        schema: the rows' schema (the records schema; a dataset's adds ``capture``).

    Raises (from :meth:`write` and :meth:`close`):
        StorageError: writing failed; the sink is then closed.
    """

    def __init__(self, path: str | os.PathLike[str], compression: str = "zstd", *,
                 salvage: bool = True, schema: pa.Schema = SCHEMA) -> None:
        self.path = Path(path)
        self.salvage = salvage
        partial = partial_path(self.path)
        partial.unlink(missing_ok=True)  # left by a killed writer
        self._out = FileOutput(partial)
        try:
            self._stream = pa.BufferedOutputStream(pa.PythonFile(self._out, mode="w"),
                                                   _BUFFER)
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
                self._stream, schema, **writer_options(schema, compression))
        except BaseException:
            self._out.discard()
            raise
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append a batch as one row group (empty batches are skipped)."""
        if self._writer is None:
            raise ValueError(f"{self.path} is closed")
        if batch.num_rows:
            self._writer.write_batch(batch)
            self.rows += batch.num_rows
            if self._out.failed is not None:
                self._fail()

    def _close_writer(self) -> None:
        """Let pyarrow write its footer and flush its buffer into :class:`FileOutput`."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()  # a stream passed in is not closed by pyarrow
            self._stream.close()

    @property
    def bytes_written(self) -> int:
        return self._out.pos

    def close(self) -> Path:
        """Finish the file and give it its final name; returns the path."""
        if self._writer is not None:
            try:
                self._close_writer()
            except BaseException:
                self._out.discard()
                raise
            if self._out.failed is not None:
                self._fail()
            self._publish(self.rows)
        return self.path

    def discard(self) -> None:
        """Abandon the file (interrupt): nothing is left under ``path``. Idempotent."""
        try:
            self._close_writer()  # the footer goes nowhere: the file is deleted
        except (OSError, ValueError, pa.ArrowException):
            pass
        if self._out.fd >= 0:
            self._out.discard()

    def _publish(self, rows: int) -> None:
        """fsync, check the footer, rename, fsync the directory."""
        out = self._out
        try:
            out.sync_and_release()
            found = pq.read_metadata(out.path).num_rows
            if found != rows:
                raise OSError(f"{out.path.name}: footer lists {found} rows, not {rows}")
            os.replace(out.path, self.path)
        except (OSError, ValueError) as exc:  # ValueError: pyarrow's ArrowInvalid
            out.discard()
            cause = exc if isinstance(exc, OSError) else OSError(str(exc))
            raise StorageError(self.path, self.rows, None, cause) from exc
        _sync_directory(self.path.parent)

    def _fail(self) -> NoReturn:
        out = self._out
        cause = out.failed
        assert cause is not None
        kept = None
        try:
            self._close_writer()  # the footer goes to memory
            if self.salvage:
                kept = _salvage(out)
        except (OSError, ValueError, pa.ArrowException):
            kept = None  # nothing usable: discard
        if kept is None:
            out.discard()
        else:
            try:
                self._publish(kept)
            except StorageError:
                kept = None
        raise StorageError(self.path, self.rows, kept, cause) from cause

    def __enter__(self) -> ParquetSink:  # noqa: PYI034 -- not subclassed
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # an error elsewhere: never give a half-written file the final name
            self.discard()


def _sync_directory(directory: Path) -> None:
    """Make a rename durable (where the file system supports fsync on directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _salvage(out: FileOutput) -> int | None:
    """Turn a file whose writing failed into a valid Parquet file of the row groups that
    are completely on disk; returns their row count (None if not even an empty file fits).

    ``out`` holds pyarrow's complete output: the bytes before ``failed_at`` on disk, the
    rest (including the footer) in memory.
    """
    size = out.pos
    end = out.read(size - 8, size)
    if len(end) != 8 or end[4:] != _MAGIC:
        return None
    length = int.from_bytes(end[:4], "little")
    footer = out.read(size - 8 - length, size - 8)
    meta = pq.read_metadata(pa.BufferReader(_MAGIC + footer + end))
    ends, rows = [], []
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        stop = 0
        for c in range(group.num_columns):
            col = group.column(c)
            start = (col.dictionary_page_offset if col.has_dictionary_page
                     else col.data_page_offset)
            stop = max(stop, start + col.total_compressed_size)
        if stop > out.failed_at:
            break
        ends.append(stop)
        rows.append(group.num_rows)
    for keep in range(len(ends), -1, -1):
        # fewer row groups free more space for the (then also shorter) footer
        cut = ends[keep - 1] if keep else 0
        tail = _footer_keeping(footer, keep, sum(rows[:keep]))
        out.truncate(cut)
        out.write((b"" if keep else _MAGIC) + tail + len(tail).to_bytes(4, "little") + _MAGIC)
        if out.failed is None:
            return sum(rows[:keep])
    return None


# -- the Parquet footer (Thrift compact protocol), just enough to drop trailing row groups --

_STRUCT, _LIST, _SET, _MAP = 12, 9, 10, 11


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _skip(buf: bytes, pos: int, kind: int) -> int:
    """Position after one value of Thrift compact type ``kind`` starting at ``pos``."""
    if kind in (1, 2):  # boolean in a field header: no payload
        return pos
    if kind == 3:  # byte (also a boolean inside a list)
        return pos + 1
    if kind in (4, 5, 6):  # zigzag varints
        return _varint(buf, pos)[1]
    if kind == 7:  # double
        return pos + 8
    if kind == 8:  # binary
        length, pos = _varint(buf, pos)
        return pos + length
    if kind == 13:  # uuid
        return pos + 16
    if kind in (_LIST, _SET):
        pos, count, elem = _list_header(buf, pos)
        for _ in range(count):
            pos = _skip(buf, pos, 3 if elem in (1, 2) else elem)
        return pos
    if kind == _MAP:
        count, pos = _varint(buf, pos)
        if count:
            types = buf[pos]
            pos += 1
            for _ in range(count):
                for elem in (types >> 4, types & 0x0F):
                    pos = _skip(buf, pos, 3 if elem in (1, 2) else elem)
        return pos
    if kind == _STRUCT:
        while True:
            pos, _, field_kind = _field_header(buf, pos)
            if field_kind == 0:
                return pos
            pos = _skip(buf, pos, field_kind)
    raise ValueError(f"Thrift type {kind} at {pos}")


def _field_header(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(position after the header, delta or 0, type); type 0 is the end of the struct."""
    byte = buf[pos]
    pos += 1
    if byte and not byte >> 4:  # long form: the field id follows as a zigzag varint
        pos = _varint(buf, pos)[1]
    return pos, byte >> 4, byte & 0x0F


def _list_header(buf: bytes, pos: int) -> tuple[int, int, int]:
    byte = buf[pos]
    pos += 1
    count = byte >> 4
    if count == 15:
        count, pos = _varint(buf, pos)
    return pos, count, byte & 0x0F


def _footer_keeping(footer: bytes, keep: int, num_rows: int) -> bytes:
    """A Parquet ``FileMetaData`` with only its first ``keep`` row groups (field 4) and
    ``num_rows`` (field 3) set to match; every other field is copied unchanged."""
    out = bytearray()
    pos = 0
    field = 0
    while True:
        start = pos
        pos, delta, kind = _field_header(footer, pos)
        field = field + delta if delta else (
            _zigzag(_varint(footer, start + 1)[0]) if kind else 0)
        if kind == 0:
            out += footer[start:pos]
            return bytes(out)
        out += footer[start:pos]
        if field == 3 and kind == 6:  # num_rows: i64
            pos = _skip(footer, pos, kind)
            out += _encode_varint(num_rows << 1)  # zigzag of a non-negative number
        elif field == 4 and kind == _LIST:  # row_groups: list<RowGroup>
            pos, count, elem = _list_header(footer, pos)
            out += (bytes([min(keep, 15) << 4 | elem])
                    + (_encode_varint(keep) if keep >= 15 else b""))
            for i in range(count):
                begin = pos
                pos = _skip(footer, pos, elem)
                if i < keep:
                    out += footer[begin:pos]
        else:
            end = _skip(footer, pos, kind)
            out += footer[pos:end]
            pos = end


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


__all__ = ["FileOutput", "ParquetSink", "StorageError", "partial_path", "writer_options"]
