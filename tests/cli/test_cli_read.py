"""``iec104 read``: one line per APDU, the -V tree, --filter, --port/--heuristic/--profile,
piping into ``head``, damaged and wrong inputs. Real subprocesses on real captures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from iec104.dissector import dissect_table
from tests.conftest import public_capture, public_capture_names
from tests.support.cli import COMMANDS, STATION, env, pipe_to_head, run

LINE = re.compile(r"^\s*(\d+|-) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} \S+ -> \S+ ")


def apdu_count(path: Path) -> int:
    table = dissect_table(path)
    return len(set(table.column("apdu").drop_null().to_pylist()))


@pytest.mark.parametrize("capture", [STATION, COMMANDS], ids=lambda p: p.name)
def test_one_line_per_apdu(capture: Path) -> None:
    proc = run("read", capture)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == apdu_count(capture)
    assert all(LINE.match(line) for line in lines), lines[:3]
    text = proc.stdout
    assert "U(STARTDT_ACT)" in text and "U(STARTDT_CON)" in text
    assert re.search(r" S\(\d+\)$", text, re.MULTILINE)
    assert re.search(r" I\(\d+,\d+\) C_IC_NA_1 ACTIVATION CA=1 IOA 0 QOI=20", text)


def test_line_format_matches_tshark_habits() -> None:
    lines = run("read", STATION).stdout.splitlines()
    first = lines[0]
    # frame number, UTC time, src:port -> dst:port, APCI
    assert re.match(r"^\s+4 2026-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} 127\.0\.0\.1:\d+ -> "
                    r"127\.0\.0\.1:2404 U\(STARTDT_ACT\)$", first), first
    floats = [line for line in lines if " M_ME_TF_1 SPONTANEOUS " in line]
    assert floats and all(re.search(r"IOA \d+=-?[\d.]+( \[[A-Z ]+\])? @\d\d:\d\d:\d\d\.\d{3}",
                                    line) for line in floats), floats[:2]
    commands = [line for line in lines if " C_SC_NA_1 ACTIVATION " in line]
    assert any(" select QU=0" in line for line in commands)
    assert any(" execute QU=0" in line for line in commands)
    assert any(" NEGATIVE " in line for line in lines)


def test_verbose_tree_shows_every_field() -> None:
    proc = run("read", "-V", STATION)
    assert proc.returncode == 0
    text = proc.stdout
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert len(blocks) == apdu_count(STATION)
    assert re.search(r"^Frame \d+: .* UTC, TCP stream 0 \((c2s|s2c)\), ", text, re.MULTILINE)
    assert "APCI: I-format, N(S)=" in text and "APCI: S-format, N(R)=" in text
    assert "APCI: U-format, function STARTDT_ACT" in text
    assert re.search(r"ASDU: type 36 M_ME_TF_1, SQ=0, \d+ object\(s\), COT 3 SPONTANEOUS, "
                     r"P/N=0, T=0, OA 0, CA 1", text)
    assert re.search(r"^    IOA \d+: ", text, re.MULTILINE)
    assert re.search(r"quality: IV=[01] NT=[01] SB=[01] BL=[01] OV=[01]", text)
    assert re.search(r"time tag: 2026-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC \(IV=0\)", text)
    assert "S/E: select" in text and "S/E: execute" in text
    assert "qualifier: QOI=20" in text and "qualifier: QU=0" in text
    assert re.search(r"^  raw: 68 ", text, re.MULTILINE)


FILTERS = [
    # expression, predicate every shown line must satisfy, minimum number of lines
    ("type_id == 45 and ca == 1", lambda s: " C_SC_NA_1 " in s and "CA=1" in s, 4),
    ('apci == "U"', lambda s: " U(" in s, 4),
    ('cot_name == "ACTIVATION" and not negative',
     lambda s: " ACTIVATION " in s and "NEGATIVE" not in s, 4),
    ("ioa in (200, 999)", lambda s: re.search(r"IOA (200|999)=", s) is not None, 3),
    ("C_SC_NA_1 and ActCon", lambda s: " C_SC_NA_1 ACTIVATION_CONFIRMATION " in s, 2),
    ("negative", lambda s: " NEGATIVE " in s, 1),
    ("apci == S || u_func == TESTFR_ACT", lambda s: " S(" in s or "TESTFR_ACT" in s, 2),
]


@pytest.mark.parametrize(("expr", "check", "least"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filter(expr: str, check: object, least: int) -> None:
    proc = run("read", STATION, "--filter", expr)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) >= least
    assert all(check(line) for line in lines), [x for x in lines if not check(x)][:3]  # type: ignore[operator]


def test_filter_shows_whole_apdus() -> None:
    """An APDU is shown when any of its rows matches: all its objects are printed."""
    proc = run("read", STATION, "--filter", "ioa == 101")
    lines = proc.stdout.splitlines()
    assert len(lines) >= 1
    assert all("100=ON; 101=OFF [BL]" in line for line in lines if "M_SP_NA_1" in line)


@pytest.mark.parametrize("expr", [
    "__import__('os')",
    "__import__('os').system('touch pwned')",
    "open('/etc/passwd')",
    "type_id.__class__ == 1",
    "ca == ca.real",
    "typo_id == 45",
    "type_id == 'forty five'",
    "type_id ==",
    "ioa ** 2 == 4",
    "[x for x in ioa]",
    "",
])
def test_filter_refused(expr: str, tmp_path: Path) -> None:
    proc = run("read", STATION, "--filter", expr, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("iec104: --filter: "), proc.stderr
    assert not (tmp_path / "pwned").exists()


def test_filter_gives_no_python_warnings() -> None:
    """'1and' and '"\\d"' make Python's parser warn; the filter keeps that off stderr."""
    for expr in ('ioa == 1and iv', 'value_text == "\\d"'):
        proc = run("read", STATION, "--filter", expr)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("expr", [
    "not " * 5000 + "iv",
    "ioa == 99999999999999999999999",
    "ioa in (" + ", ".join(map(str, range(5000))) + ", 1e300)",
    "time > '9999-01-01'",
])
@pytest.mark.parametrize("command", ["read", "convert", "summary"])
def test_overflow_and_recursion_are_bad_filters(expr: str, command: str,
                                                tmp_path: Path) -> None:
    """Exit 2 and a short message (no traceback, no 20 KB echo of the expression)."""
    extra = ["-o", str(tmp_path / "out.parquet")] if command == "convert" else []
    proc = run(command, STATION, *extra, "--filter", expr)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("iec104: --filter: "), proc.stderr
    assert len(proc.stderr) < 400 and proc.stderr.count("\n") <= 4, proc.stderr
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("source", ["capture", "parquet"])
def test_start_and_end_show_the_apdus_of_the_time_range(source: str, tmp_path: Path) -> None:
    path = STATION
    if source == "parquet":
        path = tmp_path / "station.parquet"
        assert run("convert", STATION, "-o", path, "-q").returncode == 0
    start, end = "2026-11-26T08:09:55.3", "2026-11-26T08:09:56.7"  # within the capture
    ranged = run("read", path, "--start", start, "--end", end)
    assert ranged.returncode == 0, ranged.stderr
    filtered = run("read", path, "--filter", f"time >= '{start}' and time < '{end}'").stdout
    everything = run("read", path).stdout.splitlines()
    assert ranged.stdout == filtered
    assert 0 < len(ranged.stdout.splitlines()) < len(everything)


def test_count_and_relative_time() -> None:
    proc = run("read", STATION, "-c", "5", "-t", "r")
    lines = proc.stdout.splitlines()
    assert len(lines) == 5
    assert lines[0].split()[1] == "0.000000"


def test_installed_script() -> None:
    proc = run("read", COMMANDS, "--filter", "type_id == 46", script=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout and all(" C_DC_NA_1 " in line for line in proc.stdout.splitlines())
    version = run("--version", script=True)
    assert version.stdout.startswith("iec104 ")


def test_piped_into_head_exits_quietly() -> None:
    for args in (("read", STATION), ("read", "-V", STATION)):
        code, out, err = pipe_to_head(*args, lines=2)
        assert len(out.splitlines()) == 2
        assert code == 0, err
        assert err == ""


def test_parquet_input_prints_the_same(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    assert run("convert", STATION, "-o", out, "-q").returncode == 0
    assert run("read", out).stdout == run("read", STATION).stdout
    assert run("read", out, "--filter", "apci == U").stdout == \
        run("read", STATION, "--filter", "apci == U").stdout
    refused = run("read", out, "--port", "2405")
    assert refused.returncode == 2 and "apply to captures" in refused.stderr


def test_port_heuristic_and_profile() -> None:
    # nothing on 2405 and no heuristic: no APDU, and a note says why
    off = run("read", STATION, "--port", "2405", "--no-heuristic")
    assert off.stdout == "" and "(server port 2404)" in off.stderr
    # the heuristic (on by default) finds the 2404 connection again even without its port
    heuristic = run("read", STATION, "--port", "2405")
    assert heuristic.stdout == run("read", STATION).stdout
    # a wrong profile (COT 1 octet) changes the decoding but never crashes
    odd = run("read", STATION, "--profile", "1,1,2")
    assert odd.returncode == 0 and odd.stdout
    bad = run("read", STATION, "--profile", "2,2,4")
    assert bad.returncode == 2 and "COT,CA,IOA" in bad.stderr


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"", "empty file"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
    (b"GET / HTTP/1.1\r\n\r\n" * 4, "not a pcap or pcapng capture"),
])
def test_bad_inputs_exit_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "input.pcap"
    if content is not None:
        path.write_bytes(content)
    proc = run("read", path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"iec104: {path}: ") and message in proc.stderr, proc.stderr
    directory = run("read", tmp_path)
    assert directory.returncode == 2 and "is a directory" in directory.stderr


def test_truncated_last_record(tmp_path: Path) -> None:
    data = STATION.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-7])
    whole = run("read", STATION).stdout.splitlines()
    proc = run("read", cut)
    assert proc.returncode == 1
    assert "warning" in proc.stderr and "truncated record" in proc.stderr
    match = re.search(r"truncated record after frame (\d+)", proc.stderr)
    assert match, proc.stderr
    whole_frames = int(match.group(1))
    # every APDU of the whole records before the damage is there, unchanged
    assert proc.stdout.splitlines() == [line for line in whole
                                        if int(line.split()[0]) <= whole_frames]


@pytest.mark.parametrize("name", public_capture_names())
def test_public_capture(name: str) -> None:
    """Every public capture reads without a traceback; line counts equal the dissector's."""
    path = public_capture(name)
    proc = run("read", path)
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout.splitlines()
    table = dissect_table(path)
    # one line per APDU plus one per gap or dissector note
    expected = len(set(table.column("apdu").drop_null().to_pylist())) + \
        table.column("apdu").null_count
    assert len(shown) == expected


def test_public_capture_malformed_lines() -> None:
    malformed = run("read", public_capture("iti_test-dissect-iec104-malformed.pcap"),
                    "--filter", "error is not None").stdout
    assert "[malformed]" in malformed


def test_public_capture_gap_lines() -> None:
    gaps = run("read", public_capture("emre_iec104-baselines-seq-gaps.pcap"),
               "--filter", '"gap" in error').stdout
    assert "[gap] gap: " in gaps


@pytest.mark.parametrize("options", [[], ["-V"], ["-T", "json"], ["-T", "fields", "-e", "ioa"]])
def test_read_spares_the_import_of_pandas(options: list[str]) -> None:
    """pyarrow imports pandas at its first array (0.3 CPU-s): read builds its arrays
    without asking (iec104.records.arrays), and prints what a process that has pandas
    prints (pyarrow converts some values differently there, e.g. ns timestamps)."""
    def read(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, "read", str(COMMANDS), *options],
                              env=env(), capture_output=True, text=True, check=True,
                              timeout=120)

    report = "print('pandas.core' in sys.modules, file=sys.stderr)"
    alone = read(f"import sys; from iec104.cli import main; main(); {report}")
    with_pandas = read(f"import sys, pandas; from iec104.cli import main; main(); {report}")
    assert alone.stderr.split() == ["False"]
    assert with_pandas.stderr.split() == ["True"]
    assert alone.stdout == with_pandas.stdout and alone.stdout
