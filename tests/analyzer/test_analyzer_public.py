"""Every investigation runs on every public capture (real-world traffic, malformed frames,
broken TCP) without raising, and finds what is known to be in some of them."""

from __future__ import annotations

import pytest

from iec104 import analyzer as an
from tests.conftest import public_capture, public_capture_names


@pytest.mark.parametrize("name", public_capture_names())
def test_summary_runs(name: str) -> None:
    df = an.as_frame(public_capture(name))
    tables = an.summary(df)
    assert len(tables["sessions"]) == df["stream"].nunique()
    assert tables["sessions"]["apdus"].sum() == len(an.apdus(df))
    for title, table in tables.items():
        assert table is not None, title
    assert "== Overview ==" in an.summary_text(df)


def test_known_content_of_public_captures() -> None:
    df = an.as_frame(public_capture("emre_104deneme-many-typeids.pcap"))
    cmds = an.commands(df)
    # the outstation refuses every command on IOA 50 and every parameter on IOA 110
    refused = cmds[cmds["con_cot"] == "UNKNOWN_IO_ADDRESS"]
    assert set(refused["ioa"]) == {50, 110} and (refused["status"] == "negative").all()
    ics = an.interrogations(df)
    assert ics["status"].tolist() == ["complete", "complete"]
    assert ics["group"].tolist() == ["station", "counters"]
    a = an.anomalies(df)
    drift = a[a["kind"] == "time_tag_drift"]
    assert len(drift) and drift["detail"].str.contains("about \\+3 h").all()


def test_link_findings_of_the_synthetic_attack_capture() -> None:
    heinrichs = an.as_frame(public_capture("heinrihs_attack-stages-synthetic-broken-tcpseq.pcap"))
    kinds = set(an.link_findings(heinrichs)["kind"])
    assert {"duplicate", "reset"} <= kinds
