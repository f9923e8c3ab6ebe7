"""The whole dissector (capture -> reassembly -> records) agrees with Wireshark on real captures.

For every capture in ``captures/`` (generated with our driver) and every public capture
(``captures/public`` and ``../shared/captures/public``, see their SOURCES.md), every APDU of
:func:`dissect_table` is compared with tshark's dissection of the same file (``-T pdml``) by
:func:`iec104.verify.verify`, the code behind ``iec104 verify``, so the command checks exactly
what this test checks (the list is in :mod:`iec104.verify.compare`), on what the user sees:

* the packet: TCP stream number (``tcp.stream``) and capture time (``frame.time_epoch``, ns);
* the APCI: format, N(S)/N(R), U function;
* the ASDU header: type ID and its name, SQ, number of objects, COT, P/N, T, OA, CA;
* every information object: IOA, the value of every element type (exactly, and as tshark
  shows normalized and float values: 6 significant digits), the quality bits (IV NT SB BL OV,
  counter IV CY CA and sequence), S/E, QU, QL, QOI, QRP, QCC (RQT, FRZ), QPM (KPA, LPC,
  POP), COI, and the time tags *as shown*: the date tshark prints for a CP56Time2a (its
  century rule, not the raw fields) and the seconds into the hour it prints for a CP24Time2a
  against the minutes and seconds of our completed date;
* for the types tshark shows as raw octets (``iec104.verify.TSHARK_RAW``): the first IOA and
  the raw octets after it.

The same comparison runs on a generated capture with every standard type ID, SQ=0 and SQ=1,
random values, quality bits, qualifiers and time tags (``test_every_type_with_random_values``).

APDUs are paired by frame: both tools attribute an APDU to the frame that carried its last
octet, so the *k*-th APDU of frame *n* is the same APDU on both sides. Every difference must
be one of :data:`iec104.verify.KNOWN_DIFFERENCES` (a documented limitation of tshark 4.0.17's
IEC 104 dissector, or a documented choice of ours); anything else fails the test with the
frame and the field. The counts of compared APDUs and objects are printed per file
(``pytest -s tests/dissect/test_wireshark_agreement.py``) and asserted to be non-trivial.

A missing tshark or ``../shared`` folder skips outside CI and fails in CI (``CI=true``).
"""

from __future__ import annotations

import functools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iec104.verify import (
    KIND,
    KNOWN_DIFFERENCES,
    TSHARK_NO_SEQ_ANALYSIS,
    TSHARK_RAW,
    Agreement,
    compare_apdu,
    compare_frame,
    compare_object,
    our_apdus,
    seconds_into_hour,
    verify,
)
from iec104.verify.tshark import tshark_apdus
from tests.codec.test_codec_tshark import conversation
from tests.conftest import (
    CAPTURE_SUFFIXES,
    REPO_ROOT,
    public_capture,
    public_capture_names,
    public_captures_dir,
)
from tests.support.pcapwriter import write_pcap
from tests.support.tshark import ensure_tshark

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


def compare_capture(path: Path) -> Agreement:
    """:func:`iec104.verify.verify` (what ``iec104 verify`` runs) with this file's options."""
    return verify(path, tshark_options=TSHARK_OPTIONS.get(path.name, ()))


@functools.cache
def agreement(capture_id: str) -> Agreement:
    return compare_capture(_path(capture_id))


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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_type_with_random_values_agrees(tmp_path: Path, seed: int) -> None:
    """Every standard type ID, SQ=0 and SQ=1, random values, quality bits, qualifiers, S/E
    and time tags (the conversation of test_codec_tshark), through the whole dissector."""
    ensure_tshark()
    path = write_pcap(tmp_path / "every-type.pcap", [(d, raw) for d, _, raw in
                                                     conversation(seed)], seed=seed)
    result = compare_capture(path)
    print(result.line())
    assert not result.problems, "\n".join(result.problems)
    assert set(result.known) <= set(KNOWN_DIFFERENCES)
    assert result.apdus_compared + result.flagged_by_both == result.tshark_apdus
    assert result.objects_compared >= 2 * len(KIND)


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
    known: Counter[str] = Counter()
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
    # the raw fields tshark lists are compared too, not only the date it shows
    (diff,) = compare_object(30, timed, {**theirs, "time": {**tag, "day": 28}}, known)
    assert (diff.field, diff.ours, diff.theirs) == ("time day", 29, 28)
    # the date shown decides, not the raw year field: 109 is 2009 on both sides
    y2009 = int(datetime(2009, 8, 13, 19, 23, 0, 8000, UTC).timestamp() * 1e9)
    tag109 = {**tag, "ms": 8, "min": 23, "hour": 19, "day": 13, "month": 8, "year": 109,
              "text": "Aug 13, 2009 19:23:00.008000000 UTC"}
    flagged = {**row, "time_tag": y2009, "time_tag_iv": False,
               "error": "time tag: year 109 outside [0, 99], read as 2009 (as Wireshark)"}
    assert compare_object(30, flagged, {**theirs, "time": tag109}, known) == []
    assert compare_object(30, {**flagged, "error": None}, {**theirs, "time": tag109}, known)
    y2109 = int(datetime(2109, 8, 13, 19, 23, 0, 8000, UTC).timestamp() * 1e9)
    assert compare_object(30, {**flagged, "time_tag": y2109}, {**theirs, "time": tag109}, known)


def test_comparison_detects_differences_in_what_is_shown() -> None:
    """The checks added for what the user sees fail when the two sides differ."""
    known: Counter[str] = Counter()
    row = {"ioa": 7, "value": 11.25, "value_text": "11.25", "iv": False, "nt": False,
           "sb": False, "bl": False, "ov": False, "select": None, "qualifier": None,
           "time_tag": None, "time_tag_iv": None, "error": None}
    flt = {"ioa": 7, "value": 11.25, "float_text": "11.25", "iv": False}
    assert compare_object(13, row, flt, known) == []
    assert compare_object(13, row, {**flt, "float_text": "11.3"}, known)
    nva = {"ioa": 7, "value": 0.0764465, "normval_text": "0.0764465"}
    assert compare_object(9, {**row, "value": 2505 / 32768}, {**nva, "value": 2505 / 32768},
                          known) == []
    assert compare_object(9, {**row, "value": 2505 / 32768},
                          {**nva, "value": 2505 / 32768, "normval_text": "0.0764"}, known)
    # CP24Time2a: tshark's seconds into the hour against the minutes and seconds of our date
    stamp = int(datetime(2026, 11, 26, 8, 9, 59, tzinfo=UTC).timestamp()) * 10**9 + 123_000_000
    timed = {**row, "time_tag": stamp, "time_tag_iv": False}
    cp24 = {"ms": 59123, "min": 9, "iv": False, "text": "599.123000000"}
    assert seconds_into_hour(stamp) == "599.123000000"
    assert compare_object(14, timed, {**flt, "time": cp24}, known) == []
    assert compare_object(14, timed, {**flt, "time": {**cp24, "text": "599.124000000"}}, known)
    # QPM: KPA, LPC and POP are the bits of our qualifier octet
    qpm = {"ioa": 7, "value": 11.25, "qualifier": 0x81, "kpa": 1, "lpc": 0, "pop": 1}
    assert compare_object(112, {**row, "qualifier": 0x81}, qpm, known) == []
    assert compare_object(112, {**row, "qualifier": 0x81}, {**qpm, "lpc": 1}, known)
    # the packet: TCP stream number and capture time
    ours = {"stream": 3, "time": 1_795_680_599_123_890_698}
    theirs = {"stream": 3, "time_ns": 1_795_680_599_123_890_698}
    assert compare_frame(ours, theirs) == []
    assert compare_frame(ours, {**theirs, "stream": 2})
    assert compare_frame(ours, {**theirs, "time_ns": theirs["time_ns"] + 1})


def test_undecoded_types_compare_the_raw_octets() -> None:
    """For a type tshark shows as IOA + raw octets, those octets must be ours after the IOA."""
    ensure_tshark()
    path = OWN_CAPTURES_DIR / "station.pcap"
    ours = next(a for a in our_apdus(path)
                if a[0]["type_id"] is not None and a[0]["type_id"] in TSHARK_RAW)
    theirs = next(t for t in tshark_apdus(path)
                  if (t["frame"], t["ssn"]) == (ours[0]["frame"], ours[0]["ssn"]))
    scratch = Agreement("x")
    assert theirs["objects"][0].get("raw")  # there are raw octets to compare
    assert compare_apdu(ours, theirs, scratch) == []
    assert scratch.first_ioa_only == 1 and scratch.known["undecoded type"] == 1
    raw = ours[0]["raw"]
    changed = [{**row, "raw": raw[:-1] + bytes([raw[-1] ^ 0xFF])} for row in ours]
    (diff,) = compare_apdu(changed, theirs, scratch)
    assert diff.field == "raw octets after the first IOA"
    assert (diff.ours, diff.theirs) == (changed[0]["raw"][15:].hex(), raw[15:].hex())
