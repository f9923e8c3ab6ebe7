"""Run the ``iec104`` command line as a real subprocess (for tests/test_cli_*.py).

:func:`run` starts ``python -m iec104.cli ARGS`` (or the installed ``iec104`` console script
with ``script=True``) with the repository first on ``PYTHONPATH``, so the checkout is what
runs, and returns the ``CompletedProcess`` (text, stdout and stderr captured). A traceback on
stderr is always a test failure: :func:`run` asserts there is none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CAPTURES = REPO_ROOT / "captures"
STATION = CAPTURES / "station.pcap"
COMMANDS = CAPTURES / "commands.pcapng"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), e.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    e.pop("PYTHONWARNINGS", None)
    e["COLUMNS"] = "200"
    return e


def command(script: bool = False) -> list[str]:
    if script:
        exe = shutil.which("iec104")
        assert exe is not None, "the iec104 console script is not installed (pip install -e .)"
        return [exe]
    return [sys.executable, "-m", "iec104.cli"]


def run(*args: str | os.PathLike[str], script: bool = False, timeout: float = 120,
        cwd: str | os.PathLike[str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``iec104 ARGS`` as a subprocess; asserts that stderr holds no Python traceback."""
    proc = subprocess.run([*command(script), *map(str, args)], check=False, capture_output=True,
                          text=True,
                          timeout=timeout, env=env(), cwd=cwd, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def pipe_to_head(*args: str | os.PathLike[str], lines: int = 3,
                 script: bool = False) -> tuple[int, str, str]:
    """``iec104 ARGS | head -n LINES``: (iec104's exit code, head's output, iec104's stderr)."""
    producer = subprocess.Popen([*command(script), *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env(), stdin=subprocess.DEVNULL)
    assert producer.stdout is not None and producer.stderr is not None
    head = subprocess.run(["head", "-n", str(lines)], check=False, stdin=producer.stdout,
                          capture_output=True, timeout=120)
    producer.stdout.close()
    stderr = producer.stderr.read().decode()
    code = producer.wait(timeout=120)
    return code, head.stdout.decode(), stderr


def stderr_on_a_terminal(*args: str | os.PathLike[str], columns: int = 100,
                         timeout: float = 120) -> tuple[int, str]:
    """``iec104 ARGS`` with its stderr on a pseudo-terminal ``columns`` wide (where progress
    bars are drawn): (exit code, what it wrote to the terminal)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        child = subprocess.run([*command(), *map(str, args)], check=False,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                               env=env(), timeout=timeout)
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return child.returncode, seen.decode(errors="replace")
