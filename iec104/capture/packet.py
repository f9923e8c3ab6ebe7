"""Decode link layer, IPv4/IPv6 and TCP headers of a captured packet (standard library only).

:func:`decode_tcp` is the hot path: it turns ``(linktype, bytes)`` into a :class:`TcpSegment` or
``None`` (not TCP, not decodable, or an IP fragment). It never raises on bad input.

Link types: Ethernet (with any number of stacked 802.1Q / 802.1ad / QinQ tags), Linux cooked
capture v1 (SLL) and v2 (SLL2), raw IP (101, 12, 14, and 228/229 for IPv4/IPv6 only), BSD
loopback (0) and OpenBSD loopback (108). For raw IP and loopback the IP version is taken from
the first nibble of the IP header, so the address-family byte order does not matter.

IPv4: options are skipped with IHL; the total length is honoured, so Ethernet padding and
trailers never reach the TCP payload (a total length of 0, as written with TCP segmentation
offload, means "up to the end of the captured bytes", as Wireshark does). Fragments (MF set or
a fragment offset) give ``None``: :mod:`.ipfrag` reassembles them and decodes the datagram.

IPv6: hop-by-hop, routing, destination-options, mobility, HIP, shim6, AH and fragment
extension headers are skipped (a fragment, unless atomic, gives ``None`` as for IPv4).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .ipfrag import Defragmenter
    from .reader import Packet

__all__ = [
    "ACK",
    "FIN",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "TcpSegment",
    "decode_plain_tcp",
    "decode_tcp",
    "format_ip",
    "ip_header",
    "tcp_segments",
]

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20


class TcpSegment(NamedTuple):
    """The parts of one TCP segment the reassembler needs."""

    frame: int
    """Frame number of the packet that carried the segment (1-based)."""
    time_ns: int | None
    """Capture time of that packet, ns since the Unix epoch (UTC); None if the capture
    file's timestamp is out of range (see :mod:`.capture`)."""
    src: bytes
    """Source address, 4 bytes (IPv4) or 16 bytes (IPv6); see :func:`format_ip`."""
    sport: int
    dst: bytes
    dport: int
    seq: int
    """Raw 32-bit sequence number."""
    ack: int
    """Raw 32-bit acknowledgement number (meaningful only with the ACK flag)."""
    flags: int
    """TCP flags, FIN=0x01 ... CWR=0x80 (see the module constants)."""
    payload: bytes
    """The captured TCP payload (may be shorter than ``wire_len`` if the snapshot cut it)."""
    wire_len: int
    """TCP payload length on the wire, from the IP length fields."""
    in_icmp: bool = False
    """The TCP header was quoted inside an ICMP/ICMPv6 error message (no payload). Wireshark
    numbers such headers into ``tcp.stream`` too, so the reassembler counts them."""


def format_ip(addr: bytes) -> str:
    """``b'\\x0a\\x00\\x00\\x01'`` -> ``'10.0.0.1'``; 16 bytes -> compressed IPv6 text."""
    if len(addr) == 4:
        return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"
    return str(ipaddress.IPv6Address(bytes(addr)))


_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))
_IPV6_EXT = frozenset((0, 43, 60, 135, 139, 140))  # (len + 1) * 8 bytes each
_IPV6_FRAG = 44
_IPV6_AH = 51
_TCP = 6
_ICMP = 1
_ICMPV6 = 58
_ICMP_ERRORS = frozenset((3, 4, 5, 11, 12))
_ICMPV6_ERRORS = frozenset((1, 2, 3, 4))
_EMPTY = b""

_ip4 = struct.Struct("!BxHxxHxBxx4s4s").unpack_from  # vihl, total length, frag, proto, src, dst
_tcp = struct.Struct("!HHIIBB").unpack_from  # sport, dport, seq, ack, offset byte, flags
_u16 = struct.Struct("!H").unpack_from

_RAW_IP = frozenset((101, 12, 14))
_new = tuple.__new__
_LOOPBACK = frozenset((0, 108))
# link type -> (offset of its protocol field, header length): Ethernet, Linux cooked v1 and v2
_ETHERTYPE_LINKS = {1: (12, 14), 113: (14, 16), 276: (0, 20)}


def ip_header(linktype: int, data: bytes) -> tuple[int, int] | None:
    """Find the network layer of a captured packet.

    Returns:
        ``(ethertype, offset)``: 0x0800 (IPv4), 0x86DD (IPv6) or another EtherType, and the
        offset of that header in ``data``; ``None`` for an unsupported link type or a link
        header cut short.
    """
    n = len(data)
    # where the EtherType-like protocol field sits and where the next header starts
    header = _ETHERTYPE_LINKS.get(linktype)
    if header is not None:
        etype_at, off = header
        if n < off:
            return None
        etype = (data[etype_at] << 8) | data[etype_at + 1]
        while etype in _VLAN_TYPES:  # 802.1Q / 802.1ad tags, stacked
            if n < off + 4:
                return None
            etype = (data[off + 2] << 8) | data[off + 3]
            off += 4
    elif linktype in _RAW_IP or linktype in _LOOPBACK or linktype == 228 or linktype == 229:
        off = 4 if linktype in _LOOPBACK else 0
        if n <= off:
            return None
        version = data[off] >> 4
        if linktype == 228 and version != 4 or linktype == 229 and version != 6:
            return None
        etype = _ETH_IPV4 if version == 4 else _ETH_IPV6 if version == 6 else 0
    else:
        return None

    return etype, off


def decode_tcp(frame: int, time_ns: int | None, linktype: int, data: bytes) -> TcpSegment | None:
    """Decode a captured packet down to TCP.

    Args:
        frame: the packet's frame number (copied into the result).
        time_ns: the packet's timestamp (copied into the result).
        linktype: the capture's link-layer type (``LINKTYPE_*`` value).
        data: the captured bytes.

    Returns:
        The TCP segment, or ``None`` if the packet is not TCP over IPv4/IPv6 on a supported
        link type, is damaged (headers cut short, bad header lengths) or is an IP fragment
        (see :class:`~.ipfrag.Defragmenter`).
    """
    n = len(data)
    if linktype == 1 and n >= 14 and data[12] == 8 and data[13] == 0:
        etype, off = _ETH_IPV4, 14  # untagged Ethernet + IPv4, the common case, without a call
    else:
        located = ip_header(linktype, data)
        if located is None:
            return None
        etype, off = located

    # -- network layer ---------------------------------------------------------------------------
    if etype == _ETH_IPV4:
        if n < off + 20:
            return None
        vihl, tlen, frag, proto, src, dst = _ip4(data, off)
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < 20 or frag & 0x3FFF:  # a fragment: see .ipfrag
            return None
        if proto != _TCP:
            if proto == _ICMP:
                return _quoted_tcp(frame, time_ns, data, off + ihl, min(n, off + tlen or n),
                                   False)
            return None
        if tlen == 0:  # TSO: length not filled in
            end = n
        elif tlen < ihl:
            return None
        else:
            end = off + tlen
        tcp_off = off + ihl
        wire_end = end
        end = min(end, n)
    elif etype == _ETH_IPV6:
        if n < off + 40:
            return None
        if data[off] >> 4 != 6:
            return None
        plen = (data[off + 4] << 8) | data[off + 5]
        nxt = data[off + 6]
        src = bytes(data[off + 8:off + 24])
        dst = bytes(data[off + 24:off + 40])
        tcp_off = off + 40
        wire_end = tcp_off + plen if plen else n  # 0: jumbogram, use captured length
        end = min(wire_end, n)
        while nxt != _TCP:
            if nxt in _IPV6_EXT:
                if end < tcp_off + 8:
                    return None
                nxt, hlen = data[tcp_off], (data[tcp_off + 1] + 1) << 3
            elif nxt == _IPV6_FRAG:
                if end < tcp_off + 8:
                    return None
                if _u16(data, tcp_off + 2)[0] & 0xFFF9:  # offset or M flag: see .ipfrag
                    return None
                nxt, hlen = data[tcp_off], 8
            elif nxt == _IPV6_AH:
                if end < tcp_off + 8:
                    return None
                nxt, hlen = data[tcp_off], (data[tcp_off + 1] + 2) << 2
            elif nxt == _ICMPV6:
                return _quoted_tcp(frame, time_ns, data, tcp_off, end, True)
            else:
                return None
            tcp_off += hlen
    else:
        return None

    # -- TCP ---------------------------------------------------------------------------------------
    if end < tcp_off + 20:
        return None
    sport, dport, seq, ack, doff, flags = _tcp(data, tcp_off)
    thl = (doff >> 4) << 2
    if thl < 20 or tcp_off + thl > end:
        return None
    start = tcp_off + thl
    return _new(TcpSegment, (frame, time_ns, src, sport, dst, dport, seq, ack, flags,
                             data[start:end], wire_end - start, False))


# IPv4 without options + TCP in one unpack: version/IHL, total length, flags/fragment
# offset, protocol, src, dst, sport, dport, seq, ack, data offset, flags
_plain4 = struct.Struct("!BxHxxHxBxx4s4sHHIIBB").unpack_from
# IPv6 without extension headers + TCP: version/class, payload length, next header, src,
# dst, then TCP as above
_plain6 = struct.Struct("!B3xHBx16s16sHHIIBB").unpack_from
# link type -> (offset of its EtherType field, or -1: the IP version nibble says; offset of
# the IP header), for the link layers without tags or options (see ip_header)
_PLAIN_LINKS = {1: (12, 14), 113: (14, 16), 276: (0, 20), 101: (-1, 0), 12: (-1, 0),
                14: (-1, 0), 228: (-1, 0), 229: (-1, 0), 0: (-1, 4), 108: (-1, 4)}


class PlainLayout(NamedTuple):
    """Where the fields of the plain packet lie (the offsets ``_plain4``/``_plain6`` unpack),
    for :mod:`.blocks`, which reads them by column: the two must agree (tested packet by
    packet against :func:`decode_plain_tcp`)."""

    ip_at: int
    """Offset of the IP header in the captured bytes."""
    etype_at: int
    """Offset of the EtherType field, or -1: the IP version nibble says (raw IP, loopback)."""
    version: int
    """The only IP version the link type carries (228: 4, 229: 6), else 0 (either)."""


PLAIN_LINKS = {link: PlainLayout(off, at, 4 if link == 228 else 6 if link == 229 else 0)
               for link, (at, off) in _PLAIN_LINKS.items()}
"""Link type -> :class:`PlainLayout`, for the link layers :func:`decode_plain_tcp` knows."""
# IPv4 (20 octets, no options): total length, flags/fragment offset, protocol, addresses
PLAIN4 = {"length": 2, "fragment": 6, "protocol": 9, "src": 12, "dst": 16, "tcp": 20}
# IPv6 (40 octets, no extension header): payload length, next header, addresses
PLAIN6 = {"length": 4, "next": 6, "src": 8, "dst": 24, "tcp": 40}
# TCP: ports, sequence and acknowledgement numbers, data offset, flags
PLAIN_TCP = {"sport": 0, "dport": 2, "seq": 4, "ack": 8, "offset": 12, "flags": 13}
TCP_PROTOCOL = _TCP
ETH_IPV4 = _ETH_IPV4
ETH_IPV6 = _ETH_IPV6


def decode_plain_tcp(linktype: int, data: bytes,
                     ) -> tuple[tuple[bytes, int, bytes, int], int, int, int, bytes] | None:
    """The common packet, decoded with one ``struct`` call.

    A speed path for the dissector's fast lane: a link layer without VLAN tags, IPv4
    without options (not a fragment) or IPv6 without extension headers, TCP, the IP
    datagram captured whole. For such a packet the result is :func:`decode_tcp`'s
    ``((src, sport, dst, dport), seq, ack, flags, payload)`` (and its ``wire_len`` is
    ``len(payload)``); for any other packet it is None (then :func:`decode_tcp` knows what
    it is).
    """
    link = _PLAIN_LINKS.get(linktype)
    if link is None:
        return None
    etype_at, off = link
    n = len(data)
    if n < off + 40:
        return None
    if etype_at >= 0:
        etype = (data[etype_at] << 8) | data[etype_at + 1]
        version = 4 if etype == _ETH_IPV4 else 6 if etype == _ETH_IPV6 else 0
    else:
        version = data[off] >> 4
        if linktype == 228 and version != 4 or linktype == 229 and version != 6:
            return None
    if version == 4:
        vihl, tlen, frag, proto, src, dst, sport, dport, seq, ack, doff, flags = \
            _plain4(data, off)
        if vihl != 0x45 or proto != _TCP or frag & 0x3FFF or not 40 <= tlen <= n - off:
            return None
        start = off + 20 + ((doff >> 4) << 2)
        end = off + tlen
    elif version == 6:
        if n < off + 60:
            return None
        vtc, plen, nxt, src, dst, sport, dport, seq, ack, doff, flags = _plain6(data, off)
        if vtc >> 4 != 6 or nxt != _TCP or not 20 <= plen <= n - off - 40:
            return None
        start = off + 40 + ((doff >> 4) << 2)
        end = off + 40 + plen
    else:
        return None
    if doff < 0x50 or start > end:  # a TCP header shorter than 20 octets or cut short
        return None
    return (src, sport, dst, dport), seq, ack, flags, data[start:end]


def _quoted_tcp(frame: int, time_ns: int | None, data: bytes, off: int, end: int,
                v6: bool) -> TcpSegment | None:
    """The TCP header quoted in an ICMP(v6) error message at ``off`` (ports, seq, flags)."""
    if end < off + 8 or data[off] not in (_ICMPV6_ERRORS if v6 else _ICMP_ERRORS):
        return None
    off += 8
    if v6:
        if end < off + 40 or data[off] >> 4 != 6 or data[off + 6] != _TCP:
            return None
        src = bytes(data[off + 8:off + 24])
        dst = bytes(data[off + 24:off + 40])
        tcp_off = off + 40
    else:
        if end < off + 20:
            return None
        vihl, _tlen, frag, proto, src, dst = _ip4(data, off)
        if vihl >> 4 != 4 or proto != _TCP or frag & 0x1FFF or (vihl & 0x0F) < 5:
            return None
        tcp_off = off + ((vihl & 0x0F) << 2)
    if end < tcp_off + 8:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", data, tcp_off)
    flags = data[tcp_off + 13] if end >= tcp_off + 14 else 0
    return TcpSegment(frame, time_ns, src, sport, dst, dport, seq, 0, flags, _EMPTY, 0, True)


def tcp_segments(packets: Iterable[Packet], frame_offset: int = 0,
                 defragmenter: Defragmenter | None = None) -> Iterator[TcpSegment]:
    """The TCP segments of capture packets (others are skipped): the one packets -> segments
    loop, shared by files, several files read as one, and the live pipe. IP fragments are
    reassembled (:mod:`.ipfrag`): a fragmented segment comes out with the frame of the
    fragment that completed it.

    Args:
        packets: :class:`~iec104.capture.reader.Packet` records.
        frame_offset: added to every frame number (>= 0; the frames of earlier files when
            several captures are read as one).
        defragmenter: a :class:`~.ipfrag.Defragmenter` the caller keeps (fragments held
            across calls, as the live pipe needs; the caller closes it and reads its
            ``stats``). Default: a new one, closed when ``packets`` ends.
    """
    from .ipfrag import Defragmenter  # ipfrag builds on this module

    defrag = Defragmenter() if defragmenter is None else defragmenter
    decode = decode_tcp
    reassemble = defrag.reassemble  # only for what decode_tcp rejects: fragments, non-TCP
    for frame, time_ns, linktype, data, _, _ in packets:
        frame += frame_offset
        seg = decode(frame, time_ns, linktype, data) or reassemble(frame, time_ns, linktype, data)
        if seg is not None:
            yield seg
    if defragmenter is None:
        defrag.close()
