"""Datasets: many captures as one hive-partitioned Parquet dataset, converted on Dask.

An investigation spans many captures (ring-buffer files, substations, months of logs). A
dataset directory holds them all, readable as it is by pandas, pyarrow, DuckDB, Polars, Dask
and Spark (layout in :mod:`.layout`)::

    from iec104.dataset import convert_many, load, connect
    convert_many(["a.pcap", "b.pcap"], "ds")           # idempotent, resumable
    df = load("ds", start="2024-03-01 08:00", end="2024-03-01 09:00", columns=[...])
    connect("ds").sql("SELECT capture, count(*) FROM iec104 GROUP BY ALL").show()

Modules: :mod:`.layout` (directory layout, the ``capture`` column), :mod:`.store` (local or
fsspec storage, the manifest, recovery), :mod:`.write` (one capture -> its files: the Dask
task), :mod:`.run` (many captures on a Dask cluster, the manifest's commits), :mod:`.read`
(pandas with pushdown, record batches, DuckDB views), :mod:`.summary` (a dataset's summary
through DuckDB, in bounded memory).
"""

from .layout import CAPTURE_FIELD, DATASET_SCHEMA, DATASET_VERSION, DatasetError, capture_name
from .read import batches, connect, is_dataset, load
from .run import convert_many, default_workers
from .write import Converted, Failed, Options, Skipped, convert_capture

__all__ = ["CAPTURE_FIELD", "DATASET_SCHEMA", "DATASET_VERSION", "Converted", "DatasetError", "Failed",
           "Options", "Skipped", "batches", "capture_name", "connect", "convert_capture",
           "convert_many", "default_workers", "is_dataset", "load"]
