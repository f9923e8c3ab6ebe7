"""Semantic layer: Data/Command <-> ASDUs <-> octets, and the packing of Data into ASDUs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iec104.codec import (
    MAX_ASDU_SIZE,
    Action,
    BinaryCounterValue,
    BitstringValue,
    Cause,
    Command,
    Data,
    DoubleValue,
    FloatingValue,
    InitializationValue,
    NormalizedValue,
    Profile,
    ProtectionCommandValue,
    ProtectionQuality,
    ProtectionStartValue,
    ProtectionValue,
    Quality,
    RegulatingValue,
    ScaledValue,
    SingleValue,
    StatusChangeValue,
    StepPositionValue,
    Time,
    TimeSize,
    asdu_to_commands,
    asdu_to_data,
    command_to_asdu,
    data_to_asdus,
    decode_asdu,
    encode_asdu,
)
from iec104.codec.model import _max_objects, data_type_id
from tests.codec.test_codec_asdu import (
    CODEC_SETTINGS,
    PROFILES,
    bcr,
    bsi,
    coi,
    cp24,
    cp56,
    flt,
    nva,
    oci,
    qdp,
    qds,
    scd,
    sep,
    spe,
    sva,
    vti,
)

any_time = st.one_of(st.none(), cp24, cp56)
# (value strategy, quality strategy, time strategy) for every kind of monitor value
DATA_KINDS = [
    (st.sampled_from(SingleValue), qds(False), any_time),
    (st.sampled_from(DoubleValue), qds(False), any_time),
    (vti, qds(), any_time),
    (bsi, qds(), any_time),
    (nva, qds(), any_time),
    (nva, st.none(), st.none()),  # M_ME_ND_1
    (sva, qds(), any_time),
    (flt, qds(), any_time),
    (bcr, st.none(), any_time),
    (sep, qdp, st.one_of(cp24, cp56)),
    (spe, qdp, st.one_of(cp24, cp56)),
    (oci, qdp, st.one_of(cp24, cp56)),
    (scd, qds(), st.none()),
    (coi, st.none(), st.none()),
]


@st.composite
def data_items(draw: st.DrawFn, profile: Profile) -> Data:
    value, quality, time = draw(st.sampled_from(DATA_KINDS))
    return Data(draw(value), draw(quality), draw(time),
                draw(st.integers(0, 0xFF if profile.ca_size == 1 else 0xFFFF)),
                draw(st.integers(0, (1 << 8 * profile.ioa_size) - 1)),
                Cause(draw(st.sampled_from([3, 5, 20, 37]))), draw(st.booleans()))


@settings(CODEC_SETTINGS, max_examples=60)
@given(data=st.data())
def test_data_roundtrip_and_packing(data: st.DataObject) -> None:
    profile = data.draw(st.sampled_from(PROFILES))
    # runs of equal keys, so that packing has something to do
    items: list[Data] = []
    for item in data.draw(st.lists(data_items(profile), min_size=1, max_size=6)):
        repeat = data.draw(st.sampled_from([1, 1, 2, 40, 130]))
        items += [item._replace(io_address=(item.io_address + i) % (1 << 8 * profile.ioa_size))
                  for i in range(repeat)]
    asdus = list(data_to_asdus(items, profile))
    back: list[Data] = []
    for i, asdu in enumerate(asdus):
        raw = encode_asdu(asdu, profile)
        assert len(raw) <= MAX_ASDU_SIZE
        count = len(asdu.objects)
        if count == _max_objects(asdu.type_id, profile) and count < 127:
            per_object = (len(raw) - 2 - profile.cot_size - profile.ca_size) // count
            assert len(raw) + per_object > MAX_ASDU_SIZE  # full means one more would not fit
        decoded = decode_asdu(raw, profile)
        back += asdu_to_data(decoded)  # type: ignore[arg-type]
        if i + 1 < len(asdus):  # a split happens at a key change or when the ASDU is full
            nxt = asdus[i + 1]
            same = (asdu.type_id, asdu.common_address, asdu.cause, asdu.test) == (
                nxt.type_id, nxt.common_address, nxt.cause, nxt.test)
            assert not same or len(asdu.objects) == _max_objects(asdu.type_id, profile)
    assert _nan_safe(back) == _nan_safe(items)


def _nan_safe(items: list[Data]) -> list[str]:
    return [repr(i) for i in items]  # equal reprs; the strategies never draw NaN


T24 = Time(TimeSize.THREE, 0, False, 0)
T56 = Time.from_datetime(dt.datetime(2024, 1, 2, 3, 4, 5))
Q, PQ = Quality(), ProtectionQuality()


@pytest.mark.parametrize("value, quality, time, type_name", [
    (SingleValue.ON, Q, None, "M_SP_NA_1"), (SingleValue.ON, Q, T24, "M_SP_TA_1"),
    (SingleValue.ON, Q, T56, "M_SP_TB_1"), (DoubleValue.ON, Q, T56, "M_DP_TB_1"),
    (StepPositionValue(1, False), Q, T24, "M_ST_TA_1"),
    (BitstringValue(bytes(4)), Q, None, "M_BO_NA_1"),
    (NormalizedValue(0.5), Q, None, "M_ME_NA_1"), (NormalizedValue(0.5), None, None, "M_ME_ND_1"),
    (NormalizedValue(0.5), Q, T56, "M_ME_TD_1"), (ScaledValue(1), Q, T24, "M_ME_TB_1"),
    (FloatingValue(1.0), Q, T56, "M_ME_TF_1"), (BinaryCounterValue(1), None, T56, "M_IT_TB_1"),
    (ProtectionValue(DoubleValue.ON, 5), PQ, T24, "M_EP_TA_1"),
    (ProtectionValue(DoubleValue.ON, 5), PQ, T56, "M_EP_TD_1"),
    (ProtectionStartValue(True, False, True, False, True, False, 9), PQ, T24, "M_EP_TB_1"),
    (ProtectionCommandValue(True, True, False, False, 3), PQ, T56, "M_EP_TF_1"),
    (StatusChangeValue(1, 2), Q, None, "M_PS_NA_1"),
    (InitializationValue(1), None, None, "M_EI_NA_1"),
])
def test_data_type_ids(value: Any, quality: Any, time: Any, type_name: str) -> None:
    item = Data(value, quality, time, 1, 2, Cause.SPONTANEOUS, False)
    assert data_type_id(item).name == type_name
    (asdu,) = data_to_asdus([item])
    assert asdu_to_data(decode_asdu(encode_asdu(asdu))) == [item]  # type: ignore[arg-type]


commands = st.one_of(
    st.builds(lambda v, q: (v, q), st.sampled_from(SingleValue), st.integers(0, 31)),
    st.builds(lambda v, q: (v, q), st.sampled_from(DoubleValue), st.integers(0, 31)),
    st.builds(lambda v, q: (v, q), st.sampled_from(RegulatingValue), st.integers(0, 31)),
    st.builds(lambda v, q: (v, q), nva, st.integers(0, 127)),
    st.builds(lambda v, q: (v, q), sva, st.integers(0, 127)),
    st.builds(lambda v, q: (v, q), flt, st.integers(0, 127)),
    st.builds(lambda v: (v, 0), bsi),
)


@settings(CODEC_SETTINGS, max_examples=150)
@given(commands, st.sampled_from(Action), st.one_of(st.none(), cp56), st.integers(0, 0xFFFF),
       st.integers(0, 0xFFFFFF))
def test_command_roundtrip(value_qualifier: tuple[Any, int], action: Action, time: Any,
                           ca: int, ioa: int) -> None:
    value, qualifier = value_qualifier
    if isinstance(value, BitstringValue) and action == Action.SELECT:
        action = Action.EXECUTE  # bitstring commands have no select (EncodeError tested)
    command = Command(action, value, ca, ioa, time, qualifier)
    asdu = command_to_asdu(command)
    assert asdu.cause == (Cause.DEACTIVATION if action == Action.CANCEL else Cause.ACTIVATION)
    assert asdu.type_id.name.split("_")[2].startswith("T") == (time is not None)
    decoded = decode_asdu(encode_asdu(asdu))
    assert asdu_to_commands(decoded) == [command]  # type: ignore[arg-type]
    # the confirmation keeps the action
    con = decoded._replace(cause=Cause.ACTIVATION_CONFIRMATION if action != Action.CANCEL
                           else Cause.DEACTIVATION_CONFIRMATION)  # type: ignore[union-attr]
    assert asdu_to_commands(con) == [command]  # type: ignore[arg-type]


def test_a_time_that_is_not_a_time_tag_is_an_encode_error() -> None:
    from iec104.codec import EncodeError, Quality, SingleValue
    from iec104.codec.model import Action, Command, Data, command_type_id, data_type_id

    now = dt.datetime.now(dt.UTC)
    with pytest.raises(EncodeError) as exc:
        data_type_id(Data(SingleValue.ON, Quality(), now, 1, 1, 3, False))  # type: ignore[arg-type]
    assert exc.value.field == "time"
    with pytest.raises(EncodeError) as exc:
        command_type_id(Command(Action.EXECUTE, SingleValue.ON, 1, 1, now, 0))  # type: ignore[arg-type]
    assert exc.value.field == "time"
