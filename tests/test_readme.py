"""The README's commands and snippets work as written (apart from ports and paths)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, find_unused_tcp_port

README = (REPO_ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.DOTALL)


def _run_python(code: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_main_job_command_and_pandas_snippet(tmp_path: Path) -> None:
    command = _blocks("sh")[0].strip()
    assert command.startswith("python3 -m pip install . && ")
    # the install step is what scripts/test.sh already did; run the rest as written
    shutil.copytree(REPO_ROOT / "captures", tmp_path / "captures")
    rest = command.split(" && ", 1)[1]
    proc = subprocess.run(rest, shell=True, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "M_ME_TF_1" in proc.stdout
    snippet = next(b for b in _blocks("python") if "read_parquet" in b)
    out = _run_python(snippet, tmp_path)
    assert "ioa" in out and "113" in out


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
