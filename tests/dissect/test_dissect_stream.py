"""Capture file -> records: APDU framing over reassembled streams, attribution to the frame
that completes an APDU, resynchronisation, gaps, fallback; tshark as the oracle."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from iec104.analyzer.frames import apdus
from iec104.capture.errors import CaptureError
from iec104.capture.reassembly import Reassembler
from iec104.dissector import dissect, dissect_table
from iec104.records.schema import SCHEMA
from tests.capture.test_dissect_reassembly import STARTDT_ACT, STARTDT_CON, Conv, i_frame, write
from tests.conftest import public_capture, public_capture_names
from tests.support.tshark import TSHARK_NO_SEQ_ANALYSIS, tshark_apdus

# deliberately broken APDUs that tshark decodes anyway and the codec rejects (see SOURCES.md)
LENIENT_TSHARK = {
    "iti_test-dissect-iec104-malformed.pcap",
    "snort3_iec104-builtins-malformed.pcap",
    "snort3_iec104-paf-pipelined-split.pcap",
}


def apdu_rows(table: pd.DataFrame) -> pd.DataFrame:
    """First row of every APDU (rows of one APDU share ``apdu``), gap/event rows dropped."""
    return apdus(table)  # the analyzer's rule (nullable Int64 ``apdu``: NA-aware)


def key(frame: object, direction: object, apci: object, ssn: object, rsn: object,
        u_func: object, type_id: object) -> tuple:
    def opt(v: object) -> int | None:
        return None if v is None or pd.isna(v) else int(v)  # type: ignore[arg-type, call-overload]

    u = None if u_func is None or pd.isna(u_func) else u_func  # type: ignore[call-overload]
    return (int(frame), direction, apci, opt(ssn), opt(rsn), u, opt(type_id))  # type: ignore[call-overload]


def ours(path: Path) -> list[tuple]:
    rows = apdu_rows(dissect_table(path).to_pandas())
    rows = rows[rows["apci"].notna()]
    return [key(r.frame, r.direction, r.apci, r.ssn, r.rsn, r.u_func, r.type_id)
            for r in rows.itertuples()]


def theirs(path: Path) -> list[tuple]:
    opts = TSHARK_NO_SEQ_ANALYSIS if path.name.startswith("heinrihs") else ()
    return [key(a["frame"], a["direction"], a["apci"], a["ssn"], a["rsn"], a["u_func"],
                a["type_id"])
            for a in tshark_apdus(path, extra_opts=opts, check=False) if a["apci"]]


@pytest.mark.parametrize("name", public_capture_names())
def test_apdus_and_their_frames_match_tshark(name: str) -> None:
    path = public_capture(name)
    mine, tshark = ours(path), theirs(path)
    if name in LENIENT_TSHARK:
        # every APDU we accept, tshark shows in the same frame (it also shows the bad ones)
        assert {(k[0], k[1], k[2]) for k in mine} <= {(k[0], k[1], k[2]) for k in tshark}
    else:
        assert mine == tshark


def test_public_capture_with_gaps_records_them_and_resynchronises() -> None:
    table = dissect_table(public_capture("emre_iec104-baselines-seq-gaps.pcap")).to_pandas()
    gaps = table[table["error"].fillna("").str.startswith("gap:")]
    assert list(gaps["frame"]) == [18, 40]
    assert list(gaps["direction"]) == ["s2c", "s2c"]
    assert gaps["error"].iloc[0].startswith("gap: 1376 octets not captured")


def test_heinrihs_fallback_is_recorded() -> None:
    r = Reassembler()
    table = pd.concat(
        b.to_pandas() for b in dissect(public_capture("heinrihs_attack-stages-synthetic-"
                                                      "broken-tcpseq.pcap"), reassembler=r))
    notes = table[table["error"].fillna("").str.startswith("dissector:")]
    assert len(notes) == 1 and int(notes["frame"].iloc[0]) == 2
    assert apdu_rows(table)["apci"].notna().sum() == 3422
    assert r.stats[0][0].fallback


# -- generated captures -------------------------------------------------------------------------


def test_apdu_is_attributed_to_the_frame_with_its_last_byte(tmp_path: Path) -> None:
    c = Conv()
    a, b = i_frame(1), i_frame(2)
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT), c.seg(1, STARTDT_CON),
           c.seg(0, a[:2]), c.seg(0, a[2:10]), c.seg(0, a[10:] + b[:5]), c.seg(0, b[5:]))
    table = dissect_table(write(tmp_path / "split.pcap", c.packets)).to_pandas()
    rows = apdu_rows(table)
    assert list(zip(rows["frame"], rows["direction"], rows["apci"])) == [
        (4, "c2s", "U"), (5, "s2c", "U"), (8, "c2s", "I"), (9, "c2s", "I")]
    assert list(rows["raw"].iloc[2:]) == [a, b]
    # the same as tshark
    path = tmp_path / "split.pcap"
    assert ours(path) == theirs(path)


def test_garbage_is_reported_and_the_framer_resynchronises(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake(), c.seg(0, b"\x01\x02\x03" + STARTDT_ACT), c.seg(1, STARTDT_CON))
    rows = apdu_rows(dissect_table(write(tmp_path / "junk.pcap", c.packets)).to_pandas())
    assert list(rows["apci"].fillna("-")) == ["-", "U", "U"]
    assert rows["error"].iloc[0].startswith("APCI:") and rows["raw"].iloc[0] == b"\x01\x02\x03"


def test_gap_drops_the_partial_apdu_and_decoding_resumes(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake(), c.seg(1, i_frame(0) + i_frame(1)[:7]))
    c.seg(1, i_frame(1)[7:] + i_frame(2))  # lost
    c.emit(c.seg(1, i_frame(3)), c.ack(0), c.seg(1, i_frame(4)))
    table = dissect_table(write(tmp_path / "gap.pcap", c.packets)).to_pandas()
    rows = table[["frame", "apci", "ssn", "error"]]
    assert list(rows["ssn"].dropna().astype(int)) == [0, 3, 4]
    errors = list(rows["error"].dropna())
    assert errors[0].startswith("gap: 25 octets not captured; 7 buffered octets")
    assert len(errors) == 1


def test_batches_are_bounded_and_follow_the_schema(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake(), [c.seg(1, i_frame(n)) for n in range(40)])
    batches = list(dissect(write(tmp_path / "many.pcap", c.packets), batch_rows=8))
    assert len(batches) > 4
    assert all(b.schema == SCHEMA for b in batches)
    assert all(b.num_rows <= 8 for b in batches[:-1])
    assert sum(b.num_rows for b in batches) == 40


def test_batches_are_cut_between_apdus(tmp_path: Path) -> None:
    """Readers group a batch's rows by APDU: a batch bound never splits an APDU's objects,
    also where a profile decision releases the held-back rows at once."""
    from iec104.codec import (ASDU, Cause, IFrame, InformationObject, Quality, ScaledValue,
                              TypeId, encode_apdu, encode_asdu)

    def three_objects(n: int) -> bytes:
        objects = tuple(InformationObject(100 * n + i, ScaledValue(i), Quality())
                        for i in range(3))
        asdu = ASDU(TypeId.M_ME_NB_1, False, Cause.SPONTANEOUS, False, False, 0, 1, objects)
        return encode_apdu(IFrame(n, 0, encode_asdu(asdu)))

    c = Conv()
    c.emit(c.handshake(), [c.seg(1, three_objects(n)) for n in range(40)])
    batches = list(dissect(write(tmp_path / "objects.pcap", c.packets), batch_rows=8))
    assert len(batches) > 10 and all(b.num_rows <= 8 for b in batches)
    seen: set[int] = set()
    for b in batches:
        numbers = set(b.column("apdu").to_pylist())
        assert not numbers & seen, "an APDU split over two batches"
        seen |= numbers
    assert sum(b.num_rows for b in batches) == 120


def test_batches_end_between_apdus(tmp_path: Path) -> None:
    """An APDU's rows stay in one batch (read formats an APDU from its rows); one with more
    rows than ``batch_rows`` is a batch of its own."""
    from iec104.codec import (ASDU, IFrame, InformationObject, Quality, TypeId, encode_apdu,
                              encode_asdu)

    def points(ssn: int, count: int) -> bytes:
        objects = tuple(InformationObject(100 + k, 0, Quality()) for k in range(count))
        asdu = ASDU(TypeId.M_SP_NA_1, False, 20, False, False, 0, 1, objects)
        return encode_apdu(IFrame(ssn, 0, encode_asdu(asdu)))

    counts = [3, 5, 2, 12, 1, 7, 4]
    c = Conv()
    c.emit(c.handshake(), [c.seg(1, points(n, k)) for n, k in enumerate(counts)])
    batches = list(dissect(write(tmp_path / "objects.pcap", c.packets), batch_rows=8))
    per_batch = [b.column("apdu").to_pylist() for b in batches]
    assert sum(map(len, per_batch)) == sum(counts)
    seen = [a for rows in per_batch for a in dict.fromkeys(rows)]
    assert len(seen) == len(set(seen)) == len(counts)  # no APDU in two batches
    assert all(len(rows) <= 8 or len(set(rows)) == 1 for rows in per_batch)


def test_stream_without_end_is_closed_with_truncated_apdu(tmp_path: Path) -> None:
    c = Conv()
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT + i_frame(1)[:9]))
    rows = apdu_rows(dissect_table(write(tmp_path / "open.pcap", c.packets)).to_pandas())
    assert list(rows["apci"].fillna("-")) == ["U", "-"]
    assert "ended inside an APDU" in rows["error"].iloc[1]


def test_non_standard_port_and_heuristic(tmp_path: Path) -> None:
    c = Conv(server=("10.0.0.2", 2405))
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT), c.seg(1, STARTDT_CON))
    path = write(tmp_path / "2405.pcap", c.packets)
    assert dissect_table(path, heuristic=False).num_rows == 0
    assert dissect_table(path, [2405], heuristic=False).num_rows == 2
    assert dissect_table(path, ()).num_rows == 2  # the heuristic is on by default


def test_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello")
    with pytest.raises(CaptureError, match="x.txt"):
        next(dissect(path))


def test_tcp_stream_numbers_reach_the_records(tmp_path: Path) -> None:
    cap: list = []
    other = Conv(client=("10.0.0.3", 1000), server=("10.0.0.4", 80), capture=cap)
    other.emit(other.handshake())
    c = Conv(capture=cap)
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT))
    table = dissect_table(write(tmp_path / "two.pcap", cap)).to_pandas()
    assert list(table["stream"]) == [1]  # stream 0 is the port-80 connection


def test_an_open_reader_can_be_passed_to_see_its_problem(tmp_path: Path) -> None:
    import warnings

    from iec104.capture.errors import CaptureWarning
    from iec104.capture.reader import CaptureReader

    c = Conv()
    c.emit(c.handshake(), c.seg(0, STARTDT_ACT), c.seg(1, STARTDT_CON))
    path = write(tmp_path / "cut.pcap", c.packets)
    path.write_bytes(path.read_bytes()[:-3])
    with CaptureReader(path) as reader, warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        table = dissect_table(reader)
    assert reader.problem is not None and "truncated" in reader.problem
    assert list(table.column("u_func").to_pylist()) == ["STARTDT_ACT"]
