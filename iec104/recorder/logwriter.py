"""Rows from a live producer -> Parquet, without slowing the producer down.

Theory of operation
-------------------
The producer (the proxy's event loop, or the live-capture thread) decodes bytes into the
current :class:`~iec104.records.columnar.ColumnarBuilder` through
:class:`~iec104.records.decoder.DirectionDecoder` objects obtained from
:meth:`LogWriter.decoder`; that builder only keeps each APDU's octets (the decoding happens
by column when the writer thread takes the batch, off the producer's thread). A *flush*
(every ``flush_rows`` rows or ``flush_seconds``,
whichever comes first; :meth:`LogWriter.maybe_flush`) costs the producer almost nothing:
it swaps in a fresh builder (APDU numbering continues) and queues the full one. A writer
thread turns queued builders into a ``RecordBatch`` and appends it to a
:class:`~iec104.records.journal.JournaledParquetSink`, which rotates files by size and age.

Producers that keep their builder (``swap_builders=False``: the live capture's and the
proxy logger's :class:`~iec104.dissector.StreamDecoder`) record through :attr:`LogWriter.front`:
the builder itself for a given profile, else a
:class:`~iec104.records.profiles.DetectingBuilder` that detects the field sizes per
direction as the dissector does and holds a direction's rows back until it is decided;
:meth:`LogWriter.maybe_flush` decides a direction that held rows back for
``detect_seconds``, so that they reach the log.

So the SIGKILL loss bound is one flush interval: rows decoded since the last flush (at
most ``flush_rows``, at most ``flush_seconds`` old) plus batches still queued for the
writer thread (normally none; a few milliseconds of work each).

A full disk does not stop the producer. When the journal cannot be written (any
:class:`OSError`), the writer thread logs one error line, then *holds* the batches in
memory (up to ``hold_bytes``; beyond that they are counted as lost) and tries again every
``retry_seconds`` (and at each :meth:`LogWriter.sync`). Once it succeeds, the held rows
are written, framed by two ``<origin>: ...`` event rows (the failure, with its time, and
the resumption, with the rows lost), and a warning line says logging resumed. What the
sink had written stays safe (see :mod:`iec104.records.journal`). If the disk is still full at
:meth:`LogWriter.close`, the held rows are lost and ``close`` raises
:class:`LogWriterError` counting them and saying where the rows written before are:
journals that could not be converted are left for :func:`~iec104.records.journal.recover`;
if the outage began on a fresh segment (its first write failed, so it was discarded),
there is no journal and every written row is already in a Parquet file.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec import DEFAULT_PROFILE, Iec104Error, Profile
from ..dissector import front_builder
from ..records.builder import Endpoints, RecordBuilder
from ..records.columnar import ColumnarBuilder
from ..records.decoder import DirectionDecoder
from ..records.journal import JournaledParquetSink
from ..records.profiles import DetectingBuilder, ProfileOverrides

if TYPE_CHECKING:
    import os

    import pandas as pd
    import pyarrow as pa

__all__ = ["LogWriter", "LogWriterError"]

log = logging.getLogger(__name__)


class LogWriterError(Iec104Error, RuntimeError):
    """Writing the log failed (e.g. disk full); the message names the cause."""


class LogWriter:
    """Batch rows from one producer thread into a rotating, crash-safe Parquet directory.

    Args:
        directory: output directory (a dataset readable by ``pandas.read_parquet``).
        profile: ASDU field sizes used to decode: a :class:`~iec104.codec.Profile`; None or
            :class:`~iec104.records.profiles.ProfileOverrides` detect them per direction as
            the dissector does (``swap_builders=False`` only): rows then go through
            :attr:`front`.
        flush_rows: flush when this many rows are waiting.
        flush_seconds: flush rows at the latest this long after the previous flush
            (the producer must call :meth:`maybe_flush` at least that often).
        max_bytes, max_seconds, prefix, compression, fsync: see
            :class:`~iec104.records.journal.JournaledParquetSink`.
        swap_builders: True (default): a flush swaps in a new :attr:`builder` and re-points
            the decoders from :meth:`decoder`, and the writer thread converts the rows (the
            cheapest flush for the producer). False: :attr:`builder` stays the same object
            and a flush converts its rows on the calling thread (~1 µs per row), for
            producers that keep their own reference to the builder, such as
            :class:`~iec104.dissector.StreamDecoder`.
        origin: prefix of the event rows this writer adds itself (``'proxy'`` gives
            ``'proxy: ...'``).
        hold_bytes: while the log cannot be written, hold at most this many bytes of rows
            in memory (default 64 MiB, some 300,000 rows); rows beyond are lost (counted).
        retry_seconds: while the log cannot be written, try again this often (> 0).
        clock: monotonic clock in seconds for flushing, rotation and retries (tests pass a
            fake one).
        session: write ``directory`` as a dataset (``date=`` partitions, the ``capture``
            column with this log session's name; see :mod:`iec104.records.journal`).
        detect_seconds: while detecting field sizes, a direction that has held rows back
            this long (counted from :meth:`maybe_flush` calls) is decided with the
            I-frames it has, so that its rows reach the log (> 0; default 10 s).

    Every method except :meth:`dataframe`, :attr:`stats` and the properties must be called
    from the producer's thread.
    """

    def __init__(self, directory: str | os.PathLike[str], *,
                 profile: Profile | ProfileOverrides | None = DEFAULT_PROFILE,
                 flush_rows: int = 10_000,
                 flush_seconds: float = 1.0, max_bytes: int = 64 << 20,
                 max_seconds: float = 3600.0, prefix: str = "iec104",
                 compression: str = "zstd", fsync: bool = False,
                 swap_builders: bool = True, origin: str = "proxy",
                 hold_bytes: int = 64 << 20, retry_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 session: str | None = None, detect_seconds: float = 10.0) -> None:
        if flush_rows <= 0 or flush_seconds <= 0 or retry_seconds <= 0:
            raise ValueError("flush_rows, flush_seconds and retry_seconds must be positive")
        if swap_builders and not isinstance(profile, Profile):
            raise ValueError("detecting field sizes needs swap_builders=False")
        self.profile = profile if isinstance(profile, Profile) else DEFAULT_PROFILE
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.builder = ColumnarBuilder(self.profile)
        self.front: ColumnarBuilder | DetectingBuilder = front_builder(self.builder, profile)
        """Where rows go: :attr:`builder`, or a DetectingBuilder in front of it."""
        self.swap_builders = swap_builders
        self.detect_seconds = detect_seconds
        self._held_since: float | None = None  # detection holds rows back since
        self.origin = origin
        self.hold_bytes = hold_bytes
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._decoders: set[DirectionDecoder] = set()
        self._last_flush = clock()
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._error: BaseException | None = None
        self._closed = False
        self._errors_before = 0
        # the writer thread's state while the log cannot be written
        self._outage: OSError | None = None
        self._outage_logged = False  # its event row is written
        self._outage_since = (0, 0.0)  # (wall clock ns, clock)
        self._held: collections.deque[pa.RecordBatch] = collections.deque()
        self._held_bytes = 0
        self._held_rows = 0
        self._lost_now = 0
        self._retry_at = 0.0
        self.rows_lost = 0
        """Rows dropped because the log could not be written and the hold was full."""
        self.outages = 0
        """Times writing the log failed (each ends in a resumption or at close)."""
        # opening the sink recovers journals of dead writers: do it here, so that errors
        # (an unwritable directory) surface to the caller
        self._sink = JournaledParquetSink(directory, max_bytes=max_bytes,
                                          max_seconds=max_seconds, prefix=prefix,
                                          compression=compression, fsync=fsync,
                                          retry_seconds=retry_seconds, clock=clock,
                                          session=session)
        self._thread = threading.Thread(target=self._run, name="iec104-logwriter",
                                        daemon=True)
        self._thread.start()

    @property
    def directory(self) -> Path:
        return self._sink.directory

    @property
    def capture(self) -> str | None:
        """The log session's ``capture`` value when writing a dataset (else None)."""
        return self._sink.capture

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
        dec = DirectionDecoder(endpoints, self.front)
        self._decoders.add(dec)
        return dec

    def release(self, decoder: DirectionDecoder) -> None:
        """Forget a decoder whose stream ended (call its ``close`` first)."""
        self._decoders.discard(decoder)

    def event(self, time_ns: int, endpoints: Endpoints, text: str,
              raw: bytes | None = None) -> None:
        """Log a connection event or rule action (a row without APDU; see
        :meth:`~iec104.records.builder.RecordBuilder.add_event`)."""
        self.front.add_event(time_ns, None, endpoints, text, raw)

    def decide(self) -> None:
        """Decide the field sizes of every direction that holds rows back (with the
        I-frames it has), so that its rows go to :attr:`builder`."""
        if type(self.front) is DetectingBuilder:
            self.front.decide_waiting()
        self._held_since = None

    def maybe_flush(self, now: float | None = None) -> bool:
        """Flush if ``flush_rows`` rows are waiting or ``flush_seconds`` have passed;
        decide directions that held rows back for ``detect_seconds``."""
        if now is None:
            now = self._clock()
        if type(self.front) is DetectingBuilder:
            if not self.front.queued:
                self._held_since = None
            elif self._held_since is None:
                self._held_since = now
            elif now - self._held_since >= self.detect_seconds:
                self.decide()
        builder = self.builder
        if builder.rows >= self.flush_rows:
            self.flush()
            return True
        if now - self._last_flush >= self.flush_seconds:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """Hand the rows decoded so far to the writer thread."""
        self._check()
        self._last_flush = self._clock()
        old = self.builder
        if not old.rows:
            return
        if not self.swap_builders:
            self._queue.put(("batch", old.take_batch()))
            return
        new = ColumnarBuilder(self.profile, first_apdu=old.next_apdu)
        self.builder = self.front = new
        for dec in self._decoders:
            dec.builder = new
        self._errors_before += old.errors
        self._queue.put(("rows", old))

    def write(self, batch: pa.RecordBatch) -> None:
        """Hand the writer thread a batch the producer took from :attr:`builder` itself
        (one that records in bulk and cuts its own batches; ``swap_builders=False``)."""
        self._check()
        self._queue.put(("batch", batch))

    def sync(self, timeout: float | None = 30.0) -> None:
        """Flush, then wait until everything flushed is written to the journal (or, while
        the log cannot be written, held in memory after one more try; see
        :attr:`suspended`)."""
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
    def suspended(self) -> bool:
        """True while the log cannot be written (rows are held in memory, see above)."""
        return self._outage is not None

    @property
    def stats(self) -> dict[str, int]:
        """Rows written, pending (queued), held (log not writable), lost; files completed."""
        return {"rows_written": self._sink.rows, "rows_pending": self.builder.rows,
                "batches_queued": self._queue.qsize(), "files": len(self._sink.files),
                "rows_held": self._held_rows, "rows_lost": self.rows_lost,
                "log_outages": self.outages}

    # -- writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        sink = self._sink
        # the first RecordBatch conversion initialises pyarrow's time zone support (~0.2 s):
        # pay it here rather than on the first flush
        RecordBuilder(self.profile).take_batch()
        while True:
            waits = [sink.seconds_to_rotation()]
            if self._outage is not None:
                waits.append(max(0.0, self._retry_at - self._clock()))
            wait = min((w for w in waits if w is not None), default=None)
            try:
                kind, arg = self._queue.get(timeout=None if wait is None else wait + 0.01)
            except queue.Empty:
                self._store(None)
                continue
            if kind == "rows":
                self._store(arg.take_batch())
            elif kind == "batch":
                self._store(arg)
            elif kind == "sync":
                self._store(None, retry_now=True)
                arg.set()
            elif kind == "read":
                box, done = arg
                try:
                    box.append(sink.read())
                except Exception as exc:  # noqa: BLE001 -- handed to the caller
                    box.append(exc)
                done.set()
            elif kind == "stop":
                self._store(None, retry_now=True)
                failure: BaseException | None = None
                if self._outage is not None:
                    failure = OSError(f"{self._outage}; {self._held_rows + self._lost_now} "
                                      "rows held in memory could not be written (lost)")
                try:
                    sink.close()  # always: it releases the journals' locks
                except Exception as exc:  # noqa: BLE001 -- reported to the producer
                    failure = failure or exc
                if failure is not None and self._error is None:
                    self._fatal(OSError(f"{failure}; {self._journals_left()}"))
                return

    def _journals_left(self) -> str:
        """Where the rows written before a failed close are (the outage may have begun on
        a fresh segment: then no journal is left and every written row is in Parquet)."""
        directory = self._sink.directory
        journals = len(list(directory.glob(".*.arrows"))) if directory.is_dir() else 0
        if not journals:
            return "every row written before is in the directory's Parquet files"
        return (f"the rows written after the last Parquet file are in {journals} hidden "
                "journal(s) left in the directory: iec104.recorder.recover() converts them once "
                "there is space")

    def _store(self, batch: pa.RecordBatch | None, retry_now: bool = False) -> None:
        """Write a batch (None: nothing new), or hold it while the log cannot be written."""
        if self._error is not None:
            return  # after a fatal failure, rows are dropped: the producer raises
        if self._outage is not None:
            if retry_now or self._clock() >= self._retry_at:
                self._resume()
            if self._outage is not None:
                if batch is not None:
                    self._hold(batch)
                return
        try:
            if batch is not None:
                self._sink.append(batch)
        except OSError as exc:
            self._suspend(exc)
            self._hold(batch)  # type: ignore[arg-type]
            return
        except Exception as exc:  # noqa: BLE001 -- reported to the producer
            self._fatal(exc)
            return
        self._guard(self._sink.tick)

    def _hold(self, batch: pa.RecordBatch) -> None:
        if self._held_bytes + batch.nbytes > self.hold_bytes:
            self._lost_now += batch.num_rows
            self.rows_lost += batch.num_rows
            return
        self._held.append(batch)
        self._held_bytes += batch.nbytes
        self._held_rows += batch.num_rows

    def _suspend(self, exc: OSError) -> None:
        self._outage = exc
        self._outage_logged = False
        self._outage_since = (time.time_ns(), self._clock())
        self._retry_at = self._clock() + self.retry_seconds
        self.outages += 1
        log.error("writing the log into %s failed (%s); holding rows in memory (up to %d "
                  "MiB) and trying again every %g s", self._sink.directory, exc,
                  self.hold_bytes >> 20, self.retry_seconds)

    def _resume(self) -> None:
        """Try to write the held rows; on success the outage is over."""
        assert self._outage is not None
        since_ns, since = self._outage_since
        try:
            if not self._outage_logged:
                self._sink.append(self._event_batch(
                    since_ns, f"writing the log failed ({self._outage}); rows are held in "
                              "memory until it can be written"))
                self._outage_logged = True
            while self._held:
                batch = self._held[0]
                self._sink.append(batch)
                self._held.popleft()
                self._held_bytes -= batch.nbytes
                self._held_rows -= batch.num_rows
            seconds = self._clock() - since
            self._sink.append(self._event_batch(
                time.time_ns(), f"writing the log resumed after {seconds:.1f} s; "
                                f"{self._lost_now} rows were lost"))
        except OSError as exc:
            self._outage = exc
            self._retry_at = self._clock() + self.retry_seconds
            return
        log.warning("writing the log into %s resumed after %.1f s; %d rows were lost",
                    self._sink.directory, seconds, self._lost_now)
        self._outage = None
        self._lost_now = 0

    def _event_batch(self, time_ns: int, text: str) -> pa.RecordBatch:
        """One event row about the log itself (no connection: null endpoints)."""
        builder = RecordBuilder(self.profile)
        builder.add_event(time_ns, None, _NO_ENDPOINTS, f"{self.origin}: {text}")
        return builder.take_batch()

    def _guard(self, fn: Any) -> None:
        if self._error is not None:
            return  # after a failure, rows are dropped: the producer raises on next flush
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 -- reported to the producer
            self._fatal(exc)

    def _fatal(self, exc: BaseException) -> None:
        log.error("writing the log into %s failed: %s", self._sink.directory, exc)
        self._error = exc


_NO_ENDPOINTS = Endpoints(None, None, None, None, None, None)  # type: ignore[arg-type]
"""Endpoints of an event row about the log itself, not about a connection."""
