"""Blocks of packets decided at once: the dissector's block lane (numpy).

Theory of operation
-------------------
The dissector's fast lane takes the common packet -- a plain TCP segment
(:func:`~.packet.decode_plain_tcp`) that the reassembler takes in order without an event
(:meth:`~.reassembly.Reassembler.in_order`) -- past the reassembly events. Per packet, that
decision is a few microseconds of Python; here it is made for a whole block of packets with
numpy, and its effect applied once per direction:

* :class:`PacketColumns` decodes the plain packet's headers of every packet of the block
  by column, from the offsets :mod:`.packet` declares (:data:`~.packet.PLAIN_LINKS`,
  ``PLAIN4``, ``PLAIN6``, ``PLAIN_TCP``): the same answer as
  :func:`~.packet.decode_plain_tcp` packet by packet (tested on every capture). Each
  packet's octets from its IP header on are gathered as one row (a view of the block's
  octets whose row ``i`` starts at octet ``i``, indexed by the packets' offsets) and read
  through structured dtypes built from those offsets, so a field costs no index array of
  its own. A pcap block lies in the octets the reader holds (no copy when they hold its
  gathers), and the record headers (times, captured lengths) are read the same way.
  Packets are grouped by their 4-tuple (one group per connection direction): for IPv4,
  the addresses and then the ports are numbered as integers among the values of the
  block's first packets (:func:`_numbered`; a sort of all when those miss one);
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
  at that packet, the furthest one kept as ``acknowledge`` keeps it). Each of these steps
  is one numpy operation over all the block's packets, whatever their directions (sums
  per direction from one stable sort by group, :func:`_before`); Python runs per
  direction only to ask the reassembler and to apply the effect, and the payloads of all
  directions are gathered at once.

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
from .reader import _epb_time

if TYPE_CHECKING:
    from .reader import Packet, RecordBlock
    from .reassembly import Reassembler, _Half

__all__ = ["PacketColumns", "Taken", "take_run"]

_M32 = 0xFFFFFFFF
_FLOOR = -(1 << 63)  # below every acknowledgement
_PAD = bytes(128)  # after the last packet: every gather of a header stays inside the buffer


#: The octets of a packet read from its IP header on: the plain IPv6 header and TCP up to
#: its flags (the plain IPv4 packet's fields lie within)
_IP_ROW = PLAIN6["tcp"] + PLAIN_TCP["flags"] + 1
#: numpy formats (the wire's byte order) of the fields :mod:`.packet` places
_FORMATS = {"vihl": "u1", "length": ">u2", "fragment": ">u2", "protocol": "u1", "next": "u1",
            "seq": ">u4", "ack": ">u4", "offset": "u1", "flags": "u1"}
#: The 4-tuple's octets in a row: the addresses and the ports lie side by side from the
#: source address on
_KEY4 = slice(PLAIN4["src"], PLAIN4["tcp"] + PLAIN_TCP["dport"] + 2)
_KEY6 = slice(PLAIN6["src"], PLAIN6["tcp"] + PLAIN_TCP["dport"] + 2)
assert PLAIN4["dst"] - PLAIN4["src"] == 4 and PLAIN6["dst"] - PLAIN6["src"] == 16
assert PLAIN4["tcp"] - PLAIN4["dst"] == 4 and PLAIN6["tcp"] - PLAIN6["dst"] == 16


def _row(ip: dict[str, int]) -> np.dtype[np.void]:
    """A packet's row (:data:`_IP_ROW` octets) as named fields: those of the IP header
    (``ip``: ``PLAIN4`` or ``PLAIN6``) and of the TCP header after it."""
    fields = {"vihl": 0} | {name: at for name, at in ip.items() if name in _FORMATS}
    fields |= {name: ip["tcp"] + at for name, at in PLAIN_TCP.items() if name in _FORMATS}
    return np.dtype({"names": list(fields), "formats": [_FORMATS[f] for f in fields],
                     "offsets": list(fields.values()), "itemsize": _IP_ROW})


_ROW4 = _row(PLAIN4)
_ROW6 = _row(PLAIN6)
#: The IPv4 4-tuple in a row: both addresses in one word, both ports in another
_TUPLE4 = np.dtype({"names": ["addresses", "ports"], "formats": [">u8", ">u4"],
                    "offsets": [PLAIN4["src"], PLAIN4["tcp"] + PLAIN_TCP["sport"]],
                    "itemsize": _IP_ROW})


def _rows(blob: bytes, width: int) -> np.ndarray:
    """Every ``width`` octets of ``blob`` as a row, row ``i`` starting at octet ``i`` (a
    view): indexing it with packet offsets gathers one row per packet in one copy, where
    gathering field by field, octet by octet, costs an index array per octet."""
    return np.ndarray((len(blob) - width + 1, width), np.uint8, blob, strides=(1, 1))


#: Packets of a block whose 4-tuples are taken for all (see _numbered)
_SAMPLE = 256


def _numbered(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``key`` (int64) numbered in ascending order: the index of
    each one's first element, and each element's number (``np.unique``'s ``return_index``
    and ``return_inverse``). Sorting the first :data:`_SAMPLE` elements and looking the
    rest up among their values (a binary search in a handful) costs less than sorting
    all; when the others hold a value the first do not, all are sorted."""
    values, first = np.unique(key[:_SAMPLE], return_index=True)
    number = np.searchsorted(values, key)
    np.minimum(number, len(values) - 1, out=number)
    if (values[number] == key).all():
        return first, number
    _, first, number = np.unique(key, return_index=True, return_inverse=True)
    return first, number.ravel()


def _tuples(rows: np.ndarray, in4: np.ndarray, in6: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The packets grouped by 4-tuple (``rows``: their octets from the IP header on;
    ``in4``/``in6``: the plain IPv4/IPv6 ones): the first packet of each group, and each
    packet's group. The packets that are not plain get groups of their own (never
    looked up)."""
    if not in6.any():  # IPv4: two numberings of integers (the addresses, then beside the ports)
        k4 = rows.view(_TUPLE4).ravel()
        _, pair = _numbered(np.where(in4, k4["addresses"], 0))
        return _numbered((pair << 33) | np.where(in4, k4["ports"].astype(np.int64) | (1 << 32),
                                                 0))
    # IPv6 too: rows of octets (a slower sort), after a tag that keeps the families and the
    # packets that are not plain apart
    octets = np.zeros((len(rows), 1 + _KEY6.stop - _KEY6.start), np.uint8)
    octets[:, 0] = np.where(in6, 6, np.where(in4, 4, 0))
    octets[in6, 1:] = rows[in6, _KEY6]
    octets[in4, 1:1 + _KEY4.stop - _KEY4.start] = rows[in4, _KEY4]
    key = octets.view(np.dtype((np.void, octets.shape[1]))).ravel()
    _, first, group = np.unique(key, return_index=True, return_inverse=True)
    return first, group.ravel()


def _epb_times(ts: np.ndarray, mul: int, div: int, offset_ns: int) -> np.ndarray:
    """EPB times in ns, :func:`~.reader._epb_time` by column (in range: the reader checked
    it). ``ts`` holds the 64-bit timestamps as int64 (those of 2**63 and above as
    negative numbers): int64 arithmetic where no step can overflow (the usual
    resolutions), Python's integers otherwise."""
    if div == 1 and ts.min() >= 0 and int(ts.max()) * mul < 1 << 63 \
            and -(1 << 63) <= offset_ns < 1 << 63:
        return ts * mul + offset_ns
    return np.array([_epb_time(t, mul, div, offset_ns)
                     for t in ts.astype(np.uint64).tolist()], np.int64)


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
    ends: list[int]
    """Where each payload (> 0 octets, in capture order) ends in ``data``."""
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
        if len(raw) - end >= len(_PAD):  # the octets read hold every gather: no copy
            blob = raw
            heads = np.asarray(block.starts, np.int64)
        else:
            blob = b"".join((raw[first:end], _PAD))
            heads = np.asarray(block.starts, np.int64) - first
        o = block.byte_order
        # the record header's time (pcap: seconds and fraction; EPB: a 64-bit timestamp
        # in two words) and captured length
        record = _rows(blob, block.header)[heads].view(np.dtype({
            "names": ["high", "low", "incl"], "formats": [o + "u4"] * 3,
            "offsets": [0, 4, block.length_at] if block.clock is None else [12, 16, 20],
            "itemsize": block.header})).ravel()
        high, low = record["high"].astype(np.int64), record["low"].astype(np.int64)
        if block.clock is None:
            times = high * 1_000_000_000 + low * block.frac_ns
        else:
            times = _epb_times((high << 32) | low, *block.clock)
        return cls(blob, heads + block.header, record["incl"].astype(np.int64),
                   block.linktype,
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
        self.a = np.frombuffer(blob, np.uint8)
        # where the IP header lies in the packet, where its EtherType (-1: none, the version
        # nibble says; -2: a link type without a plain layout), the IP version the link
        # type requires (0: either): one layout for the whole block (scalars) when its
        # packets share a link type, as a pcap's or an interface's EPBs do
        ip: Any
        etype_at: Any
        need: Any
        kinds = {links} if isinstance(links, int) else set(links)
        if len(kinds) == 1:
            ip, etype_at, need = PLAIN_LINKS.get(next(iter(kinds)), (0, -2, 0))
        else:
            ip, etype_at, need = (np.zeros(n, np.int64), np.full(n, -2, np.int64),
                                  np.zeros(n, np.int64))
            link_at = np.asarray(links)
            for link in kinds:
                layout = PLAIN_LINKS.get(link)
                if layout is not None:
                    where = link_at == link
                    ip[where], etype_at[where], need[where] = layout
        known = etype_at > -2
        ip_at = at + ip
        rows = _rows(blob, _IP_ROW)[ip_at]  # each packet's octets from its IP header on
        nibble = rows[:, 0] >> 4
        by_type: Any = None  # the version the EtherType says (where the link has one)
        if not isinstance(etype_at, int) or etype_at >= 0:
            etype = np.ndarray((len(blob) - 1,), ">u2", blob, strides=(1,))[
                at + np.maximum(etype_at, 0)]  # the 16-bit word at each packet's offset
            by_type = (etype == ETH_IPV4) * 4 + (etype == ETH_IPV6) * 6
        if isinstance(etype_at, int) and etype_at >= 0:
            version = by_type
        else:
            version = np.where((need == 0) | (nibble == need), nibble, 0)
            if by_type is not None:
                version = np.where(etype_at >= 0, by_type, version)
        room = lens - ip  # captured octets from the IP header on
        v4 = known & (version == 4) & (room >= 40)
        v6 = known & (version == 6) & (room >= 60)
        r4 = rows.view(_ROW4).ravel()
        length4 = r4["length"].astype(np.int64)
        v4 &= ((r4["vihl"] == 0x45) & (r4["protocol"] == TCP_PROTOCOL)
               & ((r4["fragment"] & 0x3FFF) == 0) & (length4 >= 40) & (length4 <= room))
        tcp_at: Any = PLAIN4["tcp"]
        end = ip_at + length4
        field: Callable[[str], np.ndarray] = r4.__getitem__  # a TCP field of each packet
        if v6.any():  # the TCP fields where the IPv6 packets have them
            r6 = rows.view(_ROW6).ravel()
            length6 = r6["length"].astype(np.int64)
            v6 &= ((nibble == 6) & (r6["next"] == TCP_PROTOCOL) & (length6 >= 20)
                   & (length6 <= room - 40))
            tcp_at = np.where(v6, PLAIN6["tcp"], tcp_at)
            end = np.where(v6, ip_at + PLAIN6["tcp"] + length6, end)

            def field(name: str) -> np.ndarray:
                return np.where(v6, r6[name], r4[name])
        tcp = ip_at + tcp_at
        offset = field("offset")
        start = tcp + ((offset >> 4).astype(np.int64) << 2)
        self.plain = plain = (v4 | v6) & (offset >= 0x50) & (start <= end)
        self.flags = flags = field("flags").astype(np.int64)
        self.usual = plain & ((flags & ~(ACK | PSH)) == 0) & ((flags & ACK) != 0)
        self.seq = field("seq").astype(np.int64)
        self.ack = field("ack").astype(np.int64)
        self.start = start
        self.size = np.where(plain, end - start, 0)
        self.first, self.group = _tuples(rows, v4 & plain, v6 & plain)
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


def _before(values: np.ndarray, order: np.ndarray, bounds: np.ndarray,
            counts: np.ndarray) -> np.ndarray:
    """Per element, the sum of ``values`` over the earlier elements of its group
    (``order``: a stable sort by group, ``bounds``/``counts``: where each group lies in it)."""
    ranked = values[order]
    before = np.cumsum(ranked) - ranked  # over the groups before, too
    before -= np.repeat(before[np.minimum(bounds[:-1], len(before) - 1)], counts)
    out = np.empty_like(before)
    out[order] = before
    return out


def _by_group(group: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stable sort of the elements by ``group`` (in [0, groups)): the order, where each
    group starts in it (and the end), and each group's size."""
    counts = np.bincount(group, minlength=groups)
    # a radix sort where the group numbers fit 16 bits (numpy sorts wider ones by merging)
    order = np.argsort(group.astype(np.uint16) if groups <= 1 << 16 else group, kind="stable")
    bounds = np.zeros(groups + 1, np.int64)
    np.cumsum(counts, out=bounds[1:])
    return order, bounds, counts


def take_run(r: Reassembler, cols: PacketColumns, lo: int) -> tuple[int, list[Taken]]:
    """Take the leading run of packets ``lo`` on that :meth:`Reassembler.in_order` would
    take one by one (see the module docstring), with the same effect on ``r``.

    Every step is one numpy operation over the block's packets, whatever their
    connections (a Python step per direction only to ask the reassembler and to apply).

    Returns:
        Where the run stopped (the index of the first packet not taken, or the block's
        length), and the payloads taken per direction.
    """
    n = cols.n
    if lo >= n:
        return n, []
    if not cols.plain[lo]:
        return lo, []
    group = cols.group[lo:]
    groups = int(group.max()) + 1
    order, bounds, counts = _by_group(group, groups)
    usual, plain = cols.usual[lo:], cols.plain[lo:]
    size, seq, flags = cols.size[lo:], cols.seq[lo:], cols.flags[lo:]
    # each direction's state, asked of the reassembler at its first packet
    states: dict[int, tuple[Any, Any, Any]] = {}  # group -> (connection, half, other half)
    others: list[int] = []  # the groups of connections that are not decoded
    blocked = np.zeros(groups, bool)  # its packets end a run
    checked = np.zeros(groups, bool)  # its data must start at the next expected byte
    next_at = np.zeros(groups, np.int64)  # sequence number of the next expected byte
    unknown = np.zeros(groups, bool)  # data there ends a run (no first byte known yet)
    present = np.flatnonzero(counts)
    for g, i in zip(present.tolist(), order[bounds[present]].tolist(), strict=True):
        if not plain[i]:
            continue  # the packets that are not plain (a run ends at the first)
        key = cols.key(g)
        ready = r.ready(key) if usual[i] else None
        if ready is None:
            if r.ignored(key):  # fed in place: their order against the run's is moot
                others.append(g)
            else:
                blocked[g] = True
            continue
        states[g] = ready
        checked[g] = True
        h = ready[1]
        if h.base is None:
            unknown[g] = True
        else:
            next_at[g] = h.base + h.next
    fast = usual & ~blocked[group]
    if others:
        spared = np.isin(group, others)
        fast[spared] = (flags[spared] & SYN) == 0
    data = size > 0
    ahead = _before(size, order, bounds, counts)  # octets of the direction before
    fast &= ~(data & checked[group]
              & (unknown[group] | (seq != ((next_at[group] + ahead) & _M32))))
    stop = int(np.argmin(fast)) if not fast.all() else n - lo
    if stop == 0:
        return lo, []

    # the run's effect, computed from the state before it, then applied
    frames, times, start, ack = cols.frames[lo:], cols.times[lo:], cols.start[lo:], \
        cols.ack[lo:]
    inside = np.bincount(group[:stop], minlength=groups)  # each group's packets in the run
    last = order[np.maximum(bounds[:-1] + inside - 1, 0)]  # each group's last in the run
    taken_at = np.flatnonzero(inside[present] > 0)
    # acknowledgements: each packet's ack taken with the other direction's next at it
    # (its next before the run plus the octets of its packets before this one)
    conn_of = np.arange(groups, dtype=np.int64) + groups  # a connection of its own
    ack_ok = np.zeros(groups, bool)
    base_other = np.zeros(groups, np.int64)
    next_other = np.zeros(groups, np.int64)
    conns: dict[int, int] = {}
    for g, (conn, _h, other) in states.items():
        conn_of[g] = conns.setdefault(id(conn), len(conns))
        if other.base is not None and not other.fallback:
            ack_ok[g] = True
            base_other[g], next_other[g] = other.base, other.next
    by_conn = _by_group(conn_of[group], 2 * groups)
    nxt = next_other[group] + _before(size, *by_conn) - ahead
    d = (ack - base_other[group] - nxt) & _M32
    acked = nxt + d - np.where(d >= 0x80000000, 1 << 32, 0)  # _Half.rel
    valid = ack_ok[group] & (acked <= nxt + (1 << 30))
    valid[stop:] = False
    floor = _FLOOR
    ranked = np.where(valid, acked, floor)[order]
    best = np.full(groups, floor, np.int64)
    best[present] = np.maximum.reduceat(ranked, bounds[present])
    # the first packet of each group that has its best
    hits = order[np.flatnonzero(ranked == best[group[order]])]  # by group, in order
    hit_group = group[hits]
    firsts = np.ones(hits.size, bool)
    firsts[1:] = hit_group[1:] != hit_group[:-1]
    first_hit = np.zeros(groups, np.int64)
    first_hit[hit_group[firsts]] = hits[firsts]
    # the payloads in the run, one direction after the other, gathered at once (with
    # 32-bit indices where they fit: numpy repeats 64-bit ones several times slower, and
    # the index arrays cost more than the octets)
    carried = order[np.flatnonzero((data & checked[group])[order] & (order < stop))]
    sizes = size[carried]
    ends = np.cumsum(sizes)
    index = np.int32 if len(cols.blob) < 1 << 31 else np.int64
    where = np.repeat((start[carried] - (ends - sizes)).astype(index), sizes)
    where += np.arange(int(ends[-1]) if ends.size else 0, dtype=index)
    octets = np.take(cols.a, where).tobytes()
    per_group = np.bincount(group[carried], minlength=groups)
    cut = np.zeros(groups + 1, np.int64)
    np.cumsum(per_group, out=cut[1:])
    frames_l, times_l = frames[carried].tolist(), times[carried].tolist()
    taken: list[Taken] = []
    updates = []
    last_of: dict[int, int] = {}  # connection -> its last packet in the run
    at = 0  # where the next direction's payloads start in ``octets``
    for g in present[taken_at].tolist():
        state = states.get(g)
        if state is None:
            continue
        conn, h, other = state
        end = int(last[g])
        if last_of.get(id(conn), -1) < end:
            last_of[id(conn)] = end
        top = int(best[g])
        if top != floor and (other.acked is None or top > other.acked):
            i = int(first_hit[g])
            updates.append((other, top, int(frames[i]), _time(times, i)))
        if h.base is None:
            h.idle_seq = int(seq[end])  # a pure ACK before any data (no data here)
        a, b = int(cut[g]), int(cut[g + 1])
        if b > a:
            part = ends[a:b] - at  # the group's payload ends from its first octet on
            width = int(part[-1])
            taken.append(Taken(h, octets[at:at + width], part.tolist(), frames_l[a:b],
                               times_l[a:b]))
            at += width
    for other, top, frame, time_ns in updates:
        other.acked, other.acked_frame, other.acked_time = top, frame, time_ns
    for t in taken:
        t.half.advance_run(t.data, t.ends)
    for conn, _h, _o in states.values():
        final = last_of.get(id(conn))
        if final is not None:
            conn.last_frame, conn.last_time = int(frames[final]), _time(times, final)
    if others:
        for i in np.flatnonzero(spared[:stop]).tolist():
            _, time_ns, linktype, packet, _, _ = cols.packet(lo + i)
            seg = decode_tcp(int(frames[i]), time_ns, linktype, packet)
            assert seg is not None and not r.feed(seg), "an ignored connection's event"
    return lo + stop, taken
