"""Parquet files of decoded traffic: writing in row groups, loading to pandas.

:class:`ParquetSink` writes one file incrementally (constant memory: each batch becomes
a row group). Long-running recorders write a rotating, crash-safe directory instead
(:class:`iec104.proxy.JournaledParquetSink`); :func:`load` reads either.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import METADATA_KEY, SCHEMA, SCHEMA_VERSION

if TYPE_CHECKING:
    import pandas as pd


class ParquetSink:
    """Write RecordBatches of :data:`SCHEMA` into one Parquet file.

    The file is written to a hidden ``.<name>.partial`` beside ``path`` and renamed to ``path``
    on :meth:`close`, so a file under its final name is always complete, and readers of the
    directory (pyarrow skips names starting with ``.`` or ``_``) never see the open one.
    """

    def __init__(self, path: str | os.PathLike[str], compression: str = "zstd") -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self._partial, SCHEMA, compression=compression)
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append a batch as one row group (empty batches are skipped)."""
        if self._writer is None:
            raise ValueError(f"{self.path} is closed")
        if batch.num_rows:
            self._writer.write_batch(batch)
            self.rows += batch.num_rows

    @property
    def bytes_written(self) -> int:
        try:
            return self._partial.stat().st_size
        except FileNotFoundError:
            return 0

    def close(self) -> Path:
        """Finish the file and give it its final name; returns the path."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            os.replace(self._partial, self.path)
        return self.path

    def __enter__(self) -> ParquetSink:  # noqa: PYI034 -- not subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def schema_version(path: str | os.PathLike[str]) -> str | None:
    """Schema version stored in a Parquet file written by iec104 (None if absent)."""
    meta = pq.read_schema(path).metadata or {}
    value = meta.get(METADATA_KEY)
    return value.decode() if value is not None else None


def load(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
         columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file, a directory of them, or a list of files into a DataFrame.

    ``.partial`` files (still being written) are skipped.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        paths = sorted(p for p in path.glob("*.parquet")) if path.is_dir() else [path]
    else:
        paths = [Path(p) for p in source]
    if not paths:
        return SCHEMA.empty_table().to_pandas()
    tables = [pq.read_table(p, columns=columns) for p in paths]
    # files of older minor versions may lack newer columns: promote fills them with nulls
    return pa.concat_tables(tables, promote_options="default").to_pandas()


__all__ = ["SCHEMA_VERSION", "ParquetSink", "load", "schema_version"]
