"""Real pcaps through the capture reader, the summary text, the HTML report and the
``iec104 report`` command (a real subprocess)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from iec104 import analyzer as an
from iec104.codec import Cause, InformationObject, SingleValue, TypeId
from tests.analyzer.test_analyzer import command, event, healthy
from tests.support.conversation import asdu, cp56, single, to_frame, write_pcap


def faulty():  # type: ignore[no-untyped-def]
    """The five faults of issue 7 in one conversation."""
    c = healthy()
    command(c, 3001, term=False)                        # missing ACTTERM
    command(c, 3002, con=False)                         # unanswered command
    c.wait(1).i("s2c", asdu(TypeId.M_SP_NA_1, Cause.SPONTANEOUS,  # sequence gap (2 lost)
                            [single(1, False)]), ssn=c.vs["s2c"] + 2)
    c.ack("c2s")
    event(c, 1, tag=cp56(c.now.replace(year=2030)))     # out-of-range time tag
    obj = [InformationObject(4000, SingleValue.ON, select=False, qualifier=0)]
    c.wait(1).i("c2s", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION, obj))  # t1 violation
    c.wait(17).i("s2c", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_CONFIRMATION, obj))
    c.wait(0.05).i("s2c", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_TERMINATION, obj))
    return c.ack("c2s")


def check_faults(df) -> None:  # type: ignore[no-untyped-def]
    cmds = an.commands(df)
    assert cmds["status"].tolist() == ["ok", "ok", "ok", "no_actterm", "unanswered", "ok"]
    assert an.sequence_analysis(df)["kind"].tolist() == ["gap", "late_ack"]
    assert an.timeouts(df)["kind"].tolist() == ["t1_expired"]
    assert an.anomalies(df)["kind"].tolist() == ["time_tag_drift"]


@pytest.fixture
def pcap(tmp_path: Path) -> Path:
    return write_pcap(tmp_path / "faults.pcap", faulty())


def test_faults_found_in_a_real_pcap(pcap: Path) -> None:
    df = an.as_frame(pcap)
    check_faults(df)
    check_faults(to_frame(faulty()))
    # the capture's frame numbers count the TCP handshake and the pure ACKs
    assert an.sessions(df).iloc[0]["apdus"] == len(an.apdus(to_frame(faulty())))
    assert df["frame"].min() == 4


def test_summary_text(pcap: Path) -> None:
    text = an.summary_text(pcap)
    assert "connections (TCP streams)        1" in text
    assert "== APCI findings: gap 1, late_ack 1, t1_expired 1 ==" in text
    assert "== Commands: ok 4, no_actterm 1, unanswered 1 ==" in text
    assert "== Interrogations: complete 1 ==" in text
    assert "== Anomalies: time_tag_drift 1 ==" in text


def test_summary_rejects_unknown_options(pcap: Path) -> None:
    with pytest.raises(TypeError, match="t4"):
        an.summary(pcap, t4=1)


def test_report_is_self_contained(pcap: Path) -> None:
    text = an.report_html(pcap, t1=15)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<script" not in text
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)
    assert text.count('src="data:image/png;base64,') == 2
    for heading in ("Connections (1)", "Sequence numbers and timeouts (3)", "Command audit (6)",
                    "Interrogations (1)", "Anomalies (1)"):
        assert heading in text
    assert "t1=15" in text


def test_cli_report_from_pcap_and_parquet(tmp_path: Path, pcap: Path) -> None:
    out = tmp_path / "r.html"
    run = subprocess.run([sys.executable, "-m", "iec104.cli", "report", str(pcap), "-o",
                          str(out), "--title", "Case 7", "--t1", "20"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    html = out.read_text()
    assert "<title>Case 7</title>" in html
    assert "t1_expired" not in html  # 17 s is within a t1 of 20 s
    parquet = tmp_path / "faults.parquet"
    with an.ParquetSink(parquet) as sink:
        sink.write(pa.RecordBatch.from_pandas(an.as_frame(pcap), schema=an.SCHEMA,
                                              preserve_index=False))
    run = subprocess.run([sys.executable, "-m", "iec104.cli", "report", str(parquet), "-o",
                          "-", "--masters", "10.0.0.9"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "t1_expired" in run.stdout and "unexpected_command_source" in run.stdout


def test_cli_report_bad_input(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pcap"
    bogus.write_bytes(b"this is no capture at all")
    for source in (bogus, tmp_path / "missing.pcap"):
        run = subprocess.run([sys.executable, "-m", "iec104.cli", "report", str(source), "-o",
                              str(tmp_path / "x.html")], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 2
        assert run.stderr.startswith("iec104: ")
        assert not (tmp_path / "x.html").exists()
