"""Analysis of decoded IEC 104 traffic: Parquet storage, loaders and investigations."""

from .schema import COLUMN_NAMES, COLUMNS, SCHEMA, SCHEMA_VERSION
from .storage import ParquetSink, RotatingParquetSink, load, schema_version

__all__ = ["COLUMNS", "COLUMN_NAMES", "SCHEMA", "SCHEMA_VERSION", "ParquetSink",
           "RotatingParquetSink", "load", "schema_version"]
