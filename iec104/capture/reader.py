"""Read packet records from pcap and pcapng files (standard library only).

Theory of operation
-------------------
:class:`CaptureReader` opens the input, reads and checks the file header *eagerly* (so a file
that is not a capture raises :class:`~iec104.capture.errors.CaptureError` from the
constructor, before any packet is produced) and then yields :class:`Packet` records lazily.

The file is read in large chunks into a ``bytes`` buffer and records are cut out of it with
``struct.unpack_from``; a record that straddles a chunk boundary triggers a refill that keeps
the unread tail. Each packet's bytes are a copy (``bytes``), so a consumer that keeps a packet
does not pin the whole chunk in memory.

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
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple, Self

from .errors import CaptureError, CaptureWarning

__all__ = [
    "CaptureReader",
    "LinkType",
    "Packet",
    "read_packets",
]

_CHUNK = 1 << 20
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
_JOURNAL = 0x00000009
_CUSTOM = frozenset((0x00000BAD, 0x40000BAD))

_OPT_ENDOFOPT = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    mul: int  # ns = ts * mul // div + offset_ns
    div: int
    offset_ns: int


def _source_name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    if isinstance(name, (str, bytes)):
        return os.fsdecode(name)
    return repr(source)


class CaptureReader:
    """Iterate over the packet records of a pcap or pcapng file.

    Args:
        source: a path, or a binary file object opened for reading (it is not closed by
            :meth:`close` unless the reader opened it).
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

    format: str
    byte_order: str
    linktype: int | None
    nanosecond: bool

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, *, name: str | None = None):
        self.name = name if name is not None else _source_name(source)
        self.problem: str | None = None
        self._read_error: str | None = None  # a failed read; reported by _stop
        self.frames = 0
        self.other_records = 0
        self.bad_times = 0
        self.bad_time_frames: list[int] = []
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
                raise self._error(f"the file header cannot be read ({exc})") from exc
        except BaseException:
            self.close()
            raise

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

    def _error(self, reason: str) -> CaptureError:
        return CaptureError(self.name, reason)

    def _start(self) -> None:
        head = self._read_exact(4)
        if head[:2] == _GZIP_MAGIC:
            inner = self._file if self._seekable_rewind() else _Concat(head, self._file)
            self._file = gzip.GzipFile(fileobj=inner)  # type: ignore[assignment]
            try:
                head = self._read_exact(4)
            except _READ_ERRORS as exc:
                raise self._error(f"gzip-compressed but unreadable ({exc})") from exc
        if not head:
            raise self._error("empty file, not a pcap or pcapng capture")
        if head in _PCAP_MAGICS:
            self._start_pcap(head)
        elif head == _PCAPNG_SHB:
            self._start_pcapng(head)
        else:
            raise self._error(
                f"not a pcap or pcapng capture (starts with {head.hex(' ')}; expected a pcap "
                "magic such as d4 c3 b2 a1 or the pcapng block type 0a 0d 0d 0a)"
            )

    def _seekable_rewind(self) -> bool:
        f = self._file
        try:
            if f.seekable():
                f.seek(0)
                return True
        except (OSError, ValueError):
            pass
        return False

    def _start_pcap(self, magic: bytes) -> None:
        order, frac_ns, rec_size = _PCAP_MAGICS[magic]
        rest = self._read_exact(20)
        if len(rest) < 20:
            raise self._error(f"truncated pcap file header ({4 + len(rest)} of 24 bytes)")
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", rest)
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
        self._buf = b""

    def _start_pcapng(self, head: bytes) -> None:
        rest = self._read_exact(24)
        if len(rest) < 24:
            raise self._error(f"truncated pcapng Section Header Block ({4 + len(rest)} bytes)")
        bom = rest[4:8]
        if bom == _BOM_LE:
            order = "<"
        elif bom == _BOM_BE:
            order = ">"
        else:
            raise self._error(f"pcapng Section Header Block with bad byte-order magic {bom.hex()}")
        (blen,) = struct.unpack(order + "I", rest[:4])
        major, minor = struct.unpack(order + "HH", rest[8:12])
        if major != 1:
            raise self._error(f"unsupported pcapng version {major}.{minor}")
        if blen < 28 or blen % 4 or blen > MAX_RECORD:
            raise self._error(f"pcapng Section Header Block has invalid length {blen}")
        # the whole first block is the file header: a file cut inside it is no capture
        options = self._read_exact(blen - 28)
        if len(options) < blen - 28:
            raise self._error(f"truncated pcapng Section Header Block ({28 + len(options)} of "
                              f"{blen} bytes)")
        self.format = "pcapng"
        self.byte_order = order
        self.nanosecond = False
        self.linktype = None
        self._buf = head + rest + options

    # -- iteration ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Packet]:
        if self._iterated:
            raise RuntimeError("a CaptureReader can be iterated only once")
        self._iterated = True
        if self.format == "pcap":
            return self._iter_pcap()
        return self._iter_pcapng()

    def _bad_time(self, frame: int, ns: int) -> None:
        """Note a packet whose timestamp ``ns`` cannot be stored (it is yielded without one)."""
        self.bad_times += 1
        if len(self.bad_time_frames) < 10:
            self.bad_time_frames.append(frame)
        if self.bad_times == 1:
            warnings.warn(CaptureWarning(f"{self.name}: frame {frame}: {_bad_time_reason(ns)}; "
                                         "kept without a time"), stacklevel=4)

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
        warnings.warn(CaptureWarning(f"{self.name}: {reason}"), stacklevel=3)

    def _refill(self, buf: bytes, pos: int, need: int) -> bytes:
        """Return ``buf[pos:]`` extended with file data to at least ``need`` bytes if possible."""
        tail = buf[pos:]
        want = max(_CHUNK, need - len(tail))
        parts: list[bytes] = []
        while want > 0:
            # in pieces: a read that fails (damaged gzip data) loses only its own piece,
            # not the records already decompressed in this chunk
            try:
                part = self._file.read(min(want, _PIECE))
            except _READ_ERRORS as exc:
                self._read_error = self._read_error or f"read error: {exc}"
                break
            if not part:
                break
            parts.append(part)
            want -= len(part)
        more = b"".join(parts)
        return tail + more if tail else more

    def _iter_pcap(self) -> Iterator[Packet]:
        unpack = self._rec.unpack_from
        new = tuple.__new__
        hsize = self._rec_size
        frac_ns = self._frac_ns
        linktype = self.linktype
        assert linktype is not None
        buf = self._buf
        pos = 0
        n = len(buf)
        frame = 0
        try:
            while True:
                if n - pos < hsize:
                    buf = self._refill(buf, pos, hsize)
                    pos = 0
                    n = len(buf)
                    if n < hsize:
                        if n:
                            self._stop(
                                f"truncated record header after frame {frame} "
                                f"({n} of {hsize} bytes)"
                            )
                        elif self._read_error:
                            self._stop(self._read_error)
                        return
                sec, frac, incl, orig = unpack(buf, pos)
                start = pos + hsize
                end = start + incl
                if end > n:
                    if incl > MAX_RECORD:
                        self._stop(
                            f"record after frame {frame} claims {incl} captured bytes; "
                            "the file is corrupt"
                        )
                        return
                    buf = self._refill(buf, pos, hsize + incl)
                    pos = 0
                    n = len(buf)
                    start = hsize
                    end = start + incl
                    if end > n:
                        self._stop(
                            f"truncated record after frame {frame}: frame {frame + 1} has "
                            f"{n - hsize} of {incl} bytes"
                        )
                        return
                frame += 1
                self.frames = frame
                # tuple.__new__ skips the NamedTuple's Python-level __new__ (hot path)
                yield new(Packet, (frame, sec * 1_000_000_000 + frac * frac_ns, linktype,
                                   buf[start:end], orig, 0))
                pos = end
        finally:
            self._buf = b""

    def _iter_pcapng(self) -> Iterator[Packet]:
        buf = self._buf
        pos = 0
        n = len(buf)
        frame = 0
        order = self.byte_order
        interfaces: list[_Interface] = []
        hdr = struct.Struct(order + "II")
        epb = struct.Struct(order + "IIIII")
        new = tuple.__new__
        lowest, highest = MIN_TIME_NS, MAX_TIME_NS  # locals: checked once per packet
        try:
            while True:
                if n - pos < 12:
                    buf = self._refill(buf, pos, 12)
                    pos = 0
                    n = len(buf)
                    if n < 12:
                        if n:
                            self._stop(f"truncated block header after frame {frame} "
                                       f"({n} bytes left)")
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
                    (blen,) = struct.unpack_from(order + "I", buf, pos + 4)
                if blen < 12 or blen % 4 or blen > MAX_RECORD:
                    self._stop(f"block of type 0x{btype:08x} after frame {frame} has invalid "
                               f"length {blen}; the file is corrupt")
                    return
                end = pos + blen
                if end > n:
                    buf = self._refill(buf, pos, blen)
                    pos = 0
                    n = len(buf)
                    end = blen
                    if end > n:
                        self._stop(f"truncated block of type 0x{btype:08x} after frame {frame} "
                                   f"({n} of {blen} bytes)")
                        return
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
                    ns = (ts * itf.mul if itf.div == 1 else ts * itf.mul // itf.div) \
                        + itf.offset_ns
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
                    ns = ts * itf.mul // itf.div + itf.offset_ns
                    if not lowest <= ns <= highest:
                        self._bad_time(frame, ns)
                        ns = None
                    yield Packet(frame, ns, itf.linktype, buf[pos + 28:pos + 28 + caplen], orig,
                                 iface)
                elif btype == _IDB:
                    if blen < 20:
                        self._stop(f"Interface Description Block after frame {frame} is too short")
                        return
                    itf = self._parse_idb(buf, pos, blen, order)
                    interfaces.append(itf)
                    if self.linktype is None:
                        self.linktype = itf.linktype
                elif btype == _SHB:
                    interfaces = []
                elif btype == _JOURNAL or btype in _CUSTOM and blen >= 16:  # custom: has PEN
                    frame += 1  # a record, and so a frame, to Wireshark
                    self.frames = frame
                    self.other_records += 1
                # Any other block type (NRB, ISB, DSB, custom, ...) is skipped.
                pos = end
        finally:
            self._buf = b""

    @staticmethod
    def _parse_idb(buf: bytes, pos: int, blen: int, order: str) -> _Interface:
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        mul, div, offset_ns = 1000, 1, 0  # default resolution: microseconds
        opt = pos + 16
        stop = pos + blen - 4
        ounpack = struct.Struct(order + "HH").unpack_from
        while opt + 4 <= stop:
            code, olen = ounpack(buf, opt)
            value = buf[opt + 4:opt + 4 + olen]
            if code == _OPT_ENDOFOPT or opt + 4 + olen > stop:
                break
            if code == _OPT_IF_TSRESOL and olen >= 1:
                res = value[0]
                if res & 0x80:
                    mul, div = 1_000_000_000, 1 << (res & 0x7F)
                elif res <= 9:
                    mul, div = 10 ** (9 - res), 1
                else:
                    mul, div = 1, 10 ** (res - 9)
            elif code == _OPT_IF_TSOFFSET and olen >= 8:
                (seconds,) = struct.unpack_from(order + "q", value)
                offset_ns = seconds * 1_000_000_000
            opt += 4 + ((olen + 3) & ~3)
        return _Interface(linktype, snaplen, mul, div, offset_ns)

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
