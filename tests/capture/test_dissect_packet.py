"""Link layer / IP / TCP decoding: every supported link type, checked against scapy's packet
fields and against tshark reading the same pcap file."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR, fragment
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from iec104.capture.packet import ACK, PSH, SYN, TcpSegment, decode_tcp, format_ip
from iec104.capture.reader import CaptureReader
from tests.support.tshark import ensure_tshark

APDU = bytes.fromhex("680e0000000064010600010000000014")
TCP_LAYER = TCP(sport=50123, dport=2404, seq=0xDEADBEEF, ack=0x01020304, flags="PA")
IPV4 = IP(src="192.0.2.10", dst="198.51.100.20")
IPV6 = IPv6(src="2001:db8::10", dst="2001:db8:1::20")


def write_pcap(path: Path, linktype: int, packets: list[bytes]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, data in enumerate(packets):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(data), len(data)) + data)


def decode_file(path: Path) -> list[TcpSegment | None]:
    with CaptureReader(path) as reader:
        return [decode_tcp(p.frame, p.time_ns, p.linktype, p.data) for p in reader]


def tshark_tcp(path: Path) -> list[tuple[str, ...]]:
    out = subprocess.run(
        [ensure_tshark(), "-r", str(path), "-T", "fields", "-E", "occurrence=l",
         "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.len"],
        capture_output=True, text=True, check=True,
    ).stdout
    return [tuple(line.split("\t")) for line in out.splitlines()]


def ipv4_tcp(payload: bytes = APDU) -> ScapyPacket:
    return IPV4 / TCP_LAYER / payload


def ipv6_tcp(payload: bytes = APDU) -> ScapyPacket:
    return IPV6 / TCP_LAYER / payload


def af_header(af: int, order: str) -> bytes:
    return struct.pack(order + "I", af)


# (id, linktype, packet bytes, IP version)
CASES: list[tuple[str, int, bytes, int]] = [
    ("ethernet-ipv4", 1, bytes(Ether() / ipv4_tcp()), 4),
    ("ethernet-ipv6", 1, bytes(Ether() / ipv6_tcp()), 6),
    ("ethernet-802.1q", 1, bytes(Ether() / Dot1Q(vlan=7) / ipv4_tcp()), 4),
    ("ethernet-qinq", 1, bytes(Ether() / Dot1AD(vlan=100) / Dot1Q(vlan=7) / ipv4_tcp()), 4),
    ("ethernet-triple-tag", 1,
     bytes(Ether() / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / ipv6_tcp()), 6),
    ("ipv4-options", 1,
     bytes(Ether() / IP(src="192.0.2.10", dst="198.51.100.20",
                        options=[IPOption_RR(routers=["1.2.3.4", "5.6.7.8"])])
           / TCP_LAYER / APDU), 4),
    ("ethernet-trailer", 1, bytes(Ether() / ipv4_tcp()) + b"\xde\xad\xbe\xef" * 3, 4),
    ("sll", 113, bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x0800)
                       / ipv4_tcp()), 4),
    ("sll-ipv6", 113, bytes(CookedLinux(proto=0x86DD) / ipv6_tcp()), 6),
    ("sll2", 276, bytes(CookedLinuxV2(proto=0x0800) / ipv4_tcp()), 4),
    ("sll2-ipv6", 276, bytes(CookedLinuxV2(proto=0x86DD) / ipv6_tcp()), 6),
    ("raw-101-v4", 101, bytes(ipv4_tcp()), 4),
    ("raw-101-v6", 101, bytes(ipv6_tcp()), 6),
    ("raw-12", 12, bytes(ipv4_tcp()), 4),
    ("raw-228", 228, bytes(ipv4_tcp()), 4),
    ("raw-229", 229, bytes(ipv6_tcp()), 6),
    ("null-le-inet", 0, bytes(Loopback(type=2) / ipv4_tcp()), 4),
    ("null-be-inet", 0, af_header(2, ">") + bytes(ipv4_tcp()), 4),
    ("null-inet6-linux", 0, af_header(10, "<") + bytes(ipv6_tcp()), 6),
    ("null-inet6-bsd", 0, af_header(24, "<") + bytes(ipv6_tcp()), 6),
    ("null-inet6-darwin", 0, af_header(30, "<") + bytes(ipv6_tcp()), 6),
    ("loop-108", 108, af_header(2, ">") + bytes(ipv4_tcp()), 4),
    ("ipv6-ext-headers", 1,
     bytes(Ether() / IPv6(src="2001:db8::10", dst="2001:db8:1::20") / IPv6ExtHdrHopByHop()
           / IPv6ExtHdrRouting(addresses=["2001:db8::99"]) / IPv6ExtHdrDestOpt()
           / TCP_LAYER / APDU), 6),
    ("ipv6-atomic-fragment", 1,
     bytes(Ether() / IPV6 / IPv6ExtHdrFragment(offset=0, m=0, id=5) / TCP_LAYER / APDU), 6),
]


@pytest.mark.parametrize(("linktype", "data", "version"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_link_types_decode_to_the_tcp_segment(tmp_path: Path, linktype: int, data: bytes,
                                              version: int) -> None:
    path = tmp_path / "one.pcap"
    write_pcap(path, linktype, [data])
    (seg,) = decode_file(path)
    assert seg is not None
    assert seg.frame == 1 and seg.time_ns == 1_700_000_000 * 10**9
    if version == 4:
        assert (format_ip(seg.src), format_ip(seg.dst)) == ("192.0.2.10", "198.51.100.20")
    else:
        assert (format_ip(seg.src), format_ip(seg.dst)) == ("2001:db8::10", "2001:db8:1::20")
    assert (seg.sport, seg.dport, seg.seq, seg.ack) == (50123, 2404, 0xDEADBEEF, 0x01020304)
    assert seg.flags == PSH | ACK
    assert seg.payload == APDU and seg.wire_len == len(APDU)
    assert not seg.in_icmp
    # tshark reads the same bytes the same way (it does not take AF 10 on a BSD loopback
    # header, which no OS writes; we go by the IP version nibble and accept it)
    if linktype == 0 and data[:4] == af_header(10, "<"):
        return
    assert tshark_tcp(path) == [("50123", "2404", str(0xDEADBEEF), str(len(APDU)))]


def test_non_tcp_and_non_ip_give_none() -> None:
    for linktype, data in [
        (1, bytes(Ether() / ARP())),
        (1, bytes(Ether() / IP() / UDP(sport=2404, dport=2404) / APDU)),
        (1, bytes(Ether() / IPv6() / UDP() / APDU)),
        (1, bytes(Ether(type=0x88CC) / Raw(b"\x00" * 40))),  # LLDP
        (1, bytes(Ether() / Dot1Q() / ARP())),
        (1, bytes(Ether(type=60) / Raw(b"\x00" * 60))),  # 802.3 length field
        (228, bytes(ipv6_tcp())),  # IPv4-only link type carrying IPv6
        (229, bytes(ipv4_tcp())),
        (101, b"\x50" + bytes(ipv4_tcp())[1:]),  # IP version 5
        (147, bytes(ipv4_tcp())),  # a user link type we do not decode
        (0, b"\x02\x00\x00\x00"),  # loopback header only
    ]:
        assert decode_tcp(1, 0, linktype, data) is None, data


def test_fragments(tmp_path: Path) -> None:
    big = IPV4 / TCP(sport=50000, dport=2404, seq=7, flags="PA") / (APDU * 20)
    frags = fragment(big, fragsize=128)
    assert len(frags) > 2
    # every fragment, the first one too, is left to iec104.capture.ipfrag
    assert all(decode_tcp(1, 0, 101, bytes(f)) is None for f in frags)
    v6 = bytes(IPV6 / IPv6ExtHdrFragment(offset=16, m=0, id=9, nh=6) / Raw(b"\x00" * 40))
    assert decode_tcp(1, 0, 101, v6) is None
    first6 = bytes(IPV6 / IPv6ExtHdrFragment(offset=0, m=1, id=9, nh=6) / TCP() / Raw(b"x" * 8))
    assert decode_tcp(1, 0, 101, first6) is None
    # an atomic fragment (offset 0, M=0; RFC 6946) is a whole datagram
    atomic = bytes(IPV6 / IPv6ExtHdrFragment(offset=0, m=0, id=9, nh=6) / TCP() / Raw(b"x" * 8))
    assert decode_tcp(1, 0, 101, atomic).payload == b"x" * 8  # type: ignore[union-attr]


def test_ip_total_length_cuts_padding_and_zero_means_tso() -> None:
    data = bytes(Ether() / ipv4_tcp()) + b"\x00" * 10
    seg = decode_tcp(1, 0, 1, data)
    assert seg is not None and seg.payload == APDU
    tso = bytearray(bytes(Ether() / ipv4_tcp()))
    struct.pack_into("!H", tso, 16, 0)  # total length 0: segmentation offload
    seg = decode_tcp(1, 0, 1, bytes(tso))
    assert seg is not None and seg.payload == APDU


def test_snapshot_cut_payload_reports_wire_length() -> None:
    data = bytes(Ether() / ipv4_tcp(APDU * 4))
    seg = decode_tcp(1, 0, 1, data[:80])
    assert seg is not None
    assert seg.payload == (APDU * 4)[:80 - 54]
    assert seg.wire_len == len(APDU) * 4
    # cut inside the TCP header: not decodable
    assert decode_tcp(1, 0, 1, data[:50]) is None


def test_tcp_header_options_are_skipped() -> None:
    pkt = IPV4 / TCP(sport=1, dport=2404, flags="S", seq=5,
                     options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 2)),
                              ("WScale", 7)])
    seg = decode_tcp(3, 4, 101, bytes(pkt))
    assert seg is not None and seg.flags == SYN and seg.payload == b"" and seg.wire_len == 0


def test_tcp_headers_quoted_in_icmp_errors() -> None:
    quoted = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=2404, seq=99, flags="S")
    v4 = bytes(Ether() / IP(src="10.0.0.9", dst="10.0.0.1") / ICMP(type=3, code=1)
               / bytes(quoted)[:28])  # RFC 792: IP header + 8 octets
    seg = decode_tcp(1, 0, 1, v4)
    assert seg is not None and seg.in_icmp
    assert (format_ip(seg.src), seg.sport, format_ip(seg.dst), seg.dport) == (
        "10.0.0.1", 40000, "10.0.0.2", 2404)
    assert seg.seq == 99 and seg.payload == b"" and seg.wire_len == 0
    quoted6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=40001, dport=2404)
    v6 = bytes(IPv6(src="2001:db8::9", dst="2001:db8::1") / ICMPv6DestUnreach() / quoted6)
    seg6 = decode_tcp(1, 0, 101, v6)
    assert seg6 is not None and seg6.in_icmp and seg6.sport == 40001
    # an echo request is no error message
    assert decode_tcp(1, 0, 101, bytes(IP() / ICMP(type=8) / bytes(quoted))) is None


@pytest.mark.parametrize(("linktype", "data", "version"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_every_truncation_is_handled_without_exceptions(linktype: int, data: bytes,
                                                        version: int) -> None:
    for cut in range(len(data)):
        seg = decode_tcp(1, 0, linktype, data[:cut])
        if seg is not None:  # only once the whole TCP header is there
            assert seg.sport == 50123 and APDU.startswith(bytes(seg.payload))


def test_garbage_never_raises() -> None:
    import random

    rng = random.Random(5)
    for _ in range(20000):
        data = rng.randbytes(rng.randint(0, 120))
        if data and rng.random() < 0.5:  # make the interesting branches likely
            data = bytes(Ether())[:12] + rng.choice([b"\x08\x00\x45", b"\x86\xdd\x60",
                                                     b"\x81\x00\x00\x01\x08\x00\x46"]) + data
        for linktype in (0, 1, 101, 113, 276, 228, 229):
            decode_tcp(1, 0, linktype, data)


def test_format_ip() -> None:
    assert format_ip(b"\x0a\x00\x00\x01") == "10.0.0.1"
    assert format_ip(bytes(15) + b"\x01") == "::1"
