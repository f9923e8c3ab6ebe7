"""``iec104 read``'s one-line view, formatted by column (``iec104.cli.oneline``).

The format itself is checked by ``test_cli_read.py``; here, that the column-wise formatter
does not depend on how rows are cut into batches, that it prints the same bytes as the
formatter it replaced (``tests/support/oneline_v1.py``) on every capture and on random
batches, and the rules it keeps in Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from iec104.cli.oneline import batch_lines, batch_text, float32_texts, format_endpoint, format_time
from iec104.codec.values import float32_text
from iec104.dissector import dissect
from iec104.records.schema import SCHEMA, RowKind
from tests.conftest import REPO_ROOT, public_capture, public_capture_names
from tests.support import oneline_v1

OWN = sorted((REPO_ROOT / "captures").glob("*.pcap*"))
assert OWN, "the bundled captures (captures/*.pcap*) are missing"


def _lines(path: Path, rows: int, mode: str, format: Any = batch_lines) -> list[str]:
    """The lines of the capture's rows cut into batches of about ``rows`` rows, each cut at
    an APDU boundary (as the record builders hand them out)."""
    table = pa.Table.from_batches(list(dissect(path))).combine_chunks()
    apdu = table.column("apdu").to_pylist()
    lines, start = [], 0
    for end in range(1, len(apdu) + 1):
        if end == len(apdu) or (end - start >= rows and (apdu[end] is None
                                                         or apdu[end] != apdu[end - 1])):
            batch = table.slice(start, end - start).to_batches()[0]
            lines += format(batch, mode, 1_000_000_000)
            start = end
    return lines


@pytest.mark.parametrize("mode", ["a", "e"])
@pytest.mark.parametrize("name", public_capture_names())
def test_batches_do_not_change_lines(name: str, mode: str) -> None:
    path = public_capture(name)
    big = _lines(path, 10**9, mode)
    assert _lines(path, 40, mode) == big


def test_scalar_rules() -> None:
    assert format_endpoint("10.0.0.1", 2404) == "10.0.0.1:2404"
    assert format_endpoint("fe80::1", 2404) == "[fe80::1]:2404"
    assert format_endpoint(None, None) == "?"
    assert format_time(None) == "-"
    assert format_time(1_764_000_000_123_456_789) == "2025-11-24 16:00:00.123456"
    assert format_time(1_764_000_000_123_456_789, "e") == "1764000000.123456789"
    assert format_time(2_500_000_000, "r", 1_000_000_000) == "1.500000"


def test_one_line_per_apdu_of_bundled_captures() -> None:
    for path in OWN:
        lines = _lines(path, 10**9, "a")
        apdus = {a for b in dissect(path) for a in b.column("apdu").to_pylist()
                 if a is not None}
        assert len(lines) >= len(apdus) > 0


# -- the block formatter against the one it replaced -----------------------------------------

def _same_as_before(batch: pa.RecordBatch, mode: str, t0: int = 1_000_000_000) -> None:
    expected = oneline_v1.batch_lines(batch, mode, t0)
    block, count = batch_text(batch, mode, t0)
    assert count == len(expected)
    assert bytes(block) == "".join(line + "\n" for line in expected).encode()
    for limit in (1, 2, max(1, len(expected) // 2)):
        block, count = batch_text(batch, mode, t0, limit)
        assert count == min(limit, len(expected))
        assert bytes(block) == "".join(line + "\n" for line in expected[:limit]).encode()


@pytest.mark.parametrize("mode", ["a", "e", "r"])
@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_bundled_captures_print_as_before(path: Path, mode: str) -> None:
    for batch in dissect(path):
        _same_as_before(batch, mode)
    assert _lines(path, 40, mode) == _lines(path, 40, mode, oneline_v1.batch_lines)


@pytest.mark.parametrize("mode", ["a", "e", "r"])
@pytest.mark.parametrize("name", public_capture_names())
def test_public_captures_print_as_before(name: str, mode: str) -> None:
    for batch in dissect(public_capture(name)):
        _same_as_before(batch, mode)


_KINDS = [str(k) for k in RowKind]
_NOTE_KINDS = ["gap", "event", "malformed"]


def _random_batch(rng: np.random.Generator, n: int) -> pa.RecordBatch:
    """Rows of every shape the formatter may meet, nulls anywhere a column allows them:
    APDUs of 1-4 rows, rows without APDU or APCI (notes), odd names and texts, every
    float32 bit pattern and numbers that are no float32."""
    def nulls(p: float) -> np.ndarray:
        return rng.random(n) < p

    def ints(low: int, high: int, p: float, dtype: pa.DataType) -> pa.Array:
        return pa.array(rng.integers(low, high, n), dtype, mask=nulls(p))

    def bools(p: float) -> pa.Array:
        return pa.array(rng.random(n) < 0.5, pa.bool_(), mask=nulls(p))

    def choice(options: list[Any], p: float = 0.0) -> pa.Array:
        picked = [options[i] for i in rng.integers(0, len(options), n)]
        return pa.array([None if m else v for v, m in zip(picked, nulls(p), strict=True)],
                        pa.string())

    apdu = np.repeat(np.arange(n), rng.integers(1, 5, n))[:n]
    apci = choice(["I", "I", "I", "S", "U", "X"], 0.1)
    note = np.asarray(apci.is_null(), bool)
    kind = [str(rng.choice(_NOTE_KINDS)) if m else str(rng.choice(_KINDS)) for m in note]
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):  # signalling NaNs
        floats = bits.view(np.float32).astype(np.float64)
    values = np.where(nulls(0.3), rng.normal(0, 1e3, n), floats)  # also no float32
    value_text = [None if rng.random() < 0.2 else str(rng.choice(
        ["ON", "OFF", "", "value=5 transient=True", "value=-3 transient=False",
         "12 seq=3 adjusted", "a=1 b=False c=True", "x y", repr(float(v))])) for v in values]
    times = np.sort(rng.integers(-10**18, 5 * 10**18, n))
    columns = {
        "time": pa.array(times, pa.int64(), mask=nulls(0.05)),
        "frame": ints(1, 10**7, 0.05, pa.int64()),
        "stream": ints(0, 4, 0, pa.int32()),
        "direction": choice(["c2s", "s2c"]),
        # (a row without addresses made the old formatter's line None: see below)
        "src": choice(["10.0.0.1", "fe80::1", "192.168.1.20"]),
        "sport": ints(0, 65536, 0.05, pa.int32()),
        "dst": choice(["10.0.0.2", "::1"]),
        "dport": ints(2404, 2406, 0.05, pa.int32()),
        "apdu": pa.array(apdu, pa.int64(), mask=nulls(0.1)),
        "kind": pa.array(kind, pa.string()),
        "apci": apci,
        "u_func": choice(["STARTDT_ACT", "TESTFR_CON"], 0.3),
        "ssn": ints(0, 32768, 0.1, pa.int32()),
        "rsn": ints(0, 32768, 0.1, pa.int32()),
        "type_id": ints(0, 256, 0.1, pa.int16()),
        "type_name": choice(["M_ME_NC_1", "M_SP_NA_1", "C_SC_NA_1"], 0.3),
        "sq": bools(0.1),
        "num_objects": ints(0, 128, 0.1, pa.int16()),
        "cot": ints(0, 64, 0.1, pa.int16()),
        "cot_name": choice(["SPONTANEOUS", "ACTIVATION"], 0.3),
        "negative": bools(0.2),
        "test": bools(0.2),
        "oa": ints(0, 3, 0.2, pa.int16()),
        "ca": ints(0, 65536, 0.1, pa.int32()),
        "obj": ints(0, 127, 0.3, pa.int16()),
        "ioa": ints(0, 2**24, 0.2, pa.int32()),
        "value": pa.array(values, pa.float64(), mask=nulls(0.2)),
        "value_text": pa.array(value_text, pa.string()),
        **{f: bools(0.3) for f in ("iv", "nt", "sb", "bl", "ov", "ei", "time_tag_iv",
                                    "select")},
        "time_tag": pa.array(rng.integers(0, 4 * 10**18, n), pa.int64(), mask=nulls(0.5)),
        "qualifier": ints(0, 32, 0.7, pa.int16()),
        "raw": pa.array([None if m else rng.bytes(int(rng.integers(0, 30)))
                         for m in nulls(0.1)], pa.binary()),
        "error": choice(["", "bad ASDU", "3 octets missing", "unknown type"], 0.6),
        "profile": choice(["2/2/3"], 0.5),
        "profile_confidence": pa.array(rng.random(n), pa.float64(), mask=nulls(0.5)),
    }
    return pa.RecordBatch.from_arrays(
        [columns[f.name].cast(f.type) for f in SCHEMA], schema=SCHEMA)


@pytest.mark.parametrize("seed", range(12))
def test_random_batches_print_as_before(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for mode in ("a", "e", "r"):
        _same_as_before(_random_batch(rng, int(rng.integers(1, 600))), mode,
                        int(rng.integers(0, 10**18)))


def test_rows_without_addresses() -> None:
    """A row without addresses shows ``?`` for them (the old formatter's line was None)."""
    batch = _random_batch(np.random.default_rng(1), 50)
    columns = {f.name: batch.column(f.name) for f in SCHEMA}
    columns["src"] = columns["dst"] = pa.nulls(50, pa.string())
    lines = batch_lines(pa.RecordBatch.from_arrays(list(columns.values()), schema=SCHEMA))
    assert lines and all(" ? -> ? " in line for line in lines)


def test_float32_texts_are_float32_text() -> None:
    rng = np.random.default_rng(14)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):  # signalling NaNs
        singles = bits.view(np.float32).astype(np.float64)
    values = np.concatenate([
        singles,
        rng.integers(-1000, 1000, 1000) / 8,  # binary fractions and integers
        np.array([0.0, -0.0, 1e-4, 2e-4, 1.5e-4, 0.1, 3.14, 2.0**23 - 0.5, 2.0**23, 1e16,
                  -1e-45, 3.4028234663852886e38, 1e39, float("nan"), float("inf"),
                  -float("inf"), 0.1 + 2**-40]),  # the last: no binary32
        rng.normal(0, 1e4, 1000)])
    assert float32_texts(values).to_pylist() == [float32_text(v) for v in values.tolist()]
    # repeated numbers (measurements): each distinct one formatted once, -0.0 apart from 0.0
    repeated = np.concatenate([np.tile(values[:300], 5), [-0.0, 0.0] * 600])
    assert float32_texts(repeated).to_pylist() == [float32_text(v) for v in repeated.tolist()]
