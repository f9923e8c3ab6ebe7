"""Reading a dataset: pandas with pushdown, record batches, DuckDB views.

Theory of operation
-------------------
Readers see only *committed* captures: the files the manifest lists (files of an interrupted
or concurrent run are not read), plus every recorder log segment (published complete, never
in the manifest; see :func:`~iec104.dataset.layout.is_capture_file`). A dataset without a manifest (written by hand or copied
partly) is read from every ``date=*/*.parquet`` file.

The time range is pushed down twice: ``date`` (the partition) skips whole directories without
opening a file, and ``time`` (row-group statistics: rows are written in capture order) skips
row groups. ``columns`` reads only those columns. A ``filter`` expression of the filter
language (:mod:`iec104.records.filter`) is pushed down as its superset predicate
(:meth:`~iec104.records.filter.Filter.pushdown`): :func:`scan_plan` keeps, file by file, the
row groups whose statistics do not rule it out (:func:`iec104.records.reader.row_groups`,
the rule's one home, also used for a single Parquet file), so ``ca == 7``, ``type_id == 45``
or ``stream == 3`` read only the row groups that hold such rows. The exact filter is then
evaluated batch by batch on what was read, so memory holds one batch plus what matched.
Every writer of a dataset keeps the rows of an APDU in one row group (the converter writes
each dissector batch as one, :mod:`iec104.dataset.write`; the recorders cut their row groups
at APDU boundaries, :mod:`iec104.records.journal`), so skipping a row group never drops part
of an APDU, and batches are cut again at APDU boundaries per file
(:func:`~iec104.records.reader.whole_apdus`), so a filter selects whole APDUs as on a
capture.

:func:`connect` opens an in-memory DuckDB database with two views: ``iec104`` (the rows,
partition column ``date`` included) and ``captures`` (the manifest). DuckDB reads the Parquet
files directly, in parallel and out of core, so a query over more data than memory works.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa

from .layout import (
    DATASET_SCHEMA,
    MANIFEST,
    PARTITION,
    DatasetError,
    capture_column,
    capture_of_file,
    is_capture_file,
    partition_schema,
)
from .store import Store

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow.dataset as ds

    from ..records.filter import Filter

__all__ = ["ScanPlan", "batches", "connect", "is_dataset", "load", "scan_plan", "time_bound"]


def is_dataset(url: str | os.PathLike[str]) -> bool:
    """Whether ``url`` is a dataset directory (a manifest or a ``date=`` partition)."""
    try:
        store = Store(url)
        return store.exists() and (store.fs.exists(store.path(MANIFEST)) or store.partitions())
    except (OSError, ValueError):
        return False


def committed_files(store: Store) -> list[str]:
    """Full paths (on ``store.fs``) of the data files of committed captures and of every
    recorder log segment."""
    manifest = store.read_manifest()
    found = store.data_files()
    if manifest.num_rows or store.fs.exists(store.path(MANIFEST)):
        relative = sorted({f for files in manifest.column("files").to_pylist()
                           for f in files or ()}
                          | {f for f in found if not is_capture_file(f)})
    else:
        relative = found
    return [store.path(f) for f in relative]


def time_bound(value: str | dt.datetime | dt.date | None) -> dt.datetime | None:
    """A ``start``/``end`` argument as an aware UTC datetime (naive means UTC; a date is its
    midnight). Raises DatasetError for text that is no ISO date/time."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise DatasetError(f"{value!r} is not an ISO date/time such as "
                               "2024-03-01T08:00") from None
    elif not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def arrow_dataset_schema() -> pa.Schema:
    """The dataset schema with the partition column ``date``."""
    return pa.schema([*DATASET_SCHEMA, *partition_schema()])


def arrow_dataset(url: str | os.PathLike[str], files: Sequence[str] | None = None
                  ) -> ds.Dataset:
    """The committed files (or ``files``: full paths of some of them) as a
    ``pyarrow.dataset.Dataset`` with the ``date`` partition."""
    import pyarrow.dataset as pads

    store = Store(url)
    files = committed_files(store) if files is None else list(files)
    return pads.dataset(files, schema=arrow_dataset_schema(), format="parquet",
                        filesystem=store.fs,
                        partitioning=pads.HivePartitioning(partition_schema()),
                        partition_base_dir=store.root)


def _expression(start: dt.datetime | None, end: dt.datetime | None, *,
                partitions: bool = True) -> ds.Expression | None:
    """``start <= time < end`` and (``partitions``) the matching ``date`` partitions."""
    import pyarrow.dataset as pads

    conds = []
    time, day = pads.field("time"), pads.field(PARTITION)
    if start is not None:
        conds.append(time >= pa.scalar(start, DATASET_SCHEMA.field("time").type))
        if partitions:
            conds.append(day >= pa.scalar(start.date(), pa.date32()))
    if end is not None:
        conds.append(time < pa.scalar(end, DATASET_SCHEMA.field("time").type))
        if partitions:
            conds.append(day <= pa.scalar(end.date(), pa.date32()))
    if not conds:
        return None
    out = conds[0]
    for cond in conds[1:]:
        out = out & cond
    return out


class ScanPlan(NamedTuple):
    """What a scan of the dataset reads after pushdown (see :func:`scan_plan`).

    Attributes:
        fragments: one ``ParquetFileFragment`` per file opened, limited to the row groups
            to read (files whose partition is outside the time range are not opened; a file
            none of whose row groups is needed is not listed).
        files: files opened (their footers read) [0, files of the dataset].
        row_groups: row groups to read, of ``total_row_groups`` in the files opened.
        bytes: compressed bytes of those row groups, of ``total_bytes``.
    """

    fragments: list[ds.ParquetFileFragment]
    files: int
    row_groups: int
    total_row_groups: int
    bytes: int
    total_bytes: int


def scan_plan(url: str | os.PathLike[str], *, start: Any = None, end: Any = None,
              filter: Filter | str | None = None, files: Sequence[str] | None = None
              ) -> ScanPlan:
    """The files and row groups a scan of ``url`` reads for a time range and a filter:
    partitions pruned by ``date``, row groups by the statistics of ``time`` and of the
    columns the filter's pushdown names (:func:`iec104.records.reader.row_groups`).
    ``files``: only these (full paths, as ``committed_files`` gives them)."""
    import pyarrow.dataset as pads

    from ..records.filter import compile_filter
    from ..records.reader import row_groups

    flt = compile_filter(filter) if isinstance(filter, str) else filter
    dataset = arrow_dataset(url, files)
    lo, hi = time_bound(start), time_bound(end)
    by_time = _expression(lo, hi)  # partitions (by their directory) and rows
    predicate = _expression(lo, hi, partitions=False)  # row groups (their statistics)
    if flt is not None and flt.prunes:
        pushed = flt.pushdown(dataset.schema)
        predicate = pushed if predicate is None else predicate & pushed
    fragments, opened, groups, total_groups, size, total_size = [], 0, 0, 0, 0, 0
    fmt = pads.ParquetFileFormat()
    for fragment in dataset.get_fragments(filter=by_time):
        opened += 1
        meta = fragment.metadata
        sizes = [_compressed(meta.row_group(i)) for i in range(meta.num_row_groups)]
        total_groups += len(sizes)
        total_size += sum(sizes)
        keep = (row_groups(fragment, predicate) if predicate is not None
                else list(range(len(sizes))))
        if keep:
            groups += len(keep)
            size += sum(sizes[i] for i in keep)
            fragments.append(fmt.make_fragment(
                fragment.path, filesystem=fragment.filesystem,
                partition_expression=fragment.partition_expression, row_groups=keep))
    return ScanPlan(fragments, opened, groups, total_groups, size, total_size)


def _compressed(group: Any) -> int:
    """Compressed bytes of a row group (all its column chunks)."""
    return sum(group.column(j).total_compressed_size for j in range(group.num_columns))


def batches(url: str | os.PathLike[str], *, start: Any = None, end: Any = None,
            columns: Sequence[str] | None = None, filter: Filter | str | None = None,
            batch_rows: int = 1 << 17, files: Sequence[str] | None = None,
            capture: str | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the dataset at ``url`` (see the module docstring); ``columns`` None
    gives every column of the dataset schema (``date`` excluded). Batches never cut an APDU
    and never mix two files; they come in file order, rows in file order. ``files`` and
    ``capture`` limit the scan to some files (full paths) and the rows of one capture."""
    import pyarrow.dataset as pads

    from ..records.filter import compile_filter
    from ..records.reader import whole_apdus

    flt = compile_filter(filter) if isinstance(filter, str) else filter
    wanted = list(columns) if columns is not None else DATASET_SCHEMA.names
    unknown = [c for c in wanted if c not in DATASET_SCHEMA.names and c != PARTITION]
    if unknown:
        raise DatasetError(f"no such column: {', '.join(unknown)}")
    read = list(wanted)
    if flt is not None:
        read += [c for c in (*sorted(flt.columns), "apdu") if c not in read]
    plan = scan_plan(url, start=start, end=end, filter=flt, files=files)
    if not plan.fragments:
        return
    dataset = pads.FileSystemDataset(plan.fragments, arrow_dataset_schema(),
                                     pads.ParquetFileFormat(), plan.fragments[0].filesystem)
    rows = _expression(time_bound(start), time_bound(end))
    if capture is not None:  # exact: every row of an APDU has its capture
        same = pads.field("capture") == capture
        rows = same if rows is None else same & rows
    # read ahead a few batches, not pyarrow's default 16 (x 4 files): memory stays a batch's
    scanner = dataset.scanner(columns=read, filter=rows, batch_size=batch_rows,
                              batch_readahead=2, fragment_readahead=1)
    for _, tagged in itertools.groupby(scanner.scan_batches(), key=lambda t: t.fragment.path):
        parts = (t.record_batch for t in tagged)
        for batch in (whole_apdus(parts) if "apdu" in read else parts):
            if flt is not None:
                batch = flt.apply(batch)
            if batch.num_rows:
                yield batch.select(wanted)


def _nullable(dtype: pa.DataType) -> Any:
    """pandas' nullable dtype for an Arrow type (None: pyarrow's default conversion)."""
    import pandas as pd

    if pa.types.is_integer(dtype):
        return pd.Int64Dtype() if dtype.bit_width == 64 else getattr(
            pd, f"{'U' if pa.types.is_unsigned_integer(dtype) else ''}Int{dtype.bit_width}Dtype")()
    if pa.types.is_boolean(dtype):
        return pd.BooleanDtype()
    if pa.types.is_floating(dtype):
        return pd.Float64Dtype()
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return pd.StringDtype()
    return None


def load(url: str | os.PathLike[str], *, start: Any = None, end: Any = None,
         columns: Sequence[str] | None = None, filter: Filter | str | None = None
         ) -> pd.DataFrame:
    """The dataset (or a plain Parquet file or directory of the schema) as a DataFrame.

    Args:
        url: a dataset directory (path or fsspec URL), or a Parquet file / flat directory
            written by ``iec104 convert -o`` or the proxy (their ``capture`` is the file name).
        start, end: keep rows with ``start <= time < end`` (ISO text, datetime or date; naive
            means UTC); partitions and row groups outside are never read.
        columns: columns to return (default: all of the dataset schema).
        filter: a filter-language expression (README 'Filter language'), applied as the
            data is scanned; whole APDUs are kept.

    Returns:
        pandas DataFrame with nullable dtypes (``Int64``, ``boolean``, ``string``,
        ``Float64``; ``time`` stays ``datetime64[ns, UTC]`` with ``NaT``; ``capture`` is
        categorical).
    """
    if is_dataset(url):
        parts = list(batches(url, start=start, end=end, columns=columns, filter=filter))
        schema = (pa.schema([DATASET_SCHEMA.field(c) if c != PARTITION
                             else partition_schema().field(c) for c in columns])
                  if columns is not None else DATASET_SCHEMA)
        table = pa.Table.from_batches(parts, schema=schema)
    else:
        table = _legacy_table(url, start, end, columns, filter)
    return table.to_pandas(types_mapper=_nullable)


def _legacy_table(url: str | os.PathLike[str], start: Any, end: Any,
                  columns: Sequence[str] | None, filter: Filter | str | None) -> pa.Table:
    """Parquet files without ``capture`` (or with it): one file or a flat directory."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ..records.filter import compile_filter
    from ..records.reader import derive_kind

    flt = compile_filter(filter) if isinstance(filter, str) else filter
    store = Store(url)
    paths = (sorted(p for p in store.fs.glob(f"{store.root}/*.parquet")
                    if not os.path.basename(p).startswith(("_", ".")))
             if store.fs.isdir(store.root) else [store.root])
    lo, hi = time_bound(start), time_bound(end)
    tables = []
    for path in paths:
        with store.fs.open(path, "rb") as fh:
            table = pq.read_table(fh)
        if "kind" not in table.column_names:  # schema version 1
            table = table.append_column("kind", derive_kind(table))
        if "capture" not in table.column_names:
            table = table.add_column(0, DATASET_SCHEMA.field("capture"),
                                     capture_column(table.num_rows, capture_of_file(path)))
        table = table.select([f.name for f in DATASET_SCHEMA if f.name in table.column_names])
        if lo is not None:
            table = table.filter(pc.fill_null(pc.greater_equal(table["time"], lo), False))
        if hi is not None:
            table = table.filter(pc.fill_null(pc.less(table["time"], hi), False))
        if flt is not None:
            table = pa.Table.from_batches([flt.apply(b) for b in table.to_batches()],
                                          schema=table.schema)
        tables.append(table)
    table = pa.concat_tables(tables, promote_options="default") if tables else \
        DATASET_SCHEMA.empty_table()
    return table.select(list(columns)) if columns is not None else table


def connect(url: str | os.PathLike[str], database: duckdb.DuckDBPyConnection | None = None
            ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views ``iec104`` (rows) and ``captures`` (manifest)."""
    import duckdb

    store = Store(url)
    con = database if database is not None else duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # times print and convert as UTC, as everywhere else
    if not store.local:
        con.register_filesystem(store.fs)
    prefix = "" if store.local else f"{store.fs.protocol[0] if isinstance(store.fs.protocol, tuple) else store.fs.protocol}://"
    files = [prefix + f for f in committed_files(store)]
    if files:
        listing = ", ".join(_quote(f) for f in files)
        con.execute(f"CREATE OR REPLACE VIEW iec104 AS SELECT * FROM read_parquet([{listing}], "
                    f"hive_partitioning = true, hive_types = {{'{PARTITION}': DATE}})")
    else:
        empty = arrow_dataset_schema().empty_table()
        con.register("_iec104_empty", empty)
        con.execute("CREATE OR REPLACE VIEW iec104 AS SELECT * FROM _iec104_empty")
    manifest = store.read_manifest()
    con.register("_iec104_captures", manifest)
    con.execute("CREATE OR REPLACE VIEW captures AS SELECT * FROM _iec104_captures")
    return con


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
