"""Where things are in a dataset directory, and the ``capture`` column.

Theory of operation
-------------------
A dataset is a directory that any Parquet engine reads as it is::

    DIR/_captures.parquet                        the manifest: one row per converted capture
    DIR/date=2024-03-01/<digest>-000.parquet     rows of one capture on one UTC day
    DIR/date=__HIVE_DEFAULT_PARTITION__/...      rows whose ``time`` is null (damaged timestamps)
    DIR/_staging/                                files being written (hidden from every engine)

The partition value is the UTC date of ``time``; ``__HIVE_DEFAULT_PARTITION__`` is the Hive
convention for null, which pyarrow, Spark, DuckDB and Polars read as null. Every file of a
capture is named after the capture's content digest (:data:`DIGEST_CHARS` hex characters of its
SHA-256), so a capture's files can be found, replaced or removed by name alone. Names starting
with ``_`` or ``.`` are skipped by pyarrow, Dask and Spark; DuckDB and Polars get the glob
:func:`data_glob`.

The ``capture`` column names the source of each row: ``<file name>@<digest>`` for a capture
file (two files called ``ring_00001.pcap`` in different folders differ by digest), so that
``(capture, stream)`` is one TCP connection and ``(capture, apdu)`` one APDU across a whole
dataset. It is dictionary encoded: one string per file, not per row. A Parquet file written
before the column existed gets the name of the file (its stem) when read
(:func:`capture_of_file`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import posixpath
from typing import BinaryIO

import pyarrow as pa

from ..codec.errors import Iec104Error
from ..records.schema import METADATA_KEY, SCHEMA

MANIFEST = "_captures.parquet"
"""The manifest's file name in the dataset directory."""
STAGING = "_staging"
"""Directory (in the dataset) where a capture's files are written before they are published."""
PARTITION = "date"
"""The partition key: UTC date of ``time`` as ``YYYY-MM-DD``."""
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""The partition of rows without ``time`` (Hive's name for a null partition value)."""
DIGEST_CHARS = 12
"""Hex characters of the SHA-256 in a capture's name: 48 bits, no collision in practice."""

DATASET_VERSION = "3"
"""Schema version of dataset files: the records schema plus ``capture``."""

CAPTURE_FIELD = pa.field("capture", pa.dictionary(pa.int32(), pa.string()))
"""``capture``: the source of the row, ``<file name>@<digest>`` (see the module docstring)."""
CAPTURE_DOC = ("source of the row: capture file name and the first 12 hex digits of its SHA-256 "
               "('ring_00001.pcap@3fa2b1c49d0e'); (capture, stream) is one TCP connection and "
               "(capture, apdu) one APDU across a dataset")

DATASET_SCHEMA = pa.schema([CAPTURE_FIELD, *SCHEMA],
                           metadata={METADATA_KEY: DATASET_VERSION.encode()})
"""Rows of dataset files: ``capture`` first, then the records schema."""

_CHUNK = 1 << 20


class DatasetError(Iec104Error, ValueError):
    """A bad argument for reading a dataset (an unknown column, a time that is no time)."""


def file_digest(fh: BinaryIO) -> str:
    """SHA-256 of a file's content (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def capture_name(file_name: str, sha256: str) -> str:
    """The ``capture`` value of a capture file: ``<base name>@<digest>``."""
    return f"{posixpath.basename(file_name.replace(os.sep, '/'))}@{sha256[:DIGEST_CHARS]}"


def capture_of_file(path: str | os.PathLike[str]) -> str:
    """The ``capture`` value of a Parquet file written without the column: its stem."""
    name = os.path.basename(os.fspath(path))
    return name.removesuffix(".parquet")


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


def data_file(sha256: str, day: dt.date | None, part: int) -> str:
    """Path (relative to the dataset) of part ``part`` [0, 999] of a capture on one day."""
    return f"{partition_dir(day)}/{sha256[:DIGEST_CHARS * 2]}-{part:03d}.parquet"


def digest_of_data_file(relative: str) -> str:
    """The digest prefix a data file is named by (see :func:`data_file`)."""
    return posixpath.basename(relative).rsplit("-", 1)[0]


def data_glob(root: str) -> str:
    """The glob of every data file (published ones only) under ``root``."""
    return f"{root.rstrip('/')}/{PARTITION}=*/*.parquet"


def partition_schema() -> pa.Schema:
    """The schema of the hive partition key for pyarrow (dates, null partition = null)."""
    return pa.schema([pa.field(PARTITION, pa.date32())])
