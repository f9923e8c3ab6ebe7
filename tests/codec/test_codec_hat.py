"""Byte-level interop with hat-drivers' ASDU encoders (``hat.drivers.iec60870.encodings``).

For every type ID hat supports (66 of our 67; hat has no F_SC_NB_1), random ASDUs from
``test_codec_asdu.asdus`` are converted to hat's model (:func:`to_hat`) and checked both
ways:

* hat encodes -> the octets equal ours, and we decode them to the original values;
* we encode -> hat decodes them to exactly ``to_hat`` of the original.

hat's iec104 encoder (COT 2, CA 2, IOA 3) is used for the types it supports; hat's iec101
encoder, which takes the field sizes, for all twelve profiles (it also carries the CP24
types, C_TS_NA_1 and C_CD_NA_1 that hat's 104 encoder leaves out).

Where hat's model is narrower than the wire, the drawn values are restricted first
(:func:`restrict_to_hat`, one line per limitation); those and two real disagreements
(normalized value scaling, SQ=1 with time tags) are spelled out in the tests at the end.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hat.drivers.iec60870.encodings import common as hat_common  # type: ignore[import-untyped]
from hat.drivers.iec60870.encodings import iec101 as h101
from hat.drivers.iec60870.encodings import iec104 as h104
from hypothesis import given, settings
from hypothesis import strategies as st

from iec104.codec import (
    ASDU,
    DoubleValue,
    FloatingValue,
    InformationObject,
    NormalizedValue,
    Profile,
    Quality,
    RegulatingValue,
    SingleValue,
    Time,
    TimeSize,
    TypeId,
    decode_asdu,
    encode_asdu,
)
from tests.codec.test_codec_asdu import CODEC_SETTINGS, PROFILES, STANDARD_TYPES, asdus, profile_id

T = TypeId
DEFAULT = Profile()

HAT104_TYPES = frozenset(t.value for t in h104.AsduType)
HAT101_TYPES = frozenset(t.value for t in h101.AsduType)
HAT_TYPES = tuple(t for t in STANDARD_TYPES if t in HAT104_TYPES | HAT101_TYPES)
TIME_TYPES = frozenset(t for t in STANDARD_TYPES if t.name.split("_")[2].startswith("T")
                      and t != T.F_DR_TA_1)  # its time tag is inside hat's element
"""Types whose objects end in a time tag (``IO.time`` in hat's model)."""


def test_which_types_hat_supports() -> None:
    # hat-drivers has neither the archive query nor IEC 62351-5 security statistics
    assert set(STANDARD_TYPES) - set(HAT_TYPES) == {T.F_SC_NB_1, T.S_IT_TC_1}
    assert len(HAT_TYPES) == 66
    only101 = {TypeId(t) for t in HAT101_TYPES - HAT104_TYPES}
    assert only101 == {T.M_SP_TA_1, T.M_DP_TA_1, T.M_ST_TA_1, T.M_BO_TA_1, T.M_ME_TA_1,
                       T.M_ME_TB_1, T.M_ME_TC_1, T.M_IT_TA_1, T.M_EP_TA_1, T.M_EP_TB_1,
                       T.M_EP_TC_1, T.C_TS_NA_1, T.C_CD_NA_1}
    assert {TypeId(t) for t in HAT104_TYPES - HAT101_TYPES} == {
        T.C_SC_TA_1, T.C_DC_TA_1, T.C_RC_TA_1, T.C_SE_TA_1, T.C_SE_TB_1, T.C_SE_TC_1,
        T.C_BO_TA_1, T.C_TS_TA_1}


# -- our model -> hat's model -----------------------------------------------------------------

def hat_time(time: Time) -> hat_common.Time:
    """hat's Time has the IV bit and RES1 (as ``substituted``), no other reserved bits."""
    size = hat_common.TimeSize(int(time.size))
    return hat_common.Time(size, time.milliseconds, time.invalid, bool(time.reserved & 1),
                           time.minutes, time.summer_time, time.hours, time.day_of_week,
                           time.day_of_month, time.months, time.years)


def _nva(value: NormalizedValue) -> Any:
    # same raw int16 on the wire; hat scales it by 1/0x7FFF (see test_normalized_scaling)
    return h101.NormalizedValue(round(value.value * 32768) / 0x7FFF)


def _quality(q: Quality, kind: str) -> Any:
    if kind == "indication":
        return h101.IndicationQuality(q.invalid, q.not_topical, q.substituted, q.blocked)
    return h101.MeasurementQuality(q.invalid, q.not_topical, q.substituted, q.blocked,
                                   q.overflow)


def _pq(q: Any) -> Any:
    return h101.ProtectionQuality(q.invalid, q.not_topical, q.substituted, q.blocked,
                                  q.time_invalid)


def hat_element(type_id: TypeId, obj: InformationObject) -> Any:
    """hat's IoElement for one of our objects."""
    name = "IoElement_" + type_id.name[:-2]
    cls = getattr(h104, name, None) or getattr(h101, name)
    v: Any = obj.value
    group = type_id.name[:4]
    if group in ("M_SP", "M_DP"):
        wrap = h101.SingleValue if group == "M_SP" else h101.DoubleValue
        return cls(wrap(int(v)), _quality(obj.quality, "indication"))  # type: ignore[arg-type]
    if group == "M_ST":
        return cls(h101.StepPositionValue(v.value, v.transient),
                   _quality(obj.quality, "measurement"))  # type: ignore[arg-type]
    if group == "M_BO":
        return cls(h101.BitstringValue(v.value), _quality(obj.quality, "measurement"))  # type: ignore[arg-type]
    if group == "M_ME" and type_id != T.M_ME_ND_1:
        value = (_nva(v) if isinstance(v, NormalizedValue) else
                 h101.FloatingValue(v.value) if isinstance(v, FloatingValue) else
                 h101.ScaledValue(v.value))
        return cls(value, _quality(obj.quality, "measurement"))  # type: ignore[arg-type]
    if type_id == T.M_ME_ND_1:
        return cls(_nva(v))
    if group == "M_IT":
        return cls(h101.BinaryCounterValue(v.value),
                   h101.CounterQuality(v.invalid, v.adjusted, v.overflow, v.sequence))
    if type_id in (T.M_EP_TA_1, T.M_EP_TD_1):
        return cls(h101.ProtectionValue(int(v.state)), _pq(obj.quality), v.elapsed_time)
    if type_id in (T.M_EP_TB_1, T.M_EP_TE_1):
        return cls(h101.ProtectionStartValue(v.general, v.l1, v.l2, v.l3, v.ie, v.reverse),
                   _pq(obj.quality), v.duration_time)
    if type_id in (T.M_EP_TC_1, T.M_EP_TF_1):
        return cls(h101.ProtectionCommandValue(v.general, v.l1, v.l2, v.l3), _pq(obj.quality),
                   v.operating_time)
    if type_id == T.M_PS_NA_1:
        bits = [[bool(word >> i & 1) for i in range(16)] for word in (v.status, v.change)]
        return cls(h101.StatusValue(*bits), _quality(obj.quality, "measurement"))  # type: ignore[arg-type]
    if group in ("C_SC", "C_DC", "C_RC"):
        wrap = {"C_SC": h101.SingleValue, "C_DC": h101.DoubleValue,
                "C_RC": h101.RegulatingValue}[group]
        return cls(wrap(int(v)), obj.select, obj.qualifier)
    if group == "C_SE":
        value = (_nva(v) if isinstance(v, NormalizedValue) else
                 h101.FloatingValue(v.value) if isinstance(v, FloatingValue) else
                 h101.ScaledValue(v.value))
        return cls(value, obj.select)
    if group == "C_BO":
        return cls(h101.BitstringValue(v.value))
    if type_id == T.M_EI_NA_1:
        return cls(v.param_change, v.cause)
    if type_id in (T.C_IC_NA_1, T.C_RP_NA_1, T.P_AC_NA_1):
        return cls(obj.qualifier)
    if type_id == T.C_CI_NA_1:
        return cls(obj.qualifier, h101.FreezeCode(int(v)))
    if type_id in (T.C_RD_NA_1, T.C_TS_NA_1):
        return cls()
    if type_id == T.C_CS_NA_1:
        return cls(hat_time(obj.time))  # type: ignore[arg-type]
    if type_id == T.C_CD_NA_1:
        return cls(v)
    if type_id == T.C_TS_TA_1:
        return cls(v)
    if group == "P_ME":
        value = (_nva(v) if isinstance(v, NormalizedValue) else
                 h101.FloatingValue(v.value) if isinstance(v, FloatingValue) else
                 h101.ScaledValue(v.value))
        return cls(value, obj.qualifier)
    if type_id == T.F_FR_NA_1:
        return cls(v.file_name, v.length, bool(obj.qualifier & 0x80))  # type: ignore[operator]
    if type_id == T.F_SR_NA_1:
        return cls(v.file_name, v.section, v.length, bool(obj.qualifier & 0x80))  # type: ignore[operator]
    if type_id in (T.F_SC_NA_1, T.F_AF_NA_1):
        return cls(v.file_name, v.section, obj.qualifier)
    if type_id == T.F_LS_NA_1:
        return cls(v.file_name, v.section, obj.qualifier, v.checksum)
    if type_id == T.F_SG_NA_1:
        return cls(v.file_name, v.section, v.data)
    if type_id == T.F_DR_TA_1:
        return cls(v.file_name, v.length, bool(v.status & 0x20), bool(v.status & 0x40),
                   bool(v.status & 0x80), hat_time(obj.time))  # type: ignore[arg-type]
    raise AssertionError(f"no hat mapping for {type_id.name}")


def hat_cause(asdu: ASDU) -> Any:
    try:
        cause_type: Any = h101.CauseType(int(asdu.cause))
    except ValueError:
        cause_type = int(asdu.cause)
    return h101.Cause(cause_type, asdu.negative, asdu.test, asdu.originator)


def to_hat(asdu: ASDU, module: Any) -> Any:
    """hat's ASDU (of ``module``: h101 or h104) for one of ours."""
    type_id = TypeId(asdu.type_id)
    timed = type_id in TIME_TYPES
    if asdu.sequence:
        assert not timed and len(asdu.objects) > 1  # see the tests at the end
        ios = [module.IO(asdu.objects[0].address,
                         [hat_element(type_id, o) for o in asdu.objects], None)]
    else:
        ios = [module.IO(o.address, [hat_element(type_id, o)],
                         hat_time(o.time) if timed else None)  # type: ignore[arg-type]
               for o in asdu.objects]
    return module.ASDU(module.AsduType(int(type_id)), hat_cause(asdu), asdu.common_address,
                       ios)


def restrict_to_hat(asdu: ASDU) -> ASDU:
    """Map drawn values that hat's model cannot hold onto ones it can (see module doc)."""
    type_id = TypeId(asdu.type_id)
    objects = []
    for obj in asdu.objects:
        v: Any = obj.value
        change: dict[str, Any] = {}
        if obj.time is not None:  # hat keeps RES1 (as 'substituted') only
            change["time"] = obj.time._replace(reserved=obj.time.reserved & 1)
        if type_id in (T.M_EP_TA_1, T.M_EP_TD_1):  # ProtectionValue is OFF/ON only
            change["value"] = v._replace(state=DoubleValue.ON if v.state & 2 else DoubleValue.OFF)
        elif type_id in (T.C_RC_NA_1, T.C_RC_TA_1):  # RegulatingValue is LOWER/HIGHER only
            change["value"] = RegulatingValue.HIGHER if v & 2 else RegulatingValue.LOWER
        elif type_id.name.startswith("C_SE"):  # no QL in hat's set-point elements
            change["qualifier"] = 0
        elif type_id == T.C_TS_NA_1:  # hat always sends the fixed test pattern 0x55AA
            change["value"] = 0x55AA
        elif type_id in (T.F_FR_NA_1, T.F_SR_NA_1):  # FRQ/SRQ: only the ready bit
            change["qualifier"] = obj.qualifier & 0x80  # type: ignore[operator]
        elif type_id == T.F_DR_TA_1:  # SOF: only the three flags, not STATUS
            change["value"] = v._replace(status=v.status & 0xE0)
        objects.append(obj._replace(**change))
    seq = asdu.sequence and len(objects) > 1 and type_id not in TIME_TYPES
    return asdu._replace(sequence=seq, objects=tuple(objects))


# -- the interop tests ------------------------------------------------------------------------

def hat101(profile: Profile) -> Any:
    return h101.Encoder(hat_common.CauseSize(profile.cot_size),
                        hat_common.AsduAddressSize(profile.ca_size),
                        hat_common.IoAddressSize(profile.ioa_size))


def check_both_ways(asdu: ASDU, profile: Profile, encoder: Any, module: Any) -> None:
    ours = encode_asdu(asdu, profile)
    theirs_model = to_hat(asdu, module)
    theirs = bytes(encoder.encode_asdu(theirs_model))
    # hat encodes -> same octets, and we decode the values we started from
    assert theirs.hex() == ours.hex()
    back = decode_asdu(theirs, profile)
    assert encode_asdu(back, profile) == ours  # octets: NaN-safe
    if not any(isinstance(o.value, FloatingValue) and o.value.value != o.value.value
               for o in asdu.objects):
        assert back == asdu
    # we encode -> hat decodes to the same model
    decoded, rest = encoder.decode_asdu(ours)
    assert bytes(rest) == b""
    assert _nan_safe(decoded) == _nan_safe(theirs_model)


def _nan_safe(value: Any) -> Any:
    """hat's ASDU with floats replaced by their float32 octets (NaN != NaN)."""
    if isinstance(value, float):
        return struct.pack("<f", value)
    if isinstance(value, (list, tuple)):
        items = [_nan_safe(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


@pytest.mark.parametrize("type_id", HAT_TYPES, ids=lambda t: t.name)
@settings(CODEC_SETTINGS, max_examples=10)
@given(data=st.data())
def test_hat_interop(type_id: TypeId, data: st.DataObject) -> None:
    if type_id in HAT104_TYPES:
        _, asdu = data.draw(asdus(st.just(type_id), st.just(DEFAULT), min_objects=1,
                                  max_objects=5))
        check_both_ways(restrict_to_hat(asdu), DEFAULT, h104.Encoder(), h104)
    if type_id in HAT101_TYPES:
        profile, asdu = data.draw(asdus(st.just(type_id), min_objects=1, max_objects=5))
        check_both_ways(restrict_to_hat(asdu), profile, hat101(profile), h101)


@pytest.mark.parametrize("profile", PROFILES, ids=profile_id)
def test_hat_interop_all_profiles_sq1(profile: Profile) -> None:
    """A fixed SQ=1 interrogation reply in every profile, through hat's iec101 encoder."""
    top = (1 << 8 * profile.ioa_size) - 1
    objects = tuple(InformationObject(top - 9 + i, SingleValue(i % 2), Quality(invalid=i == 3))
                    for i in range(10))
    asdu = ASDU(T.M_SP_NA_1, True, 20, False, True, 0 if profile.cot_size == 1 else 77,
                0xFF if profile.ca_size == 1 else 0xFFFF, objects)
    check_both_ways(asdu, profile, hat101(profile), h101)


# -- where hat and we disagree -----------------------------------------------------------------

def test_normalized_scaling() -> None:
    """Same octets, different numbers: hat reads NVA as raw / 0x7FFF, we as raw / 2**15.

    IEC 60870-5-4 defines NVA as a 16-bit fixed-point fraction (resolution 2**-15,
    range -1 .. 1 - 2**-15); tshark also shows raw / 32768. With hat, 0x7FFF reads as
    1.0 and 0x8000 as -1.00003.
    """
    header = bytes((T.M_ME_ND_1, 1, 3, 0, 1, 0, 1, 0, 0))
    for raw, ours, theirs in ((0x4000, 0.5, 16384 / 32767), (0x7FFF, 32767 / 32768, 1.0),
                              (-0x8000, -1.0, -32768 / 32767)):
        octets = header + struct.pack("<h", raw)
        assert decode_asdu(octets).objects[0].value == NormalizedValue(ours)  # type: ignore[union-attr]
        decoded, _ = h104.Encoder().decode_asdu(octets)
        assert decoded.ios[0].elements[0].value == h104.NormalizedValue(theirs)
    # and encoding rounds value * 0x7FFF: 0.9 -> 29490 (hat), 29491 (us)
    hat_09 = h104.Encoder().encode_asdu(h104.ASDU(
        h104.AsduType.M_ME_ND, h104.Cause(h104.CauseType.SPONTANEOUS, False, False, 0), 1,
        [h104.IO(1, [h104.IoElement_M_ME_ND(h104.NormalizedValue(0.9))], None)]))
    assert struct.unpack("<h", bytes(hat_09)[-2:])[0] == 29490
    assert struct.unpack("<h", encode_asdu(ASDU(T.M_ME_ND_1, False, 3, False, False, 0, 1, (
        InformationObject(1, NormalizedValue(0.9)),)))[-2:])[0] == 29491


def test_sq1_with_time_tags_layout_differs() -> None:
    """SQ=1 for a time-tagged type: we (like lib60870 and tshark) put a time tag after
    every element; hat puts all elements first and one time tag at the end."""
    t1 = Time(TimeSize.SEVEN, 1000, False, 1, False, 2, 3, 4, 5, 24)
    t2 = t1._replace(milliseconds=2000)
    asdu = ASDU(T.M_SP_TB_1, True, 3, False, False, 0, 1, (
        InformationObject(10, SingleValue.ON, Quality(), t1),
        InformationObject(11, SingleValue.OFF, Quality(), t2)))
    ours = encode_asdu(asdu)
    tag1, tag2 = bytes.fromhex("e8030102640518"), bytes.fromhex("d0070102640518")
    assert ours[9:] == b"\x01" + tag1 + b"\x00" + tag2
    decoded, rest = h104.Encoder().decode_asdu(ours)
    (io,) = decoded.ios
    # hat reads our first tag's first octet (0xe8) as the second SIQ, takes the next 7
    # octets as the time tag and leaves the last 7 undecoded
    assert io.elements[1].quality.invalid and io.elements[1].quality.not_topical
    assert bytes(rest) == ours[-7:]
    theirs = h104.Encoder().encode_asdu(h104.ASDU(
        h104.AsduType.M_SP_TB, h104.Cause(h104.CauseType.SPONTANEOUS, False, False, 0), 1,
        [h104.IO(10, [h104.IoElement_M_SP_TB(h104.SingleValue.ON, h104.IndicationQuality(
            False, False, False, False)), h104.IoElement_M_SP_TB(h104.SingleValue.OFF,
                                                                 h104.IndicationQuality(
            False, False, False, False))], hat_time(t1))]))
    assert bytes(theirs)[9:] == b"\x01\x00" + tag1
    assert len(bytes(theirs)) == len(ours) - 7


def test_conversion_detects_differences() -> None:
    """The interop check can fail: a changed value or quality bit is caught."""
    asdu = ASDU(T.M_ME_NC_1, False, 3, False, False, 0, 1,
                (InformationObject(5, FloatingValue(1.5), Quality()),))
    check_both_ways(asdu, DEFAULT, h104.Encoder(), h104)
    model = to_hat(asdu, h104)
    wrong = model._replace(ios=[model.ios[0]._replace(elements=[
        model.ios[0].elements[0]._replace(quality=h104.MeasurementQuality(
            True, False, False, False, False))])])
    assert bytes(h104.Encoder().encode_asdu(wrong)) != encode_asdu(asdu)
