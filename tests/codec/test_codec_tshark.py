"""tshark as an independent oracle for the codec.

Frames encoded by our codec, for every standard type ID (SQ=0 and SQ=1, random field
values from the strategies of ``test_codec_asdu.py``), are written into a pcap as one
real TCP conversation on port 2404 (``tests/support/pcapwriter.py``, scapy) and dissected
by ``tshark`` (``tests/support/tshark.py``). For every APDU, the APCI, type ID, SQ,
number of objects, COT, P/N, T, originator and common address must agree, and so must
every object's IOA and, for every type ID tshark decodes, its values, quality bits,
qualifiers, S/E bits and time tag fields. tshark's 104 dissector has a fixed profile
(COT 2, CA 2, IOA 3), so only the default profile is checked here.

Type IDs tshark 4.0.17 does not decode into fields (``TSHARK_RAW``): it shows the first
IOA and the rest of the ASDU as one ``rawdata`` blob; we check that the blob is exactly
our octets after the first IOA. Missing tshark fails in CI (``CI=true``), skips elsewhere.
"""

from __future__ import annotations

import datetime as dt
import random
import struct
from pathlib import Path
from typing import Any

import pytest

from iec104.codec import (
    ASDU,
    BitstringValue,
    DecodeError,
    FloatingValue,
    Frame,
    Framer,
    IFrame,
    InformationObject,
    Malformed,
    NormalizedValue,
    Profile,
    SFrame,
    Time,
    TimeSize,
    TypeId,
    UFrame,
    UFunction,
    decode_apdu,
    decode_asdu,
    encode_apdu,
    encode_asdu,
)
from tests.codec.test_codec_asdu import STANDARD_TYPES, random_asdu_octets
from tests.conftest import public_capture
from tests.support.pcapwriter import write_pcap
from tests.support.tshark import ensure_tshark, tshark_apdus, tshark_version

T = TypeId
DEFAULT = Profile()

# What tshark decodes, by the element layout of the type.
KIND: dict[TypeId, str] = {
    **dict.fromkeys((T.M_SP_NA_1, T.M_SP_TA_1, T.M_SP_TB_1), "siq"),
    **dict.fromkeys((T.M_DP_NA_1, T.M_DP_TA_1, T.M_DP_TB_1), "diq"),
    **dict.fromkeys((T.M_ST_NA_1, T.M_ST_TA_1, T.M_ST_TB_1), "vti"),
    **dict.fromkeys((T.M_BO_NA_1, T.M_BO_TA_1, T.M_BO_TB_1), "bsi"),
    **dict.fromkeys((T.M_ME_NA_1, T.M_ME_TA_1, T.M_ME_TD_1, T.M_ME_ND_1), "nva"),
    **dict.fromkeys((T.M_ME_NB_1, T.M_ME_TB_1, T.M_ME_TE_1), "sva"),
    **dict.fromkeys((T.M_ME_NC_1, T.M_ME_TC_1, T.M_ME_TF_1), "flt"),
    **dict.fromkeys((T.M_IT_NA_1, T.M_IT_TA_1, T.M_IT_TB_1), "bcr"),
    **dict.fromkeys((T.C_SC_NA_1, T.C_SC_TA_1, T.C_DC_NA_1, T.C_DC_TA_1, T.C_RC_NA_1,
                     T.C_RC_TA_1), "command"),
    **dict.fromkeys((T.C_SE_NA_1, T.C_SE_TA_1), "nva"),
    **dict.fromkeys((T.C_SE_NB_1, T.C_SE_TB_1), "sva"),
    **dict.fromkeys((T.C_SE_NC_1, T.C_SE_TC_1), "flt"),
    **dict.fromkeys((T.C_BO_NA_1, T.C_BO_TA_1), "bsi"),
    T.M_EI_NA_1: "coi", T.C_IC_NA_1: "qualifier", T.C_RP_NA_1: "qualifier",
    T.C_CI_NA_1: "qcc", T.C_CS_NA_1: "time only",
    T.P_ME_NA_1: "nva", T.P_ME_NB_1: "sva", T.P_ME_NC_1: "flt",
}

_NO_DECODER = "no element decoder in tshark's ASDU dissector: IOA + rawdata"
_NOT_104 = ("not in tshark's type-name table either (an IEC 101 type that IEC 104 excludes); "
            + _NO_DECODER)
TSHARK_RAW: dict[TypeId, str] = {
    T.M_EP_TA_1: _NOT_104, T.M_EP_TB_1: _NOT_104, T.M_EP_TC_1: _NOT_104,
    T.M_PS_NA_1: _NO_DECODER,
    T.M_EP_TD_1: _NO_DECODER, T.M_EP_TE_1: _NO_DECODER, T.M_EP_TF_1: _NO_DECODER,
    T.S_IT_TC_1: "IEC 62351-5 security statistics: named, but " + _NO_DECODER,
    T.C_RD_NA_1: "no information element, and tshark stops after the first IOA: the other "
                 "objects' IOAs come as rawdata",
    T.C_TS_NA_1: _NOT_104, T.C_CD_NA_1: _NOT_104,
    T.C_TS_TA_1: _NO_DECODER, T.P_AC_NA_1: _NO_DECODER,
    **dict.fromkeys((T.F_FR_NA_1, T.F_SR_NA_1, T.F_SC_NA_1, T.F_LS_NA_1, T.F_AF_NA_1,
                     T.F_SG_NA_1, T.F_DR_TA_1, T.F_SC_NB_1), "file transfer: " + _NO_DECODER),
}
"""Type IDs tshark 4.0.17 shows only as IOA + raw octets, and why."""


def test_every_type_is_compared_or_listed() -> None:
    # (the secure authentication messages without IOA: test_codec_security.py)
    assert set(KIND) | set(TSHARK_RAW) == set(STANDARD_TYPES)
    assert not set(KIND) & set(TSHARK_RAW)


def test_tshark_version() -> None:
    ensure_tshark()
    assert tshark_version() >= (3, 6, 0), tshark_version()


# -- comparison ---------------------------------------------------------------------------

def _quality(ours: Any, theirs: dict[str, Any], ov: bool, out: list[str]) -> None:
    want = {"iv": ours.invalid, "nt": ours.not_topical, "sb": ours.substituted,
            "bl": ours.blocked}
    if ov:
        want["ov"] = ours.overflow
    for key, value in want.items():
        if theirs.get(key) != value:
            out.append(f"quality {key}: tshark {theirs.get(key)!r}, ours {value!r}")


def _f32(value: float) -> bytes:
    return struct.pack("<f", value)


def _time(ours: Time, theirs: dict[str, Any] | None, out: list[str]) -> None:
    if theirs is None:
        out.append("tshark shows no time tag")
        return
    want: dict[str, Any] = {"ms": ours.milliseconds, "min": ours.minutes, "iv": ours.invalid}
    if ours.size == TimeSize.SEVEN:
        want.update(gen=bool(ours.reserved & 1), hour=ours.hours, su=ours.summer_time,
                    day=ours.day_of_month, dow=ours.day_of_week, month=ours.months,
                    year=ours.years)
    for key, value in want.items():
        if theirs.get(key) != value:
            out.append(f"time {key}: tshark {theirs.get(key)!r}, ours {value!r}")
    # tshark renders a calendar-valid CP56 as UTC; two conventions differ from our
    # defaults (IEC 104 defines neither): years >= 70 are 19xx, and SU=1 means the
    # fields are summer time, one hour ahead of the standard time tshark shows.
    if ours.size == TimeSize.SEVEN:
        assert ours.years is not None
        try:
            when = ours.to_datetime(century=2000 if ours.years < 70 else 1900)
        except DecodeError:
            return
        if ours.summer_time:
            when -= dt.timedelta(hours=1)
        text = (f"{when:%b} {when.day:2d}, {when.year} {when:%H:%M:%S}."
                f"{when.microsecond * 1000:09d} UTC")
        if theirs.get("text") != text:
            out.append(f"time text: tshark {theirs.get('text')!r}, ours {text!r}")


def compare_object(kind: str, ours: InformationObject, theirs: dict[str, Any]) -> list[str]:
    """Differences between our object and tshark's view of it (empty when they agree)."""
    out: list[str] = []
    v: Any = ours.value
    want: tuple[Any, ...]
    got: tuple[Any, ...]
    if theirs.get("ioa") != ours.address:
        out.append(f"ioa: tshark {theirs.get('ioa')}, ours {ours.address}")
    if kind == "siq":
        if theirs.get("value") != bool(v):
            out.append(f"SPI: tshark {theirs.get('value')}, ours {v!r}")
        _quality(ours.quality, theirs, False, out)
    elif kind == "diq":
        if theirs.get("value") != int(v):
            out.append(f"DPI: tshark {theirs.get('value')}, ours {v!r}")
        _quality(ours.quality, theirs, False, out)
    elif kind == "vti":
        if (theirs.get("value"), theirs.get("transient")) != (v.value, v.transient):
            out.append(f"VTI: tshark {theirs.get('value')}/{theirs.get('transient')}, ours {v}")
        _quality(ours.quality, theirs, True, out)
    elif kind == "bsi":
        assert isinstance(v, BitstringValue)
        if theirs.get("bitstring_bytes") != v.value:
            out.append(f"BSI: tshark {theirs.get('bitstring_bytes')!r}, ours {v.value!r}")
    elif kind == "nva":
        assert isinstance(v, NormalizedValue)
        if theirs.get("normval_raw") != round(v.value * 32768) or theirs.get("value") != v.value:
            out.append(f"NVA: tshark {theirs.get('normval_raw')} ({theirs.get('value')}), "
                       f"ours {v.value}")
    elif kind == "sva":
        if theirs.get("value") != v.value:
            out.append(f"SVA: tshark {theirs.get('value')}, ours {v.value}")
    elif kind == "flt":
        assert isinstance(v, FloatingValue)
        if "value" not in theirs or _f32(theirs["value"]) != _f32(v.value):
            out.append(f"float: tshark {theirs.get('value')}, ours {v.value}")
    elif kind == "bcr":
        want = (v.value, v.sequence, v.overflow, v.adjusted, v.invalid)
        got = tuple(theirs.get(k) for k in ("value", "seq", "cy", "ca", "iv"))
        if got != want:
            out.append(f"BCR: tshark {got}, ours {want}")
    elif kind == "command":
        got = (theirs.get("value"), theirs.get("qu"), theirs.get("select"))
        want = (bool(v) if isinstance(theirs.get("value"), bool) else int(v), ours.qualifier,
                ours.select)
        if got != want:
            out.append(f"command: tshark {got}, ours {want}")
    elif kind == "coi":
        got = (theirs.get("coi_r"), theirs.get("coi_i"), theirs.get("qualifier"))
        want = (v.cause, v.param_change, v.cause | (0x80 if v.param_change else 0))
        if got != want:
            out.append(f"COI: tshark {got}, ours {want}")
    elif kind == "qualifier":
        if theirs.get("qualifier") != ours.qualifier:
            out.append(f"qualifier: tshark {theirs.get('qualifier')}, ours {ours.qualifier}")
    elif kind == "qcc":
        got = (theirs.get("rqt"), theirs.get("frz"))
        if got != (ours.qualifier, int(v)):
            out.append(f"QCC: tshark {got}, ours {(ours.qualifier, v)}")
    # set-point S/E + QL, parameter QPM
    if kind in ("nva", "sva", "flt") and ours.select is not None:
        got = (theirs.get("ql"), theirs.get("select"))
        if got != (ours.qualifier, ours.select):
            out.append(f"QOS: tshark {got}, ours {(ours.qualifier, ours.select)}")
    qpm = kind in ("nva", "sva", "flt") and ours.select is None and ours.qualifier is not None
    if qpm and theirs.get("qualifier") != ours.qualifier:  # P_ME_*: QPM
        out.append(f"QPM: tshark {theirs.get('qualifier')}, ours {ours.qualifier}")
    if kind in ("nva", "sva", "flt") and ours.quality is not None:
        _quality(ours.quality, theirs, True, out)
    if ours.time is not None:
        _time(ours.time, theirs.get("time"), out)
    return out


def compare_asdu(asdu: ASDU, raw: bytes, apdu: dict[str, Any]) -> list[str]:
    """Differences between an ASDU we encoded (``raw``) and tshark's dissection of it."""
    out: list[str] = []
    header = {"type_id": int(asdu.type_id), "sq": asdu.sequence,
              "num_objects": len(asdu.objects), "cot": int(asdu.cause),
              "negative": asdu.negative, "test": asdu.test, "oa": asdu.originator,
              "ca": asdu.common_address, "malformed": False}
    for key, value in header.items():
        if apdu.get(key) != value:
            out.append(f"{key}: tshark {apdu.get(key)!r}, ours {value!r}")
    objects = apdu["objects"]
    type_id = TypeId(asdu.type_id)
    if type_id in TSHARK_RAW:
        first = asdu.objects[0]
        rest = raw[6 + DEFAULT.ioa_size:]
        if not objects or objects[0]["ioa"] != first.address:
            out.append(f"first IOA: tshark {objects[:1]}, ours {first.address}")
        elif objects[0].get("raw", b"") != rest:
            out.append(f"rawdata: tshark {objects[0].get('raw', b'').hex()}, ours {rest.hex()}")
        return out
    if len(objects) != len(asdu.objects):
        return out + [f"{len(objects)} objects in tshark, {len(asdu.objects)} in ours"]
    for i, (ours, theirs) in enumerate(zip(asdu.objects, objects)):
        out += [f"objects[{i}] {d}" for d in compare_object(KIND[type_id], ours, theirs)]
    return out


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
    assert compare_object("flt", obj, theirs) == []
    assert compare_object("flt", obj, {**theirs, "value": 1.25})
    assert compare_object("flt", obj, {**theirs, "ql": 4})
    assert compare_object("flt", obj, {**theirs, "ioa": 8})
    cp56 = Time.from_datetime(dt.datetime(2024, 2, 29, 13, 14, 15, 16000))
    timed = InformationObject(1, None, None, cp56)
    text = "Feb 29, 2024 13:14:15.016000000 UTC"
    good: dict[str, Any] = {"ioa": 1, "time": {"ms": 15016, "min": 14, "iv": False, "gen": False, "hour": 13,
                               "su": False, "day": 29, "dow": 4, "month": 2, "year": 24,
                               "text": text}}
    assert compare_object("time only", timed, good) == []
    assert compare_object("time only", timed, {**good, "time": {**good["time"], "dow": 5}})
    assert compare_object("time only", timed,
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
    from scapy.packet import Raw
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
        data = bytes(pkt[Raw].load) if Raw in pkt else b""
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
