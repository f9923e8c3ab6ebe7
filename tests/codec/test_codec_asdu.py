"""Property tests of the structural ASDU layer: every type ID, SQ=0/1, every profile.

Two directions are checked:

* ``decode_asdu(encode_asdu(x)) == x`` for ASDUs built from random field values
  (:func:`asdus`), for every standard type ID and all twelve profiles;
* ``encode_asdu(decode_asdu(b)) == b`` for random *valid* octets (:func:`asdu_octets`),
  built directly on the wire level: every header bit is random and every element octet is
  random with only its reserved bits forced to zero (``ELEMENT_MASKS``), so each bit the
  decoder keeps must come back from the encoder unchanged.

The strategies in this module are also used by the tshark oracle and the hat-drivers
interop tests (``test_codec_tshark.py``, ``test_codec_hat.py``).
"""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iec104 import codec
from iec104.codec import (
    ASDU,
    AckFileValue,
    BinaryCounterValue,
    BitstringValue,
    CallFileValue,
    Cause,
    DecodeError,
    DirectoryValue,
    DoubleValue,
    FileReadyValue,
    FloatingValue,
    FreezeCode,
    InformationObject,
    InitializationValue,
    LastSectionValue,
    NormalizedValue,
    Profile,
    ProtectionCommandValue,
    ProtectionQuality,
    ProtectionStartValue,
    ProtectionValue,
    Quality,
    QueryLogValue,
    RawASDU,
    RegulatingValue,
    ScaledValue,
    SectionReadyValue,
    SecurityStatisticValue,
    SegmentValue,
    SingleValue,
    StatusChangeValue,
    StepPositionValue,
    Time,
    TimeSize,
    TypeId,
    decode_asdu,
    encode_asdu,
)

T = TypeId

# Deterministic everywhere: same examples on every run and every machine (CI).
CODEC_SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])

PROFILES = tuple(Profile(c, a, i) for c in (1, 2) for a in (1, 2) for i in (1, 2, 3))
"""All twelve field-size profiles the standard allows (104 default: 2/2/3)."""

# every standard type whose objects have an address (the secure authentication messages,
# which have none, are tested in test_codec_security.py)
STANDARD_TYPES = tuple(t for t in TypeId if t not in codec.security.NO_ADDRESS)


def profile_id(profile: Profile) -> str:
    return f"cot{profile.cot_size}-ca{profile.ca_size}-ioa{profile.ioa_size}"


# -- field strategies -----------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u24 = st.integers(0, 0xFFFFFF)


def qds(overflow: bool = True) -> st.SearchStrategy[Quality]:
    """QDS (``overflow=True``) or the quality bits of SIQ/DIQ (no OV bit)."""
    b = st.booleans()
    return st.builds(Quality, b, b, b, b, b if overflow else st.just(False))


qdp = st.builds(ProtectionQuality, *[st.booleans()] * 5)

cp24 = st.builds(Time, st.just(TimeSize.THREE), u16, st.booleans(), st.integers(0, 63),
                 *[st.none()] * 6, reserved=st.integers(0, 1))
"""Any CP24Time2a the wire can carry (also out-of-calendar values such as minute 63)."""

cp56 = st.builds(Time, st.just(TimeSize.SEVEN), u16, st.booleans(), st.integers(0, 63),
                 st.booleans(), st.integers(0, 31), st.integers(0, 7), st.integers(0, 31),
                 st.integers(0, 15), st.integers(0, 127), reserved=u8)
"""Any CP56Time2a the wire can carry, reserved bits included."""

nva = st.integers(-32768, 32767).map(lambda raw: NormalizedValue(raw / 32768))
sva = st.integers(-32768, 32767).map(ScaledValue)
flt = st.floats(width=32, allow_nan=False).map(FloatingValue)
bsi = st.binary(min_size=4, max_size=4).map(BitstringValue)
vti = st.builds(StepPositionValue, st.integers(-64, 63), st.booleans())
bcr = st.builds(BinaryCounterValue, st.integers(-2**31, 2**31 - 1), st.integers(0, 31),
                st.booleans(), st.booleans(), st.booleans())
sep = st.builds(ProtectionValue, st.sampled_from(DoubleValue), u16)
spe = st.builds(ProtectionStartValue, *[st.booleans()] * 6, u16)
oci = st.builds(ProtectionCommandValue, *[st.booleans()] * 4, u16)
scd = st.builds(StatusChangeValue, u16, u16)
coi = st.builds(InitializationValue, st.integers(0, 127), st.booleans())
single = st.sampled_from(SingleValue)
double = st.sampled_from(DoubleValue)
regulating = st.sampled_from([0, RegulatingValue.LOWER, RegulatingValue.HIGHER, 3])
qu = st.integers(0, 31)
ql = st.integers(0, 127)


NONE = st.none()


def fields(value: Any = NONE, quality: Any = NONE, time: Any = NONE, select: Any = NONE,
           qualifier: Any = NONE) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword fields of an ``InformationObject`` (all but the address)."""
    return st.fixed_dictionaries({"value": value, "quality": quality, "time": time,
                                  "select": select, "qualifier": qualifier})


def _monitor(value: Any, quality: Any, time: Any = NONE) -> Any:
    return fields(value, quality, time)


def _command(value: Any, qualifier: Any, time: Any = NONE) -> Any:
    return fields(value, time=time, select=st.booleans(), qualifier=qualifier)


FIELDS: dict[TypeId, st.SearchStrategy[dict[str, Any]]] = {
    T.M_SP_NA_1: _monitor(single, qds(False)),
    T.M_SP_TA_1: _monitor(single, qds(False), cp24),
    T.M_SP_TB_1: _monitor(single, qds(False), cp56),
    T.M_DP_NA_1: _monitor(double, qds(False)),
    T.M_DP_TA_1: _monitor(double, qds(False), cp24),
    T.M_DP_TB_1: _monitor(double, qds(False), cp56),
    T.M_ST_NA_1: _monitor(vti, qds()),
    T.M_ST_TA_1: _monitor(vti, qds(), cp24),
    T.M_ST_TB_1: _monitor(vti, qds(), cp56),
    T.M_BO_NA_1: _monitor(bsi, qds()),
    T.M_BO_TA_1: _monitor(bsi, qds(), cp24),
    T.M_BO_TB_1: _monitor(bsi, qds(), cp56),
    T.M_ME_NA_1: _monitor(nva, qds()),
    T.M_ME_TA_1: _monitor(nva, qds(), cp24),
    T.M_ME_TD_1: _monitor(nva, qds(), cp56),
    T.M_ME_NB_1: _monitor(sva, qds()),
    T.M_ME_TB_1: _monitor(sva, qds(), cp24),
    T.M_ME_TE_1: _monitor(sva, qds(), cp56),
    T.M_ME_NC_1: _monitor(flt, qds()),
    T.M_ME_TC_1: _monitor(flt, qds(), cp24),
    T.M_ME_TF_1: _monitor(flt, qds(), cp56),
    T.M_IT_NA_1: _monitor(bcr, st.none()),
    T.M_IT_TA_1: _monitor(bcr, st.none(), cp24),
    T.M_IT_TB_1: _monitor(bcr, st.none(), cp56),
    T.M_EP_TA_1: _monitor(sep, qdp, cp24),
    T.M_EP_TD_1: _monitor(sep, qdp, cp56),
    T.M_EP_TB_1: _monitor(spe, qdp, cp24),
    T.M_EP_TE_1: _monitor(spe, qdp, cp56),
    T.M_EP_TC_1: _monitor(oci, qdp, cp24),
    T.M_EP_TF_1: _monitor(oci, qdp, cp56),
    T.M_PS_NA_1: _monitor(scd, qds()),
    T.S_IT_TC_1: fields(st.builds(SecurityStatisticValue, u16, bcr), time=cp56),
    T.M_ME_ND_1: _monitor(nva, st.none()),
    T.C_SC_NA_1: _command(single, qu),
    T.C_SC_TA_1: _command(single, qu, cp56),
    T.C_DC_NA_1: _command(double, qu),
    T.C_DC_TA_1: _command(double, qu, cp56),
    T.C_RC_NA_1: _command(regulating, qu),
    T.C_RC_TA_1: _command(regulating, qu, cp56),
    T.C_SE_NA_1: _command(nva, ql),
    T.C_SE_TA_1: _command(nva, ql, cp56),
    T.C_SE_NB_1: _command(sva, ql),
    T.C_SE_TB_1: _command(sva, ql, cp56),
    T.C_SE_NC_1: _command(flt, ql),
    T.C_SE_TC_1: _command(flt, ql, cp56),
    T.C_BO_NA_1: fields(bsi),
    T.C_BO_TA_1: fields(bsi, time=cp56),
    T.M_EI_NA_1: fields(coi),
    T.C_IC_NA_1: fields(qualifier=u8),
    T.C_CI_NA_1: fields(st.sampled_from(FreezeCode), qualifier=st.integers(0, 63)),
    T.C_RD_NA_1: fields(),
    T.C_CS_NA_1: fields(time=cp56),
    T.C_TS_NA_1: fields(u16),
    T.C_RP_NA_1: fields(qualifier=u8),
    T.C_CD_NA_1: fields(u16),
    T.C_TS_TA_1: fields(u16, time=cp56),
    T.P_ME_NA_1: fields(nva, qualifier=u8),
    T.P_ME_NB_1: fields(sva, qualifier=u8),
    T.P_ME_NC_1: fields(flt, qualifier=u8),
    T.P_AC_NA_1: fields(qualifier=u8),
    T.F_FR_NA_1: fields(st.builds(FileReadyValue, u16, u24), qualifier=u8),
    T.F_SR_NA_1: fields(st.builds(SectionReadyValue, u16, u8, u24), qualifier=u8),
    T.F_SC_NA_1: fields(st.builds(CallFileValue, u16, u8), qualifier=u8),
    T.F_LS_NA_1: fields(st.builds(LastSectionValue, u16, u8, u8), qualifier=u8),
    T.F_AF_NA_1: fields(st.builds(AckFileValue, u16, u8), qualifier=u8),
    T.F_SG_NA_1: fields(st.builds(SegmentValue, u16, u8, st.binary(max_size=32))),
    T.F_DR_TA_1: fields(st.builds(DirectoryValue, u16, u24, u8), time=cp56),
    T.F_SC_NB_1: fields(st.builds(QueryLogValue, u16, cp56, cp56)),
}


def test_every_standard_type_has_a_strategy() -> None:
    assert set(FIELDS) == set(STANDARD_TYPES) == set(codec.elements.ELEMENTS)
    assert set(STANDARD_TYPES) | codec.security.NO_ADDRESS == set(TypeId)


# -- ASDU strategies --------------------------------------------------------------------

def ioa_max(profile: Profile) -> int:
    return (1 << (8 * profile.ioa_size)) - 1


ANY_TYPE = st.sampled_from(STANDARD_TYPES)
ANY_PROFILE = st.sampled_from(PROFILES)
ANY_SQ = st.booleans()


@st.composite
def asdus(draw: st.DrawFn, type_ids: st.SearchStrategy[TypeId] = ANY_TYPE,
          profiles: st.SearchStrategy[Profile] = ANY_PROFILE,
          sequence: st.SearchStrategy[bool] = ANY_SQ, min_objects: int = 0,
          max_objects: int = 6, fields_for: dict[TypeId, Any] | None = None
          ) -> tuple[Profile, ASDU]:
    """A random ``(profile, ASDU)`` whose fields are all in range for that profile."""
    profile = draw(profiles)
    type_id = draw(type_ids)
    seq = draw(sequence)
    count = draw(st.integers(min_objects, max_objects))
    top = ioa_max(profile)
    if seq and count:
        base = draw(st.integers(0, top - count + 1))
        addresses = list(range(base, base + count))
    else:
        addresses = draw(st.lists(st.integers(0, top), min_size=count, max_size=count))
    strategy = (fields_for or FIELDS)[type_id]
    objects = tuple(InformationObject(a, **draw(strategy)) for a in addresses)
    cause = codec.to_cause(draw(st.integers(0, 63)))
    originator = draw(u8) if profile.cot_size == 2 else 0
    ca = draw(st.integers(0, 0xFF if profile.ca_size == 1 else 0xFFFF))
    return profile, ASDU(type_id, seq, cause, draw(st.booleans()), draw(st.booleans()),
                         originator, ca, objects)


# Element octet masks: 1 bits are decoded (and must survive decode -> encode), 0 bits are
# reserved by the standard and are generated as zero. ``F`` marks a float32 (4 octets).
F = "float"
_SIQ, _DIQ, _QDS = (0xF1,), (0xF3,), (0xF1,)
_CP24, _CP56 = (0xFF,) * 3, (0xFF,) * 7
_NVA_Q, _FLT_Q = (0xFF, 0xFF) + _QDS, (F,) + _QDS
_SEP, _SPE, _OCI = (0xFB, 0xFF, 0xFF), (0x3F, 0xF8, 0xFF, 0xFF), (0x0F, 0xF8, 0xFF, 0xFF)
_SCO, _DCO = (0xFD,), (0xFF,)
ELEMENT_MASKS: dict[int, tuple[Any, ...]] = {
    T.M_SP_NA_1: _SIQ, T.M_SP_TA_1: _SIQ + _CP24, T.M_SP_TB_1: _SIQ + _CP56,
    T.M_DP_NA_1: _DIQ, T.M_DP_TA_1: _DIQ + _CP24, T.M_DP_TB_1: _DIQ + _CP56,
    T.M_ST_NA_1: (0xFF,) + _QDS, T.M_ST_TA_1: (0xFF,) + _QDS + _CP24,
    T.M_ST_TB_1: (0xFF,) + _QDS + _CP56,
    T.M_BO_NA_1: (0xFF,) * 4 + _QDS, T.M_BO_TA_1: (0xFF,) * 4 + _QDS + _CP24,
    T.M_BO_TB_1: (0xFF,) * 4 + _QDS + _CP56,
    T.M_ME_NA_1: _NVA_Q, T.M_ME_TA_1: _NVA_Q + _CP24, T.M_ME_TD_1: _NVA_Q + _CP56,
    T.M_ME_NB_1: _NVA_Q, T.M_ME_TB_1: _NVA_Q + _CP24, T.M_ME_TE_1: _NVA_Q + _CP56,
    T.M_ME_NC_1: _FLT_Q, T.M_ME_TC_1: _FLT_Q + _CP24, T.M_ME_TF_1: _FLT_Q + _CP56,
    T.M_IT_NA_1: (0xFF,) * 5, T.M_IT_TA_1: (0xFF,) * 5 + _CP24,
    T.M_IT_TB_1: (0xFF,) * 5 + _CP56, T.S_IT_TC_1: (0xFF,) * 7 + _CP56,
    T.M_EP_TA_1: _SEP + _CP24, T.M_EP_TD_1: _SEP + _CP56,
    T.M_EP_TB_1: _SPE + _CP24, T.M_EP_TE_1: _SPE + _CP56,
    T.M_EP_TC_1: _OCI + _CP24, T.M_EP_TF_1: _OCI + _CP56,
    T.M_PS_NA_1: (0xFF,) * 4 + _QDS, T.M_ME_ND_1: (0xFF, 0xFF),
    T.C_SC_NA_1: _SCO, T.C_SC_TA_1: _SCO + _CP56,
    T.C_DC_NA_1: _DCO, T.C_DC_TA_1: _DCO + _CP56,
    T.C_RC_NA_1: _DCO, T.C_RC_TA_1: _DCO + _CP56,
    T.C_SE_NA_1: (0xFF,) * 3, T.C_SE_TA_1: (0xFF,) * 3 + _CP56,
    T.C_SE_NB_1: (0xFF,) * 3, T.C_SE_TB_1: (0xFF,) * 3 + _CP56,
    T.C_SE_NC_1: (F, 0xFF), T.C_SE_TC_1: (F, 0xFF) + _CP56,
    T.C_BO_NA_1: (0xFF,) * 4, T.C_BO_TA_1: (0xFF,) * 4 + _CP56,
    T.M_EI_NA_1: (0xFF,), T.C_IC_NA_1: (0xFF,), T.C_CI_NA_1: (0xFF,), T.C_RD_NA_1: (),
    T.C_CS_NA_1: _CP56, T.C_TS_NA_1: (0xFF,) * 2, T.C_RP_NA_1: (0xFF,),
    T.C_CD_NA_1: (0xFF,) * 2, T.C_TS_TA_1: (0xFF,) * 2 + _CP56,
    T.P_ME_NA_1: (0xFF,) * 3, T.P_ME_NB_1: (0xFF,) * 3, T.P_ME_NC_1: (F, 0xFF),
    T.P_AC_NA_1: (0xFF,),
    T.F_FR_NA_1: (0xFF,) * 6, T.F_SR_NA_1: (0xFF,) * 7, T.F_SC_NA_1: (0xFF,) * 4,
    T.F_LS_NA_1: (0xFF,) * 5, T.F_AF_NA_1: (0xFF,) * 4,
    T.F_DR_TA_1: (0xFF,) * 6 + _CP56, T.F_SC_NB_1: (0xFF,) * 2 + _CP56 + _CP56,
}
"""Every fixed-size standard type; F_SG_NA_1 (variable size) is built separately."""


def element_size(type_id: TypeId) -> int:
    return sum(4 if m == F else 1 for m in ELEMENT_MASKS[type_id])


def quiet(raw: bytes) -> bytes:
    """Make a signalling-NaN float32 quiet (see ``test_float_nan_octets``)."""
    (bits,) = struct.unpack("<I", raw)
    if bits & 0x7F800000 == 0x7F800000 and bits & 0x007FFFFF and not bits & 0x00400000:
        bits |= 0x00400000
    return struct.pack("<I", bits)


@st.composite
def element_octets(draw: st.DrawFn, type_id: int) -> bytes:
    """Random valid octets of one information element (without the address)."""
    if type_id == T.F_SG_NA_1:
        data = draw(st.binary(max_size=40))
        return draw(st.binary(min_size=3, max_size=3)) + bytes((len(data),)) + data
    out = bytearray()
    for mask in ELEMENT_MASKS[type_id]:
        if mask == F:
            out += quiet(draw(st.binary(min_size=4, max_size=4)))
        else:
            out.append(draw(u8) & mask)
    return bytes(out)


@st.composite
def asdu_octets(draw: st.DrawFn, type_ids: st.SearchStrategy[TypeId] | st.SearchStrategy[int]
                = ANY_TYPE, profiles: st.SearchStrategy[Profile] = ANY_PROFILE,
                max_objects: int = 6) -> tuple[Profile, bytes]:
    """Random valid ASDU octets: any header bits, valid elements (see module docstring)."""
    profile = draw(profiles)
    type_id = draw(type_ids)
    count = draw(st.integers(0, max_objects))
    seq = draw(st.booleans())
    out = bytearray((type_id, count | (0x80 if seq else 0)))
    out += draw(st.binary(min_size=profile.cot_size, max_size=profile.cot_size))
    out += draw(st.binary(min_size=profile.ca_size, max_size=profile.ca_size))
    size = profile.ioa_size
    if type_id not in FIELDS:  # private/unknown type: any payload
        out += draw(st.binary(max_size=40))
        return profile, bytes(out)
    if seq and count:
        base = draw(st.integers(0, ioa_max(profile) - count + 1))
        out += base.to_bytes(size, "little")
        for _ in range(count):
            out += draw(element_octets(type_id))
    else:
        for _ in range(count):
            out += draw(st.binary(min_size=size, max_size=size))
            out += draw(element_octets(type_id))
    return profile, bytes(out)


def random_asdu_octets(rng: random.Random, profile: Profile, type_id: int | None = None,
                       count: int | None = None, sequence: bool | None = None) -> bytes:
    """Seeded counterpart of :func:`asdu_octets` for loops and fixed-seed oracle tests.

    Every header bit and every non-reserved element bit is random (floats never
    signalling NaN); unspecified type ID, count and SQ are chosen at random.
    """
    if type_id is None:
        type_id = rng.choice(STANDARD_TYPES)
    if count is None:
        count = rng.choice((0, 1, 1, 2, 3, 5, 8))
    seq = rng.random() < 0.5 if sequence is None else sequence
    out = bytearray((type_id, count | (0x80 if seq else 0)))
    out += rng.randbytes(profile.cot_size + profile.ca_size)
    if seq and count:
        base = rng.randint(0, ioa_max(profile) - count + 1)
        out += base.to_bytes(profile.ioa_size, "little")
    for _ in range(count):
        if not seq:
            out += rng.randbytes(profile.ioa_size)
        if type_id == T.F_SG_NA_1:
            data = rng.randbytes(rng.randint(0, 12))
            out += rng.randbytes(3) + bytes((len(data),)) + data
            continue
        for mask in ELEMENT_MASKS[type_id]:
            out += quiet(rng.randbytes(4)) if mask == F else bytes((rng.getrandbits(8) & mask,))
    return bytes(out)


# -- the properties ---------------------------------------------------------------------

def assert_types(asdu: ASDU) -> None:
    """Decoded codes are enums when standard (plain ints only for unknown codes)."""
    assert type(asdu.type_id) is TypeId
    assert isinstance(asdu.cause, Cause) or asdu.cause not in set(Cause)
    for obj in asdu.objects:
        assert type(obj.address) is int


@pytest.mark.parametrize("type_id", STANDARD_TYPES, ids=lambda t: t.name)
@settings(CODEC_SETTINGS, max_examples=15)
@given(data=st.data())
def test_decode_encode_roundtrip(type_id: TypeId, data: st.DataObject) -> None:
    profile, asdu = data.draw(asdus(st.just(type_id), max_objects=4))
    raw = encode_asdu(asdu, profile)
    decoded = decode_asdu(raw, profile)
    assert decoded == asdu
    assert_types(decoded)  # type: ignore[arg-type]
    # and the octets are a fixed point
    assert encode_asdu(decoded, profile) == raw


@pytest.mark.parametrize("type_id", STANDARD_TYPES, ids=lambda t: t.name)
@settings(CODEC_SETTINGS, max_examples=15)
@given(data=st.data())
def test_encode_decode_octets(type_id: TypeId, data: st.DataObject) -> None:
    profile, raw = data.draw(asdu_octets(st.just(type_id), max_objects=4))
    decoded = decode_asdu(raw, profile)
    assert isinstance(decoded, ASDU)
    assert encode_asdu(decoded, profile) == raw
    # memoryview and bytearray input decode the same (compared as octets: NaN != NaN)
    assert encode_asdu(decode_asdu(memoryview(raw), profile), profile) == raw
    assert encode_asdu(decode_asdu(bytearray(raw), profile), profile) == raw


@pytest.mark.parametrize("profile", PROFILES, ids=profile_id)
@settings(CODEC_SETTINGS, max_examples=25)
@given(data=st.data())
def test_roundtrip_per_profile(profile: Profile, data: st.DataObject) -> None:
    """Every profile gets many examples of random type IDs, also near 127 objects."""
    _, asdu = data.draw(asdus(profiles=st.just(profile), max_objects=16))
    raw = encode_asdu(asdu, profile)
    header_size = 2 + profile.cot_size + profile.ca_size
    assert raw[0] == asdu.type_id and raw[1] & 0x7F == len(asdu.objects)
    assert bool(raw[1] & 0x80) == asdu.sequence
    assert len(raw) >= header_size
    assert decode_asdu(raw, profile) == asdu
    _, raw2 = data.draw(asdu_octets(profiles=st.just(profile), max_objects=16))
    assert encode_asdu(decode_asdu(raw2, profile), profile) == raw2


@CODEC_SETTINGS
@given(data=st.data())
def test_unknown_type_ids_keep_their_octets(data: st.DataObject) -> None:
    unknown = [t for t in range(256) if t not in set(TypeId._value2member_map_)]
    profile, raw = data.draw(asdu_octets(st.sampled_from(unknown)))
    decoded = decode_asdu(raw, profile)
    assert isinstance(decoded, RawASDU)
    assert type(decoded.type_id) is int and decoded.type_id == raw[0]
    assert decoded.num_objects == raw[1] & 0x7F
    assert encode_asdu(decoded, profile) == raw


@settings(CODEC_SETTINGS, max_examples=20)
@given(st.sampled_from(PROFILES), st.sampled_from([T.M_SP_NA_1, T.C_IC_NA_1, T.C_RD_NA_1]))
def test_full_sequence_of_127_objects(profile: Profile, type_id: TypeId) -> None:
    """The VSQ count is 7 bits: 127 objects at consecutive addresses end at ioa_max."""
    top = ioa_max(profile)
    extra: dict[str, Any] = ({"value": SingleValue.ON, "quality": Quality()}
                             if type_id == T.M_SP_NA_1 else
                             {"qualifier": 20} if type_id == T.C_IC_NA_1 else {})
    objects = tuple(InformationObject(top - 126 + i, **extra) for i in range(127))
    asdu = ASDU(type_id, True, Cause.INTERROGATED_STATION, False, False, 0, 1, objects)
    raw = encode_asdu(asdu, profile)
    assert raw[1] == 0x80 | 127
    assert decode_asdu(raw, profile) == asdu


def test_float_nan_octets() -> None:
    """Quiet NaNs keep their octets; signalling NaNs come back quiet.

    ``FloatingValue`` holds a Python float, and CPython (3.11) converts a float32
    signalling NaN to a quiet one on the way in or out, so the quiet bit is set on
    re-encoding. This is the one bit pattern where encode(decode(b)) != b.
    """
    header = bytes((T.M_ME_NC_1, 1, 3, 0, 1, 0, 1, 0, 0))
    for nan in ("0000c07f", "0100c0ff", "ffffff7f"):
        raw = header + bytes.fromhex(nan) + b"\x00"
        obj = decode_asdu(raw).objects[0]  # type: ignore[union-attr]
        assert isinstance(obj.value, FloatingValue) and math.isnan(obj.value.value)
        assert encode_asdu(decode_asdu(raw)) == raw
    signalling = header + bytes.fromhex("0100807f") + b"\x00"
    assert encode_asdu(decode_asdu(signalling)) == header + bytes.fromhex("0100c07f") + b"\x00"


# -- decoding checks the structure -------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES, ids=profile_id)
@settings(CODEC_SETTINGS, max_examples=20)
@given(data=st.data())
def test_truncated_or_extended_asdu_is_a_decode_error(profile: Profile,
                                                      data: st.DataObject) -> None:
    """Every proper prefix of an ASDU with objects, and any octet appended, is rejected."""
    _, raw = data.draw(asdu_octets(profiles=st.just(profile)))
    decoded = decode_asdu(raw, profile)
    count = raw[1] & 0x7F
    if isinstance(decoded, ASDU) and count:
        cut = data.draw(st.integers(0, len(raw) - 1))
        with pytest.raises(DecodeError) as err:
            decode_asdu(raw[:cut], profile)
        assert 0 <= err.value.offset <= cut
        with pytest.raises(DecodeError) as err:
            decode_asdu(raw + data.draw(st.binary(min_size=1, max_size=4)), profile)
        assert err.value.offset == len(raw)


def test_decode_error_offsets() -> None:
    raw = bytes((T.M_ME_NC_1, 2, 3, 0, 1, 0)) + bytes(3 + 5) + bytes(3 + 2)
    with pytest.raises(DecodeError) as err:
        decode_asdu(raw)
    assert err.value.offset == 6 + 8  # start of the second (truncated) object
    with pytest.raises(DecodeError) as err:
        decode_asdu(bytes((1, 1, 3)))
    assert err.value.offset == 3 and "identifier" in err.value.reason


def test_sq1_addresses_beyond_the_profile_are_a_decode_error() -> None:
    """SQ=1 with base address + count - 1 past the IOA range cannot be re-encoded."""
    profile = Profile(2, 2, 1)
    ok = bytes((T.M_SP_NA_1, 0x82, 3, 0, 1, 0, 0xFE, 1, 0))
    assert [o.address for o in decode_asdu(ok, profile).objects] == [254, 255]  # type: ignore[union-attr]
    bad = bytes((T.M_SP_NA_1, 0x82, 3, 0, 1, 0, 0xFF, 1, 0))
    with pytest.raises(DecodeError, match="address"):
        decode_asdu(bad, profile)


def test_decoded_field_types() -> None:
    """Values decode to the documented classes (hat-compatible names)."""
    raw = bytes((T.M_DP_NA_1, 1, 0x43, 7, 0x34, 0x12, 1, 2, 3, 0x82))
    asdu = decode_asdu(raw)
    assert asdu == ASDU(T.M_DP_NA_1, False, 3, True, False, 7, 0x1234, (
        InformationObject(0x030201, DoubleValue.ON, Quality(invalid=True)),))
    assert type(asdu.cause) is Cause and asdu.cause == Cause.SPONTANEOUS  # type: ignore[union-attr]
    obj = asdu.objects[0]  # type: ignore[union-attr]
    assert type(obj.value) is DoubleValue and type(obj.quality) is Quality
    unknown_cause = decode_asdu(bytes((T.C_IC_NA_1, 1, 63, 0, 1, 0, 0, 0, 0, 20)))
    assert type(unknown_cause.cause) is int and unknown_cause.cause == 63


def test_normalized_value_resolution() -> None:
    """NVA is raw / 2**15: -1.0 .. 1 - 2**-15, and the encoder rounds to the nearest step."""
    def enc(value: float) -> bytes:
        return encode_asdu(ASDU(T.M_ME_ND_1, False, 3, False, False, 0, 1,
                                (InformationObject(1, NormalizedValue(value)),)))[-2:]
    assert enc(-1.0) == b"\x00\x80"
    assert enc(1 - 2**-15) == b"\xff\x7f"
    assert enc(0.5) == b"\x00\x40"
    assert enc(1 - 2**-17) == b"\xff\x7f"  # rounds up to 2**15, clamped to the largest step
    assert enc(2**-16 * 3) == b"\x02\x00"  # 1.5 steps rounds to even
