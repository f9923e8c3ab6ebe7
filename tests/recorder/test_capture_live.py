"""Live capture on the loopback interface (needs root or CAP_NET_RAW, and dumpcap).

Traffic comes from our own asyncio driver (and, for the transparency check, through our
proxy). The checks: every APDU the peers exchanged is in the Parquet log once with the
right direction, the raw pcapng files are valid captures that tshark (an independent
dissector) reads to the same APDUs, and the two legs of a proxied connection carry
identical byte streams.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import iec104
from iec104.capture.errors import CaptureError
from iec104.capture.reader import NEED_DATA, CaptureParser, CaptureReader
from iec104.codec import TypeId
from iec104.recorder import LiveCapture, Proxy
from tests.conftest import REPO_ROOT, find_unused_tcp_port, in_ci
from tests.support import HOST

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _can_capture() -> None:
    if shutil.which("dumpcap") is None or os.geteuid() != 0:
        message = "live capture needs dumpcap and root"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


Q = iec104.Quality()


def data(i: int) -> iec104.Data:
    return iec104.Data(iec104.FloatingValue(float(i)), Q, None, 1, 1000 + i % 100,
                       iec104.Cause.SPONTANEOUS, False)


def command(i: int) -> iec104.Command:
    return iec104.Command(iec104.Action.EXECUTE, iec104.SingleValue(i % 2), 1, 5000 + i, None, 0)


async def driver_traffic(server_port: int, connect_port: int, n_data: int, n_commands: int,
                         profile: iec104.Profile = iec104.Profile()) -> list[iec104.Data]:
    """Our server on ``server_port``, our client to ``connect_port``: data and commands."""
    accepted: asyncio.Queue[iec104.Connection] = asyncio.Queue()
    server = await iec104.listen(accepted.put_nowait, iec104.Address(HOST, server_port),
                                 command_cb=lambda conn, cmd: True, profile=profile)
    client = await iec104.connect(iec104.Address(HOST, connect_port), profile=profile)
    peer = await asyncio.wait_for(accepted.get(), 5)
    received: list[iec104.Data] = []
    for i in range(n_commands):
        assert await client.send_command(command(i))
    peer.notify_data_change([data(i) for i in range(n_data)])
    while len(received) < n_data:
        received += await asyncio.wait_for(client.receive(), 10)
    await client.async_close()
    await server.async_close()
    return received


def apdus_by_direction(df: pd.DataFrame, stream: int | None = None) -> dict[str, list[bytes]]:
    part = df[df["apci"].notna()]
    if stream is not None:
        part = part[part["stream"] == stream]
    part = part.drop_duplicates("apdu").sort_values("apdu")
    return {d: part[part["direction"] == d]["raw"].tolist() for d in ("c2s", "s2c")}


async def test_live_capture_of_driver_traffic_matches_tshark(tmp_path: Path) -> None:
    port = find_unused_tcp_port()
    out = tmp_path / "log"
    cap = LiveCapture("lo", out, ports=[port], pcapng_dir=out / "_pcapng",
                      flush_seconds=0.2).start()
    try:
        received = await driver_traffic(port, port, n_data=3000, n_commands=100)
        assert len(received) == 3000
        await asyncio.sleep(0.3)
        live = cap.dataframe()  # while capturing
        assert (live["type_id"] == TypeId.M_ME_NC_1).sum() > 0
    finally:
        files = cap.stop()
    assert files and cap.stats["kernel_drops"] == 0
    df = pd.read_parquet(out)  # the _pcapng subdirectory is ignored by pandas/pyarrow
    assert df["error"].isna().all(), df["error"].dropna().unique()
    values = df[df["type_id"] == TypeId.M_ME_NC_1]
    assert sorted(values["value"]) == [float(i) for i in range(3000)]
    assert set(values["direction"]) == {"s2c"} and set(values["cot_name"]) == {"SPONTANEOUS"}
    cmds = df[df["type_id"] == TypeId.C_SC_NA_1]
    assert (cmds[cmds["direction"] == "c2s"]["cot_name"] == "ACTIVATION").sum() == 100
    assert (cmds[cmds["direction"] == "s2c"]["cot_name"] == "ACTIVATION_CONFIRMATION").sum() == 100
    assert df["frame"].notna().all() and df["frame"].min() >= 1
    assert df["stream"].nunique() == 1

    # the raw pcapng beside it, read by tshark
    from tests.support.tshark import ensure_tshark, tshark_apdus

    ensure_tshark()
    (pcapng,) = cap.pcapng_files
    theirs = tshark_apdus(pcapng, port=port)
    ours = apdus_by_direction(df)
    assert sum(1 for a in theirs if a["direction"] == "c2s") == len(ours["c2s"])
    assert sum(1 for a in theirs if a["direction"] == "s2c") == len(ours["s2c"])
    assert [a["frame"] for a in theirs] == sorted(
        df.drop_duplicates("apdu").sort_values("apdu")["frame"].astype(int).tolist())


async def test_proxy_legs_carry_identical_bytes_seen_by_live_capture(tmp_path: Path) -> None:
    server_port = find_unused_tcp_port()
    proxy = Proxy(f"{HOST}:0", (HOST, server_port), tmp_path / "proxy")
    await proxy.start()
    proxy_port = proxy.address[1]
    cap = LiveCapture("lo", tmp_path / "capture", ports=[server_port, proxy_port]).start()
    try:
        received = await driver_traffic(server_port, proxy_port, n_data=2000, n_commands=50)
        assert len(received) == 2000
    finally:
        await proxy.stop()
        cap.stop()
    df = pd.read_parquet(tmp_path / "capture")
    conns = df.drop_duplicates("stream").set_index("stream")
    assert len(conns) == 2
    master_leg = int(conns.index[conns["dport"] == proxy_port][0]) if (
        conns["dport"] == proxy_port).any() else int(conns.index[conns["sport"] == proxy_port][0])
    upstream_leg = next(int(s) for s in conns.index if s != master_leg)
    a = apdus_by_direction(df, master_leg)
    b = apdus_by_direction(df, upstream_leg)
    assert a["c2s"] == b["c2s"] and a["s2c"] == b["s2c"]
    assert len(a["s2c"]) > 100
    # and the proxy's own log agrees with the wire
    logged = apdus_by_direction(pd.read_parquet(tmp_path / "proxy"))
    assert logged == a


# what a row says about the traffic (not where or when it was seen, nor its number)
CONTENT = ["direction", "kind", "apci", "u_func", "ssn", "rsn", "type_id", "type_name", "sq",
           "num_objects", "cot", "cot_name", "negative", "test", "oa", "ca", "obj", "ioa",
           "value", "value_text", "iv", "nt", "sb", "bl", "ov", "ei", "time_tag",
           "time_tag_iv", "select", "qualifier", "raw", "error", "profile",
           "profile_confidence"]


def traffic_rows(df: pd.DataFrame, direction: str) -> pd.DataFrame:
    """The rows of one direction's APDUs, in order (no event rows), content columns only."""
    part = df[(df["direction"] == direction) & (df["kind"] != "event")]
    return part.sort_values(["apdu", "obj"], na_position="first")[CONTENT].reset_index(
        drop=True)


async def test_proxy_and_live_logs_of_a_non_default_profile_equal_convert(
        tmp_path: Path) -> None:
    """Peers with 1-octet COT and CA and 2-octet IOAs talk through the proxy, which is given
    no profile: its log (the logger's fast lane) has, direction by direction, the rows that
    convert gives for a capture of the master's leg, the detected field sizes and their
    confidence included; so has the live capture of that leg."""
    profile = iec104.Profile(cot_size=1, ca_size=1, ioa_size=2)
    server_port = find_unused_tcp_port()
    proxy = Proxy(f"{HOST}:0", (HOST, server_port), tmp_path / "proxy")
    await proxy.start()
    proxy_port = proxy.address[1]
    cap = LiveCapture("lo", tmp_path / "live", ports=[proxy_port],
                      pcapng_dir=tmp_path / "pcapng").start()
    try:
        received = await driver_traffic(server_port, proxy_port, n_data=500, n_commands=20,
                                        profile=profile)
        assert len(received) == 500
    finally:
        await proxy.stop()
        cap.stop()
    (pcapng,) = cap.pcapng_files
    converted = iec104.dissect_table(pcapng, ports=[proxy_port]).to_pandas()
    assert set(converted["profile"].dropna()) == {"1/1/2"}
    assert converted["error"].isna().all(), converted["error"].dropna().unique()
    logged = pd.read_parquet(tmp_path / "proxy")
    live = pd.read_parquet(tmp_path / "live")
    for direction in ("c2s", "s2c"):
        expected = traffic_rows(converted, direction)
        assert len(expected) > (500 if direction == "s2c" else 20)
        pd.testing.assert_frame_equal(traffic_rows(logged, direction), expected)
        pd.testing.assert_frame_equal(traffic_rows(live, direction), expected)


def run_capture_cli(out: Path, *args: str) -> str:
    """``iec104 capture -i lo -o OUT ARGS`` while our driver exchanges 500 data messages and
    10 commands on ``lo``, then SIGTERM; returns its stderr (exit status 0 checked)."""
    port = find_unused_tcp_port()
    proc = subprocess.Popen([sys.executable, "-m", "iec104.cli", "capture", "-i", "lo",
                             "--port", str(port), "-o", str(out), "--flush-seconds", "0.2",
                             *args], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "capturing on lo" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
    try:
        received = asyncio.run(driver_traffic(port, port, n_data=500, n_commands=10))
        assert len(received) == 500
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_capture_cli_with_pcapng_and_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "log"
    err = run_capture_cli(out, "--pcapng")
    m = re.search(r"rows=(\d+) files=(\d+) pcapng=(\d+)", err)
    assert m is not None, err
    df = pd.read_parquet(out)
    assert int(m.group(1)) == len(df)
    assert (df["type_id"] == TypeId.M_ME_NC_1).sum() == 500
    pcapngs = list((out / "_pcapng").glob("*.pcapng"))
    assert len(pcapngs) == int(m.group(3)) == 1
    with CaptureReader(pcapngs[0]) as reader:
        packets = list(reader)
    assert reader.problem is None
    assert len(packets) >= int(df["frame"].max())  # the frames the rows point at are there


def test_capture_on_a_missing_interface_fails_clearly(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "iec104.cli", "capture", "-i", "nosuchif0",
                          "-o", str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 2
    assert res.stderr.startswith("iec104: dumpcap failed")


def test_a_log_directory_that_cannot_be_written_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    for output, problem in ((tmp_path / "missing" / "log",
                             f"{tmp_path / 'missing'}: no such directory"),
                            (tmp_path / "file", f"{tmp_path / 'file'}: is not a directory")):
        res = subprocess.run([sys.executable, "-m", "iec104.cli", "capture", "-i", "lo",
                              "-o", str(output)], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=60, check=False)
        assert (res.returncode, res.stderr) == (2, f"iec104: {problem}\n")


def test_the_capture_parser_parses_a_pipe_byte_by_byte_and_rejects_other_input() -> None:
    """Live capture's parser is the file reader's: fed one byte at a time it yields what a
    file yields, keeps the header blocks for new files, and refuses what is no capture."""
    shb = (b"\x0a\x0d\x0d\x0a" + (28).to_bytes(4, "little") + b"\x4d\x3c\x2b\x1a"
           + b"\x01\x00\x00\x00" + b"\xff" * 8 + (28).to_bytes(4, "little"))
    idb = (b"\x01\x00\x00\x00" + (32).to_bytes(4, "little") + b"\x01\x00\x00\x00"
           + (65535).to_bytes(4, "little") + b"\x09\x00\x01\x00\x09\x00\x00\x00" + b"\x00" * 4
           + (32).to_bytes(4, "little"))  # linktype 1, if_tsresol 9 (ns)
    payload = b"\xaa" * 5
    epb = (b"\x06\x00\x00\x00" + (40).to_bytes(4, "little") + b"\x00" * 4
           + (1).to_bytes(4, "little") + (2).to_bytes(4, "little")
           + (5).to_bytes(4, "little") * 2 + payload + b"\x00" * 3 + (40).to_bytes(4, "little"))
    data = shb + idb + epb + epb
    s = CaptureParser("pipe", keep_blocks=True)
    packets = []
    for b in data:
        s.feed(bytes([b]))
        if s.parse_header():
            for item in s.packets():
                if item is NEED_DATA:
                    break
                packets.append(item)
    assert [(p.frame, p.time_ns, p.linktype, p.data) for p in packets] == [
        (1, (1 << 32) + 2, 1, payload), (2, (1 << 32) + 2, 1, payload)]
    assert bytes(s.header) == shb + idb
    assert s.take_blocks() == [shb, idb, epb, epb] and s.blocks == []
    s.end()
    assert next(s.packets(), None) is None and s.problem is None
    other = CaptureParser("pipe")
    other.feed(b"\x00\x01\x02\x03" + b"\x00" * 20)  # neither pcap nor pcapng
    with pytest.raises(CaptureError, match="not a pcap or pcapng capture"):
        other.parse_header()


def logged_rows(directory: Path, type_id: TypeId) -> int:
    """Rows of ``type_id`` a recorder wrote so far: its Parquet files and journals."""
    import pyarrow.compute as pc

    from iec104.recorder import read_journal

    files = list(directory.glob("date=*/*.parquet"))  # `capture -o` writes a dataset
    columns = [pq.ParquetFile(p).read(columns=["type_id"])["type_id"] for p in files]
    done = {p.stem for p in files}  # a journal converted meanwhile is counted once
    columns += [b.column("type_id") for j in directory.glob(".*.arrows")
                if j.name[1:-len(".arrows")] not in done for b in read_journal(j)[0]]
    return sum(pc.sum(pc.equal(c, int(type_id))).as_py() or 0 for c in columns)


def test_capture_sigkill_leaves_readable_files_and_no_dumpcap(tmp_path: Path) -> None:
    from iec104.recorder import recover

    port = find_unused_tcp_port()
    out = tmp_path / "log"
    proc = subprocess.Popen([sys.executable, "-m", "iec104.cli", "capture", "-i", "lo",
                             "--port", str(port), "-o", str(out), "--flush-seconds", "0.2",
                             "--rotate-size", "64k"],
                            cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    assert "capturing on lo" in proc.stderr.readline()
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True,
                              check=False).stdout.split()
    assert len(children) == 1  # dumpcap
    received = asyncio.run(driver_traffic(port, port, n_data=5000, n_commands=20))
    assert len(received) == 5000
    # kill once every data row reached the log (an event: how long dumpcap's delivery and
    # the first flushes take depends on the load of the machine)
    deadline = time.monotonic() + 60
    while logged_rows(out, TypeId.M_ME_NC_1) < 5000:
        assert time.monotonic() < deadline, "the capture did not log the traffic"
        time.sleep(0.1)
    proc.kill()
    proc.wait(10)
    proc.stderr.close()
    time.sleep(0.5)
    assert not Path(f"/proc/{children[0]}").exists() or "zombie" in Path(
        f"/proc/{children[0]}/status").read_text()  # dumpcap followed its parent
    before = pd.read_parquet(out)  # complete files only: always readable
    recover(out)
    after = pd.read_parquet(out)
    assert len(after) >= len(before)
    # everything that had reached the journal before the kill
    assert (after["type_id"] == TypeId.M_ME_NC_1).sum() == 5000


def test_live_capture_reassembles_ip_fragments(tmp_path: Path) -> None:
    """Fragments on the wire (IPv4 and IPv6, sent with scapy on lo) pass the default capture
    filter, non-first ones included, and their segments are decoded from the last fragment's
    frame, as from a file."""
    from scapy.layers.inet import IP, TCP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
    from scapy.layers.l2 import Ether
    from scapy.sendrecv import sendp

    port = find_unused_tcp_port()
    out = tmp_path / "log"
    apdus = [bytes([0x68, 0x0E, (n << 1) & 0xFF, n >> 7, 0, 0, 100, 1, 6, 0, 1, 0, n, 0, 0, 20])
             for n in range(40)]
    segment = TCP(sport=50000, dport=port, seq=1000, ack=1, flags="PA")
    v4 = fragment(IP(src="127.0.0.1", dst="127.0.0.1", id=0x4242) / segment /
                  b"".join(apdus[:20]), 96)
    v6 = fragment6(IPv6(src="::1", dst="::1") / IPv6ExtHdrFragment(id=0x4243) / segment /
                   b"".join(apdus[20:]), 144)
    assert len(v4) > 2 and len(v6) > 2
    cap = LiveCapture("lo", out, ports=[port], flush_seconds=0.2).start()
    try:
        sendp([Ether() / f for f in v4 + v6], iface="lo", verbose=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cap.stats.get("tcp_segments", 0) < 2:
            time.sleep(0.1)
    finally:
        cap.stop()
    df = pd.read_parquet(out)
    frames = df[df["apci"] == "I"].groupby("stream")["frame"].unique()
    assert sorted(df[df["apci"] == "I"]["ssn"]) == list(range(40))
    # one frame per datagram: the one that completed it (the last fragment of each)
    assert [list(f) for f in frames] == [[len(v4)], [len(v4) + len(v6)]]
