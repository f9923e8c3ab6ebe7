"""Errors and warnings raised by the capture reader.

* :class:`CaptureError` -- the input is not a capture we can read at all (not pcap/pcapng,
  empty, unreadable header). Raised before the first packet is produced, so nothing is lost.
* :class:`CaptureWarning` -- the file is a capture but stops being readable part-way through
  (truncated last record, corrupt block). Every whole packet before the damage has already been
  yielded; the reader then issues this warning, records the reason on ``reader.problem`` and
  stops. Callers that prefer an exception can turn warnings into errors
  (``warnings.simplefilter("error", CaptureWarning)``) or check ``reader.problem``.
"""

from __future__ import annotations

from ..codec.errors import Iec104Error

__all__ = ["CaptureError", "CaptureWarning"]


class CaptureError(Iec104Error, ValueError):
    """The input is not a readable pcap/pcapng capture.

    Attributes:
        source: the file name (or ``repr`` of the file object) the error is about.
        reason: a short human-readable reason, without the file name.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class CaptureWarning(UserWarning):
    """The capture is damaged part-way through; packets before the damage were delivered."""
