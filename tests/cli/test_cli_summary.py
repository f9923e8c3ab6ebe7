"""``iec104 summary``: connections, counts by type and cause, time span, errors and gaps,
from a Parquet file or straight from a capture. Real subprocesses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import public_capture
from tests.support.cli import COMMANDS, STATION, pipe_to_head, run


def sections(text: str) -> dict[str, str]:
    """``== Title (n) ==`` -> the text under it."""
    out: dict[str, str] = {}
    title = ""
    for line in text.splitlines():
        match = re.match(r"^== (.+?) ==$", line)
        if match:
            title = re.sub(r"\s*\(\d+\)$", "", match.group(1).split(":")[0])
            out[title] = line + "\n"
        elif title:
            out[title] += line + "\n"
    return out


def test_summary_of_parquet_and_capture_agree(tmp_path: Path) -> None:
    out = tmp_path / "station.parquet"
    assert run("convert", STATION, "-o", out, "-q").returncode == 0
    from_parquet = run("summary", out)
    from_capture = run("summary", STATION)
    assert from_parquet.returncode == from_capture.returncode == 0
    # the first line names the source; the rest is the same
    assert from_parquet.stdout.split("\n", 1)[1] == from_capture.stdout.split("\n", 1)[1]
    assert from_parquet.stdout.startswith(f"Source: {out}\n")


def test_summary_content() -> None:
    text = run("summary", STATION, "--max-rows", "100").stdout
    parts = sections(text)
    for title in ("Overview", "Connections", "Types", "Causes", "Errors and gaps"):
        assert title in parts, (title, list(parts))
    overview = parts["Overview"]
    # time span
    assert re.search(r"^first\s+2026-11-26 \d\d:\d\d:\d\d\.\d{3}$", overview, re.MULTILINE)
    assert re.search(r"^last\s+2026-11-26 ", overview, re.MULTILINE)
    assert re.search(r"^duration \(s\)\s+\d+\.\d+$", overview, re.MULTILINE)
    assert re.search(r"^APDUs\s+98$", overview, re.MULTILINE)
    assert re.search(r"^I / S / U frames\s+84 / 4 / 10$", overview, re.MULTILINE)
    assert re.search(r"^undecodable APDUs / octet runs\s+0$", overview, re.MULTILINE)
    assert re.search(r"^capture gaps\s+0$", overview, re.MULTILINE)
    assert "127.0.0.1:2404" in parts["Connections"]
    assert re.search(r"^\s+36\s+M_ME_TF_1\s+s2c\s+21\s+21$", parts["Types"], re.MULTILINE)
    assert re.search(r"^\s+3\s+SPONTANEOUS\s+False\s+s2c\s+\d+", parts["Causes"], re.MULTILINE)
    assert re.search(r"ACTIVATION_CONFIRMATION\s+True", parts["Causes"])  # the rejected one
    assert "Errors and gaps (0)" in text


def test_two_connections() -> None:
    text = run("summary", COMMANDS).stdout
    assert "== Connections (2) ==" in text
    assert re.search(r"^connections \(TCP streams\)\s+2$", text, re.MULTILINE)


def test_errors_listed() -> None:
    bad = run("summary", public_capture("iti_test-dissect-iec104-malformed.pcap")).stdout
    assert "APCI: start octet" in sections(bad)["Errors and gaps"]
    assert re.search(r"^undecodable APDUs / octet runs\s+[1-9]", bad, re.MULTILINE)


def test_gaps_listed() -> None:
    gaps = run("summary", public_capture("emre_iec104-baselines-seq-gaps.pcap")).stdout
    section = sections(gaps)["Errors and gaps"]
    assert re.search(r"gap: \d+ octets not captured", section)
    assert re.search(r"^capture gaps\s+[1-9]", gaps, re.MULTILINE)


def test_filter_and_max_rows() -> None:
    text = run("summary", STATION, "--filter", "type_id == 36").stdout
    assert re.search(r"^APDUs\s+21$", text, re.MULTILINE)
    assert "== Types (1) ==" in text
    limited = run("summary", STATION, "--max-rows", "2").stdout
    assert "... 41 more" in limited


def test_directory_of_parquet(tmp_path: Path) -> None:
    assert run("convert", STATION, "-o", tmp_path / "a.parquet", "-q").returncode == 0
    assert run("convert", COMMANDS, "-o", tmp_path / "b.parquet", "-q").returncode == 0
    text = run("summary", tmp_path).stdout
    assert re.search(r"^rows\s+\d+$", text, re.MULTILINE)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run("summary", empty)
    assert proc.returncode == 2 and "without Parquet files" in proc.stderr


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"PAR1 but not really parquet", "not a readable Parquet file"),
    (b"plain text, not a capture", "not a pcap or pcapng capture"),
])
def test_bad_inputs_exit_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "x.bin"
    if content is not None:
        path.write_bytes(content)
    proc = run("summary", path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_truncated_capture_exit_1(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(STATION.read_bytes()[:-7])
    proc = run("summary", cut)
    assert proc.returncode == 1
    assert "warning" in proc.stderr and "== Overview ==" in proc.stdout


def test_piped_into_head() -> None:
    code, out, err = pipe_to_head("summary", STATION, lines=1)
    assert out == f"Source: {STATION}\n"
    assert code == 0 and err == ""


def test_installed_script(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    assert run("convert", STATION, "-o", out, "-q", script=True).returncode == 0
    proc = run("summary", out, script=True)
    assert proc.returncode == 0 and "== Connections (1) ==" in proc.stdout
