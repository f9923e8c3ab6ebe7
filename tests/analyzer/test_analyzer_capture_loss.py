"""Findings that a capture gap explains name the capture, not the device: on a scripted
conversation (frames encoded by the codec, decoded as the dissector does) and on the public
capture whose outstation direction lost 1,376 octets (tshark: "previous segment not
captured" at frame 18)."""

from __future__ import annotations

from iec104 import analyzer as an
from iec104.analyzer.capture_loss import CAPTURE_ACTOR
from tests.conftest import public_capture
from tests.support.conversation import Conversation, to_frame
from tests.analyzer.test_analyzer import MASTER, healthy, kinds, spontaneous


def lost_frames(c: Conversation, lost: int, acked: int) -> Conversation:
    """The outstation sends ``lost`` I-frames the capture loses; the master acknowledges
    ``acked`` frames beyond the last one captured, before the capture shows the hole."""
    before = c.vs["s2c"]
    c.vs["s2c"] += lost  # sent on the wire, never captured
    c.wait(1).s("c2s", rsn=before + acked)
    c.wait(1).capture_gap("s2c", 20 * lost)  # seen when the next segment arrives
    spontaneous(c)
    return c


def test_an_ack_of_frames_the_capture_lost_is_attributed_to_the_capture() -> None:
    findings = an.link_findings(to_frame(lost_frames(healthy(), lost=5, acked=5)))
    assert kinds(findings) == ["capture_lost"]
    row = findings.iloc[0]
    assert row["actor"] == CAPTURE_ACTOR and row["direction"] == "c2s"
    assert "acknowledges I-frames the capture lost" in row["detail"]
    assert f"{MASTER} is not at fault" in row["detail"]
    assert an.sequence_analysis(to_frame(lost_frames(healthy(), 5, 5)))["kind"].tolist() == [
        "capture_lost"]


def test_an_ack_beyond_what_the_capture_lost_is_still_a_bad_ack() -> None:
    findings = an.link_findings(to_frame(lost_frames(healthy(), lost=2, acked=6)))
    assert kinds(findings) == ["bad_ack"]
    assert findings.iloc[0]["actor"] == MASTER


def test_an_ack_of_frames_never_sent_without_a_gap_is_a_bad_ack() -> None:
    c = healthy()
    c.wait(1).s("c2s", rsn=c.vr["c2s"] + 5)
    assert kinds(an.link_findings(to_frame(c))) == ["bad_ack"]


def test_the_public_sequence_gap_capture_accuses_no_device() -> None:
    findings = an.sequence_analysis(public_capture("emre_iec104-baselines-seq-gaps.pcap"))
    assert findings["kind"].tolist() == ["capture_lost"] * 4
    assert set(findings["actor"]) == {CAPTURE_ACTOR}
    assert findings["got"].tolist() == [13, 25, 33, 48]
    first = findings.iloc[0]["detail"]
    assert "before frame 18" in first and "1376 octets not captured" in first
    assert "N(S) jumps 3 -> 33" in first
    assert "before frame 40" in findings.iloc[3]["detail"]
