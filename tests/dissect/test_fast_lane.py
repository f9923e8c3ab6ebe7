"""The dissector's fast lane gives the event path's batches, byte for byte in Parquet.

:func:`iec104.dissector.dissect_packets` takes the common packet (Ethernet, IPv4/IPv6, TCP,
in order) past the reassembly events and frames and records whole blocks at once; ``block=0``
sends every packet down the event path, the reference. The fast lane runs three ways: by
runs over the file's record blocks (the default), by runs over packets of any iterable, and
packet by packet (``runs=False``). Both run on the bundled and public
captures, fuzzed captures, the benchmark's generated capture and generated conversations with
everything that leaves the fast lane (retransmissions, reordering, losses, keep-alives,
RST/FIN, same-port reconnections, several connections interleaved, damaged APDUs, IPv6), at
block sizes 1, 2, 7 and the default, with small batches so that batch cuts fall inside blocks.
The batches must be equal (row groups included) and so must the reassembler's statistics.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from iec104.capture.errors import CaptureError
from iec104.capture.reader import CaptureReader
from iec104.capture.reassembly import Reassembler
from iec104.cli.common import dissect_inputs, open_captures
from iec104.codec import Profile, UFrame, UFunction, encode_apdu
from iec104.dissector import DEFAULT_BLOCK, dissect_packets
from iec104.records.sink import ParquetSink
from tests.conftest import REPO_ROOT, public_capture, public_capture_names
from tests.records.test_columnar import assert_same_batches
from tests.support import fuzz
from tests.support.pcapwriter import build_conversation, write_packets

OWN = sorted((REPO_ROOT / "captures").glob("*.pcap*"))
BLOCKS = [1, 2, 7, DEFAULT_BLOCK]


def run(source: Path | bytes, block: int, batch_rows: int, profile: Profile | None = None,
        runs: bool | str = True) -> tuple[list[pa.RecordBatch], Reassembler]:
    """``dissect``'s one-process path: by runs over the file's record blocks, by runs over
    packets of any iterable (``runs="packets"``), packet by packet (``runs=False``) or
    through the events (``block=0``)."""
    r = Reassembler()
    data = io.BytesIO(source) if isinstance(source, bytes) else source
    with CaptureReader(data) as reader:
        packets = (p for p in reader) if runs == "packets" else reader
        return list(dissect_packets([(packets, 0, None)], r, batch_rows=batch_rows,
                                    profile=profile, block=block, runs=bool(runs))), r


def state(r: Reassembler) -> list[tuple[object, ...]]:
    """Every field of the reassembler's open directions that the fast lane changes."""
    out = []
    for conn in r._open.values():
        out.append((conn.stream, conn.last_frame, conn.last_time))
        for h in conn.halves or ():
            out.append((h.next, h.offset, h.acked, h.acked_frame, h.acked_time, h.idle_seq,
                        bytes(h.history), h.probe))
    return out


def same(source: Path | bytes, batch_rows: int, blocks: list[int] = BLOCKS,
         profile: Profile | None = None) -> list[pa.RecordBatch]:
    """The fast lane (by runs and packet by packet) at each block size against the event
    path; the reference batches."""
    expected, r0 = run(source, 0, batch_rows, profile)
    for block in blocks:
        for runs in (False, True, "packets"):
            got, r = run(source, block, batch_rows, profile, runs)
            assert_same_batches(expected, got)
            assert r.stats == r0.stats and r.connections == r0.connections
            assert r.undecoded == r0.undecoded and r.streams == r0.streams
    return expected


def parquet(batches: list[pa.RecordBatch], path: Path) -> bytes:
    sink = ParquetSink(path)
    for batch in batches:
        sink.write(batch)
    return sink.close().read_bytes()


@pytest.mark.parametrize("profile", [None, Profile(2, 2, 3)], ids=["detected", "given"])
@pytest.mark.parametrize("batch_rows", [7, 65536])
@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_bundled_captures(path: Path, batch_rows: int, profile: Profile | None,
                          tmp_path: Path) -> None:
    expected = same(path, batch_rows, profile=profile)
    got, _ = run(path, DEFAULT_BLOCK, batch_rows, profile)
    assert parquet(got, tmp_path / "fast.parquet") == parquet(expected, tmp_path / "ref.parquet")


@pytest.mark.parametrize("batch_rows", [5, 65536])
@pytest.mark.parametrize("name", public_capture_names())
def test_public_captures(name: str, batch_rows: int) -> None:
    same(public_capture(name), batch_rows)


@pytest.mark.filterwarnings("ignore::iec104.capture.errors.CaptureWarning")
@pytest.mark.parametrize("seed", range(80))
def test_fuzzed_captures(seed: int) -> None:
    corpus = fuzz.corpus(public=False)
    rng = random.Random(f"fastlane:{seed}")
    data = fuzz.mutate_capture(rng, rng.choice(corpus.captures))
    try:
        same(data, rng.choice([3, 11, 65536]), [rng.choice(BLOCKS), DEFAULT_BLOCK])
    except CaptureError:
        return  # not a capture any more: nothing to compare


def _bench_capture(path: Path, apdus: int, connections: int) -> None:
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        import dissect as bench
    finally:
        sys.path.pop(0)
    bench.generate(path, apdus, connections)


@pytest.mark.parametrize("connections", [1, 3])
def test_bench_capture(connections: int, tmp_path: Path) -> None:
    """The benchmark's capture (several connections interleaved), batches cut often."""
    path = tmp_path / "bench.pcap"
    _bench_capture(path, 3000, connections)
    expected = same(path, 997, [7, DEFAULT_BLOCK])
    assert sum(b.num_rows for b in expected) > 3000
    got, _ = run(path, DEFAULT_BLOCK, 997)
    assert parquet(got, tmp_path / "fast.parquet") == parquet(expected, tmp_path / "ref.parquet")


# -- generated conversations with everything that leaves the fast lane ---------------------


def _payloads(rng: random.Random) -> list[tuple[str, bytes]]:
    apdus = fuzz.corpus(public=False).apdus
    out = [("c2s", encode_apdu(UFrame(UFunction.STARTDT_ACT))),
           ("s2c", encode_apdu(UFrame(UFunction.STARTDT_CON)))]
    for _ in range(rng.randint(5, 40)):
        payload = b"".join(rng.choice(apdus) for _ in range(rng.randint(1, 5)))
        if rng.random() < 0.08:
            payload = fuzz.mutate(rng, payload)  # garbage, cut or damaged APDUs
        if payload:
            out.append(("s2c" if rng.random() < 0.75 else "c2s", payload))
    return out


def _perturb(rng: random.Random, packets: list[Packet]) -> list[Packet]:
    """Reorder, repeat, drop, probe, reset and rewrite some packets after the handshake."""
    out = list(packets)
    for _ in range(rng.randint(0, 4)):
        if len(out) < 6:
            break
        i = rng.randrange(3, len(out) - 1)
        op = rng.randrange(7)
        if op == 0:  # out of order
            out[i], out[i + 1] = out[i + 1], out[i]
        elif op == 1:  # retransmission, later
            out.insert(rng.randrange(i, len(out) + 1), out[i].copy())
        elif op == 2:  # lost
            del out[i]
        elif op == 3 and Raw in out[i]:  # a retransmission with other octets
            copy = out[i].copy()
            copy[Raw].load = bytes(b ^ 0x5A for b in copy[Raw].load)
            out.insert(i + 1, copy)
        elif op == 4:  # keep-alive probe: one octet below the next sequence number
            probe = out[i].copy()
            probe[TCP].flags = "A"
            probe[TCP].seq = (probe[TCP].seq - 1) % 2**32
            if Raw in probe:
                probe[TCP].remove_payload()
            out.insert(i + 1, probe / Raw(load=b"\x00"))
        elif op == 5:  # reset in the middle
            out[i] = out[i].copy()
            out[i][TCP].flags = "RA"
        else:  # a flag the fast lane leaves to the event path
            out[i] = out[i].copy()
            out[i][TCP].flags = "PAU"
    return out


def _conversations(seed: int) -> list[Packet]:
    rng = random.Random(seed)
    streams = []
    for c in range(rng.randint(1, 3)):
        port = 50000 if c and rng.random() < 0.4 else 50001 + c  # same-port reconnection
        packets = build_conversation(
            _payloads(rng), client_port=port, client_ip=f"10.0.0.{10 + c}",
            server_ip="10.0.0.1", segment_size=rng.choice([None, None, 5, 13, 40]),
            ack_each=rng.random() < 0.7, fin=rng.random() < 0.7,
            handshake=rng.random() < 0.85, client_isn=rng.randrange(2**32),
            server_isn=rng.randrange(2**32))
        if rng.random() < 0.25:  # the same conversation over IPv6
            packets = [_ipv6(p, c) for p in packets]
        streams.append(_perturb(rng, packets))
    if rng.random() < 0.5:  # interleaved, each in its order
        merged = []
        while any(streams):
            merged.append(rng.choice([s for s in streams if s]).pop(0))
    else:  # one after the other
        merged = [p for s in streams for p in s]
    for k, p in enumerate(merged):
        p.time = 1_700_000_000 + k / 1000
    return merged


def _ipv6(packet: Packet, c: int) -> Packet:
    ip = packet.payload
    ends = {f"10.0.0.{10 + c}": f"fd00::{10 + c:x}", "10.0.0.1": "fd00::1"}
    out = Ether(src=packet.src, dst=packet.dst) / IPv6(src=ends[ip.src], dst=ends[ip.dst]) \
        / ip[TCP].copy()
    out.time = packet.time
    return out


@pytest.mark.parametrize("seed", range(60))
def test_generated_conversations(seed: int, tmp_path: Path) -> None:
    path = write_packets(tmp_path / "c.pcap", _conversations(seed))
    rng = random.Random(seed)
    same(path, rng.choice([4, 9, 65536]))


def test_several_files_as_one(tmp_path: Path) -> None:
    """``convert``'s inputs (files read as one, frames counting on): the same batches."""
    paths = [str(write_packets(tmp_path / f"{seed}.pcap", _conversations(seed)))
             for seed in (3, 4)]
    paths.append(str(OWN[0]))

    def batches(block: int) -> list[pa.RecordBatch]:
        inputs = open_captures(paths)
        try:
            return list(dissect_inputs(inputs, batch_rows=6, block=block))
        finally:
            inputs.close()

    expected = batches(0)
    for block in (1, 7, DEFAULT_BLOCK):
        assert_same_batches(expected, batches(block))


@pytest.mark.filterwarnings("ignore::iec104.capture.errors.CaptureWarning")
def test_plain_packets_decode_as_decode_tcp(tmp_path: Path) -> None:
    """decode_plain_tcp answers only for packets decode_tcp decodes the same way (IPv4,
    IPv6, every link layer of the captures, damaged packets of fuzzed ones)."""
    from iec104.capture.packet import decode_plain_tcp, decode_tcp
    from iec104.capture.reader import CaptureReader

    rng = random.Random("plain")
    sources: list[Path | bytes] = [*OWN, *(public_capture(n) for n in public_capture_names())]
    sources += [write_packets(tmp_path / f"{s}.pcap", _conversations(s)) for s in range(8)]
    sources += [fuzz.mutate_capture(rng, rng.choice(fuzz.corpus(public=False).captures))
                for _ in range(40)]
    plain = 0
    for source in sources:
        try:
            reader = CaptureReader(io.BytesIO(source) if isinstance(source, bytes) else source)
        except CaptureError:
            continue
        with reader:
            for pkt in reader:
                fields = decode_plain_tcp(pkt.linktype, pkt.data)
                if fields is None:
                    continue
                plain += 1
                seg = decode_tcp(pkt.frame, pkt.time_ns, pkt.linktype, pkt.data)
                assert seg is not None and not seg.in_icmp
                assert fields == ((seg.src, seg.sport, seg.dst, seg.dport), seg.seq, seg.ack,
                                  seg.flags, seg.payload)
                assert seg.wire_len == len(seg.payload)
    assert plain > 1000


def test_run_boundaries(tmp_path: Path) -> None:
    """Runs cut where the brief of the block lane says they may go wrong: a connection
    opening mid-block (its profile undecided while the other's flows), an out-of-order
    pair and a retransmission in the middle of a run, APDUs split across segments (a block
    ending mid-APDU), two connections interleaved with a third that is not IEC 104 (its
    packets fed inside runs, its FINs and its SYN reopening it); at every block size from
    1 to 40."""
    rng = random.Random("boundaries")
    apdus = fuzz.corpus(public=False).apdus

    def conversation(port: int, split: int | None) -> list[Packet]:
        payloads = [("c2s", encode_apdu(UFrame(UFunction.STARTDT_ACT))),
                    ("s2c", encode_apdu(UFrame(UFunction.STARTDT_CON)))]
        payloads += [("s2c" if rng.random() < 0.8 else "c2s",
                      b"".join(rng.choice(apdus) for _ in range(rng.randint(1, 3))))
                     for _ in range(30)]
        return build_conversation(payloads, client_port=port, client_ip="10.0.0.9",
                                  server_ip="10.0.0.1", segment_size=split,
                                  ack_each=rng.random() < 0.5)

    first, second = conversation(50001, 7), conversation(50002, None)
    first[40], first[41] = first[41], first[40]  # out of order mid-run
    first.insert(60, first[50].copy())  # a retransmission, later
    # a connection that is not IEC 104 (the heuristic refuses it), closed and reopened
    other = [build_conversation([("c2s", bytes(rng.randrange(256) for _ in range(30))),
                                 ("s2c", b"HTTP/1.1 200 OK\r\n" * 3)] * 8,
                                client_port=40000, client_ip="10.0.0.7", server_ip="10.0.0.2",
                                server_port=8080, segment_size=11, client_isn=isn)
             for isn in (7, 9000)]
    merged = first[:20]  # the second opens while the first flows
    streams = [first[20:], second, other[0] + other[1]]
    while any(streams):
        source = rng.choice([s for s in streams if s])
        merged.append(source.pop(0))
    for k, p in enumerate(merged):
        p.time = 1_700_000_000 + k / 1000
    path = write_packets(tmp_path / "b.pcap", merged)
    same(path, 9, list(range(1, 41)))
    same(write_packets(tmp_path / "b.pcapng", merged), 9, [1, 5, 17, 40])
