"""The whole dissector (capture -> reassembly -> records) agrees with Wireshark on real captures.

For every capture in ``captures/`` (generated with our driver) and every public capture
(``captures/public`` and ``../shared/captures/public``, see their SOURCES.md),
:func:`iec104.verify.verify` (the code behind ``iec104 verify``) compares every APDU of the
dissector with tshark's dissection of the same file (``-T pdml``): APCI format, N(S)/N(R), U
function, type ID, SQ, number of objects, COT, P/N, T, OA, CA, and for every information
object its IOA, value, quality bits, S/E bit, qualifier and time tag fields.

Every difference must be one of :data:`iec104.verify.KNOWN_DIFFERENCES` (a documented
limitation of tshark 4.0.17's IEC 104 dissector, or a documented choice of ours); anything
else fails the test with the frame and the field. The counts of compared APDUs and objects
are printed per file (``pytest -s tests/test_wireshark_agreement.py``) and asserted to be
non-trivial.

A missing tshark or ``../shared`` folder skips outside CI and fails in CI (``CI=true``).
"""

from __future__ import annotations

import functools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iec104.verify import KNOWN_DIFFERENCES, Agreement, compare_object, verify
from tests.conftest import (
    CAPTURE_SUFFIXES,
    REPO_ROOT,
    public_capture,
    public_capture_names,
    public_captures_dir,
)
from tests.support.tshark import TSHARK_NO_SEQ_ANALYSIS, ensure_tshark

OWN_CAPTURES_DIR = REPO_ROOT / "captures"

TSHARK_OPTIONS: dict[str, tuple[str, ...]] = {
    # SOURCES.md: every segment has Seq=1/Ack=1; with sequence analysis on, tshark takes
    # 3,421 of the 3,422 frames for retransmissions and dissects one APDU.
    "heinrihs_attack-stages-synthetic-broken-tcpseq.pcap": TSHARK_NO_SEQ_ANALYSIS,
}


def capture_ids() -> list[str]:
    """``captures/NAME`` for our own captures, ``public/NAME`` for the public ones."""
    own = sorted(p.name for p in OWN_CAPTURES_DIR.iterdir() if p.name.endswith(CAPTURE_SUFFIXES))
    return [f"captures/{name}" for name in own] + \
        [f"public/{name}" for name in public_capture_names()]


def _path(capture_id: str) -> Path:
    folder, name = capture_id.split("/", 1)
    return OWN_CAPTURES_DIR / name if folder == "captures" else public_capture(name)


@functools.cache
def agreement(capture_id: str) -> Agreement:
    path = _path(capture_id)
    return verify(path, tshark_options=TSHARK_OPTIONS.get(path.name, ()))


# -- tests --------------------------------------------------------------------------------

@pytest.mark.parametrize("capture_id", capture_ids())
def test_every_apdu_agrees_with_tshark(capture_id: str) -> None:
    path = _path(capture_id)
    ensure_tshark()
    result = agreement(capture_id)
    print(result.line())
    assert not result.problems, f"{result.name}:\n" + "\n".join(result.problems)
    assert set(result.known) <= set(KNOWN_DIFFERENCES)
    # every APDU tshark saw was compared or flagged by both
    assert result.tshark_apdus > 0, f"tshark found no IEC 104 in {path.name}"
    assert result.apdus_compared + result.flagged_by_both == result.tshark_apdus


def test_agreement_table() -> None:
    """All files at once: the table printed (``-s``) and the totals."""
    public_captures_dir()  # the totals are over every public capture
    ensure_tshark()
    results = [agreement(c) for c in capture_ids()]
    print()
    for r in results:
        print(r.line())
    apdus = sum(r.apdus_compared for r in results)
    objects = sum(r.objects_compared for r in results)
    print(f"{'total':55} APDUs compared {apdus}, objects compared {objects}")
    assert apdus >= 4400 and objects >= 4300


def test_comparison_detects_differences() -> None:
    """The comparison is not vacuous: a changed value, quality bit or time tag is caught."""
    row = {"ioa": 5, "value": 1.0, "value_text": "ON", "iv": False, "nt": False, "sb": False,
           "bl": False, "ov": None, "select": None, "qualifier": None, "time_tag": None,
           "time_tag_iv": None, "error": None}
    theirs = {"ioa": 5, "value": True, "iv": False, "nt": False, "sb": False, "bl": False}
    known: Counter = Counter()
    assert compare_object(1, row, theirs, known) == []
    assert compare_object(1, {**row, "value": 0.0}, theirs, known)
    assert compare_object(1, {**row, "iv": True}, theirs, known)
    assert compare_object(1, {**row, "ioa": 6}, theirs, known)
    stamp = int(datetime(2024, 2, 29, 13, 14, 15, 16000, UTC).timestamp() * 1e9)
    timed = {**row, "time_tag": stamp, "time_tag_iv": False}
    tag = {"ms": 15016, "min": 14, "hour": 13, "day": 29, "month": 2, "year": 24, "iv": False,
           "text": "Feb 29, 2024 13:14:15.016000000 UTC"}
    assert compare_object(30, timed, {**theirs, "time": tag}, known) == []
    assert compare_object(30, timed, {**theirs, "time": {
        **tag, "text": "Feb 29, 2024 12:14:15.016000000 UTC"}}, known)
    assert compare_object(30, timed, {**theirs, "time": {
        **tag, "text": "Feb 29, 2124 13:14:15.016000000 UTC"}}, known)
    assert compare_object(30, timed, {**theirs, "time": {**tag, "iv": True}}, known)
    # the date shown decides, not the raw year field: 109 is 2009 on both sides
    y2009 = int(datetime(2009, 8, 13, 19, 23, 0, 8000, UTC).timestamp() * 1e9)
    tag109 = {**tag, "year": 109, "text": "Aug 13, 2009 19:23:00.008000000 UTC"}
    flagged = {**row, "time_tag": y2009, "time_tag_iv": False,
               "error": "time tag: year 109 outside [0, 99], read as 2009 (as Wireshark)"}
    assert compare_object(30, flagged, {**theirs, "time": tag109}, known) == []
    assert compare_object(30, {**flagged, "error": None}, {**theirs, "time": tag109}, known)
    y2109 = int(datetime(2109, 8, 13, 19, 23, 0, 8000, UTC).timestamp() * 1e9)
    assert compare_object(30, {**flagged, "time_tag": y2109}, {**theirs, "time": tag109}, known)
