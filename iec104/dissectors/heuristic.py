"""Decide whether the first bytes of a TCP stream look like IEC 60870-5-104 APDUs.

Used to pick up IEC 104 on non-standard ports. Only the APCI framing rules are checked
(IEC 60870-5-104 clause 5):

* start byte ``0x68``; length octet ``4..253`` (it counts the 4 control octets and the ASDU);
* I-format: control octet 1 bit 0 = 0, octet 3 bit 0 = 0, and an ASDU follows (length > 4);
* S-format: octet 1 = ``0x01``, octet 2 = 0, octet 3 bit 0 = 0, length = 4;
* U-format: octet 1 is one of ``0x07 0x0B 0x13 0x23 0x43 0x83`` (exactly one function bit),
  octets 2..4 = 0, length = 4.

This is a deliberately small check, independent of the codec, that errs on the side of saying
"no": a stream is accepted only if it *starts* with a valid APDU and every further complete
APDU in the inspected bytes is valid too.
"""

from __future__ import annotations

__all__ = ["apdu_size", "looks_like_iec104"]

START = 0x68
_U_FUNCTIONS = frozenset((0x07, 0x0B, 0x13, 0x23, 0x43, 0x83))


def apdu_size(data: bytes | bytearray | memoryview, offset: int = 0) -> int | None:
    """Size of the APDU that starts at ``offset`` (2 + length octet) if its header is valid.

    Returns:
        The total APDU size in bytes (6..255), ``0`` if fewer than 6 bytes are available to
        judge, or ``None`` if the bytes at ``offset`` are not a valid APCI header.
    """
    if len(data) - offset < 6:
        if len(data) > offset and data[offset] != START:
            return None
        if len(data) - offset >= 2 and not 4 <= data[offset + 1] <= 253:
            return None
        return 0
    if data[offset] != START:
        return None
    length = data[offset + 1]
    if not 4 <= length <= 253:
        return None
    c1, c2, c3, c4 = data[offset + 2], data[offset + 3], data[offset + 4], data[offset + 5]
    if c1 & 0x01 == 0:  # I-format
        if length == 4 or c3 & 0x01:
            return None
    elif c1 & 0x03 == 0x01:  # S-format
        if c1 != 0x01 or c2 != 0 or c3 & 0x01 or length != 4:
            return None
    else:  # U-format
        if c1 not in _U_FUNCTIONS or c2 or c3 or c4 or length != 4:
            return None
    return length + 2


def looks_like_iec104(data: bytes | bytearray | memoryview, *, max_apdus: int = 8) -> bool | None:
    """Whether ``data`` (the first bytes of one direction of a stream) frames as IEC 104.

    Args:
        data: bytes from the very start of the direction (no garbage prefix allowed).
        max_apdus: how many consecutive APDUs to check at most.

    Returns:
        ``True`` if at least one complete APDU is present and every complete APDU checked is
        valid (a trailing incomplete APDU must have a valid header so far); ``False`` as soon as
        something is invalid; ``None`` if there are not yet enough bytes to decide.
    """
    offset = 0
    seen = 0
    n = len(data)
    while seen < max_apdus and offset < n:
        size = apdu_size(data, offset)
        if size is None:
            return False
        if size == 0:
            break
        if offset + size > n:  # header valid, body still incomplete
            break
        offset += size
        seen += 1
    return True if seen else None
