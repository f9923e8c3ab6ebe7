"""The columnar decode stage gives the scalar path's batches, cell for cell.

Both builders (:class:`~iec104.records.builder.RecordBuilder`, the scalar oracle, and
:class:`~iec104.records.columnar.ColumnarBuilder`) are fed the same calls -- from the
bundled and public captures, from fuzzed captures, and from seeded random APDUs of every
laid-out type under every profile, mixed with the rows only the scalar path makes (malformed
octets, gaps, events, unknown types, length errors, bad time tags) -- and the batches they hand
out must be equal, batch boundaries included (so Parquet files are byte-identical).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from iec104.codec import (
    Frame,
    IFrame,
    Malformed,
    Profile,
    SFrame,
    UFrame,
    UFunction,
    decode_apdu,
    encode_apdu,
)
from iec104.codec.elements import ELEMENTS
from iec104.codec.header import COUNT_MASK
from iec104.capture.reader import CaptureReader
from iec104.records.columnar import ColumnarBuilder
from iec104.capture.errors import CaptureError
from iec104.capture.packet import decode_tcp
from iec104.capture.reassembly import Reassembler
from iec104.records.builder import Endpoints, RecordBuilder
from iec104.dissector import StreamDecoder
from iec104.records.profiles import DetectingBuilder
from tests.conftest import REPO_ROOT, public_capture, public_capture_names
from tests.support import fuzz

OWN = sorted((REPO_ROOT / "captures").glob("*.pcap*"))
assert OWN, "the bundled captures (captures/*.pcap*) are missing"
PROFILES = [Profile(c, a, i) for c in (1, 2) for a in (1, 2) for i in (1, 2, 3)]
LAID_OUT = sorted(t for t, c in ELEMENTS.items() if c.layout is not None)
SCALAR_ONLY = sorted(t for t, c in ELEMENTS.items() if c.layout is None)


def assert_same_batches(expected: list[pa.RecordBatch], got: list[pa.RecordBatch]) -> None:
    assert [b.num_rows for b in got] == [b.num_rows for b in expected]
    for x, y in zip(expected, got, strict=True):
        assert y.schema == x.schema
        for name in x.schema.names:
            cx, cy = x.column(name), y.column(name)
            if name == "value":  # NaN != NaN: compare the bits (and the nulls)
                assert cx.is_null().equals(cy.is_null())
                bits = [np.asarray(c.fill_null(0.0)).view(np.int64) for c in (cx, cy)]
                assert np.array_equal(*bits), name
            else:
                assert cx.equals(cy), (name, _first_difference(cx, cy))


def _first_difference(x: pa.Array, y: pa.Array) -> object:
    for i, (a, b) in enumerate(zip(x.to_pylist(), y.to_pylist(), strict=True)):
        if a != b:
            return i, a, b
    return None


def dissect_with(data: Path | bytes, make: Callable[[], object],
                 batch_rows: int) -> list[pa.RecordBatch]:
    """The capture through reassembly and the given builder, as dissect() runs it."""
    import io

    decoder = StreamDecoder(make())  # type: ignore[arg-type]
    builder = decoder.builder
    r = Reassembler(None, heuristic=True)
    batches = []
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with CaptureReader(source) as reader:
        for pkt in reader:
            seg = decode_tcp(pkt.frame, pkt.time_ns, pkt.linktype, pkt.data)
            if seg is None:
                continue
            for ev in r.feed(seg):
                decoder.handle(ev)
            if builder.rows >= batch_rows:
                batches.append(builder.take_batch())
    for ev in r.close():
        decoder.handle(ev)
    decoder.close()
    batches.append(builder.take_batch())
    return batches


def both(data: Path | bytes, batch_rows: int, detect: bool = True) -> None:
    """Both builders give the same batches, each behind per-direction profile detection (as
    the dissector runs them by default) or alone (one given profile)."""
    if detect:
        assert_same_batches(dissect_with(data, lambda: DetectingBuilder(RecordBuilder()),
                                         batch_rows),
                            dissect_with(data, lambda: DetectingBuilder(ColumnarBuilder()),
                                         batch_rows))
    else:
        assert_same_batches(dissect_with(data, RecordBuilder, batch_rows),
                            dissect_with(data, ColumnarBuilder, batch_rows))


@pytest.mark.parametrize("detect", [True, False], ids=["detected", "given"])
@pytest.mark.parametrize("batch_rows", [7, 65536])
@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_bundled_captures(path: Path, batch_rows: int, detect: bool) -> None:
    both(path, batch_rows, detect)


@pytest.mark.parametrize("batch_rows", [5, 65536])
@pytest.mark.parametrize("name", public_capture_names())
def test_public_captures(name: str, batch_rows: int) -> None:
    both(public_capture(name), batch_rows)


@pytest.mark.filterwarnings("ignore::iec104.capture.errors.CaptureWarning")
@pytest.mark.parametrize("seed", range(60))
def test_fuzzed_captures(seed: int) -> None:
    """Damaged captures (octets, records, TCP payloads) give the same rows both ways."""
    corpus = fuzz.corpus(public=False)
    rng = random.Random(f"columnar:{seed}")
    data = fuzz.mutate_capture(rng, rng.choice(corpus.captures))
    try:
        expected = dissect_with(data, RecordBuilder, 11)
    except CaptureError:
        return  # not a capture any more: nothing to compare
    assert_same_batches(expected, dissect_with(data, ColumnarBuilder, 11))


# -- random APDUs of every type, under every profile ----------------------------------------


def _random_asdu(rng: random.Random, profile: Profile, type_id: int) -> bytes:
    """An ASDU of ``type_id``: valid length (mostly), random element octets."""
    cot, ca, ioa = profile
    size = ELEMENTS[type_id].size if type_id in ELEMENTS else rng.randrange(1, 8)
    size = size if size is not None else rng.randrange(4, 10)
    sq = rng.random() < 0.3
    count = rng.choice([0, 1, 1, 2, 3, rng.randrange(1, 128)])
    max_objects = (248 - 2 - cot - ca - ioa) // max(1, size + (0 if sq else ioa))
    count = min(count, max(max_objects, 0))
    header = bytes([type_id, count | (0x80 if sq else 0)]) + rng.randbytes(cot + ca)
    if sq and count:
        first = rng.choice([0, rng.randrange(1 << 8 * ioa), (1 << 8 * ioa) - count,
                            (1 << 8 * ioa) - 1])
        body = first.to_bytes(ioa, "little") + b"".join(_element(rng, type_id, size)
                                                       for _ in range(count))
    else:
        body = b"".join(rng.randbytes(ioa) + _element(rng, type_id, size)
                        for _ in range(count))
    if rng.random() < 0.05:  # a length error: octets missing or left over
        body = body[:-1] if body and rng.random() < 0.5 else body + b"\x00"
    return header + body


def _element(rng: random.Random, type_id: int, size: int) -> bytes:
    element = bytearray(rng.randbytes(size))
    codec = ELEMENTS.get(type_id)
    if codec is not None and codec.time_size == 7 and rng.random() < 0.8:
        # a plausible CP56 tag mostly (random octets are rarely a calendar date)
        t = size - 7
        ms = rng.randrange(60000) if rng.random() < 0.95 else rng.randrange(60000, 65536)
        element[t:t + 7] = bytes([
            ms & 0xFF, ms >> 8, rng.randrange(60) | rng.choice([0, 0x80, 0x40]),
            rng.randrange(24) | rng.choice([0, 0x80]), rng.randrange(1, 29) | rng.randrange(8) << 5,
            rng.randrange(1, 13), rng.choice([rng.randrange(100), rng.randrange(128)])])
    return bytes(element)


def _calls(rng: random.Random, profile: Profile, n: int) -> list[tuple]:
    """Builder calls: (method, args) over a few connections."""
    eps = [Endpoints(i, d, "10.0.0.1", 2404, "10.0.0.2", 40000 + i)
           for i in range(3) for d in ("c2s", "s2c")]
    calls: list[tuple] = []
    time_ns: int | None = 1_700_000_000 * 10**9
    for _ in range(n):
        time_ns = None if rng.random() < 0.03 else (time_ns or 10**18) + rng.randrange(10**9)
        frame = None if rng.random() < 0.02 else rng.randrange(1, 10**6)
        ep = rng.choice(eps)
        r = rng.random()
        if r < 0.08:
            apdu: object = SFrame(rng.randrange(32768))
        elif r < 0.14:
            apdu = UFrame(rng.choice(list(UFunction)))
        elif r < 0.17:
            calls.append(("add_malformed", time_ns, frame, ep,
                          Malformed(rng.randrange(1000), rng.randbytes(rng.randrange(1, 9)),
                                    "bad")))
            continue
        elif r < 0.19:
            calls.append(("add_gap", time_ns, frame, ep, rng.randrange(1, 1000), "detail"))
            continue
        elif r < 0.20:
            calls.append(("add_event", time_ns, frame, ep, "proxy: event", b"\x68"))
            continue
        else:
            t = rng.choice(LAID_OUT * 4 + SCALAR_ONLY + [rng.randrange(256)])
            apdu = IFrame(rng.randrange(32768), rng.randrange(32768),
                          _random_asdu(rng, profile, t))
        raw = encode_apdu(apdu)  # type: ignore[arg-type]
        event = Frame(0, raw, decode_apdu(raw))
        r = rng.random()
        if r < 0.6:
            calls.append(("add_frame", time_ns, frame, ep, event))
        else:  # a profile given or detected per direction (another one: the scalar path)
            given = profile if r < 0.9 else rng.choice(PROFILES)
            calls.append(("add_frame", time_ns, frame, ep, event, given,
                          rng.choice([None, 0.0, 0.5, 1.0, rng.random()])))
    return calls


def _replay(builder: object, calls: list[tuple], batch_rows: int) -> list[pa.RecordBatch]:
    batches = []
    for method, *args in calls:
        getattr(builder, method)(*args)
        if builder.rows >= batch_rows:  # type: ignore[attr-defined]
            batches.append(builder.take_batch())  # type: ignore[attr-defined]
    batches.append(builder.take_batch())  # type: ignore[attr-defined]
    return batches


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"cot{p[0]}ca{p[1]}ioa{p[2]}")
@pytest.mark.parametrize("seed", range(3))
def test_random_apdus(profile: Profile, seed: int) -> None:
    rng = random.Random(f"columnar:{profile}:{seed}")
    calls = _calls(rng, profile, 800)
    batch_rows = (3, 200, 65536)[seed]
    expected = _replay(RecordBuilder(profile, 10), calls, batch_rows)
    columnar = ColumnarBuilder(profile, 10)
    assert_same_batches(expected, _replay(columnar, calls, batch_rows))
    assert columnar.next_apdu == 10 + sum(1 for c in calls
                                          if c[0] in ("add_frame", "add_malformed"))


@pytest.mark.parametrize("batch_rows", [3, 65536])
def test_one_row_per_apdu(batch_rows: int) -> None:
    """Batches whose APDUs have one row each (S- and U-frames, I-frames of at most one
    object: the columns are not repeated per row) and batches mixing them with the scalar
    path's rows."""
    rng = random.Random("columnar:one-row")
    calls = [c for c in _calls(rng, Profile(), 600)
             if c[0] != "add_frame" or not isinstance(c[4].apdu, IFrame)
             or c[4].apdu.asdu[1] & COUNT_MASK <= 1]
    assert sum(1 for c in calls if c[0] == "add_frame") > 300
    for part in (calls, [c for c in calls if c[0] == "add_frame"]):
        expected = _replay(RecordBuilder(), part, batch_rows)
        assert sum(b.num_rows for b in expected) == len(part)  # one row per call
        assert_same_batches(expected, _replay(ColumnarBuilder(), part, batch_rows))


@pytest.mark.parametrize("seed", range(3))
def test_a_profile_per_direction(seed: int) -> None:
    """I-frames of several profiles and confidences in one batch (what DetectingBuilder
    passes): each decoded with its own, ``profile``/``profile_confidence`` as the scalar
    path fills them."""
    rng = random.Random(f"columnar:per-direction:{seed}")
    given = [(PROFILES[i], rng.choice([None, 0.0, 0.5, rng.random()]))
             for i in rng.sample(range(len(PROFILES)), 4)]
    streams = []
    for n, (profile, confidence) in enumerate(given):
        calls = _calls(rng, profile, 300)
        ep = Endpoints(n, "c2s" if n % 2 else "s2c", "10.0.0.1", 50000 + n, "10.0.0.2", 2404)
        streams.append([(c[0], c[1], c[2], ep, c[4], profile, confidence)
                        if c[0] == "add_frame" else (c[0], c[1], c[2], ep, *c[4:])
                        for c in calls])
    calls = []
    while any(streams):  # interleaved, each stream in its order
        stream = rng.choice([s for s in streams if s])
        calls.append(stream.pop(0))
    batch_rows = (5, 300, 65536)[seed]
    expected = _replay(RecordBuilder(), calls, batch_rows)
    assert_same_batches(expected, _replay(ColumnarBuilder(), calls, batch_rows))
    texts = {t for b in expected for t in b.column("profile").to_pylist()}
    assert texts == {"/".join(map(str, p)) for p, _c in given} | {None}


def test_counts_match() -> None:
    """``rows``, ``errors`` and ``gaps`` as the scalar builder counts them."""
    rng = random.Random("counts")
    calls = _calls(rng, Profile(), 400)
    scalar, columnar = RecordBuilder(), ColumnarBuilder()
    for method, *args in calls:
        getattr(scalar, method)(*args)
        getattr(columnar, method)(*args)
        assert (columnar.rows, columnar.errors, columnar.gaps) == \
            (scalar.rows, scalar.errors, scalar.gaps)


def test_number_texts_are_repr() -> None:
    """Float, normalized and scaled value texts are ``repr()`` of the number, also where
    Arrow's own formatting differs (integral, tiny, huge, non-finite numbers)."""
    from iec104.records.columnar import _number_texts

    def texts(numbers: np.ndarray, scaled: bool) -> list[str]:
        pieces, where = _number_texts(numbers, scaled)
        return pa.concat_arrays(pieces).take(pa.array(where)).to_pylist()

    # (Arrow's cast writes an exponent from 1e10 up: the numbers about it take repr())
    special = [0.0, -0.0, 1.0, -3.0, 100.0, 1e-5, -1.5e-7, 9.999e-5, 1e-4, 1e15 + 0.5, 1e16,
               1.7e17, 2.0**70, float("nan"), float("inf"), float("-inf"), 5e-324, 1.5,
               0.1, 123456789012345.6, -32768 / 32768, 3.4028234663852886e38,
               9999999999.5, -9999999999.999998, 1e10 + 0.5, 1.5e10, 0.00012345]
    rng = np.random.default_rng(104)
    with np.errstate(invalid="ignore"):  # signalling NaNs among the random bits
        floats = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32) \
            .view(np.float32).astype(np.float64)
    magnitudes = 10.0 ** rng.uniform(-6, 18, 20000) * rng.choice([-1, 1], 20000)
    numbers = np.concatenate([np.array(special), floats, magnitudes])
    assert texts(numbers, False) == [repr(x) for x in numbers.tolist()]
    assert texts(np.array([0.5, 2.25]), False) == ["0.5", "2.25"]  # all cast: one piece
    scaled = np.arange(-32768, 32768, 7, dtype=np.float64)
    assert texts(scaled, True) == [repr(int(x)) for x in scaled.tolist()]
