"""``iec104 verify``: our decoding against tshark's, one line per disagreement, exit 0/1/2.
Real subprocesses, real tshark, real captures (ours, public ones, and pcaps written here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iec104.codec import (
    ASDU,
    Cause,
    FloatingValue,
    IFrame,
    InformationObject,
    Quality,
    TypeId,
    UFrame,
    UFunction,
    encode_apdu,
    encode_asdu,
)
from iec104.verify import verify
from tests.conftest import public_capture
from tests.support.cli import COMMANDS, STATION, run
from tests.support.pcapwriter import write_pcap
from tests.support.tshark import ensure_tshark

HEINRIHS = "heinrihs_attack-stages-synthetic-broken-tcpseq.pcap"
GOOD = Quality(False, False, False, False, False)


def summary(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("# ")]


def disagreements(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines() if not line.startswith("# ")]


@pytest.mark.parametrize("capture", [STATION, COMMANDS])
def test_our_captures_agree_exit_0(capture: Path) -> None:
    ensure_tshark()
    proc = run("verify", capture)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert disagreements(proc.stdout) == []
    (line,) = summary(proc.stdout)
    assert line.startswith(f"# {capture}: 0 disagreements; APDUs: tshark ")
    compared = int(line.split("compared ")[1].split(",")[0])
    assert compared > 30


def test_every_disagreement_is_listed_and_exit_1() -> None:
    """heinrihs' capture has Seq=1/Ack=1 on every segment: with its default preferences
    tshark drops 3,421 of 3,422 frames as retransmissions, which verify reports frame by
    frame; with the preference that tshark users set for it, the tools agree."""
    ensure_tshark()
    path = public_capture(HEINRIHS)
    proc = run("verify", path)
    assert proc.returncode == 1
    rows = disagreements(proc.stdout)
    assert len(rows) == 3421
    assert all(len(r) == 6 and r[0] == str(path) for r in rows)
    assert rows[0][3:] == ["well-formed APDUs", "1", "0"]  # field, ours, tshark's
    assert sorted(int(r[1]) for r in rows) == list(range(2, 3423))
    assert "3421 disagreements" in summary(proc.stdout)[0]
    assert "hint: tshark dissected 1 APDUs, iec104 3422" in proc.stderr
    assert "-o tcp.analyze_sequence_numbers:FALSE" in proc.stderr
    agreed = run("verify", path, "-o", "tcp.analyze_sequence_numbers:FALSE")
    assert agreed.returncode == 0, agreed.stdout[:2000]
    assert agreed.stderr == ""
    assert "APDUs: tshark 3422, ours 3422, compared 3422" in agreed.stdout


def test_a_non_standard_port_is_decoded_by_both_with_d(tmp_path: Path) -> None:
    ensure_tshark()
    asdu = encode_asdu(ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 7, (
        InformationObject(114, FloatingValue(3.14), GOOD),)))
    path = write_pcap(tmp_path / "port2405.pcap", [
        ("c2s", encode_apdu(UFrame(UFunction.STARTDT_ACT))),
        ("s2c", encode_apdu(UFrame(UFunction.STARTDT_CON))),
        ("s2c", encode_apdu(IFrame(0, 0, asdu)) * 2)], server_port=2405, seed=1)
    proc = run("verify", "-d", "2405", path)
    assert proc.returncode == 0, proc.stdout
    assert "APDUs: tshark 4, ours 4, compared 4" in proc.stdout
    # the library call behind it: the objects were compared too
    result = verify(path, port=2405)
    assert result.objects_compared == 2 and result.disagreements == []


def test_the_comparison_reports_field_ours_and_theirs() -> None:
    """What verify() reports for one changed field (the comparison is not vacuous)."""
    ensure_tshark()
    result = verify(STATION)
    assert result.disagreements == [] and result.apdus_compared > 50
    from iec104.verify import Agreement, compare_apdu, our_apdus
    from iec104.verify.tshark import tshark_apdus

    ours = next(a for a in our_apdus(STATION) if a[0]["apci"] == "I"
                and a[0]["type_id"] == TypeId.M_ME_NC_1)
    theirs = next(t for t in tshark_apdus(STATION)
                  if (t["frame"], t["ssn"]) == (ours[0]["frame"], ours[0]["ssn"]))
    scratch = Agreement("x")
    assert compare_apdu(ours, theirs, scratch) == []
    changed = [{**ours[0], "ca": ours[0]["ca"] + 1}, *ours[1:]]
    (diff,) = compare_apdu(changed, theirs, scratch)
    assert (diff.field, diff.ours, diff.theirs) == ("ca", ours[0]["ca"] + 1, theirs["ca"])
    moved = [*ours[:-1], {**ours[-1], "value": 1e9}]
    # both the exact value and the value tshark displays (6 significant digits) differ
    exact, shown = compare_apdu(moved, theirs, scratch)
    assert exact.field.endswith(" float") and exact.ours == 1e9
    assert shown.field.endswith(" value shown") and shown.ours == "1e+09"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run("verify", tmp_path / "nope.pcap")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    text = tmp_path / "notes.pcap"
    text.write_text("not a capture\n")
    bad = run("verify", text)
    assert bad.returncode == 2 and str(text) in bad.stderr
    port = run("verify", "-d", "70000", STATION)
    assert port.returncode == 2 and "not a TCP port" in port.stderr
    assert run("verify").returncode == 2  # argparse: a capture is required


def test_missing_tshark_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSHARK", "/nonexistent/tshark")
    monkeypatch.setenv("PATH", "/nonexistent")
    proc = run("verify", STATION)
    assert proc.returncode == 2 and "tshark is not installed" in proc.stderr
