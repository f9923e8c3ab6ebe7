"""pcap/pcapng reading: every container variant, damage, and tshark as the oracle.

Files are written by scapy (an independent pcap/pcapng writer) where it can express the
variant, and by the small struct-based block builder below where it cannot (big-endian pcapng,
several sections, power-of-2 resolutions, SPB/PB, unknown blocks). In both cases tshark reads
the same file and must agree on frame count, timestamps and lengths.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import struct
import subprocess
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, PcapWriter

from iec104.capture.errors import CaptureError, CaptureWarning
from iec104.capture.reader import CaptureReader, LinkType, Packet, read_packets
from tests.support.tshark import ensure_tshark

T0 = 1_700_000_000  # seconds


def frames(count: int = 5, payload: bytes = b"\x68\x04\x07\x00\x00\x00") -> list[bytes]:
    """Distinct Ethernet/IPv4/TCP frames (different lengths) as raw bytes."""
    return [
        bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
              / IP(src="10.0.0.1", dst="10.0.0.2")
              / TCP(sport=50000, dport=2404, seq=1000 + i, flags="PA")
              / (payload * (i + 1)))
        for i in range(count)
    ]


def tshark_frames(path: Path) -> list[tuple[int, int | None, int]]:
    """(frame number, time in ns or None, captured length) of every frame, as tshark sees
    them (pcapng custom blocks are frames too; SPBs have no time)."""
    out = subprocess.run(
        [ensure_tshark(), "-r", str(path), "-T", "fields", "-e", "frame.number",
         "-e", "frame.time_epoch", "-e", "frame.cap_len", "-e", "frame.interface_id"],
        capture_output=True, text=True, check=False,
    ).stdout
    rows = []
    for line in out.splitlines():
        number, epoch, caplen, _iface = line.split("\t")
        sec, _, frac = epoch.partition(".")
        ns = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9]) if epoch else None
        rows.append((int(number), ns, int(caplen)))
    return rows


def read_all(path: Path | str) -> tuple[CaptureReader, list[Packet]]:
    with CaptureReader(path) as reader:
        return reader, list(reader)


# -- pcap -------------------------------------------------------------------------------------


@pytest.mark.parametrize("endianness", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_variants_match_scapy_and_tshark(tmp_path: Path, endianness: str, nano: bool) -> None:
    path = tmp_path / "x.pcap"
    raw = frames(6)
    times = [T0 + i * 0.25 + 0.000123456 for i in range(len(raw))]
    writer = PcapWriter(str(path), linktype=1, endianness=endianness, nano=nano, sync=True)
    for data, t in zip(raw, times):
        pkt = Ether(data)
        pkt.time = t
        writer.write(pkt)
    writer.close()
    magic = path.read_bytes()[:4]
    assert magic == (struct.pack(endianness + "I", 0xA1B23C4D if nano else 0xA1B2C3D4))

    reader, pkts = read_all(path)
    assert reader.format == "pcap"
    assert reader.byte_order == endianness
    assert reader.nanosecond is nano
    assert reader.linktype == LinkType.ETHERNET
    assert reader.problem is None
    assert [p.frame for p in pkts] == list(range(1, len(raw) + 1))
    assert [p.data for p in pkts] == raw
    assert all(p.orig_len == len(p.data) and p.linktype == 1 for p in pkts)
    assert tshark_frames(path) == [(p.frame, p.time_ns, len(p.data)) for p in pkts]


def _pcap_header(order: str = "<", magic: int = 0xA1B2C3D4, linktype: int = 1,
                 snaplen: int = 65535) -> bytes:
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def test_modified_pcap_record_header(tmp_path: Path) -> None:
    """The 'modified' libpcap variant (magic a1b2cd34) has 24-byte record headers."""
    raw = frames(3)
    body = b"".join(
        struct.pack("<IIIIIHBB", T0 + i, 500_000, len(d), len(d), 1, 0x0800, 0, 0) + d
        for i, d in enumerate(raw)
    )
    path = tmp_path / "modified.pcap"
    path.write_bytes(_pcap_header(magic=0xA1B2CD34) + body)
    _, pkts = read_all(path)
    assert [p.data for p in pkts] == raw
    assert [p.time_ns for p in pkts] == [(T0 + i) * 10**9 + 500_000_000 for i in range(3)]
    assert tshark_frames(path) == [(p.frame, p.time_ns, len(p.data)) for p in pkts]


def test_pcap_linktype_fcs_bits_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "fcs.pcap"
    d = frames(1)[0]
    path.write_bytes(_pcap_header(linktype=1 | 0x04000000 | (2 << 28))
                     + struct.pack("<IIII", T0, 0, len(d), len(d)) + d)
    reader, pkts = read_all(path)
    assert reader.linktype == 1 and pkts[0].linktype == 1


def test_snaplen_cut_records_keep_orig_len(tmp_path: Path) -> None:
    path = tmp_path / "snap.pcap"
    raw = frames(3)
    path.write_bytes(_pcap_header(snaplen=60) + b"".join(
        struct.pack("<IIII", T0, 0, 60, len(d)) + d[:60] for d in raw))
    _, pkts = read_all(path)
    for p, d in zip(pkts, raw):
        assert p.data == d[:60]
        assert p.orig_len == len(d)


def test_large_pcap_spanning_many_read_chunks(tmp_path: Path) -> None:
    """Records straddle the reader's 1 MiB buffer boundaries; nothing is lost or reordered."""
    rng = random.Random(7)
    path = tmp_path / "big.pcap"
    datas = [rng.randbytes(rng.randint(1, 3000)) for _ in range(2500)]
    with path.open("wb") as f:
        f.write(_pcap_header(order=">", magic=0xA1B23C4D))
        for i, d in enumerate(datas):
            f.write(struct.pack(">IIII", T0 + i, i, len(d), len(d) + 7) + d)
    assert path.stat().st_size > 3 * (1 << 20)
    reader, pkts = read_all(path)
    assert reader.problem is None
    assert [p.data for p in pkts] == datas
    assert [p.orig_len for p in pkts] == [len(d) + 7 for d in datas]
    assert [p.time_ns for p in pkts] == [(T0 + i) * 10**9 + i for i in range(len(datas))]


# -- pcapng -----------------------------------------------------------------------------------


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def _opt(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(order: str) -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    body += _opt(order, 4, b"iec104 tests") + _opt(order, 0, b"")
    return _block(order, 0x0A0D0D0A, body)


def idb(order: str, linktype: int = 1, tsresol: int | None = None, tsoffset: int | None = None,
        snaplen: int = 0) -> bytes:
    body = struct.pack(order + "HHI", linktype, 0, snaplen)
    opts = _opt(order, 2, b"eth0")
    if tsresol is not None:
        opts += _opt(order, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += _opt(order, 14, struct.pack(order + "q", tsoffset))
    if opts:
        body += opts + _opt(order, 0, b"")
    return _block(order, 1, body)


def epb(order: str, iface: int, ts: int, data: bytes, orig: int | None = None) -> bytes:
    body = struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data),
                       len(data) if orig is None else orig) + data
    body += b"\x00" * (-len(body) % 4) + _opt(order, 1, b"a comment") + _opt(order, 0, b"")
    return _block(order, 6, body)


def spb(order: str, data: bytes) -> bytes:
    return _block(order, 3, struct.pack(order + "I", len(data)) + data)


def pb(order: str, iface: int, ts: int, data: bytes) -> bytes:
    return _block(order, 2, struct.pack(order + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF,
                                        len(data), len(data)) + data)


def other_blocks(order: str) -> bytes:
    nrb = _block(order, 4, struct.pack(order + "HH", 1, 12) + bytes([10, 0, 0, 1]) + b"host\0\0\0\0"
                 + struct.pack(order + "HH", 0, 0))
    isb = _block(order, 5, struct.pack(order + "III", 0, 0, 0))
    custom = _block(order, 0x00000BAD, struct.pack(order + "I", 32473) + b"custom")
    unknown = _block(order, 0x12345678, b"whatever")
    return nrb + isb + custom + unknown


def test_pcapng_written_by_scapy(tmp_path: Path) -> None:
    path = tmp_path / "scapy.pcapng"
    raw = frames(4)
    writer = PcapNgWriter(str(path))
    for i, d in enumerate(raw):
        pkt = Ether(d)
        pkt.time = T0 + i * 1.5
        writer.write(pkt)
    writer.close()
    reader, pkts = read_all(path)
    assert reader.format == "pcapng"
    assert [p.data for p in pkts] == raw
    assert tshark_frames(path) == [(p.frame, p.time_ns, len(p.data)) for p in pkts]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_block_types(tmp_path: Path, order: str) -> None:
    raw = frames(8)
    ts_us = T0 * 10**6 + 123_456  # default resolution: microseconds
    ts_ns = T0 * 10**9 + 987_654_321
    ts_2 = (T0 << 30) + (1 << 29)  # 2**-30 s units: T0.5 s
    ts_ms = T0 * 1000 + 250
    blob = (
        shb(order)
        + idb(order)  # 0: default microseconds
        + idb(order, tsresol=9)  # 1: nanoseconds
        + other_blocks(order)
        + idb(order, tsresol=0x80 | 30)  # 2: power of two
        + idb(order, tsresol=3, tsoffset=3600)  # 3: milliseconds, +1 h offset
        + epb(order, 0, ts_us, raw[0])
        + epb(order, 1, ts_ns, raw[1])
        + epb(order, 2, ts_2, raw[2])
        + epb(order, 3, ts_ms, raw[3])
        + pb(order, 1, ts_ns + 5, raw[4])
        + epb(order, 0, ts_us + 1, raw[5][:40], orig=len(raw[5]))
    )
    path = tmp_path / "multi.pcapng"
    path.write_bytes(blob)
    reader, pkts = read_all(path)
    assert reader.problem is None
    assert reader.byte_order == order
    # the custom block is a record, so a frame, to Wireshark: packets start at frame 2
    assert reader.other_records == 1
    assert [p.frame for p in pkts] == [2, 3, 4, 5, 6, 7]
    assert [p.interface for p in pkts] == [0, 1, 2, 3, 1, 0]
    assert [p.data for p in pkts] == raw[:5] + [raw[5][:40]]
    assert pkts[5].orig_len == len(raw[5])
    assert [p.time_ns for p in pkts] == [
        ts_us * 1000,
        ts_ns,
        T0 * 10**9 + 500_000_000,
        (T0 + 3600) * 10**9 + 250_000_000,
        ts_ns + 5,
        (ts_us + 1) * 1000,
    ]
    theirs = tshark_frames(path)
    assert theirs[0] == (1, None, 8)  # the custom block: PEN + "custom" padded
    assert theirs[1:] == [(p.frame, p.time_ns, len(p.data)) for p in pkts]


def test_pcapng_sections_with_different_byte_orders(tmp_path: Path) -> None:
    raw = frames(4)
    blob = (shb("<") + idb("<", tsresol=9) + epb("<", 0, T0 * 10**9, raw[0])
            + shb(">") + idb(">", linktype=101) + idb(">") + epb(">", 1, T0 * 10**6 + 1, raw[1])
            + epb(">", 0, T0 * 10**6 + 2, raw[2][14:])
            + shb("<") + idb("<") + spb("<", raw[3]))
    path = tmp_path / "sections.pcapng"
    path.write_bytes(blob)
    reader, pkts = read_all(path)
    assert reader.problem is None
    assert [(p.frame, p.linktype, p.interface) for p in pkts] == [
        (1, 1, 0), (2, 1, 1), (3, 101, 0), (4, 1, 0)]
    assert [p.data for p in pkts] == [raw[0], raw[1], raw[2][14:], raw[3]]
    # a Simple Packet Block has no timestamp: 0, as tshark shows it
    assert [p.time_ns for p in pkts] == [T0 * 10**9, T0 * 10**9 + 1000, T0 * 10**9 + 2000, 0]
    assert tshark_frames(path) == [(p.frame, p.time_ns or None, len(p.data)) for p in pkts]


def test_spb_is_cut_to_the_interface_snaplen(tmp_path: Path) -> None:
    d = frames(1)[0]
    path = tmp_path / "spb.pcapng"
    path.write_bytes(shb("<") + idb("<", snaplen=50) + spb("<", d))
    _, pkts = read_all(path)
    assert pkts[0].data == d[:50] and pkts[0].orig_len == len(d)


def test_pcapng_packet_on_missing_interface_stops_with_warning(tmp_path: Path) -> None:
    raw = frames(2)
    path = tmp_path / "badif.pcapng"
    path.write_bytes(shb("<") + idb("<") + epb("<", 0, 1, raw[0]) + epb("<", 5, 2, raw[1]))
    with pytest.warns(CaptureWarning, match="interface 5"):
        reader, pkts = read_all(path)
    assert len(pkts) == 1 and "interface 5" in (reader.problem or "")


# -- damage -----------------------------------------------------------------------------------


def _pcap_bytes(count: int = 5) -> bytes:
    raw = frames(count)
    return _pcap_header() + b"".join(
        struct.pack("<IIII", T0 + i, 0, len(d), len(d)) + d for i, d in enumerate(raw))


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_truncated_last_record_yields_whole_records_then_warns(tmp_path: Path, kind: str) -> None:
    raw = frames(5)
    if kind == "pcap":
        blob = _pcap_bytes(5)
        last_start = len(blob) - 16 - len(raw[-1])
    else:
        head = shb("<") + idb("<") + b"".join(epb("<", 0, i, d) for i, d in enumerate(raw[:4]))
        blob = head + epb("<", 0, 9, raw[4])
        last_start = len(head)
    tshark_count_checked = False
    for cut in range(last_start + 1, len(blob)):
        path = tmp_path / f"cut.{kind}"
        path.write_bytes(blob[:cut])
        with pytest.warns(CaptureWarning, match="truncated") as record:
            reader, pkts = read_all(path)
        assert [p.data for p in pkts] == raw[:4]
        assert reader.problem is not None and "truncated" in reader.problem
        assert str(path) in str(record[0].message)
        if not tshark_count_checked:  # tshark also shows the 4 whole frames
            assert len(tshark_frames(path)) == 4
            tshark_count_checked = True
    # cut exactly at a record boundary: a clean end, no warning
    path = tmp_path / f"clean.{kind}"
    path.write_bytes(blob[:last_start])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader, pkts = read_all(path)
    assert len(pkts) == 4 and reader.problem is None


def test_warning_can_be_turned_into_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(_pcap_bytes(3)[:-5])
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureWarning)
        with pytest.raises(CaptureWarning):
            seen.extend(read_packets(path))
    assert len(seen) == 2


def test_corrupt_record_length_stops_with_warning(tmp_path: Path) -> None:
    blob = bytearray(_pcap_bytes(3))
    d0 = len(frames(1)[0])
    struct.pack_into("<I", blob, 24 + 16 + d0 + 8, 0x7FFFFFFF)  # caplen of record 2
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(blob))
    with pytest.warns(CaptureWarning, match="corrupt"):
        _, pkts = read_all(path)
    assert len(pkts) == 1


def test_bad_pcapng_block_length_stops_with_warning(tmp_path: Path) -> None:
    raw = frames(2)
    bad = bytearray(epb("<", 0, 2, raw[1]))
    struct.pack_into("<I", bad, 4, 13)  # not a multiple of 4
    path = tmp_path / "bad.pcapng"
    path.write_bytes(shb("<") + idb("<") + epb("<", 0, 1, raw[0]) + bytes(bad))
    with pytest.warns(CaptureWarning, match="invalid length 13"):
        _, pkts = read_all(path)
    assert len(pkts) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"<!DOCTYPE html><html>not a capture</html>\n", "not a pcap or pcapng capture"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
        (b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 1, 0, 0, 0, 65535, 1),
         "unsupported pcap version"),
        (b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"\x00\x00\x00\x00" + bytes(16),
         "bad byte-order magic"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00", "truncated pcapng Section Header Block"),
        (b"\x1f\x8b" + b"not really gzip" * 3, "gzip"),
    ],
)
def test_not_a_capture_raises_capture_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as info:
        CaptureReader(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert reason in info.value.reason
    assert info.value.source == str(path)


def test_read_packets_raises_capture_error_at_first_next(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"MZ\x90\x00" * 20)
    it = read_packets(path)
    with pytest.raises(CaptureError, match="x.bin: not a pcap"):
        next(it)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CaptureReader(tmp_path / "nope.pcap")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from([b"", _pcap_header(), _pcap_header(">", 0xA1B23C4D),
                            shb("<"), shb(">"), shb("<") + idb("<")]),
    body=st.binary(max_size=400),
)
def test_random_bytes_never_raise_anything_but_capture_error(prefix: bytes, body: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        try:
            reader = CaptureReader(io.BytesIO(prefix + body), name="fuzz")
        except CaptureError:
            return
        for pkt in reader:
            assert pkt.frame >= 1 and isinstance(pkt.data, bytes)


def test_random_files_are_rejected_with_capture_error(tmp_path: Path) -> None:
    rng = random.Random(104)
    for i in range(50):
        blob = rng.randbytes(rng.randint(0, 2000))
        if blob[:4] in (b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a") or blob[:2] == b"\x1f\x8b":
            continue
        path = tmp_path / f"random{i}.bin"
        path.write_bytes(blob)
        with pytest.raises(CaptureError):
            CaptureReader(path)


# -- inputs -----------------------------------------------------------------------------------


def test_gzip_compressed_capture(tmp_path: Path) -> None:
    blob = _pcap_bytes(4)
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(gzip.compress(blob))
    reader, pkts = read_all(path)
    assert reader.format == "pcap" and [p.data for p in pkts] == frames(4)
    assert len(tshark_frames(path)) == 4


def test_damaged_gzip_data(tmp_path: Path) -> None:
    """Damaged deflate data raises zlib.error (not an OSError): in the header it is a
    CaptureError, part-way through a warning after every record decompressed before it
    (read in 64 KiB pieces, so a 1 MiB chunk is not lost with it)."""
    head = tmp_path / "head.pcap.gz"
    head.write_bytes(b"\x1f\x8b\x08\x00" + bytes(6) + b"\x07" * 20)
    with pytest.raises(CaptureError, match="gzip-compressed but unreadable"):
        CaptureReader(head)
    one = frames(1)[0]
    count = 40_000
    blob = _pcap_bytes(0) + b"".join(struct.pack("<IIII", T0 + i, 0, len(one), len(one)) + one
                                     for i in range(count))
    packed = bytearray(gzip.compress(blob))
    packed[len(packed) * 9 // 10] ^= 0xFF
    path = tmp_path / "damaged.pcap.gz"
    path.write_bytes(bytes(packed))
    with pytest.warns(CaptureWarning, match="read error"):
        reader, pkts = read_all(path)
    assert reader.problem is not None and reader.problem.startswith("read error: ")
    per_piece = (1 << 16) // (16 + len(one)) + 1
    assert count * 0.8 < len(pkts) < count
    # (deflate may turn the octets just before the damage into garbage before it notices)
    assert all(p.data == one for p in pkts[:count * 8 // 10])
    lost_before_damage = count * 9 // 10 * 0.98 - len(pkts)  # deflate ratio is near uniform
    assert lost_before_damage < per_piece


class NonSeekable(io.RawIOBase):
    """A pipe-like stream: reads come in small pieces and it cannot seek."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), 7, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("compress", [False, True])
def test_non_seekable_stream_with_short_reads(compress: bool) -> None:
    blob = _pcap_bytes(4)
    if compress:
        blob = gzip.compress(blob)
    stream = NonSeekable(blob)
    reader = CaptureReader(stream)  # type: ignore[arg-type]
    assert reader.name.startswith("<")
    assert [p.data for p in reader] == frames(4)
    reader.close()
    assert not stream.closed  # a stream the caller opened stays open


def test_file_object_and_name(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(_pcap_bytes(2))
    with path.open("rb") as f:
        reader = CaptureReader(f)
        assert reader.name == str(path)
        assert len(list(reader)) == 2
        with pytest.raises(RuntimeError):
            iter(reader)
    with pytest.raises(CaptureError, match="^in-memory: "):
        CaptureReader(io.BytesIO(b"nope"), name="in-memory")


def test_reader_closes_the_file_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(_pcap_bytes(2))
    with CaptureReader(path) as reader:
        f = reader._file
        next(iter(reader))
    assert f.closed
    # also when the header is rejected
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"0123456789")
    before = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    for _ in range(5):
        with pytest.raises(CaptureError):
            CaptureReader(bad)
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) == before


def test_custom_and_journal_blocks_take_frame_numbers_like_wireshark(tmp_path: Path) -> None:
    raw = frames(2)
    path = tmp_path / "records.pcapng"
    path.write_bytes(
        shb("<") + idb("<")
        + _block("<", 9, b"__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE=hello\n")
        + epb("<", 0, 5, raw[0])
        + _block("<", 0x40000BAD, struct.pack("<I", 32473) + b"abcd")
        + epb("<", 0, 6, raw[1])
    )
    reader, pkts = read_all(path)
    assert [p.frame for p in pkts] == [2, 4]
    assert reader.other_records == 2 and reader.frames == 4
    assert [row[0] for row in tshark_frames(path)] == [1, 2, 3, 4]
