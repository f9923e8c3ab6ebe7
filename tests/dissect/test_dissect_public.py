"""The capture reader and the reassembler on every public capture, with tshark as the oracle.

Public captures come from ``captures/public`` (shipped) and ``../shared/captures/public`` (see
their SOURCES.md): :func:`tests.conftest.public_capture` skips a test whose file is only in an
absent ``../shared``, except in CI where that fails.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from iec104.capture.packet import decode_tcp
from iec104.capture.reader import CaptureReader
from iec104.capture.reassembly import Fallback, Gap, Reassembler, StreamData, stream_events
from tests.conftest import public_capture, public_capture_names
from tests.support.tshark import TSHARK_NO_SEQ_ANALYSIS, ensure_tshark

HEINRIHS = "heinrihs_attack-stages-synthetic-broken-tcpseq.pcap"
BASELINES = "emre_iec104-baselines-seq-gaps.pcap"


def tshark_fields(path: Path, *fields: str, display_filter: str | None = None,
                  opts: tuple[str, ...] = ()) -> list[list[str]]:
    cmd = [ensure_tshark(), "-r", str(path), *opts, "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    if display_filter:
        cmd += ["-Y", display_filter]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def our_bytes(path: Path) -> tuple[Counter, Reassembler, list]:
    r = Reassembler()
    events = list(stream_events(path, reassembler=r))
    got: Counter = Counter()
    for ev in events:
        if isinstance(ev, StreamData):
            c = r.connections[ev.stream]
            src = (c.src, c.sport) if ev.direction == 0 else (c.dst, c.dport)
            got[ev.stream, src] += len(ev.data)
    return got, r, events


def tshark_bytes(path: Path, display_filter: str, opts: tuple[str, ...] = ()) -> Counter:
    want: Counter = Counter()
    for stream, ip4, ip6, sport, length in tshark_fields(
            path, "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "tcp.len",
            display_filter=display_filter, opts=opts):
        if int(length):
            want[int(stream), (ip4 or ip6, int(sport))] += int(length)
    return want


@pytest.mark.parametrize("name", public_capture_names())
def test_frames_and_timestamps_match_tshark(name: str) -> None:
    path = public_capture(name)
    with CaptureReader(path) as reader:
        ours = [(p.frame, p.time_ns) for p in reader]
    assert reader.problem is None
    theirs = []
    for number, epoch in tshark_fields(path, "frame.number", "frame.time_epoch"):
        sec, _, frac = epoch.partition(".")
        theirs.append((int(number), int(sec) * 10**9 + int(frac.ljust(9, "0"))))
    assert ours == theirs


@pytest.mark.parametrize("name", public_capture_names())
def test_streams_and_payload_bytes_match_tshark(name: str) -> None:
    path = public_capture(name)
    got, r, _ = our_bytes(path)
    streams = {int(row[0]) for row in tshark_fields(path, "tcp.stream", display_filter="tcp")}
    assert r.streams == len(streams) == max(streams) + 1
    if name == HEINRIHS:
        # every segment has seq=1: only without sequence analysis does tshark take them all
        want = tshark_bytes(path, "tcp.port==2404", TSHARK_NO_SEQ_ANALYSIS)
    else:
        # tshark counts retransmissions and keep-alives in tcp.len; we deliver them once/never
        want = tshark_bytes(path, "tcp.port==2404 and not tcp.analysis.retransmission "
                                  "and not tcp.analysis.keep_alive")
    assert got == want
    assert set(r.connections) == {s for s, _ in want}


@pytest.mark.parametrize("name", public_capture_names())
def test_reading_is_the_same_through_decode_tcp(name: str) -> None:
    """Sum of all TCP payload bytes (every port) equals tshark's sum of tcp.len."""
    path = public_capture(name)
    total = 0
    with CaptureReader(path) as reader:
        for p in reader:
            seg = decode_tcp(p.frame, p.time_ns, p.linktype, p.data)
            if seg is not None:
                total += len(seg.payload)
    assert total == sum(int(row[0] or 0) for row in tshark_fields(path, "tcp.len",
                                                                   display_filter="tcp"))


def test_heinrihs_broken_sequence_numbers_fall_back() -> None:
    _, r, events = our_bytes(public_capture(HEINRIHS))
    data = [e for e in events if isinstance(e, StreamData)]
    assert len(data) == 3422  # one per frame, none dropped as a "retransmission"
    assert [d.frame for d in data] == list(range(1, 3423))
    (fb,) = [e for e in events if isinstance(e, Fallback)]
    assert fb.frame == 2
    assert r.stats[0][0].fallback_segments == 3421


def test_baselines_gaps_are_the_removed_segments() -> None:
    """5 server segments were cut out of the wiki capture: 436+480+460 and 49+56 bytes."""
    _, r, events = our_bytes(public_capture(BASELINES))
    gaps = [(g.direction, g.frame, g.missing) for g in events if isinstance(g, Gap)]
    assert gaps == [(1, 18, 1376), (1, 40, 105)]
    assert r.stats[0][1].gap_bytes == 1481


def test_loopback_capture_with_windows_style_addresses() -> None:
    """Both ends are 10.0.0.10: directions are told apart by port."""
    _, r, events = our_bytes(public_capture("iti_090813-diverse-hydro-commands.pcap"))
    (conn,) = r.connections.values()
    assert conn.src == conn.dst == "10.0.0.10" and conn.dport == 2404 and conn.sport == 1075
    assert {e.direction for e in events if isinstance(e, StreamData)} == {0, 1}
