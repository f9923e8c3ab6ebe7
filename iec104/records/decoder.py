"""One direction of one TCP connection: bytes in, rows out.

:class:`DirectionDecoder` owns a :class:`~iec104.codec.Framer` and appends what it finds to
a shared :class:`~iec104.records.builder.RecordBuilder`. The offline dissector, the
proxy and live capture feed it the same way; only where the bytes come from differs.
A gap (bytes lost in the capture) drops the partial APDU and resynchronises on the next
valid APDU, so nothing after the gap is lost.
"""

from __future__ import annotations

from ..codec import NEED_DATA, Framer, Malformed
from .builder import Endpoints, RecordBuilder


class DirectionDecoder:
    """Frame and record the bytes of one direction of one connection."""

    __slots__ = ("apdus", "builder", "endpoints", "framer")

    def __init__(self, endpoints: Endpoints, builder: RecordBuilder) -> None:
        self.endpoints = endpoints
        self.builder = builder
        # a builder that decodes by column needs only the checked octets of each APDU
        self.framer = Framer(decode=not getattr(builder, "decodes_octets", False))
        self.apdus = 0

    def feed(self, time_ns: int | None, frame: int | None,
             data: bytes | bytearray | memoryview) -> int:
        """Add received bytes; records every APDU they complete, attributed to ``frame``.

        Returns the number of APDUs (and malformed runs) recorded.
        """
        framer = self.framer
        framer.feed(data)
        builder = self.builder
        ep = self.endpoints
        n = 0
        while True:
            event = framer.next_event()
            if event is NEED_DATA:
                break
            if type(event) is Malformed:
                builder.add_malformed(time_ns, frame, ep, event)
            else:
                builder.add_frame(time_ns, frame, ep, event)  # type: ignore[arg-type]
            n += 1
        self.apdus += n
        return n

    def gap(self, time_ns: int | None, frame: int | None, missing: int, detail: str = "") -> None:
        """Record lost bytes and drop the partial APDU buffered before them."""
        dropped = self.framer.reset(self.framer.offset + self.framer.pending + missing)
        if dropped:
            detail = (f"{len(dropped)} buffered octets of an incomplete APDU dropped"
                      + (f"; {detail}" if detail else ""))
        self.builder.add_gap(time_ns, frame, self.endpoints, missing, detail)

    def close(self, time_ns: int | None, frame: int | None) -> None:
        """End of stream: bytes left over are reported as a truncated APDU."""
        rest = self.framer.reset()
        if rest:
            self.builder.add_malformed(time_ns, frame, self.endpoints,
                                       Malformed(self.framer.offset - len(rest), rest,
                                                 f"stream ended inside an APDU "
                                                 f"({len(rest)} octets)"))
