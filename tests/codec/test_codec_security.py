"""Secure authentication ASDUs (IEC 62351-5 / 60870-5-7, ``iec104.codec.security``).

Wire examples are built field by field from the layout in the module docstring (what
Wireshark's packet-iec104.c reads); round trips run over every message type and profile;
every prefix of every example fails with ``DecodeError`` only; tshark (which names types 41
and 81-87 but shows their content as IOA + raw data in 4.0) sees the same header and the
same octets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iec104.codec import (
    ASDU,
    DEFAULT_PROFILE,
    AggressiveModeRequest,
    AuthenticationChallenge,
    AuthenticationErrorValue,
    AuthenticationReply,
    BinaryCounterValue,
    Cause,
    DecodeError,
    EncodeError,
    IFrame,
    InformationObject,
    KeyChange,
    KeyStatus,
    KeyStatusRequest,
    Profile,
    SecurityData,
    SecurityStatisticValue,
    SingleValue,
    Time,
    TimeSize,
    TypeId,
    decode_asdu,
    encode_apdu,
    encode_asdu,
)
from iec104.codec.security import NO_ADDRESS, OPAQUE, SEGMENTED
from tests.codec.test_codec_asdu import CODEC_SETTINGS, PROFILES, cp56, profile_id
from tests.support.pcapwriter import write_pcap
from tests.support.tshark import ensure_tshark, tshark_apdus

T = TypeId
ETM = Time(TimeSize.SEVEN, 1234, False, 5, False, 6, 1, 7, 12, 26)
# DUI of the examples: type, VSQ 1 object, COT 6 (activation), OA 0, CA 1
DUI = "{:02x}01060001 00"


def _asdu(type_id: TypeId, value: Any, time: Any = None, qualifier: Any = None,
          cause: Cause = Cause.ACTIVATION) -> ASDU:
    return ASDU(type_id, False, cause, False, False, 0, 1,
                (InformationObject(None, value, None, time, None, qualifier),))


INNER = bytes.fromhex("2d01060001 00 050000 01")  # C_SC_NA_1 IOA 5 ON execute, 1 object
WIRE: list[tuple[str, ASDU, str]] = [
    ("challenge", _asdu(T.S_CH_NA_1, AuthenticationChallenge(1, 2, 4, 1, b"\x01" * 4), None,
                        0xC0),
     "c0 01000000 0200 04 01 0400 01010101"),
    ("reply", _asdu(T.S_RP_NA_1, AuthenticationReply(1, 2, b"\x02" * 4), None, 0xC1),
     "c1 01000000 0200 0400 02020202"),
    ("aggressive", _asdu(T.S_AR_NA_1, AggressiveModeRequest(INNER, 7, 1, b"\x05" * 4), None,
                         0xC0),
     "c0 2d0106000100050000 01 07000000 0100 05050505"),
    ("key status request", _asdu(T.S_KR_NA_1, KeyStatusRequest(3)), "0300"),
    ("key status", _asdu(T.S_KS_NA_1, KeyStatus(5, 1, 2, 4, 4, b"abc", b"\x09" * 4), None,
                         0xC0),
     "c0 05000000 0100 02 04 04 0300 616263 09090909"),
    ("key change", _asdu(T.S_KC_NA_1, KeyChange(5, 1, b"k" * 3), None, 0xC0),
     "c0 05000000 0100 0300 6b6b6b"),
    ("error", _asdu(T.S_ER_NA_1, AuthenticationErrorValue(1, 1, 0, 1, "bad mac"), ETM, 0xC0),
     "c0 01000000 0100 0000 01 d2040506270c1a 0700 626164206d6163"),
    ("certificate (opaque)", _asdu(T.S_UC_NA_1, SecurityData(b"cert")), "63657274"),
    ("first segment", _asdu(T.S_CH_NA_1, SecurityData(b"\x01\x00"), None, 0x40), "40 0100"),
]


@pytest.mark.parametrize(("name", "asdu", "body"), WIRE, ids=[w[0] for w in WIRE])
def test_wire_examples(name: str, asdu: ASDU, body: str) -> None:
    raw = bytes.fromhex(DUI.format(int(asdu.type_id)) + body)
    assert encode_asdu(asdu) == raw
    decoded = decode_asdu(raw)
    assert decoded == asdu
    assert type(decoded.type_id) is TypeId and decoded.objects[0].address is None


@pytest.mark.parametrize(("name", "asdu", "body"), WIRE, ids=[w[0] for w in WIRE])
def test_every_prefix_fails_cleanly(name: str, asdu: ASDU, body: str) -> None:
    """Truncated anywhere: a DecodeError (never IndexError) or, where the message ends with
    an open-ended field (MAC, opaque data), a shorter message of the same type."""
    raw = bytes.fromhex(DUI.format(int(asdu.type_id)) + body)
    for n in range(len(raw)):
        try:
            decoded = decode_asdu(raw[:n])
        except DecodeError:
            continue
        assert n >= 6 and decoded.type_id == asdu.type_id  # type: ignore[union-attr]
        assert encode_asdu(decoded) == raw[:n]


def test_trailing_octets_are_refused() -> None:
    for name, asdu, body in WIRE:
        if asdu.type_id in (T.S_CH_NA_1, T.S_RP_NA_1, T.S_KR_NA_1, T.S_KC_NA_1, T.S_ER_NA_1) \
                and not isinstance(asdu.objects[0].value, SecurityData):
            raw = bytes.fromhex(DUI.format(int(asdu.type_id)) + body) + b"\x00"
            with pytest.raises(DecodeError, match="after the end"):
                decode_asdu(raw)


def test_one_object_without_address_is_required() -> None:
    raw = bytearray(encode_asdu(WIRE[0][1]))
    for vsq in (0x00, 0x02, 0x81):
        raw[1] = vsq
        with pytest.raises(DecodeError, match="one object without address"):
            decode_asdu(bytes(raw))
    asdu = WIRE[0][1]
    obj = asdu.objects[0]
    with pytest.raises(EncodeError, match="objects"):
        encode_asdu(asdu._replace(objects=(obj, obj)))
    with pytest.raises(EncodeError) as exc:
        encode_asdu(asdu._replace(objects=(obj._replace(address=3),)))
    assert exc.value.field == "objects[0].address"
    with pytest.raises(EncodeError) as exc:  # a whole message needs FIR and FIN
        encode_asdu(asdu._replace(objects=(obj._replace(qualifier=0x40),)))
    assert exc.value.field == "objects[0].qualifier"
    with pytest.raises(EncodeError) as exc:
        encode_asdu(asdu._replace(objects=(obj._replace(value=KeyChange(1, 1, b"")),)))
    assert exc.value.field == "objects[0].value"
    with pytest.raises(EncodeError) as exc:
        encode_asdu(_asdu(T.S_CH_NA_1, AuthenticationChallenge(2**32, 0, 0, 0, b""), None,
                          0xC0))
    assert exc.value.field == "objects[0].value.csq"
    with pytest.raises(EncodeError) as exc:
        encode_asdu(_asdu(T.S_KR_NA_1, KeyStatusRequest(1), ETM))
    assert exc.value.field == "objects[0].time"


def test_aggressive_mode_wraps_an_asdu_of_the_profile() -> None:
    profile = Profile(1, 1, 2)
    inner = encode_asdu(ASDU(T.C_SC_NA_1, False, Cause.ACTIVATION, False, False, 0, 9,
                             (InformationObject(300, SingleValue.ON, select=True,
                                                qualifier=0),)), profile)
    asdu = ASDU(T.S_AR_NA_1, False, Cause.ACTIVATION, False, False, 0, 9,
                (InformationObject(None, AggressiveModeRequest(inner, 1, 1, b"\xaa" * 16),
                                   None, None, None, 0xC0),))
    raw = encode_asdu(asdu, profile)
    assert decode_asdu(raw, profile) == asdu
    value = decode_asdu(raw, profile).objects[0].value  # type: ignore[union-attr]
    assert decode_asdu(value.asdu, profile).objects[0].address == 300  # type: ignore[union-attr]
    bad = bytearray(raw)
    bad[5] = 200  # the wrapped ASDU's type (after the identifier and the segmentation
    # octet): unknown, so its length is too
    with pytest.raises(DecodeError, match="length is unknown"):
        decode_asdu(bytes(bad), profile)


# -- round trips ----------------------------------------------------------------------------

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1)
octets = st.binary(max_size=40)
whole = st.integers(0, 0x3F).map(lambda asn: 0xC0 | asn)


def _inner(ioa: int, on: int, profile: Profile = DEFAULT_PROFILE) -> bytes:
    return encode_asdu(ASDU(T.C_SC_NA_1, False, Cause.ACTIVATION, False, False, 0, 1,
                            (InformationObject(ioa, SingleValue(on), select=False,
                                               qualifier=0),)), profile)


inner_asdus = st.builds(_inner, st.integers(0, 255), st.integers(0, 1))
MESSAGES: dict[TypeId, Any] = {
    T.S_CH_NA_1: st.tuples(st.builds(AuthenticationChallenge, u32, u16, u8, u8, octets),
                           st.none(), whole),
    T.S_RP_NA_1: st.tuples(st.builds(AuthenticationReply, u32, u16, octets), st.none(), whole),
    T.S_AR_NA_1: st.tuples(st.builds(AggressiveModeRequest, inner_asdus, u32, u16, octets),
                           st.none(), whole),
    T.S_KR_NA_1: st.tuples(st.builds(KeyStatusRequest, u16), st.none(), st.none()),
    T.S_KS_NA_1: st.tuples(st.builds(KeyStatus, u32, u16, u8, u8, u8, octets, octets),
                           st.none(), whole),
    T.S_KC_NA_1: st.tuples(st.builds(KeyChange, u32, u16, octets), st.none(), whole),
    T.S_ER_NA_1: st.tuples(st.builds(AuthenticationErrorValue, u32, u16, u16, u8,
                                     st.text(max_size=20)), cp56, whole),
    **{T(t): st.tuples(st.builds(SecurityData, octets), st.none(), st.none())
       for t in OPAQUE},
}


def test_every_message_type_has_a_strategy() -> None:
    assert set(MESSAGES) == NO_ADDRESS == SEGMENTED | OPAQUE | {T.S_KR_NA_1}


@pytest.mark.parametrize("type_id", sorted(MESSAGES), ids=lambda t: T(t).name)
@pytest.mark.parametrize("profile", PROFILES, ids=profile_id)
@settings(CODEC_SETTINGS, max_examples=15)
@given(data=st.data())
def test_roundtrip(type_id: TypeId, profile: Profile, data: st.DataObject) -> None:
    value, time, qualifier = data.draw(MESSAGES[type_id])
    if type_id == T.S_AR_NA_1:  # the wrapped ASDU has the profile's field sizes
        value = value._replace(asdu=_inner(data.draw(st.integers(0, 255)), 1, profile))
    asdu = ASDU(type_id, False, Cause.ACTIVATION, data.draw(st.booleans()), False, 0, 1,
                (InformationObject(None, value, None, time, None, qualifier),))
    raw = encode_asdu(asdu, profile)
    assert decode_asdu(raw, profile) == asdu
    if type_id in SEGMENTED:  # a segment of the same type keeps its octets
        segment = bytes(raw[:2 + profile.cot_size + profile.ca_size]) + bytes((0x80,)) + raw[-3:]
        decoded = decode_asdu(segment, profile)
        assert decoded.objects[0].value == SecurityData(raw[-3:])  # type: ignore[union-attr]
        assert encode_asdu(decoded, profile) == segment


@settings(CODEC_SETTINGS, max_examples=30)
@given(st.binary(max_size=60), st.sampled_from(sorted(NO_ADDRESS)))
def test_random_octets_never_crash(body: bytes, type_id: int) -> None:
    raw = bytes((type_id, 1, 6, 0, 1, 0)) + body
    try:
        asdu = decode_asdu(raw)
    except DecodeError:
        return
    assert encode_asdu(asdu) == raw


def test_security_statistics_have_an_address() -> None:
    asdu = ASDU(T.S_IT_TC_1, False, Cause.SPONTANEOUS, False, False, 0, 1, (
        InformationObject(7, SecurityStatisticValue(3, BinaryCounterValue(99, 1, False, False,
                                                                          True)), None, ETM),))
    raw = encode_asdu(asdu)
    assert raw.hex() == "290103000100" "070000" "0300" "63000000" "81" "d2040506270c1a"
    assert decode_asdu(raw) == asdu


# -- tshark ----------------------------------------------------------------------------------

def test_tshark_sees_the_same_messages(tmp_path: Path) -> None:
    """tshark 4.0 names types 41 and 81-87 and shows what follows the data unit identifier
    as a 3-octet 'IOA' plus raw data (its generic view): both must be our octets. Type 84
    (2 octets) is too short for that view, so tshark flags it malformed: only the header is
    compared. Type 88 is unknown to tshark."""
    ensure_tshark()
    items = [asdu for _, asdu, _ in WIRE]
    items.append(ASDU(T.S_IT_TC_1, False, Cause.SPONTANEOUS, False, False, 0, 1, (
        InformationObject(7, SecurityStatisticValue(3, BinaryCounterValue(99, 1, False, False,
                                                                          False)), None, ETM),)))
    raws = [encode_asdu(a) for a in items]
    path = write_pcap(tmp_path / "secure.pcap",
                      [("c2s", encode_apdu(IFrame(i, 0, raw))) for i, raw in enumerate(raws)],
                      seed=4)
    apdus = tshark_apdus(path)
    assert len(apdus) == len(items)
    compared = 0
    for asdu, raw, apdu in zip(items, raws, apdus):
        header = {"type_id": int(asdu.type_id), "num_objects": 1, "cot": int(asdu.cause),
                  "oa": 0, "ca": 1, "sq": False}
        assert {k: apdu.get(k) for k in header} == header, asdu.type_id
        if asdu.type_id == T.S_KR_NA_1:
            assert apdu["malformed"]
            continue
        expected_name = None if asdu.type_id == T.S_UC_NA_1 else asdu.type_id.name
        assert apdu["type_name"] == expected_name or expected_name is None
        body = raw[6:]
        (obj,) = apdu["objects"]
        assert obj["ioa"] == int.from_bytes(body[:3], "little"), asdu.type_id
        assert obj.get("raw", b"") == body[3:], asdu.type_id
        compared += 1
    assert compared == len(items) - 1
