"""Decide whether the first bytes of a TCP stream look like IEC 60870-5-104 APDUs.

Used to pick up IEC 104 on non-standard ports. Only the APCI framing rules are checked, and
they are the codec's (:func:`iec104.codec.apci.apdu_size`: start octet, length octet, the
I/S/U control-field formats), so the heuristic and the decoder cannot disagree on what an
APDU header is.

The check errs on the side of saying "no": a stream is accepted only if it *starts* with a
valid APDU and every further complete APDU in the inspected octets is valid too.
"""

from __future__ import annotations

from ..codec.apci import apdu_size

__all__ = ["apdu_size", "looks_like_iec104"]


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
