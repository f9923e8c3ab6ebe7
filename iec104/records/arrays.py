"""Arrow arrays to and from numpy and Python lists, without importing pandas.

Theory of operation
-------------------
pyarrow imports pandas (about 0.3 s of CPU, the largest single part of the start-up of
``iec104 convert`` and ``iec104 read``) the first time it is asked whether an argument is
a pandas object, which it asks in :func:`pyarrow.array`, :func:`pyarrow.scalar`,
``Array.to_numpy``, ``numpy.asarray(array)``, ``Array.fill_null`` and any compute function
given a plain Python value (or ``fill_null`` a scalar of another type), and in ``as_py`` of
a nanosecond timestamp. The paths from a capture to rows and to Parquet (the dissector, the
row builders, the filter, the writers) and ``iec104 read``'s one-line formatter
(:mod:`iec104.cli.oneline`) build and read their arrays through this module instead: it goes
through buffers (:meth:`pyarrow.Array.from_buffers` over numpy memory, :func:`numpy.frombuffer`
over Arrow's), which never asks. ``tests/records/test_arrays.py`` checks that :func:`array`
gives what :func:`pyarrow.array` gives, and ``tests/cli/test_cli_startup.py`` that those
commands never import pandas.

The analyzer and the loaders (``to_pandas``) import pandas anyway; they need not use this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["array", "scalar", "to_numpy"]

_INT32_MAX = (1 << 31) - 1


def array(values: np.ndarray | Sequence[Any], type: pa.DataType | None = None,
          mask: np.ndarray | None = None) -> pa.Array:
    """:func:`pyarrow.array` for a 1-D numpy array or a list (``None`` is null), of the
    types of the records schema (integers, floats, booleans, timestamps from integers or
    datetimes, strings, binary).

    Args:
        values: the values; an ndarray's dtype gives the type when ``type`` is None, a
            list's elements do (int -> int64, float -> float64, bool, str, bytes).
        type: the array's type; other values are cast to it safely (an overflow raises
            :class:`pyarrow.ArrowInvalid`, as :func:`pyarrow.array` does). Unlike
            :func:`pyarrow.array`, a float in a list for an integer type is truncated:
            callers give integers.
        mask: boolean ndarray, True where the value is null.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return _from_numbers(values, type, mask)
    return _from_list(values.tolist() if isinstance(values, np.ndarray) else list(values),
                      type, mask)


def scalar(value: Any, type: pa.DataType | None = None) -> pa.Scalar:
    """:func:`pyarrow.scalar` (``None`` is a null of ``type``)."""
    return array([value], type)[0]


def to_numpy(values: pa.Array) -> np.ndarray:
    """A null-free numeric or boolean array as numpy (read-only, zero-copy for numbers;
    timestamps as int64). Nulls raise :class:`ValueError`: fill them first (with a
    :func:`scalar`)."""
    if values.null_count:
        raise ValueError(f"{values.null_count} nulls in an array of {values.type}")
    n, offset = len(values), values.offset
    data = values.buffers()[1]
    if pa.types.is_boolean(values.type):
        bits = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        return np.unpackbits(bits, count=offset + n, bitorder="little")[offset:].astype(bool)
    dtype = np.dtype(np.int64) if pa.types.is_timestamp(values.type) else \
        _numpy_dtype(values.type)
    if data is None:
        return np.zeros(0, dtype)
    return np.frombuffer(data, dtype, count=n, offset=offset * dtype.itemsize)


_NUMPY = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
          pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32,
          pa.uint64(): np.uint64, pa.float32(): np.float32, pa.float64(): np.float64}


def _numpy_dtype(dtype: pa.DataType) -> np.dtype:
    try:
        return np.dtype(_NUMPY[dtype])
    except KeyError:
        raise TypeError(f"no numpy form of {dtype} here") from None


def _validity(mask: np.ndarray | None, n: int) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap of a null ``mask`` (None when nothing is null) and its nulls."""
    if mask is None:
        return None, 0
    mask = np.asarray(mask, bool)
    if len(mask) != n:
        raise ValueError(f"mask of {len(mask)} values for {n} values")
    nulls = int(np.count_nonzero(mask))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(~mask, bitorder="little")), nulls


def _from_numbers(values: np.ndarray, dtype: pa.DataType | None,
                  mask: np.ndarray | None) -> pa.Array:
    if values.ndim != 1:
        raise ValueError(f"{values.ndim}-dimensional values; only 1-D arrays convert")
    if not values.dtype.isnative:  # e.g. '>u2' from np.frombuffer: Arrow is little-endian
        values = values.astype(values.dtype.newbyteorder("="))
    values = np.ascontiguousarray(values)
    n = len(values)
    validity, nulls = _validity(mask, n)
    if values.dtype.kind == "b":
        native = pa.bool_()
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
    else:
        native = pa.from_numpy_dtype(values.dtype)
        if native == pa.int64() and dtype is not None and pa.types.is_timestamp(dtype):
            native = dtype  # the same 64-bit integers: no cast (a copy)
        data = pa.py_buffer(values)
    out = pa.Array.from_buffers(native, n, [validity, data], null_count=nulls)
    return out if dtype is None or dtype == native else out.cast(dtype)


def _from_list(values: list[Any], dtype: pa.DataType | None,
               mask: np.ndarray | None) -> pa.Array:
    n = len(values)
    if dtype is None:
        dtype = _infer(values)
    if pa.types.is_null(dtype) or not n:
        return pa.nulls(n, dtype)
    if pa.types.is_string(dtype) or pa.types.is_binary(dtype):
        return _from_texts(values, dtype, mask)
    if pa.types.is_boolean(dtype):
        kinds, fill = "b", False
    elif pa.types.is_floating(dtype):
        kinds, fill = "iuf", 0.0
    elif pa.types.is_integer(dtype) or pa.types.is_timestamp(dtype):
        kinds, fill = "iu", 0
    else:
        raise TypeError(f"no conversion to {dtype} here")
    null = None
    try:  # one pass at C speed; a None raises, and only then come the per-value passes
        if type(fill) is int:  # int(None) raises
            numbers = np.fromiter(values, np.int64, n)
        else:  # bool(None) is False and numpy's float(None) NaN: inference finds a None
            numbers = np.array(values)
            if numbers.dtype == object:
                raise TypeError("None")
    except (TypeError, OverflowError):
        null = np.fromiter((v is None for v in values), bool, n)
        if null.all():
            return pa.nulls(n, dtype)
        filled = [fill if v is None else _ns(v) for v in values]
        numbers = np.array(filled, bool) if fill is False else np.array(filled)
    if numbers.dtype.kind not in kinds:
        raise pa.ArrowInvalid(f"cannot convert {numbers.dtype} values to {dtype}")
    if mask is not None:
        null = np.asarray(mask, bool) if null is None else null | np.asarray(mask, bool)
    return _from_numbers(numbers, dtype, null)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _ns(value: Any) -> Any:
    """A datetime as ns since the epoch (a naive one read as UTC, as pyarrow reads it);
    other values unchanged."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // dt.timedelta(microseconds=1) * 1000
    return value


def _from_texts(values: list[Any], dtype: pa.DataType, mask: np.ndarray | None) -> pa.Array:
    text = pa.types.is_string(dtype)
    null = None
    try:  # a None raises: only a list with None takes the per-value passes
        octets = [v.encode() for v in values] if text else list(map(bytes, values))
    except (AttributeError, TypeError):
        null = np.fromiter((v is None for v in values), bool, len(values))
        empty = b""
        octets = [empty if v is None else v.encode() if text else bytes(v) for v in values]
    if mask is not None:
        null = np.asarray(mask, bool) if null is None else null | np.asarray(mask, bool)
    n = len(octets)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, octets), np.int64, n), out=offsets[1:])
    if offsets[-1] > _INT32_MAX:
        raise ValueError(f"{offsets[-1]} octets of {dtype}: more than one array holds")
    validity, nulls = _validity(null, n)
    return pa.Array.from_buffers(dtype, n, [validity, pa.py_buffer(offsets.astype(np.int32)),
                                            pa.py_buffer(b"".join(octets))], null_count=nulls)


def _infer(values: list[Any]) -> pa.DataType:
    """The type :func:`pyarrow.array` infers for a list of one kind of Python value."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.null()
    for python, arrow in ((bool, pa.bool_()), (int, pa.int64()), (str, pa.string()),
                          (bytes, pa.binary())):
        # bool before int (a bool is an int); enum members count as their base
        if all(issubclass(k, python) for k in kinds) and (python is bool or bool not in kinds):
            return arrow
    if all(issubclass(k, (int, float)) and k is not bool for k in kinds):
        return pa.float64()
    raise TypeError(f"no Arrow type inferred for {sorted(k.__name__ for k in kinds)}")
