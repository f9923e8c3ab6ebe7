"""APCI: the 104 transport frame around an ASDU.

An APDU is ``0x68 | length | 4 control octets | ASDU``; ``length`` counts the control
octets and the ASDU, so it is in [4, 253]. The control field selects the format:

* I-frame (bit 0 of octet 1 is 0): send and receive sequence numbers, then an ASDU;
* S-frame (octet 1 == 0x01): receive sequence number only, no ASDU;
* U-frame (octet 1 & 0x03 == 0x03): exactly one of STARTDT/STOPDT/TESTFR act/con.

This module is the one home of the APCI header rules. The yes/no rule is data:
:data:`CONTROL_RULES` says, per first control octet, which length octets and which other
control octets a valid APCI has; :func:`apdu_size` (the dissector's port heuristic) and
:func:`apdu_run` (its bulk form, the dissector's framing) apply it octet by octet, and
the dissector's framing by column (``iec104.records.framing``) applies the same table to
whole arrays. :func:`check_apdu`/:func:`decode_apdu` say *why* an APCI is not valid (their
verdicts are tested against the table for every control octet); :func:`encode_apdu` and
the unchecked fast encoders the session's send path uses read the constants below.

Sequence numbers are 15 bits and wrap around; :func:`seq_add` and :func:`seq_diff`
do the modular arithmetic so callers never compare raw numbers.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from .errors import DecodeError, DecodeReason, EncodeError

START = 0x68
MIN_LENGTH = 4
"""Smallest APDU length octet (the four control octets, no ASDU)."""
MAX_LENGTH = 253
"""Largest APDU length octet (the whole APDU is then 255 octets)."""
MAX_ASDU_SIZE = MAX_LENGTH - 4
"""Largest ASDU carried by one I-frame (249 octets)."""
SEQ_MODULO = 1 << 15
CONTROL_AT = 2
"""Offset of the four control octets in an APDU (after the start and length octets)."""
ASDU_AT = 6
"""Offset of an I-frame's ASDU in its APDU (see ``header.HeaderLayout`` for what follows)."""

_CONTROL = struct.Struct("<HH")


class UFunction(enum.IntEnum):
    """U-frame function (control octet 1)."""

    STARTDT_ACT = 0x07
    STARTDT_CON = 0x0B
    STOPDT_ACT = 0x13
    STOPDT_CON = 0x23
    TESTFR_ACT = 0x43
    TESTFR_CON = 0x83


_U_FUNCTIONS = {m.value: m for m in UFunction}


class IFrame(NamedTuple):
    """Information transfer frame.

    Attributes:
        ssn: send sequence number N(S) in [0, 32767].
        rsn: receive sequence number N(R) in [0, 32767].
        asdu: the raw ASDU bytes, 1..249 octets; decode with ``decode_asdu``.
    """

    ssn: int
    rsn: int
    asdu: bytes


class SFrame(NamedTuple):
    """Supervisory frame: acknowledges I-frames up to ``rsn`` - 1 (rsn in [0, 32767])."""

    rsn: int


class UFrame(NamedTuple):
    """Unnumbered control frame."""

    function: UFunction


APDU = IFrame | SFrame | UFrame


_new = tuple.__new__


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` modulo 2**15."""
    return (seq + n) % SEQ_MODULO


def seq_diff(later: int, earlier: int) -> int:
    """Frames from ``earlier`` to ``later`` modulo 2**15, in [0, 32767]."""
    return (later - earlier) % SEQ_MODULO


def check_apdu(data: bytes | bytearray | memoryview) -> None:
    """Check that ``data`` is exactly one valid APDU (what :func:`decode_apdu` accepts)
    without building it: the framer's check when the caller decodes by column.

    Raises:
        DecodeError: as :func:`decode_apdu`.
    """
    size = len(data)
    if size < 6:
        raise DecodeError(f"APDU of {size} octets is shorter than 6", size,
                          DecodeReason.TRUNCATED)
    if data[0] != START:
        raise DecodeError(f"start octet 0x{data[0]:02x} is not 0x68", 0, DecodeReason.START_BYTE)
    length = data[1]
    if length < MIN_LENGTH or length > MAX_LENGTH:
        raise DecodeError(f"APDU length {length} outside [4, 253]", 1, DecodeReason.APDU_LENGTH)
    if length + 2 != size:
        raise DecodeError(f"APDU length {length} does not match {size - 2} octets", 1,
                          DecodeReason.APDU_LENGTH)
    c1 = data[2]
    if not c1 & 0x01:
        if data[4] & 0x01:
            raise DecodeError("I-frame receive sequence number has bit 0 set", 4,
                              DecodeReason.CONTROL_FIELD)
        if length == 4:
            raise DecodeError("I-frame without ASDU", 1, DecodeReason.APDU_LENGTH)
        return
    if length != 4:
        raise DecodeError(f"{'S' if c1 & 0x02 == 0 else 'U'}-frame with length {length}", 1,
                          DecodeReason.APDU_LENGTH)
    if c1 & 0x03 == 0x01:
        if c1 != 0x01 or data[3] != 0:
            raise DecodeError("S-frame control octets 1-2 are not 0x01 0x00", 2,
                              DecodeReason.CONTROL_FIELD)
        if data[4] & 0x01:
            raise DecodeError("S-frame receive sequence number has bit 0 set", 4,
                              DecodeReason.CONTROL_FIELD)
        return
    if c1 not in _U_FUNCTIONS:
        raise DecodeError(f"U-frame function 0x{c1:02x} is not exactly one function", 2,
                          DecodeReason.CONTROL_FIELD)
    if data[3] or data[4] or data[5]:
        raise DecodeError("U-frame control octets 2-4 are not zero", 3,
                          DecodeReason.CONTROL_FIELD)


def decode_apdu(data: bytes | bytearray | memoryview) -> APDU:
    """Decode exactly one APDU (start octet through the end of its ASDU).

    Raises:
        DecodeError: bad start octet, length octet not matching the data, or a control
            field that is no valid I/S/U format (see :func:`check_apdu`).
    """
    check_apdu(data)
    c1 = data[2]
    if not c1 & 0x01:
        first, second = _CONTROL.unpack_from(data, CONTROL_AT)
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (the dissector's hot path)
        return _new(IFrame, (first >> 1, second >> 1, bytes(data[ASDU_AT:])))
    if c1 == 0x01:
        return SFrame(_CONTROL.unpack_from(data, CONTROL_AT)[1] >> 1)
    return UFrame(_U_FUNCTIONS[c1])


class ControlRule(NamedTuple):
    """What a valid APCI holds, given its first control octet (an entry of
    :data:`CONTROL_RULES`).

    Attributes:
        min_length: smallest valid length octet, in [4, 254].
        max_length: largest valid length octet, in [4, 253]; below ``min_length`` when no
            valid APCI starts with this first control octet.
        mask: over the control field read as one little-endian 32-bit word (first
            control octet in bits 0-7): ``word & mask == value`` for a valid APCI.
        value: see ``mask``.
    """

    min_length: int
    max_length: int
    mask: int
    value: int


def _control_rule(c1: int) -> ControlRule:
    if not c1 & 0x01:  # I-format: an ASDU; bit 0 of octets 1 and 3 (N(S), N(R)) is 0
        return ControlRule(MIN_LENGTH + 1, MAX_LENGTH, 0x0001_0001, 0)
    if c1 == 0x01:  # S-format: no ASDU; octets 1-2 are 0x01 0x00, bit 0 of octet 3 is 0
        return ControlRule(MIN_LENGTH, MIN_LENGTH, 0x0001_FFFF, 0x01)
    if c1 in _U_FUNCTIONS:  # U-format: no ASDU; exactly one function, octets 2-4 zero
        return ControlRule(MIN_LENGTH, MIN_LENGTH, 0xFFFF_FFFF, c1)
    return ControlRule(MIN_LENGTH + 1, MIN_LENGTH, 0, 0)  # no format: no length is valid


CONTROL_RULES: tuple[ControlRule, ...] = tuple(_control_rule(c1) for c1 in range(256))
"""THE yes/no APCI rule, indexed by the first control octet (0..255); see
:class:`ControlRule`. An APCI is the six octets ``0x68 | length | 4 control octets``."""

APCI = struct.Struct("<BBI")
"""The six APCI octets as (start octet, length octet, control word as in :class:`ControlRule`)."""


def apdu_size(data: bytes | bytearray | memoryview, offset: int = 0) -> int | None:
    """Size of the APDU that starts at ``offset`` (2 + length octet) if its APCI is valid.

    The same rules as :func:`decode_apdu` (:data:`CONTROL_RULES`), without building a
    frame or a reason: the cheap question "is this an APDU header?" that the dissector's
    port heuristic asks.

    Returns:
        The total APDU size in octets (6..255), ``0`` if fewer than 6 octets are available to
        judge (and those present are valid so far), or ``None`` if the octets at ``offset``
        are not a valid APCI.
    """
    available = len(data) - offset
    if available < 6:
        if available > 0 and data[offset] != START:
            return None
        if available >= 2 and not MIN_LENGTH <= data[offset + 1] <= MAX_LENGTH:
            return None
        return 0
    start, length, word = APCI.unpack_from(data, offset)
    lo, hi, mask, value = CONTROL_RULES[word & 0xFF]
    if start != START or length < lo or length > hi or word & mask != value:
        return None
    return length + 2


def apdu_run(data: bytes | bytearray, offset: int, end: int) -> list[int]:
    """Where the valid APDUs that follow each other from ``offset`` end: :func:`apdu_size`
    over and over, in one loop (the dissector's framing of whole blocks).

    Returns:
        The end offset of each whole APDU with a valid APCI in ``data[offset:end]``,
        up to the first octets that are not one (or not whole before ``end``).
    """
    out: list[int] = []
    add = out.append
    rules = CONTROL_RULES
    unpack = APCI.unpack_from
    pos = offset
    # apdu_size's test, inlined: a call per APDU would cost as much as the checks
    while pos + 6 <= end:
        start, length, word = unpack(data, pos)
        if start != START:
            break
        lo, hi, mask, value = rules[word & 0xFF]
        if length < lo or length > hi or word & mask != value:
            break
        pos += length + 2
        if pos > end:
            break
        add(pos)
    return out


def i_frame_header(ssn: int, rsn: int, asdu_size: int) -> bytes:
    """The six octets before an ASDU of ``asdu_size`` in [1, 249] octets, unchecked.

    For callers that checked the numbers already (the session's send path); everyone else
    uses :func:`encode_apdu`.
    """
    return bytes((START, asdu_size + 4, (ssn << 1) & 0xFF, ssn >> 7, (rsn << 1) & 0xFF,
                  rsn >> 7))


def s_frame(rsn: int) -> bytes:
    """The S-frame acknowledging up to ``rsn`` - 1 (``rsn`` in [0, 32767], unchecked)."""
    return bytes((START, MIN_LENGTH, 0x01, 0x00, (rsn << 1) & 0xFF, rsn >> 7))


def _check_seq(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEQ_MODULO:
        raise EncodeError(name, f"{value!r} outside [0, 32767]")


def encode_apdu(apdu: APDU) -> bytes:
    """Encode an APDU to its wire octets.

    Raises:
        EncodeError: sequence numbers outside [0, 32767], empty or oversized ASDU.
    """
    if type(apdu) is IFrame:
        _check_seq("ssn", apdu.ssn)
        _check_seq("rsn", apdu.rsn)
        if not isinstance(apdu.asdu, (bytes, bytearray, memoryview)):
            raise EncodeError("asdu", f"{type(apdu.asdu).__name__} is not bytes")
        size = len(apdu.asdu)
        if not 0 < size <= MAX_ASDU_SIZE:
            raise EncodeError("asdu", f"{size} octets outside [1, 249]")
        return i_frame_header(apdu.ssn, apdu.rsn, size) + bytes(apdu.asdu)
    if type(apdu) is SFrame:
        _check_seq("rsn", apdu.rsn)
        return s_frame(apdu.rsn)
    if type(apdu) is UFrame:
        if apdu.function not in _U_FUNCTIONS:
            raise EncodeError("function", f"{apdu.function!r} is no U-frame function")
        return bytes((START, 4, int(apdu.function), 0, 0, 0))
    raise EncodeError("apdu", f"{type(apdu).__name__} is not an IFrame, SFrame or UFrame")
