"""The block lane's parts against their packet-by-packet references.

* :meth:`CaptureParser.record_blocks` gives the records (and the damage report) that
  :meth:`CaptureParser.packets` gives, pcap and pcapng, whatever the block size and however
  the octets arrive;
* :class:`PacketColumns` decodes each packet as :func:`decode_plain_tcp` does (both forms:
  from records and from packets);
* :func:`take_run` leaves the reassembler in the state ``in_order`` packet by packet leaves
  it in, field by field, checked after every block (and takes no packet that ``in_order``
  would refuse).
"""

from __future__ import annotations

import io
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import TCP

from iec104.capture.blocks import PacketColumns, _numbered, take_run
from iec104.capture.errors import CaptureError, CaptureWarning
from iec104.capture.packet import decode_plain_tcp, decode_tcp
from iec104.capture.reader import NEED_DATA, CaptureParser, CaptureReader, Packet, RecordBlock
from iec104.capture.reassembly import Reassembler
from tests.capture.test_dissect_capture import epb, idb, shb
from tests.conftest import REPO_ROOT, public_capture, public_capture_names
from tests.dissect.test_fast_lane import _bench_capture, _conversations
from tests.support import fuzz
from tests.support.pcapwriter import build_conversation, write_packets

OWN = sorted((REPO_ROOT / "captures").glob("*.pcap*"))


def _sources(tmp_path: Path) -> list[bytes]:
    """Bundled, public, generated (pcap and pcapng) and fuzzed captures, as octets."""
    rng = random.Random("blocks")
    out = [p.read_bytes() for p in OWN]
    out += [public_capture(n).read_bytes() for n in public_capture_names()]
    for seed in range(10):
        suffix = ".pcapng" if seed % 3 == 0 else ".pcap"
        out.append(write_packets(tmp_path / f"{seed}{suffix}", _conversations(seed))
                   .read_bytes())
    for seed in range(10, 14):  # acknowledgements anywhere (some beyond 2**30: ignored)
        packets = _conversations(seed)
        for i, pkt in enumerate(packets):
            if TCP in pkt and rng.random() < 0.2:
                packets[i] = pkt = pkt.copy()
                pkt[TCP].ack = rng.randrange(2**32)
        out.append(write_packets(tmp_path / f"{seed}.pcap", packets).read_bytes())
    # IEC 104 beside a connection that is not (refused by the heuristic, then ignored)
    iec = _conversations(20)
    other = build_conversation([("c2s", b"GET / HTTP/1.1\r\n\r\n"), ("s2c", b"x" * 300)] * 6,
                               client_ip="10.0.0.7", server_ip="10.0.0.2", server_port=8080,
                               segment_size=50, fin=True)
    merged = []
    while iec or other:
        merged.append((iec if iec and (not other or rng.random() < 0.5) else other).pop(0))
    for k, p in enumerate(merged):
        p.time = 1_700_000_000 + k / 1000
    out.append(write_packets(tmp_path / "mixed.pcap", merged).read_bytes())
    out += [fuzz.mutate_capture(rng, rng.choice(fuzz.corpus(public=False).captures))
            for _ in range(40)]
    return out


def _packets(data: bytes) -> tuple[list[Packet], str | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with CaptureReader(io.BytesIO(data)) as reader:
            return list(reader), reader.problem


def _blocks(data: bytes, records: int, piece: int | None = None,
            ) -> tuple[list[Packet], str | None, list[int]]:
    """record_blocks() of a parser fed ``piece`` octets at a time (None: all at once)."""
    parser = CaptureParser("x")
    pos = 0
    step = len(data) if piece is None else piece
    packets: list[Packet] = []
    sizes: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        while not parser.parse_header():
            parser.feed(data[pos:pos + step])
            pos += step
            if pos >= len(data):
                parser.end()
        for item in parser.record_blocks(records):
            if item is NEED_DATA:
                parser.feed(data[pos:pos + step])
                pos += step
                if pos >= len(data):
                    parser.end()
                continue
            if isinstance(item, RecordBlock):
                sizes.append(len(item.starts))
                packets += [item.packet(i) for i in range(len(item.starts))]
            else:
                packets.append(item)  # a pcapng record other than an EPB run
    return packets, parser.problem, sizes


def test_record_blocks_as_packets(tmp_path: Path) -> None:
    rng = random.Random("records")
    checked = 0
    for data in _sources(tmp_path):
        try:
            expected, problem = _packets(data)
        except CaptureError:
            continue
        if data[:2] == b"\x1f\x8b":
            continue  # the parser takes what CaptureReader decompressed
        for records, piece in ((1, None), (3, 7), (4096, None), (5, rng.randint(1, 300))):
            got, got_problem, sizes = _blocks(data, records, piece)
            assert got == expected and got_problem == problem
            assert max(sizes, default=0) <= records
        checked += 1
    assert checked > 30


@pytest.mark.parametrize("late", [0, 1, 300])
def test_numbered_as_unique(late: int) -> None:
    """Groups numbered from a sample give np.unique's answer, also when values first
    appear after the sample (then all are sorted)."""
    rng = np.random.default_rng(late)
    key = rng.choice(np.array([5, -3, 1 << 40, 7, 0], np.int64), 2000)
    key[-late or len(key):] = rng.integers(-(1 << 62), 1 << 62, late)  # new values, late
    _, first, number = np.unique(key, return_index=True, return_inverse=True)
    got_first, got_number = _numbered(key)
    assert got_first.tolist() == first.tolist() and got_number.tolist() == number.tolist()


@pytest.mark.parametrize("order", ["<", ">"])
def test_record_blocks_keep_every_clock(order: str) -> None:
    """EPB runs check each timestamp against the bounds of the storable times and the
    columns compute the times by column: both as packets() does, for every resolution
    and offset, at the edges of the range and past them (each ends a run)."""
    rng = random.Random(f"clocks{order}")
    clocks = [(None, None), (9, None), (0x80 | 20, None), (12, 7), (0, -(1 << 34)),
              (0x80 | 63, 1 << 20), (6, -(1 << 31)), (0x80 | 3, -(1 << 34))]
    data = shb(order) + b"".join(idb(order, tsresol=r, tsoffset=o) for r, o in clocks)
    frame = bytes.fromhex("00112233445566778899aabb0800") + bytes(46)
    edges = []  # per interface: the timestamps nearest both ends of the storable range
    for res, seconds in clocks:
        res = 6 if res is None else res
        mul, div = ((10**9, 1 << (res & 0x7F)) if res & 0x80 else (10 ** (9 - res), 1)
                    if res <= 9 else (1, 10 ** (res - 9)))
        offset = (seconds or 0) * 10**9
        edges.append([max(0, ((end - offset) * div) // mul) for end in (-(1 << 63), 1 << 63)])
    for _ in range(800):
        iface = rng.randrange(len(clocks))
        ts = rng.choice([rng.randrange(1 << 64), rng.randrange(1 << 52), rng.randrange(1 << 40),
                         rng.choice(edges[iface]) + rng.randrange(-2, 3)])
        data += epb(order, iface, min(max(ts, 0), (1 << 64) - 1), frame)
    expected, problem = _packets(data)
    assert any(p.time_ns is None for p in expected)  # past the range: in the data
    assert sum(p.time_ns is not None for p in expected) > 200
    for records in (1, 7, 4096):
        got, got_problem, _ = _blocks(data, records)
        assert got == expected and got_problem == problem
    parser = CaptureParser("x")
    parser.feed(data)
    parser.end()
    assert parser.parse_header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        for item in parser.record_blocks(64):
            if isinstance(item, RecordBlock):
                cols = PacketColumns.from_records(item, 0)
                assert cols.times.tolist() == [item.packet(i).time_ns for i in range(cols.n)]


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_record_blocks_refused_after_packets(path: Path) -> None:
    parser = CaptureParser("x")
    parser.feed(path.read_bytes())
    assert parser.parse_header()
    next(iter(parser.packets()))
    with pytest.raises(RuntimeError):
        parser.record_blocks(4)
    keeping = CaptureParser("x", keep_blocks=True)
    keeping.feed(path.read_bytes())
    assert keeping.parse_header()
    with pytest.raises(RuntimeError):
        keeping.record_blocks(4)


def _forms(data: bytes, block: int) -> list[list[PacketColumns]]:
    """A capture in blocks of columns: from packets, and (pcap) from records."""
    packets, _ = _packets(data)
    out = [[PacketColumns.from_packets(packets[i:i + block], 0)
            for i in range(0, len(packets), block)]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with CaptureReader(io.BytesIO(data)) as reader:
            out.append([PacketColumns.from_records(b, 0) if isinstance(b, RecordBlock)
                        else PacketColumns.from_packets([b], 0)
                        for b in reader.record_blocks(block)])
    return out


def test_columns_decode_as_decode_plain_tcp(tmp_path: Path) -> None:
    plain = 0
    for data in _sources(tmp_path):
        try:
            forms = _forms(data, 97)
        except CaptureError:
            continue
        for cols in (c for form in forms for c in form):
            for i in range(cols.n):
                pkt = cols.packet(i)
                fields = decode_plain_tcp(pkt.linktype, pkt.data)
                assert bool(cols.plain[i]) == (fields is not None), pkt
                assert cols.frames[i] == pkt.frame and cols.times[i] == pkt.time_ns
                if fields is None:
                    continue
                plain += 1
                key, seq, ack, flags, payload = fields
                assert cols.key(int(cols.group[i])) == key
                assert (cols.seq[i], cols.ack[i], cols.flags[i]) == (seq, ack, flags)
                start, size = int(cols.start[i]), int(cols.size[i])
                assert cols.blob[start:start + size] == payload
                seg = decode_tcp(pkt.frame, pkt.time_ns, pkt.linktype, pkt.data)
                assert bool(cols.usual[i]) == (seg is not None and seg.flags & 0x10 != 0
                                               and seg.flags & ~0x18 == 0)
    assert plain > 1000


def _state(r: Reassembler) -> list[tuple[object, ...]]:
    """Every field of the reassembler that ``in_order`` changes, and the statistics."""
    out: list[tuple[object, ...]] = [(r.streams, dict(r.stats), dict(r.undecoded))]
    out += sorted((key, c.stream, c.selected, tuple(c.base), tuple(c.fin), c.rst, c.counted)
                  for key, (c, _d) in r._table.items())
    for conn in r._open.values():
        out.append((conn.stream, conn.last_frame, conn.last_time))
        for h in conn.halves or ():
            out.append((h.next, h.offset, h.acked, h.acked_frame, h.acked_time, h.idle_seq,
                        bytes(h.history), None if h.probe is None else bytes(h.probe)))
    return out


def _one(r: Reassembler, pkt: Packet) -> None:
    """The packet-by-packet lane's step (without the records)."""
    fields = decode_plain_tcp(pkt.linktype, pkt.data)
    if fields is not None and r.in_order(*fields, pkt.frame, pkt.time_ns) is not None:
        return
    seg = decode_tcp(pkt.frame, pkt.time_ns, pkt.linktype, pkt.data)
    if seg is not None:
        r.feed(seg)


def _same_state(data: bytes, block: int) -> int:
    """Runs and packet by packet side by side, compared after every block (each form of
    the columns); the packets the runs took."""
    took = 0
    for form in _forms(data, block):
        ref, runs = Reassembler(), Reassembler()
        for cols in form:
            for i in range(cols.n):
                _one(ref, cols.packet(i))
            i = 0
            while i < cols.n:
                stop, taken = take_run(runs, cols, i)
                took += stop - i
                assert sum(len(t.ends) for t in taken) <= stop - i
                if stop < cols.n:
                    _one(runs, cols.packet(stop))
                i = stop + 1
            assert _state(runs) == _state(ref)
    return took


@pytest.mark.parametrize("block", [1, 2, 5, 64, 4096])
def test_runs_leave_the_state_of_in_order(block: int, tmp_path: Path) -> None:
    took = 0
    for data in _sources(tmp_path):
        try:
            _packets(data)
        except CaptureError:
            continue
        took += _same_state(data, block)
    assert took > 1000


def test_runs_on_the_bench_capture(tmp_path: Path) -> None:
    """Several connections interleaved, long runs (history trimmed inside a run)."""
    path = tmp_path / "bench.pcap"
    _bench_capture(path, 20000, 3)
    data = path.read_bytes()
    for block in (100, 4096):
        assert _same_state(data, block) > 1.8 * len(_packets(data)[0])  # both forms
