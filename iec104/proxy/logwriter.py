"""Rows from a live producer -> Parquet, without slowing the producer down.

Theory of operation
-------------------
The producer (the proxy's event loop, or the live-capture thread) decodes bytes into the
current :class:`~iec104.dissectors.records.RecordBuilder` through
:class:`~iec104.dissectors.decoder.DirectionDecoder` objects obtained from
:meth:`LogWriter.decoder`. A *flush* (every ``flush_rows`` rows or ``flush_seconds``,
whichever comes first; :meth:`LogWriter.maybe_flush`) costs the producer almost nothing:
it swaps in a fresh builder (APDU numbering continues) and queues the full one. A writer
thread turns queued builders into a ``RecordBatch`` and appends it to a
:class:`~iec104.proxy.sink.JournaledParquetSink`, which rotates files by size and age.

So the SIGKILL loss bound is one flush interval: rows decoded since the last flush (at
most ``flush_rows``, at most ``flush_seconds`` old) plus batches still queued for the
writer thread (normally none; a few milliseconds of work each).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec import DEFAULT_PROFILE, Profile
from ..dissectors.decoder import DirectionDecoder
from ..dissectors.records import Endpoints, RecordBuilder
from .sink import JournaledParquetSink

if TYPE_CHECKING:
    import os

    import pandas as pd

__all__ = ["LogWriter", "LogWriterError"]

log = logging.getLogger(__name__)


class LogWriterError(RuntimeError):
    """Writing the log failed (e.g. disk full); the message names the cause."""


class LogWriter:
    """Batch rows from one producer thread into a rotating, crash-safe Parquet directory.

    Args:
        directory: output directory (a dataset readable by ``pandas.read_parquet``).
        profile: ASDU field sizes used to decode.
        flush_rows: flush when this many rows are waiting.
        flush_seconds: flush rows at the latest this long after the previous flush
            (the producer must call :meth:`maybe_flush` at least that often).
        max_bytes, max_seconds, prefix, compression, fsync: see
            :class:`~iec104.proxy.sink.JournaledParquetSink`.
        swap_builders: True (default): a flush swaps in a new :attr:`builder` and re-points
            the decoders from :meth:`decoder`, and the writer thread converts the rows (the
            cheapest flush for the producer). False: :attr:`builder` stays the same object
            and a flush converts its rows on the calling thread (~1 µs per row), for
            producers that keep their own reference to the builder, such as
            :class:`~iec104.dissectors.stream.StreamDecoder`.

    Every method except :meth:`dataframe`, :attr:`stats` and the properties must be called
    from the producer's thread.
    """

    def __init__(self, directory: str | os.PathLike[str], *,
                 profile: Profile = DEFAULT_PROFILE, flush_rows: int = 10_000,
                 flush_seconds: float = 1.0, max_bytes: int = 64 << 20,
                 max_seconds: float = 3600.0, prefix: str = "iec104",
                 compression: str = "zstd", fsync: bool = False,
                 swap_builders: bool = True) -> None:
        if flush_rows <= 0 or flush_seconds <= 0:
            raise ValueError("flush_rows and flush_seconds must be positive")
        self.profile = profile
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.builder = RecordBuilder(profile)
        self.swap_builders = swap_builders
        self._decoders: set[DirectionDecoder] = set()
        self._last_flush = time.monotonic()
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._error: BaseException | None = None
        self._closed = False
        self._errors_before = 0
        # opening the sink recovers journals of dead writers: do it here, so that errors
        # (an unwritable directory) surface to the caller
        self._sink = JournaledParquetSink(directory, max_bytes=max_bytes,
                                          max_seconds=max_seconds, prefix=prefix,
                                          compression=compression, fsync=fsync)
        self._thread = threading.Thread(target=self._run, name="iec104-logwriter",
                                        daemon=True)
        self._thread.start()

    @property
    def directory(self) -> Path:
        return self._sink.directory

    @property
    def files(self) -> list[Path]:
        """Parquet files completed so far (the open segment is not among them)."""
        return list(self._sink.files)

    @property
    def recovered(self) -> list[Path]:
        """Files recovered from journals of earlier, dead recorders when opening."""
        return list(self._sink.recovered)

    # -- producer side ------------------------------------------------------------------

    def decoder(self, endpoints: Endpoints) -> DirectionDecoder:
        """A decoder for one direction of one connection, writing into this log."""
        dec = DirectionDecoder(endpoints, self.builder)
        self._decoders.add(dec)
        return dec

    def release(self, decoder: DirectionDecoder) -> None:
        """Forget a decoder whose stream ended (call its ``close`` first)."""
        self._decoders.discard(decoder)

    def event(self, time_ns: int, endpoints: Endpoints, text: str,
              raw: bytes | None = None) -> None:
        """Log a connection event or rule action (a row without APDU; see
        :meth:`~iec104.dissectors.records.RecordBuilder.add_event`)."""
        self.builder.add_event(time_ns, None, endpoints, text, raw)

    def maybe_flush(self, now: float | None = None) -> bool:
        """Flush if ``flush_rows`` rows are waiting or ``flush_seconds`` have passed."""
        builder = self.builder
        if builder.rows >= self.flush_rows:
            self.flush()
            return True
        if now is None:
            now = time.monotonic()
        if now - self._last_flush >= self.flush_seconds:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """Hand the rows decoded so far to the writer thread."""
        self._check()
        self._last_flush = time.monotonic()
        old = self.builder
        if not old.rows:
            return
        if not self.swap_builders:
            self._queue.put(("batch", old.take_batch()))
            return
        new = RecordBuilder(self.profile, first_apdu=old.next_apdu)
        self.builder = new
        for dec in self._decoders:
            dec.builder = new
        self._errors_before += old.errors
        self._queue.put(("rows", old))

    def sync(self, timeout: float | None = 30.0) -> None:
        """Flush, then wait until everything flushed is written to the journal."""
        self.flush()
        done = threading.Event()
        self._queue.put(("sync", done))
        if not done.wait(timeout):
            raise LogWriterError(f"log writer did not catch up within {timeout} s")
        self._check()

    def close(self) -> list[Path]:
        """Flush, complete the open file and stop the writer thread; returns all files
        this writer completed. Idempotent."""
        if not self._closed:
            self._closed = True
            self.flush()
            self._queue.put(("stop", None))
            self._thread.join()
            self._check()
        return self.files

    def _check(self) -> None:
        if self._error is not None:
            raise LogWriterError(f"writing the log into {self.directory} failed: "
                                 f"{self._error}") from self._error

    # -- any thread -----------------------------------------------------------------------

    def dataframe(self, timeout: float | None = 30.0) -> pd.DataFrame:
        """What this writer logged so far (its files plus the open segment).

        Does not flush: call from the producer thread after :meth:`flush`, or rely on the
        ``flush_seconds`` bound. After :meth:`close`, reads the completed files.
        """
        if not self._thread.is_alive():
            return self._sink.read()
        box: list[Any] = []
        done = threading.Event()
        self._queue.put(("read", (box, done)))
        if not done.wait(timeout):
            raise LogWriterError(f"log writer did not answer within {timeout} s")
        if isinstance(box[0], BaseException):
            raise LogWriterError(f"reading the log failed: {box[0]}") from box[0]
        return box[0]  # type: ignore[no-any-return]

    @property
    def errors(self) -> int:
        """Malformed APDUs and undecodable ASDUs logged so far."""
        return self._errors_before + self.builder.errors

    @property
    def stats(self) -> dict[str, int]:
        """Rows written, pending (queued), files completed."""
        return {"rows_written": self._sink.rows, "rows_pending": self.builder.rows,
                "batches_queued": self._queue.qsize(), "files": len(self._sink.files)}

    # -- writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        sink = self._sink
        # the first RecordBatch conversion initialises pyarrow's time zone support (~0.2 s):
        # pay it here rather than on the first flush
        RecordBuilder(self.profile).take_batch()
        while True:
            wait = sink.seconds_to_rotation()
            try:
                kind, arg = self._queue.get(timeout=None if wait is None else wait + 0.01)
            except queue.Empty:
                self._guard(sink.tick)
                continue
            if kind == "rows":
                self._guard(lambda b=arg: sink.write(b.take_batch()))
            elif kind == "batch":
                self._guard(lambda b=arg: sink.write(b))
            elif kind == "sync":
                arg.set()
            elif kind == "read":
                box, done = arg
                try:
                    box.append(sink.read())
                except Exception as exc:  # noqa: BLE001 -- handed to the caller
                    box.append(exc)
                done.set()
            elif kind == "stop":
                self._guard(sink.close)
                return

    def _guard(self, fn: Any) -> None:
        if self._error is not None:
            return  # after a failure, rows are dropped: the producer raises on next flush
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 -- reported to the producer
            log.error("writing the log into %s failed: %s", self._sink.directory, exc)
            self._error = exc
