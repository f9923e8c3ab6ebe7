"""Small ASDUs the proxy, rules and recorder tests send (encoded with our codec)."""

from __future__ import annotations

from iec104.codec import ASDU, Cause, FloatingValue, InformationObject, Quality, TypeId, encode_asdu

GOOD = Quality(False, False, False, False, False)
"""A quality descriptor with no flag set."""


def measurement(ioa: int, value: float = 1.0) -> bytes:
    """A spontaneous M_ME_NC_1 (short float) for ``ioa`` in [0, 16777215], common address 1."""
    return encode_asdu(ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
                            (InformationObject(ioa, FloatingValue(value), GOOD),)))
