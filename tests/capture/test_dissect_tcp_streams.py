"""TCP stream numbering against tshark's ``tcp.stream``: connections the capture joined late (no
SYN) and one 4-tuple carrying several connections (a new SYN after FIN/RST, or an ISN jump
without any close: a device that restarted and reconnected from the same port).

Each pcap is built with scapy (tests.capture.test_dissect_reassembly.Conv) and dissected by both tools;
for every frame that carries TCP data the stream number must be the same, and so must the
APDUs found in it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from scapy.packet import Packet as ScapyPacket

from iec104.capture.reassembly import Reassembler, StreamData, stream_events
from iec104.dissector import dissect_table
from tests.capture.test_dissect_reassembly import STARTDT_ACT, STARTDT_CON, Conv, i_frame, write
from tests.dissect.test_wireshark_agreement import compare_capture
from tests.support.tshark import ensure_tshark, tshark_apdus


def tshark_streams(path: Path) -> tuple[dict[int, int], set[int]]:
    """frame -> tcp.stream for every TCP frame, and the frames with TCP data."""
    out = subprocess.run([ensure_tshark(), "-n", "-r", str(path), "-T", "fields", "-e",
                          "frame.number", "-e", "tcp.stream", "-e", "tcp.len", "-Y", "tcp"],
                         capture_output=True, text=True, check=True).stdout
    rows = [tuple(map(int, line.split("\t"))) for line in out.splitlines()]
    return {f: s for f, s, _ in rows}, {f for f, _, n in rows if n}


def check(path: Path, streams: int, retransmitted: frozenset[int] = frozenset()) -> Reassembler:
    """Our stream numbers and APDUs are tshark's; ``streams`` connections were seen; the data
    of the frames ``retransmitted`` is delivered by neither tool (old sequence space)."""
    r = Reassembler()
    ours = {e.frame: e.stream for e in stream_events(path, reassembler=r) if isinstance(e, StreamData)}
    theirs, with_data = tshark_streams(path)
    assert set(ours) == with_data - retransmitted
    assert ours == {f: theirs[f] for f in ours}
    assert r.streams == streams == max(theirs.values()) + 1
    rows = dissect_table(path).to_pylist()
    mine = sorted({(row["apdu"], row["frame"], row["stream"], row["apci"], row["ssn"])
                   for row in rows if row["apdu"] is not None})
    their_apdus = [(a["frame"], theirs[a["frame"]], a["apci"], a["ssn"])
                   for a in tshark_apdus(path)]
    assert [m[1:] for m in mine] == their_apdus
    assert not [row["error"] for row in rows if row["error"]]
    agreement = compare_capture(path)  # what the user sees, field by field
    assert not agreement.problems, agreement.problems
    assert agreement.apdus_compared == len(their_apdus)
    return r


def late(conv: Conv, first: int = 0) -> list[ScapyPacket]:
    """Traffic of a connection already open when the capture started (no handshake)."""
    return [conv.seg(first, i_frame(1)), conv.seg(1 - first, i_frame(2)), conv.ack(first)]


def test_streams_joined_late_are_numbered_as_tshark(tmp_path: Path) -> None:
    cap: list[ScapyPacket] = []
    a = Conv(client=("10.0.0.1", 50000), capture=cap)
    b = Conv(client=("10.0.0.3", 50001), cisn=0xFFFFFF00, sisn=7, capture=cap)
    a.emit(late(a))
    b.emit(late(b, first=1))  # the outstation speaks first
    a.emit(a.seg(0, i_frame(3)))
    b.emit(b.seg(1, i_frame(4)), b.close())
    r = check(write(tmp_path / "late.pcap", cap), 2)
    assert not r.connections[0].syn_seen and not r.connections[1].syn_seen
    # without a SYN the client is the side that is not on port 2404
    assert (r.connections[1].src, r.connections[1].dport) == ("10.0.0.3", 2404)


@pytest.mark.parametrize("close", ["FIN", "RST", "none"])
def test_reconnection_on_the_same_ports_is_a_new_stream(tmp_path: Path, close: str) -> None:
    """After FIN, RST, or nothing at all (ISN jump), a new SYN on the same 4-tuple."""
    cap: list[ScapyPacket] = []
    old = Conv(capture=cap)
    old.emit(old.handshake(), old.seg(0, STARTDT_ACT), old.seg(1, STARTDT_CON),
             old.seg(1, i_frame(0)))
    if close == "FIN":
        old.emit(old.close())
    elif close == "RST":
        old.emit(old._pkt(0, "R", old.next[0]))
    new = Conv(cisn=old.next[0] + 1_000_000, sisn=123, capture=cap)
    new.emit(new.handshake(), new.seg(0, STARTDT_ACT), new.seg(1, STARTDT_CON),
             new.seg(1, i_frame(0)), new.seg(0, i_frame(0)))
    r = check(write(tmp_path / f"reconnect-{close}.pcap", cap), 2)
    assert r.connections[1].syn_seen


def test_stream_joined_late_then_reconnected_without_close(tmp_path: Path) -> None:
    """The capture joins a running connection; the device restarts and reconnects from the
    same port (new SYN, ISN jump, no FIN or RST seen)."""
    cap: list[ScapyPacket] = []
    old = Conv(capture=cap)
    old.emit(late(old))
    new = Conv(cisn=old.next[0] - 5_000_000, sisn=old.next[1] + 77, capture=cap)
    new.emit(new.handshake(), new.seg(0, STARTDT_ACT), new.seg(1, STARTDT_CON),
             new.seg(1, i_frame(0)))
    check(write(tmp_path / "late-reconnect.pcap", cap), 2)


def test_retransmitted_syn_stays_in_its_stream(tmp_path: Path) -> None:
    cap: list[ScapyPacket] = []
    c = Conv(capture=cap)
    syn, synack, ack = c.handshake()
    c.emit(syn, syn.copy(), synack, synack.copy(), ack, c.seg(0, STARTDT_ACT),
           c.seg(1, STARTDT_CON), c.seg(1, i_frame(0)))
    check(write(tmp_path / "syn-again.pcap", cap), 1)


def test_many_reconnections_interleaved_with_other_connections(tmp_path: Path) -> None:
    cap: list[ScapyPacket] = []
    other = Conv(client=("10.0.0.9", 40000), capture=cap)
    other.emit(late(other))
    isn = 1000
    for n in range(4):
        c = Conv(cisn=isn, sisn=isn * 3, capture=cap)
        c.emit(c.handshake(), c.seg(0, STARTDT_ACT), c.seg(1, i_frame(n)))
        other.emit(other.seg(1, i_frame(10 + n)))
        if n % 2:
            c.emit(c.close())
        isn += 10_000_000
    check(write(tmp_path / "many.pcap", cap), 5)


@pytest.mark.parametrize("close", ["FIN", "RST"])
def test_a_syn_repeating_the_old_isn_is_no_new_stream(tmp_path: Path, close: str) -> None:
    """Wireshark keys reuse on the ISN alone: the same ISN after a close is a retransmission,
    and so is the data that follows (neither tool decodes it again)."""
    cap: list[ScapyPacket] = []
    old = Conv(capture=cap)
    old.emit(old.handshake(), old.seg(0, STARTDT_ACT), old.seg(1, STARTDT_CON))
    old.emit(old.close() if close == "FIN" else old._pkt(0, "R", old.next[0]))
    new = Conv(capture=cap)
    new.emit(new.handshake(), new.seg(0, STARTDT_ACT), new.seg(1, STARTDT_CON))
    check(write(tmp_path / "same-isn.pcap", cap), 1,
          retransmitted=frozenset((len(cap) - 1, len(cap))))


@pytest.mark.parametrize(("delta", "streams"), [(-1, 1), (0, 2), (1, 2)])
def test_syn_after_a_late_join_compares_with_the_first_seq_minus_one(
        tmp_path: Path, delta: int, streams: int) -> None:
    """Joined late, Wireshark takes the first seq - 1 for the ISN: a SYN with that seq is a
    retransmission of the (unseen) opening, any other seq a new connection."""
    cap: list[ScapyPacket] = []
    old = Conv(capture=cap)
    first = old.next[0]
    old.emit(old.seg(0, i_frame(1)), old.seg(1, i_frame(2)))
    new = Conv(cisn=first + delta, sisn=99, capture=cap)
    new.emit(new.handshake(), new.seg(0, i_frame(1)))  # with delta -1, a retransmission
    check(write(tmp_path / "late-syn.pcap", cap), streams,
          retransmitted=frozenset((len(cap),)) if streams == 1 else frozenset())


def test_syn_from_a_side_only_acknowledged_so_far(tmp_path: Path) -> None:
    """Only the outstation was seen; its ACK field gives the master's ISN (ack - 1)."""
    cap: list[ScapyPacket] = []
    old = Conv(capture=cap)
    old.emit(old.seg(1, i_frame(2)))
    new = Conv(cisn=5, sisn=99, capture=cap)
    new.emit(new.handshake(), new.seg(0, STARTDT_ACT))
    check(write(tmp_path / "ack-only.pcap", cap), 2)
