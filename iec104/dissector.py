"""Reassembled TCP streams -> IEC 104 records: the offline dissector's last stage.

Theory of operation
-------------------
:class:`StreamDecoder` is sans-IO: it takes the events of a
:class:`~iec104.capture.reassembly.Reassembler` one at a time and keeps one
:class:`~iec104.records.decoder.DirectionDecoder` (a :class:`iec104.codec.Framer` plus the
record builder) per stream and direction; the events (of :mod:`iec104.capture.reassembly`):

* ``StreamStart`` creates the two direction decoders with the connection's
  endpoints (direction 0 = ``'c2s'``, from the TCP client; 1 = ``'s2c'``);
* ``StreamData`` feeds its bytes to the direction's framer. Every APDU the chunk
  completes is recorded with the chunk's frame number and time, i.e. an APDU is attributed to
  the frame that carried its *last* byte (what Wireshark does for reassembled PDUs). Octets
  that are not a valid APDU become a malformed row and the framer resynchronises;
* ``Gap`` records a gap row and resets the framer (the partial APDU before
  the hole is dropped and reported), so the first valid APDU after the hole is found again;
* ``Fallback`` records an ``event`` row (``error`` starting ``'dissector: '``) saying that
  the direction is delivered per segment from there on;
* ``StreamEnd`` closes both decoders (octets left in a framer are reported as
  a truncated APDU).

:func:`dissect` runs the whole chain (capture file -> packets -> TCP segments, IP fragments
reassembled -> reassembly -> records) and yields ``pyarrow.RecordBatch`` objects of
:data:`iec104.records.schema.SCHEMA`, at most ``batch_rows`` rows each, so memory stays bounded on big captures.

*The fast lane* (:func:`dissect_packets`, what :func:`dissect` and ``iec104 convert`` run in
one process). Most packets of a capture are in-order TCP segments of an established
connection; for them the per-packet objects above (TcpSegment, StreamData, one framer call
per segment, one builder call per APDU) cost more than the decoding. Such a packet is
decoded with one ``struct`` call (:func:`~.capture.packet.decode_plain_tcp`), the
reassembler takes it without an event (:meth:`~.capture.reassembly.Reassembler.in_order`:
the same state changes as ``feed``), and its payload waits in its direction's lane with its
frame and time. A flush -- every ``block`` payloads, before the events of any other packet
are handled, and at the end -- frames each lane in one call (:meth:`~iec104.codec.Framer.
scan`: the events feeding the segments one by one would give, each with the segment that
completed it; the runs of valid APDUs found by column, :mod:`~.records.framing`, each
reported as one item), orders the events of all lanes by completing frame (the order in
which the event path records them, so APDU numbers agree) -- as arrays of offsets into the
lanes' octets, no Python object per APDU -- and records them in bulk
(:meth:`~.records.columnar.ColumnarBuilder.admit` and ``add_admitted``), cutting batches
after the same frames as the event path. Malformed runs and APDUs the columnar stage does
not decode take the builder's own calls in their place; so does everything from the first
I-frame of a direction whose profile is still being detected (``DetectingBuilder`` queues
it). ``block=0`` runs every packet through the events: the reference the tests compare the
fast lane with, batch for batch.

*Runs* (the default). Deciding the fast lane packet by packet still costs a few
microseconds of Python per packet. So a capture file is read ``block`` records at a time
(:meth:`~.capture.reader.CaptureParser.record_blocks`: the file's octets and where each
record starts), the plain headers of the whole block are decoded by column, and the leading
run of packets that ``in_order`` would take one by one is taken at once
(:func:`~.capture.blocks.take_run`: numpy operations over the whole block, whatever its
connections, the reassembler's state changed as ``in_order`` changes it), each direction's
payloads going to its lane as one ``bytes`` object. The packet that ends a run goes the
packet-by-packet way, and so do more after a short run, before the next try. ``runs=False``
keeps the packet-by-packet way throughout: the reference of the runs in the tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from itertools import islice
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import numpy as np

from .capture.blocks import PacketColumns, take_run
from .capture.objects import is_packet_iterable, packets_from_objects
from .capture.packet import TcpSegment, decode_plain_tcp, decode_tcp, tcp_segments
from .capture.reader import CaptureReader, LinkType, Packet, RecordBlock
from .capture.reassembly import (
    Fallback,
    Gap,
    Reassembler,
    StreamData,
    StreamEnd,
    StreamEvent,
    StreamStart,
)
from .codec import DEFAULT_PROFILE, Frame, Malformed, Profile
from .codec.apci import apdu_run as scalar_run
from .codec.framer import Run, Scan
from .records.builder import Endpoints, RecordBuilder
from .records.columnar import ColumnarBuilder
from .records.decoder import DirectionDecoder
from .records.framing import apdu_ends
from .records.profiles import DetectingBuilder, ProfileOverrides

if TYPE_CHECKING:
    import pyarrow as pa

    from .capture.ipfrag import Defragmenter

__all__ = ["DEFAULT_BLOCK", "FastLane", "PacketSource", "StreamDecoder", "dissect",
           "dissect_packets", "dissect_segments", "dissect_table", "front_builder"]

_DIRECTIONS = ("c2s", "s2c")
DEFAULT_BLOCK = 4096
"""Packets the fast lane (:func:`dissect_packets`) reads and decides at once, and payload
segments it collects before it frames and records them."""


class StreamDecoder:
    """Turn reassembly events into rows of a :class:`~iec104.records.builder.RecordBuilder`.

    Args:
        builder: where rows go (default: a new
            :class:`~iec104.records.columnar.ColumnarBuilder`, which gives the same rows as a
            ``RecordBuilder``, faster).
        profile: ASDU field sizes for every connection; None or :class:`ProfileOverrides`
            detect them per direction (:class:`~.records.profiles.DetectingBuilder`) where not
            given.

    Attributes:
        builder: the record builder (take batches from it as rows accumulate).
        fallbacks: number of directions that switched to per-segment delivery.
    """

    def __init__(self, builder: RecordBuilder | ColumnarBuilder | None = None, *,
                 profile: Profile | ProfileOverrides | None = None) -> None:
        if builder is None:
            builder = front_builder(ColumnarBuilder(), profile)
        self.builder = builder
        self.fallbacks = 0
        self._decoders: dict[tuple[int, int], DirectionDecoder] = {}
        self._last: tuple[int | None, int] = (0, 0)  # (time_ns, frame) of the last event seen

    @property
    def apdus(self) -> int:
        """APDUs (and malformed runs) recorded by the open direction decoders so far."""
        return sum(d.apdus for d in self._decoders.values())

    def handle(self, event: StreamEvent) -> None:
        """Process one reassembly event."""
        kind = type(event)
        if kind is StreamData:
            assert isinstance(event, StreamData)
            self._last = (event.time_ns, event.frame)
            dec = self._decoders.get((event.stream, event.direction))
            if dec is not None:
                dec.feed(event.time_ns, event.frame, event.data)
        elif kind is StreamStart:
            assert isinstance(event, StreamStart)
            c = event.connection
            ends = ((c.src, c.sport), (c.dst, c.dport))
            self.open(c.stream, [Endpoints(c.stream, _DIRECTIONS[d], *ends[d], *ends[1 - d])
                                 for d in (0, 1)])
        elif kind is Gap:
            assert isinstance(event, Gap)
            dec = self._decoders.get((event.stream, event.direction))
            if dec is not None:
                detail = "" if event.seq is None else f"TCP seq {event.seq}"
                dec.gap(event.time_ns, event.frame, event.missing or 0, detail)
        elif kind is StreamEnd:
            assert isinstance(event, StreamEnd)
            self.end(event.stream, event.time_ns, event.frame)
        elif kind is Fallback:
            assert isinstance(event, Fallback)
            self.fallbacks += 1
            dec = self._decoders.get((event.stream, event.direction))
            if dec is not None:
                self.builder.add_event(event.time_ns, event.frame, dec.endpoints,
                                       f"dissector: {event.reason}")

    def open(self, stream: int, endpoints: list[Endpoints]) -> None:
        """Start decoding a connection (what ``StreamStart`` does): ``endpoints`` of its
        directions 0 (``'c2s'``) and 1 (``'s2c'``)."""
        for d in (0, 1):
            self._decoders[(stream, d)] = DirectionDecoder(endpoints[d], self.builder)

    def decoder(self, stream: int, direction: int) -> DirectionDecoder | None:
        """The decoder of one direction of an open stream (direction 0 or 1)."""
        return self._decoders.get((stream, direction))

    def end(self, stream: int, time_ns: int | None, frame: int | None) -> None:
        """A connection ended (what ``StreamEnd`` does): octets left in its framers become
        truncated APDUs, a profile still being detected is decided."""
        for d in (0, 1):
            dec = self._decoders.pop((stream, d), None)
            if dec is not None:
                dec.close(time_ns, frame)
        if type(self.builder) is DetectingBuilder:
            self.builder.end_stream(stream)

    def close(self) -> None:
        """Close decoders of streams that never got a StreamEnd (end of input)."""
        time_ns, frame = self._last
        for dec in self._decoders.values():
            dec.close(time_ns, frame)
        self._decoders.clear()
        if type(self.builder) is DetectingBuilder:
            self.builder.close()


def _single(profile: Profile | ProfileOverrides | None) -> Profile | ProfileOverrides | None:
    """Overrides that give one profile for all connections, as that profile."""
    if isinstance(profile, ProfileOverrides) and not profile.endpoints \
            and profile.default is not None:
        return profile.default  # nothing to detect
    return profile


def front_builder(target: Any, profile: Profile | ProfileOverrides | None) -> Any:
    """What rows of ``profile`` go through on their way to ``target``: ``target`` itself
    for one given profile (it decodes with its own, or with the one a worker is given),
    else a :class:`DetectingBuilder` in front of it (None: detect every direction)."""
    profile = _single(profile)
    if profile is None or isinstance(profile, ProfileOverrides):
        return DetectingBuilder(target, profile)
    if isinstance(target, (RecordBuilder, ColumnarBuilder)):
        target.profile = profile
    return target


def dissect(
    source: str | os.PathLike[str] | BinaryIO | CaptureReader | Iterable[Any],
    ports: Iterable[int] | None = None,
    *,
    heuristic: bool = True,
    profile: Profile | ProfileOverrides | None = None,
    batch_rows: int = 65536,
    reassembler: Reassembler | None = None,
    workers: int = 0,
    linktype: int = LinkType.ETHERNET,
    block: int = DEFAULT_BLOCK,
) -> Iterator[pa.RecordBatch]:
    """Decode the IEC 104 traffic of a capture file into record batches.

    Args:
        source: path or binary file object of a pcap/pcapng capture (gzip allowed), an
            open :class:`~iec104.capture.reader.CaptureReader` (whose ``problem`` the caller
            can check), or an iterable of packets held in memory: a scapy ``PacketList``,
            scapy packets, ``(timestamp, frame)`` pairs (see :mod:`iec104.capture.objects`).
        ports: TCP ports of IEC 104 servers (either endpoint; default 2404).
        heuristic: also decode connections on other ports whose first bytes frame as IEC 104
            (default True; streams left undecoded are counted in the reassembler's
            ``undecoded``).
        profile: ASDU field sizes of every connection (no detection); a
            :class:`~.records.profiles.ProfileOverrides` gives them per endpoint; None
            (default) detects them per connection and direction (:mod:`.records.profiles`).
        batch_rows: a batch is yielded once at least this many rows are pending.
        reassembler: a preconfigured
            :class:`~iec104.capture.reassembly.Reassembler` (then ``ports`` and
            ``heuristic`` are ignored); read its ``connections``/``stats`` afterwards.
        workers: 0 decodes in this process; ``n > 0`` hands the ASDU decoding and row
            building to ``n`` worker processes (see :func:`dissect_segments`).
        linktype: link layer of ``(timestamp, frame)`` pairs without one (default
            Ethernet).
        block: in one process, the fast lane's block of packets (see
            :func:`dissect_packets`; 0: every packet through the event path, the same
            batches, slower).

    Yields:
        ``pyarrow.RecordBatch`` of :data:`iec104.records.schema.SCHEMA` (the last one may be
        empty when the capture holds no IEC 104 at all).

    Raises:
        CaptureError: the input is not a capture (before anything is yielded).

    A capture damaged part-way through yields everything before the damage and issues a
    :class:`~iec104.capture.errors.CaptureWarning`.
    """
    r = reassembler if reassembler is not None else Reassembler(ports, heuristic=heuristic)
    packets: Iterable[Packet]
    context: AbstractContextManager[object]
    if is_packet_iterable(source):
        packets = packets_from_objects(source, linktype)  # type: ignore[arg-type]
        context = nullcontext()
    else:
        reader = source if isinstance(source, CaptureReader) else CaptureReader(
            source)  # type: ignore[arg-type]
        packets = reader
        context = nullcontext(reader) if isinstance(source, CaptureReader) else reader

    if workers <= 0:
        def sources() -> Iterator[PacketSource]:
            with context:
                yield packets, 0, None

        yield from dissect_packets(sources(), r, profile=profile, batch_rows=batch_rows,
                                   block=block)
        return

    def segments() -> Iterator[TcpSegment]:
        with context:
            yield from tcp_segments(packets)

    yield from dissect_segments(segments(), r, profile=profile, batch_rows=batch_rows,
                                workers=workers)


def dissect_segments(segments: Iterable[TcpSegment], reassembler: Reassembler, *,
                     profile: Profile | ProfileOverrides | None = None,
                     batch_rows: int = 65536,
                     workers: int = 0) -> Iterator[pa.RecordBatch]:
    """TCP segments (in capture order) -> record batches: reassembly, framing, records.

    With ``workers > 0`` this process reads, reassembles and frames (cutting the byte
    streams into APDUs), and worker processes decode the ASDUs and build the rows, chunk by
    chunk; the batches come back in order and are the same as with ``workers=0`` (APDU
    numbers are assigned here). At most ``2 * workers`` chunks are in flight, so memory stays
    bounded. Worth it for large captures only: starting a worker costs about half a second.
    """
    if workers > 0:
        yield from _dissect_parallel(segments, reassembler, profile, batch_rows, workers)
        return
    decoder = StreamDecoder(profile=profile)
    builder = decoder.builder
    handle = decoder.handle
    feed = reassembler.feed
    for seg in segments:
        events = feed(seg)
        if events:
            for ev in events:
                handle(ev)
            if builder.rows >= batch_rows:
                yield from _bounded(builder.take_batch(), batch_rows)
    yield from _finish(decoder, reassembler, batch_rows)


def _finish(decoder: StreamDecoder, reassembler: Reassembler, batch_rows: int,
            ) -> Iterator[pa.RecordBatch]:
    """End of input: the streams still open end, and the last batches are yielded (an
    empty one if nothing is left, so that every dissection yields a batch)."""
    for ev in reassembler.close():
        decoder.handle(ev)
    decoder.close()
    last = decoder.builder.take_batch()
    yield from _bounded(last, batch_rows) if last.num_rows else [last]


# -- the fast lane ----------------------------------------------------------------------------

_FEW = 16  # APDUs below which a flush records one by one (numpy's set-up costs more)
_BROKEN = 1024  # ended directions remembered as broken at most (then forgotten at once)
_SHORT_RUN = 32  # packets: a shorter run makes the next ones go one by one for a while
_LONGEST_SKIP = 1 << 16  # packets one by one at most before runs are tried again


class _Lane:
    """One direction's in-order payloads of the current block, with their frames."""

    __slots__ = ("chunks", "ends", "frames", "size", "times")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []  # payloads, or the payloads of a run joined
        self.ends: list[int] = []  # where each payload ends in the chunks joined
        self.frames: list[int] = []  # per payload
        self.times: list[int | None] = []
        self.size = 0


class FastLane:
    """The payloads :meth:`Reassembler.in_order` took, per direction, until a flush frames
    them (:meth:`Framer.scan`) and records them in bulk (:meth:`ColumnarBuilder.admit`,
    :meth:`~ColumnarBuilder.add_admitted`), in the order and with the batch cuts that
    the event path (:meth:`StreamDecoder.handle` per segment) gives.

    ``numbered=False`` (the proxy's logger): the lanes' frame numbers only order the APDUs
    of different directions and place the batch cuts; the rows get no frame number. The
    packet ways (:meth:`one_by_one`, :meth:`by_runs`) need the ``reassembler`` and the
    ``block`` (payload segments per flush). The dissector's packet loop and the proxy's
    logger (:mod:`iec104.recorder.logprocess`, pipe reads) are its users."""

    def __init__(self, decoder: StreamDecoder, batch_rows: int,
                 reassembler: Reassembler | None = None, block: int = DEFAULT_BLOCK,
                 numbered: bool = True) -> None:
        self.decoder = decoder
        self.batch_rows = batch_rows
        self.numbered = numbered
        self.reassembler: Reassembler = reassembler  # type: ignore[assignment]
        self.block = block
        self.taken = 0  # payload segments in the lanes
        self.grow = 0  # packets one by one after a short run (doubles while they stay short)
        self.skip = 0  # of those, the packets of the blocks to come
        self.lanes: dict[object, _Lane] = {}  # reassembler direction state -> its lane
        # directions whose last flush had malformed runs: framed by the codec's loop (runs
        # broken every few kilobytes cost the columnar framing more than they save)
        self.broken: set[tuple[int, int]] = set()
        front: Any = decoder.builder  # a ColumnarBuilder, or a DetectingBuilder before one
        self.front = front
        self.detecting = type(front) is DetectingBuilder
        self.target: ColumnarBuilder = front.target if self.detecting else front

    def add(self, half: Any, payload: bytes, frame: int, time_ns: int | None) -> None:
        """One in-order payload of the direction ``half`` (``.stream``, ``.direction``)."""
        lane = self._lane(half)
        lane.chunks.append(payload)
        lane.size += len(payload)
        lane.ends.append(lane.size)
        lane.frames.append(frame)
        lane.times.append(time_ns)
        self.taken += 1

    def _lane(self, half: Any) -> _Lane:
        """The lane of the direction ``half`` (made at its first payload of a flush)."""
        lane = self.lanes.get(half)
        if lane is None:
            lane = self.lanes[half] = _Lane()
        return lane

    def one_by_one(self, packets: Iterable[Packet], frame_offset: int,
                   defrag: Defragmenter) -> Iterator[pa.RecordBatch]:
        """Packets one at a time: into the lanes if in order, else through the events."""
        lanes = self.lanes
        in_order = self.reassembler.in_order
        feed = self.reassembler.feed
        handle = self.decoder.handle
        builder = self.decoder.builder
        plain = decode_plain_tcp
        decode = decode_tcp
        reassemble = defrag.reassemble  # only for what decode_tcp rejects
        block = self.block
        add = self.add
        for frame, time_ns, linktype, data, _, _ in packets:
            frame += frame_offset
            fields = plain(linktype, data)
            if fields is not None:
                key, seq, ack, flags, payload = fields
                half = in_order(key, seq, ack, flags, payload, frame, time_ns)
                if half is not None:
                    if payload:
                        add(half, payload, frame, time_ns)
                        if self.taken >= block:
                            yield from self.flush()
                    continue
            seg = decode(frame, time_ns, linktype, data) or reassemble(frame, time_ns,
                                                                       linktype, data)
            if seg is None:
                continue
            events = feed(seg)
            if events:
                if lanes:
                    yield from self.flush()
                for ev in events:
                    handle(ev)
                if builder.rows >= self.batch_rows:
                    yield from _bounded(builder.take_batch(), self.batch_rows)

    def by_runs(self, records: RecordBlock | list[Packet], frame_offset: int,
                defrag: Defragmenter) -> Iterator[pa.RecordBatch]:
        """A block of packets: runs of in-order packets taken at once
        (:func:`~.capture.blocks.take_run`), the packet after each run one by one. After
        a short run, more packets go one by one before the next try (doubling while the
        runs stay short, across blocks; a block taken whole that way is not decoded by
        column), so that packets that are seldom in order cost about what the
        packet-by-packet way costs."""
        packet: Callable[[int], Packet]
        if isinstance(records, RecordBlock):
            n, packet = len(records.starts), records.packet
        else:
            n, packet = len(records), records.__getitem__
        i = min(n, self.skip)  # packets one by one, left from the last block
        if i:
            self.skip -= i
            yield from self.one_by_one(map(packet, range(i)), frame_offset, defrag)
        if i >= n:
            return
        cols = (PacketColumns.from_records(records, frame_offset)
                if isinstance(records, RecordBlock)
                else PacketColumns.from_packets(records, frame_offset))
        while i < n:
            stop, taken = take_run(self.reassembler, cols, i)
            for t in taken:
                lane = self._lane(t.half)
                lane.chunks.append(t.data)
                lane.ends += map(lane.size.__add__, t.ends) if lane.size else t.ends
                lane.size += len(t.data)
                lane.frames += t.frames
                lane.times += t.times
                self.taken += len(t.ends)
            if self.taken >= self.block:
                yield from self.flush()
            if stop >= n:
                return
            self.grow = 0 if stop - i >= _SHORT_RUN else min(max(2 * self.grow, _SHORT_RUN),
                                                              _LONGEST_SKIP)
            end = stop + 1 + self.grow
            i = min(n, end)
            self.skip = end - i
            yield from self.one_by_one(map(packet, range(stop, i)), frame_offset, defrag)

    def flush(self) -> Iterator[pa.RecordBatch]:
        """Frame and record everything taken; yields the batches that fill up on the way.

        The events of a flush are arrays over the octets of its scans joined (each event's
        start, length, frame, time, group), so that a run of APDUs costs no Python object
        per APDU; a Malformed event is kept as it is (``bad``: by event index)."""
        lanes = self.lanes
        self.taken = 0
        if not lanes:
            return
        decoders = self.decoder._decoders
        broken = self.broken
        octets: list[bytes] = []
        spans: list[np.ndarray] = []  # per scan: events' starts in the octets joined, ends
        frames: list[np.ndarray] = []
        times: list[np.ndarray] = []
        groups: list[np.ndarray] = []
        bad: dict[int, Malformed] = {}
        eps: list[Endpoints] = []
        starts: list[int] = []  # stream offset of each group's first event
        size = 0
        n = 0
        last: tuple[int, int | None] = (0, None)
        for half, lane in lanes.items():
            key = (half.stream, half.direction)  # type: ignore[attr-defined]
            dec = decoders.get(key)
            if lane.frames[-1] > last[0]:
                last = (lane.frames[-1], lane.times[-1])
            if dec is None:
                continue
            chunks = lane.chunks
            # the finder's ends: a list, or an int64 array (by column) the scan hands on
            finder: Callable[..., Any] = scalar_run if key in broken else apdu_ends
            scan = dec.framer.scan(chunks[0] if len(chunks) == 1 else b"".join(chunks),
                                   lane.ends, finder, runs=True)
            if scan.malformed:
                broken.add(key)
                if len(broken) > _BROKEN + len(decoders):  # forget those that have ended
                    broken.intersection_update([k for k in broken if k in decoders])
            else:
                broken.discard(key)
            if not scan.events:
                continue
            ends, chunk = _spans(scan, lane.ends, bad, n)
            m = len(ends)
            dec.apdus += m
            group = len(eps)
            eps.append(dec.endpoints)
            starts.append(scan.offset)
            spans.append(ends + size)
            octets.append(scan.octets)
            size += len(scan.octets)
            frames.append(np.asarray(lane.frames, np.int64)[chunk])
            times.append(np.asarray(lane.times)[chunk])  # object dtype where some are None
            groups.append(np.full(m, group, np.int64))
            n += m
        lanes.clear()
        self.decoder._last = (last[1], last[0] if self.numbered else None)
        if not n:
            return
        ends = np.concatenate(spans)
        lens = np.diff(ends, prepend=0)
        # a scan's first event starts where the scan's octets do (the one before ends there)
        frame_at = np.concatenate(frames)
        time_at = np.concatenate(times) if len(times) > 1 else times[0]
        group_at = np.concatenate(groups)
        if len(eps) > 1:  # directions interleaved: rows in the order the APDUs completed
            perm = np.argsort(frame_at, kind="stable")
            ends, lens, frame_at, time_at, group_at = (
                ends[perm], lens[perm], frame_at[perm], time_at[perm], group_at[perm])
            if bad:
                where = np.empty(n, np.int64)
                where[perm] = np.arange(n)
                bad = {int(where[i]): event for i, event in bad.items()}
        flush = _Flush(octets[0] if len(octets) == 1 else b"".join(octets), ends - lens, lens,
                       frame_at if self.numbered else np.full(n, None, object), time_at,
                       group_at, bad)
        yield from self._record(flush, frame_at, eps, starts)

    def _record(self, flush: _Flush, frame_at: np.ndarray, eps: list[Endpoints],
                starts: list[int]) -> Iterator[pa.RecordBatch]:
        """Record the events of a flush (``frame_at``: their completing frames, ordered):
        in bulk while every call would go straight to the columnar builder, else one by
        one through the builder's own calls until they would again (a DetectingBuilder's
        queue has drained)."""
        n = len(frame_at)
        frame_end = np.ones(n, bool)  # the last event of its frame (where batches are cut)
        frame_end[:-1] = frame_at[1:] != frame_at[:-1]
        offsets = list(starts)  # each group's stream offset at ``done``
        done = 0
        i = 0
        front = self.front
        while i < n:
            if n - i >= _FEW and not (self.detecting and front.queued):
                j = yield from self._bulk(i, flush, eps, frame_end)
                if j > i:
                    i = j
                    continue
            for g, m in zip(flush.groups[done:i].tolist(), flush.lens[done:i].tolist()):
                offsets[g] += m
            i = done = yield from self._one_by_one(i, flush, eps, offsets, frame_end)

    def _bulk(self, first: int, flush: _Flush, eps: list[Endpoints],
              frame_end: np.ndarray) -> Generator[pa.RecordBatch, None, int]:
        """Events ``first`` on in bulk, up to the first I-frame of a direction whose profile
        is not decided (returned: where the bulk stopped)."""
        front = self.front
        target = self.target
        keys: list[tuple[Endpoints, Profile | None, float | None]] = []
        undecided = np.zeros(len(eps), bool)
        for g, ep in enumerate(eps):
            decision = front.straight(ep) if self.detecting else None
            undecided[g] = self.detecting and decision is None
            keys.append((ep, None, None) if decision is None
                        else (ep, decision.profile, decision.confidence))
        octets = flush.octets
        s = flush.starts[first:]
        lens = flush.lens[first:]
        group_at = flush.groups[first:]
        rows, is_i = target.admit(octets, s, lens, group_at, keys)
        if flush.bad:  # malformed runs: rows of the scalar path
            odd = [i - first for i in flush.bad if i >= first]
            rows[odd] = -1
            is_i[odd] = False
        # an I-frame of an undecided direction waits for its decision, and so does
        # everything after it: from there on the calls go through the DetectingBuilder
        waits = np.flatnonzero(undecided[group_at] & is_i)
        stop = int(waits[0]) if waits.size else len(s)
        frame_end = frame_end[first:]
        times = flush.times[first:]
        frames = flush.frames[first:]
        batch_rows = self.batch_rows
        i = 0
        for j in [*np.flatnonzero(rows[:stop] < 0).tolist(), stop]:
            while i < j:
                cum = target.rows + np.cumsum(rows[i:j])
                cross = np.flatnonzero(frame_end[i:j] & (cum >= batch_rows))
                k = i + int(cross[0]) + 1 if cross.size else j
                target.add_admitted(octets, s[i:k], lens[i:k], times[i:k], frames[i:k],
                                    group_at[i:k], keys, is_i[i:k], rows[i:k])
                if cross.size:
                    yield from _bounded(front.take_batch(), batch_rows)
                i = k
            if j < stop:  # a malformed run or an APDU of the scalar path
                g = int(group_at[j])
                event = flush.event(first + j)
                if type(event) is bytes:
                    _, profile, confidence = keys[g]
                    target.add_apdu(times.item(j), frames.item(j), eps[g], event, None,
                                    profile, confidence)
                else:
                    front.add_malformed(times.item(j), frames.item(j), eps[g], event)
                if frame_end[j] and front.rows >= batch_rows:
                    yield from _bounded(front.take_batch(), batch_rows)
                i = j + 1
        return first + stop

    def _one_by_one(self, first: int, flush: _Flush, eps: list[Endpoints], offsets: list[int],
                    frame_end: np.ndarray) -> Generator[pa.RecordBatch, None, int]:
        """Events ``first`` on through the builder's own calls, as a DirectionDecoder makes
        them (``offsets``: each group's stream offset at ``first``), until the bulk path
        may take over again (returned: where)."""
        front = self.front
        batch_rows = self.batch_rows
        times, frames, groups = flush.times, flush.frames, flush.groups
        n = len(groups)
        for k in range(first, n):
            event = flush.event(k)
            g = int(groups[k])
            if type(event) is bytes:
                front.add_frame(times.item(k), frames.item(k), eps[g],
                                Frame(offsets[g], event, None))
                offsets[g] += len(event)
            else:
                front.add_malformed(times.item(k), frames.item(k), eps[g], event)
                offsets[g] += len(event.raw)  # type: ignore[union-attr]
            if frame_end[k] and front.rows >= batch_rows:
                yield from _bounded(front.take_batch(), batch_rows)
            if n - k > _FEW and not (self.detecting and front.queued):
                return k + 1
        return n


class _Flush(NamedTuple):
    """The events of a flush, in recording order: event ``k`` is
    ``octets[starts[k]:starts[k] + lens[k]]``, a Malformed where ``bad`` has ``k``."""

    octets: bytes
    starts: np.ndarray  # int64
    lens: np.ndarray  # int64
    frames: np.ndarray  # int64 (object, all None: rows without a frame number)
    times: np.ndarray  # int64 (object where some are None)
    groups: np.ndarray  # int64, index into the flush's endpoints
    bad: dict[int, Malformed]

    def event(self, k: int) -> bytes | Malformed:
        """Event ``k`` (its octets sliced now: only events that go one by one are)."""
        bad = self.bad.get(k)
        if bad is not None:
            return bad
        start = int(self.starts[k])
        return self.octets[start:start + int(self.lens[k])]


def _spans(scan: Scan, lane_ends: list[int], bad: dict[int, Malformed], first: int,
           ) -> tuple[np.ndarray, np.ndarray]:
    """Where each event of a ``runs=True`` scan ends in ``scan.octets`` and its chunk
    (int64 arrays); its Malformed events go to ``bad`` by index (+ ``first``)."""
    ends: list[Any] = []
    chunks: list[Any] = []
    single_ends: list[int] = []  # events the framer's own path gave, since the last run
    single_chunks: list[int] = []
    at = 0
    for event, c in zip(scan.events, scan.chunks):
        if type(event) is Run:
            if single_ends:
                ends.append(single_ends)
                chunks.append(single_chunks)
                single_ends, single_chunks = [], []
            stops = np.asarray(event.stops, np.int64)
            ends.append(stops - scan.origin)
            # the rule of Framer.scan: the first chunk whose end is at or past the stop
            chunks.append(np.searchsorted(lane_ends, stops - scan.base))
            at = int(stops[-1]) - scan.origin
            first += len(stops)
            continue
        if type(event) is Malformed:
            bad[first] = event
            at += len(event.raw)
        else:
            at += len(event)  # type: ignore[arg-type]
        single_ends.append(at)
        single_chunks.append(c)
        first += 1
    if single_ends:
        ends.append(single_ends)
        chunks.append(single_chunks)
    if len(ends) == 1:
        return np.asarray(ends[0], np.int64), np.asarray(chunks[0], np.int64)
    return (np.concatenate(ends).astype(np.int64, copy=False),
            np.concatenate(chunks).astype(np.int64, copy=False))


PacketSource = tuple[Iterable[Packet], int, "Defragmenter | None"]
"""Packets of one capture file, the frames before it (added to its frame numbers) and the
:class:`~.capture.ipfrag.Defragmenter` for its IP fragments (None: a new one, closed at
its end)."""


def dissect_packets(sources: Iterable[PacketSource], reassembler: Reassembler, *,
                    profile: Profile | ProfileOverrides | None = None,
                    batch_rows: int = 65536, block: int = DEFAULT_BLOCK,
                    runs: bool = True) -> Iterator[pa.RecordBatch]:
    """Capture packets (in capture order, files one after the other) -> record batches.

    The same batches as :func:`dissect_segments` over :func:`~.capture.packet.tcp_segments`
    of the same packets, by a *fast lane* for the common packet: an IPv4/IPv6 TCP segment
    without options, tags or extension headers (:func:`~.capture.packet.decode_plain_tcp`)
    that the reassembler
    takes in order without an event (:meth:`~.capture.reassembly.Reassembler.in_order`).
    Its payload waits in its direction's lane; every ``block`` such segments, before the
    events of any other packet are handled, and at the end, the lanes are framed at once
    (:meth:`~iec104.codec.Framer.scan`, attributing each APDU to the segment that completed
    it) and recorded in bulk, ordered by completing frame across directions, with the batch
    cuts of the event path. Every other packet takes the event path (``decode_tcp``, IP
    defragmentation, :meth:`~.capture.reassembly.Reassembler.feed`,
    :meth:`StreamDecoder.handle`) unchanged.

    With ``runs`` (the default) the packets are read ``block`` at a time and the common
    ones decided by runs (:mod:`.capture.blocks`: headers by column, the leading run of
    in-order packets taken at once); the packets after a run go the packet-by-packet way,
    until a run is tried again.

    Args:
        sources: see :data:`PacketSource`.
        block: payload segments per flush, and packets per block; 0 takes every packet
            down the event path (the reference the tests compare the fast lane with).
        runs: decide by runs (False: packet by packet, the reference of the runs).
    """
    from .capture.ipfrag import Defragmenter

    if block <= 0:
        yield from dissect_segments(_segments(sources), reassembler, profile=profile,
                                    batch_rows=batch_rows)
        return
    decoder = StreamDecoder(profile=profile)
    lane = FastLane(decoder, batch_rows, reassembler, block)
    for packets, frame_offset, defragmenter in sources:
        defrag = Defragmenter() if defragmenter is None else defragmenter
        if runs and isinstance(packets, CaptureReader):
            for records in packets.record_blocks(block):
                if isinstance(records, RecordBlock):
                    yield from lane.by_runs(records, frame_offset, defrag)
                else:  # a pcapng record of another kind
                    yield from lane.one_by_one((records,), frame_offset, defrag)
        elif runs:
            it = iter(packets)
            while chunk := list(islice(it, block)):
                yield from lane.by_runs(chunk, frame_offset, defrag)
        else:
            yield from lane.one_by_one(packets, frame_offset, defrag)
        if defragmenter is None:
            defrag.close()
    yield from lane.flush()
    yield from _finish(decoder, reassembler, batch_rows)


def _segments(sources: Iterable[PacketSource]) -> Iterator[TcpSegment]:
    for packets, frame_offset, defragmenter in sources:
        yield from tcp_segments(packets, frame_offset, defragmenter)


def _bounded(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    """``batch`` in zero-copy slices of at most ``rows`` rows (a profile decision replays the
    rows held back for it at once), cut between APDUs only: readers group a batch's rows by
    APDU. An APDU with more rows than ``rows`` is one slice of its own."""
    n = batch.num_rows
    if n <= rows:
        yield batch
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    from .records.arrays import scalar, to_numpy

    # null APDU numbers (gaps, events) become NaN, which equals nothing: a cut may go there
    # (through records.arrays: Array.to_numpy would import pandas)
    apdu = to_numpy(pc.fill_null(batch.column("apdu").cast(pa.float64()),
                                 scalar(float("nan"))))
    start = 0
    while n - start > rows:
        cut = start + rows
        while cut > start and apdu[cut] == apdu[cut - 1]:
            cut -= 1  # back to the first row of the APDU the cut would split
        if cut == start:  # one APDU longer than ``rows``: up to its end
            cut = start + rows
            while cut < n and apdu[cut] == apdu[cut - 1]:
                cut += 1
        yield batch.slice(start, cut - start)
        start = cut
    yield batch.slice(start)


# -- parallel decoding ---------------------------------------------------------------------


class _DeferredBuilder:
    """Takes the place of a :class:`~iec104.records.builder.RecordBuilder` in the reading
    process: notes
    each call compactly (APDU numbers are assigned here), to be replayed by a worker."""

    decodes_octets = True
    """Only the octets of a frame are noted (the worker's columnar builder reads them), so
    the framer need not build APCI objects (``Framer(decode=False)``)."""

    def __init__(self) -> None:
        self.next_apdu = 0
        self.first = 0
        self.ops: list[tuple] = []
        self.errors = 0
        self.gaps = 0

    @property
    def rows(self) -> int:
        return len(self.ops)

    def add_frame(self, time_ns: int | None, frame: int | None, ep: Endpoints,
                  event: Frame, profile: Profile | None = None,
                  confidence: float | None = None) -> None:
        self.ops.append((0, time_ns, frame, ep, (event.raw, profile, confidence)))
        self.next_apdu += 1

    def add_malformed(self, time_ns: int | None, frame: int | None, ep: Endpoints,
                      event: Malformed) -> None:
        self.ops.append((1, time_ns, frame, ep, event))
        self.next_apdu += 1

    def add_gap(self, time_ns: int | None, frame: int | None, ep: Endpoints, missing: int,
                detail: str = "") -> None:
        self.ops.append((2, time_ns, frame, ep, (missing, detail)))

    def add_event(self, time_ns: int | None, frame: int | None, ep: Endpoints, text: str,
                  raw: bytes | None = None) -> None:
        self.ops.append((3, time_ns, frame, ep, (text, raw)))

    def take(self) -> tuple[int, list[tuple]]:
        chunk = (self.first, self.ops)
        self.ops = []
        self.first = self.next_apdu
        return chunk


def _build_chunk(first_apdu: int, ops: list[tuple], profile: Profile) -> bytes:
    """Worker: replay the noted calls on a columnar builder; the batch as Arrow IPC."""
    import pyarrow as pa

    builder = ColumnarBuilder(profile, first_apdu)
    for kind, time_ns, frame, ep, arg in ops:
        if kind == 0:
            raw, apdu_profile, confidence = arg
            builder.add_apdu(time_ns, frame, ep, raw, None, apdu_profile, confidence)
        elif kind == 1:
            builder.add_malformed(time_ns, frame, ep, arg)
        elif kind == 2:
            builder.add_gap(time_ns, frame, ep, *arg)
        else:
            builder.add_event(time_ns, frame, ep, *arg)
    batch = builder.take_batch()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def _read_chunk(data: bytes) -> pa.RecordBatch:
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_next_batch()


def _dissect_parallel(segments: Iterable[TcpSegment], reassembler: Reassembler,
                      profile: Profile | ProfileOverrides | None, batch_rows: int,
                      workers: int) -> Iterator[pa.RecordBatch]:
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    deferred = _DeferredBuilder()
    decoder = StreamDecoder(front_builder(deferred, profile))
    # the profile of frames the deferred builder gets without one (a single given profile)
    given = _single(profile)
    fixed = given if isinstance(given, Profile) else DEFAULT_PROFILE
    handle = decoder.handle
    feed = reassembler.feed
    # about two rows per APDU in typical traffic; small chunks keep the workers' memory low
    chunk_apdus = max(1, min(batch_rows // 2, 16384))
    pending: deque[Future[bytes]] = deque()
    pool = ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        for seg in segments:
            events = feed(seg)
            if events:
                for ev in events:
                    handle(ev)
                if deferred.rows >= chunk_apdus:
                    pending.append(pool.submit(_build_chunk, *deferred.take(), fixed))
                    while pending and (len(pending) > 2 * workers or pending[0].done()):
                        yield _read_chunk(pending.popleft().result())
        for ev in reassembler.close():
            handle(ev)
        decoder.close()
        pending.append(pool.submit(_build_chunk, *deferred.take(), fixed))
        while pending:
            yield _read_chunk(pending.popleft().result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def dissect_table(source: str | os.PathLike[str] | BinaryIO | CaptureReader | Iterable[Any],
                  ports: Iterable[int] | None = None, **kwargs: object) -> pa.Table:
    """:func:`dissect` collected into one ``pyarrow.Table`` (small captures, tests)."""
    import pyarrow as pa

    from .records.schema import SCHEMA

    return pa.Table.from_batches(list(dissect(source, ports, **kwargs)),  # type: ignore[arg-type]
                                 schema=SCHEMA)
