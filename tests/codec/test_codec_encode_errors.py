# mypy: disable-error-code="arg-type"
# (the point of this module is passing values of the wrong type)
"""EncodeError names the offending field, for every field the encoders check.

Each case starts from a valid object of its type, breaks exactly one field and expects
``EncodeError.field`` to be the dotted path of that field (the message starts with it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from iec104.codec import (
    ASDU,
    AckFileValue,
    Action,
    BinaryCounterValue,
    BitstringValue,
    CallFileValue,
    Cause,
    Command,
    Data,
    DirectoryValue,
    DoubleValue,
    EncodeError,
    FileReadyValue,
    FloatingValue,
    FreezeCode,
    IFrame,
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
    SegmentValue,
    SFrame,
    SingleValue,
    StatusChangeValue,
    StepPositionValue,
    Time,
    TimeSize,
    TypeId,
    UFrame,
    UFunction,
    command_to_asdu,
    data_to_asdus,
    encode_apdu,
    encode_asdu,
)

T = TypeId
Q = Quality()
PQ = ProtectionQuality()
CP24 = Time(TimeSize.THREE, 1000, False, 5)
CP56 = Time.from_datetime(dt.datetime(2024, 5, 6, 7, 8, 9))

# A valid object (fields after the address) for each type used below.
VALID: dict[TypeId, dict[str, Any]] = {
    T.M_SP_NA_1: {"value": SingleValue.ON, "quality": Q},
    T.M_DP_NA_1: {"value": DoubleValue.ON, "quality": Q},
    T.M_ST_NA_1: {"value": StepPositionValue(5, False), "quality": Q},
    T.M_BO_NA_1: {"value": BitstringValue(b"\x01\x02\x03\x04"), "quality": Q},
    T.M_ME_NA_1: {"value": NormalizedValue(0.5), "quality": Q},
    T.M_ME_TA_1: {"value": NormalizedValue(0.5), "quality": Q, "time": CP24},
    T.M_ME_NB_1: {"value": ScaledValue(5), "quality": Q},
    T.M_ME_NC_1: {"value": FloatingValue(1.5), "quality": Q},
    T.M_ME_TF_1: {"value": FloatingValue(1.5), "quality": Q, "time": CP56},
    T.M_IT_NA_1: {"value": BinaryCounterValue(7, 1)},
    T.M_EP_TA_1: {"value": ProtectionValue(DoubleValue.ON, 100), "quality": PQ, "time": CP24},
    T.M_EP_TB_1: {"value": ProtectionStartValue(True, False, False, False, False, False, 9),
                  "quality": PQ, "time": CP24},
    T.M_EP_TC_1: {"value": ProtectionCommandValue(True, False, False, False, 9), "quality": PQ,
                  "time": CP24},
    T.M_PS_NA_1: {"value": StatusChangeValue(1, 2), "quality": Q},
    T.M_ME_ND_1: {"value": NormalizedValue(0.5)},
    T.C_SC_NA_1: {"value": SingleValue.ON, "select": False, "qualifier": 0},
    T.C_RC_NA_1: {"value": RegulatingValue.LOWER, "select": False, "qualifier": 0},
    T.C_SE_NA_1: {"value": NormalizedValue(0.5), "select": False, "qualifier": 0},
    T.C_SE_NC_1: {"value": FloatingValue(1.5), "select": False, "qualifier": 0},
    T.C_BO_NA_1: {"value": BitstringValue(b"\x00" * 4)},
    T.M_EI_NA_1: {"value": InitializationValue(0)},
    T.C_IC_NA_1: {"qualifier": 20},
    T.C_CI_NA_1: {"value": FreezeCode.READ, "qualifier": 5},
    T.C_RD_NA_1: {},
    T.C_CS_NA_1: {"time": CP56},
    T.C_TS_NA_1: {"value": 0x55AA},
    T.C_CD_NA_1: {"value": 100},
    T.C_TS_TA_1: {"value": 1, "time": CP56},
    T.P_ME_NB_1: {"value": ScaledValue(5), "qualifier": 1},
    T.F_FR_NA_1: {"value": FileReadyValue(1, 100), "qualifier": 0},
    T.F_SR_NA_1: {"value": SectionReadyValue(1, 2, 100), "qualifier": 0},
    T.F_SC_NA_1: {"value": CallFileValue(1, 2), "qualifier": 0},
    T.F_LS_NA_1: {"value": LastSectionValue(1, 2, 3), "qualifier": 0},
    T.F_AF_NA_1: {"value": AckFileValue(1, 2), "qualifier": 0},
    T.F_SG_NA_1: {"value": SegmentValue(1, 2, b"abc")},
    T.F_DR_TA_1: {"value": DirectoryValue(1, 100, 0), "time": CP56},
    T.F_SC_NB_1: {"value": QueryLogValue(1, CP56, CP56)},
}


def make(type_id: TypeId, **change: Any) -> ASDU:
    fields = {**VALID[type_id], **change}
    return ASDU(type_id, False, Cause.SPONTANEOUS, False, False, 0, 1,
                (InformationObject(1, **fields),))


def test_the_valid_objects_encode() -> None:
    for type_id in VALID:
        assert encode_asdu(make(type_id))


def with_value(type_id: TypeId, **change: Any) -> ASDU:
    return make(type_id, value=VALID[type_id]["value"]._replace(**change))


ELEMENT_CASES: list[tuple[str, ASDU, str]] = [
    # (case id, broken ASDU, field named)
    ("SIQ value 2", make(T.M_SP_NA_1, value=2), "value"),
    ("SIQ value str", make(T.M_SP_NA_1, value="on"), "value"),
    ("SIQ value bool", make(T.M_SP_NA_1, value=True), "value"),
    ("SIQ no quality", make(T.M_SP_NA_1, quality=None), "quality"),
    ("SIQ protection quality", make(T.M_SP_NA_1, quality=PQ), "quality"),
    ("SIQ has no OV", make(T.M_SP_NA_1, quality=Quality(overflow=True)), "quality.overflow"),
    ("SIQ time on untimed type", make(T.M_SP_NA_1, time=CP56), "time"),
    ("SIQ select on monitor type", make(T.M_SP_NA_1, select=True), "select"),
    ("SIQ qualifier on monitor type", make(T.M_SP_NA_1, qualifier=0), "qualifier"),
    ("DIQ value 4", make(T.M_DP_NA_1, value=4), "value"),
    ("VTI 64", with_value(T.M_ST_NA_1, value=64), "value.value"),
    ("VTI -65", with_value(T.M_ST_NA_1, value=-65), "value.value"),
    ("VTI wrong class", make(T.M_ST_NA_1, value=ScaledValue(1)), "value"),
    ("BSI 3 octets", with_value(T.M_BO_NA_1, value=b"\x00" * 3), "value.value"),
    ("BSI int", with_value(T.M_BO_NA_1, value=5), "value.value"),
    ("NVA 1.0", with_value(T.M_ME_NA_1, value=1.0), "value.value"),
    ("NVA -1.01", with_value(T.M_ME_NA_1, value=-1.01), "value.value"),
    ("NVA NaN", with_value(T.M_ME_NA_1, value=float("nan")), "value.value"),
    ("NVA as float value", make(T.M_ME_NA_1, value=FloatingValue(0.5)), "value"),
    ("CP24 missing", make(T.M_ME_TA_1, time=None), "time"),
    ("CP24 given CP56", make(T.M_ME_TA_1, time=CP56), "time.size"),
    ("CP24 minutes 64", make(T.M_ME_TA_1, time=CP24._replace(minutes=64)), "time.minutes"),
    ("CP24 ms 65536", make(T.M_ME_TA_1, time=CP24._replace(milliseconds=65536)),
     "time.milliseconds"),
    ("SVA 32768", with_value(T.M_ME_NB_1, value=32768), "value.value"),
    ("SVA -32769", with_value(T.M_ME_NB_1, value=-32769), "value.value"),
    ("SVA float", with_value(T.M_ME_NB_1, value=1.5), "value.value"),
    ("float too big", with_value(T.M_ME_NC_1, value=1e39), "value.value"),
    ("float str", with_value(T.M_ME_NC_1, value="1.5"), "value.value"),
    ("QDS wrong class", make(T.M_ME_NC_1, quality=(False,) * 5), "quality"),
    ("CP56 given CP24", make(T.M_ME_TF_1, time=CP24), "time.size"),
    ("CP56 hours 32", make(T.M_ME_TF_1, time=CP56._replace(hours=32)), "time.hours"),
    ("CP56 day 32", make(T.M_ME_TF_1, time=CP56._replace(day_of_month=32)),
     "time.day_of_month"),
    ("CP56 month 16", make(T.M_ME_TF_1, time=CP56._replace(months=16)), "time.months"),
    ("CP56 year 128", make(T.M_ME_TF_1, time=CP56._replace(years=128)), "time.years"),
    ("CP56 dow 8", make(T.M_ME_TF_1, time=CP56._replace(day_of_week=8)), "time.day_of_week"),
    ("CP56 not a Time", make(T.M_ME_TF_1, time=dt.datetime(2024, 1, 1)), "time"),
    ("BCR 2**31", with_value(T.M_IT_NA_1, value=2**31), "value.value"),
    ("BCR sequence 32", with_value(T.M_IT_NA_1, sequence=32), "value.sequence"),
    ("BCR has no quality", make(T.M_IT_NA_1, quality=Q), "quality"),
    ("SEP state 4", with_value(T.M_EP_TA_1, state=4), "value.state"),
    ("SEP elapsed 65536", with_value(T.M_EP_TA_1, elapsed_time=65536), "value.elapsed_time"),
    ("SEP QDS instead of QDP", make(T.M_EP_TA_1, quality=Q), "quality"),
    ("SPE duration -1", with_value(T.M_EP_TB_1, duration_time=-1), "value.duration_time"),
    ("OCI operating 65536", with_value(T.M_EP_TC_1, operating_time=65536),
     "value.operating_time"),
    ("SCD status 65536", with_value(T.M_PS_NA_1, status=65536), "value.status"),
    ("SCD change -1", with_value(T.M_PS_NA_1, change=-1), "value.change"),
    ("ND has no quality", make(T.M_ME_ND_1, quality=Q), "quality"),
    ("SCO QU 32", make(T.C_SC_NA_1, qualifier=32), "qualifier"),
    ("SCO no select", make(T.C_SC_NA_1, select=None), "select"),
    ("SCO value 2", make(T.C_SC_NA_1, value=2), "value"),
    ("SCO quality", make(T.C_SC_NA_1, quality=Q), "quality"),
    ("RCO value 4", make(T.C_RC_NA_1, value=4), "value"),
    ("QOS QL 128", make(T.C_SE_NA_1, qualifier=128), "qualifier"),
    ("QOS select str", make(T.C_SE_NC_1, select="yes"), "select"),
    ("BSI command has no select", make(T.C_BO_NA_1, select=True), "select"),
    ("COI cause 128", with_value(T.M_EI_NA_1, cause=128), "value.cause"),
    ("QOI 256", make(T.C_IC_NA_1, qualifier=256), "qualifier"),
    ("QOI None", make(T.C_IC_NA_1, qualifier=None), "qualifier"),
    ("C_IC_NA_1 has no value", make(T.C_IC_NA_1, value=1), "value"),
    ("QCC RQT 64", make(T.C_CI_NA_1, qualifier=64), "qualifier"),
    ("QCC FRZ 4", make(T.C_CI_NA_1, value=4), "value"),
    ("C_RD_NA_1 value", make(T.C_RD_NA_1, value=0), "value"),
    ("C_CS_NA_1 no time", make(T.C_CS_NA_1, time=None), "time"),
    ("C_CS_NA_1 minutes 64", make(T.C_CS_NA_1, time=CP56._replace(minutes=64)), "time.minutes"),
    ("FBP 65536", make(T.C_TS_NA_1, value=65536), "value"),
    ("CP16 -1", make(T.C_CD_NA_1, value=-1), "value"),
    ("TSC time hours 32", make(T.C_TS_TA_1, time=CP56._replace(hours=32)), "time.hours"),
    ("QPM 256", make(T.P_ME_NB_1, qualifier=256), "qualifier"),
    ("NOF 65536", with_value(T.F_FR_NA_1, file_name=65536), "value.file_name"),
    ("LOF 2**24", with_value(T.F_FR_NA_1, length=2**24), "value.length"),
    ("FRQ 256", make(T.F_FR_NA_1, qualifier=256), "qualifier"),
    ("NOS 256", with_value(T.F_SR_NA_1, section=256), "value.section"),
    ("SCQ -1", make(T.F_SC_NA_1, qualifier=-1), "qualifier"),
    ("CHS 256", with_value(T.F_LS_NA_1, checksum=256), "value.checksum"),
    ("AFQ 256", make(T.F_AF_NA_1, qualifier=256), "qualifier"),
    ("segment 256 octets", with_value(T.F_SG_NA_1, data=bytes(256)), "value.data"),
    ("segment str", with_value(T.F_SG_NA_1, data="abc"), "value.data"),
    ("segment time", make(T.F_SG_NA_1, time=CP56), "time"),
    ("SOF 256", with_value(T.F_DR_TA_1, status=256), "value.status"),
    ("query log start minutes 64", with_value(T.F_SC_NB_1, start=CP56._replace(minutes=64)),
     "value.start.minutes"),
    ("query log stop CP24", with_value(T.F_SC_NB_1, stop=CP24), "value.stop.size"),
]


@pytest.mark.parametrize("asdu, field", [c[1:] for c in ELEMENT_CASES],
                         ids=[c[0] for c in ELEMENT_CASES])
def test_element_field(asdu: ASDU, field: str) -> None:
    with pytest.raises(EncodeError) as err:
        encode_asdu(asdu)
    assert err.value.field == "objects[0]." + field
    assert str(err.value).startswith(f"objects[0].{field}: ")


def test_object_index_is_named() -> None:
    good = InformationObject(1, **VALID[T.M_ME_NB_1])
    bad = InformationObject(3, ScaledValue(40000), Q)
    asdu = ASDU(T.M_ME_NB_1, False, 3, False, False, 0, 1, (good, good, bad))
    with pytest.raises(EncodeError) as err:
        encode_asdu(asdu)
    assert err.value.field == "objects[2].value.value"


HEADER = ASDU(T.C_IC_NA_1, False, Cause.ACTIVATION, False, False, 0, 1,
              (InformationObject(0, qualifier=20),))
IC = InformationObject(0, qualifier=20)
P1 = Profile(1, 1, 1)
P2 = Profile(2, 2, 2)

HEADER_CASES: list[tuple[str, ASDU | RawASDU, Profile, str]] = [
    ("type_id 256", HEADER._replace(type_id=256), Profile(), "type_id"),
    ("type_id unknown in ASDU", HEADER._replace(type_id=24), Profile(), "type_id"),
    ("RawASDU type_id -1", RawASDU(-1, False, 3, False, False, 0, 1, 0, b""), Profile(),
     "type_id"),
    ("128 objects", HEADER._replace(objects=(IC,) * 128), Profile(), "count"),
    ("RawASDU count 128", RawASDU(200, False, 3, False, False, 0, 1, 128, b""), Profile(),
     "count"),
    ("cause 64", HEADER._replace(cause=64), Profile(), "cause"),
    ("cause -1", HEADER._replace(cause=-1), Profile(), "cause"),
    ("cause bool", HEADER._replace(cause=True), Profile(), "cause"),
    ("originator 256", HEADER._replace(originator=256), Profile(), "originator"),
    ("originator with COT 1", HEADER._replace(originator=5), P1, "originator"),
    ("CA 65536", HEADER._replace(common_address=65536), Profile(), "common_address"),
    ("CA 256 with CA 1", HEADER._replace(common_address=256), P1, "common_address"),
    ("CA None", HEADER._replace(common_address=None), Profile(), "common_address"),
    ("IOA 2**24", HEADER._replace(objects=(IC._replace(address=2**24),)), Profile(),
     "objects[0].address"),
    ("IOA 65536 with IOA 2", HEADER._replace(objects=(IC._replace(address=65536),)), P2,
     "objects[0].address"),
    ("IOA 256 with IOA 1", HEADER._replace(objects=(IC._replace(address=256),)), P1,
     "objects[0].address"),
    ("IOA -1", HEADER._replace(objects=(IC._replace(address=-1),)), Profile(),
     "objects[0].address"),
    ("SQ=1 gap", HEADER._replace(sequence=True, objects=(IC, IC._replace(address=2))),
     Profile(), "objects[1].address"),
    ("SQ=1 past the range", HEADER._replace(sequence=True, objects=(
        IC._replace(address=255), IC._replace(address=256))), P1, "objects[1].address"),
    ("SQ=1 first address", HEADER._replace(sequence=True, objects=(
        IC._replace(address=256), IC._replace(address=257))), P1, "objects[0].address"),
]


@pytest.mark.parametrize("asdu, profile, field", [c[1:] for c in HEADER_CASES],
                         ids=[c[0] for c in HEADER_CASES])
def test_header_field(asdu: ASDU, profile: Profile, field: str) -> None:
    with pytest.raises(EncodeError) as err:
        encode_asdu(asdu, profile)
    assert err.value.field == field
    assert str(err.value).startswith(field + ": ")


APDU_CASES = [
    ("ssn 32768", IFrame(32768, 0, b"\x01"), "ssn"),
    ("ssn -1", IFrame(-1, 0, b"\x01"), "ssn"),
    ("ssn float", IFrame(1.5, 0, b"\x01"), "ssn"),
    ("ssn bool", IFrame(True, 0, b"\x01"), "ssn"),
    ("rsn 32768", IFrame(0, 32768, b"\x01"), "rsn"),
    ("rsn None", IFrame(0, None, b"\x01"), "rsn"),
    ("empty ASDU", IFrame(0, 0, b""), "asdu"),
    ("250-octet ASDU", IFrame(0, 0, bytes(250)), "asdu"),
    ("ASDU not bytes", IFrame(0, 0, "abc"), "asdu"),
    ("S rsn 32768", SFrame(32768), "rsn"),
    ("S rsn float", SFrame(2.0), "rsn"),
    ("U function 0x99", UFrame(0x99), "function"),
    ("U function name", UFrame("STARTDT_ACT"), "function"),
    ("not a frame", (0, 0, b"\x01"), "apdu"),
]


@pytest.mark.parametrize("apdu, field", [c[1:] for c in APDU_CASES],
                         ids=[c[0] for c in APDU_CASES])
def test_apdu_field(apdu: Any, field: str) -> None:
    with pytest.raises(EncodeError) as err:
        encode_apdu(apdu)
    assert err.value.field == field


def test_ufunction_values_encode() -> None:
    for function in UFunction:
        assert encode_apdu(UFrame(function))[2] == function


# -- the semantic layer names its fields too ------------------------------------------------

def test_model_errors() -> None:
    data = Data(ScaledValue(1), Q, None, 1, 2, Cause.SPONTANEOUS, False)
    with pytest.raises(EncodeError) as err:
        list(data_to_asdus([data._replace(value="x")]))
    assert err.value.field == "value"
    with pytest.raises(EncodeError) as err:  # protection events need a time tag
        list(data_to_asdus([data._replace(value=ProtectionValue(DoubleValue.ON, 1),
                                          quality=PQ)]))
    assert err.value.field == "time"
    command = Command(Action.SELECT, BitstringValue(bytes(4)), 1, 2, None, 0)
    with pytest.raises(EncodeError) as err:
        command_to_asdu(command)
    assert err.value.field == "action"
    with pytest.raises(EncodeError) as err:
        command_to_asdu(command._replace(action=Action.EXECUTE, time=CP24))
    assert err.value.field == "time"
