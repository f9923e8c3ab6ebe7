"""Stream framer: arbitrary TCP byte chunks in, one event per APDU out.

Theory of operation: bytes are appended to a buffer with :meth:`Framer.feed`;
:meth:`Framer.next_event` looks at the front of the buffer and returns

* :class:`Frame` -- a complete, decoded APDU with its raw octets and stream offset;
* :class:`Malformed` -- octets that are not a valid APDU, with the reason;
* :data:`NEED_DATA` -- the buffer holds only the beginning of an APDU.

Resynchronisation: when the front octet is not 0x68, or a 0x68 is followed by a length
outside [4, 253], the framer skips forward to the next 0x68 that is followed by a
plausible length and reports the skipped octets as one ``Malformed``. When the length is
plausible but the control field is invalid, the framer trusts the length: it reports
that APDU as ``Malformed`` and carries on after it, so no valid APDU that follows is lost.
Offsets count octets since the framer was created (or last :meth:`Framer.reset`).

:meth:`Framer.scan` is the bulk form for the dissector's fast lane: it takes many
consecutive chunks at once (their octets joined, and where each ends) and returns the
events exactly as feeding the chunks one by one and calling :meth:`Framer.next_event` after
each until ``NEED_DATA`` would, each with the index of the chunk after whose feed it came
out. Runs of valid APDUs are found by the ``run`` it is given (:func:`~.apci.apdu_run`, or
the same answer by column: ``iec104.records.framing``); anything else
(garbage, a bad control field, too few octets to judge) takes the path of
:meth:`~Framer.next_event` with the octets seen up to that chunk's end, so resynchronisation
(which depends on how much was buffered) cannot differ. With ``runs=True`` a run the finder
found is one :class:`Run` item (its ends, as the finder gave them), not one ``bytes`` per
APDU, and the scan hands out the octets of all its events joined (``Scan.octets``): the
fast lane turns a run into arrays without a Python object per APDU.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from .apci import APDU, MAX_LENGTH, START, apdu_run, apdu_size, check_apdu, decode_apdu
from .errors import DecodeError


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = _Sentinel.NEED_DATA
"""Returned by :meth:`Framer.next_event` when more bytes are needed."""


class Frame(NamedTuple):
    """A complete APDU found in the stream.

    Attributes:
        offset: stream offset of its start octet (>= 0).
        raw: its octets, start octet included (6..255 octets).
        apdu: the decoded ``IFrame``, ``SFrame`` or ``UFrame``; None from a framer made
            with ``decode=False`` (the octets were checked, not decoded).
    """

    offset: int
    raw: bytes
    apdu: APDU | None


class Malformed(NamedTuple):
    """Octets that do not form a valid APDU.

    Attributes:
        offset: stream offset of the first bad octet.
        raw: the octets skipped.
        reason: why they were rejected.
    """

    offset: int
    raw: bytes
    reason: str


Event = Frame | Malformed


_new = tuple.__new__


def _plausible(buf: bytearray | bytes, pos: int, end: int) -> bool:
    """Whether a start octet at ``pos`` has a plausible length (unknown yet, at or past
    ``end``, counts)."""
    return pos + 1 >= end or 4 <= buf[pos + 1] <= MAX_LENGTH


class Run(NamedTuple):
    """Valid whole APDUs back to back, as :meth:`Framer.scan` with ``runs=True`` reports
    the run finder's answer.

    Attributes:
        stops: where each APDU ends, increasing (in :attr:`Scan.octets` at
            ``stop - Scan.origin``); each came out after the feed of the first chunk whose
            end (``Scan.base + ends[c]``, same coordinates) is at or past its stop.
    """

    stops: Sequence[int]


class Scan(NamedTuple):
    """What :meth:`Framer.scan` found, in stream order.

    Attributes:
        events: the octets of each valid APDU (checked, not decoded), or a
            :class:`Malformed` for octets that are none; with ``runs=True`` also
            :class:`Run` items.
        chunks: per event, the index of the chunk after whose feed it came out (the chunk
            that carried its last octet, or the one whose end decided a malformed run);
            for a :class:`Run`, that of its last APDU.
        malformed: how many of ``events`` are :class:`Malformed`.
        offset: stream offset of the first event's first octet.
        octets: with ``runs=True``, the octets of all events joined (the events follow
            each other without a gap); else empty.
        origin: where ``octets`` starts, in the coordinates of :attr:`Run.stops`.
        base: where the scanned ``data`` starts, in the same coordinates (>= ``origin``).
    """

    events: list[bytes | Malformed | Run]
    chunks: list[int]
    malformed: int
    offset: int
    octets: bytes = b""
    origin: int = 0
    base: int = 0


class Framer:
    """Split a byte stream into APDUs (sans-IO; see module docstring).

    Args:
        decode: hand out each APDU decoded (default); False only checks it
            (:func:`~.apci.check_apdu`) and leaves ``Frame.apdu`` None, for callers that
            decode the octets themselves (the columnar dissector).
    """

    __slots__ = ("_buf", "_check", "_offset", "_pos")

    def __init__(self, decode: bool = True) -> None:
        self._check = decode_apdu if decode else check_apdu
        # bytes while it holds what one feed() brought (sliced without a copy to bytearray
        # first); a bytearray once octets have to be appended to a partly consumed buffer
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._offset = 0

    @property
    def offset(self) -> int:
        """Stream offset of the first octet not yet returned in an event."""
        return self._offset

    @property
    def pending(self) -> int:
        """Octets buffered but not yet returned in an event."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received octets."""
        buf = self._buf
        if self._pos >= len(buf):
            # all consumed (the usual case: segments carry whole APDUs): the octets become
            # the buffer as they are (bytes() copies only a mutable or borrowed buffer)
            self._buf = bytes(data)
            self._pos = 0
            return
        if isinstance(buf, bytes):
            buf = self._buf = bytearray(buf[self._pos:])
            self._pos = 0
        elif self._pos > 4096 and self._pos * 2 > len(buf):
            # compact lazily: only when the consumed head outweighs what is left
            del buf[: self._pos]
            self._pos = 0
        buf += data

    def reset(self, offset: int | None = None) -> bytes:
        """Drop buffered octets (e.g. after a capture gap) and return them.

        Args:
            offset: new stream offset of the next fed octet (default: unchanged count).
        """
        rest = bytes(self._buf[self._pos:])
        self._buf = b""
        self._pos = 0
        self._offset = self._offset + len(rest) if offset is None else offset
        return rest

    def _take(self, size: int) -> tuple[int, bytes]:
        start = self._pos
        self._pos += size
        offset = self._offset
        self._offset += size
        return offset, bytes(self._buf[start: start + size])

    def next_event(self) -> Event | _Sentinel:
        """Return the next event at the front of the buffer, or ``NEED_DATA``."""
        return self._event(len(self._buf))

    def _event(self, end: int) -> Event | _Sentinel:
        """:meth:`next_event` as if the buffer ended at ``end`` (<= its length)."""
        buf = self._buf
        pos = self._pos
        if pos >= end:
            return NEED_DATA
        if buf[pos] == START:
            if end - pos < 2:
                return NEED_DATA  # the length octet has not arrived yet
            length = buf[pos + 1]
            if 4 <= length <= MAX_LENGTH:
                size = length + 2
                if end - pos < size:
                    return NEED_DATA
                # self._take(size), inline (once per APDU)
                offset = self._offset
                self._pos = pos + size
                self._offset = offset + size
                raw = buf[pos:pos + size]
                if type(raw) is not bytes:  # a slice of a bytearray buffer
                    raw = bytes(raw)
                try:
                    apdu = self._check(raw)
                except DecodeError as exc:
                    return _new(Malformed, (offset, raw, exc.reason))
                # tuple.__new__ skips the NamedTuple's Python-level __new__ (hot path)
                return _new(Frame, (offset, raw, apdu))
        # garbage: skip to the next plausible start octet
        nxt = pos + 1
        while True:
            nxt = buf.find(START, nxt, end)
            if nxt < 0 or _plausible(buf, nxt, end):
                break
            nxt += 1
        if nxt < 0:
            nxt = end  # no APDU can start in what is buffered: report all of it
        offset, raw = self._take(nxt - pos)
        first = raw[0]
        reason = (f"start octet 0x{first:02x} is not 0x68" if first != START
                  else f"APDU length {raw[1]} outside [4, 253]")
        return Malformed(offset, raw, f"{reason}; skipped {len(raw)} octets")

    def scan(self, data: bytes, ends: Sequence[int],
             run: Callable[[bytes | bytearray, int, int], Sequence[int]] = apdu_run,
             runs: bool = False) -> Scan:
        """Feed consecutive chunks at once and frame them (see the module docstring).

        Args:
            data: the chunks' octets, joined.
            ends: where each chunk ends in ``data`` (increasing; the last is ``len(data)``).
            run: finds the valid whole APDUs from an offset, as :func:`~.apci.apdu_run`
                (the default) answers; the dissector passes the same answer by column.
            runs: report each run the finder found as one :class:`Run`, and the octets of
                the events joined (see :class:`Scan`).

        Returns:
            The events that feeding each chunk and calling :meth:`next_event` until
            ``NEED_DATA`` would have given; an incomplete APDU stays buffered, as there.
        """
        self.feed(data)
        buf = self._buf
        pos = self._pos
        first = self._offset
        base = len(buf) - len(data)  # where ``data`` starts in the buffer
        origin = pos
        events: list[bytes | Malformed | Run] = []
        chunks: list[int] = []
        malformed = 0
        last = len(ends) - 1
        c = 0
        end = base + ends[0]  # what the framer has seen after the feed of chunk c
        total = len(buf)
        size_at = apdu_size
        while True:
            stops = run(buf, pos, total)  # the valid APDUs from here on, whole
            if runs:
                if len(stops):
                    pos = int(stops[-1])
                    if end < pos:  # the chunk of the run's last APDU
                        c = bisect_left(ends, pos - base, c)
                        end = base + ends[c]
                    events.append(Run(stops))
                    chunks.append(c)
            else:
                for stop in stops:
                    while end < stop:
                        c += 1
                        end = base + ends[c]
                    events.append(buf[pos:stop])  # type: ignore[arg-type]  # bytes at the end
                    chunks.append(c)
                    pos = stop
            if pos < total and size_at(buf, pos):
                break  # a valid APDU header, not whole (apdu_run took the whole ones)
            # anything else: next_event's own path, with what has been seen so far
            self._offset += pos - self._pos
            self._pos = pos
            event = self._event(end)
            if event is NEED_DATA:
                if c == last:
                    break
                c += 1
                end = base + ends[c]
                continue
            pos = self._pos
            if type(event) is Malformed:
                malformed += 1
                events.append(event)  # type: ignore[arg-type]
            else:
                events.append(event.raw)  # type: ignore[union-attr]
            chunks.append(c)
        self._offset += pos - self._pos
        self._pos = pos
        if runs:
            octets = buf if origin == 0 and pos == total and type(buf) is bytes \
                else bytes(buf[origin:pos])
            return Scan(events, chunks, malformed, first, octets, origin, base)
        if type(buf) is bytearray:
            events = [bytes(e) if type(e) is bytearray else e for e in events]
        return Scan(events, chunks, malformed, first)

    def __iter__(self) -> Iterator[Event]:
        """Yield events until ``NEED_DATA``."""
        while True:
            event = self.next_event()
            if event is NEED_DATA:
                return
            yield event  # type: ignore[misc]
