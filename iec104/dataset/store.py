"""A dataset directory on a local disk or behind an fsspec URL, and its manifest.

Theory of operation
-------------------
Files are always written on a local disk first and then *published*, so a reader never sees
a file without its footer:

* on a local file system (a path or a ``file://`` URL) files are written under
  ``DIR/_staging/`` and published by ``os.replace`` (atomic on one file system) after an
  ``fsync``; the directory is synced after the rename;
* on any other fsspec file system (``s3://bucket/ds``, ``gcs://``...) files are written in a
  local temporary directory and uploaded to their final name: object stores make an object
  visible only once its upload is complete.

The manifest ``DIR/_captures.parquet`` (:data:`MANIFEST_SCHEMA`) is rewritten whole, the same
way, when captures have completed (:mod:`iec104.dataset.run` spaces the writes: 'Commits');
it is the dataset's commit record: a data file whose digest no manifest row names is an
orphan of an interrupted run, which :meth:`Store.recover` removes before a new run (a
recorder's log segments are never orphans: they are in no manifest), and readers
(:mod:`iec104.dataset.read`) read only the files the manifest lists, plus every recorder log
segment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..records.sink import _sync_directory
from .layout import MANIFEST, PARTITION, STAGING, data_glob, is_capture_file

_TS = pa.timestamp("ns", tz="UTC")

MANIFEST_SCHEMA = pa.schema([
    pa.field("capture", pa.string()),      # the capture column's value, <name>@<digest>
    pa.field("source", pa.string()),       # path or URL the capture was converted from
    pa.field("sha256", pa.string()),       # content digest (hex, 64 characters)
    pa.field("size", pa.int64()),          # bytes
    pa.field("rows", pa.int64()),
    pa.field("apdus", pa.int64()),
    pa.field("streams", pa.int64()),       # TCP connections decoded
    pa.field("start", _TS),                # first and last row time (null: no row with a time)
    pa.field("end", _TS),
    pa.field("files", pa.list_(pa.string())),  # data files, relative to the dataset
    pa.field("problem", pa.string()),      # damage found reading the capture (null: none)
    pa.field("options", pa.string()),      # decoding options (ports, heuristic, profile)
    pa.field("tool_version", pa.string()),
    pa.field("schema_version", pa.string()),
    pa.field("converted", _TS),            # when the conversion finished
])
"""One row per capture in the dataset."""


class Store:
    """The dataset at ``url`` (a local path or an fsspec URL)."""

    def __init__(self, url: str | os.PathLike[str]) -> None:
        from fsspec.core import url_to_fs
        from fsspec.implementations.local import LocalFileSystem

        self.url = os.fspath(url)
        self.fs, root = url_to_fs(self.url)
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = str(root).rstrip("/") or "/"

    def path(self, relative: str) -> str:
        """The full path (on :attr:`fs`) of a file of the dataset."""
        return f"{self.root}/{relative}"

    def exists(self) -> bool:
        return bool(self.fs.isdir(self.root))

    def ensure(self) -> None:
        """Create the dataset directory (and its parents) if needed."""
        self.fs.makedirs(self.root, exist_ok=True)

    # -- local staging and publishing ---------------------------------------------------

    def staging(self) -> Path:
        """A new, empty local directory to write files in before :meth:`publish`."""
        if self.local:
            path = Path(self.root) / STAGING / uuid.uuid4().hex
            path.mkdir(parents=True)
            return path
        return Path(tempfile.mkdtemp(prefix="iec104-dataset-"))

    def publish(self, local: Path, relative: str) -> None:
        """Give the complete local file ``local`` its place ``relative`` in the dataset."""
        target = self.path(relative)
        if self.local:
            with open(local, "rb") as fh:
                os.fsync(fh.fileno())
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, target)
            _sync_directory(Path(target).parent)
        else:
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(local), target)
            local.unlink()

    def discard_staging(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def tidy(self) -> None:
        """Remove the staging directory once empty (Dask's reader trips over any ``_``
        directory)."""
        if self.local:
            try:
                (Path(self.root) / STAGING).rmdir()
            except OSError:
                pass

    def remove(self, relatives: list[str]) -> None:
        """Delete data files (missing ones are fine)."""
        for relative in relatives:
            try:
                self.fs.rm_file(self.path(relative))
            except FileNotFoundError:
                pass

    def data_files(self) -> list[str]:
        """Every published data file, relative to the dataset, sorted."""
        found = self.fs.glob(data_glob(self.root))
        prefix = self.root.rstrip("/") + "/"
        return sorted(str(p).removeprefix(prefix)
                      for p in found)

    def partitions(self) -> bool:
        """Whether the directory has a ``date=`` partition."""
        return bool(self.fs.glob(f"{self.root}/{PARTITION}=*"))

    # -- the manifest ---------------------------------------------------------------------

    def read_manifest(self) -> pa.Table:
        """The manifest (empty if there is none yet)."""
        path = self.path(MANIFEST)
        if not self.fs.exists(path):
            return MANIFEST_SCHEMA.empty_table()
        with self.fs.open(path, "rb") as fh:
            # ParquetFile, not read_table: read_table imports pyarrow.dataset and pandas
            # (0.3 s of every `iec104 sql` start)
            table = pq.ParquetFile(fh).read()
        return table.select([f.name for f in MANIFEST_SCHEMA if f.name in table.column_names]) \
            .cast(pa.schema([f for f in MANIFEST_SCHEMA if f.name in table.column_names]))

    def write_manifest(self, rows: list[dict[str, Any]]) -> None:
        """Replace the manifest by ``rows`` (dicts of :data:`MANIFEST_SCHEMA`)."""
        table = pa.Table.from_pylist(sorted(rows, key=lambda r: (r["source"], r["capture"])),
                                     schema=MANIFEST_SCHEMA)
        staging = self.staging()
        try:
            local = staging / MANIFEST
            pq.write_table(table, local, compression="zstd")
            self.publish(local, MANIFEST)
        finally:
            self.discard_staging(staging)

    def recover(self, manifest: pa.Table) -> list[str]:
        """Remove what an interrupted run left: staging files, and data files that no
        manifest row lists (a capture published but not committed, or replaced but not yet
        deleted). Returns the data files removed."""
        if self.local:
            shutil.rmtree(Path(self.root) / STAGING, ignore_errors=True)
        listed = {f for files in manifest.column("files").to_pylist() for f in files or ()}
        orphans = [f for f in self.data_files() if f not in listed and is_capture_file(f)]
        self.remove(orphans)
        return orphans

