"""ASDU: data unit identifier plus information objects, for any field-size profile.

The identifier's fields lie where :mod:`.header` says (:class:`~.header.HeaderLayout` of a
:class:`Profile`; ``Profile`` and ``DEFAULT_PROFILE`` are imported here too, their first
home). With SQ=0 every object carries its address (IOA 1|2|[3] octets); with SQ=1 only the
first does and the others follow at consecutive addresses. The secure authentication messages
(type IDs 81-95, ``security.py``) carry one object without an address (``address`` None).
Unknown (private) type IDs decode to :class:`RawASDU`, which keeps the header and the
undecoded object octets.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .constants import Cause, TypeId, to_cause, to_type_id
from .elements import ELEMENTS, variable_size
from .errors import DecodeError, DecodeReason, EncodeError
from .header import (
    CAUSE_MASK,
    COUNT_MASK,
    DEFAULT_PROFILE,
    HEADER_LAYOUTS,
    NEGATIVE_BIT,
    SQ_BIT,
    TEST_BIT,
    Profile,
    header_layout,
)
from .security import NO_ADDRESS, decode_secure, encode_secure
from .timetag import Time, TimeSize, decode_time
from .values import ProtectionQuality, Quality, Value


class InformationObject(NamedTuple):
    """One information object (see ``elements.py`` for which fields each type uses).

    Attributes:
        address: IOA in [0, 255 | 65535 | 16777215] depending on the profile; None for the
            secure authentication messages (type IDs 81-95), whose object has no address.
        value: the value (``None`` for types that carry none, e.g. C_IC_NA_1).
        quality: ``Quality``/``ProtectionQuality`` for monitor types with quality, else None.
        time: CP24/CP56 time tag for time-tagged types, else None.
        select: S/E bit of commands (True = select), else None.
        qualifier: qualifier of commands/system/parameter/file types, the segmentation
            octet of segmented secure authentication messages, else None.
    """

    address: int | None
    value: Value | None = None
    quality: Quality | ProtectionQuality | None = None
    time: Time | None = None
    select: bool | None = None
    qualifier: int | None = None


class ASDU(NamedTuple):
    """A decoded ASDU of a standard type.

    Attributes:
        type_id: ``TypeId``.
        sequence: SQ bit (objects at consecutive addresses, one address on the wire).
        cause: ``Cause`` or int [0, 63].
        negative: P/N bit.
        test: T bit.
        originator: originator address [0, 255] (always 0 when the COT is 1 octet).
        common_address: [0, 255 | 65535].
        objects: the information objects, at most 127.
    """

    type_id: TypeId
    sequence: bool
    cause: Cause | int
    negative: bool
    test: bool
    originator: int
    common_address: int
    objects: tuple[InformationObject, ...]


class RawASDU(NamedTuple):
    """An ASDU whose type ID we do not know; objects are kept as octets.

    Attributes mirror :class:`ASDU`; ``num_objects`` is the number of objects [0, 127]
    and ``payload`` the octets after the data unit identifier.
    """

    type_id: int
    sequence: bool
    cause: Cause | int
    negative: bool
    test: bool
    originator: int
    common_address: int
    num_objects: int
    payload: bytes


class Header(NamedTuple):
    """Data unit identifier alone (what is known even when the objects are malformed)."""

    type_id: TypeId | int
    sequence: bool
    num_objects: int
    cause: Cause | int
    negative: bool
    test: bool
    originator: int
    common_address: int


def decode_header(data: bytes | bytearray | memoryview,
                  profile: Profile = DEFAULT_PROFILE) -> tuple[Header, int]:
    """Decode the data unit identifier; return it and the offset of the first object.

    Raises:
        DecodeError: fewer octets than the identifier needs.
    """
    layout = header_layout(profile)
    need = layout.objects_at
    if len(data) < need:
        raise DecodeError(f"ASDU of {len(data)} octets is shorter than its "
                          f"{need}-octet identifier", len(data))
    vsq = data[layout.vsq_at]
    cot = data[layout.cot_at]
    originator = 0 if layout.oa_at is None else data[layout.oa_at]
    ca = int.from_bytes(data[layout.ca_at:layout.ca_at + layout.ca_size], "little")
    return Header(to_type_id(data[layout.type_id_at]), bool(vsq & SQ_BIT), vsq & COUNT_MASK,
                  to_cause(cot & CAUSE_MASK), bool(cot & NEGATIVE_BIT), bool(cot & TEST_BIT),
                  originator, ca), need


# type ID -> (TypeId member, element size, untimed element decoder, time tag offset in the
# element or None, time tag size): one lookup per ASDU for what decode_asdu needs
_TYPES: dict[int, tuple[TypeId, int | None, Any, int | None, int]] = {
    int(t): (TypeId(t), c.size, c.decode_untimed,
             None if c.time_size is None or c.size is None else c.size - c.time_size,
             int(c.time_size or 0))
    for t, c in ELEMENTS.items()}
_CAUSE_CODES = tuple(to_cause(c) for c in range(64))
# Decoded time tags by their octets. Objects of one ASDU (and often of a burst of ASDUs)
# share a tag, and Time is immutable, so equal octets can share one Time (cleared when full;
# threads may share it: each dict operation is atomic, a lost entry only costs a decode).
_TIME_CACHE: dict[bytes, Time] = {}
_TIME_CACHE_LIMIT = 4096
_TIME_SIZES = {3: TimeSize.THREE, 7: TimeSize.SEVEN}
_new = tuple.__new__


def _time_tag(raw: bytes) -> Time:
    """The Time of a tag's octets (3 or 7), through :data:`_TIME_CACHE`."""
    time = _TIME_CACHE.get(raw)
    if time is None:
        if len(_TIME_CACHE) >= _TIME_CACHE_LIMIT:
            _TIME_CACHE.clear()
        time = _TIME_CACHE[raw] = decode_time(raw, 0, _TIME_SIZES[len(raw)])
    return time


def decode_asdu(data: bytes | bytearray | memoryview,
                profile: Profile = DEFAULT_PROFILE) -> ASDU | RawASDU:
    """Decode one ASDU.

    Raises:
        DecodeError: truncated identifier or objects, octets left after the last object, or
            SQ=1 object addresses running past the profile's IOA range.
    """
    layout = HEADER_LAYOUTS.get(profile) or header_layout(profile)
    type_at, vsq_at, cot_at, oa_at, ca_at, ca_size, o, ioa_size = layout
    end = len(data)
    kind = _TYPES.get(data[type_at]) if end >= o else None
    if kind is None:  # unknown type ID (or too short: decode_header raises)
        header, o = decode_header(data, profile)
        if header.type_id in NO_ADDRESS:
            data = bytes(data)
            value, time, qualifier = decode_secure(header.type_id, data, o, end,
                                                   header.num_objects, header.sequence, layout)
            return ASDU(header.type_id, header.sequence, header.cause,  # type: ignore[arg-type]
                        header.negative, header.test, header.originator,
                        header.common_address,
                        (InformationObject(None, value, None, time, None, qualifier),))
        return RawASDU(header.type_id, header.sequence, header.cause, header.negative,
                       header.test, header.originator, header.common_address,
                       header.num_objects, bytes(data[o:]))
    if type(data) is not bytes:
        data = bytes(data)  # slices of bytes are hashable (time tag cache keys)
    type_id, size, decode, t_off, t_size = kind
    vsq = data[vsq_at]
    cot = data[cot_at]
    sequence = (vsq & SQ_BIT) != 0
    count = vsq & COUNT_MASK
    # the ASDU's fields before its objects (what decode_header reads, inline)
    identifier = (type_id, sequence, _CAUSE_CODES[cot & CAUSE_MASK], (cot & NEGATIVE_BIT) != 0,
                  (cot & TEST_BIT) != 0, 0 if oa_at is None else data[oa_at],
                  data[ca_at] | data[ca_at + 1] << 8 if ca_size == 2 else data[ca_at])
    if sequence and count:
        if end - o < ioa_size:
            raise DecodeError("object address truncated", o)
        address = int.from_bytes(data[o:o + ioa_size], "little")
        if (address + count - 1) >> (8 * ioa_size):
            raise DecodeError(f"SQ=1 addresses {address}..{address + count - 1} exceed the "
                              f"{ioa_size}-octet IOA range", o, DecodeReason.ADDRESS_RANGE)
        o += ioa_size
        step = size
        first = o
    else:
        address = 0
        step = None if size is None else ioa_size + size
        first = o + ioa_size
    if step is None or end - o != count * step:
        # variable-size elements, or a length that is wrong: check object by object
        objects = _decode_checked(data, o, end, count, sequence, address, ioa_size, size,
                                  decode, t_off, t_size)
    else:
        # Fast path: the length is exactly right, so every object is complete and nothing
        # follows; one decoder call per object (plus a cache lookup for its time tag).
        # tuple.__new__ skips InformationObject's Python-level __new__.
        objects = []
        append = objects.append
        p = first
        for i in range(count):
            value, quality, select, qualifier = decode(data, p)
            if t_off is None:
                time = None
            else:
                t = p + t_off
                time = _time_tag(data[t:t + t_size])
            append(_new(InformationObject, (
                address + i if sequence else int.from_bytes(data[p - ioa_size:p], "little"),
                value, quality, time, select, qualifier)))
            p += step
    return _new(ASDU, (*identifier, tuple(objects)))


def _decode_checked(data: bytes, o: int, end: int, count: int, sequence: bool, address: int,
                    ioa_size: int, size: int | None, decode: Any, t_off: int | None,
                    t_size: int) -> list[InformationObject]:
    """decode_asdu's objects, checking each one's length (``o``: first octet after the
    SQ=1 address, or of the first SQ=0 object)."""
    objects = []
    for i in range(count):
        if sequence:
            s = size if size is not None else variable_size(data, o, end - o)
            if end - o < s:
                raise DecodeError(f"object {i} of {count} truncated: {end - o} of {s} octets", o)
            p = o
            obj_address = address + i
        else:
            if size is not None:
                s = ioa_size + size
                if end - o < s:
                    raise DecodeError(f"object {i} of {count} truncated: "
                                      f"{end - o} of {s} octets", o)
            else:
                if end - o < ioa_size:
                    raise DecodeError(f"object {i} of {count} truncated", o)
                s = ioa_size + variable_size(data, o + ioa_size, end - o - ioa_size)
                if end - o < s:
                    raise DecodeError(f"object {i} of {count} truncated", o)
            p = o + ioa_size
            obj_address = int.from_bytes(data[o:p], "little")
        value, quality, select, qualifier = decode(data, p)
        time = None if t_off is None else _time_tag(data[p + t_off:p + t_off + t_size])
        objects.append(InformationObject(obj_address, value, quality, time, select, qualifier))
        o += s
    if o != end:
        raise DecodeError(f"{end - o} octets after the last of {count} objects", o,
                          DecodeReason.TRAILING_OCTETS)
    return objects


def _check(name: str, value: Any, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise EncodeError(name, f"{value!r} outside [0, {high}]")
    return value


def _identifier(asdu: ASDU | RawASDU, count: int, profile: Profile) -> bytearray:
    out = bytearray()
    out.append(_check("type_id", asdu.type_id, 255))
    out.append(_check("count", count, 127) | (0x80 if asdu.sequence else 0))
    out.append(_check("cause", asdu.cause, 63) | (0x40 if asdu.negative else 0)
               | (0x80 if asdu.test else 0))
    if profile.cot_size == 2:
        out.append(_check("originator", asdu.originator, 255))
    elif asdu.originator:
        raise EncodeError("originator", "the profile has no originator address (COT 1 octet)")
    ca_max = 0xFF if profile.ca_size == 1 else 0xFFFF
    out += _check("common_address", asdu.common_address, ca_max).to_bytes(profile.ca_size,
                                                                           "little")
    return out


def encode_asdu(asdu: ASDU | RawASDU, profile: Profile = DEFAULT_PROFILE) -> bytes:
    """Encode an ASDU (or a ``RawASDU`` as it was received).

    Raises:
        EncodeError: a field out of range, objects not consecutive under SQ=1, a type ID
            without a codec in an ``ASDU``; the message names the field.
    """
    if isinstance(asdu, RawASDU):
        return bytes(_identifier(asdu, asdu.num_objects, profile)) + bytes(asdu.payload)
    if asdu.type_id in NO_ADDRESS:
        if len(asdu.objects) != 1 or asdu.sequence:
            raise EncodeError("objects", f"type {int(asdu.type_id)} carries exactly one "
                                         "object, with SQ=0")
        obj = asdu.objects[0]
        if obj.address is not None:
            raise EncodeError("objects[0].address", "must be None: this type has no address")
        for name in ("quality", "select"):
            if getattr(obj, name) is not None:
                raise EncodeError(f"objects[0].{name}", "must be None for this type")
        out = _identifier(asdu, 1, profile)
        try:
            return bytes(out) + encode_secure(asdu.type_id, obj.value, obj.time, obj.qualifier)
        except EncodeError as exc:
            raise EncodeError(f"objects[0].{exc.field}", exc.reason) from exc
    codec = ELEMENTS.get(asdu.type_id)
    if codec is None:
        raise EncodeError("type_id", f"{asdu.type_id} has no element codec; use RawASDU")
    objects = asdu.objects
    out = _identifier(asdu, len(objects), profile)
    ioa_size = profile.ioa_size
    ioa_max = (1 << (8 * ioa_size)) - 1
    encode = codec.encode
    first = 0
    for i, obj in enumerate(objects):
        if asdu.sequence:
            if i == 0:
                first = _check("objects[0].address", obj.address, ioa_max)
                out += first.to_bytes(ioa_size, "little")
            elif obj.address != first + i:
                raise EncodeError(f"objects[{i}].address",
                                  f"{obj.address} breaks the SQ=1 sequence from "
                                  f"{objects[0].address}")
            elif first + i > ioa_max:
                raise EncodeError(f"objects[{i}].address", f"{obj.address} outside "
                                  f"[0, {ioa_max}]")
        else:
            out += _check(f"objects[{i}].address", obj.address, ioa_max).to_bytes(
                ioa_size, "little")
        try:
            out += encode(obj.value, obj.quality, obj.time, obj.select, obj.qualifier)
        except EncodeError as exc:
            raise EncodeError(f"objects[{i}].{exc.field}", exc.reason) from exc
    return bytes(out)
