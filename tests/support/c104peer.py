"""c104 (Python bindings of lib60870-C, 2.x) as an independent IEC 104 peer.

Everything here was run against c104 2.2.1 (research notes: /tmp/notes/peers.md). c104 runs
its own threads; all calls here are synchronous and poll with :func:`wait_for`.

``C104Server(port, common_address=1)``  a controlled station on 127.0.0.1. ``add_point`` adds a
    monitoring point (optionally with a value) or a control point (its commands are recorded in
    ``commands`` and answered with a positive ActCon, or negative if ``reject_commands``).
    ``transmit(ioa)`` sends a spontaneous value. General/counter interrogation and clock sync
    are answered by lib60870 itself; clock syncs are recorded in ``clock_syncs``.
``C104Client(port, common_address=1)``  a controlling station. Points that the server reports are
    created on the fly; every monitoring message is recorded in ``received`` as
    :class:`Received`. ``interrogation()``, ``counter_interrogation()``, ``clock_sync()``,
    ``command(ioa, type, value)``.
Both record every APDU they send or receive in ``raw`` (a :class:`RawLog`, with the direction
seen from the client: ``'c2s'`` / ``'s2c'``), which ``RawLog.messages()`` turns into the input
of :func:`tests.support.pcapwriter.write_pcap`.

Verified pitfalls (see peers.md for the evidence)
-------------------------------------------------
* ``tick_rate_ms`` must be >= 50 (ValueError otherwise); lib60870 work happens on those ticks.
* The client sometimes never sends STARTDT act after connecting (state stuck in
  ``OPEN_MUTED``; 5 to 8 runs in 15 in our measurements). :meth:`C104Client.start` therefore
  waits for the TCP connection, gives lib60870 0.25 s to reach ``OPEN`` by itself, and calls
  ``connection.unmute()`` if it did not; unmuting always worked (60/60). So the raw log starts
  with one STARTDT act/con pair, rarely two.
* Callback signatures are checked by *parameter name and annotation*: ``(server, data)``, not
  ``(srv, data)``, and string annotations (``from __future__ import annotations``) are refused.
* The server answers a command with ActCon only: **no ActTerm** (unlike hat and our driver).
* Interrogation answers use SQ=1, even for a single object (VSQ ``0x81``), and pack points of
  one type with consecutive IOAs into one ASDU (20 floats at IOA 100..119 -> one ASDU).
* ``Byte32(int)`` silently gives 0: pass 4 ``bytes`` (wire order). ``BinaryCounterInfo``
  needs an explicit ``quality=BinaryCounterQuality()``.
* Normalized values use the scale 32768 (0.5 -> 0x4000, -1.0 -> 0x8000), unlike hat (32767).
* Time tags: a naive ``datetime`` is written as is (the machine runs in UTC here).
"""

# No ``from __future__ import annotations`` here: c104 compares the callbacks' annotations
# with the expected types, and string annotations fail that check.
import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import c104

from tests.support import HOST

__all__ = [
    "C104Client",
    "C104Server",
    "RawFrame",
    "RawLog",
    "Received",
    "c104",
    "plain_value",
    "wait_for",
]

MIN_TICK_MS = 50


def wait_for(cond: Callable[[], Any], timeout: float = 5.0, step: float = 0.005) -> bool:
    """Poll ``cond`` until it is truthy or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def plain_value(value: Any) -> Any:
    """A c104 point value as a plain Python value: NormalizedFloat -> float, Int7/Int16/UInt*
    -> int, Byte32 -> 4 bytes (wire order), Double/Step -> int, bool/int/float unchanged."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, c104.NormalizedFloat):
        return float(value)  # type: ignore[arg-type]  # it has __float__ at runtime
    if isinstance(value, c104.Byte32):
        return bytes(value)
    if isinstance(value, c104.Double | c104.Step):
        return int(value.value)
    return int(value)


@dataclass(frozen=True)
class RawFrame:
    time: float  # time.time() when c104 reported it
    direction: Literal["c2s", "s2c"]
    data: bytes


@dataclass
class RawLog:
    """Thread-safe record of raw APDUs reported by c104's on_send_raw/on_receive_raw."""

    frames: list[RawFrame] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, direction: Literal["c2s", "s2c"], data: bytes) -> None:
        with self._lock:
            self.frames.append(RawFrame(time.time(), direction, bytes(data)))

    def snapshot(self) -> list[RawFrame]:
        with self._lock:
            return list(self.frames)

    def messages(self) -> list[tuple[Literal["c2s", "s2c"], bytes]]:
        """``[(direction, apdu_bytes), ...]`` for :func:`tests.support.pcapwriter.write_pcap`."""
        return [(f.direction, f.data) for f in self.snapshot()]


@dataclass(frozen=True)
class Received:
    """One information object as a c104 client point saw it."""

    common_address: int
    ioa: int
    type: c104.Type
    value: Any  # plain_value() of the point value
    cot: c104.Cot
    quality: Any
    recorded_at: Any  # datetime for time-tagged types, else None
    is_negative: bool


class C104Server:
    """A c104 server with one station; use as a context manager."""

    def __init__(
        self,
        port: int,
        *,
        common_address: int = 1,
        host: str = HOST,
        tick_rate_ms: int = MIN_TICK_MS,
        select_timeout_ms: int = 1000,
    ) -> None:
        self.port = port
        self.raw = RawLog()
        self.commands: list[Received] = []
        self.clock_syncs: list[datetime.datetime] = []
        self.reject_commands = False
        self.server = c104.Server(
            ip=host, port=port, tick_rate_ms=tick_rate_ms, select_timeout_ms=select_timeout_ms
        )
        station = self.server.add_station(common_address=common_address)
        if station is None:
            raise ValueError(f"c104 refused station {common_address}")
        self.station: c104.Station = station

        def sv_on_send_raw(server: c104.Server, data: bytes) -> None:
            self.raw.add("s2c", data)

        def sv_on_receive_raw(server: c104.Server, data: bytes) -> None:
            self.raw.add("c2s", data)

        def sv_on_clock_sync(
            server: c104.Server, ip: str, date_time: datetime.datetime
        ) -> c104.ResponseState:
            self.clock_syncs.append(date_time)
            return c104.ResponseState.SUCCESS

        self.server.on_send_raw(callable=sv_on_send_raw)
        self.server.on_receive_raw(callable=sv_on_receive_raw)
        self.server.on_clock_sync(callable=sv_on_clock_sync)

    def add_point(
        self,
        ioa: int,
        type: c104.Type,
        value: Any = None,
        *,
        info: Any = None,
        **kwargs: Any,
    ) -> c104.Point:
        """Add a point; ``value``/``info`` set its current value; ``kwargs`` go to
        ``Station.add_point`` (``related_io_address``, ``related_io_autoreturn``,
        ``command_mode``, ``report_ms``). Control points record incoming commands."""
        point = self.station.add_point(io_address=ioa, type=type, **kwargs)
        if point is None:
            raise ValueError(f"c104 refused point {ioa} {type}")
        if info is not None:
            point.info = info
        elif value is not None:
            point.value = value
        if type.name.startswith("C_"):

            def on_command(
                point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
            ) -> c104.ResponseState:
                self.commands.append(_received(point, message))
                if self.reject_commands:
                    return c104.ResponseState.FAILURE
                return c104.ResponseState.SUCCESS

            point.on_receive(callable=on_command)
        return point

    def transmit(self, ioa: int, cause: c104.Cot = c104.Cot.SPONTANEOUS) -> bool:
        point = self.station.get_point(io_address=ioa)
        if point is None:
            raise KeyError(ioa)
        return bool(point.transmit(cause=cause))

    def start(self, timeout: float = 5.0) -> None:
        self.server.start()
        if not wait_for(lambda: self.server.is_running, timeout):
            raise TimeoutError("c104 server did not start")

    def wait_client(self, timeout: float = 5.0) -> None:
        """Wait until a client has opened a connection and sent STARTDT act."""
        if not wait_for(lambda: self.server.has_active_connections, timeout):
            raise TimeoutError("no active client connection")

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class C104Client:
    """A c104 client with one connection to ``host:port``; use as a context manager."""

    def __init__(
        self,
        port: int,
        *,
        common_address: int = 1,
        host: str = HOST,
        tick_rate_ms: int = MIN_TICK_MS,
        command_timeout_ms: int = 5000,  # CI machines are shared and slow
        init: c104.Init = c104.Init.NONE,
    ) -> None:
        self.common_address = common_address
        self.raw = RawLog()
        self.received: list[Received] = []
        self.lost_wakeups = 0  # see transmit()
        self.client = c104.Client(tick_rate_ms=tick_rate_ms, command_timeout_ms=command_timeout_ms)
        connection = self.client.add_connection(ip=host, port=port, init=init)
        if connection is None:
            raise ValueError(f"c104 refused connection to {host}:{port}")
        self.connection: c104.Connection = connection
        station = connection.add_station(common_address=common_address)
        if station is None:
            raise ValueError(f"c104 refused station {common_address}")
        self.station: c104.Station = station

        def cl_on_send_raw(connection: c104.Connection, data: bytes) -> None:
            self.raw.add("c2s", data)

        def cl_on_receive_raw(connection: c104.Connection, data: bytes) -> None:
            self.raw.add("s2c", data)

        def cl_on_new_station(
            client: c104.Client, connection: c104.Connection, common_address: int
        ) -> None:
            connection.add_station(common_address=common_address)

        def cl_on_new_point(
            client: c104.Client, station: c104.Station, io_address: int, point_type: c104.Type
        ) -> None:
            point = station.add_point(io_address=io_address, type=point_type)
            if point is not None:
                self._watch(point)

        self.connection.on_send_raw(callable=cl_on_send_raw)
        self.connection.on_receive_raw(callable=cl_on_receive_raw)
        self.client.on_new_station(callable=cl_on_new_station)
        self.client.on_new_point(callable=cl_on_new_point)

    def _watch(self, point: c104.Point) -> c104.Point:
        def on_receive(
            point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
        ) -> c104.ResponseState:
            self.received.append(_received(point, message))
            return c104.ResponseState.NONE

        point.on_receive(callable=on_receive)
        return point

    def add_point(self, ioa: int, type: c104.Type) -> c104.Point:
        """Declare a point in advance (needed for commands; monitoring points are optional)."""
        point = self.station.add_point(io_address=ioa, type=type)
        if point is None:
            raise ValueError(f"c104 refused point {ioa} {type}")
        if not type.name.startswith("C_"):
            self._watch(point)
        return point

    def start(self, timeout: float = 5.0) -> None:
        """Connect and make sure STARTDT act/con happened (explicit unmute, see pitfalls)."""
        self.client.start()
        if not wait_for(lambda: self.connection.is_connected, timeout):
            raise TimeoutError(f"c104 client could not connect: {self.connection.state}")
        if not wait_for(lambda: self.connection.state == c104.ConnectionState.OPEN, 0.25):
            # lib60870 did not send STARTDT act by itself (it normally takes ~10 ms)
            self.connection.unmute()
        if not wait_for(lambda: self.connection.state == c104.ConnectionState.OPEN, timeout):
            raise TimeoutError(f"c104 connection not OPEN: {self.connection.state}")

    def stop(self) -> None:
        self.client.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def interrogation(self, qualifier: c104.Qoi = c104.Qoi.STATION) -> bool:
        """C_IC_NA_1; returns once ActCon arrived (data and ActTerm may still be in flight)."""
        return bool(
            self.connection.interrogation(
                common_address=self.common_address,
                cause=c104.Cot.ACTIVATION,
                qualifier=qualifier,
            )
        )

    def counter_interrogation(
        self, qualifier: c104.Rqt = c104.Rqt.GENERAL, freeze: c104.Frz = c104.Frz.READ
    ) -> bool:
        return bool(
            self.connection.counter_interrogation(
                common_address=self.common_address,
                cause=c104.Cot.ACTIVATION,
                qualifier=qualifier,
                freeze=freeze,
            )
        )

    def clock_sync(self) -> bool:
        """C_CS_NA_1 carrying the client's current time."""
        return bool(self.connection.clock_sync(common_address=self.common_address))

    def command(self, ioa: int, type: c104.Type, value: Any) -> bool:
        """Send a command (ActCon awaited up to ``command_timeout_ms``); True if positive."""
        point = self.station.get_point(io_address=ioa) or self.add_point(ioa, type)
        point.value = value
        return bool(point.transmit(cause=c104.Cot.ACTIVATION))

    def transmit(self, ioa: int) -> bool:
        """The first command of point ``ioa`` on this connection (select first in
        SELECT_AND_EXECUTE mode); True if the server confirmed it positively (and
        terminated a selected command's execution).

        c104 2.2.1 can answer False for a command the server confirmed within microseconds:
        ``Connection::awaitCommandSuccess`` (src/remote/Connection.cpp) waits on its
        condition variable *before* looking at the result, so a confirmation that lands
        between sending and waiting is never seen and the wait ends after
        ``command_timeout_ms`` with False (a lost wakeup: our server answers in ~30 us, and
        a loaded machine preempts c104's thread in that window). After a select, c104 then
        never sends the execute. So a False is checked against the frames c104 reported
        receiving, which are complete by then (the point's first command, so every answer
        about it is this command's): a select confirmed there is executed as c104 would
        have, and a command whose answers there are all positive succeeded;
        ``lost_wakeups`` counts both.
        """
        point = self.station.get_point(io_address=ioa)
        if point is None:
            raise KeyError(ioa)
        type_id = int(point.type)
        if self.answers(ioa, type_id):
            raise ValueError(f"point {ioa} was commanded before on this connection")
        if point.transmit(cause=c104.Cot.ACTIVATION):
            return True
        positive = [(7, False)]
        if point.command_mode == c104.CommandMode.SELECT_AND_EXECUTE:
            if self.answers(ioa, type_id) == positive:  # lost after the select
                self.lost_wakeups += 1
                point.command_mode = c104.CommandMode.DIRECT
                try:
                    point.transmit(cause=c104.Cot.ACTIVATION)  # the execute
                finally:
                    point.command_mode = c104.CommandMode.SELECT_AND_EXECUTE
                wait_for(lambda: len(self.answers(ioa, type_id)) >= 3)
            positive = [(7, False), (7, False), (10, False)]
        if self.answers(ioa, type_id)[:len(positive)] == positive:
            self.lost_wakeups += 1
            return True
        return False

    def read(self, ioa: int) -> bool:
        """``Point.read()`` of point ``ioa``; True if the server answered with the point's
        data (cause REQUEST). c104 waits for the answer as for a command's confirmation,
        with the same lost wakeup (see :meth:`transmit`), so a False is checked against the
        frames c104 reported receiving; ``lost_wakeups`` counts those."""
        point = self.station.get_point(io_address=ioa)
        if point is None:
            raise KeyError(ioa)
        if point.read():
            return True
        if (int(c104.Cot.REQUEST), False) in self.answers(ioa, int(point.type)):
            self.lost_wakeups += 1
            return True
        return False

    def answers(self, ioa: int, type_id: int, since: int = 0) -> list[tuple[int, bool]]:
        """(cause, negative) of the server's I-frames about ``type_id`` at ``ioa`` in this
        station, from the ``since``-th raw frame on."""
        found = []
        for frame in self.raw.snapshot()[since:]:
            data = frame.data
            if (frame.direction == "s2c" and len(data) >= 15 and not data[2] & 1
                    and data[6] == type_id
                    and int.from_bytes(data[10:12], "little") == self.common_address
                    and int.from_bytes(data[12:15], "little") == ioa):
                found.append((data[8] & 0x3F, bool(data[8] & 0x40)))
        return found

    def values(self) -> dict[int, Any]:
        """Last value received per IOA."""
        return {r.ioa: r.value for r in list(self.received)}


def _received(point: c104.Point, message: c104.IncomingMessage) -> Received:
    return Received(
        common_address=message.common_address,
        ioa=point.io_address,
        type=point.type,
        value=plain_value(point.value),
        cot=message.cot,
        quality=point.quality,
        recorded_at=point.recorded_at,
        is_negative=bool(message.is_negative),
    )
