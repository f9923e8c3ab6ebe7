"""The proxy's log in a separate process: decoding and Parquet off the forwarding path.

Theory of operation
-------------------
Decoding, building rows and writing Parquet cost some 20 µs per APDU of Python work. In the
proxy's process they share the event loop and the GIL with forwarding, which puts them on
the round-trip path (p99 1.2 ms with logging against 0.26 ms without). So the proxy keeps
only the forwarding and hands the raw bytes, with their receive times, to a *logger
process* (:func:`main` in a new interpreter) that runs a
:class:`~iec104.recorder.logwriter.LogWriter` and decodes with the dissector's stage: a
:class:`~iec104.dissector.StreamDecoder` holds one direction decoder per direction of each
connection, and large pipe reads go through the dissector's fast lane (framed per
direction at once, recorded by column; see :class:`_Logger`), with the field sizes
detected per direction as ``iec104 convert`` detects them unless a profile was given. The
rows, flush bounds, journal, rotation, full-disk holding and ``proxy:`` event rows are
exactly those of the LogWriter, only in another process.

Pipe (proxy -> logger), one message per item, in the order things happened::

    kind: 1 octet, length: 4 octets (little endian), payload
    b"D"  data: time_ns (8), stream (4), direction (1: 0 c2s, 1 s2c), then the octets
    b"C"  control: a pickled tuple ("open", stream, endpoints), ("event", stream,
          direction, time_ns, text, raw), ("end", stream), ("note", time_ns, text),
          ("gap", stream, direction, time_ns, octets), ("flush",), ("sync", id),
          ("read", id), ("close", id)

The proxy collects messages for up to 100 ms (or 256 KiB) and writes them at once, so that
the pipe costs one system call and one wake-up of the logger per 100 ms of traffic, off the
path of a request and its answer. It never blocks on the pipe: writes are non-blocking,
what the pipe does not take
waits in memory (:attr:`LogProcess.backlog`) and is written when the pipe drains (the event
loop's ``add_writer``). The hot path (:meth:`LogProcess.data`) packs one message head and
appends it and the octets to one ``bytearray``; the pipe takes its front with one
``os.write`` per 100 ms.

Overload: beyond ``max_backlog`` octets the proxy pauses reading from its sockets (TCP flow
control), so a logger that is only slower than the traffic loses nothing. A logger that
takes *nothing* from the pipe for ``stall_seconds`` while reading is paused (stopped,
swapped out, starved of CPU) is *stalled*: reading resumes at once, and what is received
from then on is forwarded but not logged (counted in :attr:`LogProcess.octets_lost` per
direction) until the pipe has taken half the backlog. Then logging resumes behind a ``gap``
row in each direction that lost octets and a ``proxy: the logger process ... took nothing
from the pipe ...`` event row, and :meth:`LogProcess.close` raises :class:`LogWriterError`
at the end (the log is incomplete). So forwarding waits for the logger at most
``stall_seconds`` at a time.

The logger runs at niceness 10: where it shares a CPU with the proxy, the scheduler favours
the proxy's wake-up on a received segment, and the logger's work (it only has to keep up on
average, within ``max_backlog``) fills the time between. Niceness alone does not make a
wake-up preempt it: Linux's EEVDF lets a task that began a slice run it out (about 1.4 ms
on 2 CPUs), and a pipe read of 100 ms of traffic at 10,000 APDU/s is 1-5 ms of decoding.
So the logger decodes in *bounded slices*: after every ``slice_octets`` (512 octets, some
0.1 ms of decoding APDU by APDU) it gives the CPU back (``os.sched_yield``; with nothing
else waiting on its CPU that is a system call of well under a microsecond), and a task
that woke on its CPU meanwhile (the proxy, its peers, anything) runs at once instead of
waiting for the whole read. Not sliced: pipe reads that take the fast lane (bulk
traffic; they yield after each batch of rows), the conversion of ``flush_rows`` rows into
a batch when they are reached (some 10 ms per 10,000, once a second at 10,000 APDU/s) and
the writer thread's Parquet writes (bench/README, issue 14 fourth round).

Answers (logger -> proxy) are length-prefixed pickles on a second pipe: ``("status",
stats)`` at most every ``flush_seconds / 2`` (at once when the writer's ``suspended`` or
``errors`` change) and before every reply, so that the proxy is not woken per pipe write, ``("reply", id, value, error)`` to
sync/read/close, ``("ready", recovered, error)`` once the writer is open.

A dying logger never stops forwarding. The proxy notices it (end of the answer pipe, a
broken data pipe, or the periodic check), says so on stderr, drops what it received while
no logger runs (counted) and starts a new logger at most once per ``restart_seconds``. The
new logger recovers the dead one's journal (as any recorder opening the directory does),
so the log up to the last flush before the death stays readable, and its first row is a
``proxy: the logger process ... died`` event with the octets not logged. The decoders start
afresh: an APDU cut by the restart is logged as malformed. While the new logger starts
(about half a second to import pyarrow) heavy traffic can fill ``max_backlog``; reading
then pauses until it catches up, as under any overload. If the logger is dead when the
proxy stops, one is started to write that event row; :meth:`LogProcess.close` then raises
:class:`LogWriterError` naming the deaths (the ``iec104 proxy`` exit status 1: the log is
incomplete).

The logger dies with the proxy (``PR_SET_PDEATHSIG``): a SIGKILL of the proxy leaves the
same journal a crashed in-process writer would, for :func:`~iec104.records.journal.recover`.
It ignores SIGINT and SIGTERM (a terminal's Ctrl-C reaches the whole process group): it
stops when the proxy closes the pipe, after writing everything.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..dissector import FastLane, StreamDecoder
from ..records.builder import Endpoints
from .logwriter import LogWriter, LogWriterError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LogProcess"]

log = logging.getLogger(__name__)

_ENTRY = "import sys; from iec104.recorder.logprocess import main; sys.exit(main(sys.argv[1:]))"
_HEADER = struct.Struct("<cI")
_DATA = struct.Struct("<qIB")
_DATA_MESSAGE = struct.Struct("<cIqIB")
"""_HEADER and _DATA in one: the proxy packs a data message's head with one call."""
_DIRECTIONS = ("c2s", "s2c")
_PIPE_SIZE = 1 << 20
"""Pipe capacity asked for (Linux caps it at /proc/sys/fs/pipe-max-size, 1 MiB by default)."""
_F_SETPIPE_SZ = 1031
_SEND_DELAY = 0.1
"""Seconds the proxy collects messages before writing them to the pipe: one write and one
wake-up of the logger per 100 ms, not per TCP read (the rows' times are the receive times).
Each wake-up costs the logger a fixed burst of CPU (run cold), and a wake-up of the proxy
or of its peers that lands on the CPU during a burst waits for it: the tail of the round
trip. Against 20 ms: the logger's CPU at idle 11 µs per APDU instead of 17, and wake-ups
of the round trip's tasks delayed by it 10 instead of 47 over 3 x 3,000 round trips
(bench/README, issue 14 third round). A later write only delays rows by 0.1 s on their way
to the log (a SIGKILL of the proxy loses them as it loses the backlog)."""
_SEND_NOW = 256 << 10
"""Octets collected beyond which they are written at the next event-loop pass."""
_NICE = 10
"""The logger's niceness (added to the proxy's; see the module docstring)."""
_SLICE_OCTETS = 512
"""Octets of data messages the logger decodes APDU by APDU between two ``os.sched_yield``
calls: some 20 short APDUs, about 0.1 ms of its CPU (3-5 µs per APDU run cold), about the
longest a task woken on its CPU waits for it (see the module docstring). Against 1 KiB:
wake-ups of a round trip's tasks delayed more than 0.2 ms behind the logger 19 against
38 (6 against 16 ms in all) in the same runs (bench/README, issue 14 fourth round)."""
_BULK_OCTETS = 32 << 10
"""Pipe reads from this size (some 1,000 short APDUs) take the fast lane: below it, its
fixed cost per read (numpy set-up, run cold after sleeping) outweighs what it saves (an
idle proxy's logger, reading every 20 ms, cost 21-28 µs of CPU per APDU through it
against 17-20 APDU by APDU, bench/proxy.py, same runs)."""


def _control(*item: Any) -> bytes:
    payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(b"C", len(payload)) + payload


def _answer(*item: Any) -> bytes:
    payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack("<I", len(payload)) + payload


def _widen(fd: int) -> None:
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass  # a smaller pipe only means more wake-ups


class LogProcess:
    """The proxy's side of a logger process (see the module docstring).

    Args:
        directory: the log directory (see :class:`~iec104.recorder.logwriter.LogWriter`).
        writer_args: keyword arguments of the LogWriter (profile, flush_rows, ...).
        max_backlog: octets waiting for the pipe beyond which :attr:`on_backlog` is told
            to pause reading (it is told to resume at half).
        restart_seconds: a dead logger is restarted at most this often (> 0).
        stall_seconds: while reading is paused for the backlog, a logger that takes
            nothing from the pipe for this long is *stalled*: reading resumes and data is
            dropped (counted) until the backlog is down to half (> 0).
        bulk_octets: pipe reads of at least this many octets go through the dissector's
            fast lane, smaller ones APDU by APDU (the same rows; see :class:`_Logger`).
        slice_octets: the logger gives its CPU back (``os.sched_yield``) after decoding
            this many octets APDU by APDU, and after each batch of the fast lane (>= 1).

    Create it with :meth:`open` (blocks until the logger's writer is open: it raises what
    opening a LogWriter raises), then :meth:`attach` it to the event loop. Every method
    must be called from that loop's thread.
    """

    def __init__(self, directory: str | os.PathLike[str], writer_args: dict[str, Any], *,
                 max_backlog: int = 4 << 20, restart_seconds: float = 1.0,
                 stall_seconds: float = 2.0, bulk_octets: int = _BULK_OCTETS,
                 slice_octets: int = _SLICE_OCTETS) -> None:
        self.directory = Path(directory)
        self.bulk_octets = bulk_octets
        if slice_octets < 1:
            raise ValueError("slice_octets must be at least 1")
        self.slice_octets = slice_octets
        self.writer_args = dict(writer_args)
        self.flush_seconds = float(self.writer_args.get("flush_seconds", 1.0))
        self.max_backlog = max_backlog
        self.restart_seconds = restart_seconds
        self.stall_seconds = stall_seconds
        self.on_backlog: Callable[[bool], None] = lambda paused: None
        self.on_failure: Callable[[LogWriterError], None] = lambda exc: None
        self.failure: LogWriterError | None = None
        """Writing the log failed for good (not a full disk); no logger is restarted."""
        self.recovered: list[Path] = []
        self.files: list[Path] = []
        self.deaths = 0
        """Times the logger process died (each is reported on stderr and in the log)."""
        self.octets_lost = 0
        """Octets received but not logged: while no logger ran, or while a stalled logger
        left the backlog full (see :attr:`stalls`)."""
        self.stalls = 0
        """Times the logger took nothing for ``stall_seconds`` while the backlog was full
        (forwarding went on without logging until it caught up)."""
        self._status: dict[str, Any] = {}
        self._endpoints: dict[int, dict[str, Endpoints]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._data_fd = -1
        self._reply_fd = -1
        # messages not yet taken by the pipe (whole messages, except that the first may
        # have been written in part)
        self._out = bytearray()
        self._out_limit = min(_SEND_NOW, max_backlog)
        self._written = 0  # octets the pipe took so far (progress, for the stall check)
        self._paused = False
        self._stall_timer: asyncio.TimerHandle | None = None
        self._stall_since: tuple[int, float, int] | None = None  # (wall ns, monotonic, pid)
        # while stalled: octets dropped per (stream, direction), with the first one's time
        self._dropped: dict[tuple[int, int], list[int]] = {}
        self._send_scheduled = False
        self._send_timer: asyncio.TimerHandle | None = None
        self._writer_waiting = False
        self._inbox = bytearray()
        self._answers: dict[int | str, tuple[Any, BaseException | None]] = {}
        self._next_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dead_since: tuple[int, float] | None = None  # (wall ns, monotonic)
        self._lost_now = 0
        self._restart: asyncio.TimerHandle | None = None
        self._started_at = 0.0
        self._closed = False

    # -- lifetime -----------------------------------------------------------------------------

    @classmethod
    def spawn(cls, directory: str | os.PathLike[str], writer_args: dict[str, Any],
              **kwargs: Any) -> LogProcess:
        """Start the logger process (call from the thread that will run the event loop:
        the logger dies with the thread that started it). :meth:`wait_ready` next."""
        self = cls(directory, writer_args, **kwargs)
        self._start()
        return self

    def _start(self) -> None:
        data_r, data_w = os.pipe()
        reply_r, reply_w = os.pipe()
        _widen(data_w)
        root = logging.getLogger()
        fmt = next((h.formatter._fmt for h in root.handlers  # noqa: SLF001
                    if h.formatter is not None and h.formatter._fmt), None)  # noqa: SLF001
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root,
                                                          env.get("PYTHONPATH")]))
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _ENTRY, str(data_r),
                 str(reply_w), str(os.getpid())],
                pass_fds=(data_r, reply_w), stdin=subprocess.DEVNULL, env=env)
        finally:
            os.close(data_r)
            os.close(reply_w)
        os.set_blocking(data_w, False)
        os.set_blocking(reply_r, False)
        self._data_fd, self._reply_fd = data_w, reply_r
        self._inbox.clear()
        self._started_at = time.monotonic()
        # a restarted logger numbers APDUs on from what its predecessors wrote
        self._put(_control("config", str(self.directory), self.writer_args,
                           root.getEffectiveLevel(), fmt, self.deaths > 0, self.bulk_octets,
                           self.slice_octets))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the logger's writer is open; raises what opening it raised."""
        self._send_all(timeout)
        value, error = self._wait("ready", timeout)
        if error is not None:
            self._reap()
            self._closed = True  # nothing to close: the writer never opened
            raise error
        self.recovered = [Path(p) for p in value]

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve the pipes from ``loop`` (answers, writes the pipe did not take at once)."""
        self._loop = loop
        loop.add_reader(self._reply_fd, self._on_answers)
        self._send()

    def detach(self) -> None:
        """Stop serving the pipes from the event loop (before :meth:`close` in a thread)."""
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        self._send_scheduled = False
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if self._loop is not None:
            if self._reply_fd >= 0:
                self._loop.remove_reader(self._reply_fd)
            if self._writer_waiting:
                self._loop.remove_writer(self._data_fd)
                self._writer_waiting = False
            self._loop = None

    def close(self, timeout: float = 300.0) -> list[Path]:
        """Write everything, stop the logger; returns the files it completed. Raises
        :class:`LogWriterError` when the log could not be written completely. Idempotent."""
        if self._closed:
            return self.files
        self._closed = True
        if self._restart is not None:
            self._restart.cancel()
        if self._proc is None and self.failure is None:
            self._start()  # dead: start one to log the death and recover its journal
            self._note_death()
        if self._proc is None:
            raise self.failure  # type: ignore[misc]
        failure: BaseException | None = None
        try:
            files, failure = self._request("close", timeout)
            self.files = [Path(p) for p in files or ()]
        except LogWriterError as exc:
            failure = exc
        self._reap()
        if (self.deaths or self.stalls) and failure is None:
            what = " and ".join(
                text for n, text in ((self.deaths, f"died {self.deaths} time(s)"),
                                     (self.stalls, f"stalled {self.stalls} time(s)")) if n)
            failure = LogWriterError(
                f"the logger process {what}; {self.octets_lost} octets received meanwhile "
                f"are not in the log {self.directory}")
        if failure is not None:
            if isinstance(failure, LogWriterError):
                raise failure
            raise LogWriterError(f"writing the log into {self.directory} failed: "
                                 f"{failure}") from failure
        return self.files

    def _reap(self) -> None:
        loop = self._loop
        self.detach()
        self._loop = loop
        for fd in (self._data_fd, self._reply_fd):
            if fd >= 0:
                os.close(fd)
        self._data_fd = self._reply_fd = -1
        if self._proc is not None:
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    # -- what the proxy logs (the hot path: append, schedule one write per loop pass) --------

    def open(self, stream: int, endpoints: dict[str, Endpoints]) -> None:
        """A connection's endpoints (before any of its data, events or end)."""
        self._endpoints[stream] = endpoints
        self._put(_control("open", stream, endpoints))

    def data(self, stream: int, direction: str, time_ns: int, data: bytes) -> None:
        """Octets of one direction received at ``time_ns`` (the proxy forwarded them)."""
        if self._proc is None:
            self._lost_now += len(data)
            self.octets_lost += len(data)
            return
        back = direction == "s2c"
        if self._stall_since is not None:
            self._drop(stream, back, time_ns, len(data))
            return
        out = self._out
        out += _DATA_MESSAGE.pack(b"D", _DATA.size + len(data), time_ns, stream, back)
        out += data
        if not self._send_scheduled or len(out) > self._out_limit:
            self._queued()

    def event(self, stream: int, direction: str, time_ns: int, text: str,
              raw: bytes | None = None) -> None:
        """An event row (rule action, FIN, upstream unreachable, ...) of a connection."""
        self._put(_control("event", stream, direction, time_ns, text, raw))

    def end(self, stream: int) -> None:
        """The connection ended: its decoders log what is left (a truncated APDU)."""
        self._endpoints.pop(stream, None)
        for back in (0, 1):
            self._gap(stream, back)
        self._put(_control("end", stream))

    def flush(self) -> None:
        """Ask the logger to hand its rows to its writer thread now."""
        self._put(_control("flush"))

    def sync(self, timeout: float = 30.0) -> None:
        """Wait until everything sent so far is written (or held; see :attr:`suspended`)."""
        _, error = self._request("sync", timeout)
        if error is not None:
            raise LogWriterError(str(error)) from error

    def dataframe(self, timeout: float = 60.0) -> pd.DataFrame:
        """What was logged so far (after :meth:`close`: the files written)."""
        if self._closed:
            from ..records.reader import load
            return load(self.files)
        value, error = self._request("read", timeout)
        if error is not None:
            raise LogWriterError(f"reading the log failed: {error}") from error
        return value

    def check(self) -> None:
        """Notice a logger that died without the pipes saying so yet (call periodically)."""
        if self._proc is not None and self._proc.poll() is not None:
            self._died()

    @property
    def pid(self) -> int | None:
        """The logger process's id (None while none runs)."""
        return None if self._proc is None else self._proc.pid

    @property
    def backlog(self) -> int:
        """Octets waiting for the pipe."""
        return len(self._out)

    @property
    def suspended(self) -> bool:
        """True while the log cannot be written (the logger holds rows in memory)."""
        return bool(self._status.get("suspended"))

    @property
    def errors(self) -> int:
        return int(self._status.get("errors", 0))

    @property
    def stats(self) -> dict[str, int]:
        """The logger's counters as of its last status, plus pipe backlog and deaths."""
        stats = {k: v for k, v in self._status.items() if k not in ("suspended", "errors")}
        stats.update(pipe_backlog_bytes=len(self._out), logger_deaths=self.deaths,
                     logger_stalls=self.stalls, octets_not_logged=self.octets_lost)
        return stats

    # -- the pipe --------------------------------------------------------------------------------

    def _put(self, message: bytes) -> None:
        if self._proc is None:
            return
        self._out += message
        self._queued()

    def _queued(self) -> None:
        """Messages were added: pause reading beyond ``max_backlog``, and have them written
        in ``_SEND_DELAY`` (at the next pass beyond ``_SEND_NOW`` octets)."""
        size = len(self._out)
        if not self._paused and self._stall_since is None and size > self.max_backlog:
            self._paused = True
            self.on_backlog(True)
            self._watch_stall()
        if not self._writer_waiting and self._loop is not None:
            if not self._send_scheduled:
                self._send_scheduled = True
                self._send_timer = self._loop.call_later(_SEND_DELAY, self._send)
            elif size > _SEND_NOW and self._send_timer is not None:
                self._send_timer.cancel()
                self._send_timer = None
                self._loop.call_soon(self._send)

    def _send(self) -> None:
        """Write what the pipe takes now; the rest when it drains (never blocks)."""
        self._send_scheduled = False
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        out = self._out
        if not out or self._data_fd < 0:
            return
        try:
            n = os.write(self._data_fd, out)
        except BlockingIOError:
            n = 0
        except OSError:  # EPIPE: the logger is gone
            self._died()
            return
        if n:
            del out[:n]  # cheap: a bytearray drops its head by moving its start
            self._written += n
        if out and not self._writer_waiting and self._loop is not None:
            self._writer_waiting = True
            self._loop.add_writer(self._data_fd, self._drained)
        if len(out) <= self.max_backlog // 2:
            if self._stall_since is not None:
                self._caught_up()
            if self._paused:
                self._paused = False
                self.on_backlog(False)

    def _drained(self) -> None:
        assert self._loop is not None
        self._loop.remove_writer(self._data_fd)
        self._writer_waiting = False
        self._send()

    def _send_all(self, timeout: float) -> None:
        """Write everything waiting, blocking (for sync, read and close)."""
        deadline = time.monotonic() + timeout
        while self._out and self._data_fd >= 0:
            self._send()
            if self._out:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LogWriterError(f"the logger did not catch up within {timeout} s")
                select.select([], [self._data_fd], [], left)

    def _request(self, op: str, timeout: float) -> tuple[Any, BaseException | None]:
        if self._proc is None:
            raise LogWriterError(f"the logger process is not running ({self.deaths} deaths)")
        self._next_id += 1
        ident = self._next_id
        self._put(_control(op, ident))
        self._send_all(timeout)
        return self._wait(ident, timeout)

    def _wait(self, key: Any, timeout: float) -> tuple[Any, BaseException | None]:
        deadline = time.monotonic() + timeout
        while key not in self._answers:
            if self._proc is None or self._reply_fd < 0:
                raise LogWriterError("the logger process died")
            left = deadline - time.monotonic()
            if left <= 0:
                raise LogWriterError(f"the logger did not answer within {timeout} s")
            select.select([self._reply_fd], [], [], min(left, 0.5))
            self._on_answers()
            if self._proc is not None and self._proc.poll() is not None \
                    and key not in self._answers:
                self._on_answers()  # what it said before dying
                if key not in self._answers:
                    self._died()
        return self._answers.pop(key)

    def _on_answers(self) -> None:
        try:
            chunk = os.read(self._reply_fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._died()
            return
        inbox = self._inbox
        inbox += chunk
        while len(inbox) >= 4:
            (size,) = struct.unpack_from("<I", inbox)
            if len(inbox) < 4 + size:
                break
            item = pickle.loads(bytes(inbox[4:4 + size]))
            del inbox[:4 + size]
            if item[0] == "status":
                self._status = item[1]
            elif item[0] == "ready":
                self._answers["ready"] = (item[1], item[2])
            elif item[0] == "failed":
                self.failure = LogWriterError(f"writing the log into {self.directory} "
                                              f"failed: {item[1]}")
                self.on_failure(self.failure)
            else:
                _, ident, value, error = item
                self._answers[ident] = (value, error)

    # -- a stalled logger ----------------------------------------------------------------------

    def _watch_stall(self) -> None:
        """Reading is paused for the backlog: check in ``stall_seconds`` that the pipe moved."""
        if self._loop is None or self._stall_timer is not None:
            return
        self._stall_timer = self._loop.call_later(self.stall_seconds, self._check_stall,
                                                  self._written)

    def _check_stall(self, written: int) -> None:
        self._stall_timer = None
        if not self._paused or self._proc is None:
            return
        if self._written != written:  # slow, not stalled: flow control goes on
            self._watch_stall()
            return
        self.stalls += 1
        self._stall_since = (time.time_ns(), time.monotonic(), self._proc.pid)
        log.error("the logger process (pid %d) took nothing from the pipe for %g s with %d "
                  "octets waiting; forwarding goes on, unlogged, until it catches up",
                  self._proc.pid, self.stall_seconds, len(self._out))
        self._paused = False
        self.on_backlog(False)

    def _drop(self, stream: int, back: bool, time_ns: int, size: int) -> None:
        """Count octets not logged while the logger is stalled (one gap per direction)."""
        self.octets_lost += size
        dropped = self._dropped.get((stream, back))
        if dropped is None:
            self._dropped[(stream, back)] = [time_ns, size]
        else:
            dropped[1] += size

    def _gap(self, stream: int, back: int) -> None:
        """Queue the gap row of what was dropped from one direction (if anything)."""
        dropped = self._dropped.pop((stream, back), None)
        if dropped is not None:
            self._put(_control("gap", stream, back, dropped[0], dropped[1]))

    def _caught_up(self) -> None:
        """The stalled logger took half the backlog: log again, after gap and event rows."""
        assert self._stall_since is not None
        since_ns, since, pid = self._stall_since
        self._stall_since = None
        lost = sum(size for _, size in self._dropped.values())
        for stream, back in list(self._dropped):
            self._gap(stream, back)
        self._put(_control("note", since_ns, (
            f"the logger process (pid {pid}) took nothing from the pipe for "
            f"{self.stall_seconds:g} s with the backlog full; {lost} octets received in the "
            f"{time.monotonic() - since:.1f} s until it caught up are not logged (a gap row "
            "in each direction they were cut from)")))
        log.warning("the logger process caught up; %d octets received meanwhile are not "
                    "logged", lost)

    def _end_stall(self) -> None:
        """The logger died while stalled: what it missed counts as lost with its death."""
        if self._stall_since is not None:
            self._stall_since = None
            self._lost_now += sum(size for _, size in self._dropped.values())
            self._dropped.clear()

    # -- a dead logger -------------------------------------------------------------------------

    def _died(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            code = proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        self._proc = None
        if self.failure is not None:  # it stopped after reporting the failure
            self._reap()
            return
        self.deaths += 1
        lost = len(self._out)
        self._out.clear()
        self._end_stall()
        self._reap()
        self._lost_now += lost
        self.octets_lost += lost
        self._dead_since = (time.time_ns(), time.monotonic())
        self._dead_how = f"the logger process (pid {proc.pid}) died ({how})"
        log.error("%s; forwarding goes on; logging restarts within %g s", self._dead_how,
                  self.restart_seconds)
        if self._paused:
            self._paused = False
            self.on_backlog(False)
        if self._loop is not None and not self._closed and self.failure is None:
            wait = max(0.0, self._started_at + self.restart_seconds - time.monotonic())
            self._restart = self._loop.call_later(wait, self._restart_now)

    def _restart_now(self) -> None:
        self._restart = None
        if self._closed or self._proc is not None:
            return
        try:
            self._start()
        except OSError as exc:
            log.error("cannot restart the logger process: %s; trying again in %g s", exc,
                      self.restart_seconds)
            assert self._loop is not None
            self._restart = self._loop.call_later(self.restart_seconds, self._restart_now)
            return
        assert self._loop is not None
        self._loop.add_reader(self._reply_fd, self._on_answers)
        self._note_death()
        for stream, endpoints in self._endpoints.items():
            self._put(_control("open", stream, endpoints))
        log.warning("logger process restarted (pid %s)", self.pid)

    def _note_death(self) -> None:
        """Queue the event row about the last death (for the logger just started)."""
        if self._dead_since is None:
            return
        since_ns, since = self._dead_since
        self._put(_control("note", since_ns, (
            f"{self._dead_how}; {self._lost_now} octets received in the "
            f"{time.monotonic() - since:.1f} s until a new logger ran are not logged")))
        self._dead_since = None
        self._lost_now = 0


# -- the logger process -------------------------------------------------------------------------


class _Half(NamedTuple):
    """One direction of a proxied connection: the key of its payloads in the fast lane."""

    stream: int
    direction: int
    """0: c2s, 1: s2c."""


class _Logger:
    """The logger's loop: read the pipe, decode into a LogWriter, answer.

    Decoding is the dissector's (see :mod:`iec104.dissector`). A large pipe read (at
    least ``bulk_octets``: traffic in bulk) takes its fast lane: the data messages wait
    one lane per direction (the proxy hands over each direction's octets in order, as the
    reassembler does for a capture's in-order segments), numbered in pipe order; before
    any control message and at the end of the read the lanes are framed at once and
    recorded in bulk, in pipe order across directions, with no frame number. A small read
    (a few round trips) goes to the direction decoders message by message, the dissector's
    event path: the same rows. Field sizes are detected per direction as
    ``convert`` does (:class:`~iec104.records.profiles.DetectingBuilder`) unless the
    proxy was given a profile (the LogWriter bounds how long detection holds rows back;
    a flush, sync or read asks for everything received: detection decides at once).
    """

    def __init__(self, data_fd: int, reply_fd: int) -> None:
        self.data_fd = data_fd
        self.reply_fd = reply_fd
        self.inbox = bytearray()
        self.writer: LogWriter | None = None
        self.streams: StreamDecoder | None = None
        self.lane: FastLane | None = None
        self.halves: dict[tuple[int, int], _Half] = {}  # the open streams' directions
        self.seq = 0  # data messages so far (the order of the lanes' payloads)
        self.bulk_octets = _BULK_OCTETS
        self.slice_octets = _SLICE_OCTETS
        self.sliced = 0  # octets decoded APDU by APDU since the logger last yielded
        self.yields = 0  # times it gave the CPU back (in its status: ``logger_yields``)
        self.endpoints: dict[int, dict[str, Endpoints]] = {}
        self.flush_seconds = 1.0
        self.last_status: dict[str, Any] = {}
        self.next_status = 0.0  # time.monotonic() of the next periodic status

    def answer(self, *item: Any) -> None:
        data = _answer(*item)
        while data:
            n = os.write(self.reply_fd, data)
            data = data[n:]

    def status(self, force: bool = False) -> None:
        """Tell the proxy the writer's counters: when ``force``d, when ``suspended`` or
        ``errors`` changed, else at most every ``flush_seconds / 2``."""
        writer = self.writer
        if writer is None:
            return
        now = time.monotonic()
        last = self.last_status
        if not force and now < self.next_status and \
                (writer.suspended, writer.errors) == (last.get("suspended"), last.get("errors")):
            return
        self.next_status = now + self.flush_seconds / 2
        status = dict(writer.stats, suspended=writer.suspended, errors=writer.errors,
                      logger_yields=self.yields)
        if status != last:
            self.last_status = status
            self.answer("status", status)

    def run(self) -> None:
        try:
            self._run()
        except LogWriterError as exc:  # fatal (not a full disk: that only suspends)
            self.answer("failed", exc)
            if self.writer is not None:
                try:
                    self.writer.close()
                except LogWriterError:
                    pass  # the same failure, already reported

    def _run(self) -> None:
        while True:
            timeout = self.flush_seconds / 2 if self.writer is not None else None
            ready, _, _ = select.select([self.data_fd], [], [], timeout)
            if ready:
                chunk = os.read(self.data_fd, 1 << 20)
                if not chunk:  # the proxy is gone without closing: write everything
                    if self.writer is not None:
                        self.writer.close()
                    return
                self.inbox += chunk
                if self.handle():
                    return
            if self.writer is not None:
                self.writer.maybe_flush()
                self.status()

    def handle(self) -> bool:
        """Process the complete messages in the inbox; True after ``close``."""
        buf = bytes(self.inbox)
        view = memoryview(buf)
        pos = 0
        halves = self.halves
        lane = self.lane if len(buf) >= self.bulk_octets else None
        streams = self.streams
        writer = self.writer
        seq = self.seq
        sliced, slice_octets = self.sliced, self.slice_octets
        try:
            while len(buf) - pos >= _HEADER.size:
                kind, size = _HEADER.unpack_from(buf, pos)
                end = pos + _HEADER.size + size
                if end > len(buf):
                    break
                start = pos + _HEADER.size
                pos = end
                if kind == b"D":
                    time_ns, stream, back = _DATA.unpack_from(buf, start)
                    half = halves.get((stream, back))
                    if half is None:
                        continue
                    if lane is not None:
                        seq += 1
                        lane.add(half, buf[start + _DATA.size:end], seq, time_ns)
                        continue
                    # the event path (buf is immutable: the framer may keep views of it)
                    streams.decoder(stream, back).feed(  # type: ignore[union-attr]
                        time_ns, None, view[start + _DATA.size:end])
                    if writer.builder.rows >= writer.flush_rows:  # type: ignore[union-attr]
                        writer.flush()  # type: ignore[union-attr]
                    sliced += end - start
                    if sliced >= slice_octets:  # a bounded slice: see the module docstring
                        sliced = 0
                        self.give_way()
                    continue
                self.seq = seq
                self.record()  # what came before, before what this message records
                if self.control(pickle.loads(view[start:end])):
                    return True
                streams, writer = self.streams, self.writer
                lane = self.lane if len(buf) >= self.bulk_octets else None
        finally:
            self.inbox = bytearray(view[pos:])
            self.seq = seq
            self.sliced = sliced
        self.record()
        return False

    def record(self) -> None:
        """Frame and record the payloads waiting in the lanes; full batches to the writer."""
        if self.lane is not None and self.writer is not None:
            for batch in self.lane.flush():
                self.writer.write(batch)
                self.give_way()

    def give_way(self) -> None:
        """End a bounded slice: let a task that woke on this CPU run first."""
        os.sched_yield()
        self.yields += 1

    def control(self, item: tuple[Any, ...]) -> bool:
        op = item[0]
        writer = self.writer
        if op == "config":
            _, directory, args, level, fmt, resume, self.bulk_octets, self.slice_octets = item
            logging.basicConfig(level=level, format=fmt or logging.BASIC_FORMAT)
            try:
                # the lane records into the writer's one builder and cuts its own batches
                self.writer = LogWriter(directory, swap_builders=False, **args)
                if resume:
                    self.writer.builder.next_apdu = _next_apdu(self.writer.directory,
                                                               self.writer.capture)
            except Exception as exc:  # noqa: BLE001 -- handed to the proxy
                self.answer("ready", None, exc)
                return True
            self.streams = StreamDecoder(self.writer.front)
            self.lane = FastLane(self.streams, self.writer.flush_rows, numbered=False)
            self.flush_seconds = self.writer.flush_seconds
            # start-up's objects (pyarrow, numpy, the codec's tables: some 68,000) are never
            # garbage: a full collection over them took 90 ms, a burst that holds up whatever
            # wakes on this CPU (the proxy, its peers); frozen, the collector skips them
            gc.freeze()
            self.answer("ready", [str(p) for p in self.writer.recovered], None)
            self.status(force=True)
            return False
        streams = self.streams
        assert writer is not None and streams is not None
        front = streams.builder  # every row goes through it, in order
        if op == "open":
            _, stream, endpoints = item
            self.endpoints[stream] = endpoints
            streams.open(stream, [endpoints[direction] for direction in _DIRECTIONS])
            for back in (0, 1):
                self.halves[(stream, back)] = _Half(stream, back)
        elif op == "event":
            _, stream, direction, time_ns, text, raw = item
            front.add_event(time_ns, None, self.endpoints[stream][direction], text, raw)
        elif op == "end":
            streams.end(item[1], time.time_ns(), None)
            for back in (0, 1):
                self.halves.pop((item[1], back), None)
            self.endpoints.pop(item[1], None)
        elif op == "gap":
            _, stream, back, time_ns, missing = item
            dec = streams.decoder(stream, back)
            if dec is not None:
                dec.gap(time_ns, None, missing, "not logged: the proxy forwarded them while "
                        "its logger process was stalled")
        elif op == "note":
            front.add_event(item[1], None, _NO_ENDPOINTS, f"{writer.origin}: {item[2]}", None)
        elif op == "flush":
            writer.decide()
            writer.flush()
        else:
            ident = item[1]
            value: Any = None
            error: BaseException | None = None
            try:
                if op == "sync":
                    writer.decide()
                    writer.sync()
                elif op == "read":
                    writer.decide()
                    writer.flush()
                    writer.sync()
                    value = writer.dataframe()
                elif op == "close":
                    now = time.time_ns()
                    for stream in list(self.endpoints):
                        streams.end(stream, now, None)
                    streams.close()  # decides what detection still holds back
                    value = [str(p) for p in writer.close()]
            except Exception as exc:  # noqa: BLE001 -- handed to the proxy
                error = exc
                if op == "close":
                    value = [str(p) for p in writer.files]
            self.status(force=True)
            self.answer("reply", ident, value, error)
            return op == "close"
        return False


_NO_ENDPOINTS = Endpoints(None, None, None, None, None, None)  # type: ignore[arg-type]


def _next_apdu(directory: Path, session: str | None) -> int:
    """One more than the highest ``apdu`` in the directory's files (their footers only); in
    a dataset (``session`` given), in the files of that log session only: the statistics of
    their ``capture`` column are the session's name."""
    import pyarrow.parquet as pq

    def stats(meta: Any, group: int, name: str) -> Any:
        found = meta.row_group(group).column(meta.schema.names.index(name)).statistics
        return found if found is not None and found.has_min_max else None

    top = -1
    for path in directory.glob("*.parquet" if session is None else "date=*/*.parquet"):
        meta = pq.ParquetFile(path).metadata
        for i in range(meta.num_row_groups):
            if session is not None and (
                    "capture" not in meta.schema.names
                    or (of := stats(meta, i, "capture")) is None
                    or not of.min == of.max == session):
                continue
            if (apdu := stats(meta, i, "apdu")) is not None:
                top = max(top, int(apdu.max))
    return top + 1


def _die_with(parent: int) -> None:
    """Ask Linux to kill this process when the thread that started it ends."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the logger stops at the end of its pipe instead
    if os.getppid() != parent:  # the proxy died before prctl
        os._exit(1)


def main(argv: list[str]) -> int:
    data_fd, reply_fd, parent = (int(a) for a in argv[:3])
    _die_with(parent)
    try:
        os.nice(_NICE)
    except OSError:
        pass  # not allowed: the logger runs at the proxy's priority
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        _Logger(data_fd, reply_fd).run()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 0  # the proxy is gone
        raise
    return 0

