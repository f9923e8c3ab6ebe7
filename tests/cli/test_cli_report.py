"""``iec104 report`` (and ``summary``) keep the CLI's error contract (issue 10, item 5).

The same exit codes and one-line messages as read/convert/summary for every bad input and
output, an exit-status section in ``--help``, and the same input options (``--filter``,
``--port``, ``--heuristic``, ``--profile``); ``report X -o X`` never overwrites its input.
Everything runs ``iec104`` as a subprocess (:func:`tests.support.cli.run` also fails on any
traceback on stderr).
"""

from __future__ import annotations

import re
import resource
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support.cli import COMMANDS, STATION, command, env, run


def parquet(tmp_path: Path, source: Path = STATION, name: str = "good.parquet") -> Path:
    out = tmp_path / name
    assert run("convert", source, "-o", out, "-q").returncode == 0
    return out


def one_line_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("iec104: ") and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


# -- outputs -----------------------------------------------------------------------------


def test_bad_outputs_exit_2_and_write_nothing(tmp_path: Path) -> None:
    one_line_error(run("report", STATION, "-o", tmp_path / "missing" / "r.html"),
                   "no such directory")
    one_line_error(run("report", STATION, "-o", tmp_path), "is a directory")
    one_line_error(run("report", STATION, "-o", "/dev/null"), "is not a regular file")
    assert list(tmp_path.iterdir()) == []


def test_report_never_overwrites_its_input(tmp_path: Path) -> None:
    same = tmp_path / "same.pcap"
    same.write_bytes(STATION.read_bytes())
    one_line_error(run("report", same, "-o", same), "the output would overwrite this input")
    assert same.read_bytes() == STATION.read_bytes()
    data = parquet(tmp_path)
    before = data.read_bytes()
    one_line_error(run("report", data, "-o", data), "would overwrite")
    assert data.read_bytes() == before


def _limit_file_size() -> None:
    # a disk that fills up: writes past 4 KiB fail with EFBIG (Python ignores SIGXFSZ)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_unwritable_output_exit_2_and_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    proc = subprocess.run([*command(), "report", str(STATION), "-o", str(out)], text=True,
                          capture_output=True, env=env(), preexec_fn=_limit_file_size,
                          timeout=300, check=False)
    assert "Traceback" not in proc.stderr
    one_line_error(proc, f"{out}: cannot write: File too large")
    assert list(tmp_path.iterdir()) == []


# -- inputs ------------------------------------------------------------------------------


def _truncated(tmp_path: Path) -> tuple[Path, list[str]]:
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(parquet(tmp_path).read_bytes()[:3000])
    return truncated, []


def _other(tmp_path: Path) -> tuple[Path, list[str]]:
    other = tmp_path / "other.parquet"
    pd.DataFrame({"x": [1, 2]}).to_parquet(other)
    return other, []


def _retyped(tmp_path: Path) -> tuple[Path, list[str]]:
    retyped = tmp_path / "retyped.parquet"
    pd.DataFrame({"apdu": ["a", "b"]}).to_parquet(retyped)
    return retyped, []


def _empty(tmp_path: Path) -> tuple[Path, list[str]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty, []


def _pcaps(tmp_path: Path) -> tuple[Path, list[str]]:
    pcaps = tmp_path / "pcaps"
    pcaps.mkdir()
    (pcaps / "station.pcap").write_bytes(STATION.read_bytes())
    return pcaps, []


def _capture_options(tmp_path: Path) -> tuple[Path, list[str]]:
    return parquet(tmp_path), ["--port", "2405"]


BAD_PARQUET_INPUTS = {
    "truncated": (_truncated, "not a readable Parquet file"),
    "other": (_other, "not a Parquet file of iec104's schema"),
    "retyped": (_retyped, "(column 'apdu' is "),
    "empty": (_empty, "a directory without Parquet files"),
    "pcaps": (_pcaps, "give one of its captures instead"),
    "missing": (lambda tmp_path: (tmp_path / "nothing.pcap", []), "no such file"),
    "capture options": (_capture_options, "--port, --heuristic and --profile apply to captures"),
}


# one case per test: each runs one or two interpreters, so a loaded machine (the whole suite
# on 2 shared cores) stays far within the per-test timeout; ten in one test did not always
@pytest.mark.parametrize("case", list(BAD_PARQUET_INPUTS))
@pytest.mark.parametrize("command_name", ["report", "summary"])
def test_bad_parquet_inputs_exit_2(tmp_path: Path, command_name: str, case: str) -> None:
    make, message = BAD_PARQUET_INPUTS[case]
    source, options = make(tmp_path)
    extra = ["-o", str(tmp_path / "r.html")] if command_name == "report" else []
    one_line_error(run(command_name, source, *extra, *options), message)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("command_name", ["report", "summary"])
def test_directory_with_one_damaged_file_keeps_the_rest(tmp_path: Path,
                                                        command_name: str) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    parquet(folder, STATION, "a.parquet")
    parquet(folder, COMMANDS, "b.parquet")
    (folder / "c.parquet").write_bytes((folder / "b.parquet").read_bytes()[:2000])
    out = tmp_path / "r.html"
    extra = ["-o", str(out)] if command_name == "report" else []
    proc = run(command_name, folder, *extra)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"iec104: warning: {folder / 'c.parquet'}: not a readable "
                                  "Parquet file"), proc.stderr
    assert proc.stderr.rstrip().endswith("; skipped") and proc.stderr.count("\n") == 1
    text = out.read_text() if command_name == "report" else proc.stdout
    rows = len(pd.read_parquet(folder / "a.parquet")) + len(pd.read_parquet(folder / "b.parquet"))
    assert re.search(rf"\brows\b\D*{rows}\b", text), text[:2000]
    # every file damaged: nothing to report, a bad input
    for name in ("a", "b"):
        (folder / f"{name}.parquet").write_bytes(b"PAR1 not really")
    one_line_error(run(command_name, folder, *extra), "no readable Parquet file")


@pytest.mark.parametrize("command_name", ["read", "summary", "report"])
def test_damaged_row_group_loses_only_its_rows(tmp_path: Path, command_name: str) -> None:
    whole = tmp_path / "whole.parquet"
    assert run("convert", STATION, "-o", whole, "-q", "--batch-rows", "20",
               "--compression", "none").returncode == 0
    meta = pq.ParquetFile(whole).metadata
    assert meta.num_row_groups >= 4
    chunk = meta.row_group(2).column(0)  # the first page header of row group 3
    data = bytearray(whole.read_bytes())
    for i in range(chunk.data_page_offset, chunk.data_page_offset + 8):
        data[i] ^= 0xFF
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(bytes(data))
    extra = ["-o", str(tmp_path / "r.html")] if command_name == "report" else []
    proc = run(command_name, damaged, *extra)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"iec104: warning: {damaged}: row group 3 of "
                                  f"{meta.num_row_groups} cannot be read (")
    assert proc.stderr.count("\n") == 1
    lost = meta.row_group(2).num_rows
    if command_name == "read":
        rows = pq.read_table(whole).to_pandas()
        kept = rows.drop(index=range(40, 40 + lost))
        assert len(proc.stdout.splitlines()) == kept["apdu"].nunique()
    else:
        text = (tmp_path / "r.html").read_text() if extra else proc.stdout
        assert re.search(rf"\brows\b\D*{meta.num_rows - lost}\b", text)


def test_truncated_capture_is_a_warning_not_a_python_warning(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(STATION.read_bytes()[:-7])
    out = tmp_path / "r.html"
    proc = run("report", cut, "-o", out)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"iec104: warning: {cut}: truncated record"), proc.stderr
    assert "CaptureWarning" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "<html" in out.read_text()


# -- options and help ----------------------------------------------------------------------


def test_help_has_an_exit_status_section() -> None:
    texts = {name: run(name, "--help").stdout for name in ("read", "convert", "summary",
                                                           "report")}
    for name, text in texts.items():
        flat = " ".join(text.split())
        assert "Exit status: 0 ok; 1 an input is damaged" in flat, name
        assert "2 bad usage or a bad filter" in flat, name
        for option in ("--filter", "--port", "--heuristic, --no-heuristic", "--profile",
                       "--log-level"):
            assert option in text, (name, option)


def test_report_takes_the_input_options(tmp_path: Path) -> None:
    full, picked = tmp_path / "full.html", tmp_path / "picked.html"
    assert run("report", COMMANDS, "-o", full).returncode == 0
    proc = run("report", COMMANDS, "-o", picked, "--filter", "type_id == C_SC_NA_1")
    assert proc.returncode == 0, proc.stderr
    assert "C_SC_NA_1" in picked.read_text() and "M_ME_NC_1" in full.read_text()
    assert "M_ME_NC_1" not in picked.read_text()
    none = tmp_path / "none.html"
    proc = run("report", COMMANDS, "-o", none, "--no-heuristic", "-d", "2405")
    assert proc.returncode == 0, proc.stderr
    assert "2 TCP connections were not decoded (server port 2404)" in proc.stderr
    assert "C_SC_NA_1" not in none.read_text()
    assert run("report", COMMANDS, "-o", none, "--profile", "2,2,3",
               "--heuristic").returncode == 0
    bad = run("report", COMMANDS, "-o", none, "--filter", "ioa ==")
    assert bad.returncode == 2 and bad.stderr.startswith("iec104: --filter: syntax error")
    assert run("report", COMMANDS, "-o", none, "--profile", "9").returncode == 2


def test_log_level_before_and_after_the_subcommand(tmp_path: Path) -> None:
    for args in (["--log-level", "DEBUG", "read", STATION], ["read", STATION, "--log-level",
                                                             "DEBUG"]):
        proc = run(*args)
        assert proc.returncode == 0 and proc.stdout, proc.stderr
    from iec104.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["report", "x", "-o", "y", "--log-level", "ERROR"]).log_level \
        == "ERROR"
    assert parser.parse_args(["--log-level", "INFO", "summary", "x"]).log_level == "INFO"
    assert parser.parse_args(["summary", "x"]).log_level == "WARNING"


def test_top_level_help_names_only_what_exists() -> None:
    text = run("--help").stdout
    assert "simulate" not in text
    assert "README.dissect" not in run("read", "--help").stdout
    proc = run("read", STATION, "--filter", "typo == 1")
    assert "see 'Filter language' in README.md" in proc.stderr
