"""IP fragment reassembly (iec104.capture.ipfrag) against tshark on real pcaps.

The pcaps are built with scapy: an IEC 104 conversation whose big segments are cut into IPv4
(``fragment``) or IPv6 (``fragment6``) fragments, written in order, shuffled, duplicated with
overlaps, or with one fragment missing. tshark (IP and TCP reassembly on, its defaults) is the
oracle for which APDUs are decoded, in which frame, with which N(S)/N(R).
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from iec104.capture.ipfrag import Defragmenter, Fragment, parse_fragment
from iec104.capture.packet import tcp_segments
from iec104.capture.reader import CaptureReader
from iec104.dissector import dissect_table
from tests.capture.test_dissect_reassembly import STARTDT_ACT, STARTDT_CON, Conv, i_frame, write
from tests.dissect.test_wireshark_agreement import compare_capture
from tests.support.cli import run
from tests.support.tshark import ensure_tshark, tshark_apdus

MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")


def fragmented(pkt: ScapyPacket, size: int, ident: int) -> list[ScapyPacket]:
    """``pkt`` (Ether / IP or IPv6 / TCP / payload) cut into fragments of about ``size``."""
    ether = Ether(src=pkt[Ether].src, dst=pkt[Ether].dst)
    if IPv6 in pkt:
        ip6 = pkt[IPv6]
        whole = IPv6(src=ip6.src, dst=ip6.dst) / IPv6ExtHdrFragment(id=ident) / ip6.payload
        return [ether / f for f in fragment6(whole, size)]
    ip = pkt[IP].copy()
    ip.id = ident
    return [ether / f for f in fragment(ip, size)]


def conversation(v6: bool = False) -> tuple[list[ScapyPacket], list[list[ScapyPacket]]]:
    """A conversation whose two big segments (30 I-frames each way) are fragmented.

    Returns the packets in capture order and the fragment lists (as placed in it)."""
    c = Conv(v6=v6, client=("fd00::1", 50000) if v6 else ("10.0.0.1", 50000),
             server=("fd00::2", 2404) if v6 else ("10.0.0.2", 2404))
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT), c.seg(1, STARTDT_CON))
    extra = 48 if v6 else 0  # fragment6 counts the IPv6 and fragment headers in the size
    frags1 = fragmented(c.seg(1, b"".join(i_frame(n) for n in range(30))), 120 + extra, 0x1234)
    c.emit(frags1, c.ack(0))
    frags2 = fragmented(c.seg(0, b"".join(i_frame(n) for n in range(30, 60))), 96 + extra,
                        0x1235)
    c.emit(frags2, c.ack(1), c.seg(1, i_frame(60)), c.close())
    return c.packets, [frags1, frags2]


def ours(path: Path) -> tuple[list[tuple[int, str | None, int | None]], list[dict]]:
    """(frame, apci, ssn) of every APDU we decode, and the gap rows."""
    rows = dissect_table(path).to_pylist()
    apdus = {r["apdu"]: (r["frame"], r["apci"], r["ssn"]) for r in rows
             if r["apdu"] is not None}
    return [apdus[k] for k in sorted(apdus)], [r for r in rows if r["apdu"] is None]


def theirs(path: Path) -> list[tuple[int, str | None, int | None]]:
    return [(a["frame"], a["apci"], a["ssn"]) for a in tshark_apdus(path)]


def check_same_as_tshark(path: Path) -> list[tuple[int, str | None, int | None]]:
    ensure_tshark()
    mine, gaps = ours(path)
    assert gaps == []
    expected = theirs(path)
    assert mine == expected
    assert len(mine) == 2 + 61
    # and everything the user sees (stream, time, header, objects) as in the agreement test
    agreement = compare_capture(path)
    assert not agreement.problems, agreement.problems
    assert agreement.apdus_compared == len(expected)
    return mine


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_fragments_in_order_are_reassembled_as_tshark(tmp_path: Path, v6: bool) -> None:
    packets, (frags1, frags2) = conversation(v6)
    assert len(frags1) > 3 and len(frags2) > 3
    mine = check_same_as_tshark(write(tmp_path / "frag.pcap", packets))
    # the APDUs of a fragmented segment belong to the frame of its last fragment
    last1 = packets.index(frags1[-1]) + 1
    assert [f for f, _, ssn in mine if ssn is not None and ssn < 30] == [last1] * 30


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_fragments_out_of_order_are_reassembled_as_tshark(tmp_path: Path, v6: bool) -> None:
    packets, frag_lists = conversation(v6)
    rng = random.Random(16)
    for frags in frag_lists:
        at = packets.index(frags[0])
        shuffled = frags[:]
        while shuffled == frags:
            rng.shuffle(shuffled)
        packets[at:at + len(frags)] = shuffled
    mine = check_same_as_tshark(write(tmp_path / "shuffled.pcap", packets))
    # completed by whichever fragment came last in the capture
    assert mine[2][0] == max(packets.index(f) for f in frag_lists[0]) + 1


def tshark_payloads(path: Path) -> list[tuple[int, bytes]]:
    """(frame, TCP payload) of every segment with data, as tshark reassembled it."""
    out = subprocess.run([ensure_tshark(), "-n", "-r", str(path), "-T", "fields", "-e",
                          "frame.number", "-e", "tcp.payload", "-Y", "tcp.len > 0"],
                         capture_output=True, text=True, check=True).stdout
    return [(int(f), bytes.fromhex(p.replace(":", ""))) for f, p in
            (line.split("\t") for line in out.splitlines())]


def our_payloads(path: Path) -> list[tuple[int, bytes]]:
    with CaptureReader(path) as reader:
        return [(s.frame, s.payload) for s in tcp_segments(reader) if s.payload]


@pytest.mark.parametrize("order", ["rogue first", "genuine first"])
def test_overlapping_fragments_resolve_as_tshark(tmp_path: Path, order: str) -> None:
    """Overlaps with different octets: the lowest offset wins, then the first arrival."""
    packets, (frags1, _) = conversation()
    # a copy of fragment 1 with other octets (same offset: the first to arrive wins) and a
    # copy of fragment 2 starting 8 octets earlier, whose first 24 octets are others: the
    # first 8 lose to fragment 1 (lower offset), the next 16 win over the genuine fragment 2
    # (higher offset), whatever the order of arrival
    rogue = frags1[1].copy()
    rogue[Raw].load = b"R" * len(rogue[Raw].load)
    shifted = frags1[2].copy()
    shifted[IP].frag -= 1
    shifted[Raw].load = b"S" * 24 + shifted[Raw].load[16:]
    for p in (rogue, shifted):
        del p[IP].chksum, p[IP].len
    at = packets.index(frags1[1])
    packets[at:at] = [rogue, shifted] if order == "rogue first" else []
    if order == "genuine first":
        packets[at + 1:at + 1] = [rogue, shifted]
    path = write(tmp_path / "overlap.pcap", packets)
    mine = our_payloads(path)
    assert mine == tshark_payloads(path)
    merged = dict(mine)[max(packets.index(f) for f in frags1) + 1]
    assert (b"R" * 8 in merged) == (order == "rogue first")
    assert b"S" * 16 in merged and b"S" * 17 not in merged


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_missing_fragment_gives_a_gap_row_and_keeps_the_rest(tmp_path: Path, v6: bool) -> None:
    packets, (frags1, _) = conversation(v6)
    packets.remove(frags1[2])
    path = write(tmp_path / "lost.pcap", packets)
    ensure_tshark()
    mine, gaps = ours(path)
    expected = theirs(path)
    assert mine == expected  # tshark decodes nothing of the incomplete datagram either
    assert not [a for a in mine if a[2] is not None and a[2] < 30]
    assert len(mine) == 2 + 31
    # one clear gap row: the whole segment the datagram carried (30 I-frames of 16 octets)
    assert len(gaps) == 1
    assert gaps[0]["direction"] == "s2c"
    assert gaps[0]["error"].startswith("gap: 480 ")
    assert "stream ended" not in gaps[0]["error"]
    # the command line says why, and the exit status is unchanged (a note, not damage)
    proc = run("convert", path, "-o", tmp_path / "lost.parquet")
    assert proc.returncode == 0, proc.stderr
    first = packets.index(frags1[0]) + 1
    assert (f"1 fragmented IP datagram was incomplete (first fragment in frame {first}); "
            "the TCP octets it carried are gap rows") in proc.stderr


def test_bounds_timeouts_and_stats() -> None:
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    tcp = bytes(TCP(sport=50000, dport=2404, seq=1, flags="PA")) + b"x" * 12

    def frag(ident: int, offset: int, more: bool, data: bytes) -> Fragment:
        return Fragment((src, dst, 4, ident), offset, more, data)

    d = Defragmenter(timeout_ns=10, max_datagrams=2, max_bytes=1000)
    assert d.add(1, 0, frag(1, 0, True, tcp)) is None
    assert d.add(2, 20, frag(1, 32, False, b"y" * 8)) is None  # first fragment timed out
    assert d.stats.incomplete == 1 and d.stats.incomplete_frames == [1]
    assert d.pending == 1
    for ident in (2, 3):
        d.add(3, 21, frag(ident, 0, True, tcp))
    assert d.pending == 2 and d.stats.incomplete == 2  # the oldest went over max_datagrams
    seg = d.add(4, 22, frag(3, 32, False, b"z" * 8))
    assert seg is not None and seg.frame == 4 and seg.payload == b"x" * 12 + b"z" * 8
    assert d.add(5, 23, frag(4, 65528, False, b"w" * 16)) is None  # beyond 65,535 octets
    assert d.stats.ignored == 1
    d.close()
    assert d.pending == 0 and d.stats.incomplete == 3 and d.stats.reassembled == 1
    small = Defragmenter(max_bytes=40)
    small.add(1, 0, frag(1, 0, True, tcp))
    small.add(2, 0, frag(2, 0, True, tcp))
    assert small.pending == 1 and small.stats.incomplete == 1


def test_parse_fragment_ignores_what_is_not_a_tcp_fragment() -> None:
    whole = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP() / b"abc")
    assert parse_fragment(1, whole) is None
    udp = fragment(IP(src="10.0.0.1", dst="10.0.0.2", proto=17) / Raw(b"u" * 100), 40)
    assert all(parse_fragment(101, bytes(f)) is None for f in udp)
    tcp = fragment(IP(src="10.0.0.1", dst="10.0.0.2") / TCP() / Raw(b"t" * 100), 40)
    parsed = [parse_fragment(101, bytes(f)) for f in tcp]
    assert all(p is not None for p in parsed)
    assert [p.more for p in parsed if p] == [True] * (len(parsed) - 1) + [False]
    cut = bytes(tcp[0])[:-4]  # snapshot length cut it: not usable
    assert parse_fragment(101, cut) is None
    for n in range(len(bytes(tcp[1]))):  # never raises on short input
        parse_fragment(101, bytes(tcp[1])[:n])
