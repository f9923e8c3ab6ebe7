"""TCP reassembly for a passive observer: segments in capture order -> per-direction byte streams.

Theory of operation
-------------------
:class:`Reassembler` is a sans-IO object: :meth:`Reassembler.feed` takes one
:class:`~iec104.capture.packet.TcpSegment` and returns the events it caused;
:meth:`Reassembler.close` flushes everything at the end of the input.

*Streams.* Every TCP connection gets a stream number, 0-based in order of first appearance,
counting *all* TCP connections in the input (selected or not), so the numbers equal
Wireshark's ``tcp.stream``. A SYN (without ACK) on a known 4-tuple starts a new stream (port
reuse, a reconnection) when its sequence number differs from Wireshark's ``base_seq`` of that
side: the seq of its first SYN, else its first seq - 1 (a connection the capture joined late),
else the first acknowledgement from the other side - 1; a FIN or RST before does not matter (a
SYN repeating the old ISN is a retransmission to Wireshark, even after a close).

*Selection.* Streams with an endpoint on one of ``ports`` (default 2404) are reassembled. With
``heuristic=True`` (the default, like Zeek's dynamic protocol detection) the other streams are
reassembled tentatively and accepted if the first bytes of a direction frame as IEC 104 APDUs
(:func:`~iec104.capture.heuristic.looks_like_iec104`); events are held back until the
decision. Streams that carried data and were not selected are counted per server port in
:attr:`Reassembler.undecoded`, so a caller can say why an answer is empty.

*Directions.* Direction 0 goes from the connection's client (``TcpConnection.src``) to its server
(``TcpConnection.dst``), direction 1 back. The client is the sender of the SYN; without a SYN, the
side that is not on a selected port; otherwise the side with the higher port number; otherwise
the sender of the first segment.

*Sequence mode* (normal). Each direction tracks the next expected sequence number (unwrapped
beyond 2**32). A segment at the expected position is delivered; one entirely before it is a
retransmission (dropped and counted); one overlapping it is trimmed (first copy wins, as in
Wireshark); one beyond it waits in a bounded out-of-order buffer. A hole is declared lost - a
:class:`Gap` event, after which data continues - when (a) the other side acknowledges bytes past
the hole (they were received, so the capture missed them), (b) the buffer exceeds
``max_pending_segments`` or ``max_pending_bytes``, or (c) the stream ends. Bytes acknowledged by
the peer but never seen at the end of a direction are also reported as a Gap. A segment whose
captured payload is shorter than its IP length says (snapshot length) yields its captured bytes
and a Gap for the rest. A direction seen first mid-way (no SYN) starts at its first data segment.

*Segment mode* (fallback). Some captures have broken sequence numbers (e.g. synthetic traffic
where every segment has the same seq). When a segment repeats already-delivered sequence space
with *different* bytes ``fallback_after`` times (default 1), the direction switches to segment
mode: a :class:`Fallback` event is emitted and from then on each segment's payload is delivered
as it is, in capture order. ``DirectionStats.fallback_segments`` counts them.

*Attribution.* Every :class:`StreamData` event holds bytes of exactly one segment and carries that
segment's frame number and timestamp, so the next layer can attribute each APDU to the frame that
carried its last byte (as Wireshark does for reassembled PDUs). ``StreamData.offset`` is the
number of bytes delivered earlier in the same direction (gaps do not advance it).

*In-order segments* (the dissector's fast lane). :meth:`Reassembler.in_order` takes the
common segment without an event: a data or pure ACK segment (flags ACK, maybe PSH) of an
established, selected, open direction that is not in segment mode, has nothing waiting out
of order, starts exactly at the next expected byte and whose acknowledgement needs no gap in
the other direction. The state advances as :meth:`Reassembler.feed` would advance it, and
the caller takes the bytes (the direction's ``offset`` before them is where they start);
every other segment is refused before anything changes, for :meth:`~Reassembler.feed`.
"""

from __future__ import annotations

import bisect
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from .heuristic import looks_like_iec104
from .packet import ACK, FIN, PSH, RST, SYN, TcpSegment, format_ip, tcp_segments

if TYPE_CHECKING:
    from .reader import CaptureReader

__all__ = [
    "IEC104_PORT",
    "DirectionStats",
    "Fallback",
    "Gap",
    "Reassembler",
    "StreamData",
    "StreamEnd",
    "StreamEvent",
    "StreamStart",
    "TcpConnection",
    "stream_events",
]

IEC104_PORT = 2404
_M32 = 0xFFFFFFFF
_HISTORY = 1 << 16  # delivered bytes kept per direction to judge retransmissions


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpConnection:
    """Who talks to whom in one stream (direction 0 is ``src:sport -> dst:dport``)."""

    stream: int
    """Stream number, 0-based, as Wireshark's ``tcp.stream``."""
    src: str
    """Client address (text form)."""
    sport: int
    dst: str
    """Server address (text form)."""
    dport: int
    first_frame: int
    """Frame number of the stream's first segment."""
    first_time_ns: int | None
    syn_seen: bool
    """Whether the first segment of the stream was a SYN (the opening was captured)."""
    selected_by: str
    """``"port"`` or ``"heuristic"``."""


@dataclass(frozen=True, slots=True)
class StreamStart:
    """A selected stream begins; emitted before any other event of the stream."""

    stream: int
    frame: int
    time_ns: int | None
    connection: TcpConnection


@dataclass(frozen=True, slots=True)
class StreamData:
    """Contiguous bytes of one direction, all from the segment in ``frame``."""

    stream: int
    direction: int
    """0 = client to server (``TcpConnection.src`` -> ``TcpConnection.dst``), 1 = server to
    client."""
    frame: int
    time_ns: int | None
    offset: int
    """Bytes delivered before these in this direction (gaps do not count)."""
    data: bytes


@dataclass(frozen=True, slots=True)
class Gap:
    """Bytes of one direction that the capture does not contain; data resumes after them."""

    stream: int
    direction: int
    frame: int
    """The first frame after the hole (or the frame where the loss was detected)."""
    time_ns: int | None
    offset: int
    """Value of ``StreamData.offset`` at the hole (the next StreamData event has the same
    offset)."""
    seq: int | None
    """Raw TCP sequence number of the first missing byte (``None`` if unknown)."""
    missing: int | None
    """Number of missing bytes (``None`` if unknown)."""


@dataclass(frozen=True, slots=True)
class Fallback:
    """A direction switched from sequence-number reassembly to per-segment delivery."""

    stream: int
    direction: int
    frame: int
    time_ns: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """No more events will come for ``stream``."""

    stream: int
    frame: int
    """Last frame seen in the stream."""
    time_ns: int | None
    reason: str
    """``"closed"`` (FIN both ways or RST), ``"reused"`` (new SYN on the same 4-tuple) or
    ``"end"`` (end of input)."""


StreamEvent = StreamStart | StreamData | Gap | Fallback | StreamEnd


@dataclass(slots=True)
class DirectionStats:
    """Counters for one direction of one stream (mutable, updated as segments arrive)."""

    segments: int = 0
    """Segments with payload seen."""
    bytes: int = 0
    """Bytes delivered in StreamData events."""
    retransmissions: int = 0
    """Segments dropped because every byte had been delivered already."""
    overlaps: int = 0
    """Segments partly delivered before (trimmed)."""
    out_of_order: int = 0
    """Segments that arrived ahead of a hole and waited in the buffer."""
    gaps: int = 0
    gap_bytes: int = 0
    inconsistent: int = 0
    """Segments that repeat sequence space with different bytes."""
    fallback: bool = False
    fallback_segments: int = 0
    late_segments: int = 0
    """Payload segments that arrived after the stream had been closed and flushed."""


# -- internal state ----------------------------------------------------------------------------


class _Half:
    """Reassembly state of one direction (sequence numbers relative to ``base``)."""

    __slots__ = (
        "acked",
        "acked_frame",
        "acked_time",
        "base",
        "direction",
        "fallback",
        "fin",
        "history",
        "idle_seq",
        "next",
        "offset",
        "pending",
        "pending_bytes",
        "pending_keys",
        "probe",
        "stats",
        "stream",
    )

    def __init__(self, stats: DirectionStats, stream: int, direction: int) -> None:
        self.stream = stream
        self.direction = direction
        self.base: int | None = None  # absolute seq of relative position 0
        self.next = 0  # relative position of the next expected byte
        self.offset = 0  # bytes delivered
        # (relative start, wire length, payload, frame, time_ns), sorted by start
        self.pending: list[tuple[int, int, bytes, int, int | None]] = []
        self.pending_keys: list[int] = []
        self.pending_bytes = 0
        self.history = bytearray()
        self.fallback = False
        self.fin: int | None = None
        self.acked: int | None = None
        self.acked_frame = 0
        self.acked_time: int | None = 0
        self.stats = stats
        self.probe: bytearray | None = None
        self.idle_seq: int | None = None  # seq of a pure ACK seen before any data

    def rel(self, seq: int) -> int:
        assert self.base is not None
        d = (seq - self.base - self.next) & _M32
        if d >= 0x80000000:
            d -= 0x100000000
        return self.next + d

    def acknowledge(self, ack: int, frame: int, time_ns: int | None) -> bool:
        """Note that the peer acknowledged the raw sequence number ``ack`` in ``frame``
        (the furthest acknowledgement is kept); False for a nonsense one (more than 2**30
        beyond the next expected byte), which is ignored."""
        acked = self.rel(ack)
        if self.acked is None or acked > self.acked:
            if acked > self.next + (1 << 30):
                return False
            self.acked = acked
            self.acked_frame = frame
            self.acked_time = time_ns
        return True

    def advance(self, data: bytes) -> None:
        """Account ``data``, delivered at ``next``: offset, counters, history, probe."""
        n = len(data)
        self.offset += n
        self.stats.bytes += n
        hist = self.history
        hist += data
        if len(hist) > 2 * _HISTORY:
            del hist[:-_HISTORY]
        if self.probe is not None and len(self.probe) < 512:
            self.probe += data
        self.next += n

    def advance_run(self, data: bytes, ends: Sequence[int]) -> None:
        """:meth:`advance` for consecutive chunks at once (``data``: their octets joined,
        ``ends``: where each chunk ends in it, ascending, every chunk > 0 octets): the
        same state as calling it per chunk."""
        n = len(data)
        self.offset += n
        self.stats.bytes += n
        self.stats.segments += len(ends)
        hist = self.history
        # advance() trims the history to _HISTORY octets whenever it exceeds twice that:
        # replay the trims on the lengths only (one per _HISTORY octets at most)
        kept = len(hist)  # its length after the last trim, at ``total`` octets of data
        total = 0
        if kept + n > 2 * _HISTORY:
            k = bisect.bisect_right(ends, 2 * _HISTORY - kept)
            while k < len(ends):  # chunk k made it exceed: trimmed after it
                kept, total = _HISTORY, ends[k]
                k = bisect.bisect_right(ends, 2 * _HISTORY - kept + total, k + 1)
        kept += n - total
        hist += data
        if len(hist) > kept:
            del hist[:-kept]
        probe = self.probe
        if probe is not None:
            start = 0
            for end in ends:
                if len(probe) >= 512:
                    break
                probe += data[start:end]
                start = end
        self.next += n


class _Conn:
    __slots__ = (
        "client",
        "counted",
        "fin",
        "finished",
        "base",
        "halves",
        "held",
        "info",
        "last_frame",
        "last_time",
        "rst",
        "selected",
        "stream",
    )

    def __init__(self, stream: int, client: tuple[bytes, int]) -> None:
        self.stream = stream
        self.client = client
        self.selected = 0  # 0 ignored, 1 selected, 2 heuristic decision pending
        self.counted = False  # in Reassembler.undecoded already
        self.halves: tuple[_Half, _Half] | None = None
        # Wireshark's base_seq per direction: the SYN's seq, else the first seq - 1, else
        # (first seen acknowledged by the peer) ack - 1; a SYN with another seq is a new stream
        self.base: list[int | None] = [None, None]
        self.fin = [False, False]
        self.rst = False
        self.finished = False
        self.held: list[StreamEvent] | None = None
        self.last_frame = 0
        self.last_time: int | None = 0
        self.info: TcpConnection | None = None


_NO_EVENTS: list[StreamEvent] = []


class Reassembler:
    """Sans-IO TCP reassembler for a passive observer (see the module docstring).

    Args:
        ports: TCP ports whose streams are reassembled (either endpoint). Default ``{2404}``.
            Pass an empty collection to rely on ``heuristic`` alone.
        heuristic: also accept streams on other ports whose first bytes frame as IEC 104
            (default True).
        max_pending_segments: out-of-order segments buffered per direction before the hole
            in front of them is declared a gap.
        max_pending_bytes: the same budget in payload bytes.
        fallback_after: number of inconsistent retransmissions (same sequence space, different
            bytes) after which a direction switches to per-segment delivery; ``0`` disables it.

    Attributes:
        connections: stream number -> :class:`TcpConnection`, for the selected streams.
        stats: stream number -> ``(client->server, server->client)`` :class:`DirectionStats`.
        streams: number of TCP streams seen so far (selected or not).
        undecoded: server port -> number of streams that carried data but were not decoded
            (not on ``ports``, and rejected by the heuristic or with it off).
    """

    def __init__(
        self,
        ports: Iterable[int] | None = None,
        *,
        heuristic: bool = True,
        max_pending_segments: int = 256,
        max_pending_bytes: int = 1 << 18,
        fallback_after: int = 1,
    ) -> None:
        self.ports = frozenset((IEC104_PORT,) if ports is None else ports)
        self.heuristic = heuristic
        self.max_pending_segments = max_pending_segments
        self.max_pending_bytes = max_pending_bytes
        self.fallback_after = fallback_after
        self.connections: dict[int, TcpConnection] = {}
        self.stats: dict[int, tuple[DirectionStats, DirectionStats]] = {}
        self.streams = 0
        self.undecoded: Counter[int] = Counter()
        # directional 4-tuple -> (connection, direction of a segment with that 4-tuple)
        self._table: dict[tuple[bytes, int, bytes, int], tuple[_Conn, int]] = {}
        self._open: dict[int, _Conn] = {}  # selected/pending streams not finished yet
        self._out: list[StreamEvent] = []

    # -- public API -----------------------------------------------------------------------------

    def feed(self, seg: TcpSegment) -> list[StreamEvent]:
        """Process one segment (in capture order); return the events it completes."""
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        entry = self._table.get(key)
        flags = seg.flags
        if seg.in_icmp:
            # A header quoted in an ICMP error: it only takes a stream number if it is new.
            if entry is None:
                self._new_conn(seg, key, quoted=True)
            return self._flush()
        if entry is None:
            conn, d = self._new_conn(seg, key)
        else:
            conn, d = entry
            base = conn.base[d]
            if flags & (SYN | ACK) == SYN and base is not None and seg.seq != base:
                if conn.selected == 2:
                    self._decide(conn, final=True)
                if conn.selected == 1 and not conn.finished:
                    self._finish(conn, "reused")
                conn, d = self._new_conn(seg, key)
        # bookkeeping needed for stream numbering, for every stream
        if conn.base[d] is None:
            conn.base[d] = seg.seq if flags & SYN else (seg.seq - 1) & _M32
        if flags & ACK and conn.base[1 - d] is None:
            conn.base[1 - d] = (seg.ack - 1) & _M32
        if flags & RST:
            conn.rst = True
        if conn.selected:
            conn.last_frame = seg.frame
            conn.last_time = seg.time_ns
            if conn.finished:
                if seg.payload:
                    self.stats[conn.stream][d].late_segments += 1
            else:
                self._segment(conn, d, seg)
                if conn.rst or conn.fin[0] and conn.fin[1]:
                    self._maybe_finish(conn)
        else:
            if flags & FIN:
                conn.fin[d] = True
            if seg.payload and not conn.counted:
                self._not_decoded(conn, d, seg)
        out = self._out  # self._flush(), inline (once per segment)
        if out:
            self._out = []
            return out
        return _NO_EVENTS

    def in_order(self, key: tuple[bytes, int, bytes, int], seq: int, ack: int, flags: int,
                 payload: bytes, frame: int, time_ns: int | None) -> _Half | None:
        """Take the common segment without an event (see the module docstring).

        Args:
            key: ``(src, sport, dst, dport)`` of the segment (addresses as in TcpSegment).
            seq, ack, flags, payload, frame, time_ns: as in
                :class:`~iec104.capture.packet.TcpSegment` (the payload whole: its wire
                length).

        Returns:
            None when the segment must go to :meth:`feed` (nothing changed); else the
            direction's state, whose ``stream`` and ``direction`` say where ``payload``
            (possibly empty) belongs and whose ``offset`` now counts it.
        """
        if flags & ~(ACK | PSH) or not flags & ACK:
            return None
        ready = self.ready(key)
        if ready is None:
            return None
        conn, h, other = ready
        if payload:
            if h.base is None or h.rel(seq) != h.next:  # not at the next expected byte
                return None
        elif h.base is None:
            h.idle_seq = seq
        conn.last_frame = frame
        conn.last_time = time_ns
        if other.base is not None and not other.fallback:  # self._ack(), nothing pending
            other.acknowledge(ack, frame, time_ns)
        if payload:
            h.stats.segments += 1
            h.advance(payload)
        return h

    def ready(self, key: tuple[bytes, int, bytes, int],
              ) -> tuple[_Conn, _Half, _Half] | None:
        """What :meth:`in_order` asks of a segment's connection and direction before its
        flags and sequence number: an established, selected, open connection, a direction
        not in segment mode, nothing waiting out of order either way. None when not;
        else ``(connection, the segment's direction, the other direction)``."""
        entry = self._table.get(key)
        if entry is None:
            return None
        conn, d = entry
        fin = conn.fin
        if conn.selected != 1 or conn.finished or conn.rst or fin[0] or fin[1] \
                or conn.base[d] is None or conn.base[1 - d] is None:
            return None
        halves = conn.halves
        assert halves is not None
        h = halves[d]
        other = halves[1 - d]
        if h.fallback or h.pending or other.pending:
            return None
        return conn, h, other

    def ignored(self, key: tuple[bytes, int, bytes, int]) -> bool:
        """Whether :meth:`feed` keeps only the books of the segment's own connection and
        gives no event, whatever the segment but a SYN: a connection that is not decoded
        (not on a selected port, refused by the heuristic)."""
        entry = self._table.get(key)
        return entry is not None and entry[0].selected == 0

    def _flush(self) -> list[StreamEvent]:
        if self._out:
            out = self._out
            self._out = []
            return out
        return _NO_EVENTS

    def close(self) -> list[StreamEvent]:
        """Flush all open streams (end of input): pending data, trailing gaps, StreamEnd."""
        for conn in list(self._open.values()):
            if conn.selected == 2:
                self._decide(conn, final=True)
            if conn.selected == 1 and not conn.finished:
                self._finish(conn, "end")
        self._open.clear()
        out = self._out
        self._out = []
        return out

    # -- streams --------------------------------------------------------------------------------

    def _new_conn(self, seg: TcpSegment, key: tuple[bytes, int, bytes, int],
                  quoted: bool = False) -> tuple[_Conn, int]:
        stream = self.streams
        self.streams += 1
        flags = seg.flags
        ports = self.ports
        sender_is_client: bool
        if flags & SYN:
            sender_is_client = not flags & ACK
        elif (seg.dport in ports) != (seg.sport in ports):
            sender_is_client = seg.dport in ports
        elif seg.sport != seg.dport:
            sender_is_client = seg.sport > seg.dport
        else:
            sender_is_client = True
        if sender_is_client:
            client = (seg.src, seg.sport)
            d = 0
        else:
            client = (seg.dst, seg.dport)
            d = 1
        conn = _Conn(stream, client)
        rkey = (seg.dst, seg.dport, seg.src, seg.sport)
        self._table[key] = (conn, d)
        self._table[rkey] = (conn, 1 - d)
        if quoted:
            return conn, d
        if seg.sport in ports or seg.dport in ports:
            how = "port"
            conn.selected = 1
        elif self.heuristic:
            how = "heuristic"
            conn.selected = 2
            conn.held = []
        else:
            return conn, d
        if d == 0:
            src, sport, dst, dport = seg.src, seg.sport, seg.dst, seg.dport
        else:
            src, sport, dst, dport = seg.dst, seg.dport, seg.src, seg.sport
        conn.info = TcpConnection(stream, format_ip(src), sport, format_ip(dst), dport, seg.frame,
                               seg.time_ns, bool(flags & SYN), how)
        stats = (DirectionStats(), DirectionStats())
        conn.halves = (_Half(stats[0], stream, 0), _Half(stats[1], stream, 1))
        self._open[stream] = conn
        if conn.selected == 1:
            self.connections[stream] = conn.info
            self.stats[stream] = stats
            self._out.append(StreamStart(stream, seg.frame, seg.time_ns, conn.info))
        else:
            conn.halves[0].probe = bytearray()
            conn.halves[1].probe = bytearray()
        return conn, d

    def _not_decoded(self, conn: _Conn, d: int, seg: TcpSegment) -> None:
        """Count a stream with data that is not decoded, under its server's port."""
        conn.counted = True
        self.undecoded[seg.dport if d == 0 else seg.sport] += 1

    def _emit(self, conn: _Conn, event: StreamEvent) -> None:
        if conn.held is not None:
            conn.held.append(event)
        else:
            self._out.append(event)

    def _decide(self, conn: _Conn, final: bool = False) -> None:
        """Heuristic acceptance of a pending stream from the first bytes of each direction."""
        assert conn.halves is not None and conn.info is not None
        verdicts = [
            looks_like_iec104(h.probe) if h.probe else None for h in conn.halves
        ]
        if False in verdicts or (final and True not in verdicts):
            if any(conn.halves[d].probe for d in (0, 1)):
                conn.counted = True
                self.undecoded[conn.info.dport] += 1
            conn.selected = 0
            conn.halves = None
            conn.held = None
            self._open.pop(conn.stream, None)
        elif True in verdicts:
            conn.selected = 1
            held = conn.held or []
            conn.held = None
            for h in conn.halves:
                h.probe = None
            self.connections[conn.stream] = conn.info
            self.stats[conn.stream] = (conn.halves[0].stats, conn.halves[1].stats)
            self._out.append(StreamStart(conn.stream, conn.info.first_frame,
                                         conn.info.first_time_ns, conn.info))
            self._out.extend(held)

    def _maybe_finish(self, conn: _Conn) -> None:
        if conn.selected != 1 or conn.halves is None:
            return
        if conn.rst:
            if not conn.halves[0].pending and not conn.halves[1].pending:
                self._finish(conn, "closed")
            return
        if conn.fin[0] and conn.fin[1]:
            for h in conn.halves:
                if h.fallback or h.fin is None or h.next >= h.fin:
                    continue
                # bytes before the FIN are missing: wait for them unless the peer has
                # acknowledged the FIN (then they were received, and the capture lost them)
                if h.acked is None or h.acked <= h.fin:
                    return
            self._finish(conn, "closed")

    def _finish(self, conn: _Conn, reason: str) -> None:
        halves = conn.halves
        assert halves is not None
        for d, h in enumerate(halves):
            if h.fallback or h.base is None:
                continue
            while h.pending:
                first = h.pending[0]
                self._skip(conn, d, h, first[0], first[3], first[4])
            end = h.acked
            if end is not None:
                if h.fin is not None:
                    end = min(end, h.fin)
                elif end == h.next + 1:
                    end = h.next  # the peer acknowledged a FIN we did not capture
                if end > h.next:
                    self._skip(conn, d, h, end, h.acked_frame, h.acked_time)
        conn.finished = True
        conn.halves = None
        self._open.pop(conn.stream, None)
        self._out.append(StreamEnd(conn.stream, conn.last_frame, conn.last_time, reason))

    # -- one segment ----------------------------------------------------------------------------

    def _segment(self, conn: _Conn, d: int, seg: TcpSegment) -> None:
        halves = conn.halves
        assert halves is not None
        h = halves[d]
        flags = seg.flags
        payload = seg.payload
        wire_len = seg.wire_len
        if h.base is None:
            if flags & SYN:
                h.base = (seg.seq + 1) & _M32
            elif wire_len:
                if wire_len == 1 and h.idle_seq == (seg.seq + 1) & _M32:
                    # keep-alive probe (one byte just below the next sequence number) in a
                    # direction joined mid-way: not data
                    h.stats.segments += 1
                    h.stats.retransmissions += 1
                    return
                h.base = seg.seq
            else:
                h.idle_seq = seg.seq
        if flags & ACK:
            other = halves[1 - d]
            if other.base is not None and not other.fallback:
                self._ack(conn, 1 - d, other, seg)
        if payload or wire_len:
            h.stats.segments += 1
            if h.fallback:
                self._deliver_raw(conn, d, h, payload, seg.frame, seg.time_ns)
            elif h.base is not None:
                start = h.rel(seg.seq) + (1 if flags & SYN else 0)
                self._place(conn, d, h, start, payload, wire_len, seg.frame, seg.time_ns)
        if flags & FIN and h.base is not None:
            if not conn.fin[d]:
                conn.fin[d] = True
                if not h.fallback:
                    h.fin = h.rel(seg.seq) + (1 if flags & SYN else 0) + wire_len
        elif flags & FIN:
            conn.fin[d] = True
        if conn.selected == 2:
            self._decide(conn)

    def _ack(self, conn: _Conn, d: int, h: _Half, seg: TcpSegment) -> None:
        """The peer acknowledged ``seg.ack`` of direction ``d``."""
        if not h.acknowledge(seg.ack, seg.frame, seg.time_ns):
            return
        if h.pending and h.acked is not None and h.acked >= h.pending[0][0]:
            first = h.pending[0]
            self._skip(conn, d, h, first[0], first[3], first[4])

    def _place(self, conn: _Conn, d: int, h: _Half, start: int, payload: bytes,
               wire_len: int, frame: int, time_ns: int | None) -> None:
        nxt = h.next
        if start == nxt:
            self._deliver(conn, d, h, payload, wire_len, frame, time_ns)
            if h.pending:
                self._drain(conn, d, h)
            return
        if start < nxt:
            end = start + wire_len
            if not self._consistent(h, start, payload):
                h.stats.inconsistent += 1
                if self.fallback_after and h.stats.inconsistent >= self.fallback_after:
                    self._to_fallback(conn, d, h, payload, frame, time_ns)
                    return
            if end <= nxt:
                h.stats.retransmissions += 1
                return
            cut = nxt - start
            h.stats.overlaps += 1
            self._deliver(conn, d, h, payload[cut:], wire_len - cut, frame, time_ns)
            self._drain(conn, d, h)
            return
        # ahead of a hole: buffer it, unless the peer already acknowledged past the hole
        h.stats.out_of_order += 1
        if h.acked is not None and h.acked >= start:
            self._skip(conn, d, h, start, frame, time_ns)
            self._deliver(conn, d, h, payload, wire_len, frame, time_ns)
            self._drain(conn, d, h)
            return
        i = bisect.bisect_right(h.pending_keys, start)
        h.pending_keys.insert(i, start)
        h.pending.insert(i, (start, wire_len, payload, frame, time_ns))
        h.pending_bytes += len(payload)
        while h.pending and (len(h.pending) > self.max_pending_segments
                             or h.pending_bytes > self.max_pending_bytes):
            first = h.pending[0]
            self._skip(conn, d, h, first[0], first[3], first[4])

    def _consistent(self, h: _Half, start: int, payload: bytes) -> bool:
        """Whether ``payload`` at ``start`` (< next) matches the bytes delivered there."""
        n = len(payload)
        if n <= 1:  # keep-alive probes carry one arbitrary byte
            return True
        hist = h.history
        hist_start = h.next - len(hist)
        if start < hist_start:
            return True  # too old to judge
        a = start - hist_start
        b = min(len(hist), a + n)
        return hist[a:b] == payload[:b - a]

    def _drain(self, conn: _Conn, d: int, h: _Half) -> None:
        pending = h.pending
        while pending and pending[0][0] <= h.next:
            start, wire_len, payload, frame, time_ns = pending.pop(0)
            h.pending_keys.pop(0)
            h.pending_bytes -= len(payload)
            end = start + wire_len
            if end <= h.next:
                h.stats.retransmissions += 1
                continue
            cut = h.next - start
            if cut:
                h.stats.overlaps += 1
            self._deliver(conn, d, h, payload[cut:], wire_len - cut, frame, time_ns)

    def _skip(self, conn: _Conn, d: int, h: _Half, to: int, frame: int,
              time_ns: int | None) -> None:
        """Declare ``[next, to)`` lost, then deliver what the buffer holds after it."""
        missing = to - h.next
        if missing > 0:
            assert h.base is not None
            h.stats.gaps += 1
            h.stats.gap_bytes += missing
            self._emit(conn, Gap(conn.stream, d, frame, time_ns, h.offset,
                                 (h.base + h.next) & _M32, missing))
            h.next = to
            h.history.clear()
        self._drain(conn, d, h)

    def _deliver(self, conn: _Conn, d: int, h: _Half, payload: bytes, wire_len: int,
                 frame: int, time_ns: int | None) -> None:
        n = len(payload)
        if n:
            data = bytes(payload)  # no copy for bytes; accepts any buffer
            event = StreamData(conn.stream, d, frame, time_ns, h.offset, data)
            if conn.held is None:  # self._emit(conn, event), inline (once per segment)
                self._out.append(event)
            else:
                conn.held.append(event)
            h.advance(data)
        if wire_len > n:  # the snapshot length cut the payload
            assert h.base is not None
            missing = wire_len - n
            h.stats.gaps += 1
            h.stats.gap_bytes += missing
            self._emit(conn, Gap(conn.stream, d, frame, time_ns, h.offset,
                                 (h.base + h.next) & _M32, missing))
            h.next += missing
            h.history.clear()

    def _to_fallback(self, conn: _Conn, d: int, h: _Half, payload: bytes, frame: int,
                     time_ns: int | None) -> None:
        h.fallback = True
        h.stats.fallback = True
        self._emit(conn, Fallback(
            conn.stream, d, frame, time_ns,
            "segment repeats sequence space with different bytes; delivering each segment "
            "as captured",
        ))
        # whatever waited for a hole is delivered as it is, in sequence order
        for _, _, data, pframe, ptime in h.pending:
            self._deliver_raw(conn, d, h, data, pframe, ptime)
        h.pending.clear()
        h.pending_keys.clear()
        h.pending_bytes = 0
        h.history = bytearray()
        self._deliver_raw(conn, d, h, payload, frame, time_ns)

    def _deliver_raw(self, conn: _Conn, d: int, h: _Half, payload: bytes, frame: int,
                     time_ns: int | None) -> None:
        n = len(payload)
        if not n:
            return
        h.stats.fallback_segments += 1
        data = bytes(payload)
        self._emit(conn, StreamData(conn.stream, d, frame, time_ns, h.offset, data))
        h.offset += n
        h.stats.bytes += n
        if h.probe is not None and len(h.probe) < 512:
            h.probe += data


# -- pipelines ----------------------------------------------------------------------------------


def stream_events(
    source: str | os.PathLike[str] | BinaryIO | CaptureReader,
    ports: Iterable[int] | None = None,
    *,
    heuristic: bool = True,
    reassembler: Reassembler | None = None,
) -> Iterator[StreamEvent]:
    """Read a capture file and yield the reassembly events of its IEC 104 streams.

    Args:
        source: path or binary file object of a pcap/pcapng capture, or an open
            :class:`~iec104.capture.reader.CaptureReader` (not yet iterated; the caller
            can read its ``problem``/``frames`` afterwards and closes it).
        ports: see :class:`Reassembler` (ignored if ``reassembler`` is given).
        heuristic: see :class:`Reassembler` (ignored if ``reassembler`` is given).
        reassembler: a preconfigured reassembler, whose ``connections``/``stats`` the caller
            can read afterwards.

    Raises:
        CaptureError: the input is not a capture (before any event is yielded).
    """
    from .reader import CaptureReader

    r = reassembler if reassembler is not None else Reassembler(ports, heuristic=heuristic)
    feed = r.feed
    with (nullcontext(source) if isinstance(source, CaptureReader)
          else CaptureReader(source)) as reader:
        for seg in tcp_segments(reader):
            events = feed(seg)
            if events:
                yield from events
    yield from r.close()
