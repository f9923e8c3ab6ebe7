"""Where things are in a dataset directory, and the ``capture`` column.

Theory of operation
-------------------
A dataset is a directory that any Parquet engine reads as it is::

    DIR/_captures.parquet                        the manifest: one row per converted capture
    DIR/date=2024-03-01/<digest>-000.parquet     rows of one capture on one UTC day
    DIR/date=__HIVE_DEFAULT_PARTITION__/...      rows whose ``time`` is null (damaged timestamps)
    DIR/_staging/                                files being written (hidden from every engine)
    DIR/date=2024-03-01/iec104-proxy-...parquet  a recorder's log segment on one UTC day
    DIR/.iec104-proxy-....arrows                 its open journal (hidden from every engine)

The partition value is the UTC date of ``time``; ``__HIVE_DEFAULT_PARTITION__`` is the Hive
convention for null, which pyarrow, Spark, DuckDB and Polars read as null. Every file of a
capture is named after the capture's content digest (:data:`DIGEST_CHARS` hex characters of its
SHA-256), so a capture's files can be found, replaced or removed by name alone (:func:`is_capture_file`).
Recorders write log segments into the same partitions under their own names; the manifest
never lists them (a log session is not a capture to convert again) and the converter never
removes them; readers read every log segment besides the manifest's files. Names starting
with ``_`` or ``.`` are skipped by pyarrow, Dask and Spark; DuckDB and Polars get the glob
:func:`data_glob`.

The ``capture`` column names the source of each row: ``<file name>@<digest>`` for a capture
file (two files called ``ring_00001.pcap`` in different folders differ by digest), so that
``(capture, stream)`` is one TCP connection and ``(capture, apdu)`` one APDU across a whole
dataset; a recorder's log session (``iec104 proxy -o DIR``, ``iec104 capture -o DIR``)
is ``<prefix>@<start>-<pid>-<run id>`` (see :mod:`iec104.records.journal`). It is dictionary encoded: one string per file, not per row. A Parquet file written
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
from ..records.partitions import (  # the row layout, shared with the recorders
    CAPTURE_DOC,
    CAPTURE_FIELD,
    DATASET_SCHEMA,
    DATASET_VERSION,
    NULL_PARTITION,
    PARTITION,
    capture_column,
    partition_dir,
    partition_value,
    split_by_day,
    with_capture,
)

__all__ = ["CAPTURE_DOC", "CAPTURE_FIELD", "DATASET_SCHEMA", "DATASET_VERSION", "DIGEST_CHARS",
           "MANIFEST", "NULL_PARTITION", "PARTITION", "STAGING", "DatasetError",
           "capture_column", "capture_name", "capture_of_file", "data_file", "data_glob",
           "digest_of_data_file", "file_digest", "is_capture_file", "partition_dir",
           "partition_schema", "partition_value", "split_by_day", "with_capture"]

MANIFEST = "_captures.parquet"
"""The manifest's file name in the dataset directory."""
STAGING = "_staging"
"""Directory (in the dataset) where a capture's files are written before they are published."""
DIGEST_CHARS = 12
"""Hex characters of the SHA-256 in a capture's name: 48 bits, no collision in practice."""

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


def data_file(sha256: str, day: dt.date | None, part: int) -> str:
    """Path (relative to the dataset) of part ``part`` [0, 999] of a capture on one day."""
    return f"{partition_dir(day)}/{sha256[:DIGEST_CHARS * 2]}-{part:03d}.parquet"


def is_capture_file(relative: str) -> bool:
    """Whether a data file was written by the converter (named by :func:`data_file`); the
    other files in partitions are recorder log segments, which no manifest lists."""
    name = posixpath.basename(relative)
    digest, _, part = name.removesuffix(".parquet").rpartition("-")
    return (name.endswith(".parquet") and len(digest) == DIGEST_CHARS * 2 and len(part) == 3
            and part.isdigit() and all(c in "0123456789abcdef" for c in digest))


def digest_of_data_file(relative: str) -> str:
    """The digest prefix a data file is named by (see :func:`data_file`)."""
    return posixpath.basename(relative).rsplit("-", 1)[0]


def data_glob(root: str) -> str:
    """The glob of every data file (published ones only) under ``root``."""
    return f"{root.rstrip('/')}/{PARTITION}=*/*.parquet"


def partition_schema() -> pa.Schema:
    """The schema of the hive partition key for pyarrow (dates, null partition = null)."""
    return pa.schema([pa.field(PARTITION, pa.date32())])
