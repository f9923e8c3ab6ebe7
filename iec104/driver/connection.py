"""asyncio IEC 104 connection: moves bytes between a socket and a ``codec.Session``.

Theory of operation
-------------------
Every connection is an :class:`asyncio.Protocol` (no reader/writer tasks) around one
sans-IO :class:`~iec104.codec.session.Session`:

* ``data_received`` feeds the session, handles each event (ASDUs are decoded with
  ``codec.decode_asdu`` and turned into ``Data``/``Command`` by ``codec.model``), then sends
  what is pending and writes all output with one ``transport.write``.
* Outgoing ASDUs wait in ``_pending``, a FIFO of encoded ASDUs and of ``_Batch``es of
  ``Data`` that are packed and encoded only when the send window (k) has room. So
  ``notify_data_change`` of many items costs no more memory than its argument, never
  exceeds k unacknowledged I-frames, and goes as fast as the peer acknowledges.
  ``drain()`` lets a producer wait.
* The queue is bounded (``send_queue_size`` items, an encoded ASDU counting as one): a
  producer written to the seed API (no ``drain()``) facing a peer that acknowledges more
  slowly than it produces would otherwise grow for ever. When the bound is reached, the
  notified data is coalesced as an outstation's event buffer does: of the items queued by
  ``notify_data_change`` only the latest per point (common address, IOA) stays, where it
  was queued, so each point's values keep their order and the newest value is never lost.
  If that frees less than a quarter of the queue (more points changed than the queue
  holds), the peer cannot even keep up with the latest values: the connection is closed
  as a slow consumer, with the reason logged, and the master's reconnection and general
  interrogation recover the state.
* Writes requested outside ``data_received`` are coalesced with one ``call_soon`` per loop
  iteration. asyncio's ``pause_writing`` stops sending until the socket buffer drains.
* The session's clock is the event loop's (``loop.time``), the driver's one clock: a loop
  with a fake clock drives every timer in tests (``tests/support/fakeclock.py``).
* The session's timers become one ``loop.call_at`` handle on its ``next_deadline()``;
  deadlines that move later (t3 after every received frame) do not re-arm the handle: it
  fires, the session does nothing, and it is re-armed.
* When the receive queue holds ``receive_queue_size`` ASDUs that the application did not
  ``receive()``, reading pauses (the peer then blocks on its own k).
* Requests from the peer (interrogation, counter interrogation, commands, clock sync,
  read, reset, delay acquisition, parameters: ``messages.py``) call the user's callbacks; a
  plain function is called inline, a coroutine function's result is awaited in a task of
  the connection's group. What the driver does not handle goes to ``asdu_cb``.
* Commands pass the outstation checks of ``outstation.CommandGate`` (select before
  operate, age of time tags) before ``command_cb``.
* Every ASDU is encoded and decoded with the connection's ``Profile`` (field sizes).
* Data notified while data transfer is stopped (before STARTDT, after STOPDT) waits in the
  send queue (bounded as above) and goes out after the next STARTDT; a connection of a
  redundancy group hands it back to its group instead (``outstation.py``).
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import inspect
import logging
import ssl as _ssl
import time as _time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple, cast

from ..codec.asdu import (
    ASDU,
    DEFAULT_PROFILE,
    InformationObject,
    Profile,
    RawASDU,
    decode_asdu,
    encode_asdu,
)
from ..codec.constants import Cause, TypeId, cause_name, type_name
from ..codec.errors import DecodeError, EncodeError, LocalProtocolError, RemoteProtocolError
from ..codec.files import FILE_TYPES
from ..codec.model import (
    COMMAND_TYPES,
    MONITOR_TYPES,
    Command,
    Data,
    asdu_to_commands,
    asdu_to_data,
    command_refusal,
    command_to_asdu,
    data_type_id,
    pack_data,
)
from ..codec.parameters import PARAMETER_TYPES
from ..codec.session import (
    NEED_DATA,
    AsduReceived,
    DataTransferStarted,
    DataTransferStopped,
    Role,
    Session,
    State,
)
from ..codec.timetag import Time, TimeSize
from ..codec.values import FreezeCode
from .common import (
    Address,
    AsduCb,
    ClockSyncCb,
    CommandCb,
    ConnectionInfo,
    CounterInterrogateCb,
    DelayCb,
    EnabledCb,
    GroupInterrogateCb,
    InterrogateCb,
    ParameterCb,
    ReadCb,
    ResetCb,
)
from .files import FileClient, FileProvider, FileService
from .lifetime import Group, Resource
from .messages import Requests
from .outstation import CommandGate, GroupState

mlog = logging.getLogger("iec104.driver")

_INTERROGATED = frozenset(range(Cause.INTERROGATED_STATION, Cause.INTERROGATED_GROUP16 + 1))
_COUNTER_INTERROGATED = frozenset(range(Cause.INTERROGATED_COUNTER,
                                        Cause.INTERROGATED_COUNTER04 + 1))
_UNKNOWN_CAUSES = frozenset((Cause.UNKNOWN_TYPE, Cause.UNKNOWN_CAUSE,
                             Cause.UNKNOWN_ASDU_ADDRESS, Cause.UNKNOWN_IO_ADDRESS))
_REQUEST_CAUSES = frozenset((Cause.ACTIVATION, Cause.DEACTIVATION, Cause.REQUEST))
_TEST_TYPES = frozenset((TypeId.C_TS_NA_1, TypeId.C_TS_TA_1))
# causes the standard permits for the requests we serve (IEC 60870-5-101 table 14 and
# 104 table 1); a request with another cause is mirrored with UNKNOWN_CAUSE, P/N=1
_ACTIVATION_CAUSES = frozenset((Cause.ACTIVATION, Cause.ACTIVATION_CONFIRMATION,
                                Cause.DEACTIVATION, Cause.DEACTIVATION_CONFIRMATION,
                                Cause.ACTIVATION_TERMINATION)) | _UNKNOWN_CAUSES
_SPONTANEOUS_CAUSES = frozenset((Cause.SPONTANEOUS, Cause.ACTIVATION,
                                 Cause.ACTIVATION_CONFIRMATION)) | _UNKNOWN_CAUSES
_PERMITTED_CAUSES: dict[int, frozenset[int]] = {
    **dict.fromkeys(COMMAND_TYPES, _ACTIVATION_CAUSES),
    TypeId.C_IC_NA_1: _ACTIVATION_CAUSES,
    TypeId.C_CI_NA_1: _ACTIVATION_CAUSES,
    TypeId.C_CS_NA_1: _SPONTANEOUS_CAUSES,
    **dict.fromkeys(_TEST_TYPES, frozenset((Cause.ACTIVATION, Cause.ACTIVATION_CONFIRMATION))
                    | _UNKNOWN_CAUSES),
    # lib60870 (c104) confirms a read with ACTCON before the data: tolerated
    TypeId.C_RD_NA_1: frozenset((Cause.REQUEST, Cause.ACTIVATION_CONFIRMATION))
    | _UNKNOWN_CAUSES,
    TypeId.C_RP_NA_1: _ACTIVATION_CAUSES,
    TypeId.C_CD_NA_1: _SPONTANEOUS_CAUSES,
    # parameters also come with the interrogation causes (in answers: for asdu_cb)
    **dict.fromkeys(PARAMETER_TYPES, _ACTIVATION_CAUSES | _INTERROGATED),
    TypeId.P_AC_NA_1: _ACTIVATION_CAUSES,
}
# served by messages.Requests
_MESSAGE_TYPES = frozenset((TypeId.C_RD_NA_1, TypeId.C_RP_NA_1, TypeId.C_CD_NA_1,
                            TypeId.P_AC_NA_1)) | PARAMETER_TYPES


class Settings(NamedTuple):
    """Per-connection parameters and callbacks (see :func:`connect`)."""

    interrogate_cb: InterrogateCb | None = None
    counter_interrogate_cb: CounterInterrogateCb | None = None
    command_cb: CommandCb | None = None
    response_timeout: float = 15
    supervisory_timeout: float = 10
    test_timeout: float = 20
    send_window_size: int = 12
    receive_window_size: int = 8
    group_interrogate_cb: GroupInterrogateCb | None = None
    clock_sync_cb: ClockSyncCb | None = None
    receive_queue_size: int = 1024
    send_queue_size: int = 10_000
    profile: Profile = DEFAULT_PROFILE
    read_cb: ReadCb | None = None
    reset_cb: ResetCb | None = None
    delay_cb: DelayCb | None = None
    parameter_cb: ParameterCb | None = None
    asdu_cb: AsduCb | None = None
    enabled_cb: EnabledCb | None = None
    select_timeout: float | None = None
    command_max_age: float | None = None
    file_provider: FileProvider | None = None

    def session(self, role: Role, clock: Callable[[], float]) -> Session:
        if isinstance(self.send_queue_size, bool) or not isinstance(
                self.send_queue_size, int) or self.send_queue_size < 1:
            raise ValueError(f"send_queue_size {self.send_queue_size!r} is no positive int")
        if not isinstance(self.profile, Profile):
            raise TypeError(f"profile {self.profile!r} is not a codec.Profile")
        self.profile.check()
        for name in ("select_timeout", "command_max_age"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")
        return Session(role, t1=self.response_timeout, t2=self.supervisory_timeout,
                       t3=self.test_timeout, k=self.send_window_size,
                       w=self.receive_window_size, clock=clock)


class _Batch:
    """``Data`` waiting to be packed and sent: ``items[pos:]``. ``answers``: the request
    type (C_IC_NA_1, C_CI_NA_1) whose answer this is, None for ``notify_data_change``."""

    __slots__ = ("answers", "items", "pos")

    def __init__(self, items: Sequence[Data], answers: TypeId | None = None) -> None:
        self.items = items
        self.pos = 0
        self.answers = answers


class _Request:
    """An interrogation (or counter interrogation) we sent and its collected data."""

    __slots__ = ("data", "future")

    def __init__(self, future: asyncio.Future[list[Data]]) -> None:
        self.future = future
        self.data: list[Data] = []


def _addr(sockname: Any) -> Address:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return Address(str(sockname[0]), int(sockname[1]))
    return Address(str(sockname), 0)


class Connection(FileClient, Requests, Resource):
    """One IEC 104 connection (create with :func:`connect` or :func:`~iec104.listen`).

    Both ends have the same API: either side may send data, interrogate or command, and
    the callbacks given to ``connect``/``listen`` answer the peer's requests.
    """

    def __init__(self, transport: asyncio.Transport, role: Role, settings: Settings,
                 group: Group) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._settings = settings
        self._group = group
        self._session = settings.session(role, self._loop.time)
        self._info = ConnectionInfo(_addr(transport.get_extra_info("sockname")),
                                    _addr(transport.get_extra_info("peername")))
        self._log_prefix = (f"{self._info.local_addr.host}:{self._info.local_addr.port} <-> "
                            f"{self._info.remote_addr.host}:{self._info.remote_addr.port}")
        self._pending: collections.deque[bytes | _Batch] = collections.deque()
        self._queued = 0  # Data items and encoded ASDUs in _pending
        self._flush_scheduled = False
        self._in_receive = False
        self._write_paused = False
        self._read_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._received: collections.deque[list[Data]] = collections.deque()
        self._receive_waiter: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._encode_error: EncodeError | None = None
        self._started: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._interrogation: _Request | None = None
        self._interrogation_lock = asyncio.Lock()
        self._counter_interrogation: _Request | None = None
        self._counter_interrogation_lock = asyncio.Lock()
        self._commands: dict[tuple[int, int, int], asyncio.Future[bool]] = {}
        self._simple: dict[int, asyncio.Future[bool]] = {}  # clock sync, test: by type
        self._simple_locks = {TypeId.C_CS_NA_1: asyncio.Lock(),
                              TypeId.C_TS_TA_1: asyncio.Lock()}
        self._close_reason: str | None = None
        self._test_counter = 0
        self._profile = settings.profile
        self._wall_offset = _time.time() - self._loop.time()  # the wall clock, on the loop's
        self._gate = (CommandGate(settings.select_timeout, settings.command_max_age,
                                  self._loop.time, self._wall_offset)
                      if settings.select_timeout or settings.command_max_age else None)
        self._redundancy: GroupState | None = None  # set by the server
        self._transfer_waiter: asyncio.Future[None] | None = None  # start()/stop()
        self._init_requests()
        self._files = FileService(self, settings.file_provider, settings.response_timeout,
                                  settings.profile)
        group.on_close(self._cleanup)

    # -- public API ------------------------------------------------------------------------

    @property
    def async_group(self) -> Group:
        """Lifetime of the connection (closing it closes the socket)."""
        return self._group

    @property
    def info(self) -> ConnectionInfo:
        """Local and remote address."""
        return self._info

    @property
    def session(self) -> Session:
        """The APCI state machine (read it; do not drive it)."""
        return self._session

    @property
    def close_reason(self) -> str | None:
        """Why the connection closed (protocol error, timeout, peer), if known."""
        return self._close_reason

    @property
    def ssl_object(self) -> _ssl.SSLObject | None:
        """The TLS object when the connection uses TLS."""
        return self._transport.get_extra_info("ssl_object")

    @property
    def profile(self) -> Profile:
        """Field sizes of the ASDUs (COT, common address, IOA octets)."""
        return self._profile

    @property
    def is_enabled(self) -> bool:
        """Whether data transfer is started (STARTDT confirmed, no STOPDT since)."""
        return self._session.state is State.STARTED

    async def start(self) -> None:
        """Start data transfer (STARTDT act) and wait for STARTDT con; nothing to do when
        started already. Only the controlling station (client) starts and stops.

        Raises:
            LocalProtocolError: not the controlling station, or a STOPDT is under way.
            ConnectionError: the connection closed first (e.g. t1 expired).
        """
        await self._transfer(True)

    async def stop(self) -> None:
        """Stop data transfer (STOPDT act) and wait for STOPDT con; the peer first gets
        the acknowledgement of everything received. Data notified meanwhile waits.

        Raises:
            LocalProtocolError: not the controlling station, or a STARTDT is under way.
            ConnectionError: the connection closed first (e.g. t1 expired).
        """
        await self._transfer(False)

    async def _transfer(self, start: bool) -> None:
        if not self.is_open:
            raise ConnectionError("connection is closed")
        state = self._session.state
        if state is (State.STARTED if start else State.STOPPED):
            return
        if state is not (State.STARTING if start else State.STOPPING):
            if start:
                self._session.start()
            else:
                self._session.stop()
            self._flush()
        waiter = self._transfer_waiter
        if waiter is None or waiter.done():
            waiter = self._transfer_waiter = self._loop.create_future()
        await asyncio.shield(waiter)
        if self.is_enabled != start:
            raise LocalProtocolError("data transfer changed state meanwhile")

    def notify_data_change(self, data: Iterable[Data]) -> None:
        """Send data to the peer (as few ASDUs as possible, in order).

        Returns at once: the data is encoded and sent as the send window (k) allows, so a
        slow peer holds back encoding instead of memory filling up. Await :meth:`drain` to
        wait until it is all handed to TCP. The items are snapshotted (a list is copied into
        a tuple, 8 octets per item; pass a tuple to skip even that), so the caller may reuse
        its list at once. At most ``send_queue_size`` items wait: beyond that only the
        latest queued value of each point is kept, and a peer too slow even for those is
        disconnected as a slow consumer (see the module docstring).

        Raises:
            ConnectionError: the connection is closing.
            EncodeError: an item whose value/time fits no type ID (nothing is queued then).
                Values out of range are found while encoding: those items are dropped and
                logged, and the next :meth:`drain` raises the first such error.
        """
        if not self.is_open:
            raise ConnectionError("connection is closed")
        if type(data) is not tuple:
            data = tuple(data)
        for item in data:
            data_type_id(item)
        if data:
            self._enqueue(_Batch(data), len(data))
            self._kick()

    async def drain(self) -> None:
        """Wait until all queued data has been written (handed to TCP within the send
        window).

        Raises:
            ConnectionError: the connection closed first.
            EncodeError: queued data was dropped because it could not be encoded.
        """
        if self._pending:
            if not self.is_open:
                raise ConnectionError("connection closed before the data was sent")
            future = self._loop.create_future()
            self._drain_waiters.append(future)
            await future
        error, self._encode_error = self._encode_error, None
        if error is not None:
            raise error

    async def receive(self) -> list[Data]:
        """Data the peer sent outside interrogations (one list per ASDU, in order).

        Raises:
            ConnectionError: the connection is closed and nothing is left to receive.
        """
        while not self._received:
            if not self.is_open:
                raise ConnectionError("connection is closed")
            waiter = self._receive_waiter  # shared by concurrent receivers
            if waiter is None:
                waiter = self._receive_waiter = self._loop.create_future()
            await asyncio.shield(waiter)
        data = self._received.popleft()
        if self._read_paused and len(self._received) <= self._settings.receive_queue_size // 2:
            self._read_paused = False
            self._transport.resume_reading()
        return data

    async def interrogate(self, asdu_address: int = 0xFFFF, *, group: int = 0
                          ) -> list[Data]:
        """General (station) or group interrogation.

        Args:
            asdu_address: common address, 0xFFFF is broadcast (not supported by every
                device).
            group: 0 for station interrogation (QOI 20), 1..16 for a group (QOI 21..36).

        Returns:
            The data received with the interrogation causes until ACTTERM (empty after a
            negative confirmation).

        Raises:
            ConnectionError: the connection closed first.
        """
        if not 0 <= group <= 16:
            raise ValueError(f"group {group} outside [0, 16]")
        asdu = ASDU(TypeId.C_IC_NA_1, False, Cause.ACTIVATION, False, False, 0, asdu_address,
                    (InformationObject(0, qualifier=20 + group),))
        async with self._interrogation_lock:
            request = self._interrogation = _Request(self._loop.create_future())
            try:
                self._send_asdu(asdu)
                return await request.future
            finally:
                self._interrogation = None

    async def counter_interrogate(self, asdu_address: int = 0xFFFF,
                                  freeze: FreezeCode = FreezeCode.READ, *,
                                  request: int = 5) -> list[Data]:
        """Counter interrogation.

        Args:
            asdu_address: common address (0xFFFF broadcast).
            freeze: FRZ of the qualifier.
            request: RQT, 5 general counter request, 1..4 counter group.

        Returns:
            Counters received with causes INTERROGATED_COUNTER* until ACTTERM (empty after
            a negative confirmation).
        """
        if not 1 <= request <= 5:
            raise ValueError(f"request {request} outside [1, 5]")
        asdu = ASDU(TypeId.C_CI_NA_1, False, Cause.ACTIVATION, False, False, 0, asdu_address,
                    (InformationObject(0, FreezeCode(freeze), qualifier=request),))
        async with self._counter_interrogation_lock:
            req = self._counter_interrogation = _Request(self._loop.create_future())
            try:
                self._send_asdu(asdu)
                return await req.future
            finally:
                self._counter_interrogation = None

    async def send_command(self, cmd: Command) -> bool:
        """Send a command and wait for its (de)activation confirmation.

        Returns:
            True for a positive confirmation; False for a negative one, or when the same
            command (type, ASDU and IO address) is already waiting for its confirmation.

        Raises:
            EncodeError: the command cannot be encoded.
            ConnectionError: the connection closed first.
        """
        asdu = command_to_asdu(cmd)
        key = (int(asdu.type_id), cmd.asdu_address, cmd.io_address)
        if key in self._commands:
            return False
        future: asyncio.Future[bool] = self._loop.create_future()
        self._commands[key] = future
        try:
            self._send_asdu(asdu)
            return await future
        finally:
            del self._commands[key]

    async def clock_sync(self, time: Time | None = None, asdu_address: int = 0xFFFF) -> bool:
        """Clock synchronization (C_CS_NA_1).

        Args:
            time: CP56Time2a to send; default: now, UTC.
            asdu_address: common address.

        Returns:
            Whether the peer confirmed positively.
        """
        if time is None:
            time = Time.from_datetime(datetime.datetime.now(datetime.UTC))
        asdu = ASDU(TypeId.C_CS_NA_1, False, Cause.ACTIVATION, False, False, 0, asdu_address,
                    (InformationObject(0, time=time),))
        return await self._simple_request(asdu)

    async def test_command(self, asdu_address: int = 0xFFFF) -> bool:
        """Test command with time tag (C_TS_TA_1, the 104 test command).

        Returns:
            Whether the peer confirmed positively.
        """
        self._test_counter = (self._test_counter + 1) & 0xFFFF
        time = Time.from_datetime(datetime.datetime.now(datetime.UTC))
        asdu = ASDU(TypeId.C_TS_TA_1, False, Cause.ACTIVATION, False, False, 0, asdu_address,
                    (InformationObject(0, self._test_counter, time=time),))
        return await self._simple_request(asdu)

    def send_asdu(self, asdu: ASDU | RawASDU) -> None:
        """Send any ASDU as it is (after what is already queued).

        Raises:
            EncodeError: it cannot be encoded.
            ConnectionError: the connection is closing.
        """
        self._send_asdu(asdu)

    # -- sending ---------------------------------------------------------------------------

    def _send_asdu(self, asdu: ASDU | RawASDU) -> None:
        if not self.is_open:
            raise ConnectionError("connection is closed")
        self._enqueue(encode_asdu(asdu, self._profile), 1)
        if self._in_receive or self._flush_scheduled:
            self._kick()  # joins the write already coming
        else:
            self._flush()  # a request: send it now (latency over batching)

    async def _simple_request(self, asdu: ASDU) -> bool:
        async with self._simple_locks[asdu.type_id]:
            future: asyncio.Future[bool] = self._loop.create_future()
            self._simple[asdu.type_id] = future
            try:
                self._send_asdu(asdu)
                return await future
            finally:
                del self._simple[asdu.type_id]

    def _enqueue(self, entry: bytes | _Batch, count: int) -> None:
        self._pending.append(entry)
        self._queued += count
        if self._queued > self._settings.send_queue_size:
            self._coalesce()

    def _coalesce(self) -> None:
        """Keep only the latest queued value per point; close as a slow consumer if that
        frees less than a quarter of the queue (see the module docstring)."""
        batches = [e for e in self._pending if type(e) is _Batch and e.answers is None]
        latest: dict[tuple[int, int], tuple[int, int]] = {}  # point -> (batch, index)
        for b, batch in enumerate(batches):
            items = batch.items
            for i in range(batch.pos, len(items)):
                item = items[i]
                latest[(item.asdu_address, item.io_address)] = (b, i)
        kept: list[list[Data]] = [[] for _ in batches]
        for b, i in sorted(latest.values()):
            kept[b].append(batches[b].items[i])
        before = self._queued
        for batch, items in zip(batches, kept, strict=True):
            self._queued -= len(batch.items) - batch.pos - len(items)
            batch.items, batch.pos = items, 0
        self._pending = collections.deque(
            e for e in self._pending if type(e) is not _Batch or e.items)
        size = self._settings.send_queue_size
        mlog.info("%s: send queue reached %d items: kept the latest of %d points, %d left",
                  self._log_prefix, before, len(latest), self._queued)
        if self._queued > size * 3 // 4:
            self._fail(f"slow consumer: {self._queued} items still queued for "
                       f"{len(latest)} points after coalescing (send_queue_size {size})")

    def _encode_batch(self, batch: _Batch) -> bytes | None:
        """Encode the next ASDU of ``batch`` (dropping and reporting objects that do not
        encode); None if none of them did."""
        start = batch.pos
        profile = self._profile
        asdu, batch.pos = pack_data(batch.items, start, profile)
        if batch.answers is None:
            self._queued -= batch.pos - start
        try:
            return encode_asdu(asdu, profile)
        except EncodeError:
            pass
        good = []
        for obj in asdu.objects:
            single = asdu._replace(objects=(obj,))
            try:
                encode_asdu(single, profile)
            except EncodeError as exc:
                self._encode_failed(exc, single)
            else:
                good.append(obj)
        return encode_asdu(asdu._replace(objects=tuple(good)), profile) if good else None

    def _encode_failed(self, exc: EncodeError, asdu: ASDU) -> None:
        mlog.error("%s: dropping data that cannot be encoded: %s (%r)", self._log_prefix,
                   exc, asdu_to_data(asdu))
        if self._encode_error is None:
            self._encode_error = exc

    def _kick(self) -> None:
        if not self._in_receive and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self, final: bool = False) -> None:
        """Send pending ASDUs within the window and write all output at once."""
        self._flush_scheduled = False
        session = self._session
        if self._group.is_closing and not final:
            return
        window = 0 if self._write_paused else session.send_window
        pending = self._pending
        while window and pending:
            item = pending[0]
            if type(item) is bytes:
                pending.popleft()
                self._queued -= 1
                session.send_asdu(item)
                window -= 1
                continue
            batch = cast("_Batch", item)
            while window and batch.pos < len(batch.items):
                raw = self._encode_batch(batch)
                if raw is not None:
                    session.send_asdu(raw)
                    window -= 1
            if batch.pos >= len(batch.items):
                pending.popleft()
        if not pending and self._drain_waiters:
            for waiter in self._drain_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._drain_waiters.clear()
        out = session.data_to_send()
        if out:
            self._transport.write(out)
        if not final:
            self._arm_timer()

    # -- timers ----------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        deadline = self._session.next_deadline()
        timer = self._timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
            return
        if timer is not None:
            if self._timer_at <= deadline:
                return  # fires first; re-armed then
            timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._group.is_closing:
            return
        try:
            # the loop may run a timer up to its clock resolution early
            self._session.handle_timeout(max(self._loop.time(), self._timer_at))
        except RemoteProtocolError as exc:
            self._fail(str(exc))
            return
        self._flush()

    # -- receiving -------------------------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        if self._group.is_closing:
            return
        session = self._session
        session.receive_data(data)
        self._received_at = self._loop.time()
        self._in_receive = True
        try:
            while True:
                event = session.next_event()
                if event is NEED_DATA:
                    break
                if type(event) is AsduReceived:
                    self._on_asdu(event.asdu)  # type: ignore[union-attr]
                elif type(event) is DataTransferStarted:
                    mlog.debug("%s: data transfer started", self._log_prefix)
                    if not self._started.done():
                        self._started.set_result(None)
                    self._on_enabled(True)
                elif type(event) is DataTransferStopped:
                    mlog.debug("%s: data transfer stopped", self._log_prefix)
                    self._on_enabled(False)
                # Acknowledged: the window opened, _flush below sends more
        except RemoteProtocolError as exc:
            self._fail(str(exc))
            return
        finally:
            self._in_receive = False
        self._flush()

    def _on_enabled(self, enabled: bool) -> None:
        waiter = self._transfer_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._redundancy is not None:
            if enabled:
                self._redundancy.started(self)
            else:
                self._redundancy.stopped(self)
        self._call("enabled", self._settings.enabled_cb, (enabled,), lambda _: None)

    def _on_asdu(self, raw: bytes) -> None:
        try:
            asdu = decode_asdu(raw, self._profile)
        except DecodeError as exc:
            mlog.warning("%s: ignoring undecodable ASDU: %s [%s]", self._log_prefix, exc,
                         raw.hex(" "))
            return
        type_id = asdu.type_id
        if type_id in MONITOR_TYPES:
            self._on_data(asdu)  # type: ignore[arg-type]
        elif isinstance(asdu, RawASDU):
            self._on_unhandled(asdu)
        elif asdu.cause not in _PERMITTED_CAUSES.get(type_id, (asdu.cause,)):
            mlog.info("%s: refusing %s with cause %s", self._log_prefix,
                      type_name(type_id), cause_name(asdu.cause))
            self._respond(asdu._replace(cause=Cause.UNKNOWN_CAUSE, negative=True))
        elif type_id in FILE_TYPES:
            self._files.on_asdu(asdu)
        elif type_id in COMMAND_TYPES:
            self._on_command(asdu)
        elif type_id is TypeId.C_IC_NA_1:
            self._on_interrogation(asdu)
        elif type_id is TypeId.C_CI_NA_1:
            self._on_counter_interrogation(asdu)
        elif type_id is TypeId.C_CS_NA_1:
            self._on_clock_sync(asdu)
        elif type_id in _TEST_TYPES:
            self._on_test(asdu)
        elif type_id in _MESSAGE_TYPES:
            self._on_request(asdu)
        else:
            self._on_unhandled(asdu)

    def _on_data(self, asdu: ASDU) -> None:
        data = asdu_to_data(asdu)
        cause = asdu.cause
        if cause in _INTERROGATED and self._interrogation is not None:
            self._interrogation.data.extend(data)
            return
        if cause in _COUNTER_INTERROGATED and self._counter_interrogation is not None:
            self._counter_interrogation.data.extend(data)
            return
        if cause == Cause.REQUEST and self._reads:
            data = self._take_read_answers(data)
            if not data:
                return
        self._received.append(data)
        waiter = self._receive_waiter
        if waiter is not None:
            self._receive_waiter = None
            waiter.set_result(None)
        if not self._read_paused and len(self._received) >= self._settings.receive_queue_size:
            self._read_paused = True
            self._transport.pause_reading()

    def _on_unhandled(self, asdu: ASDU | RawASDU) -> None:
        """An ASDU the driver does not handle: ``asdu_cb``'s, else a request is refused."""

        def done(handled: Any) -> None:
            if handled is True or not self.is_open:
                return
            if asdu.cause in _REQUEST_CAUSES and not asdu.negative:
                mlog.info("%s: refusing unsupported request type %s", self._log_prefix,
                          asdu.type_id)
                self._respond(asdu._replace(cause=Cause.UNKNOWN_TYPE, negative=True))
            else:
                mlog.debug("%s: ignoring ASDU %s cause %s", self._log_prefix, asdu.type_id,
                           asdu.cause)

        self._call("asdu", self._settings.asdu_cb, (asdu,), done)

    def _respond(self, asdu: ASDU | RawASDU) -> None:
        if self.is_open:
            self._enqueue(encode_asdu(asdu, self._profile), 1)
            self._kick()

    def _send_answer(self, request: ASDU, data: Sequence[Data]) -> None:
        """Queue ``data`` answering ``request`` (not counted in send_queue_size, never
        coalesced: _answering refuses a second interrogation meanwhile)."""
        self._pending.append(_Batch(data, request.type_id))
        self._kick()

    def _take_notified(self) -> list[Data]:
        """Remove and return the notified data not sent yet (see ``outstation.py``)."""
        taken: list[Data] = []
        for entry in self._pending:
            if type(entry) is _Batch and entry.answers is None:
                taken.extend(entry.items[entry.pos:])
        self._queued -= len(taken)
        self._pending = collections.deque(
            e for e in self._pending if type(e) is not _Batch or e.answers is not None)
        return taken

    def _log_warning(self, message: str, *args: Any) -> None:
        mlog.warning("%s: " + message, self._log_prefix, *args)

    def _confirm(self, request: ASDU, cause: Cause, positive: bool) -> None:
        self._respond(request._replace(cause=cause, negative=not positive))

    def _call(self, what: str, cb: Callable[..., Any] | None, args: tuple[Any, ...],
              done: Callable[[Any], None]) -> None:
        """Call a user callback (plain or coroutine) and pass its result to ``done``;
        a missing callback or an exception passes None."""
        if cb is None:
            done(None)
            return
        try:
            result = cb(self, *args)
        except Exception as exc:  # noqa: BLE001 -- a user callback failing means "negative"
            mlog.warning("%s: %s callback failed: %s", self._log_prefix, what, exc,
                         exc_info=exc)
            done(None)
            return
        if inspect.isawaitable(result):
            self._group.spawn(self._await_callback, what, result, done)
        else:
            done(result)

    async def _await_callback(self, what: str, result: Awaitable[Any],
                              done: Callable[[Any], None]) -> None:
        try:
            value = await result
        except Exception as exc:  # noqa: BLE001 -- a user callback failing means "negative"
            mlog.warning("%s: %s callback failed: %s", self._log_prefix, what, exc,
                         exc_info=exc)
            value = None
        done(value)

    # requests from the peer

    def _on_interrogation(self, asdu: ASDU) -> None:
        cause = asdu.cause
        if cause == Cause.ACTIVATION and not asdu.negative:
            qoi = asdu.objects[0].qualifier if asdu.objects else None
            if qoi == 20:
                cb: Any = self._settings.interrogate_cb
                args: tuple[Any, ...] = (asdu.common_address,)
            elif qoi is not None and 21 <= qoi <= 36:
                cb = self._settings.group_interrogate_cb
                args = (asdu.common_address, qoi - 20)
            else:
                self._confirm(asdu, Cause.ACTIVATION_CONFIRMATION, False)
                return
            if self._answering(asdu):
                return
            self._call("interrogate", cb, args,
                       lambda data: self._answer_with_data(asdu, qoi, data))
        elif cause == Cause.DEACTIVATION:
            self._confirm(asdu, Cause.DEACTIVATION_CONFIRMATION, False)
        else:
            self._on_reply(self._interrogation, asdu)

    def _on_counter_interrogation(self, asdu: ASDU) -> None:
        cause = asdu.cause
        if cause == Cause.ACTIVATION and not asdu.negative:
            obj = asdu.objects[0] if asdu.objects else None
            rqt = obj.qualifier if obj is not None else None
            if obj is None or rqt is None or not 1 <= rqt <= 5:
                self._confirm(asdu, Cause.ACTIVATION_CONFIRMATION, False)
                return
            if self._answering(asdu):
                return
            data_cause = Cause.INTERROGATED_COUNTER + (0 if rqt == 5 else rqt)
            self._call("counter interrogate", self._settings.counter_interrogate_cb,
                       (asdu.common_address, obj.value),
                       lambda data: self._answer_with_data(asdu, data_cause, data))
        elif cause == Cause.DEACTIVATION:
            self._confirm(asdu, Cause.DEACTIVATION_CONFIRMATION, False)
        else:
            self._on_reply(self._counter_interrogation, asdu)

    def _answer_with_data(self, request: ASDU, cause: int, data: list[Data] | None) -> None:
        if not self.is_open:
            return
        if data is None:
            self._confirm(request, Cause.ACTIVATION_CONFIRMATION, False)
            return
        try:
            data = list(data)
            for item in data:
                data_type_id(item)
        except (EncodeError, TypeError, AttributeError) as exc:
            mlog.warning("%s: interrogation callback returned bad data: %s",
                         self._log_prefix, exc)
            self._confirm(request, Cause.ACTIVATION_CONFIRMATION, False)
            return
        self._confirm(request, Cause.ACTIVATION_CONFIRMATION, True)
        if data:
            self._send_answer(request, [d if d.cause == cause else d._replace(cause=cause)
                                        for d in data])
        self._confirm(request, Cause.ACTIVATION_TERMINATION, True)

    def _answering(self, request: ASDU) -> bool:
        """Whether the answer to an earlier request of this type still waits to be sent:
        then the new one is refused, as outstations do, so answers never pile up."""
        if any(type(e) is _Batch and e.answers == request.type_id for e in self._pending):
            mlog.info("%s: refusing %s: the previous answer is still being sent",
                      self._log_prefix, request.type_id.name)
            self._confirm(request, Cause.ACTIVATION_CONFIRMATION, False)
            return True
        return False

    @staticmethod
    def _on_reply(request: _Request | None, asdu: ASDU) -> None:
        """ACTCON/ACTTERM of our interrogation: negative ACTCON, ACTTERM or an "unknown"
        mirror ends it."""
        if request is None or request.future.done():
            return
        cause = asdu.cause
        if (cause == Cause.ACTIVATION_CONFIRMATION and asdu.negative
                or cause == Cause.ACTIVATION_TERMINATION or cause in _UNKNOWN_CAUSES):
            request.future.set_result(request.data)

    def _on_command(self, asdu: ASDU) -> None:
        cause = asdu.cause
        if cause in (Cause.ACTIVATION, Cause.DEACTIVATION) and not asdu.negative:
            con = (Cause.ACTIVATION_CONFIRMATION if cause == Cause.ACTIVATION
                   else Cause.DEACTIVATION_CONFIRMATION)
            refusal = command_refusal(asdu)
            gate = self._gate
            if refusal is None and gate is not None:
                refusal = gate.refusal(asdu)
            if refusal is not None:
                mlog.info("%s: refusing command: %s", self._log_prefix, refusal)
                self._confirm(asdu, con, False)
                return
            commands = asdu_to_commands(asdu)

            def done(result: Any) -> None:
                if not self.is_open:
                    return
                success = result is True
                if gate is not None:
                    gate.confirmed(asdu, success)
                self._confirm(asdu, con, success)
                if success and cause == Cause.ACTIVATION and any(
                        o.select is not True for o in asdu.objects):
                    self._confirm(asdu, Cause.ACTIVATION_TERMINATION, True)

            self._call("command", self._settings.command_cb, (commands,), done)
        elif cause in (Cause.ACTIVATION_CONFIRMATION, Cause.DEACTIVATION_CONFIRMATION) \
                or cause in _UNKNOWN_CAUSES:
            positive = not asdu.negative and cause not in _UNKNOWN_CAUSES
            for obj in asdu.objects:
                if obj.address is None:  # (secure authentication messages have none)
                    continue
                future = self._commands.get((int(asdu.type_id), asdu.common_address,
                                             obj.address))
                if future is not None and not future.done():
                    future.set_result(positive)
        # ACTIVATION_TERMINATION: the command completed; send_command returned already

    def _on_clock_sync(self, asdu: ASDU) -> None:
        cause = asdu.cause
        if cause == Cause.ACTIVATION and not asdu.negative:
            obj = asdu.objects[0] if asdu.objects else None
            if obj is None or obj.time is None or obj.time.size != TimeSize.SEVEN:
                self._confirm(asdu, Cause.ACTIVATION_CONFIRMATION, False)
                return
            self._call("clock sync", self._settings.clock_sync_cb,
                       (asdu.common_address, obj.time),
                       lambda result: self._is_open_then(
                           self._confirm, asdu, Cause.ACTIVATION_CONFIRMATION,
                           result is True))
        elif cause == Cause.ACTIVATION_CONFIRMATION or cause in _UNKNOWN_CAUSES:
            self._resolve_simple(asdu)

    def _on_test(self, asdu: ASDU) -> None:
        cause = asdu.cause
        if cause == Cause.ACTIVATION and not asdu.negative:
            self._confirm(asdu, Cause.ACTIVATION_CONFIRMATION, True)
        elif cause == Cause.ACTIVATION_CONFIRMATION or cause in _UNKNOWN_CAUSES:
            self._resolve_simple(asdu._replace(type_id=TypeId.C_TS_TA_1))

    def _resolve_simple(self, asdu: ASDU) -> None:
        future = self._simple.get(asdu.type_id)
        if future is not None and not future.done():
            future.set_result(not asdu.negative and asdu.cause not in _UNKNOWN_CAUSES)

    def _is_open_then(self, fn: Callable[..., None], *args: Any) -> None:
        if self.is_open:
            fn(*args)

    # -- closing ---------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        """Close because of a protocol error or timeout, logging why."""
        if self._close_reason is None:
            self._close_reason = reason
        if self._group.is_open:
            mlog.warning("%s: closing connection: %s", self._log_prefix, reason)
        self._group.close()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._close_reason is None:
            self._close_reason = (f"connection lost: {exc}" if exc is not None
                                  else "closed by peer")
            if self._group.is_open:
                mlog.info("%s: %s", self._log_prefix, self._close_reason)
        if not self._lost.done():
            self._lost.set_result(None)
        self._group.close()

    async def _cleanup(self) -> None:
        if self._close_reason is None:
            self._close_reason = "closed locally"
            if not self._transport.is_closing() and self._session.error is None:
                self._flush(final=True)  # what the window allows of what was queued
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        error = ConnectionError(f"connection closed: {self._close_reason}")
        self._files.close(error)
        if self._redundancy is not None:
            self._redundancy.stopped(self)
        self._fail_requests(error)
        futures: list[asyncio.Future[Any]] = [self._started, *self._commands.values(),
                                              *self._simple.values(), *self._drain_waiters]
        if self._transfer_waiter is not None:
            futures.append(self._transfer_waiter)
        for request in (self._interrogation, self._counter_interrogation):
            if request is not None:
                futures.append(request.future)
        for future in futures:
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: nobody may be waiting
        if self._receive_waiter is not None:
            self._receive_waiter.set_result(None)
            self._receive_waiter = None
        # what the session already produced is written; then FIN (abort if stuck)
        self._transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost),
                                   self._settings.response_timeout)
        except TimeoutError:
            self._transport.abort()
            await self._lost


class _Protocol(asyncio.Protocol):
    """asyncio glue: forwards transport callbacks to the :class:`Connection`."""

    def __init__(self, role: Role, settings: Settings,
                 on_connection: Callable[[Connection], None] | None = None,
                 group: Group | None = None) -> None:
        self._role = role
        self._settings = settings
        self._on_connection = on_connection
        self._parent_group = group
        self.connection: Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        group = (self._parent_group.create_subgroup() if self._parent_group is not None
                 else Group())
        conn = self.connection = Connection(transport, self._role, self._settings, group)
        self.data_received = conn._data_received  # type: ignore[method-assign]
        if self._on_connection is not None:
            self._on_connection(conn)
        conn._arm_timer()  # t3 from the start

    def data_received(self, data: bytes) -> None:  # replaced in connection_made
        assert self.connection is not None
        self.connection._data_received(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is not None:
            self.connection._connection_lost(exc)

    def pause_writing(self) -> None:
        if self.connection is not None:
            self.connection._write_paused = True

    def resume_writing(self) -> None:
        if self.connection is not None:
            self.connection._write_paused = False
            self.connection._kick()


async def connect(addr: Address,
                  interrogate_cb: InterrogateCb | None = None,
                  counter_interrogate_cb: CounterInterrogateCb | None = None,
                  command_cb: CommandCb | None = None,
                  response_timeout: float = 15,
                  supervisory_timeout: float = 10,
                  test_timeout: float = 20,
                  send_window_size: int = 12,
                  receive_window_size: int = 8,
                  *,
                  ssl_context: _ssl.SSLContext | None = None,
                  server_hostname: str | None = None,
                  group_interrogate_cb: GroupInterrogateCb | None = None,
                  clock_sync_cb: ClockSyncCb | None = None,
                  receive_queue_size: int = 1024,
                  send_queue_size: int = 10_000,
                  profile: Profile = DEFAULT_PROFILE,
                  read_cb: ReadCb | None = None,
                  reset_cb: ResetCb | None = None,
                  delay_cb: DelayCb | None = None,
                  parameter_cb: ParameterCb | None = None,
                  asdu_cb: AsduCb | None = None,
                  enabled_cb: EnabledCb | None = None,
                  select_timeout: float | None = None,
                  command_max_age: float | None = None,
                  started: bool = True,
                  file_provider: FileProvider | None = None,
                  ) -> Connection:
    """Connect to an IEC 104 server (controlled station) and start data transfer.

    Args:
        addr: the server's address.
        interrogate_cb: answers station interrogations from the peer.
        counter_interrogate_cb: answers counter interrogations from the peer.
        command_cb: answers commands from the peer.
        response_timeout: t1 in seconds (also bounds the STARTDT handshake).
        supervisory_timeout: t2 in seconds.
        test_timeout: t3 in seconds.
        send_window_size: k.
        receive_window_size: w.
        ssl_context: TLS (IEC 62351-3) when given.
        server_hostname: TLS server name (default: ``addr.host``).
        group_interrogate_cb: answers group interrogations (QOI 21..36).
        clock_sync_cb: answers clock synchronization; without it the answer is negative.
        receive_queue_size: ASDUs buffered for :meth:`Connection.receive` before reading
            pauses.
        send_queue_size: items (``Data``, or encoded ASDUs) waiting to be sent, >= 1;
            when reached, queued notified data is coalesced to the latest value per point,
            and a peer too slow even for that is disconnected (``close_reason`` starts with
            "slow consumer"). A single ``notify_data_change`` counts whole: raise it for
            bulk loads of more points than this.
        profile: field sizes (COT 1/2, common address 1/2, IOA 1/2/3 octets); the
            standard 104 profile is 2/2/3.
        read_cb: answers read commands (C_RD_NA_1) from the peer.
        reset_cb: answers reset process commands (C_RP_NA_1).
        delay_cb: told the transmission delay the peer loaded (C_CD_NA_1).
        parameter_cb: accepts or refuses parameters (P_ME_*) and activations (P_AC_NA_1).
        asdu_cb: gets every ASDU the driver does not handle (private type IDs too);
            :meth:`Connection.send_asdu` sends any ASDU.
        enabled_cb: called when data transfer starts (STARTDT con) or stops.
        select_timeout: enforce select before operate for commands from the peer: an
            execute needs a select of the same point and value confirmed on this
            connection within this many seconds (None: commands go to ``command_cb``
            as they come).
        command_max_age: refuse time-tagged commands (C_*_TA_1) whose time tag is
            further than this many seconds from now (None: no check).
        started: False: connect without STARTDT (a standby connection of a redundancy
            group, IEC 104 10.3); :meth:`Connection.start` starts it later.
        file_provider: the files this end offers to and accepts from the peer (see
            :mod:`iec104.driver.files`); None refuses file requests.

    Raises:
        OSError: TCP/TLS connection failed.
        ConnectionError: closed before STARTDT was confirmed (e.g. t1 expired).
    """
    loop = asyncio.get_running_loop()
    settings = Settings(interrogate_cb, counter_interrogate_cb, command_cb, response_timeout,
                        supervisory_timeout, test_timeout, send_window_size,
                        receive_window_size, group_interrogate_cb, clock_sync_cb,
                        receive_queue_size, send_queue_size, profile=profile,
                        read_cb=read_cb, reset_cb=reset_cb, delay_cb=delay_cb,
                        parameter_cb=parameter_cb, asdu_cb=asdu_cb, enabled_cb=enabled_cb,
                        select_timeout=select_timeout, command_max_age=command_max_age,
                        file_provider=file_provider)
    settings.session(Role.CONTROLLING, loop.time)  # validate before connecting
    kwargs: dict[str, Any] = {}
    if ssl_context is not None:
        kwargs = {"ssl": ssl_context, "server_hostname": server_hostname or addr.host}
    _, protocol = await loop.create_connection(
        lambda: _Protocol(Role.CONTROLLING, settings), addr.host, addr.port, **kwargs)
    conn = protocol.connection
    assert conn is not None
    if not started:
        return conn
    try:
        conn._session.start()
        conn._flush()
        await asyncio.shield(conn._started)
    except BaseException:
        await asyncio.shield(conn.async_close())
        raise
    return conn

