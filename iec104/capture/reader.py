"""Read packet records from pcap and pcapng files (standard library only).

Theory of operation
-------------------
:class:`CaptureParser` is the one parser of both formats, and it is sans-IO: bytes go in with
:meth:`~CaptureParser.feed` (any sizes, any boundaries), :class:`Packet` records come out of
:meth:`~CaptureParser.packets`, which yields :data:`NEED_DATA` when it waits for more and ends
after :meth:`~CaptureParser.end`. Files and dumpcap's live pipe are parsed by the same code, so
they number frames, honour snapshot lengths and report damage alike.

:class:`CaptureReader` is the parser fed from a file: it reads and checks the file header
*eagerly* (so a file that is not a capture raises
:class:`~iec104.capture.errors.CaptureError` from the constructor, before any packet is
produced) and then feeds the file in large chunks as the parser asks for them.

Records are cut out of a ``bytes`` buffer with ``struct.unpack_from``; a record that straddles
a chunk boundary makes the parser join the unread tail with the next chunk. Each packet's
bytes are a copy (``bytes``), so a consumer that keeps a packet does not pin the whole chunk
in memory.

Frame numbers count every record in the file from 1, exactly as Wireshark numbers frames:
pcapng Enhanced, Simple and obsolete Packet Blocks are yielded; Custom Blocks and systemd
Journal Export Blocks are records (frames) to Wireshark too, so they take a frame number but are
not yielded (:attr:`CaptureReader.other_records` counts them); the other pcapng blocks are not
frames.
Timestamps are integer nanoseconds since the Unix epoch, UTC:

* pcap: microsecond magic ``a1b2c3d4`` or nanosecond magic ``a1b23c4d``, either byte order
  (and the "modified" ``a1b2cd34`` variant, whose record header is 24 bytes).
* pcapng: per interface ``if_tsresol`` (``10**-n`` or, with the top bit set, ``2**-n``; default
  microseconds) and ``if_tsoffset`` (seconds added to every timestamp). Each Section Header Block
  may have its own byte order and starts a new list of interfaces. Simple Packet Blocks carry no
  timestamp (Wireshark shows none): their ``time_ns`` is ``0``.

This is the one place where capture timestamps become nanoseconds, and the one place that keeps
them storable: every later stage (the Parquet ``time`` column, pandas) holds int64 nanoseconds,
i.e. 1677-09-21 to 2262-04-11. A pcapng timestamp outside that range (a flipped bit, an
``if_tsresol`` of 0 or 0x80 read as seconds, a huge ``if_tsoffset``) does not stop the reader:
the packet is yielded with ``time_ns=None`` (a null ``time`` downstream), the first such frame is
named in a :class:`~iec104.capture.errors.CaptureWarning`, and :attr:`CaptureReader.
time_problem` summarises them all once iteration is over. (pcap timestamps are 32-bit seconds and
always fit.)

Damage part-way through (a truncated last record, a block length that cannot be right) does not
raise: every whole record before it is yielded, then a
:class:`~iec104.capture.errors.CaptureWarning` is issued, the reason is stored in
:attr:`CaptureReader.problem` and iteration stops.

gzip-compressed captures (``.pcap.gz``, ``.pcapng.gz``, as Wireshark writes them) are
recognised by their magic bytes and decompressed on the fly.
"""

from __future__ import annotations

import enum
import gzip
import io
import os
import struct
import warnings
import zlib
from array import array
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Self, cast

from .errors import CaptureError, CaptureWarning

__all__ = [
    "NEED_DATA",
    "CaptureParser",
    "CaptureReader",
    "LinkType",
    "Packet",
    "RecordBlock",
    "read_packets",
]

_CHUNK = 1 << 20
_ZERO = (0,)
_PIECE = 1 << 16  # one read() of a refill (see _refill)
#: What reading the file may raise besides a clean end: I/O errors, and for gzip a damaged
#: header or CRC (OSError), a cut stream (EOFError) or damaged deflate data (zlib.error).
_READ_ERRORS = (OSError, EOFError, zlib.error)
#: Nanosecond timestamps that int64 (Arrow's and pandas' ``timestamp[ns]``) can hold; pandas
#: reserves -2**63 for NaT, so the range starts one above it.
MIN_TIME_NS = -(1 << 63) + 1
MAX_TIME_NS = (1 << 63) - 1
#: A record longer than this is taken as corruption rather than an attempt to allocate it.
MAX_RECORD = 1 << 26


class LinkType(enum.IntEnum):
    """Link-layer header types (``LINKTYPE_*`` values as stored in files) that
    :mod:`iec104.capture.packet` can decode. Other values are passed through as ``int``."""

    NULL = 0  #: BSD loopback: 4-byte address family in the capturing host's byte order
    ETHERNET = 1
    RAW_12 = 12  #: raw IP (DLT_RAW as written by some OSes)
    RAW_14 = 14  #: raw IP (DLT_RAW on OpenBSD)
    RAW = 101  #: raw IP, version from the first nibble
    LOOP = 108  #: OpenBSD loopback: 4-byte address family, network byte order
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


class Packet(NamedTuple):
    """One packet record of a capture file."""

    frame: int
    """Frame number, 1-based, counting every packet record in the file (as Wireshark)."""
    time_ns: int | None
    """Capture time, integer nanoseconds since 1970-01-01T00:00:00Z, in [MIN_TIME_NS,
    MAX_TIME_NS]; 0 for pcapng SPBs; None when the file's timestamp is outside that range."""
    linktype: int
    """Link-layer type of the packet's interface (a :class:`LinkType` value or other int)."""
    data: bytes
    """The captured bytes (possibly shorter than ``orig_len`` if the snapshot length cut it)."""
    orig_len: int
    """Length of the packet on the wire."""
    interface: int = 0
    """pcapng interface index within its section (0 for pcap)."""


_TWO_WORDS = {order: struct.Struct(order + "II").unpack_from for order in "<>"}


class RecordBlock(NamedTuple):
    """Consecutive packet records of one kind -- pcap records, or pcapng Enhanced Packet
    Blocks of one interface -- in the octets that hold them
    (:meth:`CaptureParser.record_blocks`)."""

    data: bytes
    """Octets holding the records (and maybe more around them)."""
    starts: array[int]
    """Where each record (its record header or block) starts in ``data`` (int64)."""
    first: int
    """Frame number of the first record (1-based)."""
    byte_order: str
    """``"<"`` or ``">"``, of the record headers."""
    header: int
    """Octets before a record's packet: the pcap record header (16, or 24 for the
    "modified" pcap), or 28 (an EPB's)."""
    length_at: int
    """Where a record's captured length lies in it (pcap 8, EPB 20); its original length
    follows."""
    linktype: int
    clock: tuple[int, int, int] | None
    """EPBs: their interface's ``(mul, div, offset_ns)``: a record's time (ns) is its
    64-bit timestamp ``ts * mul // div + offset_ns`` (in range: the run checked it);
    pcap: None (seconds and fraction in the header)."""
    frac_ns: int = 1000
    """pcap: nanoseconds per unit of the header's second fraction (1000 or 1)."""
    interface: int = 0
    """EPBs: their interface."""

    def packet(self, i: int) -> Packet:
        """Record ``i`` of the block as the :class:`Packet` that :meth:`~CaptureParser.
        packets` gives."""
        pos = self.starts[i]
        data = self.data
        two = _TWO_WORDS[self.byte_order]
        incl, orig = two(data, pos + self.length_at)
        if self.clock is None:
            sec, frac = two(data, pos)
            time_ns = sec * 1_000_000_000 + frac * self.frac_ns
        else:
            hi, lo = two(data, pos + 12)
            time_ns = _epb_time((hi << 32) | lo, *self.clock)
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (once per packet)
        return tuple.__new__(Packet, (self.first + i, time_ns, self.linktype,  # type: ignore[return-value]
                                      data[pos + self.header:pos + self.header + incl], orig,
                                      self.interface))


# pcap magic numbers as they appear in the first four bytes of the file.
_PCAP_MAGICS: dict[bytes, tuple[str, int, int]] = {
    # raw bytes: (byte order, nanoseconds per fraction unit, record header size)
    b"\xd4\xc3\xb2\xa1": ("<", 1000, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1000, 24),  # "modified" (Kuznetzov) libpcap
    b"\xa1\xb2\xcd\x34": (">", 1000, 24),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"
_GZIP_MAGIC = b"\x1f\x8b"

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_PB = 0x00000002  # obsolete Packet Block
_SPB = 0x00000003
_EPB = 0x00000006
_ISB = 0x00000005
_JOURNAL = 0x00000009
_CUSTOM = frozenset((0x00000BAD, 0x40000BAD))

_OPT_ENDOFOPT = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14
_OPT_ISB_IFDROP = 5

_PARSER_STATE = frozenset(("format", "nanosecond", "byte_order", "linktype", "snaplen", "problem",
                           "frames", "other_records", "bad_times", "bad_time_frames"))


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    mul: int  # a timestamp's time: _epb_time(ts, mul, div, offset_ns)
    div: int
    offset_ns: int


def _epb_time(ts: int, mul: int, div: int, offset_ns: int) -> int:
    """The time (ns since the epoch) of an EPB's or PB's 64-bit timestamp ``ts`` on its
    interface's clock (``mul``/``div``: if_tsresol, ``offset_ns``: if_tsoffset);
    :func:`iec104.capture.blocks._epb_times` is its form by column."""
    return (ts * mul if div == 1 else ts * mul // div) + offset_ns  # (// costs on big ints)


def _source_name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    if isinstance(name, (str, bytes)):
        return os.fsdecode(name)
    return repr(source)


class _NeedData:
    """The type of :data:`NEED_DATA`."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
"""What :meth:`CaptureParser.packets` yields when it needs more bytes (:meth:`~CaptureParser.
feed` them, or :meth:`~CaptureParser.end` the input)."""


class CaptureParser:
    """Sans-IO pcap/pcapng parser: bytes in, :class:`Packet` records out.

    The one parser of capture formats: :class:`CaptureReader` feeds it a file (or a pipe)
    chunk by chunk, live capture feeds it dumpcap's pipe as bytes arrive. Use::

        parser = CaptureParser("dumpcap")
        parser.feed(data)
        if parser.parse_header():          # False: not enough bytes yet
            for item in parser.packets():  # the same iterator every call
                if item is NEED_DATA:
                    break                  # feed() more (or end()), then iterate again
                ...                        # a Packet

    Args:
        name: the name used in errors and warnings.
        keep_blocks: pcapng only: collect every whole block in :attr:`blocks` and the
            current section's header blocks (SHB and IDBs) in :attr:`header`, to copy the
            capture into files of its own (live capture).

    Raises:
        CaptureError: from :meth:`parse_header`, when the input is not pcap/pcapng or its
            file header is damaged.

    Attributes:
        format, nanosecond, byte_order, linktype, snaplen: of the file header (see
            :class:`CaptureReader`), set by :meth:`parse_header`.
        problem, frames, other_records, bad_times, bad_time_frames: see
            :class:`CaptureReader`.
        header: pcapng section header and interface description blocks (``keep_blocks``).
        blocks: whole pcapng blocks since the last :meth:`take_blocks` (``keep_blocks``).
        if_drops: interface id -> packets the interface dropped (pcapng statistics blocks).
    """

    format: str
    byte_order: str
    nanosecond: bool
    snaplen: int

    def __init__(self, name: str = "<stream>", *, keep_blocks: bool = False) -> None:
        self.name = name
        self.problem: str | None = None
        self.frames = 0
        self.other_records = 0
        self.bad_times = 0
        self.bad_time_frames: list[int] = []
        self.linktype: int | None = None
        self.header = bytearray()
        self.blocks: list[bytes] = []
        self.if_drops: dict[int, int] = {}
        self.keep_blocks = keep_blocks
        self.header_wanted = 4
        """Bytes :meth:`parse_header` wants to see before it can say more (>= 1)."""
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._eof = False
        self._read_error: str | None = None
        self._started = False
        self._iterator: Iterator[Packet | _NeedData] | None = None
        self._buf = b""

    # -- input ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Add the next bytes of the capture (any size, any boundaries)."""
        if data:
            self._pending.append(bytes(data))
            self._pending_size += len(data)

    def end(self, read_error: str | None = None) -> None:
        """No more bytes will come (``read_error``: why reading stopped, if it failed)."""
        self._eof = True
        if read_error is not None and self._read_error is None:
            self._read_error = read_error

    def _take(self, tail: bytes) -> bytes:
        """``tail`` followed by every pending byte."""
        pending = self._pending
        more = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._pending_size = 0
        return tail + more if tail else more

    def take_blocks(self) -> list[bytes]:
        """The whole blocks completed since the last call (``keep_blocks``)."""
        blocks, self.blocks = self.blocks, []
        return blocks

    def _error(self, reason: str) -> CaptureError:
        return CaptureError(self.name, reason)

    @property
    def started(self) -> bool:
        """Whether the file header has been parsed (:meth:`parse_header` returned True)."""
        return self._started

    # -- the file header ---------------------------------------------------------------------

    def parse_header(self) -> bool:
        """Parse the file header once enough bytes are there.

        Returns:
            True once the header is parsed (then :meth:`packets` yields records); False
            while fewer than :attr:`header_wanted` more bytes are available.

        Raises:
            CaptureError: not a capture, or its header is damaged or cut off (at the end).
        """
        if self._started:
            return True
        head = self._buf = self._take(self._buf)
        size = len(head)
        if size < 4:
            if not self._eof:
                self.header_wanted = 4 - size
                return False
            if not size:
                raise self._error("empty file, not a pcap or pcapng capture")
        magic = head[:4]
        if magic in _PCAP_MAGICS:
            if size < 24:
                if not self._eof:
                    self.header_wanted = 24 - size
                    return False
                raise self._error(f"truncated pcap file header ({size} of 24 bytes)")
            self._start_pcap(head)
        elif magic == _PCAPNG_SHB:
            if size < 28:
                if not self._eof:
                    self.header_wanted = 28 - size
                    return False
                raise self._error(f"truncated pcapng Section Header Block ({size} bytes)")
            blen = self._check_shb(head)
            if size < blen:
                if not self._eof:
                    self.header_wanted = blen - size
                    return False
                # the whole first block is the file header: a file cut inside it is no capture
                raise self._error(f"truncated pcapng Section Header Block ({size} of "
                                  f"{blen} bytes)")
            self.format = "pcapng"
            self.nanosecond = False
        else:
            raise self._error(
                f"not a pcap or pcapng capture (starts with {magic.hex(' ')}; expected a pcap "
                "magic such as d4 c3 b2 a1 or the pcapng block type 0a 0d 0d 0a)"
            )
        self._started = True
        return True

    def _start_pcap(self, head: bytes) -> None:
        order, frac_ns, rec_size = _PCAP_MAGICS[head[:4]]
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(
            order + "HHiIII", head, 4)
        if major != 2:
            raise self._error(f"unsupported pcap version {major}.{minor}")
        self.format = "pcap"
        self.byte_order = order
        self.nanosecond = frac_ns == 1
        self.snaplen = snaplen
        # Upper bits of the link-type field carry FCS information (LT_LINKTYPE mask).
        self.linktype = network & 0x03FFFFFF
        self._rec = struct.Struct(order + "IIII")
        self._rec_size = rec_size
        self._frac_ns = frac_ns
        self._buf = head[24:]

    def _check_shb(self, head: bytes) -> int:
        """The length of the first Section Header Block (its byte order and version checked)."""
        bom = head[8:12]
        if bom == _BOM_LE:
            order = "<"
        elif bom == _BOM_BE:
            order = ">"
        else:
            raise self._error(f"pcapng Section Header Block with bad byte-order magic {bom.hex()}")
        (blen,) = struct.unpack_from(order + "I", head, 4)
        major, minor = struct.unpack_from(order + "HH", head, 12)
        if major != 1:
            raise self._error(f"unsupported pcapng version {major}.{minor}")
        if blen < 28 or blen % 4 or blen > MAX_RECORD:
            raise self._error(f"pcapng Section Header Block has invalid length {blen}")
        self.byte_order = order
        return blen

    # -- records -------------------------------------------------------------------------------

    def packets(self) -> Iterator[Packet | _NeedData]:
        """The records, then :data:`NEED_DATA` whenever the parser waits for bytes; ends after
        :meth:`end` (or at damage: :attr:`problem`). Always the same iterator."""
        if not self._started:
            raise RuntimeError("packets() before parse_header() returned True")
        if self._iterator is None:
            # without ``records`` _iter_pcapng yields no RecordBlock
            self._iterator = self._iter_pcap() if self.format == "pcap" else cast(
                Iterator[Packet | _NeedData], self._iter_pcapng())
        return self._iterator

    def _more(self, buf: bytes, pos: int, need: int) -> Generator[_NeedData, None,
                                                                  tuple[bytes, int, int]]:
        """``(buf, pos, len(buf))`` with at least ``need`` bytes from ``pos`` on if the input
        has them: the unread tail joined with the bytes fed, asking for more (yielding
        :data:`NEED_DATA`) until there are enough or the input has ended."""
        while len(buf) - pos < need:
            if self._pending:
                buf = self._take(buf[pos:])
                pos = 0
            elif self._eof:
                break
            else:
                yield NEED_DATA
        return buf, pos, len(buf)

    def _bad_time(self, frame: int, ns: int) -> None:
        """Note a packet whose timestamp ``ns`` cannot be stored (it is yielded without one)."""
        self.bad_times += 1
        if len(self.bad_time_frames) < 10:
            self.bad_time_frames.append(frame)
        if self.bad_times == 1:
            warnings.warn(CaptureWarning(f"{self.name}: frame {frame}: {_bad_time_reason(ns)}; "
                                         "kept without a time"), stacklevel=5)

    @property
    def time_problem(self) -> str | None:
        """Which frames were yielded without a time (out-of-range timestamps), or None."""
        if not self.bad_times:
            return None
        frames = ", ".join(map(str, self.bad_time_frames))
        more = self.bad_times - len(self.bad_time_frames)
        return (f"frame{'s' if self.bad_times > 1 else ''} {frames}"
                f"{f' and {more} more' if more else ''}: timestamp outside the years 1677-2262 "
                "(a damaged block, or an extreme if_tsresol/if_tsoffset); kept without a time")

    def _stop(self, reason: str) -> None:
        if self._read_error is not None and reason != self._read_error:
            reason = f"{self._read_error}; {reason}"  # the cause first, then what it cut
        self.problem = reason
        warnings.warn(CaptureWarning(f"{self.name}: {reason}"), stacklevel=4)

    def _records(self) -> tuple[bytes, int, int, int]:
        """Where the records start: the buffer after the file header (handed over), the
        position in it, its length, the frames before."""
        buf = self._buf
        self._buf = b""
        return buf, 0, len(buf), 0

    def _pcap_record(self, buf: bytes, pos: int, frame: int,
                     ) -> Generator[_NeedData, None, tuple[bytes, int, int] | None]:
        """The record at ``pos`` is not whole in ``buf``: ``(buf, pos, len(buf))`` holding
        it once more bytes came, or None at the end of the input or at damage (the reason
        in :attr:`problem`). ``frame``: the frames before it."""
        hsize = self._rec_size
        buf, pos, n = yield from self._more(buf, pos, hsize)
        if n - pos < hsize:
            if n - pos:
                self._stop(f"truncated record header after frame {frame} "
                           f"({n - pos} of {hsize} bytes)")
            elif self._read_error:
                self._stop(self._read_error)
            return None
        incl = self._rec.unpack_from(buf, pos)[2]
        if pos + hsize + incl > n:
            if incl > MAX_RECORD:
                self._stop(f"record after frame {frame} claims {incl} captured bytes; "
                           "the file is corrupt")
                return None
            buf, pos, n = yield from self._more(buf, pos, hsize + incl)
            if pos + hsize + incl > n:
                self._stop(f"truncated record after frame {frame}: frame {frame + 1} has "
                           f"{n - pos - hsize} of {incl} bytes")
                return None
        return buf, pos, n

    def _iter_pcap(self) -> Iterator[Packet | _NeedData]:
        unpack = self._rec.unpack_from
        new = tuple.__new__
        hsize = self._rec_size
        frac_ns = self._frac_ns
        linktype = self.linktype
        assert linktype is not None
        buf, pos, n, frame = self._records()
        while True:
            if n - pos >= hsize:
                sec, frac, incl, orig = unpack(buf, pos)
                end = pos + hsize + incl
            if n - pos < hsize or end > n:
                whole = yield from self._pcap_record(buf, pos, frame)
                if whole is None:
                    return
                buf, pos, n = whole
                sec, frac, incl, orig = unpack(buf, pos)
                end = pos + hsize + incl
            frame += 1
            self.frames = frame
            # tuple.__new__ skips the NamedTuple's Python-level __new__ (hot path)
            yield new(Packet, (frame, sec * 1_000_000_000 + frac * frac_ns, linktype,
                               buf[pos + hsize:end], orig, 0))
            pos = end

    def record_blocks(self, records: int) -> Iterator[RecordBlock | Packet | _NeedData]:
        """Instead of :meth:`packets`: the same records, frames and damage, in blocks of
        up to ``records`` consecutive records (fewer where a chunk of the input ends)
        without an object per record (the dissector's block lane), each as the octets
        that hold it and where its records start; :data:`NEED_DATA` as there. pcapng: runs
        of Enhanced Packet Blocks of one interface; any other record comes as the
        :class:`Packet` that :meth:`packets` gives."""
        if not self._started or self._iterator is not None or self.keep_blocks:
            raise RuntimeError("record_blocks() needs a parser whose packets() were not read "
                               "and that keeps no blocks")
        self._iterator = iter(())  # packets() would start at the beginning again
        if self.format == "pcapng":
            return self._iter_pcapng(records)
        return self._pcap_blocks(records)

    def _pcap_blocks(self, records: int) -> Iterator[RecordBlock | _NeedData]:
        size = struct.Struct(self.byte_order + "I").unpack_from
        hsize = self._rec_size
        assert self.linktype is not None
        head = RecordBlock(b"", array("q"), 0, self.byte_order, hsize, 8, self.linktype, None,
                           self._frac_ns)
        buf, pos, n, frame = self._records()
        while True:
            # the length chain, in one tight loop (an array filled in place: cheaper than
            # appends, and than a check of the octets left before each header; numpy
            # takes it as it is)
            starts = array("q", _ZERO) * records
            i = 0
            try:
                for i in range(records):
                    starts[i] = pos
                    pos += hsize + size(buf, pos + 8)[0]
                    if pos > n:  # record i is not whole in buf
                        pos = starts[i]
                        break
                else:
                    i = records
            except struct.error:  # fewer octets than a length at pos: no record i in buf
                pass
            del starts[i:]
            if starts:
                yield head._replace(data=buf, starts=starts, first=frame + 1)
                frame += len(starts)
                self.frames = frame
                continue
            whole = yield from self._pcap_record(buf, pos, frame)
            if whole is None:
                return
            buf, pos, n = whole

    def _iter_pcapng(self, records: int = 0,
                     ) -> Iterator[RecordBlock | Packet | _NeedData]:
        """The records; with ``records`` > 0, runs of EPBs as :class:`RecordBlock`
        (see :meth:`record_blocks`)."""
        buf, pos, n, frame = self._records()
        order = self.byte_order
        interfaces: list[_Interface] = []
        hdr = struct.Struct(order + "II")
        epb = struct.Struct(order + "IIIII")
        run = struct.Struct(order + "6I").unpack_from  # an EPB's header in a run
        new = tuple.__new__
        keep = self.keep_blocks
        lowest, highest = MIN_TIME_NS, MAX_TIME_NS  # locals: checked once per packet
        while True:
            if records and interfaces and n - pos >= 12:
                # a run of EPBs of one interface, each one the general path below would
                # yield as it is (whole, consistent, time in range); anything else
                # ends the run and goes there. One unpack per EPB (its header to the
                # captured length; fewer octets end the run) and arrays filled in place:
                # the loop is the cost of a pcapng.
                (iface,) = struct.unpack_from(order + "I", buf, pos + 8)
                if iface < len(interfaces):
                    itf = interfaces[iface]
                    low, high = _stored_ts(itf)
                    starts = array("q", _ZERO) * records
                    start = pos
                    i = 0
                    try:
                        for i in range(records):
                            btype, blen, this, hi, lo, caplen = run(buf, pos)
                            if btype != _EPB or this != iface or blen & 3 or blen < 32 \
                                    or blen > MAX_RECORD or pos + blen > n \
                                    or caplen > blen - 32 or not low <= (hi << 32) | lo <= high:
                                break
                            starts[i] = pos
                            pos += blen
                        else:
                            i = records
                    except struct.error:  # fewer octets than an EPB's header at pos
                        pass
                    if i:
                        del starts[i:]
                        yield RecordBlock(buf, starts, frame + 1, order, 28, 20, itf.linktype,
                                          (itf.mul, itf.div, itf.offset_ns), interface=iface)
                        frame += i
                        self.frames = frame
                        continue
                    pos = start
            if n - pos < 12:
                buf, pos, n = yield from self._more(buf, pos, 12)
                if n - pos < 12:
                    if n - pos:
                        self._stop(f"truncated block header after frame {frame} "
                                   f"({n - pos} bytes left)")
                    elif self._read_error:
                        self._stop(self._read_error)
                    return
            btype, blen = hdr.unpack_from(buf, pos)
            if btype == _SHB:
                bom = buf[pos + 8:pos + 12]
                if bom == _BOM_LE:
                    order = "<"
                elif bom == _BOM_BE:
                    order = ">"
                else:
                    self._stop(f"Section Header Block after frame {frame} has bad "
                               f"byte-order magic {bom.hex()}")
                    return
                hdr = struct.Struct(order + "II")
                epb = struct.Struct(order + "IIIII")
                run = struct.Struct(order + "6I").unpack_from
                (blen,) = struct.unpack_from(order + "I", buf, pos + 4)
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                self._stop(f"block of type 0x{btype:08x} after frame {frame} has invalid "
                           f"length {blen}; the file is corrupt")
                return
            end = pos + blen
            if end > n:
                buf, pos, n = yield from self._more(buf, pos, blen)
                end = pos + blen
                if end > n:
                    self._stop(f"truncated block of type 0x{btype:08x} after frame {frame} "
                               f"({n - pos} of {blen} bytes)")
                    return
            if keep:
                self._keep(btype, buf[pos:end])
            if btype == _EPB:
                if blen < 32:
                    self._stop(f"Enhanced Packet Block after frame {frame} is too short "
                               f"({blen} bytes)")
                    return
                iface, hi, lo, caplen, orig = epb.unpack_from(buf, pos + 8)
                if caplen > blen - 32:
                    self._stop(f"Enhanced Packet Block after frame {frame} claims {caplen} "
                               f"captured bytes in a {blen}-byte block")
                    return
                if iface >= len(interfaces):
                    self._stop(f"frame {frame + 1} refers to interface {iface} but the "
                               f"section has {len(interfaces)}")
                    return
                itf = interfaces[iface]
                ts = (hi << 32) | lo
                frame += 1
                self.frames = frame
                ns = _epb_time(ts, itf.mul, itf.div, itf.offset_ns)
                if not lowest <= ns <= highest:
                    self._bad_time(frame, ns)
                    ns = None
                yield new(Packet, (frame, ns, itf.linktype,
                                   buf[pos + 28:pos + 28 + caplen], orig, iface))
            elif btype == _SPB:
                if not interfaces:
                    self._stop(f"Simple Packet Block at frame {frame + 1} before any "
                               "Interface Description Block")
                    return
                (orig,) = struct.unpack_from(order + "I", buf, pos + 8)
                itf = interfaces[0]
                caplen = min(orig, blen - 16)
                if itf.snaplen:
                    caplen = min(caplen, itf.snaplen)
                frame += 1
                self.frames = frame
                yield Packet(frame, 0, itf.linktype, buf[pos + 12:pos + 12 + caplen], orig, 0)
            elif btype == _PB:
                if blen < 32:
                    self._stop(f"Packet Block after frame {frame} is too short")
                    return
                iface, _drops, hi, lo, caplen, orig = struct.unpack_from(
                    order + "HHIIII", buf, pos + 8)
                if caplen > blen - 32 or iface >= len(interfaces):
                    self._stop(f"Packet Block at frame {frame + 1} is inconsistent")
                    return
                itf = interfaces[iface]
                ts = (hi << 32) | lo
                frame += 1
                self.frames = frame
                ns = _epb_time(ts, itf.mul, itf.div, itf.offset_ns)
                if not lowest <= ns <= highest:
                    self._bad_time(frame, ns)
                    ns = None
                yield Packet(frame, ns, itf.linktype, buf[pos + 28:pos + 28 + caplen], orig,
                             iface)
            elif btype == _IDB:
                if blen < 20:
                    self._stop(f"Interface Description Block after frame {frame} is too short")
                    return
                itf = _parse_idb(buf, pos, blen, order)
                interfaces.append(itf)
                if self.linktype is None:
                    self.linktype = itf.linktype
            elif btype == _SHB:
                interfaces = []
            elif btype == _ISB:
                self._parse_isb(buf, pos, blen, order)
            elif btype == _JOURNAL or btype in _CUSTOM and blen >= 16:  # custom: has PEN
                frame += 1  # a record, and so a frame, to Wireshark
                self.frames = frame
                self.other_records += 1
            # Any other block type (NRB, DSB, custom, ...) is skipped.
            pos = end

    def _keep(self, btype: int, block: bytes) -> None:
        """Collect a whole block (and the section's header blocks) for copies."""
        if btype == _SHB:
            self.header = bytearray(block)
        elif btype == _IDB:
            self.header += block
        self.blocks.append(block)

    def _parse_isb(self, buf: bytes, pos: int, blen: int, order: str) -> None:
        if blen < 24:
            return
        (iface,) = struct.unpack_from(order + "I", buf, pos + 8)
        for code, value in _options(buf, pos + 20, pos + blen - 4, order):
            if code == _OPT_ISB_IFDROP and len(value) == 8:
                (self.if_drops[iface],) = struct.unpack(order + "Q", value)


def _stored_ts(itf: _Interface) -> tuple[int, int]:
    """The EPB timestamps of interface ``itf`` whose time (``ts * mul // div +
    offset_ns``) lies in [MIN_TIME_NS, MAX_TIME_NS]: ``[low, high]`` (a run of EPBs
    checks one comparison per packet, not the arithmetic)."""
    mul, div, offset_ns = itf.mul, itf.div, itf.offset_ns
    # floor(ts * mul / div) in [a, b]  <=>  ts * mul in [a * div, b * div + div - 1]
    low = -(-(MIN_TIME_NS - offset_ns) * div // mul)
    high = ((MAX_TIME_NS - offset_ns) * div + div - 1) // mul
    return low, high


def _options(buf: bytes, opt: int, stop: int, order: str) -> Iterator[tuple[int, bytes]]:
    """The (code, value) options of a block between ``opt`` and ``stop`` (its trailer)."""
    ounpack = struct.Struct(order + "HH").unpack_from
    while opt + 4 <= stop:
        code, olen = ounpack(buf, opt)
        if code == _OPT_ENDOFOPT or opt + 4 + olen > stop:
            return
        yield code, buf[opt + 4:opt + 4 + olen]
        opt += 4 + ((olen + 3) & ~3)


def _parse_idb(buf: bytes, pos: int, blen: int, order: str) -> _Interface:
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
    mul, div, offset_ns = 1000, 1, 0  # default resolution: microseconds
    for code, value in _options(buf, pos + 16, pos + blen - 4, order):
        if code == _OPT_IF_TSRESOL and len(value) >= 1:
            res = value[0]
            if res & 0x80:
                mul, div = 1_000_000_000, 1 << (res & 0x7F)
            elif res <= 9:
                mul, div = 10 ** (9 - res), 1
            else:
                mul, div = 1, 10 ** (res - 9)
        elif code == _OPT_IF_TSOFFSET and len(value) >= 8:
            (seconds,) = struct.unpack_from(order + "q", value)
            offset_ns = seconds * 1_000_000_000
    return _Interface(linktype, snaplen, mul, div, offset_ns)


class CaptureReader:
    """Iterate over the packet records of a pcap or pcapng file (:class:`CaptureParser` fed
    from the file).

    Args:
        source: a path, or a binary file object opened for reading (it is not closed by
            :meth:`close` unless the reader opened it). A pipe works too: a read that
            returns fewer bytes than asked hands them to the parser at once.
        name: the name used in error messages (default: the path or the file's ``name``).

    Raises:
        CaptureError: the input is empty, is not pcap/pcapng, or its file header is damaged.
        OSError: the path cannot be opened.

    Attributes:
        format: ``"pcap"`` or ``"pcapng"``.
        nanosecond: for pcap, whether the file has nanosecond timestamps.
        byte_order: ``"<"`` or ``">"`` (of the first section for pcapng).
        linktype: the pcap link type, or the first pcapng interface's (``None`` if none yet).
        problem: ``None``, or why reading stopped before the end of the file.
        frames: frame number of the last record read (as Wireshark numbers them).
        other_records: pcapng records that take a frame number but are no packets (custom
            and systemd journal blocks).
        bad_time_frames: frame numbers (the first 10) of packets yielded with ``time_ns=None``
            because their timestamp is outside the int64-nanosecond range;
            ``bad_times`` counts them all.

    Use as an iterator (once) and preferably as a context manager::

        with CaptureReader("x.pcapng") as reader:
            for pkt in reader:
                ...
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, *, name: str | None = None):
        self.name = name if name is not None else _source_name(source)
        self.parser = CaptureParser(self.name)
        self._owned = isinstance(source, (str, os.PathLike))
        self._file: BinaryIO = (
            open(source, "rb") if isinstance(source, (str, os.PathLike))  # noqa: SIM115
            else source
        )
        self._iterated = False
        try:
            try:
                self._start()
            except _READ_ERRORS as exc:  # e.g. damaged deflate data inside a gzip header
                raise self.parser._error(f"the file header cannot be read ({exc})") from exc
        except BaseException:
            self.close()
            raise

    if TYPE_CHECKING:  # the parser's state, read through __getattr__
        format: str
        nanosecond: bool
        byte_order: str
        linktype: int | None
        snaplen: int
        problem: str | None
        frames: int
        other_records: int
        bad_times: int
        bad_time_frames: list[int]

    def __getattr__(self, name: str) -> object:
        # the parser's state (format, frames, problem, ...) is the reader's
        if name in _PARSER_STATE:
            return getattr(self.parser, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def time_problem(self) -> str | None:
        """Which frames were yielded without a time (see :attr:`CaptureParser.time_problem`)."""
        return self.parser.time_problem

    # -- opening ----------------------------------------------------------------------------

    def _read_exact(self, n: int) -> bytes:
        """Read up to ``n`` bytes, looping over short reads (pipes, gzip)."""
        parts = []
        while n > 0:
            part = self._file.read(n)
            if not part:
                break
            parts.append(part)
            n -= len(part)
        return b"".join(parts)

    def _start(self) -> None:
        head = self._read_exact(4)
        if head[:2] == _GZIP_MAGIC:
            inner = self._file if self._seekable_rewind() else _Concat(head, self._file)
            self._file = gzip.GzipFile(fileobj=inner)  # type: ignore[assignment]
            try:
                head = self._read_exact(4)
            except _READ_ERRORS as exc:
                raise self.parser._error(f"gzip-compressed but unreadable ({exc})") from exc
        parser = self.parser
        parser.feed(head)
        while not parser.parse_header():
            more = self._read_exact(parser.header_wanted)
            parser.feed(more)
            if len(more) < parser.header_wanted:
                parser.end()

    def _seekable_rewind(self) -> bool:
        f = self._file
        try:
            if f.seekable():
                f.seek(0)
                return True
        except (OSError, ValueError):
            pass
        return False

    # -- iteration ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Packet]:
        if self._iterated:
            raise RuntimeError("a CaptureReader can be iterated only once")
        self._iterated = True
        return self._packets()

    def _packets(self) -> Iterator[Packet]:
        parser = self.parser
        need = NEED_DATA
        for item in parser.packets():
            if item is need:
                self._refill()
            else:
                yield item  # type: ignore[misc]

    def record_blocks(self, records: int) -> Iterator[RecordBlock | Packet]:
        """Instead of iterating: the records in blocks, and pcapng records other than
        EPBs as packets (see :meth:`CaptureParser.record_blocks`)."""
        if self._iterated:
            raise RuntimeError("a CaptureReader can be iterated only once")
        self._iterated = True
        need = NEED_DATA
        for item in self.parser.record_blocks(records):
            if item is need:
                self._refill()
            else:
                yield item  # type: ignore[misc]

    def _refill(self) -> None:
        """Feed the parser up to a chunk of the file; end it at the end of the file."""
        parser = self.parser
        want = _CHUNK
        while want > 0:
            # in pieces: a read that fails (damaged gzip data) loses only its own piece,
            # not the records already decompressed in this chunk
            try:
                part = self._file.read(min(want, _PIECE))
            except _READ_ERRORS as exc:
                parser.end(f"read error: {exc}")
                return
            if not part:
                parser.end()
                return
            parser.feed(part)
            want -= len(part)
            if len(part) < _PIECE and not isinstance(self._file, gzip.GzipFile):
                return  # a pipe with no more for now: hand over what is there

    # -- resource handling ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the file if the reader opened it (also the gzip wrapper, if any)."""
        f = self._file
        if isinstance(f, gzip.GzipFile):
            inner = f.fileobj  # GzipFile.close() sets it to None
            f.close()
            f = inner  # type: ignore[assignment]
            if isinstance(f, _Concat):
                f = f.rest  # type: ignore[assignment]
        if self._owned and f is not None:
            f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bad_time_reason(ns: int) -> str:
    return f"timestamp {'after 2262' if ns > 0 else 'before 1677'} ({ns} ns since 1970)"


class _Concat(io.RawIOBase):
    """A read-only stream of ``prefix`` followed by the rest of ``rest`` (for non-seekable gzip)."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self.prefix = prefix
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        if self.prefix:
            n = min(len(b), len(self.prefix))
            b[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        data = self.rest.read(len(b))
        b[:len(data)] = data
        return len(data)


def read_packets(source: str | os.PathLike[str] | BinaryIO) -> Iterator[Packet]:
    """Yield every packet record of a pcap/pcapng file (see :class:`CaptureReader`).

    Raises:
        CaptureError: at the first ``next()``, if the input is not a capture.
    """
    with CaptureReader(source) as reader:
        yield from reader
