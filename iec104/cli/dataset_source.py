"""A dataset directory as the SOURCE of ``iec104 read``, ``summary`` and ``report``.

``--start``/``--end`` select a time range: on a dataset they skip whole partitions and row
groups (:mod:`iec104.dataset.read`); on a capture or Parquet file they drop rows outside as
they are decoded. ``-Y`` is applied batch by batch as the dataset is scanned.

* ``read DIR`` prints the rows day by day, capture by capture (streams and APDUs are numbered
  within each capture: ``-V`` shows which capture a row came from);
* ``summary DIR`` runs in bounded memory (:mod:`iec104.dataset.summary`);
* ``report DIR`` loads the selected rows into memory (select with ``--start``/``--end``/``-Y``
  on big datasets) and numbers the streams across the dataset in order of ``(capture,
  stream)``, so that the investigations never merge two captures' connections.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

from . import CliError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..dissectors.filter import Filter


def add_range_options(p: argparse.ArgumentParser) -> None:
    """``--start`` and ``--end``."""
    p.add_argument("--start", metavar="TIME", help="only rows at or after TIME (ISO 8601, "
                   "UTC unless it has an offset, e.g. 2024-03-01T08:00); on a dataset, "
                   "partitions and row groups before it are not read")
    p.add_argument("--end", metavar="TIME", help="only rows before TIME (as --start)")


def time_range(args: argparse.Namespace) -> tuple[dt.datetime | None, dt.datetime | None]:
    from ..dataset.read import time_bound

    out = []
    for option in ("start", "end"):
        try:
            out.append(time_bound(getattr(args, option, None)))
        except ValueError:
            raise CliError(f"--{option}: {getattr(args, option)!r} is not an ISO date/time "
                           "such as 2024-03-01T08:00 or 2024-03-01") from None
    return out[0], out[1]


def dataset_url(name: str, args: argparse.Namespace) -> str | None:
    """``name`` if it is a dataset (capture options refused), else None."""
    from ..dataset import is_dataset

    if not is_dataset(name):
        return None
    if args.profile or args.ports or args.heuristic is not None:
        raise CliError(f"{name}: --port, --heuristic and --profile apply to captures, not "
                       "to a dataset (it is decoded already)")
    return name


def in_range(batches: Iterator[pa.RecordBatch], args: argparse.Namespace
             ) -> Iterator[pa.RecordBatch]:
    """Rows of a capture or Parquet file within ``--start``/``--end``."""
    import pyarrow.compute as pc

    start, end = time_range(args)
    if start is None and end is None:
        yield from batches
        return
    for batch in batches:
        mask = None
        for bound, kernel in ((start, pc.greater_equal), (end, pc.less)):
            if bound is not None:
                cond = pc.fill_null(kernel(batch.column("time"), bound), False)
                mask = cond if mask is None else pc.and_(mask, cond)
        yield batch.filter(mask)


def dataset_batches(url: str, args: argparse.Namespace, batch_rows: int
                    ) -> Iterator[pa.RecordBatch]:
    from ..dataset import batches

    start, end = time_range(args)
    yield from batches(url, start=start, end=end, batch_rows=batch_rows)


def dataset_frame(url: str, args: argparse.Namespace, flt: Filter | None) -> pd.DataFrame:
    """The selected rows for the analyzer: records schema, ``stream`` and ``apdu`` numbered
    across the dataset in order of (capture, stream) and (capture, apdu)."""
    import pyarrow as pa

    from ..analyzer.schema import SCHEMA
    from ..dataset import batches

    start, end = time_range(args)
    table = pa.Table.from_batches(
        list(batches(url, start=start, end=end, filter=flt)),
        schema=pa.schema([pa.field("capture", pa.dictionary(pa.int32(), pa.string())),
                          *SCHEMA]))
    if table.num_rows:
        capture = table.column("capture").cast(pa.string())
        for column in ("stream", "apdu"):
            key = pa.Table.from_arrays([capture, table.column(column)], ["c", "v"])
            pairs = key.group_by(["c", "v"]).aggregate([]).sort_by([("c", "ascending"),
                                                                      ("v", "ascending")])
            pairs = pairs.append_column("n", pa.array(range(pairs.num_rows),
                                                      SCHEMA.field(column).type))
            joined = key.append_column("i", pa.array(range(key.num_rows))).join(
                pairs, ["c", "v"], join_type="left outer").sort_by("i")
            table = table.set_column(table.schema.get_field_index(column), column,
                                     joined.column("n").cast(SCHEMA.field(column).type))
    return table.select(SCHEMA.names).to_pandas()


def summarize(args: argparse.Namespace, url: str, flt: Filter | None) -> str:
    from ..dataset.summary import summary_text

    start, end = time_range(args)
    return summary_text(url, start=start, end=end, filter=flt, max_rows=args.max_rows)
