"""records.arrays builds what pyarrow.array builds (it only avoids pyarrow's pandas check)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from iec104.records import arrays
from iec104.records.schema import SCHEMA

TS = SCHEMA.field("time").type


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8,
                                   np.float32, np.float64, np.bool_])
def test_numpy_arrays_as_pyarrow_makes_them(dtype: type) -> None:
    values = (np.arange(-20, 20) % 7).astype(dtype)
    mask = np.arange(40) % 3 == 0
    assert arrays.array(values).equals(pa.array(values))
    assert arrays.array(values, mask=mask).equals(pa.array(values, mask=mask))
    assert arrays.array(values[::3]).equals(pa.array(values[::3]))  # not contiguous


def test_byte_order() -> None:
    values = np.frombuffer(bytes(range(8)), ">u2")
    assert arrays.array(values).to_pylist() == [1, 515, 1029, 1543]  # pa.array refuses


@pytest.mark.parametrize("target", [pa.int16(), pa.int32(), pa.float64(), pa.string(), TS])
def test_a_type_casts_safely(target: pa.DataType) -> None:
    values = np.array([1, 2, 300, 0], np.int64)
    mask = np.array([False, True, False, False])
    expected = pa.array(values, mask=mask).cast(target)  # pyarrow.array refuses int -> string
    assert arrays.array(values, target, mask).equals(expected)


def test_an_overflow_raises_as_pyarrow_does() -> None:
    with pytest.raises(pa.ArrowInvalid):
        arrays.array(np.array([70000], np.int64), pa.int16())
    # a null's value is not checked
    assert arrays.array(np.array([70000, 1]), pa.int16(),
                        np.array([True, False])).to_pylist() == [None, 1]


@given(st.lists(st.one_of(st.none(), st.text())))
def test_string_lists(values: list[str | None]) -> None:
    assert arrays.array(values, pa.string()).equals(pa.array(values, pa.string()))


@given(st.lists(st.one_of(st.none(), st.binary())))
def test_binary_lists(values: list[bytes | None]) -> None:
    assert arrays.array(values, pa.binary()).equals(pa.array(values, pa.binary()))


@given(st.lists(st.one_of(st.none(), st.integers(-(1 << 31), (1 << 31) - 1))),
       st.sampled_from([pa.int32(), pa.int64(), TS, pa.float64()]))
def test_integer_lists(values: list[int | None], dtype: pa.DataType) -> None:
    assert arrays.array(values, dtype).equals(pa.array(values, dtype))


@given(st.lists(st.one_of(st.none(), st.floats())))
def test_float_lists(values: list[float | None]) -> None:
    got, expected = arrays.array(values, pa.float64()), pa.array(values, pa.float64())
    assert got.type == expected.type and got.null_count == expected.null_count
    assert repr(got.to_pylist()) == repr(expected.to_pylist())  # NaN is no NaN's equal


@given(st.lists(st.one_of(st.none(), st.booleans())))
def test_bool_lists(values: list[bool | None]) -> None:
    assert arrays.array(values, pa.bool_()).equals(pa.array(values, pa.bool_()))


@pytest.mark.parametrize("values", [[], [None, None], [1, 2], [True, None], ["a", None],
                                    [b"\x00"], [1, 2.5], range(5)])
def test_inferred_types(values: list) -> None:
    assert arrays.array(values).equals(pa.array(values))


def test_scalar() -> None:
    assert arrays.scalar(5, pa.int16()).equals(pa.scalar(5, pa.int16()))
    assert arrays.scalar(None, pa.string()).equals(pa.scalar(None, pa.string()))


@pytest.mark.parametrize("dtype", [pa.int16(), pa.int64(), pa.float64(), pa.bool_(), TS])
def test_to_numpy(dtype: pa.DataType) -> None:
    source = pa.array([1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1], pa.int64()).cast(dtype)
    for piece in (source, source.slice(3), source.slice(9, 2), source.slice(11)):
        expected = piece.to_numpy(zero_copy_only=False)
        if pa.types.is_timestamp(dtype):
            expected = expected.astype(np.int64)
        got = arrays.to_numpy(piece)
        assert got.dtype == expected.dtype and (got == expected).all()
    with pytest.raises(ValueError, match="null"):
        arrays.to_numpy(pa.array([1, None]))
