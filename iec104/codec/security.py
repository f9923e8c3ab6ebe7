"""Secure authentication messages (IEC 62351-5 as mapped by IEC 60870-5-7), type IDs 81-95.

Theory of operation
-------------------
These ASDUs carry one information object *without* an information object address (its
``InformationObject.address`` is None), so they cannot use the address-then-element layout
of ``elements.py``; :func:`decode_secure` and :func:`encode_secure` handle what follows the
data unit identifier instead. (S_IT_TC_1, 41, security statistics, does have an address and
a fixed element: it lives in the ``elements.py`` table.)

Layout after the data unit identifier, as IEC 60870-5-7 defines it and Wireshark reads it::

    S_KR_NA_1 (84)            USR(2)
    S_CH/RP/AR/KS/KC/ER (81-83, 85-87)
                              segmentation octet: FIN(0x80) FIR(0x40) ASN(6 bits), then a
                              segment of the message; a message that fits one ASDU has FIR
                              and FIN both set. Message fields (little endian):
        81 challenge          CSQ(4) USR(2) MAL(1) RSC(1) CLN(2) challenge(CLN)
        82 reply              CSQ(4) USR(2) HLN(2) MAC(HLN)
        83 aggressive mode    ASDU(its own length) CSQ(4) USR(2) MAC(to the end)
        85 key status         KSQ(4) USR(2) KWA(1) KST(1) MAL(1) CLN(2) challenge(CLN)
                              MAC(to the end)
        86 key change         KSQ(4) USR(2) WKL(2) wrapped key(WKL)
        87 error              CSQ(4) USR(2) AID(2) ERR(1) ETM(CP56Time2a, 7) ELN(2) text(ELN)
    S_UC_NA_1, S_US_NA_1..S_UF_NA_1 (88, 90-95)
                              certificates, user status and update keys: kept opaque
                              (:class:`SecurityData`), as Wireshark does.

The object's ``qualifier`` is the segmentation octet (None for 84 and 88-95); its ``time`` is
the error time stamp of S_ER_NA_1. A segment of a message sent in several ASDUs (FIR or FIN
clear) is kept as :class:`SecurityData`: the fields only make sense once the segments are
joined. The VSQ of these ASDUs says one object (SQ=0, count 1); anything else is refused.
Cryptography (checking MACs, unwrapping keys) is out of scope: a dissector has no keys.
"""

from __future__ import annotations

from typing import Any

from .elements import ELEMENTS, variable_size
from .errors import DecodeError, DecodeReason, EncodeError
from .header import COUNT_MASK, SQ_BIT, HeaderLayout
from .timetag import Time, TimeSize, decode_time, encode_time
from .values import (
    AggressiveModeRequest,
    AuthenticationChallenge,
    AuthenticationErrorValue,
    AuthenticationReply,
    KeyChange,
    KeyStatus,
    KeyStatusRequest,
    SecurityData,
)

SEGMENTED = frozenset((81, 82, 83, 85, 86, 87))
"""Type IDs whose message follows a segmentation octet."""
OPAQUE = frozenset((88, 90, 91, 92, 93, 94, 95))
"""Type IDs whose content this codec keeps as octets."""
NO_ADDRESS = SEGMENTED | OPAQUE | {84}
"""Type IDs of ASDUs whose one object has no information object address."""

FIN, FIR, ASN = 0x80, 0x40, 0x3F  # the segmentation octet's bits
WHOLE = FIN | FIR
"""Segmentation bits of a message that fits one ASDU."""

_ETM = TimeSize.SEVEN


class _Reader:
    """Bounds-checked little-endian reads over ``data[o:end]`` (DecodeError past the end)."""

    __slots__ = ("data", "end", "o", "what")

    def __init__(self, data: bytes, o: int, end: int, what: str) -> None:
        self.data, self.o, self.end, self.what = data, o, end, what

    def take(self, n: int, field: str) -> bytes:
        if self.end - self.o < n:
            raise DecodeError(f"{self.what} {field} truncated: {self.end - self.o} of {n} "
                              f"octets", self.o)
        out = self.data[self.o:self.o + n]
        self.o += n
        return out

    def uint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "little")

    def rest(self) -> bytes:
        out = self.data[self.o:self.end]
        self.o = self.end
        return out


def _asdu_length(data: bytes, o: int, end: int, header: HeaderLayout) -> int:
    """Octets of the ASDU at ``o`` (S_AR_NA_1 wraps one, of the message's profile), from its
    type's element size."""
    head, ioa_size = header.objects_at, header.ioa_size
    if end - o < head:
        raise DecodeError("S_AR_NA_1 authenticated ASDU truncated", o)
    type_id, vsq = data[o + header.type_id_at], data[o + header.vsq_at]
    codec = ELEMENTS.get(type_id)
    if codec is None:
        raise DecodeError(f"S_AR_NA_1 authenticates type {type_id}, whose length is unknown",
                          o, DecodeReason.SECURE_MESSAGE)
    sequence, count = (vsq & SQ_BIT) != 0, vsq & COUNT_MASK
    p = o + head
    for i in range(count):
        if not sequence or i == 0:
            p += ioa_size
        size = codec.size if codec.size is not None else variable_size(data, p, end - p)
        p += size
    if p > end:
        raise DecodeError("S_AR_NA_1 authenticated ASDU truncated", o)
    return p - o


# The message layouts, field by field: (attribute, wire name, kind, size). Kinds: "u" an
# unsigned little-endian integer of ``size`` octets; "len" octets preceded by their length in
# ``size`` octets (the wire name is the length's: CLN, HLN, WKL, ELN); "text" the same, UTF-8; "rest" octets to the end of the message; "asdu" an
# ASDU of the profile (its length from its type); "time" the CP56Time2a that goes into the
# object's ``time`` (attribute None). decode_secure and encode_secure both read this table.
_U, _LEN, _TEXT, _REST, _ASDU, _TIME = "u", "len", "text", "rest", "asdu", "time"
_CSQ, _KSQ, _USR = ("csq", "CSQ", _U, 4), ("ksq", "KSQ", _U, 4), ("user", "USR", _U, 2)
_MAL = ("mac_algorithm", "MAL", _U, 1)
LAYOUTS: dict[int, tuple[type, tuple[tuple[str | None, str, str, int], ...]]] = {
    81: (AuthenticationChallenge, (_CSQ, _USR, _MAL, ("reason", "RSC", _U, 1),
                                   ("challenge", "CLN", _LEN, 2))),
    82: (AuthenticationReply, (_CSQ, _USR, ("mac", "HLN", _LEN, 2))),
    83: (AggressiveModeRequest, (("asdu", "ASDU", _ASDU, 0), _CSQ, _USR,
                                 ("mac", "MAC", _REST, 0))),
    84: (KeyStatusRequest, (_USR,)),
    85: (KeyStatus, (_KSQ, _USR, ("key_wrap_algorithm", "KWA", _U, 1),
                     ("key_status", "KST", _U, 1), _MAL,
                     ("challenge", "CLN", _LEN, 2), ("mac", "MAC", _REST, 0))),
    86: (KeyChange, (_KSQ, _USR, ("wrapped_key", "WKL", _LEN, 2))),
    87: (AuthenticationErrorValue, (_CSQ, _USR, ("association_id", "AID", _U, 2),
                                    ("error_code", "ERR", _U, 1), (None, "ETM", _TIME, 7),
                                    ("text", "ELN", _TEXT, 2))),
}
"""Field layout of each decoded secure message type (after the segmentation octet)."""


def decode_secure(type_id: int, data: bytes, o: int, end: int, count: int, sequence: bool,
                  header: HeaderLayout) -> tuple[Any, Time | None, int | None]:
    """``(value, time, qualifier)`` of the one object of a secure message at ``data[o:end]``
    (``header``: the layout of the message's profile, for a wrapped ASDU).

    Raises:
        DecodeError: a VSQ other than one object, truncated fields, octets left over.
    """
    name = f"type {type_id}"
    if count != 1 or sequence:
        raise DecodeError(f"{name} carries one object without address; the VSQ says "
                          f"{count}{' (SQ=1)' if sequence else ''}", 1,
                          DecodeReason.SECURE_MESSAGE)
    r = _Reader(data, o, end, name)
    if type_id in OPAQUE:
        return SecurityData(r.rest()), None, None
    control = None
    if type_id in SEGMENTED:
        control = r.uint(1, "segmentation octet")
        if control & WHOLE != WHOLE:
            return SecurityData(r.rest()), None, control
    cls, layout = LAYOUTS[type_id]
    fields: list[Any] = []
    time = None
    for _attr, wire, kind, size in layout:
        if kind == _U:
            fields.append(r.uint(size, wire))
        elif kind in (_LEN, _TEXT):
            octets = r.take(r.uint(size, wire), f"octets counted by {wire}")
            fields.append(octets.decode("utf-8", "surrogateescape") if kind == _TEXT
                          else octets)
        elif kind == _REST:
            fields.append(r.rest())
        elif kind == _ASDU:
            fields.append(r.take(_asdu_length(data, r.o, end, header), wire))
        else:  # _TIME
            time = decode_time(r.take(size, wire), 0, _ETM)
    _check_end(r)
    return cls(*fields), time, control


def _check_end(r: _Reader) -> None:
    if r.o != r.end:
        raise DecodeError(f"{r.end - r.o} octets after the end of the {r.what} message", r.o,
                          DecodeReason.TRAILING_OCTETS)


# -- encoding ------------------------------------------------------------------------------

def _uint(name: str, value: Any, size: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value < 1 << (8 * size):
        raise EncodeError(name, f"{value!r} outside [0, {(1 << (8 * size)) - 1}]")
    return value.to_bytes(size, "little")


def _octets(name: str, value: Any, length_size: int = 0) -> bytes:
    """``value`` as octets, preceded by its length in ``length_size`` octets (if any)."""
    if not isinstance(value, (bytes, bytearray)):
        raise EncodeError(name, f"{type(value).__name__} is not bytes")
    if length_size and len(value) >= 1 << (8 * length_size):
        raise EncodeError(name, f"{len(value)} octets do not fit a {length_size}-octet length")
    return (len(value).to_bytes(length_size, "little") if length_size else b"") + bytes(value)


def _expect(value: Any, cls: type) -> Any:
    if not isinstance(value, cls):
        raise EncodeError("value", f"{type(value).__name__} is not {cls.__name__}")
    return value


def encode_secure(type_id: int, value: Any, time: Any, qualifier: Any) -> bytes:
    """The octets after the data unit identifier of a secure message (one object).

    Raises:
        EncodeError: a field out of range or of the wrong type; the message names it.
    """
    if type_id in OPAQUE or (type_id in SEGMENTED and isinstance(value, SecurityData)):
        body = _octets("value.data", _expect(value, SecurityData).data)
        has_time = False
    elif type_id in LAYOUTS:
        cls, layout = LAYOUTS[type_id]
        v = _expect(value, cls)
        parts = []
        has_time = False
        for attr, _wire, kind, size in layout:
            field = None if attr is None else getattr(v, attr)
            name = f"value.{attr}"
            if kind == _U:
                parts.append(_uint(name, field, size))
            elif kind == _TEXT:
                if not isinstance(field, str):
                    raise EncodeError(name, f"{type(field).__name__} is not str")
                parts.append(_octets(name, field.encode("utf-8", "surrogateescape"), size))
            elif kind == _LEN:
                parts.append(_octets(name, field, size))
            elif kind in (_REST, _ASDU):
                parts.append(_octets(name, field))
            else:  # _TIME
                parts.append(encode_time(time, _ETM))
                has_time = True
        body = b"".join(parts)
    else:
        raise EncodeError("type_id", f"{type_id} is no secure authentication message")
    if not has_time and time is not None:
        raise EncodeError("time", f"must be None for type {type_id}, got {time!r}")
    if type_id in SEGMENTED:
        control = _uint("qualifier", qualifier, 1)
        if not isinstance(value, SecurityData) and qualifier & WHOLE != WHOLE:
            raise EncodeError("qualifier", "a whole message needs FIR and FIN set "
                                           f"(0xC0), got {qualifier:#04x}")
        return control + body
    if qualifier is not None:
        raise EncodeError("qualifier", f"must be None for type {type_id}, got {qualifier!r}")
    return body
