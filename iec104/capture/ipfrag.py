"""IPv4 and IPv6 fragment reassembly for a passive observer (standard library only).

Theory of operation
-------------------
:class:`Defragmenter` sits between the capture reader and TCP reassembly. Its
:meth:`~Defragmenter.decode` takes a captured packet like
:func:`~iec104.capture.packet.decode_tcp` (which it calls first; the hot loop,
:func:`~iec104.capture.packet.tcp_segments`, calls ``decode_tcp`` itself and
:meth:`~Defragmenter.reassemble` only when it returns ``None``, so an unfragmented packet costs
nothing more) and returns a :class:`~iec104.capture.packet.TcpSegment` or ``None``. A fragment
of a TCP datagram is stored; the fragment that completes its datagram returns the segment of the
whole datagram, attributed to *that* frame and its time (Wireshark dissects TCP in the frame
"reassembled in"), the others return ``None``.

*Keys.* IPv4: source, destination, protocol and identification (RFC 791); IPv6: source,
destination and the fragment header's identification (RFC 8200). Only TCP datagrams are kept
(IPv4 protocol 6; IPv6 next header 6 after the fragment header). A key whose datagram was
completed starts afresh with its next fragment (the 16-bit IPv4 ID wraps on a busy link).

*Completion.* The fragment with MF=0 gives the datagram's length; the datagram is complete once
fragments cover every octet from 0 to that length, in whatever order they came.

*Overlaps* are resolved as tshark 4.0 does (``epan/reassemble.c``; probed with tshark 4.0.17
and checked by ``tests/capture/test_dissect_ipfrag.py``): the fragments are taken in order of offset,
and for equal offsets in order of arrival, each one giving only the octets beyond those already
laid. So an octet comes from the fragment with the *lowest offset* covering it, and among
fragments at the same offset from the *first to arrive*, whatever the arrival order otherwise
(not "last wins" as in some operating systems). A second fragment with MF=0 ending elsewhere is
ignored (the first end stands). An overlap is counted in :attr:`DefragStats.overlaps`, and in
:attr:`DefragStats.conflicts` when the octets differ.

*Bounds.* A datagram still incomplete ``timeout_ns`` after its first fragment (capture time;
30 s for both versions, as Linux's ``ipfrag_time`` for IPv4; fragments of one datagram
normally arrive within milliseconds, and tshark, which has no timeout, would join fragments
further apart) is dropped, as a receiver drops it. At most
``max_datagrams`` incomplete datagrams and ``max_bytes`` fragment octets are held; beyond
that the oldest are dropped first. A fragment that would end past 65,535 octets of payload is
ignored, and so are fragments beyond 1,024 in one datagram; a fragment cut by the snapshot
length is not a fragment we can use (its datagram stays incomplete). Dropped datagrams are
counted (:attr:`DefragStats.incomplete`) with their first frame; the TCP bytes they carried
never reach the reassembler, whose hole detection then reports them as one gap row (``missing``
octets at a TCP sequence number), exactly as for a segment the capture did not contain, and
tshark does not decode them either.

The reassembled datagram is rebuilt as a bare IP packet (the fixed header with the fragment
fields cleared, no options or extension headers) and decoded by ``decode_tcp`` with the raw-IP
link type, so the TCP rules are stated once.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

# the header constants are packet's: one statement of the IP rules
from .packet import (
    _ETH_IPV4,
    _ETH_IPV6,
    _IPV6_AH,
    _IPV6_EXT,
    _IPV6_FRAG,
    _TCP,
    TcpSegment,
    decode_tcp,
    ip_header,
)

__all__ = ["DEFAULT_TIMEOUT_NS", "DefragStats", "Defragmenter", "Fragment", "parse_fragment"]

DEFAULT_TIMEOUT_NS = 30 * 1_000_000_000
_MAX_PAYLOAD = 0xFFFF
_MAX_PARTS = 1024  # fragments per datagram (overlap checks are linear in it)
_RAW_IP = 101

_ip4 = struct.Struct("!BxHHHxB2x4s4s").unpack_from  # vihl, tlen, id, frag, proto, src, dst
_ip4_out = struct.Struct("!BBHHHBBH4s4s").pack
_ip6_out = struct.Struct("!IHBB16s16s").pack
_frag6 = struct.Struct("!BxHI").unpack_from  # next header, offset|M, identification


class Fragment(NamedTuple):
    """One IP fragment of a TCP datagram."""

    key: tuple[bytes, bytes, int, int]
    """(source, destination, version 4 or 6, identification [0, 2**32))."""
    offset: int
    """Offset of ``data`` in the datagram's payload, octets (a multiple of 8)."""
    more: bool
    """MF / M flag: more fragments follow."""
    data: bytes
    """The fragment's payload octets as captured."""


def parse_fragment(linktype: int, data: bytes) -> Fragment | None:
    """The fragment a captured packet holds, or ``None`` (not a fragment of a TCP datagram,
    or headers too short to say)."""
    located = ip_header(linktype, data)
    if located is None:
        return None
    if located[0] == _ETH_IPV4:
        return _fragment4(data, located[1])
    if located[0] == _ETH_IPV6:
        return _fragment6(data, located[1])
    return None


def _fragment4(data: bytes, off: int) -> Fragment | None:
    if len(data) < off + 20:
        return None
    vihl, tlen, ident, frag, proto, src, dst = _ip4(data, off)
    ihl = (vihl & 0x0F) << 2
    if vihl >> 4 != 4 or ihl < 20 or proto != _TCP or not frag & 0x3FFF or tlen < ihl:
        return None
    if len(data) < off + tlen:
        return None  # cut by the snapshot length: its octets are not all there
    return Fragment((src, dst, 4, ident), (frag & 0x1FFF) << 3, bool(frag & 0x2000),
                    data[off + ihl:off + tlen])


def _fragment6(data: bytes, off: int) -> Fragment | None:
    if len(data) < off + 40 or data[off] >> 4 != 6:
        return None
    end = off + 40 + ((data[off + 4] << 8) | data[off + 5])
    if len(data) < end:
        return None  # cut by the snapshot length
    nxt = data[off + 6]
    at = off + 40
    while at + 8 <= end:  # walk the extension headers to the fragment header
        if nxt == _IPV6_FRAG:
            nxt, bits, ident = _frag6(data, at)
            if nxt != _TCP or not bits & 0xFFF9:
                return None
            return Fragment((data[off + 8:off + 24], data[off + 24:off + 40], 6, ident),
                            bits & 0xFFF8, bool(bits & 1), data[at + 8:end])
        if nxt in _IPV6_EXT:
            nxt, at = data[at], at + ((data[at + 1] + 1) << 3)
        elif nxt == _IPV6_AH:
            nxt, at = data[at], at + ((data[at + 1] + 2) << 2)
        else:
            return None
    return None


@dataclass(slots=True)
class DefragStats:
    """Counters of one :class:`Defragmenter` (mutable, updated as packets arrive)."""

    fragments: int = 0
    """Fragments of TCP datagrams seen."""
    reassembled: int = 0
    """Datagrams completed and handed on."""
    overlaps: int = 0
    """Fragments that overlapped octets already held."""
    conflicts: int = 0
    """Overlapping fragments whose octets differ from those held (resolved as tshark)."""
    incomplete: int = 0
    """Datagrams dropped incomplete (timeout, memory bound, end of input)."""
    incomplete_frames: list[int] = field(default_factory=list)
    """First frame of each dropped datagram (the first 100)."""
    ignored: int = 0
    """Fragments ignored: payload beyond 65,535 octets, a second different end, more than
    1,024 fragments in one datagram."""

    def describe(self) -> str:
        """One line on the datagrams dropped incomplete ('' if none was)."""
        n = self.incomplete
        if not n:
            return ""
        frames = ", ".join(map(str, self.incomplete_frames[:5])) + (", ..." if n > 5 else "")
        many = n > 1
        return (f"{n} fragmented IP datagram{'s were' if many else ' was'} incomplete (first "
                f"fragment in frame{'s' if many else ''} {frames}); the TCP octets "
                f"{'they' if many else 'it'} carried are gap rows")


class _Datagram:
    __slots__ = ("end", "first_frame", "first_time", "held", "parts")

    def __init__(self, frame: int, time_ns: int | None) -> None:
        self.parts: list[tuple[int, int, bytes]] = []  # (offset, arrival, data)
        self.end: int | None = None  # payload length, known from the MF=0 fragment
        self.held = 0
        self.first_frame = frame
        self.first_time = time_ns

    def complete(self) -> bool:
        if self.end is None:
            return False
        reach = 0
        for offset, _, data in sorted(self.parts):
            if offset > reach:
                return False
            reach = max(reach, offset + len(data))
        return reach >= self.end

    def assemble(self) -> bytes:
        """Take the fragments in (offset, arrival) order, each giving only the octets beyond
        those already laid (tshark's rule)."""
        assert self.end is not None
        out = bytearray()
        for offset, _, data in sorted(self.parts):
            laid = len(out)
            if offset + len(data) > laid:
                out += data[laid - offset:]
        return bytes(out[:self.end])


class Defragmenter:
    """Sans-IO IP fragment reassembly in front of :func:`~.packet.decode_tcp`.

    Args:
        timeout_ns: a datagram incomplete this long after its first fragment (capture time,
            ns) is dropped; ``None`` never drops on time.
        max_datagrams: incomplete datagrams held at once (oldest dropped first), >= 1.
        max_bytes: fragment octets held at once (oldest datagrams dropped first), >= 1.

    Attributes:
        stats: a :class:`DefragStats`.
    """

    def __init__(self, *, timeout_ns: int | None = DEFAULT_TIMEOUT_NS,
                 max_datagrams: int = 1024, max_bytes: int = 1 << 22) -> None:
        self.timeout_ns = timeout_ns
        self.max_datagrams = max(1, max_datagrams)
        self.max_bytes = max(1, max_bytes)
        self.stats = DefragStats()
        self._pending: OrderedDict[tuple[bytes, bytes, int, int], _Datagram] = OrderedDict()
        self._held = 0
        self._arrivals = 0

    @property
    def pending(self) -> int:
        """Incomplete datagrams held now."""
        return len(self._pending)

    def decode(self, frame: int, time_ns: int | None, linktype: int,
               data: bytes) -> TcpSegment | None:
        """:func:`~.packet.decode_tcp` for a packet that may be an IP fragment.

        Returns:
            The TCP segment of an unfragmented packet or of the datagram this fragment
            completes (with this packet's frame and time); ``None`` otherwise.
        """
        return decode_tcp(frame, time_ns, linktype, data) or \
            self.reassemble(frame, time_ns, linktype, data)

    def reassemble(self, frame: int, time_ns: int | None, linktype: int,
                   data: bytes) -> TcpSegment | None:
        """The fragment path of :meth:`decode`, for a packet ``decode_tcp`` returned ``None``
        for. Hot loops write ``decode_tcp(...) or defrag.reassemble(...)``: one call fewer
        per unfragmented packet."""
        frag = parse_fragment(linktype, data)
        if frag is None:
            return None
        return self.add(frame, time_ns, frag)

    def add(self, frame: int, time_ns: int | None, frag: Fragment) -> TcpSegment | None:
        """Store one fragment; the segment of its datagram if this fragment completes it."""
        stats = self.stats
        stats.fragments += 1
        self._expire(time_ns)
        offset, data = frag.offset, frag.data
        if offset + len(data) > _MAX_PAYLOAD:
            stats.ignored += 1
            return None
        dgram = self._pending.get(frag.key)
        if dgram is None:
            dgram = self._pending[frag.key] = _Datagram(frame, time_ns)
        elif len(dgram.parts) >= _MAX_PARTS:
            stats.ignored += 1
            return None
        if not frag.more:
            if dgram.end is not None and dgram.end != offset + len(data):
                stats.ignored += 1  # a second, different end: the first one stands
                return None
            dgram.end = offset + len(data)
        self._overlap(dgram, offset, data)
        self._arrivals += 1
        dgram.parts.append((offset, self._arrivals, data))
        dgram.held += len(data)
        self._held += len(data)
        if dgram.end is not None and dgram.held >= dgram.end and dgram.complete():
            del self._pending[frag.key]
            self._held -= dgram.held
            stats.reassembled += 1
            return decode_tcp(frame, time_ns, _RAW_IP, _rebuild(frag.key, dgram.assemble()))
        self._bound()
        return None

    def close(self) -> None:
        """End of input: the datagrams still incomplete are dropped (and counted)."""
        for dgram in self._pending.values():
            self._dropped(dgram)
        self._pending.clear()
        self._held = 0

    # -- internals ----------------------------------------------------------------------------

    def _overlap(self, dgram: _Datagram, offset: int, data: bytes) -> None:
        end = offset + len(data)
        for o, _, held in dgram.parts:
            lo, hi = max(o, offset), min(o + len(held), end)
            if lo < hi:
                self.stats.overlaps += 1
                if held[lo - o:hi - o] != data[lo - offset:hi - offset]:
                    self.stats.conflicts += 1
                return

    def _expire(self, now: int | None) -> None:
        if self.timeout_ns is None or now is None:
            return
        pending = self._pending
        while pending:
            key, dgram = next(iter(pending.items()))
            if dgram.first_time is None or now - dgram.first_time < self.timeout_ns:
                break
            del pending[key]
            self._held -= dgram.held
            self._dropped(dgram)

    def _bound(self) -> None:
        pending = self._pending
        while pending and (len(pending) > self.max_datagrams or self._held > self.max_bytes):
            _, dgram = pending.popitem(last=False)
            self._held -= dgram.held
            self._dropped(dgram)

    def _dropped(self, dgram: _Datagram) -> None:
        self.stats.incomplete += 1
        if len(self.stats.incomplete_frames) < 100:
            self.stats.incomplete_frames.append(dgram.first_frame)


def _rebuild(key: tuple[bytes, bytes, int, int], payload: bytes) -> bytes:
    """A bare, unfragmented IP packet carrying ``payload`` (TCP) between the key's hosts."""
    src, dst, version, ident = key
    if version == 4:
        length = 20 + len(payload)  # 0 (as with TSO) when a 65,535-octet payload overflows it
        return _ip4_out(0x45, 0, length if length <= 0xFFFF else 0, ident & 0xFFFF, 0, 64, _TCP,
                        0, src, dst) + payload
    return _ip6_out(0x60000000, len(payload), _TCP, 64, src, dst) + payload
