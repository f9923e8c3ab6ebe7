"""Seeded fuzzing of everything that reads untrusted input: codec, framer, capture dissector
(pcap/pcapng records and blocks, IP fragments, TCP, IEC 104), the filter parser and the CLI around them.

Theory of operation
-------------------
Each *target* is a function ``case(rng, corpus) -> None`` that builds one input from a
:class:`random.Random` and feeds it to the code under test. It returns normally when the code
behaved as documented (a result, or one of the documented errors: ``DecodeError`` from the
codec, ``CaptureError`` when a file is no capture, ``FilterError`` for a bad expression, exit
codes 0/1/2 from the CLI) and raises anything else, which :func:`run` records as a *crash*.
Every case has its own generator, seeded with ``f"{target}:{seed}:{index}"``, so a crash is
reproduced by :func:`replay` with the three values :func:`run` reports, whatever ran before.

Inputs are mutations of a *corpus*: the APDUs and the capture files of ``captures/`` and, when
present, ``../shared/captures/public``. Captures are mutated at three levels: octets (flips,
cuts), records (pcap record headers; pcapng blocks dropped, duplicated, swapped, resized,
retyped, and Interface Description options such as ``if_tsresol``/``if_tsoffset`` and Enhanced
Packet Block timestamps and lengths set to extreme values) and payload (octets of a TCP payload,
so the IEC 104 layer sees damaged APDUs inside a well-formed capture).

``tests/test_fuzz.py`` runs a bounded number of cases per target in the test suite;
``scripts/fuzz.py`` runs millions and reports cases, crashes and peak memory.
"""

from __future__ import annotations

import io
import random
import struct
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow as pa

from iec104.capture.errors import CaptureError, CaptureWarning
from iec104.capture.ipfrag import Defragmenter
from iec104.capture.packet import TcpSegment, tcp_segments
from iec104.capture.reader import CaptureReader
from iec104.capture.reassembly import Reassembler
from iec104.codec import (
    DecodeError,
    Frame,
    Framer,
    IFrame,
    Malformed,
    Profile,
    decode_apdu,
    decode_asdu,
    encode_apdu,
    encode_asdu,
)
from iec104.dissector import StreamDecoder
from iec104.records.filter import Filter, FilterError, compile_filter
from iec104.records.schema import SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
OWN_CAPTURES = sorted((REPO_ROOT / "captures").glob("*.pcap*"))
PUBLIC_CAPTURES_DIR = REPO_ROOT.parent / "shared" / "captures" / "public"
# small public files keep a dissector case in the milliseconds
_PUBLIC_SEEDS = ("wireshark-wiki_iec104.pcap", "wireshark-wiki_iec104-sq.pcapng",
                 "iti_test-dissect-iec104-malformed.pcap", "ndpi_iec104-short.pcap",
                 "snort3_iec104-paf-pipelined-split.pcap", "emre_58-59-timetagged-commands.pcap")
PROFILES = [Profile(c, a, i) for c in (1, 2) for a in (1, 2) for i in (1, 2, 3)]


# -- corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """Seed inputs: capture files (bytes) and the APDUs (raw octets) they hold."""

    captures: tuple[bytes, ...]
    apdus: tuple[bytes, ...]
    batch: pa.RecordBatch  # decoded rows, for the filter target


@cache
def corpus(public: bool = True) -> Corpus:
    """The seed corpus (cached): our captures and, if ``public`` and present, six small
    public ones."""
    from iec104.dissector import dissect_table

    paths = list(OWN_CAPTURES)
    if public and PUBLIC_CAPTURES_DIR.is_dir():
        paths += [PUBLIC_CAPTURES_DIR / name for name in _PUBLIC_SEEDS
                  if (PUBLIC_CAPTURES_DIR / name).exists()]
    apdus: list[bytes] = []
    tables = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        for path in paths:
            table = dissect_table(path)
            tables.append(table)
            apdus += [raw for raw, apci in zip(table.column("raw").to_pylist(),
                                               table.column("apci").to_pylist())
                      if raw and apci is not None]
    batch = pa.concat_tables(tables).combine_chunks().to_batches()[0]
    return Corpus(tuple(p.read_bytes() for p in paths), tuple(dict.fromkeys(apdus)), batch)


# -- octet mutations ------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to three random edits: flip, set, insert, delete, truncate, extend, and the two
    octets that carry counts (VSQ / APDU length) and kinds (type ID / start octet)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[pos % len(buf)] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[pos % len(buf)] = rng.getrandbits(8)
        elif op == 2:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 4))
        elif op == 3 and buf:
            del buf[pos % len(buf):pos % len(buf) + rng.randint(1, 4)]
        elif op == 4:
            del buf[pos:]
        elif op == 5:
            buf += rng.randbytes(rng.randint(1, 8))
        elif op == 6 and len(buf) > 1:
            buf[1] = rng.getrandbits(8)  # VSQ (or APDU length): count/SQ lie
        elif op == 7 and buf:
            buf[0] = rng.getrandbits(8)  # type ID (or start octet)
    return bytes(buf)


def _extreme(rng: random.Random, bits: int) -> int:
    """An unsigned value of ``bits`` bits, often at an edge."""
    top = (1 << bits) - 1
    return rng.choice((0, 1, top, top >> 1, (top >> 1) + 1, rng.getrandbits(bits),
                       rng.getrandbits(bits) | (1 << (bits - 1))))


# -- capture mutations ----------------------------------------------------------------------


def _blocks(data: bytes) -> tuple[str, list[tuple[int, bytes]]] | None:
    """(byte order, [(block type, body)]) of a pcapng file; None if it does not split."""
    order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    out, pos = [], 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from(order + "II", data, pos)
        if blen < 12 or pos + blen > len(data):
            return None
        out.append((btype, data[pos + 8:pos + blen - 4]))
        pos += blen
    return order, out


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(
        order + "I", len(body) + 12)


def _idb_options(rng: random.Random, order: str) -> bytes:
    opts = b""
    if rng.random() < 0.7:
        opts += struct.pack(order + "HH", 9, 1) + bytes((rng.choice(
            (0, 3, 6, 9, 0x80, 0x80 | 20, 0x80 | 63, 0xFF, 19, rng.getrandbits(8))),)) + b"\0" * 3
    if rng.random() < 0.5:
        opts += struct.pack(order + "HHq", 14, 8, rng.choice(
            (0, 3600, -3600, 1 << 62, -(1 << 62), (1 << 63) - 1, -(1 << 63),
             rng.getrandbits(63) - (1 << 62))))
    if rng.random() < 0.2:
        opts += struct.pack(order + "HH", rng.getrandbits(16), rng.choice((0, 3, 200, 65535)))
    return opts + struct.pack(order + "HH", 0, 0)


def mutate_pcapng(rng: random.Random, data: bytes) -> bytes:
    """Block-level damage: the kinds a damaged disk, a buggy writer or a hostile file make."""
    split = _blocks(data)
    if split is None:
        return mutate(rng, data)
    order, blocks = split
    for _ in range(rng.randint(1, 3)):
        if len(blocks) < 2:
            break
        i = rng.randrange(1, len(blocks))  # block 0 is the Section Header
        btype, body = blocks[i]
        op = rng.randrange(10)
        if op == 0:
            del blocks[i]
        elif op == 1:
            blocks.insert(i, blocks[rng.randrange(len(blocks))])
        elif op == 2:
            j = rng.randrange(1, len(blocks))
            blocks[i], blocks[j] = blocks[j], blocks[i]
        elif op == 3:
            blocks[i] = (rng.choice((1, 2, 3, 4, 5, 6, 9, 0xBAD, 0x0A0D0D0A,
                                     rng.getrandbits(32))), body)
        elif op == 4 and btype == 1 and len(body) >= 8:  # Interface Description
            linktype = rng.choice((struct.unpack_from(order + "H", body)[0], 0, 101, 113, 276,
                                   rng.getrandbits(16)))
            blocks[i] = (1, struct.pack(order + "HHI", linktype, 0, _extreme(rng, 32) if
                                        rng.random() < 0.2 else 0) + _idb_options(rng, order))
        elif op in (5, 6) and btype == 6 and len(body) >= 20:  # Enhanced Packet Block
            iface, hi, lo, caplen, orig = struct.unpack_from(order + "IIIII", body)
            if op == 5:
                hi, lo = _extreme(rng, 32), _extreme(rng, 32)
            else:
                iface = rng.choice((iface, 1, 7, _extreme(rng, 32)))
                caplen = rng.choice((caplen, 0, caplen + 1, caplen + 4, _extreme(rng, 32)))
                orig = rng.choice((orig, 0, _extreme(rng, 32)))
            blocks[i] = (6, struct.pack(order + "IIIII", iface, hi, lo, caplen, orig)
                         + body[20:])
        elif op == 7:
            blocks[i] = (btype, mutate(rng, body))
        elif op == 8:  # a new section, maybe of the other byte order
            other = rng.choice(("<", ">"))
            shb = struct.pack(other + "IHHq", 0x1A2B3C4D, 1, 0, -1)
            blocks.insert(i, (0x0A0D0D0A, shb))
        else:
            blocks.insert(i, (rng.choice((1, 6, 3, 2)), rng.randbytes(rng.randrange(0, 40))))
    out = b"".join(_block(order, btype, body) for btype, body in blocks)
    if rng.random() < 0.3:  # a block length that lies (the file itself is damaged)
        pos = rng.randrange(len(blocks))
        at = sum(len(_block(order, t, b)) for t, b in blocks[:pos]) + 4
        out = out[:at] + struct.pack(order + "I", _extreme(rng, 32)) + out[at + 4:]
    if rng.random() < 0.2:
        out = out[:rng.randrange(len(out) + 1)]
    return out


def mutate_pcap(rng: random.Random, data: bytes) -> bytes:
    """Record-level damage: header fields (times, lengths) and the global header."""
    buf = bytearray(data)
    order = "<" if buf[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    starts, pos = [], 24
    while pos + 16 <= len(buf):
        starts.append(pos)
        pos += 16 + struct.unpack_from(order + "I", buf, pos + 8)[0]
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        if op == 0 and starts:
            at = rng.choice(starts) + 4 * rng.randrange(4)
            if at + 4 <= len(buf):  # an earlier edit may have cut the file
                struct.pack_into(order + "I", buf, at, _extreme(rng, 32))
        elif op == 1:
            at = rng.choice((4, 6, 16, 20))
            size = 2 if at < 8 else 4
            buf[at:at + size] = rng.randbytes(size)
        elif op == 2:
            buf[:4] = rng.choice((b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                                  b"\x34\xcd\xb2\xa1", b"\x0a\x0d\x0d\x0a", b"\x1f\x8b\x08\x00"))
        elif op == 3:
            del buf[rng.randrange(len(buf) + 1):]
        else:
            return mutate(rng, bytes(buf))
    return bytes(buf)


def mutate_payload(rng: random.Random, data: bytes) -> bytes:
    """Damage inside a frame (past the link and IP headers): TCP and IEC 104 octets, with the
    capture's own framing intact."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        pos = rng.randrange(min(len(buf), 100), len(buf)) if len(buf) > 100 else 0
        buf[pos] = rng.getrandbits(8) if rng.random() < 0.5 else buf[pos] ^ 1 << rng.randrange(8)
    return bytes(buf)


def mutate_capture(rng: random.Random, data: bytes) -> bytes:
    op = rng.randrange(4)
    if op == 0:
        return mutate(rng, data)
    if op == 1:
        return mutate_payload(rng, data)
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return mutate_pcapng(rng, data)
    return mutate_pcap(rng, data)


# -- filter expressions ------------------------------------------------------------------------

_NAMES = [f.name for f in SCHEMA] + ["port", "host", "C_SC_NA_1", "M_ME_NC_1", "ActCon",
                                     "Spont", "STARTDT_ACT", "U", "I", "S", "typo", "True",
                                     "False", "None", "__import__", "len"]
_OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"]
_LITERALS = ["0", "1", "-1", "45", "2404", "3.5", "1e300", "1e400", "-1e400",
             "99999999999999999999999", "-9223372036854775809", "2147483648", "0x10",
             "'U'", '"ACTIVATION"', "'2024-03-01 08:00'", "'9999-01-01'", "'x'", "b'\\x68'",
             "'\\udcff'", "(1, 2, 3)", "[1.5, 2]", "()", "(None,)", "True", "None"]


def _typed_comparison(rng: random.Random) -> str:
    """A comparison that fits its column's type (most compile), with edge values."""
    f = rng.choice(list(SCHEMA))
    op = rng.choice(("==", "!=", "<", ">=")) if not pa.types.is_boolean(f.type) else "=="
    if pa.types.is_integer(f.type):
        bits = f.type.bit_width
        value = str(rng.choice((0, 1, 45, 2404, -(1 << (bits - 1)), (1 << (bits - 1)) - 1,
                                1 << (bits - 1), rng.randrange(-100, 100_000))))
    elif pa.types.is_floating(f.type):
        value = repr(rng.choice((0.0, -1.5, 1e300, 3.25, rng.uniform(-1e6, 1e6))))
    elif pa.types.is_boolean(f.type):
        value = rng.choice(("True", "False", "None"))
    elif pa.types.is_timestamp(f.type):
        value = repr(rng.choice(("2024-03-01", "2026-11-26 08:09:55", "1677-09-22",
                                 "2262-04-11", "2009-08-13T19:23:00+02:00")))
    elif pa.types.is_string(f.type):
        if rng.random() < 0.3:
            return f"{rng.choice(('U', 'gap', 'ON', 'time tag'))!r} in {f.name}"
        value = repr(rng.choice(("U", "I", "c2s", "10.0.0.1", "M_ME_NC_1", "", "\u00e9")))
    else:
        value = repr(rng.randbytes(rng.randrange(4)))
    if rng.random() < 0.2:
        return f"{f.name} in ({value}, {value})"
    return f"{f.name} {op} {value}"


def random_expression(rng: random.Random, depth: int = 0) -> str:
    """A random expression, mostly in the filter language, sometimes deeply nested or huge
    (only the outermost level may be huge, so a case stays below about 100 KB)."""
    roll = rng.random()
    big = depth == 0 and rng.random() < 0.2
    if depth > 3 or roll < 0.35:
        if rng.random() < 0.5:
            return _typed_comparison(rng)
        left = rng.choice(_NAMES)
        if rng.random() < 0.3:
            return left
        return f"{left} {rng.choice(_OPS)} {rng.choice(_LITERALS + _NAMES)}"
    if roll < 0.55:
        joiner = rng.choice((" and ", " or ", " && ", " || "))
        return joiner.join(random_expression(rng, depth + 1)
                           for _ in range(rng.choice((2, 3, 1000) if big else (2, 3))))
    if roll < 0.7:
        return (rng.choice(("not ", "!")) * rng.choice((99, 101, 5000) if big else (1, 2))
                + random_expression(rng, depth + 1))
    if roll < 0.8:
        n = rng.choice((99, 199, 201, 5000) if big else (1, 2))
        return "(" * n + random_expression(rng, depth + 1) + ")" * n
    if roll < 0.9:
        values = ", ".join(str(rng.choice((rng.randrange(-5, 20000), 1e300, 1.5, 2**70)))
                           for _ in range(rng.choice((1, 3, 5000) if big else (1, 3))))
        return f"{rng.choice(_NAMES)} in ({values})"
    return mutate(rng, random_expression(rng, depth + 1).encode()).decode("utf-8", "replace")


# -- targets -------------------------------------------------------------------------------


def codec_case(rng: random.Random, c: Corpus) -> str:
    """decode_apdu/decode_asdu on a mutated or random APDU raise only DecodeError; what
    decodes re-encodes."""
    data = mutate(rng, rng.choice(c.apdus)) if rng.random() < 0.9 else rng.randbytes(
        rng.randrange(0, 40))
    try:
        apdu = decode_apdu(data)
    except DecodeError:
        apdu = None
    asdu_octets = apdu.asdu if isinstance(apdu, IFrame) else data[6:]
    if apdu is not None:
        assert encode_apdu(apdu) == data
    profile = rng.choice(PROFILES)
    try:
        asdu = decode_asdu(asdu_octets, profile)
    except DecodeError:
        return "DecodeError"
    encode_asdu(asdu, profile)
    return "decoded"


def framer_case(rng: random.Random, c: Corpus) -> str:
    """A stream of APDUs, mutated APDUs and junk in random chunks: only Frame/Malformed
    events, and together they are the input (nothing lost, nothing invented)."""
    pieces = [rng.choice(c.apdus) if rng.random() < 0.6 else mutate(rng, rng.choice(c.apdus))
              if rng.random() < 0.8 else rng.randbytes(rng.randrange(1, 10))
              for _ in range(rng.randint(1, 20))]
    events, _, _ = frame_in_chunks(rng, b"".join(pieces))
    return "malformed octets" if any(type(e) is Malformed for e in events) else "frames only"


def frame_in_chunks(rng: random.Random,
                    data: bytes) -> tuple[list[Frame | Malformed], Framer, int]:
    """Feed ``data`` to a new Framer in random chunks of 1-64 octets: the events (checked to
    be the input, octet for octet, up to what is pending), the framer and the chunk count."""
    framer = Framer()
    events: list[Frame | Malformed] = []
    pos = chunks = 0
    while pos < len(data):
        size = rng.randint(1, 64)
        framer.feed(data[pos:pos + size])
        pos += size
        chunks += 1
        events += framer
    assert b"".join(event.raw for event in events) == data[:framer.offset]
    assert framer.pending == len(data) - framer.offset
    return events, framer, chunks


def dissect_case(rng: random.Random, c: Corpus) -> str:
    """A damaged capture through reader, TCP, reassembly and records: either CaptureError
    when opening, or batches of the schema (damage part-way is a warning, not an error)."""
    data = mutate_capture(rng, rng.choice(c.captures))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any other warning would reach the user's stderr
        warnings.simplefilter("ignore", CaptureWarning)
        try:
            reader = CaptureReader(io.BytesIO(data), name="fuzz")
        except CaptureError:
            return "CaptureError"
        reassembler = Reassembler(rng.choice((None, (), (2404, 2405))),
                                  heuristic=rng.random() < 0.8)
        decoder = StreamDecoder(profile=rng.choice(PROFILES) if rng.random() < 0.2 else None)
        for seg in tcp_segments(reader):
            for event in reassembler.feed(seg):
                decoder.handle(event)
        for event in reassembler.close():
            decoder.handle(event)
        decoder.close()
        batch = decoder.builder.take_batch()
    assert batch.schema.equals(SCHEMA)
    if reader.problem:
        return "damaged part-way"
    return "time out of range" if reader.bad_times else "whole"


def ipfrag_case(rng: random.Random, c: Corpus) -> str:
    """A TCP segment of corpus APDUs in an IPv4 or IPv6 datagram, cut into fragments with
    random sizes, overlaps, duplicates, losses, order, MF flags and damaged octets, through
    the Defragmenter: a completed datagram is a TcpSegment, nothing raises."""
    payload = b"".join(rng.choice(c.apdus) for _ in range(rng.randint(0, 12)))
    tcp = struct.pack("!HHIIBBHHH", 50000, 2404, rng.getrandbits(32), 0, 0x50, 0x18, 8192, 0, 0)
    body = tcp + payload
    v6 = rng.random() < 0.4
    ident = rng.getrandbits(32 if v6 else 16)
    pieces = []
    at = 0
    while at < len(body):
        size = rng.choice((8, 16, 24, 64, 256, len(body)))
        start = max(0, at - 8 * rng.randint(0, 2)) if rng.random() < 0.2 else at  # overlaps
        pieces.append((start, body[start:start + size]))
        at = start + size
    packets = []
    for i, (offset, data) in enumerate(pieces):
        more = i < len(pieces) - 1
        if rng.random() < 0.05:
            more = not more
        if v6:
            head = struct.pack("!IHBB16s16s", 0x60000000, 8 + len(data), 44, 64, b"\1" * 16,
                               b"\2" * 16) + struct.pack("!BxHI", 6, offset | more, ident)
        else:
            head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), ident,
                               (offset >> 3) | (0x2000 if more else 0), 64, 6, 0, b"\1" * 4,
                               b"\2" * 4)
        packets.append(head + data)
    packets += [rng.choice(packets) for _ in range(rng.randint(0, 2)) if packets]  # duplicates
    if rng.random() < 0.5:
        rng.shuffle(packets)
    if packets and rng.random() < 0.2:
        del packets[rng.randrange(len(packets))]
    if packets and rng.random() < 0.3:
        k = rng.randrange(len(packets))
        packets[k] = mutate(rng, packets[k])
    defrag = Defragmenter(timeout_ns=rng.choice((None, 10)), max_datagrams=rng.randint(1, 4),
                          max_bytes=rng.choice((64, 1 << 22)))
    done = 0
    for n, packet in enumerate(packets):
        seg = defrag.decode(n + 1, n, 101, packet)
        if seg is not None:
            assert isinstance(seg, TcpSegment)
            done += 1
    defrag.close()
    assert defrag.pending == 0
    return "reassembled" if done else "incomplete"


def filter_case(rng: random.Random, c: Corpus) -> str:
    """compile_filter refuses with FilterError or compiles, without a Python warning; a
    compiled filter never fails on real rows (or none)."""
    expression = random_expression(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning would reach the user's stderr
        try:
            flt = compile_filter(expression)
        except FilterError:
            return "FilterError"
        flt.apply(c.batch)
        flt.apply(c.batch.slice(0, 0))
    assert pushdown_is_superset(flt, c.batch), expression
    return "compiled"


def pushdown_is_superset(flt: Filter, batch: pa.RecordBatch) -> bool:
    """Whether the filter's pushdown predicate holds for every row its mask matches (it
    may hold for more: it only decides which row groups are read)."""
    import pyarrow.compute as pc

    table = pa.Table.from_batches([batch]).append_column(
        "_row", pa.array(range(batch.num_rows), pa.int64()))
    matched = pc.filter(table.column("_row"), flt.mask(batch))
    kept = table.filter(flt.pushdown()).column("_row")
    return bool(pc.all(pc.is_in(matched, value_set=kept.combine_chunks())).as_py()
                if len(matched) else True)


def cli_case(rng: random.Random, c: Corpus) -> str:
    """The command line on a damaged capture: exit 0, 1 or 2 and messages, never an
    exception (each command in this process, as ``iec104.cli.main``)."""
    from iec104.cli import main

    data = mutate_capture(rng, rng.choice(c.captures))
    with tempfile.TemporaryDirectory(prefix="iec104-fuzz-") as tmp:
        path = Path(tmp) / "damaged.pcap"
        path.write_bytes(data)
        command = rng.choice((["read", str(path)], ["read", "-V", str(path)],
                              ["convert", str(path), "-o", f"{tmp}/out.parquet", "-q"],
                              ["summary", str(path)]))
        if rng.random() < 0.3:
            command += ["--filter", random_expression(rng)]
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(command)
        assert code in (0, 1, 2), (code, err.getvalue())
        assert all(line.startswith(("iec104: ", "  ", "(see")) for line in
                   err.getvalue().splitlines()), err.getvalue()
    return f"exit {code}"


TARGETS: dict[str, Callable[[random.Random, Corpus], str]] = {
    "codec": codec_case, "framer": framer_case, "dissect": dissect_case,
    "ipfrag": ipfrag_case, "filter": filter_case, "cli": cli_case,
}


# -- running ---------------------------------------------------------------------------------


@dataclass
class Result:
    """What a run found: cases per target, what the documented outcomes were (per target
    and outcome, e.g. ``("dissect", "CaptureError")``) and the crashes (target, seed,
    index, error)."""

    cases: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    crashes: list[tuple[str, int, int, str]] = field(default_factory=list)


def case_rng(target: str, seed: int, index: int) -> random.Random:
    return random.Random(f"{target}:{seed}:{index}")


def run(target: str, seed: int, cases: int, result: Result | None = None,
        c: Corpus | None = None, start: int = 0) -> Result:
    """Run cases ``start .. start + cases - 1`` of ``target``; crashes are recorded, not
    raised (KeyboardInterrupt and MemoryError still stop the run)."""
    result = result if result is not None else Result()
    c = c if c is not None else corpus()
    case = TARGETS[target]
    for index in range(start, start + cases):
        try:
            outcome = case(case_rng(target, seed, index), c)
        except (KeyboardInterrupt, MemoryError):
            raise
        except BaseException as exc:  # noqa: BLE001 - anything else is what we look for
            result.crashes.append((target, seed, index, f"{type(exc).__name__}: {exc}"[:500]))
            outcome = "CRASH"
        result.cases[target] += 1
        result.outcomes[target, outcome] += 1
    return result


def replay(target: str, seed: int, index: int) -> str:
    """Run one case again, raising its exception (for a debugger or a traceback)."""
    return TARGETS[target](case_rng(target, seed, index), corpus())
