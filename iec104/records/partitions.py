"""The dataset's row layout, shared by every writer of a dataset: ``capture`` and ``date=``.

Theory of operation
-------------------
A dataset (:mod:`iec104.dataset`) is a hive-partitioned Parquet directory
``DIR/date=YYYY-MM-DD/*.parquet`` whose rows are those of the records schema with a
``capture`` column in front naming their source. Two kinds of writers fill it: the converter
(:mod:`iec104.dataset.write`, one capture file at a time) and the live recorders
(:mod:`iec104.records.journal` in dataset mode, one log session at a time). Both sit on
this module, so the partition naming and the schema are stated once; the dataset package
re-exports these names (:mod:`iec104.dataset.layout`).

The partition value is the UTC date of ``time``; ``__HIVE_DEFAULT_PARTITION__`` is the Hive
convention for null, which pyarrow, Spark, DuckDB and Polars read as null.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from .schema import METADATA_KEY, SCHEMA

__all__ = ["CAPTURE_FIELD", "DATASET_SCHEMA", "DATASET_VERSION", "NULL_PARTITION", "PARTITION",
           "capture_column", "partition_dir", "partition_value", "split_by_day",
           "with_capture"]

_Rows = TypeVar("_Rows", pa.RecordBatch, pa.Table)

PARTITION = "date"
"""The partition key: UTC date of ``time`` as ``YYYY-MM-DD``."""
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""The partition of rows without ``time`` (Hive's name for a null partition value)."""

DATASET_VERSION = "3"
"""Schema version of dataset files: the records schema plus ``capture``."""

CAPTURE_FIELD = pa.field("capture", pa.dictionary(pa.int32(), pa.string()))
"""``capture``: the source of the row: ``<file name>@<digest>`` for a converted capture file,
``<prefix>@<start>-<pid>-<run id>`` for a recorder's log session."""
CAPTURE_DOC = ("source of the row: capture file name and the first 12 hex digits of its SHA-256 "
               "('ring_00001.pcap@3fa2b1c49d0e'), or a recorder's log session "
               "('iec104-proxy@20261207T154000Z-4242-a1b2c3'); (capture, stream) is one TCP "
               "connection and (capture, apdu) one APDU across a dataset")

DATASET_SCHEMA = pa.schema([CAPTURE_FIELD, *SCHEMA],
                           metadata={METADATA_KEY: DATASET_VERSION.encode()})
"""Rows of dataset files: ``capture`` first, then the records schema."""


def capture_column(rows: int, capture: str) -> pa.DictionaryArray:
    """``rows`` times the value ``capture``, dictionary encoded (one string)."""
    import numpy as np

    return pa.DictionaryArray.from_arrays(np.zeros(rows, dtype=np.int32),
                                          pa.array([capture], pa.string()))


def with_capture(batch: pa.RecordBatch, capture: str) -> pa.RecordBatch:
    """``batch`` (of the records schema) with the ``capture`` column in front."""
    return pa.RecordBatch.from_arrays([capture_column(batch.num_rows, capture),
                                       *batch.columns], schema=DATASET_SCHEMA)


def partition_value(day: dt.date | None) -> str:
    """The ``date=`` value of a day (None: the null partition)."""
    return NULL_PARTITION if day is None else day.isoformat()


def partition_dir(day: dt.date | None) -> str:
    """The partition's directory name, e.g. ``date=2024-03-01``."""
    return f"{PARTITION}={partition_value(day)}"


def split_by_day(batch: _Rows) -> list[tuple[dt.date | None, _Rows]]:
    """The rows of ``batch`` grouped by the UTC date of ``time`` (None: no time), rows in
    their order within a day."""
    if not batch.num_rows:
        return []
    days = pc.cast(batch.column("time"), pa.date32())
    span = pc.min_max(days).as_py()
    if days.null_count == 0 and span["min"] == span["max"]:
        return [(span["min"], batch)]
    out: list[tuple[dt.date | None, _Rows]] = []
    for day in pc.unique(days).to_pylist():
        mask = pc.is_null(days) if day is None else pc.fill_null(pc.equal(days, day), False)
        out.append((day, batch.filter(mask)))
    return out
