"""Tests of the test support: the tshark oracle and the pcap writer.

Facts about the public captures come from ../shared/captures/public/SOURCES.md and were
checked by hand against ``tshark -V`` output.
"""

from __future__ import annotations

import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import public_capture
from tests.support import tshark as ts
from tests.support.pcapwriter import Message, build_conversation, write_pcap, write_pcapng

WIKI = "wireshark-wiki_iec104.pcap"
WIKI_SQ = "wireshark-wiki_iec104-sq.pcapng"
HEINRIHS = "heinrihs_attack-stages-synthetic-broken-tcpseq.pcap"
MALFORMED = "iti_test-dissect-iec104-malformed.pcap"
SNORT_PAF = "snort3_iec104-paf-pipelined-split.pcap"

STARTDT_ACT = bytes.fromhex("680407000000")
STARTDT_CON = bytes.fromhex("68040b000000")


def i_frame(ssn: int, rsn: int, asdu: bytes) -> bytes:
    return bytes([0x68, len(asdu) + 4]) + struct.pack("<HH", ssn << 1, rsn << 1) + asdu


def float_asdu(ioa: int, value: float, cot: int = 3, ca: int = 1) -> bytes:
    """M_ME_NC_1, SQ=0, one object, QDS=0 (written by hand, independent of our codec)."""
    return (
        bytes([13, 1, cot, 0])
        + ca.to_bytes(2, "little")
        + ioa.to_bytes(3, "little")
        + struct.pack("<f", value)
        + b"\x00"
    )


@pytest.fixture(scope="module")
def tshark_path() -> str:
    return ts.ensure_tshark()


@pytest.fixture(scope="module")
def wiki(tshark_path: str) -> list[dict]:
    return ts.tshark_apdus(public_capture(WIKI))


def by_frame(apdus: list[dict], frame: int) -> list[dict]:
    return [a for a in apdus if a["frame"] == frame]


# --- ensure_tshark --------------------------------------------------------------------------


def test_ensure_tshark_returns_an_executable(tshark_path: str) -> None:
    assert Path(tshark_path).is_file()
    assert ts.tshark_version() >= (3, 0, 0)


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_tshark_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("TSHARK", "/nonexistent/tshark")
    monkeypatch.setenv("CI", ci)
    ts.find_tshark.cache_clear()
    try:
        with pytest.raises(outcome):
            ts.ensure_tshark()
    finally:
        monkeypatch.undo()
        ts.find_tshark.cache_clear()


# --- the Wireshark wiki capture -------------------------------------------------------------


def test_wiki_apdu_counts(wiki: list[dict]) -> None:
    assert len(wiki) == 115
    assert Counter(a["apci"] for a in wiki) == {"I": 91, "S": 14, "U": 10}
    assert not any(a["malformed"] for a in wiki)


def test_wiki_type_histogram_matches_sources_md(wiki: list[dict]) -> None:
    expected = {t: 3 for t in (1, 3, 5, 7, 9, 11, 13, 30, 31, 32, 33, 34, 35, 36)}
    expected |= {t: 6 for t in (45, 46, 47, 48, 49, 50, 51, 100)}
    expected[70] = 1
    assert Counter(a["type_id"] for a in wiki if a["apci"] == "I") == expected


def test_wiki_session_start(wiki: list[dict]) -> None:
    heads = [(a["frame"], a["apci"], a["u_func"], a["direction"]) for a in wiki[:4]]
    assert heads == [
        (4, "U", "TESTFR_ACT", "c2s"),
        (5, "U", "TESTFR_CON", "s2c"),
        (7, "U", "STARTDT_ACT", "c2s"),
        (8, "U", "STARTDT_CON", "s2c"),
    ]
    assert [a["u_code"] for a in wiki[:4]] == [0x10, 0x20, 0x01, 0x02]
    first = wiki[0]
    assert (first["src_ip"], first["src_port"]) == ("10.20.102.1", 46413)
    assert (first["dst_ip"], first["dst_port"]) == ("10.20.100.108", 2404)
    assert first["apdu_len"] == 4 and first["ssn"] is None and first["objects"] == []


def test_wiki_general_interrogation(wiki: list[dict]) -> None:
    (gi,) = by_frame(wiki, 9)
    assert (gi["apci"], gi["ssn"], gi["rsn"]) == ("I", 0, 0)
    assert (gi["type_id"], gi["type_name"], gi["cot"], gi["cot_name"]) == (
        100,
        "C_IC_NA_1",
        6,
        "Act",
    )
    assert (gi["sq"], gi["num_objects"], gi["negative"], gi["test"]) == (False, 1, False, False)
    assert (gi["oa"], gi["ca"]) == (0, 10)
    assert [(o["ioa"], o["qualifier"]) for o in gi["objects"]] == [(0, 20)]


def test_wiki_frames_with_several_apdus_keep_grouping(wiki: list[dict]) -> None:
    per_frame = Counter(a["frame"] for a in wiki)
    assert per_frame[16] == 12 and per_frame[14] == 9 and per_frame[18] == 8
    frame16 = by_frame(wiki, 16)
    assert [a["index"] for a in frame16] == list(range(12))
    assert [a["ssn"] for a in frame16] == list(range(13, 25))
    assert {a["rsn"] for a in frame16} == {2}

    con, sp, dp = by_frame(wiki, 12)
    assert [a["type_id"] for a in (con, sp, dp)] == [100, 1, 3]
    assert [a["cot"] for a in (con, sp, dp)] == [7, 20, 20]
    assert [o["ioa"] for o in sp["objects"]] == [1, 2, 3, 4]
    for obj in sp["objects"]:
        assert obj["value"] is False
        assert not any(obj[q] for q in ("iv", "nt", "sb", "bl"))
        assert "ov" not in obj  # SIQ has no OV bit


def test_wiki_single_command_sequence(wiki: list[dict]) -> None:
    (act,) = by_frame(wiki, 20)
    assert (act["type_name"], act["cot"], act["direction"]) == ("C_SC_NA_1", 6, "c2s")
    assert act["objects"][0] | {"fields": None} == {
        "ioa": 2,
        "value": True,
        "qu": 0,
        "select": False,
        "fields": None,
    }
    con, term, spont = by_frame(wiki, 21)
    assert [(a["type_id"], a["cot"]) for a in (con, term, spont)] == [(45, 7), (45, 10), (1, 3)]
    assert spont["objects"][0]["ioa"] == 2 and spont["objects"][0]["value"] is True


def test_wiki_time_tag_components(wiki: list[dict]) -> None:
    spont = by_frame(wiki, 25)[2]
    assert spont["type_name"] == "M_SP_TB_1"
    time = spont["objects"][0]["time"]
    assert {k: time[k] for k in ("ms", "min", "hour", "day", "dow", "month", "year")} == {
        "ms": 24007,
        "min": 23,
        "hour": 8,
        "day": 4,
        "dow": 4,
        "month": 7,
        "year": 13,
    }
    assert (time["iv"], time["su"]) == (False, False)
    assert time["text"] == "Jul  4, 2013 08:23:24.007000000 UTC"


def test_wiki_float_normalized_and_bitstring_values(wiki: list[dict]) -> None:
    (se_nc,) = by_frame(wiki, 78)
    obj = se_nc["objects"][0]
    assert se_nc["type_name"] == "C_SE_NC_1"
    assert obj["value"] == struct.unpack("<f", struct.pack("<f", 3.14))[0]
    assert obj["float_text"] == "3.14"
    assert (obj["ql"], obj["select"]) == (0, False)

    (se_na,) = by_frame(wiki, 57)
    obj = se_na["objects"][0]
    assert (obj["normval_raw"], obj["value"], obj["normval_text"]) == (1024, 0.03125, "0.03125")

    (bo,) = by_frame(wiki, 49)
    obj = bo["objects"][0]
    assert obj["bitstring_bytes"] == b"\x02\x00\x00\x00"
    assert obj["value"] == 0x02000000  # tshark reads the BSI big endian


# --- other public captures ------------------------------------------------------------------


def test_sq_capture_generates_consecutive_ioas(tshark_path: str) -> None:
    apdus = ts.tshark_apdus(public_capture(WIKI_SQ))
    assert len(apdus) == 4 and {a["frame"] for a in apdus} == {1}
    for n, apdu in enumerate(apdus):
        assert (apdu["type_id"], apdu["sq"], apdu["num_objects"], apdu["cot"]) == (1, True, 16, 20)
        assert (apdu["ca"], apdu["dst_port"]) == (1054, 4446)
        assert [o["ioa"] for o in apdu["objects"]] == list(range(16 * n, 16 * n + 16))


def test_heinrihs_needs_sequence_analysis_off(tshark_path: str) -> None:
    assert len(ts.tshark_apdus(public_capture(HEINRIHS))) == 1
    apdus = ts.tshark_apdus(public_capture(HEINRIHS), extra_opts=ts.TSHARK_NO_SEQ_ANALYSIS)
    assert len(apdus) == 3422
    assert Counter(a["apci"] for a in apdus) == {"I": 3398, "U": 24}
    assert Counter(a["type_id"] for a in apdus)[45] == 1908


def test_malformed_capture(tshark_path: str) -> None:
    apdus = ts.tshark_apdus(public_capture(MALFORMED))
    assert len({a["frame"] for a in apdus if a["malformed"]}) == 9
    (f13,) = by_frame(apdus, 13)
    assert f13["prefix"] == b"\x00\x12\x12" and f13["u_func"] == "TESTFR_ACT"
    (f36,) = by_frame(apdus, 36)
    assert (f36["apci"], f36["u_code"], f36["u_func"], f36["apdu_len"]) == ("U", 5, None, 5)
    (f11,) = by_frame(apdus, 11)
    assert f11["apci"] is None and f11["malformed"]
    assert "APDU less than 4 bytes" in f11["expert"]
    (f41,) = by_frame(apdus, 41)
    assert (f41["type_id"], f41["type_name"], f41["objects"]) == (24, None, [])
    assert sum(1 for a in apdus if a["negative"]) == 3
    assert sum(1 for a in apdus if a["test"]) == 2


def test_snort_pipelined_and_split(tshark_path: str) -> None:
    apdus = ts.tshark_apdus(public_capture(SNORT_PAF))
    assert [(a["frame"], a["index"], a["apci"]) for a in apdus] == [
        (4, 0, "U"),
        (4, 1, "S"),
        (4, 2, "I"),
        (13, 0, "I"),
    ]
    split = apdus[3]
    assert split["malformed"] and split["num_objects"] == 127 and split["sq"]
    assert len(split["objects"]) < 127


# --- pcap writer, checked with tshark -------------------------------------------------------


def test_writer_round_trip_through_tshark(tmp_path: Path, tshark_path: str) -> None:
    frames = [i_frame(n, 1, float_asdu(100 + n, n / 8)) for n in range(3)]
    messages: list[Message] = [
        ("c2s", STARTDT_ACT),
        ("s2c", STARTDT_CON),
        ("s2c", frames[0] + frames[1], [3, len(frames[0]) + len(frames[1]) - 3]),
        ("s2c", frames[2]),
        ("c2s", bytes.fromhex("680401000600")),  # S-frame, N(R) = 3
    ]
    path = write_pcap(tmp_path / "conv.pcap", messages, client_port=50000)
    apdus = ts.tshark_apdus(path)
    assert [(a["apci"], a["direction"]) for a in apdus] == [
        ("U", "c2s"),
        ("U", "s2c"),
        ("I", "s2c"),
        ("I", "s2c"),
        ("I", "s2c"),
        ("S", "c2s"),
    ]
    assert [a["ssn"] for a in apdus[2:5]] == [0, 1, 2]
    assert apdus[2]["frame"] == apdus[3]["frame"]  # both completed by the second segment
    assert [a["objects"][0]["value"] for a in apdus[2:5]] == [0.0, 0.125, 0.25]
    assert apdus[5]["rsn"] == 3
    assert {a["src_port"] for a in apdus if a["direction"] == "c2s"} == {50000}


def test_writer_produces_a_clean_tcp_conversation(tmp_path: Path, tshark_path: str) -> None:
    payload = b"".join(i_frame(n, 0, float_asdu(n, 1.0)) for n in range(20))
    path = write_pcapng(
        tmp_path / "conv.pcapng",
        [("c2s", STARTDT_ACT), ("s2c", STARTDT_CON), ("s2c", payload)],
        segment_size=50,
        seed=7,
    )
    problems = subprocess.run(
        [
            tshark_path,
            "-n",
            "-r",
            str(path),
            "-Y",
            "tcp.analysis.flags && !tcp.analysis.window_update",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert problems == ""
    apdus = ts.tshark_apdus(path)
    assert len(apdus) == 22
    assert [a["ssn"] for a in apdus[2:]] == list(range(20))


def test_writer_packet_layout() -> None:
    packets = build_conversation(
        [("c2s", b"\x68\x04\x07\x00\x00\x00")], client_port=40000, start_time=10.0, step=0.5
    )
    flags = [str(p["TCP"].flags) for p in packets]
    assert flags == ["S", "SA", "A", "PA", "A", "FA", "FA", "A"]
    assert [float(p.time) for p in packets] == [10.0 + 0.5 * n for n in range(8)]
    syn, syn_ack, ack, data, data_ack = packets[:5]
    assert syn_ack["TCP"].ack == syn["TCP"].seq + 1
    assert data["TCP"].seq == ack["TCP"].seq == syn["TCP"].seq + 1
    assert data_ack["TCP"].ack == data["TCP"].seq + 6
    assert (data["TCP"].sport, data["TCP"].dport) == (40000, 2404)


def test_writer_random_port_and_bad_chunks() -> None:
    port = build_conversation([], seed=1)[0]["TCP"].sport
    assert 49152 <= port <= 65535
    assert build_conversation([], seed=1)[0]["TCP"].sport == port
    with pytest.raises(ValueError, match="do not split"):
        build_conversation([("c2s", b"abc", [1, 1])])
    with pytest.raises(ValueError, match="direction"):
        build_conversation([("up", b"abc")])  # type: ignore[list-item]


def test_non_standard_port_needs_decode_as(tmp_path: Path, tshark_path: str) -> None:
    path = write_pcap(
        tmp_path / "p.pcap", [("c2s", STARTDT_ACT), ("s2c", STARTDT_CON)], server_port=12404
    )
    assert ts.tshark_apdus(path) == []
    apdus = ts.tshark_apdus(path, port=12404)
    assert [(a["u_func"], a["direction"]) for a in apdus] == [
        ("STARTDT_ACT", "c2s"),
        ("STARTDT_CON", "s2c"),
    ]


def test_tshark_error_is_raised(tmp_path: Path, tshark_path: str) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture file at all")
    with pytest.raises(ts.TsharkError):
        ts.tshark_apdus(bad)
    with pytest.raises(FileNotFoundError):
        ts.tshark_apdus(tmp_path / "missing.pcap")
