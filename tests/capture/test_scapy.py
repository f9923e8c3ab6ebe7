"""The scapy extra (iec104/scapy.py): our dissector reads scapy packets, the IEC104 layer cuts,
decodes and builds APDUs with our codec, and real packets sniffed and sent over lo work.

The loopback tests need root (CI runs as root): they sniff lo with scapy while our driver
talks over 127.0.0.1, and send a crafted packet with scapy's ``send()``. ``iec104 capture``
is run with dumpcap out of reach (``IEC104_DUMPCAP`` naming no file) to use scapy's sniffer.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.plist import PacketList
from scapy.sendrecv import AsyncSniffer, send
from scapy.utils import EDecimal, rdpcap

import iec104
from iec104.codec import (
    ASDU,
    Cause,
    FloatingValue,
    Framer,
    IFrame,
    InformationObject,
    Quality,
    TypeId,
    UFrame,
    UFunction,
    decode_apdu,
    decode_asdu,
    encode_apdu,
    encode_asdu,
)
from iec104.capture.errors import CaptureWarning
from iec104.capture.objects import time_ns_of
from iec104.scapy import IEC104, bind_port, packet_record
from tests.conftest import REPO_ROOT, find_unused_tcp_port, in_ci, public_capture
from tests.support.cli import COMMANDS, STATION, env

pytestmark = pytest.mark.timeout(120)
HOST = "127.0.0.1"
GOOD = Quality(False, False, False, False, False)


def table(source: object, **kwargs: object) -> pa.Table:
    return pa.Table.from_batches(list(iec104.dissect(source, **kwargs)))


def asdu(i: int) -> ASDU:
    return ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 7,
                (InformationObject(100 + i, FloatingValue(i / 4), GOOD),))


# -- dissect() of packets held in memory ---------------------------------------------------

@pytest.mark.parametrize("path", [STATION, COMMANDS, "snort3_iec104-paf-pipelined-split.pcap",
                                  "wireshark-wiki_iec104-sq.pcapng"])
def test_dissect_reads_a_packet_list_as_it_reads_the_file(path: Path | str) -> None:
    path = public_capture(path) if isinstance(path, str) else path
    from_file = table(path)
    packets = rdpcap(str(path))
    assert isinstance(packets, PacketList)
    assert table(packets).equals(from_file)
    # (timestamp, frame) pairs, with scapy's EDecimal timestamps
    assert table([(p.time, bytes(p)) for p in packets]).equals(from_file)
    assert table(list(packets)).equals(from_file)
    assert from_file.num_rows > 3


def test_pairs_take_a_link_type_and_timestamps_keep_their_decimals() -> None:
    packets = rdpcap(str(STATION))
    raw_ip = [(p.time, bytes(p[IP])) for p in packets]  # no Ethernet header
    assert table(raw_ip, linktype=228).drop(["time"]).equals(table(STATION).drop(["time"]))
    floats = table([(float(p.time), bytes(p)) for p in packets])
    assert floats.equals(table(STATION))  # microsecond floats: read as their decimal text
    assert time_ns_of(1_700_000_000.123456) == 1_700_000_000_123_456_000
    assert time_ns_of(EDecimal("1.000000001")) == 1_000_000_001
    assert time_ns_of(float("nan")) is None and time_ns_of(1e300) is None
    aware = table([(datetime.fromtimestamp(float(p.time), UTC), bytes(p)) for p in packets])
    assert aware.column("time").to_pylist() == floats.column("time").to_pylist()
    with pytest.warns(CaptureWarning, match="naive datetime"):
        table([(datetime(2024, 1, 1), bytes(packets[0]))])


def test_something_that_is_no_packet_is_skipped_with_a_warning() -> None:
    packets = list(rdpcap(str(STATION)))
    mixed = [*packets[:5], "not a packet", (1.0, 42), *packets[5:]]
    with pytest.warns(CaptureWarning) as caught:
        got = table(mixed)
    assert [str(w.message) for w in caught] == [
        "packet 6: not a packet (of type str); skipped",
        "packet 7: not a packet (a pair whose frame is of type int, not bytes); skipped"]
    want = table(packets)
    # the frame numbers count the two bad items, as a capture counts its records
    frames = got.column("frame").to_pylist()
    assert [f - 2 if f and f > 7 else f for f in frames] == want.column("frame").to_pylist()
    assert got.drop(["frame"]).equals(want.drop(["frame"]))


def test_packet_record_of_a_layer_without_link_type_is_refused() -> None:
    with pytest.raises(TypeError, match="no link-layer type"):
        packet_record(TCP())
    assert packet_record(Ether() / IP() / TCP())[1] == 1


# -- the IEC104 layer ----------------------------------------------------------------------

@pytest.mark.parametrize("path", [STATION, "snort3_iec104-paf-pipelined-split.pcap",
                                  "iti_test-dissect-iec104-malformed.pcap"])
def test_the_layer_cuts_apdus_as_our_framer_does(path: Path | str) -> None:
    path = public_capture(path) if isinstance(path, str) else path
    packets = rdpcap(str(path))
    layers = 0
    for pkt in packets:
        if IEC104 not in pkt:
            continue
        ip, tcp = pkt[IP], pkt[TCP]
        payload = bytes(tcp.payload)[:ip.len - 4 * ip.ihl - 4 * tcp.dataofs]  # no padding
        cut = []
        layer = pkt[IEC104]
        while isinstance(layer, IEC104):
            cut.append(bytes(layer.apdu))
            layer = layer.payload
        assert b"".join(cut) == payload
        framer = Framer()
        framer.feed(payload)
        whole = [e.raw for e in framer]
        assert cut[:len(whole)] == whole  # a tail split over segments is its own layer
        layers += len(cut)
    assert layers > 3


def test_decoded_view_and_building_use_the_codec() -> None:
    a = asdu(3)
    built = IEC104.from_asdu(a, ssn=5, rsn=9)
    assert bytes(built) == encode_apdu(IFrame(5, 9, encode_asdu(a)))
    assert built.frame == IFrame(5, 9, encode_asdu(a)) and built.asdu == a
    assert built.error is None
    assert "I ssn=5 rsn=9 M_ME_NC_1 SPONTANEOUS CA=7 IOA=103" in built.summary()
    start = IEC104(apdu=UFrame(UFunction.STARTDT_ACT))
    assert bytes(start) == bytes.fromhex("680407000000") and "STARTDT_ACT" in start.summary()
    again = IEC104(bytes(built) + bytes(start))  # two APDUs, one segment
    assert again.asdu == a and again.payload.frame == UFrame(UFunction.STARTDT_ACT)
    bad = IEC104(bytes.fromhex("68040300ff00"))
    assert bad.frame is None and bad.error and "malformed" in bad.summary()
    packet = Ether(bytes(Ether() / IP() / TCP(sport=40000, dport=2404) / built))
    assert packet[IEC104].asdu == a


# -- real packets over lo --------------------------------------------------------------------

@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail("sniffing lo needs root -- required in CI", pytrace=False)
        pytest.skip("sniffing lo needs root")


async def conversation(port: int, n: int) -> None:
    """Our driver on 127.0.0.1:port: the server sends ``n`` spontaneous floats."""
    accepted: asyncio.Queue[iec104.Connection] = asyncio.Queue()
    server = await iec104.listen(accepted.put_nowait, iec104.Address(HOST, port))
    client = await iec104.connect(iec104.Address(HOST, port))
    peer = await asyncio.wait_for(accepted.get(), 5)
    peer.notify_data_change([iec104.Data(iec104.FloatingValue(float(i)), iec104.Quality(),
                                         None, 1, 1000 + i, iec104.Cause.SPONTANEOUS, False)
                             for i in range(n)])
    got = 0
    while got < n:
        got += len(await asyncio.wait_for(client.receive(), 10))
    await client.async_close()
    await server.async_close()


def sniffer(port: int, **kwargs: object) -> AsyncSniffer:
    started = threading.Event()
    sniff = AsyncSniffer(iface="lo", filter=f"tcp port {port}", started_callback=started.set,
                         **kwargs)
    sniff.start()
    assert started.wait(10), "scapy's sniffer did not start"
    return sniff


def test_sniff_prn_on_lo_and_dissect_what_was_sniffed(root: None) -> None:
    port = find_unused_tcp_port()
    bind_port(port)
    seen: list[str] = []
    sniff = sniffer(port, prn=lambda p: seen.append(p.summary()) if IEC104 in p else None)
    try:
        asyncio.run(conversation(port, 200))
        time.sleep(0.3)
    finally:
        packets = sniff.stop()
    assert any("U STARTDT_ACT" in s for s in seen) and any("M_ME_NC_1" in s for s in seen)
    df = table(packets, ports=[port]).to_pandas()
    values = df[df["type_id"] == TypeId.M_ME_NC_1]
    assert sorted(values["value"]) == [float(i) for i in range(200)]
    assert df["error"].isna().all(), df["error"].dropna().unique()
    # the layer's view of every sniffed APDU is the codec's
    for pkt in packets:
        layer = pkt.getlayer(IEC104)
        while isinstance(layer, IEC104):
            assert layer.frame == decode_apdu(bytes(layer.apdu))
            layer = layer.payload


def test_send_a_crafted_apdu_and_sniff_it_back(root: None) -> None:
    port = find_unused_tcp_port()
    bind_port(port)
    sniff = sniffer(port, count=1)
    a = asdu(7)
    send(IP(dst=HOST) / TCP(sport=40404, dport=port, flags="PA", seq=1000) /
         IEC104.from_asdu(a, ssn=1, rsn=2), iface="lo", verbose=False)
    sniff.join(10)
    (pkt,) = sniff.results
    assert pkt[IEC104].asdu == a and pkt[IEC104].frame.ssn == 1
    assert decode_asdu(pkt[IEC104].frame.asdu) == a


def test_capture_falls_back_to_scapy_without_dumpcap(root: None, tmp_path: Path) -> None:
    port = find_unused_tcp_port()
    out = tmp_path / "log"
    e = {**env(), "IEC104_DUMPCAP": str(tmp_path / "no-dumpcap")}
    proc = subprocess.Popen([sys.executable, "-m", "iec104.cli", "capture", "-i", "lo",
                             "--port", str(port), "-o", str(out), "--flush-seconds", "0.2"],
                            cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True, env=e)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "dumpcap not found; capturing with scapy's sniffer" in first, first
    line = proc.stderr.readline()
    assert "capturing on lo" in line, line + (proc.stderr.read() if proc.poll() else "")
    try:
        asyncio.run(conversation(port, 300))
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    m = re.search(r"rows=(\d+) files=(\d+)", err)
    assert m is not None, err
    df = pd.read_parquet(out)
    assert int(m.group(1)) == len(df)
    values = df[df["type_id"] == TypeId.M_ME_NC_1]
    assert sorted(values["value"]) == [float(i) for i in range(300)]
    assert set(values["direction"]) == {"s2c"}
    # --pcapng needs dumpcap: refused before anything starts
    res = subprocess.run([sys.executable, "-m", "iec104.cli", "capture", "-i", "lo", "-o",
                          str(tmp_path / "x"), "--pcapng"], cwd=REPO_ROOT, env=e,
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and "--pcapng/--pcapng-dir need it" in res.stderr
