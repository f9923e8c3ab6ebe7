"""Shared pytest fixtures and helpers.

* :func:`public_capture` (name -> path) and :func:`public_capture_names`: the public IEC 104
  captures. Those whose licence allows it are shipped in ``<repo>/captures/public`` (see its
  SOURCES.md) and always there; the others are read from ``<repo>/../shared/captures/public``,
  and a test that needs one of those is *skipped* when that folder is absent, except in CI
  (``CI=true``), where that is a failure. ``public_captures`` (fixture) /
  :func:`public_captures_dir` give the ``../shared`` folder itself, with the same rule.
* ``unused_tcp_port`` (fixture) / :func:`find_unused_tcp_port`: a free TCP port on 127.0.0.1.
  (This overrides pytest-asyncio's fixture of the same name with the same meaning, but also
  works without it and never hands out the same port twice in one session.)
* The repository root is put on ``sys.path`` so that tests import helpers as
  ``from tests.support import tshark`` (and ``iec104`` from the checkout) however pytest is
  started.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PUBLIC_CAPTURES_DIR = REPO_ROOT.parent / "shared" / "captures" / "public"
SHIPPED_CAPTURES_DIR = REPO_ROOT / "captures" / "public"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz")
SHARED_MISSING = "<shared captures missing>"
"""Stands in :func:`public_capture_names` for the ``../shared`` captures when that folder is
absent: :func:`public_capture` skips (fails in CI) on it, so that a clone without ``../shared``
shows what it did not run."""

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def in_ci() -> bool:
    """True when running under CI (``CI`` is ``true``/``1``/``yes``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def public_captures_dir() -> Path:
    """The public captures folder; skips the calling test if absent (fails in CI)."""
    if not PUBLIC_CAPTURES_DIR.is_dir():
        message = f"public captures folder {PUBLIC_CAPTURES_DIR} is missing"
        if in_ci():
            pytest.fail(message + " -- required in CI", pytrace=False)
        pytest.skip(message)
    return PUBLIC_CAPTURES_DIR


@pytest.fixture(scope="session")
def public_captures() -> Path:
    """Path of ``../shared/captures/public`` (skip when absent, fail in CI). For one file,
    prefer :func:`public_capture`, which finds the shipped ones without ``../shared``."""
    return public_captures_dir()


def _capture_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.endswith(CAPTURE_SUFFIXES)} \
        if folder.is_dir() else set()


def public_capture_names() -> list[str]:
    """Every public capture's file name (shipped ones and ``../shared``'s), sorted; when
    ``../shared`` is absent, :data:`SHARED_MISSING` stands for its files (for parametrize)."""
    names = sorted(_capture_files(SHIPPED_CAPTURES_DIR) | _capture_files(PUBLIC_CAPTURES_DIR))
    return names if PUBLIC_CAPTURES_DIR.is_dir() else [*names, SHARED_MISSING]


def public_capture(name: str) -> Path:
    """The public capture ``name``: the copy shipped in ``captures/public`` when there is one,
    else the file in ``../shared/captures/public`` (skip when absent, fail in CI)."""
    shipped = SHIPPED_CAPTURES_DIR / name
    return shipped if shipped.is_file() else public_captures_dir() / name


_handed_out: set[int] = set()


def find_unused_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now and that this session has not
    handed out before. There is an unavoidable race with other processes between this call
    and the caller's ``bind``; keep the two close."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("could not find an unused TCP port")


@pytest.fixture
def unused_tcp_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return find_unused_tcp_port()
