"""Reading Parquet files of decoded traffic: where rows are read back.

* :func:`load` -- Parquet file(s) or a directory of them -> pandas DataFrame (``.partial``
  files skipped; files of older schema versions get the newer columns as nulls);
* :func:`open_parquet` / :func:`parquet_batches` -- check that a file is of iec104's schema
  and iterate it in record batches cut at APDU boundaries (:func:`whole_apdus`), a damaged
  row group costing only its own rows (the CLI's ``read``/``summary``/``report`` on Parquet
  input);
* :func:`row_groups` -- THE filter pushdown: which row groups of a file a filter expression
  (its superset :meth:`~iec104.records.filter.Filter.pushdown`) needs, by their statistics,
  never cutting an APDU (used by :func:`parquet_batches` and the dataset reader);
* version-1 files (no ``kind`` column) read like version-2 ones: :func:`derive_kind`;
* :func:`schema_version` -- the version stored in a file's metadata.

Everything a reader may meet is a :class:`SchemaError` (not Parquet, not our schema, a
damaged row group), with the file name in the message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..codec.errors import Iec104Error
from .schema import METADATA_KEY, SCHEMA, RowKind

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.dataset as ds

    from .filter import Filter

__all__ = ["SchemaError", "conform_batch", "derive_kind", "is_parquet", "load", "open_parquet",
           "parquet_batches", "row_groups", "schema_version", "whole_apdus"]

_MAGIC = b"PAR1"


class SchemaError(Iec104Error, ValueError):
    """A file that is not a readable Parquet file of iec104's schema (the message names it)."""


def is_parquet(path: Path) -> bool:
    """A directory (of Parquet files) or a file starting with the Parquet magic ``PAR1``."""
    if path.is_dir():
        return True
    with open(path, "rb") as fh:
        return fh.read(4) == _MAGIC


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
    tables = [_read_table(p, columns) for p in paths]
    # files of older minor versions may lack newer columns: promote fills them with nulls
    return pa.concat_tables(tables, promote_options="default").to_pandas()


def _read_table(path: Path, columns: list[str] | None) -> pa.Table:
    """The ``columns`` (None: all) of one file; of a version-1 file, ``kind`` is derived."""
    names = pq.read_schema(path).names
    if "kind" in names or (columns is not None and "kind" not in columns):
        return pq.read_table(path, columns=columns)
    wanted = names if columns is None else columns
    needed = [c for c in wanted if c != "kind"]
    needed += [c for c in ("apdu", "obj", "error") if c not in needed]
    table = pq.read_table(path, columns=needed)
    table = table.append_column("kind", derive_kind(table))
    if columns is None:  # kind in its place in the schema, after apdu
        order = [n for n in SCHEMA.names if n in table.column_names]
        return table.select(order + [n for n in table.column_names if n not in order])
    return table.select(columns)


def open_parquet(path: Path) -> pq.ParquetFile:
    """An open Parquet file of the schema, or a :class:`SchemaError` saying why it is not one."""
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise SchemaError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())})"
                          ) from None
    schema = pf.schema_arrow
    if "apdu" not in schema.names:
        raise SchemaError(f"{path}: not a Parquet file of iec104's schema (no 'apdu' column)")
    for f in SCHEMA:
        if f.name in schema.names and _family(schema.field(f.name).type) != _family(f.type):
            raise SchemaError(f"{path}: not a Parquet file of iec104's schema (column "
                              f"{f.name!r} is {schema.field(f.name).type}, not {f.type})")
    return pf


def _family(dtype: pa.DataType) -> str:
    """What a column type must stay across schema versions (widths may change)."""
    for name, test in (("integer", pa.types.is_integer), ("float", pa.types.is_floating),
                       ("bool", pa.types.is_boolean), ("timestamp", pa.types.is_timestamp),
                       ("string", pa.types.is_string), ("string", pa.types.is_large_string),
                       ("binary", pa.types.is_binary), ("binary", pa.types.is_large_binary)):
        if test(dtype):
            return name
    return str(dtype)


def parquet_batches(path: Path, batch_rows: int = 65536,
                    problems: list[str] | None = None,
                    pushdown: Filter | None = None,
                    columns: Iterable[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Batches of a Parquet file of the schema, cut so that no APDU spans two batches.

    A file that cannot be opened, or is of another schema, raises :class:`SchemaError`. A
    row group that cannot be read (damage inside the file) is skipped and its reason
    appended to ``problems`` (every other row group is read), or raised as
    :class:`SchemaError` without a list. With ``pushdown``, only the row groups that
    :func:`row_groups` keeps for its :meth:`~iec104.records.filter.Filter.pushdown` are
    read; the caller still applies the filter to the rows. ``columns``: only these columns
    of the schema are read, and the batches have only them and ``apdu`` (None: all).
    """
    pf = open_parquet(path)
    wanted = None if columns is None else {*columns, "apdu"}
    needed = wanted if wanted is None or "kind" not in wanted or "kind" in \
        pf.schema_arrow.names else {*wanted, "error", "obj"}  # derive_kind's (version 1)
    names = [f.name for f in SCHEMA if f.name in pf.schema_arrow.names
             and (needed is None or f.name in needed)]
    groups = pf.metadata.num_row_groups
    selected: Iterable[int] = range(groups)
    if pushdown is not None and pushdown.prunes:
        try:
            import pyarrow.dataset as pads
            import pyarrow.fs as pafs

            fragment = pads.ParquetFileFormat().make_fragment(
                os.path.abspath(path), filesystem=pafs.LocalFileSystem())
            selected = row_groups(fragment, pushdown.pushdown(pf.schema_arrow))
        except (pa.ArrowException, OSError):
            pass  # statistics unreadable: read every group (damage is reported per group)

    def chunks() -> Iterator[pa.RecordBatch]:
        for group in selected:
            try:  # row groups are independent: one damaged group loses only its own rows
                table = pf.read_row_group(group, columns=names)
                parts = [conform_batch(b, wanted)
                         for b in table.to_batches(max_chunksize=batch_rows)]
            except (pa.ArrowException, OSError) as exc:
                reason = (f"{path}: row group {group + 1} of {groups} cannot be read "
                          f"({' '.join(str(exc).split())}); its rows are missing, the other "
                          "row groups were read")
                if problems is None:
                    raise SchemaError(reason) from None
                problems.append(reason)
                continue
            yield from parts

    yield from whole_apdus(chunks())


def whole_apdus(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``batches`` (consecutive rows of ONE file or log session) cut again so that the rows
    of an APDU (consecutive rows with the same ``apdu``) are in one batch: when a batch
    starts with the APDU the one before ended with, those rows move into it (no copy when
    batches already end at APDU boundaries, as our writers' row groups do)."""
    held: pa.RecordBatch | None = None
    for batch in batches:
        if not batch.num_rows:
            continue
        if held is not None:
            apdu = held.column("apdu")
            last = apdu[held.num_rows - 1].as_py()
            if last is not None and batch.column("apdu")[0].as_py() == last:
                cut = held.num_rows
                while cut > 0 and apdu[cut - 1].as_py() == last:
                    cut -= 1
                batch = pa.Table.from_batches([held.slice(cut), batch]).combine_chunks() \
                    .to_batches()[0]
                held = held.slice(0, cut)
            if held.num_rows:
                yield held
        held = batch
    if held is not None:
        yield held


def row_groups(fragment: ds.ParquetFileFragment, predicate: ds.Expression) -> list[int]:
    """The row groups of one Parquet file to read for a superset ``predicate``
    (:meth:`~iec104.records.filter.Filter.pushdown`, maybe with a time range), in file order.

    A row group is skipped when its statistics prove that no row satisfies ``predicate``
    (pyarrow's ``split_by_row_group``), unless it may share an APDU with a row group that is
    read: a filter keeps whole APDUs, so an APDU cut over two row groups must be read whole.
    Our writers never cut one (a row group is a batch of whole APDUs); for other files two
    neighbours may share one when their ``apdu`` ranges meet (no statistics: they may).
    """
    keep = {f.row_groups[0].id for f in fragment.split_by_row_group(filter=predicate)}
    meta = fragment.metadata
    if not keep or meta.num_row_groups == len(keep):
        return sorted(keep)
    names = meta.schema.names
    column = names.index("apdu") if "apdu" in names else -1
    spans = [_apdu_span(meta.row_group(i), column) for i in range(meta.num_row_groups)]
    todo = sorted(keep)
    while todo:
        i = todo.pop()
        for j in (i - 1, i + 1):
            if 0 <= j < meta.num_row_groups and j not in keep and _meet(spans[i], spans[j]):
                keep.add(j)
                todo.append(j)
    return sorted(keep)


# a row group's APDU numbers: (min, max), None (no APDU row), or ... (no statistics)
_Span = tuple[int, int] | None | EllipsisType


def _apdu_span(group: pq.RowGroupMetaData, column: int) -> _Span:
    if column < 0:
        return ...
    stats = group.column(column).statistics
    if stats is None or stats.null_count is None:
        return ...
    if stats.null_count == group.num_rows:
        return None
    return (stats.min, stats.max) if stats.has_min_max else ...


def _meet(a: _Span, b: _Span) -> bool:
    """Whether two neighbouring row groups may hold rows of one APDU."""
    if a is None or b is None:
        return False
    if a is ... or b is ...:
        return True
    return a[0] <= b[1] and b[0] <= a[1]  # type: ignore[index]


def conform_batch(batch: pa.RecordBatch, columns: Iterable[str] | None = None
                  ) -> pa.RecordBatch:
    """A batch with every column of the schema (or those in ``columns``), in its order: of
    a version-1 file, ``kind`` is derived (:func:`derive_kind`); other missing columns are
    null."""
    schema = SCHEMA if columns is None else pa.schema(
        [f for f in SCHEMA if f.name in set(columns)])
    if batch.schema.names == schema.names:
        return batch
    names = batch.schema.names
    arrays = [batch.column(f.name).cast(f.type) if f.name in names
              else derive_kind(batch) if f.name == "kind"
              else pa.nulls(batch.num_rows, f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def derive_kind(data: pa.RecordBatch | pa.Table) -> pa.Array | pa.ChunkedArray:
    """The ``kind`` of the rows of a version-1 file, which had none.

    Version 1 told the kinds apart only by other columns and by the prefix of ``error``:
    object rows have ``obj``; rows without ``apdu`` are gaps (``error`` starting ``gap:``)
    or events; other rows with an ``error`` are malformed, the rest are APDUs. This is the
    only place that reads a kind out of the text, and only for old files.
    """
    error = data.column("error")
    is_gap = pc.fill_null(pc.starts_with(error, "gap:"), False)
    without_apdu = pc.if_else(is_gap, RowKind.GAP.value, RowKind.EVENT.value)
    with_apdu = pc.if_else(pc.is_valid(error), RowKind.MALFORMED.value, RowKind.APDU.value)
    return pc.if_else(pc.is_valid(data.column("obj")), RowKind.OBJECT.value,
                      pc.if_else(pc.is_null(data.column("apdu")), without_apdu, with_apdu))
