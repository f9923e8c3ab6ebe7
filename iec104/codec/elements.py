"""Information element codecs, one table row per standard type ID.

Each :class:`ElementCodec` decodes the octets of one information object *after* its
address into ``(value, quality, time, select, qualifier)`` and encodes them back.
``size`` is the fixed element size in octets, or ``None`` for F_SG_NA_1 whose segment
length is on the wire. Decoders are called only after the caller checked that ``size``
octets are present, so they index without bounds checks; encoders validate every field
and raise ``EncodeError`` naming it.

How fields map (see ``InformationObject`` in ``asdu.py``):

* monitor types: ``value`` + ``quality`` (+ ``time`` for the TA/TB variants);
* commands: ``value`` + ``select`` (S/E bit) + ``qualifier`` (QU [0, 31] or QL [0, 127]);
* C_IC_NA_1 QOI, C_RP_NA_1 QRP, P_* QPM, P_AC_NA_1 QPA, file qualifiers: ``qualifier``
  [0, 255]; C_CI_NA_1: ``value`` FreezeCode and ``qualifier`` RQT [0, 63];
* S_IT_TC_1: ``value`` SecurityStatisticValue (AID + BCR) + ``time``; the secure
  authentication messages without an address (81-95) are in ``security.py``;
* C_CS_NA_1: ``time``; C_TS_NA_1: ``value`` FBP [0, 65535] (0x55AA by the standard);
  C_CD_NA_1: ``value`` CP16 delay ms; C_TS_TA_1: ``value`` TSC [0, 65535] + ``time``.

Layouts: the fixed-size elements of the common types also declare *where* their fields lie
(:class:`Layout`: the value octets and how they read, the quality octet, the S/E bit, the
qualifier bits; the time tag follows at ``size``). The decoders below take their offsets
and masks from these declarations, and the columnar dissector
(:mod:`iec104.records.columnar`) gathers the same fields for a whole batch of APDUs at
once from the same declarations, so the two decoders cannot drift apart (a codec test
checks every declared field against the decoder for every octet value).
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from .constants import TypeId
from .errors import DecodeError, EncodeError
from .timetag import TimeSize, decode_time, encode_time
from .values import (
    AckFileValue,
    BinaryCounterValue,
    BitstringValue,
    CallFileValue,
    DirectoryValue,
    DoubleValue,
    FileReadyValue,
    FloatingValue,
    FreezeCode,
    InitializationValue,
    LastSectionValue,
    NormalizedValue,
    ProtectionCommandValue,
    ProtectionQuality,
    ProtectionStartValue,
    ProtectionValue,
    Quality,
    QueryLogValue,
    RegulatingValue,
    ScaledValue,
    SectionReadyValue,
    SecurityStatisticValue,
    SegmentValue,
    SingleValue,
    StatusChangeValue,
    StepPositionValue,
)

Fields = tuple[Any, Any, Any, Any, Any]  # value, quality, time, select, qualifier
Decoder = Callable[[Any, int], Fields]
Encoder = Callable[[Any, Any, Any, Any, Any], bytes]


class ValueKind(enum.IntEnum):
    """How the value octets of a :class:`Layout` read as a number (``numeric_value``)."""

    NONE = 0  #: no value (qualifier-only and empty elements)
    CODE = 1  #: ``(octet >> value_shift) & value_mask``: an enum code or a plain small int
    STEP = 2  #: VTI: bits 0-6 two's complement [-64, 63], bit 7 transient
    UINT16 = 3  #: little-endian unsigned 16 bits
    UINT32 = 4  #: 32-bit bitstring, read as a little-endian unsigned number
    NORMALIZED = 5  #: little-endian int16 / 32768, [-1, 1 - 2**-15]
    SCALED = 6  #: little-endian int16
    FLOAT = 7  #: IEEE binary32, little-endian
    COUNTER = 8  #: little-endian int32, then the sequence octet (SQ bits 0-4, CY, CA, IV)


class Layout(NamedTuple):
    """Where the fields of a fixed-size element lie (offsets from its first octet).

    Attributes:
        size: element octets before its time tag (the tag, if any, starts here).
        kind: how the value octets read as a number.
        value_at: first value octet (``value_width`` octets carry the value and everything
            its text shows, e.g. the counter's sequence octet).
        value_width: [0, 5] octets.
        value_mask: for ``CODE``/``STEP``: the value bits after shifting.
        value_shift: for ``CODE``: right shift of the value bits.
        quality_at: offset of the QDS octet (or the octet shared with the value), or None.
        quality_mask: the quality bits of that octet (IV 0x80, NT 0x40, SB 0x20, BL 0x10,
            OV 0x01).
        select_at: offset of the octet whose bit 7 is the command's S/E bit, or None.
        qualifier_at: offset of the qualifier octet, or None.
        qualifier_shift: right shift of the qualifier bits.
        qualifier_mask: the qualifier bits after shifting.
    """

    size: int
    kind: ValueKind = ValueKind.NONE
    value_at: int = 0
    value_width: int = 0
    value_mask: int = 0xFF
    value_shift: int = 0
    quality_at: int | None = None
    quality_mask: int = 0xFF
    select_at: int | None = None
    qualifier_at: int | None = None
    qualifier_shift: int = 0
    qualifier_mask: int = 0xFF


class ElementCodec(NamedTuple):
    """The codec of one type's information element.

    Attributes:
        size: element octets after the address, or None for F_SG_NA_1 (length on the wire).
        decode: ``(data, offset) -> (value, quality, time, select, qualifier)``.
        encode: ``(value, quality, time, select, qualifier) -> bytes``.
        decode_untimed: ``(data, offset) -> (value, quality, select, qualifier)``: the
            element without its time tag (``decode`` is this plus the tag).
        time_size: size of the time tag that ends the element, or None (no time tag).
        layout: where the fields lie (the tag follows at ``layout.size``), for the types the
            columnar dissector decodes; None for the others (protection events with QDP,
            M_PS_NA_1, parameters, file transfer).
    """

    size: int | None
    decode: Decoder
    encode: Encoder
    decode_untimed: Callable[[Any, int], tuple[Any, Any, Any, Any]]
    time_size: TimeSize | None
    layout: Layout | None = None


_H = struct.Struct("<h")
_UH = struct.Struct("<H")
_F = struct.Struct("<f")
_I = struct.Struct("<i")
_HQ = struct.Struct("<hB")
_FQ = struct.Struct("<fB")

# Quality objects are immutable: build each of the 256 once (decoding is a table lookup).
_QDS = tuple(Quality(bool(b & 0x80), bool(b & 0x40), bool(b & 0x20), bool(b & 0x10),
                     bool(b & 0x01)) for b in range(256))
_QDP = tuple(ProtectionQuality(bool(b & 0x80), bool(b & 0x40), bool(b & 0x20), bool(b & 0x10),
                               bool(b & 0x08)) for b in range(256))
_SINGLE = (SingleValue.OFF, SingleValue.ON)
_DOUBLE = tuple(DoubleValue)
_REGULATING = (0, RegulatingValue.LOWER, RegulatingValue.HIGHER, 3)
_FREEZE = tuple(FreezeCode)
# The monitor-direction decoders below build values with tuple.__new__, which skips the
# NamedTuple's Python-level __new__ (same object, a third of the cost: a dissector hot path).
_new = tuple.__new__


# -- field validation -------------------------------------------------------------------

def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(name, f"{value!r} is not an int")
    if not low <= value <= high:
        raise EncodeError(name, f"{value} outside [{low}, {high}]")
    return value


def _type(name: str, value: Any, cls: type) -> Any:
    if not isinstance(value, cls):
        raise EncodeError(name, f"{type(value).__name__} is not {cls.__name__}")
    return value


def _enum(name: str, value: Any, low: int, high: int) -> int:
    # enum members and plain ints both allowed (ints for reserved codes)
    return _int(name, int(value) if isinstance(value, int) and not isinstance(value, bool)
                else value, low, high)


def _qds(quality: Any, with_overflow: bool = True) -> int:
    q = _type("quality", quality, Quality)
    if q.overflow and not with_overflow:
        raise EncodeError("quality.overflow", "this type has no OV bit")
    return ((0x80 if q.invalid else 0) | (0x40 if q.not_topical else 0)
            | (0x20 if q.substituted else 0) | (0x10 if q.blocked else 0)
            | (0x01 if q.overflow else 0))


def _qdp(quality: Any) -> int:
    q = _type("quality", quality, ProtectionQuality)
    return ((0x80 if q.invalid else 0) | (0x40 if q.not_topical else 0)
            | (0x20 if q.substituted else 0) | (0x10 if q.blocked else 0)
            | (0x08 if q.time_invalid else 0))


def _nva(value: Any) -> int:
    v = _type("value", value, NormalizedValue).value
    if not isinstance(v, (int, float)) or math.isnan(v) or not -1.0 <= v < 1.0:
        raise EncodeError("value.value", f"{v!r} outside [-1, 1 - 2**-15]")
    return min(32767, round(v * 32768))


def _float32(value: Any) -> float:
    v = _type("value", value, FloatingValue).value
    if not isinstance(v, (int, float)):
        raise EncodeError("value.value", f"{v!r} is not a float")
    try:
        _F.pack(v)
    except OverflowError as exc:
        raise EncodeError("value.value", f"{v!r} does not fit an IEEE binary32") from exc
    return v


def _none(name: str, value: Any) -> None:
    if value is not None:
        raise EncodeError(name, f"must be None for this type, got {value!r}")


def _no_time(time: Any) -> None:
    _none("time", time)


def _cp16(name: str, value: int) -> bytes:
    return _UH.pack(_int(name, value, 0, 0xFFFF))


# -- layouts: where the fields of the fixed-size elements lie ------------------------------
# (the decoders below read their offsets and masks from these; so does the columnar dissector)

def _at(offset: int | None) -> int:
    """An offset a decoder reads from its layout (a default argument, evaluated at import:
    a layout without it is a bug of this table, found at once)."""
    if offset is None:
        raise TypeError("the layout lacks an offset its decoder reads")
    return offset


_K = ValueKind
_L_SIQ = Layout(1, _K.CODE, 0, 1, value_mask=0x01, quality_at=0, quality_mask=0xF0)
_L_DIQ = Layout(1, _K.CODE, 0, 1, value_mask=0x03, quality_at=0, quality_mask=0xF0)
_L_VTI = Layout(2, _K.STEP, 0, 1, value_mask=0x7F, quality_at=1)
_L_BSIQ = Layout(5, _K.UINT32, 0, 4, quality_at=4)
_L_NVAQ = Layout(3, _K.NORMALIZED, 0, 2, quality_at=2)
_L_SVAQ = Layout(3, _K.SCALED, 0, 2, quality_at=2)
_L_FLTQ = Layout(5, _K.FLOAT, 0, 4, quality_at=4)
_L_BCR = Layout(5, _K.COUNTER, 0, 5)
_L_NVA = Layout(2, _K.NORMALIZED, 0, 2)
# commands: S/E bit 7 and the qualifier share the octet with the state (QU bits 2-6) or
# follow the set-point (QL bits 0-6)
_L_SCO = Layout(1, _K.CODE, 0, 1, value_mask=0x01, select_at=0, qualifier_at=0,
                qualifier_shift=2, qualifier_mask=0x1F)
_L_DCO = _L_SCO._replace(value_mask=0x03)
_L_NVAQOS = Layout(3, _K.NORMALIZED, 0, 2, select_at=2, qualifier_at=2, qualifier_mask=0x7F)
_L_SVAQOS = _L_NVAQOS._replace(kind=_K.SCALED)
_L_FLTQOS = Layout(5, _K.FLOAT, 0, 4, select_at=4, qualifier_at=4, qualifier_mask=0x7F)
_L_BSI = Layout(4, _K.UINT32, 0, 4)
_L_COI = Layout(1, _K.CODE, 0, 1, value_mask=0x7F)  # bit 7: parameter change
_L_QUAL = Layout(1, qualifier_at=0)
_L_QCC = Layout(1, _K.CODE, 0, 1, value_mask=0x03, value_shift=6, qualifier_at=0,
                qualifier_mask=0x3F)
_L_EMPTY = Layout(0)
_L_U16 = Layout(2, _K.UINT16, 0, 2)


# -- building blocks: the element without a time tag --------------------------------------
# Each block is (size or Layout, decode(data, off) -> (value, quality, select, qualifier),
#                encode(value, quality, select, qualifier) -> bytes).
# Decoders of laid-out elements take the layout's offsets and masks as default arguments
# (bound once: as fast as literals).

Block = tuple[int | Layout | None, Callable[[Any, int], tuple[Any, Any, Any, Any]],
              Callable[[Any, Any, Any, Any], bytes]]


def _monitor_only(select: Any, qualifier: Any) -> None:
    _none("select", select)
    _none("qualifier", qualifier)


def _siq_dec(d: Any, o: int, v: int = _L_SIQ.value_mask,
             q: int = _L_SIQ.quality_mask) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return _SINGLE[b & v], _QDS[b & q], None, None


def _siq_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    return bytes((_enum("value", _type("value", value, int), 0, 1) | _qds(quality, False),))


def _diq_dec(d: Any, o: int, v: int = _L_DIQ.value_mask,
             q: int = _L_DIQ.quality_mask) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return _DOUBLE[b & v], _QDS[b & q], None, None


def _diq_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    return bytes((_enum("value", _type("value", value, int), 0, 3) | _qds(quality, False),))


def _vti_dec(d: Any, o: int, m: int = _L_VTI.value_mask,
             q: int = _at(_L_VTI.quality_at)) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    v = b & m
    return (_new(StepPositionValue, (v - 128 if v & 0x40 else v, bool(b & 0x80))), _QDS[d[o + q]],
            None, None)


def _vti_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    v = _type("value", value, StepPositionValue)
    raw = _int("value.value", v.value, -64, 63) & 0x7F
    return bytes((raw | (0x80 if v.transient else 0), _qds(quality)))


def _bsi(value: Any) -> bytes:
    raw = _type("value", value, BitstringValue).value
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != 4:
        raise EncodeError("value.value", f"{raw!r} is not 4 octets")
    return bytes(raw)


def _bsi_q_dec(d: Any, o: int, q: int = _at(_L_BSIQ.quality_at)) -> tuple[Any, Any, Any, Any]:
    return _new(BitstringValue, (bytes(d[o:o + 4]),)), _QDS[d[o + q]], None, None


def _bsi_q_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    return _bsi(value) + bytes((_qds(quality),))


def _nva_q_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    v, q = _HQ.unpack_from(d, o)
    return _new(NormalizedValue, (v / 32768,)), _QDS[q], None, None


def _nva_q_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    return _HQ.pack(_nva(value), _qds(quality))


def _sva_q_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    v, q = _HQ.unpack_from(d, o)
    return _new(ScaledValue, (v,)), _QDS[q], None, None


def _sva(value: Any) -> int:
    return _int("value.value", _type("value", value, ScaledValue).value, -32768, 32767)


def _sva_q_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    return _HQ.pack(_sva(value), _qds(quality))


def _flt_q_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    v, q = _FQ.unpack_from(d, o)
    return _new(FloatingValue, (v,)), _QDS[q], None, None


def _flt_q_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    return _FQ.pack(_float32(value), _qds(quality))


def _bcr_dec(d: Any, o: int, s: int = _L_BCR.value_width - 1) -> tuple[Any, Any, Any, Any]:
    b = d[o + s]  # the sequence octet ends the value
    return (_new(BinaryCounterValue, (_I.unpack_from(d, o)[0], b & 0x1F, bool(b & 0x20),
                                      bool(b & 0x40), bool(b & 0x80))), None, None, None)


def _bcr_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    _none("quality", quality)
    v = _type("value", value, BinaryCounterValue)
    b = (_int("value.sequence", v.sequence, 0, 31) | (0x20 if v.overflow else 0)
         | (0x40 if v.adjusted else 0) | (0x80 if v.invalid else 0))
    return _I.pack(_int("value.value", v.value, -2**31, 2**31 - 1)) + bytes((b,))


def _sec_stat_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return (_new(SecurityStatisticValue, (d[o] | d[o + 1] << 8, _bcr_dec(d, o + 2)[0])),
            None, None, None)


def _sec_stat_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    v = _type("value", value, SecurityStatisticValue)
    return (_cp16("value.association_id", v.association_id)
            + _bcr_enc(v.counter, quality, select, qualifier))


def _sep_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return (ProtectionValue(_DOUBLE[b & 3], d[o + 1] | d[o + 2] << 8), _QDP[b & 0xF8],
            None, None)


def _sep_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    v = _type("value", value, ProtectionValue)
    return (bytes((_enum("value.state", v.state, 0, 3) | _qdp(quality),))
            + _cp16("value.elapsed_time", v.elapsed_time))


def _spe_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return (ProtectionStartValue(bool(b & 1), bool(b & 2), bool(b & 4), bool(b & 8),
                                 bool(b & 16), bool(b & 32), d[o + 2] | d[o + 3] << 8),
            _QDP[d[o + 1] & 0xF8], None, None)


def _spe_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    v = _type("value", value, ProtectionStartValue)
    b = sum(bit for bit, on in zip((1, 2, 4, 8, 16, 32),
                                   (v.general, v.l1, v.l2, v.l3, v.ie, v.reverse)) if on)
    return bytes((b, _qdp(quality))) + _cp16("value.duration_time", v.duration_time)


def _oci_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return (ProtectionCommandValue(bool(b & 1), bool(b & 2), bool(b & 4), bool(b & 8),
                                   d[o + 2] | d[o + 3] << 8),
            _QDP[d[o + 1] & 0xF8], None, None)


def _oci_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    v = _type("value", value, ProtectionCommandValue)
    b = sum(bit for bit, on in zip((1, 2, 4, 8), (v.general, v.l1, v.l2, v.l3)) if on)
    return bytes((b, _qdp(quality))) + _cp16("value.operating_time", v.operating_time)


def _scd_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return (StatusChangeValue(d[o] | d[o + 1] << 8, d[o + 2] | d[o + 3] << 8), _QDS[d[o + 4]],
            None, None)


def _scd_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    v = _type("value", value, StatusChangeValue)
    return (_UH.pack(_int("value.status", v.status, 0, 0xFFFF))
            + _UH.pack(_int("value.change", v.change, 0, 0xFFFF)) + bytes((_qds(quality),)))


def _nva_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return _new(NormalizedValue, (_H.unpack_from(d, o)[0] / 32768,)), None, None, None


def _nva_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    _none("quality", quality)
    return _H.pack(_nva(value))


# commands: select (S/E) and qualifier share the octet with the state
def _command_octet(select: Any, qualifier: Any) -> int:
    _type("select", select, bool)
    return (0x80 if select else 0) | _int("qualifier", qualifier, 0, 31) << 2


def _sco_dec(d: Any, o: int, v: int = _L_SCO.value_mask, s: int = _L_SCO.qualifier_shift,
             m: int = _L_SCO.qualifier_mask) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return _SINGLE[b & v], None, bool(b & 0x80), (b >> s) & m


def _sco_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _none("quality", quality)
    return bytes((_enum("value", _type("value", value, int), 0, 1)
                  | _command_octet(select, qualifier),))


def _dco_dec(d: Any, o: int, v: int = _L_DCO.value_mask, s: int = _L_DCO.qualifier_shift,
             m: int = _L_DCO.qualifier_mask) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return _DOUBLE[b & v], None, bool(b & 0x80), (b >> s) & m


def _dco_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _none("quality", quality)
    return bytes((_enum("value", _type("value", value, int), 0, 3)
                  | _command_octet(select, qualifier),))


def _rco_dec(d: Any, o: int, v: int = _L_DCO.value_mask, s: int = _L_DCO.qualifier_shift,
             m: int = _L_DCO.qualifier_mask) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return _REGULATING[b & v], None, bool(b & 0x80), (b >> s) & m


def _qos(select: Any, qualifier: Any) -> int:
    _type("select", select, bool)
    return (0x80 if select else 0) | _int("qualifier", qualifier, 0, 127)


def _nva_qos_dec(d: Any, o: int, m: int = _L_NVAQOS.qualifier_mask) -> tuple[Any, Any, Any, Any]:
    v, q = _HQ.unpack_from(d, o)
    return NormalizedValue(v / 32768), None, bool(q & 0x80), q & m


def _nva_qos_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _none("quality", quality)
    return _HQ.pack(_nva(value), _qos(select, qualifier))


def _sva_qos_dec(d: Any, o: int, m: int = _L_SVAQOS.qualifier_mask) -> tuple[Any, Any, Any, Any]:
    v, q = _HQ.unpack_from(d, o)
    return ScaledValue(v), None, bool(q & 0x80), q & m


def _sva_qos_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _none("quality", quality)
    return _HQ.pack(_sva(value), _qos(select, qualifier))


def _flt_qos_dec(d: Any, o: int, m: int = _L_FLTQOS.qualifier_mask) -> tuple[Any, Any, Any, Any]:
    v, q = _FQ.unpack_from(d, o)
    return FloatingValue(v), None, bool(q & 0x80), q & m


def _flt_qos_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _none("quality", quality)
    return _FQ.pack(_float32(value), _qos(select, qualifier))


def _bsi_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return BitstringValue(bytes(d[o:o + 4])), None, None, None


def _bsi_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    _none("quality", quality)
    return _bsi(value)


def _coi_dec(d: Any, o: int, v: int = _L_COI.value_mask) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return InitializationValue(b & v, bool(b & 0x80)), None, None, None


def _coi_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    _none("quality", quality)
    v = _type("value", value, InitializationValue)
    return bytes((_int("value.cause", v.cause, 0, 127) | (0x80 if v.param_change else 0),))


def _qualifier_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return None, None, None, d[o]


def _qualifier_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _none("value", value)
    _none("quality", quality)
    _none("select", select)
    return bytes((_int("qualifier", qualifier, 0, 255),))


def _qcc_dec(d: Any, o: int, s: int = _L_QCC.value_shift,
             m: int = _L_QCC.qualifier_mask) -> tuple[Any, Any, Any, Any]:
    b = d[o]
    return _FREEZE[b >> s], None, None, b & m


def _qcc_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _none("quality", quality)
    _none("select", select)
    return bytes((_enum("value", _type("value", value, int), 0, 3) << 6
                  | _int("qualifier", qualifier, 0, 63),))


def _empty_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return None, None, None, None


def _empty_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    for name, field in (("value", value), ("quality", quality), ("select", select),
                        ("qualifier", qualifier)):
        _none(name, field)
    return b""


def _u16_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return d[o] | d[o + 1] << 8, None, None, None


def _u16_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    _none("quality", quality)
    return _cp16("value", value)


def _param(value_dec: Callable[[Any, int], Any], size: int,
           enc: Callable[[Any], bytes]) -> Block:
    # P_ME_*: the value, then the whole QPM octet as qualifier
    def dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
        return value_dec(d, o), None, None, d[o + size - 1]

    def encode(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
        _none("quality", quality)
        _none("select", select)
        return enc(value) + bytes((_int("qualifier", qualifier, 0, 255),))

    return size, dec, encode


# file transfer: the qualifier octet is always the ``qualifier`` field
def _u24(name: str, value: Any) -> bytes:
    return _int(name, value, 0, 0xFFFFFF).to_bytes(3, "little")


def _nof(value: Any) -> bytes:
    return _cp16("value.file_name", value.file_name)


def _nos(value: Any) -> bytes:
    return bytes((_int("value.section", value.section, 0, 255),))


def _file_block(cls: type, size: int,
                dec: Callable[[Any, int], Any],
                enc: Callable[[Any], bytes], qualified: bool = True) -> Block:
    def decode(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
        return dec(d, o), None, None, (d[o + size - 1] if qualified else None)

    def encode(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
        _none("quality", quality)
        _none("select", select)
        body = enc(_type("value", value, cls))
        if not qualified:
            _none("qualifier", qualifier)
            return body
        return body + bytes((_int("qualifier", qualifier, 0, 255),))

    return size, decode, encode


def _u16(d: Any, o: int) -> int:
    return d[o] | d[o + 1] << 8


def _u24_at(d: Any, o: int) -> int:
    return d[o] | d[o + 1] << 8 | d[o + 2] << 16


_BLOCK_FR = _file_block(FileReadyValue, 6, lambda d, o: FileReadyValue(_u16(d, o), _u24_at(d, o + 2)),
                        lambda v: _nof(v) + _u24("value.length", v.length))
_BLOCK_SR = _file_block(SectionReadyValue, 7,
                        lambda d, o: SectionReadyValue(_u16(d, o), d[o + 2], _u24_at(d, o + 3)),
                        lambda v: _nof(v) + _nos(v) + _u24("value.length", v.length))
_BLOCK_SC = _file_block(CallFileValue, 4, lambda d, o: CallFileValue(_u16(d, o), d[o + 2]),
                        lambda v: _nof(v) + _nos(v))
_BLOCK_AF = _file_block(AckFileValue, 4, lambda d, o: AckFileValue(_u16(d, o), d[o + 2]),
                        lambda v: _nof(v) + _nos(v))


def _ls_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return LastSectionValue(_u16(d, o), d[o + 2], d[o + 4]), None, None, d[o + 3]


def _ls_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _none("quality", quality)
    _none("select", select)
    v = _type("value", value, LastSectionValue)
    return (_nof(v) + _nos(v) + bytes((_int("qualifier", qualifier, 0, 255),
                                       _int("value.checksum", v.checksum, 0, 255))))


def _dr_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return DirectoryValue(_u16(d, o), _u24_at(d, o + 2), d[o + 5]), None, None, None


def _dr_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    _none("quality", quality)
    v = _type("value", value, DirectoryValue)
    return _nof(v) + _u24("value.length", v.length) + bytes((_int("value.status", v.status, 0, 255),))


def _ql_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    return (QueryLogValue(_u16(d, o), decode_time(d, o + 2, TimeSize.SEVEN),
                          decode_time(d, o + 9, TimeSize.SEVEN)), None, None, None)


def _ql_time(name: str, time: Any) -> bytes:
    try:
        return encode_time(time, TimeSize.SEVEN)
    except EncodeError as exc:  # encode_time names it "time...": it is value.start/stop
        raise EncodeError(name + exc.field.removeprefix("time"), exc.reason) from exc


def _ql_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    _none("quality", quality)
    v = _type("value", value, QueryLogValue)
    return (_nof(v) + _ql_time("value.start", v.start)
            + _ql_time("value.stop", v.stop))


def _segment_size(d: Any, o: int, available: int) -> int:
    """Size of an F_SG_NA_1 element at ``o`` (NOF, NOS, LOS, then LOS octets)."""
    if available < 4:
        raise DecodeError("F_SG_NA_1 segment header truncated", o)
    return 4 + d[o + 3]


def _sg_dec(d: Any, o: int) -> tuple[Any, Any, Any, Any]:
    los = d[o + 3]
    return SegmentValue(_u16(d, o), d[o + 2], bytes(d[o + 4:o + 4 + los])), None, None, None


def _sg_enc(value: Any, quality: Any, select: Any, qualifier: Any) -> bytes:
    _monitor_only(select, qualifier)
    _none("quality", quality)
    v = _type("value", value, SegmentValue)
    data = v.data
    if not isinstance(data, (bytes, bytearray)) or len(data) > 255:
        raise EncodeError("value.data", "segment must be bytes of at most 255 octets")
    return _nof(v) + _nos(v) + bytes((len(data),)) + bytes(data)


# -- the table ---------------------------------------------------------------------------

def _with_time(block: Block, time_size: TimeSize | None) -> ElementCodec:
    layout, bdec, benc = block
    size = layout.size if isinstance(layout, Layout) else layout
    laid_out = layout if isinstance(layout, Layout) else None
    if time_size is None:
        def decode(d: Any, o: int) -> Fields:
            value, quality, select, qualifier = bdec(d, o)
            return value, quality, None, select, qualifier

        def encode(value: Any, quality: Any, time: Any, select: Any, qualifier: Any) -> bytes:
            _no_time(time)
            return benc(value, quality, select, qualifier)

        return ElementCodec(size, decode, encode, bdec, None, laid_out)

    assert size is not None
    t_off = size
    tsize = int(time_size)

    def decode_t(d: Any, o: int) -> Fields:
        value, quality, select, qualifier = bdec(d, o)
        return value, quality, decode_time(d, o + t_off, time_size), select, qualifier

    def encode_t(value: Any, quality: Any, time: Any, select: Any, qualifier: Any) -> bytes:
        return benc(value, quality, select, qualifier) + encode_time(time, time_size)

    return ElementCodec(size + tsize, decode_t, encode_t, bdec, time_size, laid_out)


_T = TypeId
_SIQ: Block = (_L_SIQ, _siq_dec, _siq_enc)
_DIQ: Block = (_L_DIQ, _diq_dec, _diq_enc)
_VTI: Block = (_L_VTI, _vti_dec, _vti_enc)
_BSIQ: Block = (_L_BSIQ, _bsi_q_dec, _bsi_q_enc)
_NVAQ: Block = (_L_NVAQ, _nva_q_dec, _nva_q_enc)
_SVAQ: Block = (_L_SVAQ, _sva_q_dec, _sva_q_enc)
_FLTQ: Block = (_L_FLTQ, _flt_q_dec, _flt_q_enc)
_BCR: Block = (_L_BCR, _bcr_dec, _bcr_enc)
_SEP: Block = (3, _sep_dec, _sep_enc)
_SPE: Block = (4, _spe_dec, _spe_enc)
_OCI: Block = (4, _oci_dec, _oci_enc)
_SCO: Block = (_L_SCO, _sco_dec, _sco_enc)
_DCO: Block = (_L_DCO, _dco_dec, _dco_enc)
_RCO: Block = (_L_DCO, _rco_dec, _dco_enc)
_NVAQOS: Block = (_L_NVAQOS, _nva_qos_dec, _nva_qos_enc)
_SVAQOS: Block = (_L_SVAQOS, _sva_qos_dec, _sva_qos_enc)
_FLTQOS: Block = (_L_FLTQOS, _flt_qos_dec, _flt_qos_enc)
_BSI: Block = (_L_BSI, _bsi_dec, _bsi_enc)
_QUAL: Block = (_L_QUAL, _qualifier_dec, _qualifier_enc)
_EMPTY: Block = (_L_EMPTY, _empty_dec, _empty_enc)
_U16: Block = (_L_U16, _u16_dec, _u16_enc)
_3, _7 = TimeSize.THREE, TimeSize.SEVEN

ELEMENTS: dict[int, ElementCodec] = {
    _T.M_SP_NA_1: _with_time(_SIQ, None), _T.M_SP_TA_1: _with_time(_SIQ, _3),
    _T.M_SP_TB_1: _with_time(_SIQ, _7),
    _T.M_DP_NA_1: _with_time(_DIQ, None), _T.M_DP_TA_1: _with_time(_DIQ, _3),
    _T.M_DP_TB_1: _with_time(_DIQ, _7),
    _T.M_ST_NA_1: _with_time(_VTI, None), _T.M_ST_TA_1: _with_time(_VTI, _3),
    _T.M_ST_TB_1: _with_time(_VTI, _7),
    _T.M_BO_NA_1: _with_time(_BSIQ, None), _T.M_BO_TA_1: _with_time(_BSIQ, _3),
    _T.M_BO_TB_1: _with_time(_BSIQ, _7),
    _T.M_ME_NA_1: _with_time(_NVAQ, None), _T.M_ME_TA_1: _with_time(_NVAQ, _3),
    _T.M_ME_TD_1: _with_time(_NVAQ, _7),
    _T.M_ME_NB_1: _with_time(_SVAQ, None), _T.M_ME_TB_1: _with_time(_SVAQ, _3),
    _T.M_ME_TE_1: _with_time(_SVAQ, _7),
    _T.M_ME_NC_1: _with_time(_FLTQ, None), _T.M_ME_TC_1: _with_time(_FLTQ, _3),
    _T.M_ME_TF_1: _with_time(_FLTQ, _7),
    _T.M_IT_NA_1: _with_time(_BCR, None), _T.M_IT_TA_1: _with_time(_BCR, _3),
    _T.M_IT_TB_1: _with_time(_BCR, _7),
    _T.M_EP_TA_1: _with_time(_SEP, _3), _T.M_EP_TD_1: _with_time(_SEP, _7),
    _T.M_EP_TB_1: _with_time(_SPE, _3), _T.M_EP_TE_1: _with_time(_SPE, _7),
    _T.M_EP_TC_1: _with_time(_OCI, _3), _T.M_EP_TF_1: _with_time(_OCI, _7),
    _T.M_PS_NA_1: _with_time((5, _scd_dec, _scd_enc), None),
    _T.S_IT_TC_1: _with_time((7, _sec_stat_dec, _sec_stat_enc), _7),
    _T.M_ME_ND_1: _with_time((_L_NVA, _nva_dec, _nva_enc), None),
    _T.C_SC_NA_1: _with_time(_SCO, None), _T.C_SC_TA_1: _with_time(_SCO, _7),
    _T.C_DC_NA_1: _with_time(_DCO, None), _T.C_DC_TA_1: _with_time(_DCO, _7),
    _T.C_RC_NA_1: _with_time(_RCO, None), _T.C_RC_TA_1: _with_time(_RCO, _7),
    _T.C_SE_NA_1: _with_time(_NVAQOS, None), _T.C_SE_TA_1: _with_time(_NVAQOS, _7),
    _T.C_SE_NB_1: _with_time(_SVAQOS, None), _T.C_SE_TB_1: _with_time(_SVAQOS, _7),
    _T.C_SE_NC_1: _with_time(_FLTQOS, None), _T.C_SE_TC_1: _with_time(_FLTQOS, _7),
    _T.C_BO_NA_1: _with_time(_BSI, None), _T.C_BO_TA_1: _with_time(_BSI, _7),
    _T.M_EI_NA_1: _with_time((_L_COI, _coi_dec, _coi_enc), None),
    _T.C_IC_NA_1: _with_time(_QUAL, None),
    _T.C_CI_NA_1: _with_time((_L_QCC, _qcc_dec, _qcc_enc), None),
    _T.C_RD_NA_1: _with_time(_EMPTY, None),
    _T.C_CS_NA_1: _with_time(_EMPTY, _7),
    _T.C_TS_NA_1: _with_time(_U16, None),
    _T.C_RP_NA_1: _with_time(_QUAL, None),
    _T.C_CD_NA_1: _with_time(_U16, None),
    _T.C_TS_TA_1: _with_time(_U16, _7),
    _T.P_ME_NA_1: _with_time(_param(lambda d, o: NormalizedValue(_H.unpack_from(d, o)[0] / 32768),
                                    3, lambda v: _H.pack(_nva(v))), None),
    _T.P_ME_NB_1: _with_time(_param(lambda d, o: ScaledValue(_H.unpack_from(d, o)[0]), 3,
                                    lambda v: _H.pack(_sva(v))), None),
    _T.P_ME_NC_1: _with_time(_param(lambda d, o: FloatingValue(_F.unpack_from(d, o)[0]), 5,
                                    lambda v: _F.pack(_float32(v))), None),
    _T.P_AC_NA_1: _with_time(_QUAL, None),
    _T.F_FR_NA_1: _with_time(_BLOCK_FR, None),
    _T.F_SR_NA_1: _with_time(_BLOCK_SR, None),
    _T.F_SC_NA_1: _with_time(_BLOCK_SC, None),
    _T.F_LS_NA_1: _with_time((5, _ls_dec, _ls_enc), None),
    _T.F_AF_NA_1: _with_time(_BLOCK_AF, None),
    _T.F_SG_NA_1: ElementCodec(None, *_with_time((0, _sg_dec, _sg_enc), None)[1:]),
    _T.F_DR_TA_1: _with_time((6, _dr_dec, _dr_enc), _7),
    _T.F_SC_NB_1: _with_time((16, _ql_dec, _ql_enc), None),
}
"""Element codec by type ID (every standard type of IEC 60870-5-101/104)."""

variable_size = _segment_size
"""Size function for the one variable-size element (F_SG_NA_1)."""
