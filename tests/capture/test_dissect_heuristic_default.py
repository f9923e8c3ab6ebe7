"""Servers on other ports are found by default, and an empty answer is never silent
(issue 10, item 7).

Every entry point (``read``, ``convert``, ``summary``, ``report``, :func:`dissect`,
``analyzer.as_frame``) detects IEC 104 on any port by default, as Zeek's dynamic protocol
detection does; ``--no-heuristic`` (``heuristic=False``) limits decoding to ``--port``. TCP
connections that carried data and were not decoded are named in a stderr note either way.
The heuristic must not invent IEC 104 on the public captures (Java RMI, the noisy loopback
capture): there the result is the same with and without it, as tshark decodes only 2404.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from scapy.utils import wrpcap

from iec104 import analyzer
from iec104.capture.errors import CaptureWarning
from iec104.capture.reassembly import Reassembler
from iec104.codec import Cause, TypeId, UFunction
from iec104.dissector import dissect_table
from tests.support.cli import run
from tests.support.conversation import Conversation, asdu, floating
from tests.support.pcapwriter import build_conversation

SERVER_PORT = 24600
HTTP = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"


def _station() -> Conversation:
    conv = Conversation(client=("10.0.0.1", 50001), server=("10.0.0.2", SERVER_PORT))
    conv.startdt()
    conv.wait(0.1).i("c2s", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION, []))
    for n in range(3):
        conv.wait(0.1).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS,
                                     [floating(100 + n, 1.5 * n)]))
    conv.ack("c2s")
    conv.u("c2s", UFunction.TESTFR_ACT).wait(0.01).u("s2c", UFunction.TESTFR_CON)
    return conv


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """IEC 104 with its server on 24600, and an HTTP connection on 8080."""
    conv = _station()
    iec = build_conversation([(d, data) for _, d, data in conv.messages],
                             client_ip="10.0.0.1", client_port=50001, server_ip="10.0.0.2",
                             server_port=SERVER_PORT, start_time=1_709_280_000.0)
    web = build_conversation([("c2s", HTTP), ("s2c", b"HTTP/1.1 200 OK\r\n\r\n")],
                             client_ip="10.0.0.1", client_port=50002, server_ip="10.0.0.3",
                             server_port=8080, start_time=1_709_280_000.5)
    path = tmp_path_factory.mktemp("heuristic") / "port24600.pcap"
    wrpcap(str(path), sorted(iec + web, key=lambda p: p.time))
    return path


APDUS = len(_station().messages)


def test_library_entry_points_decode_it_by_default(capture: Path) -> None:
    table = dissect_table(capture)
    assert table.column("apdu").drop_null().unique().to_pylist() == list(range(APDUS))
    assert set(table.column("dport").to_pylist()) == {SERVER_PORT, 50001}
    df = analyzer.as_frame(capture)
    assert df["apdu"].nunique() == APDUS
    assert dissect_table(capture, heuristic=False).num_rows == 0
    r = Reassembler()
    dissect_table(capture, reassembler=r)
    assert [c.selected_by for c in r.connections.values()] == ["heuristic"]
    assert dict(r.undecoded) == {8080: 1}
    r = Reassembler(heuristic=False)
    dissect_table(capture, reassembler=r)
    assert dict(r.undecoded) == {8080: 1, SERVER_PORT: 1} and not r.connections


def test_read_with_and_without_the_heuristic(capture: Path) -> None:
    on = run("read", capture)
    assert on.returncode == 0
    assert len(on.stdout.splitlines()) == APDUS
    assert on.stderr == ("iec104: note: 1 TCP connection was not decoded (server port 8080): "
                         "its first bytes do not frame as IEC 104; -d PORT decodes a port "
                         "anyway\n")
    off = run("read", "--no-heuristic", capture)
    assert off.returncode == 0 and off.stdout == ""
    assert off.stderr == ("iec104: note: 2 TCP connections were not decoded (server ports "
                          "8080, 24600): drop --no-heuristic to detect IEC 104 on any port, "
                          "or add -d PORT\n")
    by_port = run("read", "--no-heuristic", "-d", str(SERVER_PORT), capture)
    assert by_port.stdout == on.stdout and "(server port 8080)" in by_port.stderr
    assert run("read", "--heuristic", capture).stdout == on.stdout


def test_convert_summary_and_report_agree(capture: Path, tmp_path: Path) -> None:
    for flag, apdus in (([], APDUS), (["--no-heuristic"], 0)):
        out = tmp_path / "out.parquet"
        proc = run("convert", capture, "-o", out, *flag)
        assert proc.returncode == 0 and "iec104: note: " in proc.stderr
        assert len(set(pq.read_table(out).column("apdu").drop_null().to_pylist())) == apdus
        summary = run("summary", capture, *flag)
        assert summary.returncode == 0 and "iec104: note: " in summary.stderr
        assert re.search(rf"^APDUs +{apdus}$", summary.stdout, re.MULTILINE), summary.stdout
        html = tmp_path / "r.html"
        report = run("report", capture, "-o", html, *flag)
        assert report.returncode == 0 and "iec104: note: " in report.stderr
        assert html.exists()


def test_the_heuristic_finds_nothing_more_on_the_public_captures(public_captures: Path) -> None:
    """tshark decodes only 2404 on these captures; with the heuristic on we decode exactly
    what we decode without it (so the Wireshark agreement tests hold either way), and the
    other connections are reported, not guessed at."""
    undecoded = {}
    for path in sorted(public_captures.iterdir()):
        if path.suffix not in (".pcap", ".pcapng"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CaptureWarning)  # the truncated public captures
            on, off = Reassembler(), Reassembler(heuristic=False)
            table_on = dissect_table(path, reassembler=on)
            table_off = dissect_table(path, reassembler=off)
        assert table_on.equals(table_off), path.name
        assert all(c.selected_by == "port" for c in on.connections.values()), path.name
        assert on.undecoded == off.undecoded, path.name
        if on.undecoded:
            undecoded[path.name] = dict(on.undecoded)
    # the noisy loopback capture: four connections with data on other ports, none IEC 104
    assert undecoded["emre_vinci104-loopback-noisy.pcap"] == {808: 1, 22350: 1, 27000: 1,
                                                              49688: 1}
