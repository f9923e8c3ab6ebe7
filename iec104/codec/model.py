"""Semantic layer of the driver API: ``Data`` and ``Command`` <-> structural ASDUs.

The seed API (hat-drivers) talks in ``Data`` (monitor direction) and ``Command`` (control
direction) with one object each; the wire talks in ASDUs holding many objects. The type
ID follows from the value's class and the size of its time tag; packing groups
consecutive items with the same type, address, cause and test flag into as few ASDUs as
fit in an I-frame.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from .apci import MAX_ASDU_SIZE
from .asdu import ASDU, DEFAULT_PROFILE, InformationObject, Profile
from .constants import Cause, TypeId
from .elements import ELEMENTS
from .errors import EncodeError
from .timetag import Time, TimeSize
from .values import (
    BinaryCounterValue,
    BitstringValue,
    DoubleValue,
    FloatingValue,
    InitializationValue,
    NormalizedValue,
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
)

DataValue = (SingleValue | DoubleValue | StepPositionValue | BitstringValue | NormalizedValue
             | ScaledValue | FloatingValue | BinaryCounterValue | ProtectionValue
             | ProtectionStartValue | ProtectionCommandValue | StatusChangeValue
             | InitializationValue)
CommandValue = (SingleValue | DoubleValue | RegulatingValue | NormalizedValue | ScaledValue
                | FloatingValue | BitstringValue)


class Data(NamedTuple):
    """One monitored point value (monitor direction).

    Attributes:
        value: the value; its class selects the type ID.
        quality: ``Quality`` (``ProtectionQuality`` for protection values; None for
            counters, M_ME_ND_1 normalized values without quality, and M_EI_NA_1).
        time: None, or a CP24 (``TimeSize.THREE``) / CP56 (``TimeSize.SEVEN``) tag.
        asdu_address: common address [0, 65535].
        io_address: information object address [0, 16777215].
        cause: cause of transmission.
        is_test: T bit.
    """

    value: DataValue
    quality: Quality | ProtectionQuality | None
    time: Time | None
    asdu_address: int
    io_address: int
    cause: Cause | int
    is_test: bool


class Action(enum.Enum):
    """What a command asks for: select (S/E=1), execute (S/E=0), or cancel (deactivation)."""

    EXECUTE = "execute"
    SELECT = "select"
    CANCEL = "cancel"


class Command(NamedTuple):
    """One command (control direction).

    Attributes:
        action: ``Action``.
        value: the commanded value; its class selects the type ID.
        asdu_address: common address [0, 65535].
        io_address: information object address [0, 16777215].
        time: None, or a CP56 tag (selects the C_.._TA_1 type).
        qualifier: QU [0, 31] for single/double/regulating commands, QL [0, 127] for
            set-points, ignored (0) for bitstrings.
    """

    action: Action
    value: CommandValue
    asdu_address: int
    io_address: int
    time: Time | None
    qualifier: int


# (value class) -> (type without time, with CP24, with CP56)
_DATA_TYPES: dict[type, tuple[TypeId | None, TypeId | None, TypeId | None]] = {
    SingleValue: (TypeId.M_SP_NA_1, TypeId.M_SP_TA_1, TypeId.M_SP_TB_1),
    DoubleValue: (TypeId.M_DP_NA_1, TypeId.M_DP_TA_1, TypeId.M_DP_TB_1),
    StepPositionValue: (TypeId.M_ST_NA_1, TypeId.M_ST_TA_1, TypeId.M_ST_TB_1),
    BitstringValue: (TypeId.M_BO_NA_1, TypeId.M_BO_TA_1, TypeId.M_BO_TB_1),
    NormalizedValue: (TypeId.M_ME_NA_1, TypeId.M_ME_TA_1, TypeId.M_ME_TD_1),
    ScaledValue: (TypeId.M_ME_NB_1, TypeId.M_ME_TB_1, TypeId.M_ME_TE_1),
    FloatingValue: (TypeId.M_ME_NC_1, TypeId.M_ME_TC_1, TypeId.M_ME_TF_1),
    BinaryCounterValue: (TypeId.M_IT_NA_1, TypeId.M_IT_TA_1, TypeId.M_IT_TB_1),
    ProtectionValue: (None, TypeId.M_EP_TA_1, TypeId.M_EP_TD_1),
    ProtectionStartValue: (None, TypeId.M_EP_TB_1, TypeId.M_EP_TE_1),
    ProtectionCommandValue: (None, TypeId.M_EP_TC_1, TypeId.M_EP_TF_1),
    StatusChangeValue: (TypeId.M_PS_NA_1, None, None),
    InitializationValue: (TypeId.M_EI_NA_1, None, None),
}

_COMMAND_TYPES: dict[type, tuple[TypeId, TypeId]] = {
    SingleValue: (TypeId.C_SC_NA_1, TypeId.C_SC_TA_1),
    DoubleValue: (TypeId.C_DC_NA_1, TypeId.C_DC_TA_1),
    RegulatingValue: (TypeId.C_RC_NA_1, TypeId.C_RC_TA_1),
    NormalizedValue: (TypeId.C_SE_NA_1, TypeId.C_SE_TA_1),
    ScaledValue: (TypeId.C_SE_NB_1, TypeId.C_SE_TB_1),
    FloatingValue: (TypeId.C_SE_NC_1, TypeId.C_SE_TC_1),
    BitstringValue: (TypeId.C_BO_NA_1, TypeId.C_BO_TA_1),
}

MONITOR_TYPES = frozenset(t for row in _DATA_TYPES.values() for t in row if t is not None) | {
    TypeId.M_ME_ND_1}
"""Type IDs that ``asdu_to_data`` turns into ``Data``."""
COMMAND_TYPES = frozenset(t for row in _COMMAND_TYPES.values() for t in row)
"""Type IDs that ``asdu_to_commands`` turns into ``Command``."""


def data_type_id(data: Data) -> TypeId:
    """Type ID that carries ``data`` (raises ``EncodeError`` if none does)."""
    row = _DATA_TYPES.get(type(data.value))
    if row is None:
        raise EncodeError("value", f"{type(data.value).__name__} is no monitor value")
    if data.time is not None and not isinstance(data.time, Time):
        raise EncodeError("time", f"{type(data.time).__name__} is not a Time")
    if data.time is None:
        if type(data.value) is NormalizedValue and data.quality is None:
            return TypeId.M_ME_ND_1
        type_id = row[0]
    else:
        type_id = row[1] if data.time.size == TimeSize.THREE else row[2]
    if type_id is None:
        raise EncodeError("time", f"{type(data.value).__name__} needs "
                          f"{'a time tag' if data.time is None else 'no time tag'}")
    return type_id


def command_type_id(command: Command) -> TypeId:
    """Type ID that carries ``command``."""
    row = _COMMAND_TYPES.get(type(command.value))
    if row is None:
        raise EncodeError("value", f"{type(command.value).__name__} is no command value")
    if command.time is None:
        return row[0]
    if not isinstance(command.time, Time):
        raise EncodeError("time", f"{type(command.time).__name__} is not a Time")
    if command.time.size != TimeSize.SEVEN:
        raise EncodeError("time", "commands carry a CP56Time2a (TimeSize.SEVEN) or none")
    return row[1]


def _max_objects(type_id: int, profile: Profile) -> int:
    size = ELEMENTS[type_id].size or 0
    header = 2 + profile.cot_size + profile.ca_size
    return max(1, min(127, (MAX_ASDU_SIZE - header) // (profile.ioa_size + size)))


_NO_QUALITY = frozenset((TypeId.M_IT_NA_1, TypeId.M_IT_TA_1, TypeId.M_IT_TB_1,
                         TypeId.M_EI_NA_1))


def pack_data(items: Sequence[Data], start: int = 0,
              profile: Profile = DEFAULT_PROFILE) -> tuple[ASDU, int]:
    """The first ASDU (SQ=0) of ``items[start:]`` and the index after its last item.

    Consecutive items with equal type ID, common address, cause and test flag share an
    ASDU up to what fits in one I-frame. ``start`` must be below ``len(items)``.
    """
    first = items[start]
    type_id = data_type_id(first)
    key = (type_id, first.asdu_address, first.cause, first.is_test)
    limit = _max_objects(type_id, profile)
    no_quality = type_id in _NO_QUALITY
    objects: list[InformationObject] = []
    end, count = start, len(items)
    while end < count and len(objects) < limit:
        item = items[end]
        if end != start and (data_type_id(item), item.asdu_address, item.cause,
                             item.is_test) != key:
            break
        objects.append(InformationObject(item.io_address, item.value,
                                         None if no_quality else item.quality, item.time))
        end += 1
    return _data_asdu(key, objects), end


def data_to_asdus(data: Iterable[Data], profile: Profile = DEFAULT_PROFILE) -> Iterator[ASDU]:
    """Pack ``Data`` into ASDUs (SQ=0), keeping their order (see :func:`pack_data`)."""
    items = data if isinstance(data, Sequence) else tuple(data)
    start = 0
    while start < len(items):
        asdu, start = pack_data(items, start, profile)
        yield asdu


def _data_asdu(key: tuple | None, objects: list[InformationObject]) -> ASDU:
    assert key is not None
    type_id, asdu_address, cause, is_test = key
    return ASDU(type_id, False, cause, False, is_test, 0, asdu_address, tuple(objects))


def asdu_to_data(asdu: ASDU) -> list[Data]:
    """``Data`` for each object of a monitor-direction ASDU (empty for other types)."""
    if asdu.type_id not in MONITOR_TYPES:
        return []
    ca, cause, test = asdu.common_address, asdu.cause, asdu.test
    return [Data(o.value, o.quality, o.time, ca, o.address, cause, test)  # type: ignore[arg-type]
            for o in asdu.objects]


def command_to_asdu(command: Command, cause: Cause | int | None = None,
                    negative: bool = False, originator: int = 0) -> ASDU:
    """One-object command ASDU; ``cause`` defaults from the action (ACT or DEACT)."""
    type_id = command_type_id(command)
    if cause is None:
        cause = Cause.DEACTIVATION if command.action == Action.CANCEL else Cause.ACTIVATION
    if type_id in (TypeId.C_BO_NA_1, TypeId.C_BO_TA_1):
        if command.action == Action.SELECT:
            raise EncodeError("action", "bitstring commands have no select")
        select, qualifier = None, None
    else:
        select, qualifier = command.action == Action.SELECT, command.qualifier
    obj = InformationObject(command.io_address, command.value, None, command.time, select,
                            qualifier)
    return ASDU(type_id, False, cause, negative, False, originator, command.asdu_address, (obj,))


_NOT_PERMITTED: dict[TypeId, frozenset[int]] = {
    **dict.fromkeys((TypeId.C_DC_NA_1, TypeId.C_DC_TA_1), frozenset((0, 3))),  # DCS
    **dict.fromkeys((TypeId.C_RC_NA_1, TypeId.C_RC_TA_1), frozenset((0, 3))),  # RCS
}


def command_refusal(asdu: ASDU) -> str | None:
    """Why a command ASDU cannot be carried out as the standard defines it, else None.

    A command ASDU needs an object, and DCS/RCS values 0 and 3 are "not permitted"
    (IEC 60870-5-101 7.2.6.16/17): the controlled station refuses those negatively instead
    of handing them to the application as valid commands.
    """
    if not asdu.objects:
        return "no information object"
    banned = _NOT_PERMITTED.get(asdu.type_id)  # type: ignore[call-overload]
    if banned is not None:
        for obj in asdu.objects:
            value = int(obj.value)  # type: ignore[arg-type]
            if value in banned:
                return f"{TypeId(asdu.type_id).name} value {value} is not permitted"
    return None


def asdu_to_commands(asdu: ASDU) -> list[Command]:
    """``Command`` for each object of a command ASDU (empty for other types)."""
    if asdu.type_id not in COMMAND_TYPES:
        return []
    cancel = asdu.cause in (Cause.DEACTIVATION, Cause.DEACTIVATION_CONFIRMATION)
    return [Command(Action.CANCEL if cancel else Action.SELECT if o.select else Action.EXECUTE,
                    o.value, asdu.common_address, o.address, o.time,  # type: ignore[arg-type]
                    o.qualifier or 0)
            for o in asdu.objects]
