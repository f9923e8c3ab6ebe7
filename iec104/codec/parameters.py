"""Semantic layer of the system and parameter requests: read, reset process, delay
acquisition, parameter of measured values and parameter activation.

Theory of operation
-------------------
The element codecs (``elements.py``) carry these requests' qualifiers as one raw octet
(``InformationObject.qualifier``). This module owns what the octets mean (IEC 60870-5-101
7.2.6) and the mapping between the driver's named tuples and ASDUs, so the driver
never handles bits itself:

* QRP (C_RP_NA_1): 1 general reset of process, 2 reset of the event buffer's pending
  time-tagged information.
* QPM (P_ME_NA/NB/NC_1): KPA in bits 1..6 (1 threshold, 2 smoothing factor, 3 low limit,
  4 high limit; 5..31 reserved, 32..63 private), LPC in bit 7 (local parameter change),
  POP in bit 8 (set: parameter *not* in operation).
* QPA (P_AC_NA_1): 1 (de)activate previously loaded parameters (IOA 0), 2 the parameter of
  the addressed object, 3 persistent cyclic/periodic transmission of the addressed object.
* C_CD_NA_1 carries a CP16Time2a, milliseconds in [0, 59999]; the round-trip procedure of
  IEC 60870-5-5 is :func:`delay_reply` on the controlled side and
  :func:`transmission_delay` on the controlling side.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from .asdu import ASDU, InformationObject
from .constants import Cause, TypeId
from .errors import EncodeError
from .values import FloatingValue, NormalizedValue, ScaledValue

CP16_MODULUS = 60_000
"""CP16Time2a counts milliseconds within a minute: [0, 59999]."""


class ResetKind(enum.IntEnum):
    """QRP of C_RP_NA_1 (values 3..127 reserved, 128..255 private: kept as int)."""

    GENERAL = 1
    EVENT_BUFFER = 2


class ParameterKind(enum.IntEnum):
    """KPA of the QPM (values 5..63 reserved or private: kept as int)."""

    NOT_USED = 0
    THRESHOLD = 1
    SMOOTHING = 2
    LOW_LIMIT = 3
    HIGH_LIMIT = 4


class ActivationKind(enum.IntEnum):
    """QPA of P_AC_NA_1 (values 4..255 reserved or private: kept as int)."""

    NOT_USED = 0
    LOADED_PARAMETERS = 1
    OBJECT_PARAMETER = 2
    CYCLIC_TRANSMISSION = 3


ParameterValue = NormalizedValue | ScaledValue | FloatingValue


class Parameter(NamedTuple):
    """A parameter of measured values (P_ME_NA/NB/NC_1, by the value's class).

    Attributes:
        value: the parameter; ``NormalizedValue`` [-1, 1), ``ScaledValue`` [-32768, 32767]
            or ``FloatingValue``.
        asdu_address: common address [0, 65535].
        io_address: address of the measured value the parameter belongs to.
        kind: KPA [0, 63] (``ParameterKind`` or int).
        local_change: LPC bit (the parameter was changed locally).
        in_operation: the inverse of the POP bit.
    """

    value: ParameterValue
    asdu_address: int
    io_address: int
    kind: ParameterKind | int = ParameterKind.THRESHOLD
    local_change: bool = False
    in_operation: bool = True


class ParameterActivation(NamedTuple):
    """P_AC_NA_1: activate (cause ACTIVATION) or deactivate (DEACTIVATION) parameters.

    Attributes:
        asdu_address: common address [0, 65535].
        io_address: the object (0 with ``ActivationKind.LOADED_PARAMETERS``).
        kind: QPA [0, 255] (``ActivationKind`` or int).
        activate: False for a deactivation.
    """

    asdu_address: int
    io_address: int
    kind: ActivationKind | int = ActivationKind.OBJECT_PARAMETER
    activate: bool = True


_PARAMETER_TYPES: dict[type, TypeId] = {
    NormalizedValue: TypeId.P_ME_NA_1,
    ScaledValue: TypeId.P_ME_NB_1,
    FloatingValue: TypeId.P_ME_NC_1,
}
PARAMETER_TYPES = frozenset(_PARAMETER_TYPES.values())
"""The three parameter-of-measured-value type IDs."""


def _enum(cls: type[enum.IntEnum], value: int) -> enum.IntEnum | int:
    try:
        return cls(value)
    except ValueError:
        return value


def qpm(kind: int, local_change: bool = False, in_operation: bool = True) -> int:
    """The QPM octet (raises ``EncodeError`` for a KPA outside [0, 63])."""
    if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 63:
        raise EncodeError("kind", f"KPA {kind!r} outside [0, 63]")
    return kind | (0x40 if local_change else 0) | (0 if in_operation else 0x80)


def parameter_to_asdu(parameter: Parameter, cause: Cause | int = Cause.ACTIVATION,
                      negative: bool = False) -> ASDU:
    """One-object P_ME_* ASDU carrying ``parameter``."""
    type_id = _PARAMETER_TYPES.get(type(parameter.value))
    if type_id is None:
        raise EncodeError("value", f"{type(parameter.value).__name__} is no parameter value "
                          "(NormalizedValue, ScaledValue or FloatingValue)")
    obj = InformationObject(parameter.io_address, parameter.value, qualifier=qpm(
        parameter.kind, parameter.local_change, parameter.in_operation))
    return ASDU(type_id, False, cause, negative, False, 0, parameter.asdu_address, (obj,))


def asdu_to_parameters(asdu: ASDU) -> list[Parameter]:
    """``Parameter`` for each object of a P_ME_* ASDU (empty for other types)."""
    if asdu.type_id not in PARAMETER_TYPES:
        return []
    return [Parameter(o.value, asdu.common_address, o.address or 0,  # type: ignore[arg-type]
                      _enum(ParameterKind, (o.qualifier or 0) & 0x3F),
                      bool((o.qualifier or 0) & 0x40), not (o.qualifier or 0) & 0x80)
            for o in asdu.objects]


def activation_to_asdu(activation: ParameterActivation) -> ASDU:
    """P_AC_NA_1 ASDU (cause ACTIVATION, or DEACTIVATION when ``activate`` is False)."""
    cause = Cause.ACTIVATION if activation.activate else Cause.DEACTIVATION
    obj = InformationObject(activation.io_address, qualifier=activation.kind)
    return ASDU(TypeId.P_AC_NA_1, False, cause, False, False, 0, activation.asdu_address,
                (obj,))


def asdu_to_activations(asdu: ASDU) -> list[ParameterActivation]:
    """``ParameterActivation`` per object of a P_AC_NA_1 ASDU (empty for other types)."""
    if asdu.type_id != TypeId.P_AC_NA_1:
        return []
    activate = asdu.cause not in (Cause.DEACTIVATION, Cause.DEACTIVATION_CONFIRMATION)
    return [ParameterActivation(asdu.common_address, o.address or 0,
                                _enum(ActivationKind, o.qualifier or 0), activate)
            for o in asdu.objects]


def reset_kind(qualifier: int | None) -> ResetKind | int:
    """The QRP as ``ResetKind`` (int when reserved or private)."""
    return _enum(ResetKind, qualifier or 0)


def cp16(milliseconds: float) -> int:
    """A time in milliseconds as a CP16Time2a value (modulo one minute)."""
    return int(milliseconds) % CP16_MODULUS


def delay_reply(sent: int, held_ms: float) -> int:
    """Controlled station: the SDT to return in the ACTCON of a C_CD_NA_1 activation, the
    received SDT plus the time the request spent in this station (IEC 60870-5-5)."""
    return cp16(sent + held_ms)


def transmission_delay(returned: int, received_ms: float) -> int:
    """Controlling station: the one-way transmission delay in milliseconds [0, 29999] from
    the SDT returned in the ACTCON and the local time (ms) the ACTCON arrived: half the
    round trip, the controlled station's holding time already added to ``returned``."""
    return cp16(received_ms - returned) // 2
