"""TCP reassembly on real pcap files built with scapy: split, coalesced, retransmitted,
overlapping, reordered and lost segments, mid-stream joins, port reuse, port selection and the
IEC 104 heuristic, broken sequence numbers."""

from __future__ import annotations

import struct
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet as ScapyPacket
from scapy.utils import wrpcap

from iec104.capture.packet import ACK, PSH, TcpSegment
from iec104.capture.reassembly import (
    Fallback,
    Gap,
    Reassembler,
    StreamData,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TcpConnection,
    stream_events,
)
from tests.support.tshark import ensure_tshark

STARTDT_ACT = bytes.fromhex("680407000000")
STARTDT_CON = bytes.fromhex("68040b000000")
S_FRAME = bytes.fromhex("680401000200")


def i_frame(n: int) -> bytes:
    """A 16-byte C_IC_NA_1 I-frame with send sequence number ``n``."""
    return bytes([0x68, 0x0E, (n << 1) & 0xFF, (n >> 7) & 0xFF, 0, 0,
                  100, 1, 6, 0, 1, 0, n & 0xFF, 0, 0, 20])


class Conv:
    """Builds the packets of one TCP connection with correct sequence numbers.

    Direction 0 is client -> server, 1 is server -> client. ``seg()`` makes a data segment at
    the current position of a direction and advances it; ``emit()`` appends packets to the
    capture in the order given (so tests choose any order, duplicates, omissions).
    """

    def __init__(self, client: tuple[str, int] = ("10.0.0.1", 50000),
                 server: tuple[str, int] = ("10.0.0.2", 2404), cisn: int = 1000,
                 sisn: int = 5000, v6: bool = False, capture: list[ScapyPacket] | None = None):
        self.ends = (client, server)
        self.next = [cisn, sisn]
        self.v6 = v6
        self.packets: list[ScapyPacket] = [] if capture is None else capture

    def _pkt(self, d: int, flags: str, seq: int, payload: bytes = b"") -> ScapyPacket:
        (sip, sport), (dip, dport) = self.ends[d], self.ends[1 - d]
        ip = IPv6(src=sip, dst=dip) if self.v6 else IP(src=sip, dst=dip)
        ack = self.next[1 - d] & 0xFFFFFFFF if "A" in flags else 0
        macs = ("02:00:00:00:00:01", "02:00:00:00:00:02")
        # explicit MACs: scapy would otherwise try to resolve them (slow for IPv6)
        pkt = Ether(src=macs[d], dst=macs[1 - d]) / ip / TCP(sport=sport, dport=dport, seq=seq & 0xFFFFFFFF, ack=ack,
                                 flags=flags)
        return pkt / payload if payload else pkt

    def seg(self, d: int, payload: bytes, flags: str = "PA") -> ScapyPacket:
        pkt = self._pkt(d, flags, self.next[d], payload)
        self.next[d] += len(payload)
        return pkt

    def at(self, d: int, offset: int, payload: bytes, flags: str = "PA") -> ScapyPacket:
        """A segment at ``offset`` bytes relative to the current position (no advance)."""
        return self._pkt(d, flags, self.next[d] + offset, payload)

    def ack(self, d: int) -> ScapyPacket:
        return self._pkt(d, "A", self.next[d])

    def handshake(self) -> list[ScapyPacket]:
        syn = self._pkt(0, "S", self.next[0])
        self.next[0] += 1
        synack = self._pkt(1, "SA", self.next[1])
        self.next[1] += 1
        return [syn, synack, self.ack(0)]

    def close(self) -> list[ScapyPacket]:
        fin1 = self._pkt(0, "FA", self.next[0])
        self.next[0] += 1
        fin2 = self._pkt(1, "FA", self.next[1])
        self.next[1] += 1
        return [fin1, fin2, self.ack(0)]

    def emit(self, *pkts: ScapyPacket | list[ScapyPacket]) -> None:
        for p in pkts:
            self.packets.extend(p if isinstance(p, list) else [p])


def write(path: Path, packets: list[ScapyPacket], snaplen: int | None = None) -> Path:
    for i, p in enumerate(packets):
        p.time = 1_700_000_000 + i / 100
    if snaplen is None:
        wrpcap(str(path), packets)
    else:  # cut records like a capture with a small snapshot length
        with path.open("wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
            for i, p in enumerate(packets):
                raw = bytes(p)
                f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, min(len(raw), snaplen),
                                    len(raw)) + raw[:snaplen])
    return path


def run(path: Path, **kw: object) -> tuple[list[StreamEvent], Reassembler]:
    r = Reassembler(**kw)  # type: ignore[arg-type]
    return list(stream_events(path, reassembler=r)), r


def joined(events: list[StreamEvent]) -> dict[tuple[int, int], bytes]:
    out: dict[tuple[int, int], bytearray] = defaultdict(bytearray)
    for ev in events:
        if isinstance(ev, StreamData):
            assert ev.offset == len(out[ev.stream, ev.direction])
            out[ev.stream, ev.direction] += ev.data
    return {k: bytes(v) for k, v in out.items()}


def of(events: list[StreamEvent], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


# -- in-order basics ----------------------------------------------------------------------------


def test_simple_conversation_and_metadata(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT), c.ack(1), c.seg(1, STARTDT_CON), c.ack(0),
           c.close())
    events, r = run(write(tmp_path / "a.pcap", c.packets))
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamEnd)
    conn = events[0].connection
    assert conn == TcpConnection(0, "10.0.0.1", 50000, "10.0.0.2", 2404, 1,
                              1_700_000_000 * 10**9, True, "port")
    assert r.connections == {0: conn}
    assert joined(events) == {(0, 0): STARTDT_ACT, (0, 1): STARTDT_CON}
    data = of(events, StreamData)
    assert [(d.frame, d.direction) for d in data] == [(4, 0), (6, 1)]
    assert data[0].time_ns == 1_700_000_000 * 10**9 + 30_000_000
    assert events[-1].reason == "closed"
    assert not of(events, Gap)
    assert r.stats[0][0].bytes == 6 and r.stats[0][0].segments == 1


def test_apdu_split_over_many_segments_keeps_each_segments_frame(tmp_path: Path) -> None:
    c = Conv()
    msg = i_frame(1) + i_frame(2)
    c.emit(c.handshake())
    c.emit([c.seg(0, msg[i:i + 3]) for i in range(0, len(msg), 3)])
    events, _ = run(write(tmp_path / "split.pcap", c.packets))
    assert joined(events)[0, 0] == msg
    data = of(events, StreamData)
    assert [d.frame for d in data] == list(range(4, 4 + len(data)))
    assert all(len(d.data) <= 3 for d in data)


def test_many_apdus_in_one_segment(tmp_path: Path) -> None:
    c = Conv()
    msg = STARTDT_ACT + b"".join(i_frame(n) for n in range(12)) + S_FRAME
    c.emit(c.handshake(), c.seg(1, msg))
    events, _ = run(write(tmp_path / "many.pcap", c.packets))
    (d,) = of(events, StreamData)
    assert d.data == msg and d.frame == 4 and d.direction == 1


def test_ipv6_connection(tmp_path: Path) -> None:
    c = Conv(client=("2001:db8::1", 40000), server=("2001:db8::2", 2404), v6=True)
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT), c.seg(1, STARTDT_CON))
    events, r = run(write(tmp_path / "v6.pcap", c.packets))
    assert r.connections[0].src == "2001:db8::1" and r.connections[0].dst == "2001:db8::2"
    assert joined(events) == {(0, 0): STARTDT_ACT, (0, 1): STARTDT_CON}


def test_sequence_numbers_wrapping_around_2_32(tmp_path: Path) -> None:
    c = Conv(cisn=0xFFFFFFF0, sisn=0xFFFFFFFE)
    msg = b"".join(i_frame(n) for n in range(6))
    c.emit(c.handshake(), [c.seg(0, msg[i:i + 10]) for i in range(0, len(msg), 10)],
           c.seg(1, msg))
    events, r = run(write(tmp_path / "wrap.pcap", c.packets))
    assert joined(events) == {(0, 0): msg, (0, 1): msg}
    assert not of(events, Gap) and r.stats[0][0].retransmissions == 0


# -- retransmission, overlap, reordering ---------------------------------------------------------


def test_retransmissions_are_delivered_once(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake())
    a, b = c.seg(0, i_frame(1)), c.seg(0, i_frame(2))
    c.emit(a, a.copy(), b, a.copy(), b.copy(), c.ack(1))
    events, r = run(write(tmp_path / "retrans.pcap", c.packets))
    assert joined(events)[0, 0] == i_frame(1) + i_frame(2)
    assert [d.frame for d in of(events, StreamData)] == [4, 6]
    assert r.stats[0][0].retransmissions == 3
    assert not of(events, Fallback)


def test_overlapping_segments_count_bytes_once(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake())
    msg = b"".join(i_frame(n) for n in range(4))  # 64 bytes
    c.emit(c.at(0, 0, msg[:20]), c.at(0, 10, msg[10:40]), c.at(0, 30, msg[30:64]),
           c.at(0, 0, msg[:64]))
    events, r = run(write(tmp_path / "overlap.pcap", c.packets))
    assert joined(events)[0, 0] == msg
    data = of(events, StreamData)
    assert [(d.frame, d.offset, len(d.data)) for d in data] == [(4, 0, 20), (5, 20, 20),
                                                                (6, 40, 24)]
    assert r.stats[0][0].overlaps == 2 and r.stats[0][0].retransmissions == 1


def test_out_of_order_segments_are_reordered(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake())
    s1, s2, s3, s4 = (c.seg(0, i_frame(n)) for n in range(1, 5))
    c.emit(s1, s3, s4, s2)  # s2 is late but arrives (no ACK past it yet)
    events, r = run(write(tmp_path / "ooo.pcap", c.packets))
    assert joined(events)[0, 0] == b"".join(i_frame(n) for n in range(1, 5))
    # bytes keep the frame of the segment that carried them
    assert [d.frame for d in of(events, StreamData)] == [4, 7, 5, 6]
    assert r.stats[0][0].out_of_order == 2
    assert not of(events, Gap)


def test_reordered_and_overlapping_buffered_segments(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake())
    msg = bytes(range(100))
    c.emit(c.at(0, 50, msg[50:80]), c.at(0, 60, msg[60:100]), c.at(0, 20, msg[20:55]),
           c.at(0, 0, msg[0:30]))
    events, _ = run(write(tmp_path / "mix.pcap", c.packets))
    assert joined(events)[0, 0] == msg
    assert not of(events, Gap)


# -- lost bytes -----------------------------------------------------------------------------------


def test_gap_acknowledged_by_the_peer_is_reported_at_once(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake())
    s1, lost, s3 = c.seg(1, i_frame(1)), c.seg(1, i_frame(2)), c.seg(1, i_frame(3))
    c.emit(s1, s3, c.ack(0), c.seg(1, i_frame(4)))
    events, r = run(write(tmp_path / "gap.pcap", c.packets))
    body = [e for e in events if isinstance(e, (StreamData, Gap))]
    assert [type(e).__name__ for e in body] == ["StreamData", "Gap", "StreamData", "StreamData"]
    gap = body[1]
    assert (gap.stream, gap.direction, gap.frame, gap.offset, gap.missing) == (0, 1, 5, 16, 16)
    assert gap.seq == lost[TCP].seq
    # the gap was declared when the ACK (frame 6) passed it, before frame 7 arrived
    assert joined(events)[0, 1] == i_frame(1) + i_frame(3) + i_frame(4)
    assert r.stats[0][1].gaps == 1 and r.stats[0][1].gap_bytes == 16


def test_gap_without_acks_is_declared_when_the_budget_is_exceeded(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake(), c.seg(0, i_frame(0)))
    c.seg(0, b"x" * 100)  # lost
    c.emit([c.seg(0, i_frame(n)) for n in range(1, 8)])
    events, _ = run(write(tmp_path / "budget.pcap", c.packets), max_pending_segments=4)
    kinds = [type(e).__name__ for e in events if isinstance(e, (StreamData, Gap))]
    assert kinds == ["StreamData", "Gap"] + ["StreamData"] * 7
    gap = of(events, Gap)[0]
    assert gap.missing == 100 and gap.frame == 5  # the first frame after the hole
    # the gap came out while frame 9 was read: before the later segments' data
    assert of(events, StreamData)[1].frame == 5


def test_gap_is_declared_at_the_end_of_the_capture(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake(), c.seg(0, i_frame(0)))
    c.seg(0, i_frame(1))  # lost
    c.emit(c.seg(0, i_frame(2)))
    events, _ = run(write(tmp_path / "eof.pcap", c.packets))
    assert [type(e).__name__ for e in events] == ["StreamStart", "StreamData", "Gap", "StreamData",
                                                  "StreamEnd"]
    assert events[-1].reason == "end"


def test_trailing_bytes_acked_but_never_seen_are_a_gap(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake(), c.seg(1, i_frame(0)))
    c.seg(1, i_frame(1))  # lost, and nothing follows it from the server
    c.emit(c.ack(0), c.close())
    events, _ = run(write(tmp_path / "tail.pcap", c.packets))
    (gap,) = of(events, Gap)
    assert gap.direction == 1 and gap.missing == 16 and gap.offset == 16
    assert events[-1].reason == "closed"


def test_snapshot_length_cut_segment_gives_data_and_gap(tmp_path: Path) -> None:
    c = Conv()
    big = b"".join(i_frame(n) for n in range(10))  # 160 bytes
    c.emit(c.handshake(), c.seg(0, big), c.seg(0, i_frame(10)))
    events, _ = run(write(tmp_path / "snap.pcap", c.packets, snaplen=100))
    body = [e for e in events if isinstance(e, (StreamData, Gap))]
    assert [type(e).__name__ for e in body] == ["StreamData", "Gap", "StreamData"]
    assert body[0].data == big[:46] and body[1].missing == 160 - 46
    assert body[2].data == i_frame(10) and body[2].offset == 46


# -- joining, numbering, selection ---------------------------------------------------------------


def test_stream_joined_mid_way_starts_at_the_first_segment(tmp_path: Path) -> None:
    # no handshake; the first packet comes from the 2404 side (the server)
    c = Conv(client=("10.0.0.9", 4446), server=("10.0.0.1", 2404))
    c.emit(c.seg(1, i_frame(5)[3:]), c.seg(1, i_frame(6)), c.ack(0), c.seg(0, S_FRAME))
    events, r = run(write(tmp_path / "mid.pcap", c.packets))
    conn = r.connections[0]
    assert (conn.src, conn.sport, conn.dst, conn.dport) == ("10.0.0.9", 4446, "10.0.0.1", 2404)
    assert conn.syn_seen is False
    assert joined(events) == {(0, 1): i_frame(5)[3:] + i_frame(6), (0, 0): S_FRAME}


def test_keepalive_before_data_in_a_joined_stream_is_not_data(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.ack(1), c.at(1, -1, b"\x00", flags="A"), c.seg(1, i_frame(1)))
    events, r = run(write(tmp_path / "ka.pcap", c.packets))
    assert joined(events) == {(0, 1): i_frame(1)}
    assert r.stats[0][1].retransmissions == 1


def test_stream_numbers_count_every_tcp_connection_and_port_reuse(tmp_path: Path) -> None:
    cap: list[ScapyPacket] = []
    web = Conv(client=("10.0.0.5", 41000), server=("10.0.0.6", 80), capture=cap)
    first = Conv(capture=cap)
    web.emit(web.handshake())
    first.emit(first.handshake(), first.seg(0, STARTDT_ACT), first.close())
    web.emit(web.seg(0, b"GET / HTTP/1.0\r\n\r\n"))
    again = Conv(cisn=777777, sisn=888888, capture=cap)  # same 4-tuple, new connection
    again.emit(again.handshake(), again.seg(0, STARTDT_ACT), again.seg(1, STARTDT_CON))
    rst = Conv(client=("10.0.0.1", 50001), capture=cap)
    rst.emit(rst.handshake(), rst.seg(0, STARTDT_ACT), rst._pkt(1, "R", rst.next[1]))
    rst2 = Conv(client=("10.0.0.1", 50001), cisn=5, capture=cap)
    rst2.emit(rst2.handshake(), rst2.seg(0, i_frame(3)))
    path = write(tmp_path / "reuse.pcap", cap)
    events, r = run(path)
    assert r.streams == 5
    assert sorted(r.connections) == [1, 2, 3, 4]
    assert joined(events) == {(1, 0): STARTDT_ACT, (2, 0): STARTDT_ACT, (2, 1): STARTDT_CON,
                              (3, 0): STARTDT_ACT, (4, 0): i_frame(3)}
    ends = {e.stream: e.reason for e in of(events, StreamEnd)}
    assert ends == {1: "closed", 2: "end", 3: "closed", 4: "end"}
    # the stream numbers are Wireshark's
    out = subprocess.run([ensure_tshark(), "-r", str(path), "-T", "fields", "-e", "tcp.stream",
                          "-e", "tcp.len", "-Y", "tcp.len > 0"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [tuple(map(int, line.split("\t"))) for line in out.splitlines()]
    ours = [(d.stream, len(d.data)) for d in of(events, StreamData)]
    assert [t for t in theirs if t[0] != 0] == ours


def test_other_ports_are_ignored_unless_selected(tmp_path: Path) -> None:
    cap: list[ScapyPacket] = []
    c = Conv(server=("10.0.0.2", 2405), capture=cap)
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT))
    path = write(tmp_path / "2405.pcap", cap)
    events, r = run(path, heuristic=False)
    assert events == [] and r.streams == 1
    assert dict(r.undecoded) == {2405: 1}  # counted, so the caller can say why
    events, r = run(path, ports=[2405], heuristic=False)
    assert joined(events) == {(0, 0): STARTDT_ACT}
    assert r.connections[0].selected_by == "port"


def test_heuristic_accepts_iec104_on_an_unknown_port(tmp_path: Path) -> None:
    cap: list[ScapyPacket] = []
    http = Conv(client=("10.0.0.7", 41000), server=("10.0.0.8", 8080), capture=cap)
    iec = Conv(client=("10.0.0.1", 41001), server=("10.0.0.2", 20000), capture=cap)
    http.emit(http.handshake())
    iec.emit(iec.handshake())
    http.emit(http.seg(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    iec.emit(iec.seg(0, STARTDT_ACT[:3]), iec.seg(0, STARTDT_ACT[3:]), iec.seg(1, STARTDT_CON),
             iec.seg(1, i_frame(0)))
    path = write(tmp_path / "heur.pcap", cap)
    events, r = run(path, ports=(), heuristic=True)
    assert r.streams == 2 and list(r.connections) == [1]
    assert r.connections[1].selected_by == "heuristic"
    assert r.connections[1].dport == 20000
    # the events held back while undecided come out complete and in order
    assert isinstance(events[0], StreamStart) and events[0].frame == 4
    assert joined(events) == {(1, 0): STARTDT_ACT, (1, 1): STARTDT_CON + i_frame(0)}
    assert [d.frame for d in of(events, StreamData)] == [8, 9, 10, 11]
    assert dict(r.undecoded) == {8080: 1}
    # without the heuristic nothing is selected
    events, r = run(path, ports=(), heuristic=False)
    assert events == [] and dict(r.undecoded) == {8080: 1, 20000: 1}


def test_heuristic_rejects_a_stream_that_only_starts_like_iec104(tmp_path: Path) -> None:
    c = Conv(server=("10.0.0.2", 9999))
    c.emit(c.handshake(), c.seg(0, b"\x68\x04\x05\x00\x28\x00"),  # reserved S-frame bits
           c.seg(0, STARTDT_ACT))
    events, r = run(write(tmp_path / "rej.pcap", c.packets), ports=(), heuristic=True)
    assert events == [] and r.connections == {}


# -- broken sequence numbers ---------------------------------------------------------------------


def test_constant_sequence_numbers_fall_back_to_per_segment_delivery(tmp_path: Path) -> None:
    c = Conv()
    msgs = [STARTDT_ACT, STARTDT_CON] + [i_frame(n) for n in range(50)]
    c.emit([c.at(0, 0, m) for m in msgs])  # every segment has the same seq, like scapy scripts
    events, r = run(write(tmp_path / "const.pcap", c.packets))
    assert joined(events) == {(0, 0): b"".join(msgs)}
    (fb,) = of(events, Fallback)
    assert (fb.stream, fb.direction, fb.frame) == (0, 0, 2)
    stats = r.stats[0][0]
    assert stats.fallback and stats.fallback_segments == len(msgs) - 1
    assert [d.frame for d in of(events, StreamData)] == list(range(1, len(msgs) + 1))


def test_fallback_can_be_disabled(tmp_path: Path) -> None:
    c = Conv()
    c.emit([c.at(0, 0, i_frame(n)) for n in range(5)])
    events, r = run(write(tmp_path / "nofb.pcap", c.packets), fallback_after=0)
    assert joined(events) == {(0, 0): i_frame(0)}
    assert r.stats[0][0].inconsistent == 4 and r.stats[0][0].retransmissions == 4


# -- sans-IO use ----------------------------------------------------------------------------------


def seg(frame: int, seq: int, payload: bytes, flags: int = PSH | ACK, ack: int = 1,
        sport: int = 50000, dport: int = 2404) -> TcpSegment:
    src, dst = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    if sport == 2404:
        src, dst = dst, src
    return TcpSegment(frame, frame * 1000, src, sport, dst, dport, seq, ack, flags, payload,
                      len(payload))


def test_feed_and_close_without_files() -> None:
    r = Reassembler()
    out: list[StreamEvent] = []
    for i in range(100):
        out += r.feed(seg(i + 1, 10 + i * 6, STARTDT_ACT))
    out += r.close()
    assert joined(out) == {(0, 0): STARTDT_ACT * 100}
    assert [e.frame for e in of(out, StreamData)] == list(range(1, 101))
    assert r.close() == []


def test_byte_by_byte_in_reverse_order() -> None:
    msg = b"".join(i_frame(n) for n in range(8))
    r = Reassembler(max_pending_segments=1000)
    out = r.feed(seg(1, 99, b"", flags=0x02))  # SYN
    for i in reversed(range(len(msg))):
        out += r.feed(seg(len(msg) - i + 1, 100 + i, msg[i:i + 1]))
    out += r.close()
    assert joined(out) == {(0, 0): msg}
    assert not of(out, Gap)


@pytest.mark.parametrize("budget", [1, 3, 10])
def test_bytes_after_a_gap_are_never_lost(budget: int) -> None:
    msg = bytes(range(256)) * 4
    r = Reassembler(max_pending_segments=budget)
    out = r.feed(seg(1, 1000, msg[:100]))
    frame = 2
    for start in range(300, len(msg), 50):  # bytes 100..300 are missing
        out += r.feed(seg(frame, 1000 + start, msg[start:start + 50]))
        frame += 1
    out += r.close()
    assert joined(out) == {(0, 0): msg[:100] + msg[300:]}
    (gap,) = of(out, Gap)
    assert gap.missing == 200 and gap.offset == 100 and gap.seq == 1100
