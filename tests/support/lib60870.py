"""Build lib60870-C's file service into a test outstation (``lib60870_file_server.c``).

c104 (a test dependency) wraps lib60870-C but exposes no file service; its sdist on PyPI
ships the lib60870-C sources. :func:`file_server` downloads that sdist with pip (the version
of the installed c104), builds the static library with cmake and links our small server
program with gcc, once: the executable is cached under ``$IEC104_TEST_CACHE`` (default
``~/.cache/iec104-tests``) per c104 version and source hash. Missing gcc/cmake/make skip the
calling test outside CI and fail it in CI (``scripts/test.sh`` installs them).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.conftest import in_ci

SOURCE = Path(__file__).with_name("lib60870_file_server.c")
_LIB = "depends/lib60870/lib60870-C"


def _require_tools() -> None:
    missing = [tool for tool in ("gcc", "cmake", "make") if shutil.which(tool) is None]
    if missing:
        message = f"building lib60870-C needs {', '.join(missing)}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900,
                          check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def file_server() -> Path:
    """The path of the built test outstation (building it on first use)."""
    _require_tools()
    version = importlib.metadata.version("c104")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("IEC104_TEST_CACHE", Path.home() / ".cache" / "iec104-tests"))
    exe = cache / f"lib60870-c104-{version}" / f"file_server-{digest}"
    if exe.exists():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=exe.parent) as tmp:
        work = Path(tmp)
        _run([sys.executable, "-m", "pip", "download", f"c104=={version}", "--no-binary",
              "c104", "--no-deps", "--disable-pip-version-check", "-q", "-d", str(work)])
        (sdist,) = work.glob("c104-*.tar.gz")
        with tarfile.open(sdist) as tar:
            prefix = f"{sdist.name.removesuffix('.tar.gz')}/{_LIB}/"
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                       and ".." not in m.name.split("/") and (m.isfile() or m.isdir())]
            # the "data" filter (no links out, no devices) where Python has it (3.11.4+)
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(work, members, **safe)  # members checked above
        lib = work / prefix
        build = work / "build"
        _run(["cmake", "-S", str(lib), "-B", str(build), "-DBUILD_EXAMPLES=OFF",
              "-DBUILD_TESTS=OFF", "-DCMAKE_BUILD_TYPE=Release"])
        _run(["cmake", "--build", str(build), "--target", "lib60870", "-j2"])
        (archive,) = build.glob("src/liblib60870*.a")
        includes = [lib / "src/inc/api", lib / "src/hal/inc", lib / "src/file-service",
                    lib / "config", lib / "src/common/inc", lib / "src/inc/internal",
                    build / "src"]
        out = work / "file_server"
        _run(["gcc", "-O1", "-o", str(out), str(SOURCE), *(f"-I{i}" for i in includes),
              str(archive), "-lpthread"])
        out.replace(exe)  # atomic: a concurrent build loses nothing
    return exe
