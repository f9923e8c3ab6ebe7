"""The README's commands and snippets work as written (apart from ports and paths)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, find_unused_tcp_port

README = (REPO_ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.DOTALL)


def _run_python(code: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_main_job_command_and_pandas_snippet(tmp_path: Path) -> None:
    """The set-up command as written, in a copy of the checkout, with whatever python3 runs
    the tests (inside scripts/test.sh that is a venv's): scripts/setup.sh replaces a broken
    .venv (as a failed ``python3 -m venv`` leaves it), installs iec104 from PyPI, and the
    activated venv runs ``iec104``; a second run reuses the venv, which stays on PATH."""
    command = _blocks("sh")[0].strip()
    assert command.startswith("bash scripts/setup.sh && . .venv/bin/activate && ")
    checkout = tmp_path / "iec104"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".venv")
    for part in ("iec104", "scripts", "captures"):
        shutil.copytree(REPO_ROOT / part, checkout / part, ignore=skip)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / part, checkout / part)
    (checkout / ".venv").mkdir()
    (checkout / ".venv" / "pyvenv.cfg").write_text("home = /nonexistent\n")

    def run(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", script], cwd=checkout, capture_output=True,
                              text=True, timeout=1200, check=False)

    first = run(command)
    assert first.returncode == 0, first.stderr
    assert ".venv is broken" in first.stderr and "installing iec104" in first.stderr
    assert "M_ME_TF_1" in first.stdout
    snippet = next(b for b in _blocks("python") if "read_parquet" in b)
    (checkout / "snippet.py").write_text(snippet)
    again = run(f"{command} >/dev/null && command -v iec104 && python snippet.py")
    assert again.returncode == 0, again.stderr
    assert "installing" not in again.stderr  # reused as it was
    assert again.stdout.splitlines()[0] == str(checkout / ".venv" / "bin" / "iec104")
    assert "ioa" in again.stdout and "113" in again.stdout


def test_test_command_is_what_ci_runs() -> None:
    assert _blocks("sh")[1].strip() == "bash scripts/test.sh"
    assert "scripts/test.sh" in (REPO_ROOT / ".ci" / "run").read_text()


def test_codec_snippet(tmp_path: Path) -> None:
    code = next(b for b in _blocks("python") if "codec.Framer()" in b)
    out = _run_python(code, tmp_path)
    assert out.startswith("M_ME_NC_1 SPONTANEOUS InformationObject(address=1, "
                          "value=FloatingValue(value=50.0)")


def test_driver_seed_snippet(tmp_path: Path) -> None:
    code = next(b for b in _blocks("python") if "iec104.listen" in b)
    port = find_unused_tcp_port()
    out = _run_python(code.replace("2404", str(port)), tmp_path)
    assert out == ""


def test_analysis_snippet() -> None:
    code = next(b for b in _blocks("python") if "an.as_frame" in b)
    _run_python(code, REPO_ROOT)
