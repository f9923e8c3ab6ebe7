"""ASDU: data unit identifier plus information objects, for any field-size profile.

Layout (sizes from :class:`Profile`, 104 defaults in brackets)::

    type ID (1) | SQ + count (1) | T P/N cause(6) [+ originator] (COT 1|[2]) |
    common address (1|[2]) | objects

With SQ=0 every object carries its address (IOA 1|2|[3] octets); with SQ=1 only the first
does and the others follow at consecutive addresses. Unknown (private) type IDs decode to
:class:`RawASDU`, which keeps the header and the undecoded object octets.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .constants import Cause, TypeId, to_cause, to_type_id
from .elements import ELEMENTS, variable_size
from .errors import DecodeError, EncodeError
from .timetag import Time
from .values import ProtectionQuality, Quality, Value


class Profile(NamedTuple):
    """Field sizes of the data unit identifier and the object address.

    Attributes:
        cot_size: 1 (no originator address) or 2.
        ca_size: common address octets, 1 or 2.
        ioa_size: information object address octets, 1, 2 or 3.
    """

    cot_size: int = 2
    ca_size: int = 2
    ioa_size: int = 3

    def check(self) -> Profile:
        """Return self, or raise ``ValueError`` for sizes the standard does not define."""
        if self.cot_size not in (1, 2) or self.ca_size not in (1, 2) or \
                self.ioa_size not in (1, 2, 3):
            raise ValueError(f"unsupported profile {self}")
        return self


DEFAULT_PROFILE = Profile()
"""IEC 60870-5-104: COT 2 octets, common address 2, IOA 3."""


class InformationObject(NamedTuple):
    """One information object (see ``elements.py`` for which fields each type uses).

    Attributes:
        address: IOA in [0, 255 | 65535 | 16777215] depending on the profile.
        value: the value (``None`` for types that carry none, e.g. C_IC_NA_1).
        quality: ``Quality``/``ProtectionQuality`` for monitor types with quality, else None.
        time: CP24/CP56 time tag for time-tagged types, else None.
        select: S/E bit of commands (True = select), else None.
        qualifier: qualifier of commands/system/parameter/file types, else None.
    """

    address: int
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
    cot_size, ca_size = profile.cot_size, profile.ca_size
    need = 2 + cot_size + ca_size
    if len(data) < need:
        raise DecodeError(f"ASDU of {len(data)} octets is shorter than its "
                          f"{need}-octet identifier", len(data))
    vsq = data[1]
    cot = data[2]
    originator = data[3] if cot_size == 2 else 0
    o = 2 + cot_size
    ca = data[o] | data[o + 1] << 8 if ca_size == 2 else data[o]
    return Header(to_type_id(data[0]), bool(vsq & 0x80), vsq & 0x7F, to_cause(cot & 0x3F),
                  bool(cot & 0x40), bool(cot & 0x80), originator, ca), need


def decode_asdu(data: bytes | bytearray | memoryview,
                profile: Profile = DEFAULT_PROFILE) -> ASDU | RawASDU:
    """Decode one ASDU.

    Raises:
        DecodeError: truncated identifier or objects, octets left after the last object, or
            SQ=1 object addresses running past the profile's IOA range.
    """
    header, o = decode_header(data, profile)
    codec = ELEMENTS.get(header.type_id)
    if codec is None:
        return RawASDU(header.type_id, header.sequence, header.cause, header.negative,
                       header.test, header.originator, header.common_address, header.num_objects,
                       bytes(data[o:]))
    ioa_size = profile.ioa_size
    end = len(data)
    count = header.num_objects
    size = codec.size
    decode = codec.decode
    objects = []
    if header.sequence and count:
        if end - o < ioa_size:
            raise DecodeError("object address truncated", o)
        address = int.from_bytes(data[o:o + ioa_size], "little")
        if (address + count - 1) >> (8 * ioa_size):
            raise DecodeError(f"SQ=1 addresses {address}..{address + count - 1} exceed the "
                              f"{ioa_size}-octet IOA range", o)
        o += ioa_size
        for i in range(count):
            s = size if size is not None else variable_size(data, o, end - o)
            if end - o < s:
                raise DecodeError(f"object {i} of {count} truncated: {end - o} of {s} octets", o)
            objects.append(InformationObject(address + i, *decode(data, o)))
            o += s
    else:
        for i in range(count):
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
            address = data[o] if ioa_size == 1 else int.from_bytes(data[o:o + ioa_size],
                                                                     "little")
            objects.append(InformationObject(address, *decode(data, o + ioa_size)))
            o += s
    if o != end:
        raise DecodeError(f"{end - o} octets after the last of {count} objects", o)
    return ASDU(TypeId(header.type_id), header.sequence, header.cause, header.negative,
                header.test, header.originator, header.common_address, tuple(objects))


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
    codec = ELEMENTS.get(asdu.type_id)
    if codec is None:
        raise EncodeError("type_id", f"{asdu.type_id} has no element codec; use RawASDU")
    objects = asdu.objects
    out = _identifier(asdu, len(objects), profile)
    ioa_size = profile.ioa_size
    ioa_max = (1 << (8 * ioa_size)) - 1
    encode = codec.encode
    for i, obj in enumerate(objects):
        if asdu.sequence:
            if i == 0:
                out += _check("objects[0].address", obj.address, ioa_max).to_bytes(
                    ioa_size, "little")
            elif obj.address != objects[0].address + i:
                raise EncodeError(f"objects[{i}].address",
                                  f"{obj.address} breaks the SQ=1 sequence from "
                                  f"{objects[0].address}")
            elif obj.address > ioa_max:
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
