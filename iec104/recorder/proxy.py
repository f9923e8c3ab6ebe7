"""Transparent IEC 104 proxy (asyncio) that logs both directions into Parquet.

Theory of operation
-------------------
Each master that connects to the listening socket gets its own upstream connection to
the outstation. Both sockets are driven by :class:`asyncio.Protocol` callbacks (no
streams, no tasks on the hot path):

1. ``data_received``: the receive time is read, then the bytes are written to the other
   socket *at once and unchanged* (``transport.write`` tries the send immediately).
2. Only then are the bytes, with their receive time, queued for the logger process
   (:class:`~iec104.recorder.logprocess.LogProcess`): one non-blocking pipe write per
   100 ms (or 256 KiB). Decoding (the dissector's stage, field sizes detected per direction
   as ``iec104 convert`` does unless ``profile`` is given), building rows and writing
   Parquet (a :class:`~iec104.recorder.logwriter.LogWriter`) run in that process, so they
   share neither the event loop nor the GIL with forwarding.
   If the logger falls more than ``max_backlog`` bytes behind (what the pipe did not
   take), the proxy stops reading from all sockets until it has caught up: under overload
   forwarding slows down (TCP flow control) rather than log rows being lost. A logger that
   takes nothing at all for ``stall_seconds`` meanwhile is stalled: forwarding resumes,
   unlogged (counted; a gap and an event row) until it catches up. A logger that dies is
   reported and restarted; forwarding goes on (see :mod:`.logprocess`).

Flow control: when one side's send buffer fills up, reading from the other side pauses.

Segmentation: what one ``recv`` returns is written with one ``send``. Content and order of
the bytes are preserved, TCP segment boundaries only as far as the proxy keeps up: two
APDUs a peer writes microseconds apart can reach the other peer in one segment. Peers
must not care (TCP is a byte stream), but some do: c104 2.2.1's ``command()`` sometimes
misses an ActCon that arrives in one segment with its ActTerm.

Rules (:mod:`iec104.recorder.rules`) change step 1: bytes go through a
:class:`~iec104.recorder.rules.Rewriter` and are forwarded APDU by APDU. The log always
shows the APDUs as each peer *sent* them, plus a ``proxy: ...`` event row per rule action.

Log rows: ``direction`` is ``c2s`` for master -> outstation; ``src``/``dst`` are the
master's and the outstation's addresses (the proxy itself does not appear); ``stream``
numbers the masters' connections from 0 in order of arrival; ``frame`` is null; ``time``
is when the proxy received the bytes that completed the APDU (UTC).

Closing: a FIN from either peer is passed on to the other (``write_eof``) as soon as what
was received before it is forwarded, and a ``proxy: ...`` row records it; the other
direction keeps flowing (a half-close, as TCP allows: a master may send FIN and still read
the answer) until its sender sends FIN too, then both sockets are closed. When the
outstation is unreachable or resets the connection, the master's connection is closed
(FIN, after forwarding what was received) and a ``proxy: ...`` row records why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ..codec import DEFAULT_PROFILE, Profile
from ..records.builder import Endpoints
from ..records.journal import new_session
from ..records.profiles import ProfileOverrides
from .logprocess import LogProcess
from .logwriter import LogWriterError
from .rules import Rewriter, Rule

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BackgroundProxy", "Proxy", "parse_address"]

log = logging.getLogger(__name__)

def parse_address(text: str | tuple[str, int], default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``'HOST:PORT'``, ``'[v6]:PORT'``, ``':PORT'`` or ``'PORT'`` -> ``(host, port)``.

    Raises:
        ValueError: no valid port.
    """
    if isinstance(text, tuple):
        host, port = text
        return str(host), int(port)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = ""
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r}: expected HOST:PORT") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: port outside [0, 65535]")
    return host, port


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; ``direction`` is that of the bytes it reads."""

    def __init__(self, conn: _Connection, direction: str) -> None:
        self.conn = conn
        self.direction = direction
        self.transport: asyncio.Transport | None = None
        self.gone = False
        self.eof = False
        """The peer sent FIN and it was passed on (this side still writes)."""
        self.close_timer: asyncio.TimerHandle | None = None
        # reading is paused while any reason holds: "connect", "flow", "backlog"
        self._pauses: set[str] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.direction == "c2s":
            self.conn.master_made(self)
        else:
            self.conn.upstream_made(self)

    def data_received(self, data: bytes) -> None:
        self.conn.received(self, data)

    def eof_received(self) -> bool:
        return self.conn.eof_from(self)  # False: let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.conn.closed_by(self, exc)

    def pause_writing(self) -> None:
        self.conn.other(self).pause("flow")

    def resume_writing(self) -> None:
        self.conn.other(self).resume("flow")

    def pause(self, why: str) -> None:
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._pauses.add(why)

    def resume_all(self) -> None:
        if self._pauses:
            self._pauses.clear()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def resume(self, why: str) -> None:
        if why not in self._pauses:
            return
        self._pauses.discard(why)
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class _Connection:
    """A master's connection and its upstream connection."""

    def __init__(self, proxy: Proxy, stream: int) -> None:
        self.proxy = proxy
        self.stream = stream
        self.master = _Side(self, "c2s")
        self.upstream = _Side(self, "s2c")
        self.upstream_up = False
        self.closing = False
        self.endpoints: dict[str, Endpoints] = {}
        self.rewriter = Rewriter(proxy.rules, proxy.rules_profile) if proxy.rules else None
        self.bytes = {"c2s": 0, "s2c": 0}
        self.connect_task: asyncio.Task[Any] | None = None
        # the master's bytes read before the upstream connection is up: (time_ns, data)
        self.early: list[tuple[int, bytes]] = []

    def other(self, side: _Side) -> _Side:
        return self.upstream if side is self.master else self.master

    # -- setup ------------------------------------------------------------------------------

    def master_made(self, side: _Side) -> None:
        proxy = self.proxy
        proxy._connections.add(self)
        assert side.transport is not None
        peer = side.transport.get_extra_info("peername") or ("?", 0)
        self.master_addr = (str(peer[0]), int(peer[1]))
        log.info("stream %d: master %s:%d connected", self.stream, *self.master_addr)
        side.pause("connect")  # nothing to forward to yet
        if proxy._backlog_paused:
            side.pause("backlog")
        self.connect_task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        proxy = self.proxy
        loop = asyncio.get_running_loop()
        host, port = proxy.upstream
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self.upstream, host, port),
                                   proxy.connect_timeout)
        except (TimeoutError, OSError) as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            self._set_endpoints((host, port))
            self._event("c2s", f"proxy: upstream {host}:{port} unreachable ({reason}); "
                               "master connection closed")
            log.warning("stream %d: upstream %s:%d unreachable: %s", self.stream, host, port,
                        reason)
            self.closing = True
            self._shutdown(self.master)
            return

    def upstream_made(self, side: _Side) -> None:
        """The upstream connection is up (runs before any of its data is received)."""
        assert side.transport is not None
        if self.closing:  # the master left while we were connecting
            side.transport.close()
            return
        host, port = self.proxy.upstream
        peer = side.transport.get_extra_info("peername") or (host, port)
        self._set_endpoints((str(peer[0]), int(peer[1])))
        self.upstream_up = True
        if self.proxy._backlog_paused:
            side.pause("backlog")
        early, self.early = self.early, []
        for now, data in early:
            self.received(self.master, data, now)
        self.master.resume("connect")

    def _set_endpoints(self, up: tuple[str, int]) -> None:
        m = self.master_addr
        self.endpoints = {"c2s": Endpoints(self.stream, "c2s", m[0], m[1], up[0], up[1]),
                          "s2c": Endpoints(self.stream, "s2c", up[0], up[1], m[0], m[1])}
        writer = self.proxy.writer
        if writer is not None and self.proxy._logging:
            writer.open(self.stream, self.endpoints)

    # -- hot path -----------------------------------------------------------------------------

    def received(self, side: _Side, data: bytes, now: int | None = None) -> None:
        now = time.time_ns() if now is None else now
        direction = side.direction
        dest = self.upstream if side is self.master else self.master
        dest_transport = dest.transport
        rewriter = self.rewriter
        if dest_transport is None and not self.closing:
            # The upstream connection is not up yet. master_made paused reading, but Python
            # before 3.11.4 (Debian 12 has 3.11.2) ignores pause_reading() in connection_made
            # (CPython gh-103607): hold the bytes for upstream_made, or they would be lost.
            self.early.append((now, data))
            return
        if self.closing:
            actions = None  # the other side is gone: nothing to forward to, but log it
        elif rewriter is None:
            if dest_transport is not None:
                dest_transport.write(data)  # forward first, untouched
            actions = None
        else:
            result = rewriter.feed(direction, data)
            if result.forward and dest_transport is not None:
                dest_transport.write(result.forward)
            if result.back and side.transport is not None:
                side.transport.write(result.back)
            actions = result.actions
        self.bytes[direction] += len(data)
        proxy = self.proxy
        if proxy._logging:
            writer = proxy.writer
            assert writer is not None
            writer.data(self.stream, direction, now, data)
            if actions:
                for text, raw in actions:
                    writer.event(self.stream, direction, now, text, raw)

    # -- teardown -------------------------------------------------------------------------------

    def eof_from(self, side: _Side) -> bool:
        """The peer of ``side`` sent FIN: pass it on to the other peer and keep the other
        direction open (half-close). Returns whether ``side``'s transport stays open."""
        other = self.other(side)
        dest = other.transport
        if self.closing or dest is None or other.gone or dest.is_closing():
            self.closed_by(side, None)  # nothing to pass the FIN on to
            return False
        side.eof = True
        who, to = ("master", "upstream") if side is self.master else ("upstream", "master")
        self._event(side.direction, f"proxy: {who} closed its sending direction (FIN); "
                                    f"passed on to the {to}")
        log.info("stream %d: %s sent FIN; passed on to the %s", self.stream, who, to)
        if self.rewriter is not None:
            rest = self.rewriter.leftover(side.direction)
            if rest:
                dest.write(rest)
        try:
            dest.write_eof()
        except (OSError, RuntimeError):
            self.closed_by(side, None)
            return False
        if other.eof:  # both directions are finished: close (sends what is still buffered)
            self.closing = True
            for s in (self.master, self.upstream):
                if s.transport is not None:
                    s.transport.close()
        return True

    def closed_by(self, side: _Side, exc: Exception | None) -> None:
        if side.gone:
            return
        side.gone = True
        other = self.other(side)
        if not self.closing:
            self.closing = True
            who = "master" if side is self.master else "upstream"
            how = f"reset the connection ({exc})" if exc is not None else "closed the connection"
            if side is self.upstream and not self.proxy._stopping:
                self._event("s2c", f"proxy: upstream {how}; master connection closed")
                log.warning("stream %d: upstream %s", self.stream, how)
            else:
                log.info("stream %d: %s %s", self.stream, who, how)
            if self.rewriter is not None and other.transport is not None:
                rest = self.rewriter.leftover(side.direction)
                if rest and not other.transport.is_closing():
                    other.transport.write(rest)
            if other.transport is not None:
                self._shutdown(other)
            elif side is self.master and self.connect_task is not None:
                self.connect_task.cancel()
        if self.master.gone and (self.upstream.gone or not self.upstream_up):
            self.proxy._finished(self)

    def _event(self, direction: str, text: str) -> None:
        proxy = self.proxy
        if proxy.writer is None:
            return
        if not self.endpoints:
            self._set_endpoints(proxy.upstream)
        if proxy._logging:
            proxy.writer.event(self.stream, direction, time.time_ns(), text)

    def _shutdown(self, side: _Side) -> None:
        """Close one socket cleanly: send what is buffered, then FIN (write_eof); keep
        reading (and logging) until the peer closes too, or ``close_timeout`` passes. Closing
        a socket with unread input would make the kernel send a reset instead of a FIN."""
        transport = side.transport
        if transport is None or transport.is_closing() or side.gone:
            return
        side.resume_all()
        try:
            transport.write_eof()
        except (OSError, RuntimeError):
            transport.close()
            return
        loop = asyncio.get_running_loop()
        side.close_timer = loop.call_later(self.proxy.close_timeout, transport.close)

    def close(self) -> None:
        """Shut both sockets down (see :meth:`_shutdown`)."""
        self.closing = True
        for side in (self.master, self.upstream):
            self._shutdown(side)
        if self.connect_task is not None and not self.upstream_up:
            self.connect_task.cancel()

    def abort(self) -> None:
        for side in (self.master, self.upstream):
            if side.transport is not None:
                side.transport.abort()


class Proxy:
    """A transparent TCP proxy between IEC 104 masters and one outstation, with a log.

    Args:
        listen: ``"HOST:PORT"`` or ``(host, port)`` to accept masters on (port 0: any free
            port, see :attr:`address`).
        upstream: ``"HOST:PORT"`` or ``(host, port)`` of the outstation.
        output: directory of the Parquet log; None forwards without decoding or logging.
        rules: :class:`~iec104.recorder.rules.Rule` objects, tried in order on every I-frame
            (the first that matches applies). Empty: bytes pass untouched.
        profile: ASDU field sizes. None (default): the log detects them per connection
            and direction as ``iec104 convert`` does (rows held back for up to 16 I-frames
            or 10 s; :mod:`iec104.records.profiles`); a :class:`~iec104.codec.Profile`: every
            connection's; a :class:`~iec104.records.profiles.ProfileOverrides`: per endpoint.
            Rules decode with the one profile given (else 2/2/3).
        flush_rows, flush_seconds: how often rows go to disk (the SIGKILL loss bound).
        max_bytes, max_seconds: file rotation, see :class:`~iec104.records.journal.JournaledParquetSink`.
        connect_timeout: seconds to wait for the upstream connection.
        close_timeout: after closing one side of a connection (FIN), seconds to wait for
            its peer to close before closing the socket regardless.
        max_backlog: octets received but not yet taken by the logger process beyond which
            reading pauses (default 4 MiB, some 200,000 short APDUs). Also part of the
            SIGKILL loss bound: a crash loses that backlog, the pipe's content (up to 1 MiB)
            plus the last flush interval.
        stall_seconds: while reading is paused for the backlog, a logger process that
            takes nothing for this long is stalled: forwarding resumes and goes on unlogged
            (counted, then a gap and an event row) until it catches up (default 2 s, > 0).
        prefix: file name prefix.
        fsync: fsync every flush.
        dataset: write ``output`` as a dataset (``date=`` partitions, a ``capture`` column
            naming the log session, :attr:`session`; what ``iec104 proxy -o`` does), not a
            flat directory.

    Use in a running event loop (``await proxy.start()`` ... ``await proxy.stop()``, or
    ``async with``); from synchronous code or a notebook use
    :class:`~iec104.recorder.BackgroundProxy`.
    """

    def __init__(self, listen: str | tuple[str, int], upstream: str | tuple[str, int],
                 output: str | os.PathLike[str] | None, *, rules: Sequence[Rule] = (),
                 profile: Profile | ProfileOverrides | None = None,
                 flush_rows: int = 10_000,
                 flush_seconds: float = 1.0, max_bytes: int = 64 << 20,
                 max_seconds: float = 3600.0, connect_timeout: float = 5.0,
                 close_timeout: float = 2.0, max_backlog: int = 4 << 20,
                 stall_seconds: float = 2.0, prefix: str = "iec104-proxy", fsync: bool = False,
                 dataset: bool = False) -> None:
        self.listen = parse_address(listen)
        self.upstream = parse_address(upstream)
        self.output = Path(output) if output is not None else None
        self.rules = list(rules)
        self.profile = profile
        self.rules_profile = profile if isinstance(profile, Profile) else DEFAULT_PROFILE
        """What rules decode and encode ASDUs with."""
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.max_backlog = max_backlog
        if stall_seconds <= 0:
            raise ValueError("stall_seconds must be positive")
        self.stall_seconds = stall_seconds
        self.session = new_session(prefix) if dataset else None
        """The log session (the ``capture`` value of its rows) when writing a dataset."""
        self._writer_args = {"profile": profile, "flush_rows": flush_rows,
                                 "flush_seconds": flush_seconds, "max_bytes": max_bytes,
                                 "max_seconds": max_seconds, "prefix": prefix, "fsync": fsync,
                                 "session": self.session}
        self.writer: LogProcess | None = None
        self.log_error: LogWriterError | None = None
        """Set when writing the log failed for good (an error other than I/O, or a disk
        still full at :meth:`stop`): forwarding goes on, unlogged. A full disk meanwhile
        only suspends logging (:attr:`LogProcess.suspended`), which resumes with the rows
        held in memory when space returns."""
        self._logging = False
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._all_closed: asyncio.Event | None = None
        self._next_stream = 0
        self._backlog_paused = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connections_total = 0
        self.bytes = {"c2s": 0, "s2c": 0}
        self.backlog_pauses = 0

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the proxy listens on (after :meth:`start`)."""
        if self._server is None or not self._server.sockets:
            return self.listen
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def start(self) -> None:
        """Open the log and start listening."""
        self._loop = asyncio.get_running_loop()
        if self.output is not None:
            # started from the loop's thread: the logger dies with the thread that started it
            writer = LogProcess.spawn(self.output, self._writer_args,
                                      max_backlog=self.max_backlog,
                                      stall_seconds=self.stall_seconds)
            try:
                await self._loop.run_in_executor(None, writer.wait_ready)
            except BaseException as exc:
                await self._loop.run_in_executor(None, writer.close)
                if isinstance(exc, OSError):  # the directory cannot be made or written
                    raise LogWriterError(f"{self.output}: cannot write the log: {exc}") \
                        from exc
                raise
            writer.on_backlog = self._backlog_pause
            writer.on_failure = self._log_failed
            writer.attach(self._loop)
            self.writer = writer
        host, port = self.listen
        try:
            self._server = await self._loop.create_server(self._accept, host, port,
                                                          reuse_address=True)
        except BaseException:
            if self.writer is not None:
                self.writer.detach()
                await self._loop.run_in_executor(None, self.writer.close)
            raise
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        if self.writer is not None:
            self._logging = True
            self._schedule_flush()
        log.info("proxy listening on %s:%d, upstream %s:%d, log %s", *self.address,
                 *self.upstream, self.output)

    def _accept(self) -> asyncio.Protocol:
        conn = _Connection(self, self._next_stream)
        self._next_stream += 1
        self.connections_total += 1
        if self._all_closed is not None:
            self._all_closed.clear()
        return conn.master

    def _finished(self, conn: _Connection) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        for direction, nbytes in conn.bytes.items():
            self.bytes[direction] += nbytes
        if self._logging and conn.endpoints:
            self.writer.end(conn.stream)  # type: ignore[union-attr]
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()

    async def stop(self) -> list[Path]:
        """Stop accepting, close every connection, write out the log (nothing is lost).

        Returns the Parquet files written by this proxy.
        """
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close()
        if self._all_closed is not None and self._connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), self.close_timeout + 1.0)
            except TimeoutError:
                log.warning("%d connections did not close in time", len(self._connections))
                for conn in list(self._connections):
                    conn.abort()
                await asyncio.sleep(0)
        if self._server is not None:
            await self._server.wait_closed()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        files: list[Path] = []
        if self.writer is not None:
            self._logging = False
            self.writer.detach()
            loop = asyncio.get_running_loop()
            try:
                files = await loop.run_in_executor(None, self.writer.close)
            except LogWriterError as exc:
                self.log_error = self.log_error or exc
            if self.log_error is not None:
                raise self.log_error
        return files

    async def serve_forever(self) -> None:
        """Run until cancelled (then stop cleanly)."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the logger process ---------------------------------------------------------------------

    def _backlog_pause(self, paused: bool) -> None:
        if paused and not self._backlog_paused:
            self._pause_all()
        elif not paused and self._backlog_paused:
            self._resume_all()

    def _pause_all(self) -> None:
        self._backlog_paused = True
        self.backlog_pauses += 1
        for conn in self._connections:
            conn.master.pause("backlog")
            if conn.upstream_up:
                conn.upstream.pause("backlog")

    def _resume_all(self) -> None:
        self._backlog_paused = False
        for conn in self._connections:
            conn.master.resume("backlog")
            if conn.upstream_up:
                conn.upstream.resume("backlog")

    def _schedule_flush(self) -> None:
        writer = self.writer
        assert writer is not None and self._loop is not None
        self._flush_timer = self._loop.call_later(writer.flush_seconds / 2, self._tick)

    def _tick(self) -> None:
        """Notice a dead logger even when nothing is received (the logger flushes itself)."""
        writer = self.writer
        if writer is None or not self._logging:
            return
        writer.check()
        self._schedule_flush()

    def _log_failed(self, exc: LogWriterError) -> None:
        """Writing failed: keep forwarding, stop logging (nothing could be written)."""
        log.error("%s; the proxy goes on forwarding without a log", exc)
        self.log_error = exc
        self._logging = False
        if self._backlog_paused:
            self._resume_all()

    # -- inspection ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Have the logger hand everything received to its writer (event loop thread only)."""
        if self.writer is not None:
            self.writer.flush()

    def dataframe(self) -> pd.DataFrame:
        """Everything logged so far by this proxy (event loop thread only; blocks briefly)."""
        if self.writer is None:
            raise RuntimeError("this proxy does not log (output=None)")
        return self.writer.dataframe()

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: connections, bytes per direction, decode backlog, log writer."""
        live = {"c2s": 0, "s2c": 0}
        for conn in self._connections:
            for d, n in conn.bytes.items():
                live[d] += n
        out: dict[str, Any] = {
            "connections_total": self.connections_total,
            "connections_open": len(self._connections),
            "bytes_c2s": self.bytes["c2s"] + live["c2s"],
            "bytes_s2c": self.bytes["s2c"] + live["s2c"],
            "decode_backlog_bytes": self.writer.backlog if self.writer is not None else 0,
            "backlog_pauses": self.backlog_pauses,
            "rules_applied": {r.name: r.applied for r in self.rules},
        }
        if self.writer is not None:
            out.update(self.writer.stats)
        return out



class BackgroundProxy:
    """A :class:`Proxy` running on its own event loop in a daemon thread.

    For synchronous code and notebooks (where the proxy must keep running while a cell
    blocks)::

        proxy = BackgroundProxy("127.0.0.1:2405", "127.0.0.1:2404", "log/").start()
        ...                   # point masters at 127.0.0.1:2405
        df = proxy.dataframe()  # what was logged so far
        proxy.stop()

    Takes the same arguments as :class:`Proxy`; also a context manager.
    """

    def __init__(self, listen: str | tuple[str, int], upstream: str | tuple[str, int],
                 output: str | os.PathLike[str] | None, **kwargs: Any) -> None:
        self.proxy = Proxy(listen, upstream, output, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self.files: list[Path] = []

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) masters should connect to."""
        return self.proxy.address

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> Self:
        """Start the proxy; returns once it listens (raises what :meth:`Proxy.start` raises)."""
        if self.running:
            raise RuntimeError("the proxy is already running")
        started = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.proxy.start()
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
                failure.append(exc)
                started.set()
                return
            started.set()
            await self._stop.wait()
            self.files = await self.proxy.stop()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),),
                                        name="iec104-proxy", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError(f"the proxy did not start within {timeout} s")
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def _call(self, fn: Any, timeout: float = 30.0) -> Any:
        if not self.running or self._loop is None:
            raise RuntimeError("the proxy is not running")

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    def flush(self) -> None:
        """Decode everything received so far and hand it to the log writer."""
        self._call(self.proxy.flush)

    def dataframe(self) -> pd.DataFrame:
        """Everything logged so far (after :meth:`stop`: all files written)."""
        writer = self.proxy.writer
        if writer is None:
            raise RuntimeError("this proxy does not log (output=None)")
        if self.running:
            return self._call(self.proxy.dataframe, 60.0)
        return writer.dataframe()

    @property
    def stats(self) -> dict[str, Any]:
        """See :attr:`Proxy.stats`."""
        if self.running:
            return self._call(lambda: self.proxy.stats)  # type: ignore[no-any-return]
        return self.proxy.stats

    def stop(self, timeout: float = 60.0) -> list[Path]:
        """Close every connection, write out the log; returns the files written."""
        if self._thread is None:
            return self.files
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the proxy did not stop within {timeout} s")
        self._thread = None
        return self.files

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
