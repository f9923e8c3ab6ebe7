"""``iec104 read``'s one-line view, formatted by column (``iec104.cli.oneline``).

The format itself is checked by ``test_cli_read.py``; here, that the column-wise formatter
does not depend on how rows are cut into batches, and the rules it keeps in Python.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from iec104.cli.oneline import batch_lines, format_endpoint, format_time
from iec104.dissector import dissect
from tests.conftest import REPO_ROOT, public_capture, public_capture_names

OWN = sorted((REPO_ROOT / "captures").glob("*.pcap*"))
assert OWN, "the bundled captures (captures/*.pcap*) are missing"


def _lines(path: Path, rows: int, mode: str) -> list[str]:
    """The lines of the capture's rows cut into batches of about ``rows`` rows, each cut at
    an APDU boundary (as the record builders hand them out)."""
    import pyarrow as pa

    table = pa.Table.from_batches(list(dissect(path))).combine_chunks()
    apdu = table.column("apdu").to_pylist()
    lines, start = [], 0
    for end in range(1, len(apdu) + 1):
        if end == len(apdu) or (end - start >= rows and (apdu[end] is None
                                                         or apdu[end] != apdu[end - 1])):
            batch = table.slice(start, end - start).to_batches()[0]
            lines += batch_lines(batch, mode, 1_000_000_000)
            start = end
    return lines


@pytest.mark.parametrize("mode", ["a", "e"])
@pytest.mark.parametrize("name", public_capture_names())
def test_batches_do_not_change_lines(name: str, mode: str) -> None:
    path = public_capture(name)
    big = _lines(path, 10**9, mode)
    assert _lines(path, 40, mode) == big


def test_scalar_rules() -> None:
    assert format_endpoint("10.0.0.1", 2404) == "10.0.0.1:2404"
    assert format_endpoint("fe80::1", 2404) == "[fe80::1]:2404"
    assert format_endpoint(None, None) == "?"
    assert format_time(None) == "-"
    assert format_time(1_764_000_000_123_456_789) == "2025-11-24 16:00:00.123456"
    assert format_time(1_764_000_000_123_456_789, "e") == "1764000000.123456789"
    assert format_time(2_500_000_000, "r", 1_000_000_000) == "1.500000"


def test_one_line_per_apdu_of_bundled_captures() -> None:
    for path in OWN:
        lines = _lines(path, 10**9, "a")
        apdus = {a for b in dissect(path) for a in b.column("apdu").to_pylist()
                 if a is not None}
        assert len(lines) >= len(apdus) > 0
