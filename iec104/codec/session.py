"""APCI session: the IEC 60870-5-104 transport state machine, sans-IO.

Theory of operation
-------------------
A :class:`Session` is one end of one 104 connection. It owns no socket, no task and no
timer: the caller moves bytes and time in and out of it, as with h11.

* Bytes received from TCP go in with :meth:`Session.receive_data`; :meth:`Session.next_event`
  then returns one event at a time (:class:`AsduReceived`, :class:`Acknowledged`,
  :class:`DataTransferStarted`, :class:`DataTransferStopped`) or :data:`NEED_DATA`.
  A protocol violation (malformed octets, a wrong N(S), an N(R) acknowledging frames that
  were never sent) raises :class:`RemoteProtocolError`; the session is then ``CLOSED`` and
  keeps raising the same error.
* What the session wants to send (I-frames from :meth:`Session.send_asdu`, S-frames,
  U-frames) accumulates in one outgoing buffer that :meth:`Session.data_to_send` drains, so
  a burst of frames becomes one ``transport.write``.
* Time comes from the injected ``clock`` (``time.monotonic`` by default; tests pass a fake
  one). :meth:`Session.next_deadline` says when the session next needs attention;
  :meth:`Session.handle_timeout` is called at (or after) that instant.

Rules implemented (IEC 60870-5-104 clause 5):

* STARTDT/STOPDT: the controlling station (client) sends STARTDT act and may send I-frames
  once STARTDT con arrives; the controlled station (server) answers STARTDT act with con and
  may send I-frames from then on. On STOPDT act the controlled station sends no new
  I-frames, waits until all of its I-frames are acknowledged, acknowledges what it received
  and answers STOPDT con.
* k: at most ``k`` sent I-frames may be unacknowledged; :attr:`Session.send_window` says how
  many more may be sent now and :meth:`Session.send_asdu` refuses beyond that
  (:class:`LocalProtocolError`): the caller keeps its backlog and sends more after an
  :class:`Acknowledged` event.
* w: received I-frames are acknowledged (S-frame) at the latest when ``w`` of them are
  unacknowledged; the check runs when the caller collects output (:meth:`data_to_send`), so
  one S-frame acknowledges a whole burst read at once. Any sent I-frame acknowledges too.
* t1: an I-frame or a U-frame act not acknowledged/confirmed within ``t1`` closes the session.
* t2: an S-frame is sent ``t2`` after the first unacknowledged I-frame was received, if
  nothing acknowledged it meanwhile (t2 < t1).
* t3: after ``t3`` without any received frame a TESTFR act is sent (and t1 then applies to
  its con); a TESTFR act received is answered with TESTFR con in any state.
* Sequence numbers are 15 bit and wrap around (:func:`seq_add`, :func:`seq_diff`).

The session never parses an ASDU: I-frames carry opaque ``bytes`` in both directions.

A passive observer (a capture analyzer) models each end with its own session: it feeds
what that end received to :meth:`Session.receive_data` and what it sent to
:meth:`Session.observe_sent`. The session then produces no output of its own and checks the
observed end's frames (N(S), k, N(R)) as well as the peer's; t1 still runs.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from .apci import (
    MAX_ASDU_SIZE,
    IFrame,
    SFrame,
    UFrame,
    UFunction,
    encode_apdu,
    i_frame_header,
    s_frame,
    seq_add,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .framer import NEED_DATA, Framer, Malformed, _Sentinel

__all__ = [
    "NEED_DATA",
    "Acknowledged",
    "AsduReceived",
    "DataTransferStarted",
    "DataTransferStopped",
    "Event",
    "Role",
    "Session",
    "State",
]


class Role(enum.Enum):
    """Which end of the connection the session is."""

    CONTROLLING = "controlling"
    """The client (master): sends STARTDT/STOPDT act."""
    CONTROLLED = "controlled"
    """The server (outstation): waits for STARTDT act."""


class State(enum.Enum):
    """Data transfer state."""

    STOPPED = "stopped"
    """No I-frames may be sent (initial state)."""
    STARTING = "starting"
    """Controlling station: STARTDT act sent, waiting for con."""
    STARTED = "started"
    """I-frames may be sent."""
    STOPPING = "stopping"
    """STOPDT act sent (controlling) or received with I-frames still unacknowledged
    (controlled); no new I-frames may be sent."""
    CLOSED = "closed"
    """A protocol error or t1 expiry ended the session."""


@dataclass(frozen=True, slots=True)
class AsduReceived:
    """An I-frame arrived in sequence.

    Attributes:
        ssn: its send sequence number N(S) in [0, 32767].
        asdu: its raw ASDU octets (decode with ``codec.decode_asdu``).
    """

    ssn: int
    asdu: bytes


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The peer acknowledged ``count`` (>= 1) of our I-frames; N(R) is ``rsn``."""

    rsn: int
    count: int


@dataclass(frozen=True, slots=True)
class DataTransferStarted:
    """STARTDT completed (con received, or act received and answered)."""


@dataclass(frozen=True, slots=True)
class DataTransferStopped:
    """STOPDT completed (con received, or act received and answered)."""


Event = AsduReceived | Acknowledged | DataTransferStarted | DataTransferStopped

_STARTDT_ACT = encode_apdu(UFrame(UFunction.STARTDT_ACT))
_STARTDT_CON = encode_apdu(UFrame(UFunction.STARTDT_CON))
_STOPDT_ACT = encode_apdu(UFrame(UFunction.STOPDT_ACT))
_STOPDT_CON = encode_apdu(UFrame(UFunction.STOPDT_CON))
_TESTFR_ACT = encode_apdu(UFrame(UFunction.TESTFR_ACT))
_TESTFR_CON = encode_apdu(UFrame(UFunction.TESTFR_CON))


class Session:
    """One end of an IEC 104 connection (see the module docstring).

    Args:
        role: ``Role.CONTROLLING`` (client) or ``Role.CONTROLLED`` (server).
        t1: response timeout in seconds (> 0): unacknowledged I-frame / unconfirmed U act.
        t2: supervisory timeout in seconds (> 0): acknowledge received I-frames.
        t3: test timeout in seconds (> 0): send TESTFR act after this long without input.
        k: send window, unacknowledged I-frames allowed in [1, 32767].
        w: acknowledge after at most ``w`` received I-frames, in [1, 32767].
        clock: monotonic time source in seconds.

    Raises:
        ValueError: a parameter outside its range.
    """

    __slots__ = (
        "_ack",
        "_clock",
        "_error",
        "_events",
        "_framer",
        "_last_rx",
        "_out",
        "_rx_first",
        "_rx_unacked",
        "_sent_framer",
        "_sent_rsn",
        "_sent_times",
        "_state",
        "_stop_pending",
        "_u_act",
        "_vr",
        "_vs",
        "k",
        "role",
        "t1",
        "t2",
        "t3",
        "w",
    )

    def __init__(self, role: Role, *, t1: float = 15.0, t2: float = 10.0, t3: float = 20.0,
                 k: int = 12, w: int = 8, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(role, Role):
            raise TypeError(f"role {role!r} is not a Role")
        for name, value in (("t1", t1), ("t2", t2), ("t3", t3)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name, value in (("k", k), ("w", w)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 32768:
                raise ValueError(f"{name} must be in [1, 32767], got {value!r}")
        self.role = role
        self.t1 = float(t1)
        self.t2 = float(t2)
        self.t3 = float(t3)
        self.k = k
        self.w = w
        self._clock = clock
        self._framer = Framer()
        self._state = State.STOPPED
        self._vs = 0                   # V(S): N(S) of the next I-frame we send
        self._ack = 0                  # oldest of our I-frames not yet acknowledged
        self._sent_times: collections.deque[float] = collections.deque()  # per unacked I
        self._vr = 0                   # V(R): N(S) we expect next
        self._rx_unacked = 0           # received I-frames we have not acknowledged
        self._rx_first = 0.0           # when the oldest of them arrived (t2)
        self._last_rx = clock()        # when any frame last arrived (t3)
        self._u_act: dict[UFunction, float] = {}  # U act sent -> when (t1)
        self._stop_pending = False     # controlled: STOPDT act waits for our acks
        self._out = bytearray()
        self._events: collections.deque[Event] = collections.deque()
        self._error: RemoteProtocolError | None = None
        self._sent_framer: Framer | None = None  # observe_sent(): a passive observer
        self._sent_rsn = 0                       # observe_sent(): last N(R) this end sent

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """Current data transfer state."""
        return self._state

    @property
    def send_sequence(self) -> int:
        """V(S): N(S) of the next I-frame to send, in [0, 32767]."""
        return self._vs

    @property
    def receive_sequence(self) -> int:
        """V(R): N(S) expected in the next received I-frame, in [0, 32767]."""
        return self._vr

    @property
    def unacknowledged(self) -> int:
        """Sent I-frames the peer has not acknowledged yet, in [0, k]."""
        return len(self._sent_times)

    @property
    def unacknowledged_received(self) -> int:
        """Received I-frames we have not acknowledged yet."""
        return self._rx_unacked

    @property
    def send_window(self) -> int:
        """I-frames that :meth:`send_asdu` accepts now (0 unless ``STARTED``)."""
        if self._state is not State.STARTED:
            return 0
        return self.k - len(self._sent_times)

    @property
    def error(self) -> RemoteProtocolError | None:
        """The error that closed the session, if any."""
        return self._error

    # -- commands from the local user ------------------------------------------------------

    def start(self) -> None:
        """Controlling station: send STARTDT act.

        Raises:
            LocalProtocolError: not the controlling station, or not ``STOPPED``.
        """
        if self.role is not Role.CONTROLLING:
            raise LocalProtocolError("only the controlling station sends STARTDT act")
        if self._state is not State.STOPPED:
            raise LocalProtocolError(f"STARTDT act in state {self._state.value}")
        self._out += _STARTDT_ACT
        self._u_act[UFunction.STARTDT_ACT] = self._clock()
        self._state = State.STARTING

    def stop(self) -> None:
        """Controlling station: acknowledge what was received and send STOPDT act.

        Raises:
            LocalProtocolError: not the controlling station, or not ``STARTED``.
        """
        if self.role is not Role.CONTROLLING:
            raise LocalProtocolError("only the controlling station sends STOPDT act")
        if self._state is not State.STARTED:
            raise LocalProtocolError(f"STOPDT act in state {self._state.value}")
        self._send_ack()
        self._out += _STOPDT_ACT
        self._u_act[UFunction.STOPDT_ACT] = self._clock()
        self._state = State.STOPPING

    def send_asdu(self, asdu: bytes) -> None:
        """Queue one I-frame carrying ``asdu`` (1..249 octets); it acknowledges all
        received I-frames.

        Raises:
            LocalProtocolError: not ``STARTED``, or the send window (k) is full.
            EncodeError: the ASDU is empty or longer than 249 octets.
        """
        if self._state is not State.STARTED:
            raise LocalProtocolError(f"cannot send an I-frame in state {self._state.value}")
        sent = self._sent_times
        if len(sent) >= self.k:
            raise LocalProtocolError(f"send window full: {self.k} I-frames unacknowledged")
        size = len(asdu)
        if not 0 < size <= MAX_ASDU_SIZE:
            # let the codec produce the error (it names the field)
            encode_apdu(IFrame(self._vs, self._vr, asdu))
        vs = self._vs
        vr = self._vr
        self._out += i_frame_header(vs, vr, size)
        self._out += asdu
        sent.append(self._clock())
        self._vs = (vs + 1) & 0x7FFF
        self._rx_unacked = 0

    def data_to_send(self) -> bytes:
        """Return (and forget) every octet the session wants written to the peer.

        If ``w`` or more received I-frames are unacknowledged, an S-frame is added first.
        """
        if self._sent_framer is not None:  # observer: the observed end answers itself
            self._out.clear()
            return b""
        if self._rx_unacked >= self.w and self._state is not State.CLOSED:
            self._send_ack()
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out.clear()
        return data

    def observe_sent(self, data: bytes | bytearray | memoryview) -> None:
        """Passive observer: account for octets this end *sent* (seen in a capture).

        An observer models each end with a session: it feeds the octets that end received
        to :meth:`receive_data` (and reads the events), the octets that end sent to this
        method, and discards :meth:`data_to_send` (the answers the session would produce).
        Sent I-frames then count against k and t1, their N(R) acknowledges received
        I-frames, and sent U-frame acts wait for their confirmation as if sent by
        :meth:`start`/:meth:`stop` or t3.

        Raises:
            LocalProtocolError: this end sent malformed octets, a wrong N(S), more than k
                unacknowledged I-frames, or an N(R) acknowledging I-frames it never received.
        """
        if self._sent_framer is None:
            self._sent_framer = Framer()  # from now on the session only observes
            self._out.clear()
        framer = self._sent_framer
        framer.feed(data)
        now = self._clock()
        for frame in framer:
            if isinstance(frame, Malformed):
                raise LocalProtocolError(f"malformed APDU sent at stream offset "
                                         f"{frame.offset}: {frame.reason}")
            apdu = frame.apdu
            if isinstance(apdu, IFrame):
                if apdu.ssn != self._vs:
                    raise LocalProtocolError(f"sent I-frame N(S)={apdu.ssn}, expected "
                                             f"{self._vs}")
                if len(self._sent_times) >= self.k:
                    raise LocalProtocolError(f"sent I-frame N(S)={apdu.ssn} with {self.k} "
                                             f"unacknowledged (k={self.k})")
                self._observe_ack(apdu.rsn)
                self._sent_times.append(now)
                self._vs = (self._vs + 1) & 0x7FFF
            elif isinstance(apdu, SFrame):
                self._observe_ack(apdu.rsn)
            # a U-frame: the framer decodes (decode=True), so Frame.apdu is never None
            elif (function := cast(UFrame, apdu).function) in (
                    UFunction.STARTDT_ACT, UFunction.STOPDT_ACT, UFunction.TESTFR_ACT):
                self._u_act[function] = now
                if function is UFunction.STARTDT_ACT and self._state is State.STOPPED:
                    self._state = State.STARTING
                elif function is UFunction.STOPDT_ACT and self._state is State.STARTED:
                    self._state = State.STOPPING

    def _observe_ack(self, rsn: int) -> None:
        unacked = (self._vr - rsn) & 0x7FFF
        if unacked > (self._vr - self._sent_rsn) & 0x7FFF:
            raise LocalProtocolError(f"sent N(R)={rsn} acknowledges I-frames not received "
                                     f"(V(R)={self._vr}, last N(R) sent {self._sent_rsn})")
        self._sent_rsn = rsn
        self._rx_unacked = unacked

    # -- input -------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed octets received from the peer (any chunking)."""
        if data:
            self._framer.feed(data)
            self._last_rx = self._clock()

    def next_event(self) -> Event | _Sentinel:
        """Process buffered input up to the next event.

        Returns:
            An event, or ``NEED_DATA`` when all buffered input is processed.

        Raises:
            RemoteProtocolError: the peer violated the protocol; the session is closed.
        """
        if self._events:
            return self._events.popleft()
        if self._error is not None:
            raise self._error
        framer = self._framer
        while True:
            frame = framer.next_event()
            if frame is NEED_DATA:
                return NEED_DATA
            if type(frame) is Malformed:
                raw = frame.raw  # type: ignore[union-attr]
                shown = raw[:16].hex(" ") + (" ..." if len(raw) > 16 else "")
                self._fail(f"malformed APDU at stream offset {frame.offset}: "
                           f"{frame.reason} [{shown}]")  # type: ignore[union-attr]
            apdu = frame.apdu  # type: ignore[union-attr]
            if isinstance(apdu, IFrame):
                if apdu.ssn != self._vr:
                    self._fail(f"I-frame N(S)={apdu.ssn} out of sequence: expected "
                               f"{self._vr}")
                count = self._acknowledge(apdu.rsn)
                self._vr = (self._vr + 1) & 0x7FFF
                if not self._rx_unacked:
                    self._rx_first = self._last_rx
                self._rx_unacked += 1
                received = AsduReceived(apdu.ssn, apdu.asdu)
                if count:
                    self._events.append(received)
                    return Acknowledged(apdu.rsn, count)
                return received
            if isinstance(apdu, SFrame):
                count = self._acknowledge(apdu.rsn)
                if count:
                    return Acknowledged(apdu.rsn, count)
                continue
            event = self._on_u(cast(UFrame, apdu).function)  # decode=True: never None
            if event is not None:
                return event

    def next_deadline(self) -> float | None:
        """The clock time at which :meth:`handle_timeout` must run next (None: never)."""
        if self._state is State.CLOSED:
            return None
        deadline = None
        if self._sent_times:
            deadline = self._sent_times[0] + self.t1
        for sent in self._u_act.values():
            if deadline is None or sent + self.t1 < deadline:
                deadline = sent + self.t1
        if self._sent_framer is not None:
            return deadline  # observer: t2/t3 are the observed end's business
        if self._rx_unacked:
            t2 = self._rx_first + self.t2
            if deadline is None or t2 < deadline:
                deadline = t2
        if UFunction.TESTFR_ACT not in self._u_act:
            t3 = self._last_rx + self.t3
            if deadline is None or t3 < deadline:
                deadline = t3
        return deadline

    def handle_timeout(self, now: float | None = None) -> None:
        """Act on every deadline that has passed at ``now`` (default: the clock).

        Sends an S-frame (t2) or TESTFR act (t3) into the outgoing buffer.

        Raises:
            RemoteProtocolError: t1 expired (the session is closed).
        """
        if self._state is State.CLOSED:
            return
        if now is None:
            now = self._clock()
        if self._sent_times and now >= self._sent_times[0] + self.t1:
            self._fail(f"t1 expired: I-frame N(S)={self._ack} not acknowledged within "
                       f"{self.t1:g} s")
        for function, sent in self._u_act.items():
            if now >= sent + self.t1:
                self._fail(f"t1 expired: {function.name} not confirmed within {self.t1:g} s")
        if self._sent_framer is not None:
            return
        if self._rx_unacked and now >= self._rx_first + self.t2:
            self._send_ack()
        if UFunction.TESTFR_ACT not in self._u_act and now >= self._last_rx + self.t3:
            self._out += _TESTFR_ACT
            self._u_act[UFunction.TESTFR_ACT] = now

    # -- internals ---------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        self._state = State.CLOSED
        self._error = RemoteProtocolError(reason)
        self._out.clear()
        self._events.clear()
        raise self._error

    def _send_ack(self) -> None:
        if self._rx_unacked and self._sent_framer is None:
            self._out += s_frame(self._vr)
            self._rx_unacked = 0

    def _acknowledge(self, rsn: int) -> int:
        count = (rsn - self._ack) & 0x7FFF
        if not count:
            return 0
        sent = self._sent_times
        if count > len(sent):
            last = seq_add(self._vs, -1)
            self._fail(f"N(R)={rsn} acknowledges I-frames never sent: "
                       f"{len(sent)} outstanding, N(S) {self._ack}..{last}"
                       if sent else
                       f"N(R)={rsn} acknowledges I-frames never sent: none outstanding, "
                       f"V(S)={self._vs}")
        if count == len(sent):
            sent.clear()
        else:
            for _ in range(count):
                sent.popleft()
        self._ack = rsn
        if self._stop_pending and not sent:
            self._finish_stop()
        return count

    def _finish_stop(self) -> None:
        self._stop_pending = False
        self._send_ack()
        self._out += _STOPDT_CON
        self._state = State.STOPPED
        self._events.append(DataTransferStopped())

    def _on_u(self, function: UFunction) -> Event | None:
        if function is UFunction.TESTFR_ACT:
            self._out += _TESTFR_CON
            return None
        if function is UFunction.TESTFR_CON:
            self._u_act.pop(UFunction.TESTFR_ACT, None)
            return None
        if function is UFunction.STARTDT_ACT:
            self._out += _STARTDT_CON
            if self.role is Role.CONTROLLED and self._state is not State.STARTED:
                self._state = State.STARTED
                self._stop_pending = False
                return DataTransferStarted()
            return None
        if function is UFunction.STARTDT_CON:
            if self._u_act.pop(UFunction.STARTDT_ACT, None) is None:
                return None  # unsolicited confirmation: nothing to confirm
            self._state = State.STARTED
            return DataTransferStarted()
        if function is UFunction.STOPDT_ACT:
            if self.role is not Role.CONTROLLED or self._state is State.STOPPED:
                self._send_ack()
                self._out += _STOPDT_CON
                return None
            if self._stop_pending:
                return None
            self._stop_pending = True
            self._state = State.STOPPING
            if not self._sent_times:
                self._finish_stop()
                return self._events.popleft()
            return None
        # STOPDT_CON
        if self._u_act.pop(UFunction.STOPDT_ACT, None) is None:
            return None
        self._state = State.STOPPED
        return DataTransferStopped()

