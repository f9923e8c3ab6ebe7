"""One error hierarchy for the whole toolkit.

``DecodeError`` is the only exception that decoding bad bytes may raise: it carries the
byte ``offset`` (relative to the start of the buffer given to the decoder) and a short
``reason``. ``EncodeError`` names the field whose value cannot be represented.
"""

from __future__ import annotations


class Iec104Error(Exception):
    """Base class of every error raised by iec104."""


class DecodeError(Iec104Error, ValueError):
    """Malformed input bytes.

    Attributes:
        reason: what is wrong, e.g. ``"start byte 0x05 is not 0x68"``.
        offset: byte offset of the problem in the decoded buffer (>= 0).
    """

    def __init__(self, reason: str, offset: int = 0) -> None:
        super().__init__(f"{reason} (at offset {offset})")
        self.reason = reason
        self.offset = offset

    def shifted(self, delta: int) -> DecodeError:
        """The same error with its offset moved by ``delta`` (for nested decoders)."""
        return DecodeError(self.reason, self.offset + delta)


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
