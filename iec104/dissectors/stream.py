"""Reassembled TCP streams -> IEC 104 records: the offline dissector's last stage.

Theory of operation
-------------------
:class:`StreamDecoder` is sans-IO: it takes the events of a
:class:`~iec104.dissectors.reassembly.Reassembler` one at a time and keeps one
:class:`~iec104.dissectors.decoder.DirectionDecoder` (a :class:`iec104.codec.Framer` plus the
record builder) per stream and direction:

* :class:`~.reassembly.StreamStart` creates the two direction decoders with the connection's
  endpoints (direction 0 = ``'c2s'``, from the TCP client; 1 = ``'s2c'``);
* :class:`~.reassembly.Data` feeds its bytes to the direction's framer. Every APDU the chunk
  completes is recorded with the chunk's frame number and time, i.e. an APDU is attributed to
  the frame that carried its *last* byte (what Wireshark does for reassembled PDUs). Octets
  that are not a valid APDU become a malformed row and the framer resynchronises;
* :class:`~.reassembly.Gap` records a gap row and resets the framer (the partial APDU before
  the hole is dropped and reported), so the first valid APDU after the hole is found again;
* :class:`~.reassembly.Fallback` records a connection-level row (``error`` starts with
  ``'dissector: '``) saying that the direction is delivered per segment from there on;
* :class:`~.reassembly.StreamEnd` closes both decoders (octets left in a framer are reported as
  a truncated APDU).

:func:`dissect` runs the whole chain (capture file -> packets -> TCP segments -> reassembly ->
records) and yields ``pyarrow.RecordBatch`` objects of :data:`iec104.analyzer.schema.SCHEMA`,
at most ``batch_rows`` rows each, so memory stays bounded on big captures.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, BinaryIO

from .capture import CaptureReader
from .decoder import DirectionDecoder
from .packet import decode_tcp
from .reassembly import Data, Event, Fallback, Gap, Reassembler, StreamEnd, StreamStart
from .records import Endpoints, RecordBuilder

if TYPE_CHECKING:
    import pyarrow as pa

    from ..codec import Profile

__all__ = ["StreamDecoder", "dissect", "dissect_table"]

_DIRECTIONS = ("c2s", "s2c")


class StreamDecoder:
    """Turn reassembly events into rows of a :class:`~.records.RecordBuilder`.

    Args:
        builder: where rows go (default: a new builder with ``profile``).
        profile: ASDU field sizes, used when ``builder`` is not given.

    Attributes:
        builder: the record builder (take batches from it as rows accumulate).
        fallbacks: number of directions that switched to per-segment delivery.
    """

    def __init__(self, builder: RecordBuilder | None = None, *,
                 profile: Profile | None = None) -> None:
        if builder is None:
            builder = RecordBuilder() if profile is None else RecordBuilder(profile)
        self.builder = builder
        self.fallbacks = 0
        self._decoders: dict[tuple[int, int], DirectionDecoder] = {}
        self._last: tuple[int, int] = (0, 0)  # (time_ns, frame) of the last event seen

    @property
    def apdus(self) -> int:
        """APDUs (and malformed runs) recorded by the open direction decoders so far."""
        return sum(d.apdus for d in self._decoders.values())

    def handle(self, event: Event) -> None:
        """Process one reassembly event."""
        kind = type(event)
        if kind is Data:
            assert isinstance(event, Data)
            self._last = (event.time_ns, event.frame)
            dec = self._decoders.get((event.stream, event.direction))
            if dec is not None:
                dec.feed(event.time_ns, event.frame, event.data)
        elif kind is StreamStart:
            assert isinstance(event, StreamStart)
            c = event.connection
            ends = ((c.src, c.sport), (c.dst, c.dport))
            for d in (0, 1):
                (src, sport), (dst, dport) = ends[d], ends[1 - d]
                self._decoders[(c.stream, d)] = DirectionDecoder(
                    Endpoints(c.stream, _DIRECTIONS[d], src, sport, dst, dport), self.builder)
        elif kind is Gap:
            assert isinstance(event, Gap)
            dec = self._decoders.get((event.stream, event.direction))
            if dec is not None:
                detail = "" if event.seq is None else f"TCP seq {event.seq}"
                dec.gap(event.time_ns, event.frame, event.missing or 0, detail)
        elif kind is StreamEnd:
            assert isinstance(event, StreamEnd)
            for d in (0, 1):
                dec = self._decoders.pop((event.stream, d), None)
                if dec is not None:
                    dec.close(event.time_ns, event.frame)
        elif kind is Fallback:
            assert isinstance(event, Fallback)
            self.fallbacks += 1
            dec = self._decoders.get((event.stream, event.direction))
            if dec is not None:
                self.builder.add_event(event.time_ns, event.frame, dec.endpoints,
                                       f"dissector: {event.reason}")

    def close(self) -> None:
        """Close decoders of streams that never got a StreamEnd (end of input)."""
        time_ns, frame = self._last
        for dec in self._decoders.values():
            dec.close(time_ns, frame)
        self._decoders.clear()


def dissect(
    source: str | os.PathLike[str] | BinaryIO | CaptureReader,
    ports: Iterable[int] | None = None,
    *,
    heuristic: bool = False,
    profile: Profile | None = None,
    batch_rows: int = 65536,
    reassembler: Reassembler | None = None,
) -> Iterator[pa.RecordBatch]:
    """Decode the IEC 104 traffic of a capture file into record batches.

    Args:
        source: path or binary file object of a pcap/pcapng capture (gzip allowed), or an
            open :class:`~.capture.CaptureReader` (whose ``problem`` the caller can check).
        ports: TCP ports of IEC 104 servers (either endpoint; default 2404).
        heuristic: also decode connections on other ports whose first bytes frame as IEC 104.
        profile: ASDU field sizes (default: the 104 profile, COT 2 / CA 2 / IOA 3).
        batch_rows: a batch is yielded once at least this many rows are pending.
        reassembler: a preconfigured :class:`~.reassembly.Reassembler` (then ``ports`` and
            ``heuristic`` are ignored); read its ``connections``/``stats`` afterwards.

    Yields:
        ``pyarrow.RecordBatch`` of :data:`iec104.analyzer.schema.SCHEMA` (the last one may be
        empty when the capture holds no IEC 104 at all).

    Raises:
        CaptureError: the input is not a capture (before anything is yielded).

    A capture damaged part-way through yields everything before the damage and issues a
    :class:`~iec104.dissectors.errors.CaptureWarning`.
    """
    r = reassembler if reassembler is not None else Reassembler(ports, heuristic=heuristic)
    decoder = StreamDecoder(profile=profile)
    builder = decoder.builder
    handle = decoder.handle
    feed = r.feed
    with (nullcontext(source) if isinstance(source, CaptureReader)
          else CaptureReader(source)) as reader:
        for pkt in reader:
            seg = decode_tcp(pkt.frame, pkt.time_ns, pkt.linktype, pkt.data)
            if seg is None:
                continue
            events = feed(seg)
            if events:
                for ev in events:
                    handle(ev)
                if builder.rows >= batch_rows:
                    yield builder.take_batch()
    for ev in r.close():
        handle(ev)
    decoder.close()
    yield builder.take_batch()


def dissect_table(source: str | os.PathLike[str] | BinaryIO | CaptureReader, ports: Iterable[int] | None = None,
                  **kwargs: object) -> pa.Table:
    """:func:`dissect` collected into one ``pyarrow.Table`` (small captures, tests)."""
    import pyarrow as pa

    from ..analyzer.schema import SCHEMA

    return pa.Table.from_batches(list(dissect(source, ports, **kwargs)),  # type: ignore[arg-type]
                                 schema=SCHEMA)
