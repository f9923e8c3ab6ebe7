"""Stream framer: whole input, byte by byte, with trailing data, garbage and bad frames.

Every test feeds the same octets several ways (h11 ``tests/test_io.py`` style) and checks
that the APDUs found do not depend on how the stream was cut. ``Malformed`` events may be
cut differently (the framer reports what it has buffered), so they are compared as the
union of the octet ranges they cover.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iec104.codec import (
    NEED_DATA,
    Frame,
    Framer,
    IFrame,
    Malformed,
    SFrame,
    UFrame,
    UFunction,
    decode_apdu,
    encode_apdu,
)
from iec104.codec.framer import Run
from tests.codec.test_codec_apci import apdus
from tests.codec.test_codec_asdu import CODEC_SETTINGS

# One TCP segment of the Wireshark wiki capture (frame 12, server -> client): three
# I-frames in one segment (C_IC_NA_1 ActCon, M_SP_NA_1 and M_DP_NA_1 interrogation replies).
WIKI_FRAME_12 = bytes.fromhex(
    "680e02000200640107000a0000000014"
    "681a04000200010414000a0001000000020000000300000004000000"
    "681a06000200030414000a0001000000020000000300000004000000")
# Frame 25: ActCon, ActTerm and a spontaneous M_SP_TB_1 with CP56Time2a.
WIKI_FRAME_25 = bytes.fromhex(
    "680e480008002d0107000a000d000001"
    "680e4a0008002d010a000a000d000001"
    "68154c0008001e0103000a000d000001c75d170884070d")
S_FRAME = bytes.fromhex("680401001a00")
TESTFR_ACT = bytes.fromhex("680443000000")


def run(chunks: Iterable[bytes], framer: Framer | None = None) -> list[Frame | Malformed]:
    """Feed the chunks one by one, collecting events after each."""
    framer = framer or Framer()
    out: list[Frame | Malformed] = []
    for chunk in chunks:
        framer.feed(chunk)
        out.extend(framer)
    return out


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def random_cuts(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, pos = [], 0
    while pos < len(data):
        size = rng.randint(1, 20)
        out.append(data[pos:pos + size])
        pos += size
    return out


def normalize(events: Sequence[Frame | Malformed]) -> list[tuple]:
    """Frames as they are; adjacent Malformed merged into one (offset, octets) range."""
    out: list[tuple] = []
    for ev in events:
        if isinstance(ev, Malformed):
            if out and out[-1][0] == "malformed" and out[-1][1] + len(out[-1][2]) == ev.offset:
                out[-1] = ("malformed", out[-1][1], out[-1][2] + ev.raw)
                continue
            out.append(("malformed", ev.offset, ev.raw))
        else:
            out.append(("frame", ev.offset, ev.raw, ev.apdu))
    return out


def check_invariants(data: bytes, events: Sequence[Frame | Malformed], framer: Framer) -> None:
    """Events tile the consumed input with no gap; frames decode to what they say."""
    pos = 0
    for ev in events:
        assert ev.offset == pos
        assert ev.raw == data[pos:pos + len(ev.raw)] and ev.raw
        if isinstance(ev, Frame):
            assert decode_apdu(ev.raw) == ev.apdu
            assert encode_apdu(ev.apdu) == ev.raw
        else:
            assert ev.reason
        pos += len(ev.raw)
    assert framer.offset == pos
    assert framer.pending == len(data) - pos


def all_ways(data: bytes) -> list[tuple]:
    """Events for the whole input, byte by byte and random cuts: must all agree."""
    framer = Framer()
    whole = run([data], framer)
    check_invariants(data, whole, framer)
    expected = normalize(whole)
    for chunks in (byte_by_byte(data), random_cuts(data, 1), random_cuts(data, 2)):
        framer = Framer()
        events = run(chunks, framer)
        check_invariants(data, events, framer)
        assert normalize(events) == expected
    return expected


def frames(data: bytes) -> list[bytes]:
    return [e[2] for e in all_ways(data) if e[0] == "frame"]


# -- valid streams ------------------------------------------------------------------------

def test_real_segments_whole_bytewise_and_trailing() -> None:
    stream = WIKI_FRAME_12 + S_FRAME + WIKI_FRAME_25
    events = all_ways(stream)
    assert [e[0] for e in events] == ["frame"] * 7
    assert [e[1] for e in events] == [0, 16, 44, 72, 78, 94, 110]
    assert events[3][3] == SFrame(13)
    assert events[1][3] == IFrame(2, 1, WIKI_FRAME_12[22:44])
    # trailing data: an incomplete APDU stays buffered until the rest arrives
    for cut in range(1, len(TESTFR_ACT)):
        framer = Framer()
        framer.feed(stream + TESTFR_ACT[:cut])
        assert normalize(list(framer)) == events
        assert framer.next_event() is NEED_DATA
        assert framer.pending == cut and framer.offset == len(stream)
        framer.feed(TESTFR_ACT[cut:])
        assert list(framer) == [Frame(len(stream), TESTFR_ACT, UFrame(UFunction.TESTFR_ACT))]
        assert framer.next_event() is NEED_DATA and framer.pending == 0


def test_empty_and_partial_input() -> None:
    framer = Framer()
    assert framer.next_event() is NEED_DATA
    framer.feed(b"")
    assert framer.next_event() is NEED_DATA
    framer.feed(b"\x68")
    assert framer.next_event() is NEED_DATA
    framer.feed(b"\x0e" + WIKI_FRAME_12[2:15])
    assert framer.next_event() is NEED_DATA and framer.pending == 15
    framer.feed(WIKI_FRAME_12[15:16])
    event = framer.next_event()
    assert isinstance(event, Frame) and event.raw == WIKI_FRAME_12[:16]


@settings(CODEC_SETTINGS, max_examples=60)
@given(st.lists(apdus, max_size=12))
def test_any_sequence_of_apdus_is_split_back(apdu_list: list) -> None:
    data = b"".join(encode_apdu(a) for a in apdu_list)
    events = all_ways(data)
    assert [e[3] for e in events] == apdu_list


# -- garbage, bad lengths, bad control fields -----------------------------------------------

# Garbage the framer must skip without losing the APDU after it: no 0x68, or 0x68 followed
# by an implausible length octet (0..3 or 254, 255).
garbage = st.lists(st.one_of(st.integers(0, 255).filter(lambda b: b != 0x68).map(lambda b: bytes((b,))),
                             st.sampled_from([b"\x68\x00", b"\x68\x02", b"\x68\x03", b"\x68\xfe",
                                              b"\x68\xff"])),
                   min_size=1, max_size=8).map(b"".join)


@settings(CODEC_SETTINGS, max_examples=80)
@given(st.lists(st.tuples(st.one_of(st.none(), garbage), apdus), min_size=1, max_size=8),
       st.one_of(st.none(), garbage))
def test_garbage_before_and_between_apdus(items: list, tail: bytes | None) -> None:
    data = b""
    expected: list[tuple] = []
    for junk, apdu in items:
        if junk is not None:
            expected.append(("malformed", len(data), junk))
            data += junk
        raw = encode_apdu(apdu)
        expected.append(("frame", len(data), raw, apdu))
        data += raw
    if tail is not None and tail[-1] != 0x68:
        expected.append(("malformed", len(data), tail))
        data += tail
    assert all_ways(data) == expected


BAD_FRAMES = [
    # (octets, what the framer does with them)
    ("68020100", "skipped: length 2 < 4"),
    ("6803010000", "skipped: length 3 < 4"),
    ("68fe0100000000", "skipped: length 254 > 253"),
    ("68ff01", "skipped: length 255 > 253"),
    ("680401010000", "S-frame with octet 2 != 0"),
    ("680405000000", "S-frame with bits 2-7 of octet 1 set"),
    ("680401000100", "S-frame N(R) with bit 0 set"),
    ("68040f000000", "U-frame with three functions"),
    ("680403000000", "U-frame with no function"),
    ("680407000001", "U-frame with octet 4 != 0"),
    ("680400000000", "I-frame without ASDU"),
    ("680500000100ff", "I-frame N(R) with bit 0 set"),
    ("680501000000ff", "S-frame with length 5"),
    ("680607000000ffff", "U-frame with length 6"),
    ("aa55", "no start octet"),
    ("00000000000000000000", "zeros"),
]


@pytest.mark.parametrize("bad, why", BAD_FRAMES, ids=[b[1] for b in BAD_FRAMES])
def test_bad_apdu_is_malformed_and_the_next_one_is_found(bad: str, why: str) -> None:
    raw = bytes.fromhex(bad)
    for before in (b"", TESTFR_ACT):
        data = before + raw + WIKI_FRAME_12 + S_FRAME
        events = all_ways(data)
        kinds = [e[0] for e in events]
        assert kinds == ["frame"] * bool(before) + ["malformed", "frame", "frame", "frame",
                                                    "frame"], why
        assert events[len(before) // 6][1:] == (len(before), raw)
        assert events[-1][3] == SFrame(13)


def test_malformed_reasons() -> None:
    framer = Framer()
    framer.feed(bytes.fromhex("aa68ff") + bytes.fromhex("680401010000") + S_FRAME
                + bytes.fromhex("680403000000"))
    events = list(framer)
    assert isinstance(events[0], Malformed) and events[0].raw == bytes.fromhex("aa68ff")
    assert "start octet 0xaa" in events[0].reason and "skipped 3 octets" in events[0].reason
    assert isinstance(events[1], Malformed) and "S-frame" in events[1].reason
    assert isinstance(events[2], Frame) and events[2].apdu == SFrame(13)
    assert isinstance(events[3], Malformed) and "function" in events[3].reason
    framer = Framer()
    framer.feed(bytes.fromhex("68ff") + S_FRAME)
    first = framer.next_event()
    assert isinstance(first, Malformed) and "length 255" in first.reason


def test_length_is_trusted_when_plausible() -> None:
    """A plausible length with a bad control field: exactly that many octets are skipped.

    This is the documented trade-off (framer docstring): with an over-long length such
    as an S-frame claiming 5 octets, the octet after it belongs to the bad frame, so
    an APDU starting right there is lost and the framer resynchronises after it.
    """
    bad = bytes.fromhex("680501000000")  # S-frame claiming 5 octets, 6 on the wire
    framer = Framer()
    framer.feed(bad + TESTFR_ACT + S_FRAME)
    events = list(framer)
    assert events[0] == Malformed(0, bad + TESTFR_ACT[:1], "S-frame with length 5")
    assert isinstance(events[1], Malformed) and events[1].raw == TESTFR_ACT[1:]
    assert events[2] == Frame(12, S_FRAME, SFrame(13))
    assert all_ways(bad + TESTFR_ACT + S_FRAME) == [("malformed", 0, bad + TESTFR_ACT),
                                                   ("frame", 12, S_FRAME, SFrame(13))]


# -- long streams, reset -----------------------------------------------------------------

def test_long_stream_offsets_survive_buffer_compaction() -> None:
    rng = random.Random(104)
    pieces = []
    for i in range(3000):
        kind = rng.random()
        if kind < 0.6:
            pieces.append(encode_apdu(SFrame(i % 32768)))
        elif kind < 0.9:
            pieces.append(encode_apdu(IFrame(i % 32768, 7, rng.randbytes(rng.randint(1, 249)))))
        else:
            pieces.append(b"\x00" * rng.randint(1, 9))
    data = b"".join(pieces)
    framer = Framer()
    events = run(random_cuts(data, 3), framer)
    check_invariants(data, events, framer)
    assert len([e for e in events if isinstance(e, Frame)]) == sum(
        1 for p in pieces if p[0] == 0x68)


def test_reset() -> None:
    framer = Framer()
    framer.feed(S_FRAME + TESTFR_ACT[:3])
    assert [e.apdu for e in framer] == [SFrame(13)]  # type: ignore[union-attr]
    assert framer.reset() == TESTFR_ACT[:3]
    assert framer.offset == 9 and framer.pending == 0
    framer.feed(TESTFR_ACT)
    assert list(framer) == [Frame(9, TESTFR_ACT, UFrame(UFunction.TESTFR_ACT))]
    framer.reset(offset=1000)
    framer.feed(S_FRAME)
    assert list(framer) == [Frame(1000, S_FRAME, SFrame(13))]


@settings(CODEC_SETTINGS)
@given(st.lists(st.one_of(st.binary(max_size=12), apdus.map(encode_apdu)), max_size=12))
def test_checking_framer_finds_what_the_decoding_one_finds(chunks: list[bytes]) -> None:
    """``Framer(decode=False)`` (the columnar dissector's) checks each APDU as
    ``decode_apdu`` would and reports the same events, without the decoded APDU."""
    stream = b"".join(chunks)
    decoding, checking = Framer(), Framer(decode=False)
    decoding.feed(stream)
    checking.feed(stream)
    expected = list(decoding)
    got = list(checking)
    assert [e._replace(apdu=None) if type(e) is Frame else e for e in expected] == got


# -- scan: many chunks at once -------------------------------------------------------------


def _fed_one_by_one(chunks: Sequence[bytes]) -> tuple[list[tuple], int, int]:
    """(chunk index, octets or Malformed) of every event, feeding chunk by chunk."""
    framer = Framer(decode=False)
    out: list[tuple] = []
    for c, chunk in enumerate(chunks):
        framer.feed(chunk)
        out += [(c, e.raw if type(e) is Frame else e) for e in framer]
    return out, framer.offset, framer.pending


def _scanned(chunks: Sequence[bytes], groups: Sequence[int],
             runs: bool = False) -> tuple[list[tuple], int, int]:
    """The same through :meth:`Framer.scan`, ``groups[i]`` chunks per call (``runs``: with
    runs reported as :class:`Run` items, expanded here by the rule their docstring states,
    and the octets of the events checked to be ``Scan.octets``)."""
    framer = Framer(decode=False)
    out: list[tuple] = []
    first = 0
    for size in groups:
        part = chunks[first:first + size]
        ends, total = [], 0
        for chunk in part:
            total += len(chunk)
            ends.append(total)
        offset = framer.offset
        scan = framer.scan(b"".join(part), ends, runs=runs)
        assert scan.offset == offset
        assert scan.malformed == sum(type(e) is Malformed for e in scan.events)
        events: list[tuple] = []
        at = 0  # in scan.octets
        for c, e in zip(scan.chunks, scan.events, strict=True):
            if type(e) is Run:
                assert list(e.stops) and c == bisect_left(ends, e.stops[-1] - scan.base)
                for stop in e.stops:
                    events.append((bisect_left(ends, stop - scan.base),
                                   scan.octets[at:stop - scan.origin]))
                    at = stop - scan.origin
            else:
                events.append((c, e))
                at += len(e.raw if type(e) is Malformed else e)
        assert at == len(scan.octets) if runs else scan.octets == b""
        out += [(first + c, e) for c, e in events]
        first += size
    return out, framer.offset, framer.pending


def _stream(rng: random.Random) -> bytes:
    """Valid APDUs of every kind with garbage, cut-off and damaged APDUs between them."""
    good = [WIKI_FRAME_12, WIKI_FRAME_25, encode_apdu(SFrame(7)),
            encode_apdu(UFrame(UFunction.TESTFR_ACT))]
    parts = []
    for _ in range(rng.randint(0, 12)):
        part = rng.choice(good)
        r = rng.random()
        if r < 0.15:
            part = rng.randbytes(rng.randint(1, 9))  # garbage
        elif r < 0.25:
            part = part[:rng.randint(1, len(part))]  # an APDU cut short
        elif r < 0.35:
            part = bytes([0x68]) + rng.randbytes(rng.randint(0, 6))  # a start octet, then noise
        elif r < 0.45:
            damaged = bytearray(part)
            damaged[rng.randrange(len(damaged))] = rng.getrandbits(8)
            part = bytes(damaged)
        parts.append(part)
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(300))
def test_scan_is_feeding_chunk_by_chunk(seed: int) -> None:
    """Framer.scan gives the events, chunk attribution and leftover of feeding each chunk and
    iterating, for any cut of any stream (garbage resynchronises alike, as its extent depends
    on what was buffered), whatever number of chunks each scan takes."""
    rng = random.Random(seed)
    data = _stream(rng)
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 12)))) \
        if len(data) > 1 else []
    bounds = [0, *cuts, len(data)]
    chunks = [data[a:b] for a, b in pairwise(bounds)]
    groups = []
    left = len(chunks)
    while left:
        groups.append(rng.randint(1, left))
        left -= groups[-1]
    assert _scanned(chunks, groups) == _fed_one_by_one(chunks)
    assert _scanned(chunks, [1] * len(chunks)) == _fed_one_by_one(chunks)
    assert _scanned(chunks, groups, runs=True) == _fed_one_by_one(chunks)
    assert _scanned(chunks, [1] * len(chunks), runs=True) == _fed_one_by_one(chunks)
