"""Framing by column (records/framing.py) against the codec's scalar apdu_run: hostile
octets (property test), every control octet, and the streams of the bundled and public
captures."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iec104.capture.packet import tcp_segments
from iec104.capture.reader import CaptureReader
from iec104.capture.reassembly import Reassembler, StreamData
from iec104.codec import Framer
from iec104.codec.apci import apdu_run as scalar_run
from iec104.records.framing import apdu_ends
from tests.codec.test_codec_asdu import CODEC_SETTINGS
from tests.conftest import REPO_ROOT, public_capture, public_capture_names

# (scalar prefix, first window) pairs: the defaults, and tiny ones so that short inputs
# cross many windows and the array path frames from the first octet
SIZES = [(1024, 1 << 16), (0, 1), (0, 6), (0, 64), (6, 300), (100, 40)]

_APCIS = [b"\x68\x04\x01\x00\x02\x00", b"\x68\x04\x43\x00\x00\x00", b"\x68\x04\x07\x00\x00\x01",
          b"\x68\x04\x01\x01\x02\x00", b"\x68\x04\x03\x00\x00\x00", b"\x68\x05\x00\x00\x01\x00",
          b"\x68\x0e\x00\x00\x00\x00" + bytes(12), b"\x68\x0e\x02\x00\x04\x00" + b"\x68" * 12]
_parts = st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(_APCIS),
                   st.binary(min_size=1, max_size=5).map(lambda b: b"\x68" + b),
                   st.binary(min_size=4, max_size=30).map(
                       lambda b: bytes((0x68, len(b))) + b))


def apdu_run(data: bytes | bytearray, offset: int, end: int, **sizes: int) -> list[int]:
    """The column finder's answer as the codec's list."""
    return apdu_ends(data, offset, end, **sizes).tolist()  # type: ignore[no-any-return]


def _check(data: bytes, offset: int, end: int) -> None:
    expected = scalar_run(data, offset, end)
    for scalar, window in SIZES:
        assert apdu_run(data, offset, end, scalar=scalar, window=window) == expected
    assert apdu_run(bytearray(data), offset, end, scalar=0, window=16) == expected


@settings(CODEC_SETTINGS, max_examples=400)
@given(st.lists(_parts, max_size=40), st.integers(0, 6), st.integers(0, 10))
def test_hostile_octets(parts: list[bytes], cut: int, offset: int) -> None:
    """Valid APDUs, garbage, bad control fields, 0x68 inside ASDUs, APDUs cut at the end."""
    data = b"".join(parts)
    end = max(0, len(data) - cut)
    _check(data, min(offset, len(data)), end)


@settings(CODEC_SETTINGS, max_examples=100)
@given(st.binary(max_size=600), st.integers(0, 600))
def test_random_octets(data: bytes, end: int) -> None:
    _check(data, 0, min(end, len(data)))


def test_every_control_octet() -> None:
    """Every first control octet with the other octets and lengths that decide, in a run
    of valid APDUs (so the array path meets it in mid-run)."""
    good = b"\x68\x04\x01\x00\x02\x00" * 3
    for c1 in range(256):
        for rest in (b"\0\0\0", b"\0\1\0", b"\1\0\0", b"\0\0\1", b"\0\2\0"):
            for length in (3, 4, 5, 253, 254):
                apdu = bytes((0x68, length, c1)) + rest + bytes(max(0, length - 4))
                data = good + apdu + good
                _check(data, 0, len(data))
                _check(data, len(good), len(data))


def test_long_false_chain() -> None:
    """A valid I-frame header inside every ASDU, each a whole APDU ahead of the last: a
    chain of false candidates as long as the run, never joining it (peeling gives up, the
    codec's loop decides); from its first octet it is the run. And a 0x68 at every octet
    (every position a valid I-frame header)."""
    apdu = b"\x68\x12\x00\x00\x00\x00\x01\x02" + b"\x68\x12\x00\x00\x00\x00" + bytes(6)
    data = apdu * 300
    assert len(scalar_run(data, 0, len(data))) == 300
    for offset in (0, 8, 9):
        _check(data, offset, len(data))
        _check(data, offset, len(data) - 3)
    data = b"\x68" * 3000
    for offset in (0, 1, 107):
        _check(data, offset, len(data))


def _streams(path: Path) -> list[bytes]:
    """The octets of each direction of each TCP connection of a capture, joined."""
    octets: defaultdict[tuple[int, int], list[bytes]] = defaultdict(list)
    r = Reassembler(None, heuristic=True)
    with CaptureReader(path) as reader:
        for seg in tcp_segments(reader):
            for ev in r.feed(seg):
                if type(ev) is StreamData:
                    octets[ev.stream, ev.direction].append(ev.data)
    return [b"".join(parts) for parts in octets.values()]


CAPTURES = sorted(p.name for p in (REPO_ROOT / "captures").glob("*.pcap*"))


@pytest.mark.parametrize("name", [*CAPTURES, *public_capture_names()])
def test_capture_streams(name: str) -> None:
    """Each direction's octets, framed from every APDU start the scalar framer finds and
    from a few octets after each (mid-APDU starts), equal with both run finders; and
    Framer.scan gives the same events with either."""
    path = REPO_ROOT / "captures" / name if name in CAPTURES else public_capture(name)
    for data in _streams(path):
        starts = [0, *scalar_run(data, 0, len(data))][:200]
        for start in starts:
            for offset in (start, start + 1, start + 7):
                if offset <= len(data):
                    _check(data, offset, len(data))
        ends = list(range(97, len(data), 97)) + [len(data)] if data else []
        if ends:
            assert Framer(decode=False).scan(data, ends, apdu_run) \
                == Framer(decode=False).scan(data, ends)
