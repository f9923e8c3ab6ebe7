"""One error hierarchy for the whole toolkit.

``DecodeError`` is the only exception that decoding bad bytes may raise: it carries the
byte ``offset`` (relative to the start of the buffer given to the decoder), a short human
``reason`` and a machine-readable ``code`` (:class:`DecodeReason`), so that callers branch on
the code and never on the text. ``EncodeError`` names the field whose value cannot be
represented.

Every exception raised anywhere in the package derives from :class:`Iec104Error`; where
callers have long relied on a builtin (``ValueError``, ``OSError``, ``RuntimeError``), that
builtin stays a second base.
"""

from __future__ import annotations

import enum


class DecodeReason(enum.StrEnum):
    """What kind of problem a :class:`DecodeError` reports (stable values, safe to store)."""

    TRUNCATED = "truncated"
    """The buffer ends before the structure it announces (APDU, ASDU header, object)."""
    START_BYTE = "start_byte"
    """The first octet of an APDU is not 0x68."""
    APDU_LENGTH = "apdu_length"
    """The APCI length octet is outside [4, 253] or disagrees with the octets present."""
    CONTROL_FIELD = "control_field"
    """The four control octets are not a valid I-, S- or U-format."""
    ADDRESS_RANGE = "address_range"
    """SQ=1 object addresses run past the largest address of the profile."""
    TRAILING_OCTETS = "trailing_octets"
    """Octets are left over after the last information object."""
    TIME_TAG = "time_tag"
    """A time tag is no calendar date, or a field is out of its range."""
    SECURE_MESSAGE = "secure_message"
    """A secure authentication message (type IDs 81-95) has a VSQ other than one object, or
    wraps an ASDU (S_AR_NA_1) whose length its type does not give."""


class Iec104Error(Exception):
    """Base class of every error raised by iec104."""


class DecodeError(Iec104Error, ValueError):
    """Malformed input bytes.

    Attributes:
        reason: what is wrong, for people, e.g. ``"start octet 0x05 is not 0x68"``.
        offset: byte offset of the problem in the decoded buffer (>= 0).
        code: what is wrong, for programs (:class:`DecodeReason`).
    """

    def __init__(self, reason: str, offset: int = 0,
                 code: DecodeReason = DecodeReason.TRUNCATED) -> None:
        super().__init__(f"{reason} (at offset {offset})")
        self.reason = reason
        self.offset = offset
        self.code = code

    def shifted(self, delta: int) -> DecodeError:
        """The same error with its offset moved by ``delta`` (for nested decoders)."""
        return DecodeError(self.reason, self.offset + delta, self.code)


class EncodeError(Iec104Error, ValueError):
    """A value that cannot be encoded.

    Attributes:
        field: dotted name of the offending field, e.g. ``"objects[0].address"``.
        reason: why it cannot be encoded.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class LocalProtocolError(Iec104Error):
    """We were asked to do something the protocol state does not allow."""


class RemoteProtocolError(Iec104Error):
    """The peer violated the protocol (sequence numbers, unexpected frames, timeouts)."""
