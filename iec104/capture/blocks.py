"""Blocks of packets decided at once: the dissector's block lane (numpy).

Theory of operation
-------------------
The dissector's fast lane takes the common packet -- a plain TCP segment
(:func:`~.packet.decode_plain_tcp`) that the reassembler takes in order without an event
(:meth:`~.reassembly.Reassembler.in_order`) -- past the reassembly events. Per packet, that
decision is a few microseconds of Python; here it is made for a whole block of packets with
numpy, and its effect applied once per direction:

* :class:`PacketColumns` joins the block's captured bytes and decodes the plain packet's
  headers of every packet by column, from the offsets :mod:`.packet` declares
  (:data:`~.packet.PLAIN_LINKS`, ``PLAIN4``, ``PLAIN6``, ``PLAIN_TCP``): the same answer as
  :func:`~.packet.decode_plain_tcp` packet by packet (tested on every capture);
  packets are grouped by their 4-tuple (one group per connection direction);
* :func:`take_run` decides, from a position in the block on, the leading run of packets
  that ``in_order`` would take one after the other: each packet's direction passes
  :meth:`~.reassembly.Reassembler.ready` (constant while only ``in_order`` runs), its flags
  are ACK (and maybe PSH), and a payload starts at the direction's next expected byte
  (the direction's ``next`` plus the payload octets of its earlier packets in the run). The
  run ends at the first packet that fails, in capture order across all connections, so the
  state every later packet sees is the one the packet-by-packet path gives. Then per
  direction the run's effect is applied at once: the payload octets joined
  (:meth:`~.reassembly._Half.advance_run`), the last packet's frame and time on the
  connection, the idle sequence number of a direction without data yet, and the
  acknowledgements of the other direction (each taken with the other direction's ``next``
  at that packet, the furthest one kept as ``acknowledge`` keeps it).

A packet of a connection that is not decoded (:meth:`~.reassembly.Reassembler.ignored`: not
on a selected port, refused by the heuristic) does not end a run unless it is a SYN: ``feed``
gives no event for it and keeps only that connection's books, so it is fed in its place
among the run's packets of such connections (their order against the decoded ones' is
moot), and mixed traffic keeps long runs.

The packets after a run (the first is not in order, or not plain) go the packet-by-packet way;
the caller decides when to try a run again.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .packet import (
    ACK,
    ETH_IPV4,
    ETH_IPV6,
    PLAIN4,
    PLAIN6,
    PLAIN_LINKS,
    PLAIN_TCP,
    PSH,
    SYN,
    TCP_PROTOCOL,
    decode_tcp,
)

if TYPE_CHECKING:
    from .reader import Packet, RecordBlock
    from .reassembly import Reassembler, _Half

__all__ = ["PacketColumns", "Taken", "take_run"]

_M32 = 0xFFFFFFFF
_PAD = bytes(128)  # after the last packet: every gather of a header stays inside the buffer


def _u32(data: bytes, at: int, order: str) -> int:
    return struct.unpack_from(order + "I", data, at)[0]  # type: ignore[no-any-return]


def _time(times: np.ndarray, i: int) -> int | None:
    """A packet's time as the packet has it (an int, or None)."""
    value = times[i]
    return None if value is None else int(value)


class Taken(NamedTuple):
    """One direction's payloads in a run: where they go and what they carried."""

    half: _Half
    """The reassembler's state of the direction (``stream``, ``direction``)."""
    data: bytes
    """The payloads, joined."""
    sizes: list[int]
    """Each payload's length (> 0), in capture order."""
    frames: list[int]
    times: list[int | None]


class PacketColumns:
    """A block of capture packets, their plain TCP headers decoded by column.

    Made from :class:`~.reader.Packet` records (:meth:`from_packets`) or from a block of
    pcap records in the file's octets (:meth:`from_records`).

    Attributes:
        n: packets in the block.
        frames, times: per packet (``times`` may hold None).
        plain: per packet, whether :func:`~.packet.decode_plain_tcp` decodes it.
        usual: plain, and its flags are ACK, maybe with PSH (what ``in_order`` may take).
        group: per packet, its 4-tuple's index (meaningful where ``plain``).
    """

    @classmethod
    def from_packets(cls, packets: list[Packet], frame_offset: int = 0) -> PacketColumns:
        """``packets`` in capture order; ``frame_offset`` is added to their frames."""
        n = len(packets)
        frames, times, links, datas, _, _ = zip(*packets)
        lens = np.fromiter(map(len, datas), np.int64, n)
        times_at = np.empty(n, object)
        times_at[:] = times
        return cls(b"".join((*datas, _PAD)), np.cumsum(lens) - lens, lens, links,
                   np.fromiter(frames, np.int64, n) + frame_offset, times_at,
                   packets.__getitem__)

    @classmethod
    def from_records(cls, block: RecordBlock, frame_offset: int = 0) -> PacketColumns:
        """A block of pcap records; ``frame_offset`` is added to their frames."""
        n = len(block.starts)
        first = block.starts[0]
        raw = block.data
        last = block.starts[-1]
        end = last + block.header + _u32(raw, last + block.length_at, block.byte_order)
        blob = b"".join((raw[first:end], _PAD))
        a = np.frombuffer(blob, np.uint8)
        heads = np.asarray(block.starts, np.int64) - first
        word = np.dtype(block.byte_order + "u4")

        def field(at: int) -> np.ndarray:  # the 32-bit word at ``at`` of each record
            return (a[(heads + at)[:, None] + np.arange(4)].copy().view(word).ravel()
                    .astype(np.int64))

        if block.times is None:  # pcap: seconds and fraction
            times = field(0) * 1_000_000_000 + field(4) * block.frac_ns
        else:
            times = np.asarray(block.times, np.int64)
        return cls(blob, heads + block.header, field(block.length_at), block.linktype,
                   np.arange(block.first, block.first + n, dtype=np.int64) + frame_offset,
                   times, block.packet)

    def __init__(self, blob: bytes, at: np.ndarray, lens: np.ndarray,
                 links: tuple[int, ...] | int, frames: np.ndarray, times: np.ndarray,
                 packet: Callable[[int], Packet]) -> None:
        """``blob``: the packets' octets (``_PAD`` after the last), ``at``/``lens``: where
        each lies, ``links``: their link types (or one for all); ``packet(i)``: packet
        ``i`` as a record (for the packet-by-packet way)."""
        n = len(at)
        self.n = n
        self.frames = frames
        self.times = times
        self.packet = packet
        self.blob = blob
        self.at = at
        self.a = a = np.frombuffer(blob, np.uint8)
        ip = np.zeros(n, np.int64)  # offset of the IP header in the packet
        etype_at = np.full(n, -2, np.int64)  # -2: a link type without a plain layout
        need = np.zeros(n, np.int64)  # the IP version the link type requires (0: either)
        kinds = {links} if isinstance(links, int) else set(links)
        for link in kinds:
            layout = PLAIN_LINKS.get(link)
            if layout is None:
                continue
            where = slice(None) if len(kinds) == 1 else np.asarray(links) == link
            ip[where], etype_at[where], need[where] = layout
        known = etype_at > -2

        def u8(off: np.ndarray) -> np.ndarray:
            return a[off].astype(np.int64)

        def be(off: np.ndarray, width: int) -> np.ndarray:
            value = u8(off)
            for i in range(1, width):
                value = (value << 8) | a[off + i]
            return value

        ip_at = at + ip
        etype = be(at + np.maximum(etype_at, 0), 2)
        nibble = u8(ip_at) >> 4
        version = np.where(etype_at >= 0,
                           np.where(etype == ETH_IPV4, 4, np.where(etype == ETH_IPV6, 6, 0)),
                           np.where((need == 0) | (nibble == need), nibble, 0))
        room = lens - ip  # captured octets from the IP header on
        v4 = known & (version == 4) & (room >= 40)
        v6 = known & (version == 6) & (room >= 60)
        length4 = be(ip_at + PLAIN4["length"], 2)
        length6 = be(ip_at + PLAIN6["length"], 2)
        v4 &= ((u8(ip_at) == 0x45) & (u8(ip_at + PLAIN4["protocol"]) == TCP_PROTOCOL)
               & ((be(ip_at + PLAIN4["fragment"], 2) & 0x3FFF) == 0)
               & (length4 >= 40) & (length4 <= room))
        v6 &= ((nibble == 6) & (u8(ip_at + PLAIN6["next"]) == TCP_PROTOCOL)
               & (length6 >= 20) & (length6 <= room - 40))
        tcp = ip_at + np.where(v6, PLAIN6["tcp"], PLAIN4["tcp"])
        end = np.where(v6, ip_at + PLAIN6["tcp"] + length6, ip_at + length4)
        offset = u8(tcp + PLAIN_TCP["offset"])
        start = tcp + ((offset >> 4) << 2)
        self.plain = plain = (v4 | v6) & (offset >= 0x50) & (start <= end)
        self.flags = flags = u8(tcp + PLAIN_TCP["flags"])
        self.usual = plain & ((flags & ~(ACK | PSH)) == 0) & ((flags & ACK) != 0)
        self.seq = be(tcp + PLAIN_TCP["seq"], 4)
        self.ack = be(tcp + PLAIN_TCP["ack"], 4)
        self.start = start
        self.size = np.where(plain, end - start, 0)
        # the 4-tuple as words (IPv4 addresses in one word each, IPv6 in four); packets
        # that are not plain all get the key 0 (their group is never looked up)
        ports = be(tcp + PLAIN_TCP["sport"], 4)
        if v6.any():
            src, dst = ip_at + np.where(v6, PLAIN6["src"], PLAIN4["src"]), \
                ip_at + np.where(v6, PLAIN6["dst"], PLAIN4["dst"])
            words = [np.where(v6, be(src + 4 * i, 4), be(src, 4) if i == 0 else 0)
                     for i in range(4)]
            words += [np.where(v6, be(dst + 4 * i, 4), be(dst, 4) if i == 0 else 0)
                      for i in range(4)]
            words.append(ports | (v6.astype(np.int64) << 32))
        else:
            words = [(be(ip_at + PLAIN4["src"], 4) << 32) | be(ip_at + PLAIN4["dst"], 4),
                     ports]
        words[-1] |= 1 << 33  # plain: never the key of the packets that are not
        key = np.where(plain[:, None], np.stack(words, axis=1), 0)
        rows = np.ascontiguousarray(key).view(np.dtype((np.void, 8 * len(words)))).ravel()
        _, self.first, self.group = np.unique(rows, return_index=True, return_inverse=True)
        self.group = self.group.ravel()
        self._v6 = v6
        self._ip_at = ip_at
        self._tcp = tcp

    def key(self, group: int) -> tuple[bytes, int, bytes, int]:
        """The 4-tuple of a group of plain packets, as the reassembler's table has it."""
        i = int(self.first[group])
        data = self.blob
        ip, tcp = int(self._ip_at[i]), int(self._tcp[i])
        layout, width = (PLAIN6, 16) if self._v6[i] else (PLAIN4, 4)
        src = data[ip + layout["src"]:ip + layout["src"] + width]
        dst = data[ip + layout["dst"]:ip + layout["dst"] + width]
        return (src, (data[tcp] << 8) | data[tcp + 1], dst, (data[tcp + 2] << 8) | data[tcp + 3])


def take_run(r: Reassembler, cols: PacketColumns, lo: int) -> tuple[int, list[Taken]]:
    """Take the leading run of packets ``lo`` on that :meth:`Reassembler.in_order` would
    take one by one (see the module docstring), with the same effect on ``r``.

    Returns:
        Where the run stopped (the index of the first packet not taken, or the block's
        length), and the payloads taken per direction.
    """
    n = cols.n
    if lo >= n:
        return n, []
    usual = cols.usual[lo:]
    if not cols.plain[lo]:
        return lo, []
    group = cols.group[lo:]
    counts = np.bincount(group)
    present = np.flatnonzero(counts)
    order = np.argsort(group, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(counts)))
    size = cols.size[lo:]
    seq = cols.seq[lo:]
    fast = usual.copy()
    flags = cols.flags[lo:]
    states: dict[int, tuple[Any, Any, Any, np.ndarray]] = {}
    others: list[np.ndarray] = []  # the packets of connections that are not decoded
    for g in present.tolist():
        at = order[bounds[g]:bounds[g + 1]]
        if not cols.plain[lo + at[0]]:
            continue  # the packets that are not plain (a run ends at the first)
        key = cols.key(g)
        ready = r.ready(key) if usual[at[0]] else None
        if ready is None:
            if r.ignored(key):  # fed in place: their order against the run's is moot
                fast[at] = (flags[at] & SYN) == 0
                others.append(at)
            else:
                fast[at] = False
            continue
        conn, h, other = ready
        sizes = size[at]
        if h.base is None:
            fast[at[sizes > 0]] = False  # data before the direction's first byte is known
        else:
            expected = (h.base + h.next + np.cumsum(sizes) - sizes) & _M32
            fast[at[(sizes > 0) & (seq[at] != expected)]] = False
        states[g] = (conn, h, other, at)
    stop = int(np.argmin(fast)) if not fast.all() else n - lo
    if stop == 0:
        return lo, []

    # the run's effect, computed from the state before it, then applied
    frames, times, start = cols.frames[lo:], cols.times[lo:], cols.start[lo:]
    ack = cols.ack[lo:]
    half_of = {id(h): g for g, (_c, h, _o, _a) in states.items()}
    runs: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # group -> (run positions, data's)
    for g, (_conn, _h, _other, at) in states.items():
        at = at[:np.searchsorted(at, stop)]
        runs[g] = (at, at[size[at] > 0])
    last: dict[int, int] = {}  # connection -> its last packet in the run
    taken: list[Taken] = []
    updates = []
    for g, (conn, h, other, _at) in states.items():
        at, data_at = runs[g]
        if not at.size:
            continue
        last[id(conn)] = max(last.get(id(conn), -1), int(at[-1]))
        if other.base is not None and not other.fallback:  # acknowledge(), per packet
            og = half_of.get(id(other))
            other_at = runs[og][1] if og is not None else at[:0]
            before = np.concatenate(([0], np.cumsum(size[other_at])))
            nxt = other.next + before[np.searchsorted(other_at, at)]
            d = (ack[at] - other.base - nxt) & _M32
            acked = nxt + d - np.where(d >= 0x80000000, 1 << 32, 0)  # _Half.rel
            valid = acked <= nxt + (1 << 30)
            if valid.any():
                best = int(acked[valid].max())
                if other.acked is None or best > other.acked:
                    i = int(at[np.argmax(valid & (acked == best))])
                    updates.append((other, best, int(frames[i]), _time(times, i)))
        if h.base is None:
            h.idle_seq = int(seq[at[-1]])  # a pure ACK before any data (no data here)
        if data_at.size:
            sizes = size[data_at]
            total = int(sizes.sum())
            where = np.repeat(start[data_at] - (np.cumsum(sizes) - sizes), sizes) \
                + np.arange(total)
            data = cols.a[where].tobytes()
            taken.append(Taken(h, data, sizes.tolist(), frames[data_at].tolist(),
                               times[data_at].tolist()))
    for other, best, frame, time_ns in updates:
        other.acked, other.acked_frame, other.acked_time = best, frame, time_ns
    for t in taken:
        t.half.advance_run(t.data, t.sizes)
    for conn, _h, _o, _a in states.values():
        end = last.get(id(conn))
        if end is not None:
            conn.last_frame, conn.last_time = int(frames[end]), _time(times, end)
    if others:
        for i in np.sort(np.concatenate(others)).tolist():
            if i >= stop:
                break
            _, time_ns, linktype, data, _, _ = cols.packet(lo + i)
            seg = decode_tcp(int(frames[i]), time_ns, linktype, data)
            assert seg is not None and not r.feed(seg), "an ignored connection's event"
    return lo + stop, taken
