"""The public captures shipped in ``captures/public`` are the unmodified files their
SOURCES.md names, each with its licence text beside it, and no capture is shipped without one."""

from __future__ import annotations

import hashlib
import re

from tests.conftest import CAPTURE_SUFFIXES, SHIPPED_CAPTURES_DIR, public_captures_dir

SOURCES = (SHIPPED_CAPTURES_DIR / "SOURCES.md").read_text()
# | `file` | origin | licence, holder | `sha256` |
ROWS = re.findall(r"^\| `([^`]+)` \| (.+?) \| (.+?) \| `([0-9a-f]{64})` \|$", SOURCES,
                  re.MULTILINE)
LICENCE_FILES = {"CC BY 4.0": ["CC-BY-4.0.txt"], "MIT": ["MIT-heinrihs-s.txt"],
                 "LGPL-3.0": ["LGPL-3.0.txt", "GPL-3.0.txt"]}


def test_every_shipped_capture_is_listed_with_its_sha256() -> None:
    shipped = {p.name: p for p in SHIPPED_CAPTURES_DIR.iterdir()
               if p.name.endswith(CAPTURE_SUFFIXES)}
    assert len(shipped) == 5
    assert sorted(name for name, *_ in ROWS) == sorted(shipped)
    for name, _, _, sha256 in ROWS:
        assert hashlib.sha256(shipped[name].read_bytes()).hexdigest() == sha256, name


def test_every_licence_text_is_shipped() -> None:
    for name, _, licence, _ in ROWS:
        (kind,) = [k for k in LICENCE_FILES if licence.startswith(k)]
        for text in LICENCE_FILES[kind]:
            assert (SHIPPED_CAPTURES_DIR / "LICENSES" / text).stat().st_size > 1000, (name, text)


def test_shipped_captures_equal_the_shared_ones() -> None:
    """``../shared`` (skipped when absent, outside CI) holds the same files."""
    shared = public_captures_dir()
    for name, *_ in ROWS:
        assert (shared / name).read_bytes() == (SHIPPED_CAPTURES_DIR / name).read_bytes(), name
