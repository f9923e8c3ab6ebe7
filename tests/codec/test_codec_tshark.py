"""tshark as an independent oracle for the codec.

Frames encoded by our codec, for every standard type ID (SQ=0 and SQ=1, random field
values from the strategies of ``test_codec_asdu.py``), are written into a pcap as one
real TCP conversation on port 2404 (``tests/support/pcapwriter.py``, scapy) and dissected
by ``tshark`` (``iec104/verify/tshark.py``). For every APDU, the APCI, type ID, SQ,
number of objects, COT, P/N, T, originator and common address must agree, and so must
every object's IOA and, for every type ID tshark decodes, its values, quality bits,
qualifiers, S/E bits and time tag fields (:func:`iec104.verify.codec.compare_asdu`; the
tables of what tshark decodes are :mod:`iec104.verify.tables`). tshark's 104 dissector has
a fixed profile (COT 2, CA 2, IOA 3), so only the default profile is checked here.

Type IDs tshark 4.0.17 does not decode into fields (``TSHARK_RAW``): it shows the first
IOA and the rest of the ASDU as one ``rawdata`` blob; we check that the blob is exactly
our octets after the first IOA. Missing tshark fails in CI (``CI=true``), skips elsewhere.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from iec104.codec import (
    ASDU,
    FloatingValue,
    Frame,
    Framer,
    IFrame,
    InformationObject,
    Malformed,
    Profile,
    SFrame,
    Time,
    TypeId,
    UFrame,
    UFunction,
    decode_apdu,
    decode_asdu,
    encode_apdu,
    encode_asdu,
)
from iec104.verify import KIND, TSHARK_RAW
from iec104.verify.codec import compare_asdu, compare_codec_object
from tests.codec.test_codec_asdu import STANDARD_TYPES, random_asdu_octets
from tests.conftest import public_capture
from tests.support.pcapwriter import write_pcap
from tests.support.tshark import ensure_tshark, tshark_apdus, tshark_version

T = TypeId
DEFAULT = Profile()

def test_every_type_is_compared_or_listed() -> None:
    # (the secure authentication messages without IOA: test_codec_security.py)
    assert set(KIND) | set(TSHARK_RAW) == set(STANDARD_TYPES)
    assert not set(KIND) & set(TSHARK_RAW)


def test_tshark_version() -> None:
    ensure_tshark()
    assert tshark_version() >= (3, 6, 0), tshark_version()


# -- the oracle test ----------------------------------------------------------------------

def _direction(type_id: TypeId) -> str:
    monitor = type_id < 45 or type_id == T.M_EI_NA_1
    return "s2c" if monitor else "c2s"


def conversation(seed: int) -> list[tuple[str, Any, bytes]]:
    """Per type ID, one SQ=0 and one SQ=1 ASDU of 1..4 objects with random field values
    (octets built by ``random_asdu_octets``, decoded, then encoded by us); S and U frames."""
    rng = random.Random(seed)
    items: list[tuple[str, Any, bytes]] = []
    ssn = {"s2c": rng.randrange(32768), "c2s": rng.randrange(32768)}
    for type_id in STANDARD_TYPES:
        for sq in (False, True):
            octets = random_asdu_octets(rng, DEFAULT, type_id, rng.randint(1, 4), sq)
            asdu = decode_asdu(octets, DEFAULT)
            assert isinstance(asdu, ASDU)
            raw = encode_asdu(asdu, DEFAULT)
            direction = _direction(type_id)
            apdu = IFrame(ssn[direction], rng.randrange(32768), raw)
            items.append((direction, asdu, encode_apdu(apdu)))
            ssn[direction] = (ssn[direction] + 1) % 32768
    for function in UFunction:
        items.append(("c2s", UFrame(function), encode_apdu(UFrame(function))))
    rsn = rng.randrange(32768)
    items.append(("s2c", SFrame(rsn), encode_apdu(SFrame(rsn))))
    return items


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tshark_agrees(tmp_path: Path, seed: int) -> None:
    ensure_tshark()
    items = conversation(seed)
    messages: list[Any] = [(d, raw) for d, _, raw in items]
    path = write_pcap(tmp_path / "codec.pcap", messages, seed=seed)
    apdus = tshark_apdus(path)
    assert len(apdus) == len(items)
    problems: list[str] = []
    decoded_objects = 0
    for (direction, message, raw), apdu in zip(items, apdus):
        where = f"{type(message).__name__}"
        diffs: list[str] = []
        if apdu["direction"] != direction:
            diffs.append(f"direction {apdu['direction']}")
        if isinstance(message, ASDU):
            where = f"{message.type_id.name} SQ={int(message.sequence)}"
            frame = decode_apdu(raw)
            assert isinstance(frame, IFrame)
            if (apdu["apci"], apdu["ssn"], apdu["rsn"]) != ("I", frame.ssn, frame.rsn):
                diffs.append(f"APCI {apdu['apci']} {apdu['ssn']} {apdu['rsn']}")
            diffs += compare_asdu(message, raw[6:], apdu)
            if message.type_id in KIND:
                decoded_objects += len(apdu["objects"])
        elif isinstance(message, UFrame):
            if (apdu["apci"], apdu["u_func"]) != ("U", message.function.name):
                diffs.append(f"U frame: tshark {apdu['apci']} {apdu['u_func']}")
        else:
            if (apdu["apci"], apdu["rsn"]) != ("S", message.rsn):
                diffs.append(f"S frame: tshark {apdu['apci']} {apdu['rsn']}")
        problems += [f"{where}: {d}" for d in diffs]
    assert not problems, "\n".join(problems)
    assert decoded_objects >= 2 * len(KIND)  # every decoded type compared, both SQ


def test_compare_object_detects_differences() -> None:
    """The comparison itself can fail (guards against a vacuous oracle test)."""
    obj = InformationObject(7, FloatingValue(1.5), None, None, True, 3)
    theirs = {"ioa": 7, "value": 1.5, "ql": 3, "select": True}
    assert compare_codec_object("flt", obj, theirs) == []
    assert compare_codec_object("flt", obj, {**theirs, "value": 1.25})
    assert compare_codec_object("flt", obj, {**theirs, "ql": 4})
    assert compare_codec_object("flt", obj, {**theirs, "ioa": 8})
    cp56 = Time.from_datetime(dt.datetime(2024, 2, 29, 13, 14, 15, 16000))
    timed = InformationObject(1, None, None, cp56)
    text = "Feb 29, 2024 13:14:15.016000000 UTC"
    good: dict[str, Any] = {"ioa": 1, "time": {"ms": 15016, "min": 14, "iv": False, "gen": False, "hour": 13,
                               "su": False, "day": 29, "dow": 4, "month": 2, "year": 24,
                               "text": text}}
    assert compare_codec_object("time only", timed, good) == []
    assert compare_codec_object("time only", timed, {**good, "time": {**good["time"], "dow": 5}})
    assert compare_codec_object("time only", timed,
                          {**good, "time": {**good["time"], "text": text.replace("13", "12")}})


def test_written_pcap_is_a_tcp_conversation(tmp_path: Path) -> None:
    """The capture tshark reads is a real TCP conversation on port 2404."""
    ensure_tshark()
    raw = encode_apdu(UFrame(UFunction.STARTDT_ACT))
    path = write_pcap(tmp_path / "one.pcap", [("c2s", raw)], seed=1)
    (apdu,) = tshark_apdus(path)
    assert apdu["dst_port"] == 2404 and apdu["direction"] == "c2s"
    assert apdu["u_func"] == "STARTDT_ACT"


# -- real captures ------------------------------------------------------------------------

CLEAN_CAPTURES = {
    # capture: APDUs tshark reports (a gap-free, noise-free capture each)
    "wireshark-wiki_iec104.pcap": 115,
    "wireshark-wiki_iec104-sq.pcapng": 4,
    "iti_090813-diverse-hydro-commands.pcap": 86,
}


def tcp_streams(path: Path) -> dict[tuple[str, int, str, int], list[bytes]]:
    """TCP payloads per direction, in sequence order (enough for gap-free captures:
    retransmitted octets are dropped, Ethernet padding is not payload)."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import rdpcap

    streams: dict[tuple[str, int, str, int], list[bytes]] = {}
    expected: dict[tuple[str, int, str, int], int] = {}
    for pkt in rdpcap(str(path)):
        if IP not in pkt or TCP not in pkt:
            continue
        tcp = pkt[TCP]
        key = (pkt[IP].src, int(tcp.sport), pkt[IP].dst, int(tcp.dport))
        if tcp.flags & 0x02:  # SYN
            expected[key] = (tcp.seq + 1) % 2**32
            continue
        # the IP datagram's own octets: not scapy's Raw layer, which is gone wherever
        # iec104.scapy (imported by other tests) has bound its IEC104 layer to port 2404
        ip = pkt[IP]
        data = bytes(ip.original[ip.ihl * 4 + tcp.dataofs * 4:ip.len])
        if not data:
            continue
        nxt = expected.get(key, tcp.seq)
        skip = (nxt - tcp.seq) % 2**32
        if skip < len(data):
            streams.setdefault(key, []).append(data[skip:])
            expected[key] = (tcp.seq + len(data)) % 2**32
        assert skip < 2**31, f"gap in {path.name} {key}"  # not a gap-free capture
    return streams


@pytest.mark.parametrize("name", CLEAN_CAPTURES)
def test_real_capture_agrees_with_tshark(name: str) -> None:
    """Every APDU of a real capture: our framer + decoder vs tshark, field by field."""
    ensure_tshark()
    path = public_capture(name)
    theirs: dict[tuple, list[dict[str, Any]]] = {}
    for apdu in tshark_apdus(path):
        key = (apdu["src_ip"], apdu["src_port"], apdu["dst_ip"], apdu["dst_port"])
        theirs.setdefault(key, []).append(apdu)
    assert sum(map(len, theirs.values())) == CLEAN_CAPTURES[name]
    problems: list[str] = []
    compared = 0
    for key, chunks in tcp_streams(path).items():
        framer = Framer()
        events: list[Frame | Malformed] = []
        for chunk in chunks:
            framer.feed(chunk)
            events.extend(framer)
        assert framer.pending == 0
        assert all(isinstance(e, Frame) for e in events), events
        assert len(events) == len(theirs.get(key, []))
        for event, apdu in zip(events, theirs.get(key, [])):
            assert isinstance(event, Frame)
            frame = event.apdu
            where = f"{name} frame {apdu['frame']}"
            if isinstance(frame, IFrame):
                asdu = decode_asdu(frame.asdu)
                assert isinstance(asdu, ASDU)
                if (apdu["ssn"], apdu["rsn"]) != (frame.ssn, frame.rsn):
                    problems.append(f"{where}: N(S)/N(R)")
                problems += [f"{where}: {d}" for d in compare_asdu(asdu, frame.asdu, apdu)]
            elif isinstance(frame, SFrame):
                if (apdu["apci"], apdu["rsn"]) != ("S", frame.rsn):
                    problems.append(f"{where}: S frame")
            elif (apdu["apci"], apdu["u_func"]) != ("U", frame.function.name):
                problems.append(f"{where}: U frame")
            compared += 1
    assert compared == CLEAN_CAPTURES[name]
    assert not problems, "\n".join(problems)
