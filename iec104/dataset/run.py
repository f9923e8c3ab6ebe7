"""Convert many captures into a dataset, one Dask task per capture.

Theory of operation
-------------------
:func:`convert_many` is the only writer of the manifest. It first removes what an interrupted
run left (:meth:`Store.recover`), reads the manifest, and submits one
:func:`~iec104.dataset.write.convert_capture` task per capture with the digests already in the
dataset, largest local capture first. The tasks run on a Dask cluster: a local one of
``workers`` processes (one thread each: decoding is pure Python, threads would share one GIL;
:data:`LOCAL_CLUSTER_CONFIG` keeps its allocator and its housekeeping from taking CPU from the
decoding), an existing one at ``scheduler``, or, with ``workers=0``, in this process. As each
task completes, in any order, its result is taken in:

* :class:`Converted`: its row replaces any row of the same ``source`` (the capture changed)
  or is added. A second copy of content converted in the same run counts as skipped.
* :class:`Skipped`, :class:`Failed`: nothing to write.

Commits
-------
The manifest is rewritten whole (atomically, :meth:`Store.write_manifest`), which costs time
in proportion to its rows: written after every capture, thousands of small captures cost
O(N**2) (2,000 captures of 10 APDUs: half the run's CPU, bench/README.md). So it is written
when a result arrives and the previous write is at least :data:`COMMIT_SECONDS` old, and at
least nine times as old as that write took (writing stays under a tenth of the run whatever
the manifest's size), and once more at the end of the run (also when it is interrupted by an
exception): one write commits every capture that arrived since the last. The files of a
replaced row are deleted after the write that drops the row.

A kill at any moment leaves the committed captures readable; files published by a task whose
result was never committed (it arrived after the last write) are orphans that the next run
removes before converting that capture again. So a rerun of the same command completes the
dataset and gives the same rows; a kill costs at most the conversions that completed since
the last write.

The workers must reach the captures and the dataset under the same names (a shared file system
or an fsspec URL such as ``s3://bucket/ds``); results travel back to the caller, rows never do.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from .store import Store
from .write import Converted, Failed, Options, Result, Skipped, convert_capture

__all__ = ["COMMIT_SECONDS", "LOCAL_CLUSTER_CONFIG", "convert_many", "dask_client",
           "default_workers", "largest_first"]

COMMIT_SECONDS = 0.2
"""Least time between two writes of the manifest in a run (see 'Commits' above)."""
_WRITE_SHARE = 0.1  # of a run's time, at most, for writing the manifest (see 'Commits')

_ENVIRON = "distributed.nanny.pre-spawn-environ."  # a worker's environment, before it starts

LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    # Memory a worker gives back to the kernel costs a page fault when it is taken again
    # (4 us each on a VM that hands freed pages to its host). The nanny's default 64 KiB
    # trim threshold also fixed glibc's mmap threshold, so every column buffer of a batch
    # was an mmap + munmap (3.4x the faults, 20 % more CPU per capture); instead glibc and
    # mimalloc (pyarrow's pool) keep what they freed for the next batch: 4x fewer faults
    # than `iec104 convert`, two workers 8-16 % less CPU, peak RSS +35 MiB per worker
    # (bench/README.md)
    _ENVIRON + "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
    _ENVIRON + "MALLOC_MMAP_THRESHOLD_": str(256 << 20),
    _ENVIRON + "MIMALLOC_PURGE_DELAY": "-1",  # never
    # the rest run in every worker and in this process between the tasks' work, on the CPUs
    # the workers decode on (idle: 33 ms/s per worker, 48 ms/s here; with these 3-7 ms/s):
    "distributed.worker.profile.enabled": False,  # statistical profile every 10 ms: for a
    # dashboard, and there is none
    "distributed.admin.tick.interval": "1s",  # event-loop health check (default 20 ms)
    "distributed.admin.system-monitor.interval": "5s",  # the dashboard's host metrics
    "distributed.worker.memory.monitor-interval": "1s",  # spill/pause/terminate checks: a
    # task holds one batch, never results, so a runaway is still caught within a second
}
"""The Dask settings of the local cluster of ``--workers N`` (measured in bench/README.md)."""


def default_workers() -> int:
    """The machine's cores (the default of ``--workers``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def convert_many(sources: Sequence[str], url: str, *, options: Options | None = None,
                 workers: int | None = None, scheduler: str | None = None,
                 on_result: Callable[[Result], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> list[Result]:
    """Convert ``sources`` (paths or URLs of captures) into the dataset at ``url``.

    Args:
        workers: local Dask worker processes (None: :func:`default_workers`; 0: no cluster,
            every capture in this process). Ignored with ``scheduler``.
        scheduler: address of an existing Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
        on_result: called in this process as each capture's result arrives (a converted
            capture is committed by the next manifest write: see 'Commits' above; every
            one by the time this returns).
        clock: seconds (monotonic) that space the manifest writes.

    Returns:
        The results, in order of completion.
    """
    options = options if options is not None else Options()
    with dask_client(workers, scheduler) as client:  # first: an unreachable one writes nothing
        store = Store(url)
        store.ensure()
        table = store.read_manifest()
        store.recover(table)
        manifest = _Manifest(store, table.to_pylist(), clock)
        known = frozenset(manifest.digests)
        results: list[Result] = []
        try:
            for result in _run(client, sources, store.url, known, options):
                if isinstance(result, Converted):
                    result = manifest.add(result)
                manifest.commit()
                results.append(result)
                if on_result is not None:
                    on_result(result)
        except BaseException:
            # keep what arrived whole (a rerun need not convert it again); the exception
            # that stopped the run is the one to see, not a failed write's
            with suppress(Exception):
                manifest.commit(force=True)
            raise
        manifest.commit(force=True)
        store.tidy()
    return results


class _Manifest:
    """The manifest's rows in a run, and when to write them (see 'Commits' above)."""

    def __init__(self, store: Store, rows: list[dict[str, Any]],
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self.rows = {r["source"]: r for r in rows}  # a source has one row (add replaces it)
        self.digests = {r["sha256"] for r in rows}
        self.uncommitted = 0  # rows added since the last write
        self.replaced: list[str] = []  # files of replaced rows, deleted after the write
        self.due = clock()  # the time from which the next write may start

    def add(self, result: Converted) -> Converted | Skipped:
        """Take in a converted capture's row (or :class:`Skipped`: its content is in)."""
        entry = result.entry
        if entry["sha256"] in self.digests:  # a second copy converted in the same run
            return Skipped(result.source, entry["sha256"])
        old = self.rows.pop(result.source, None)
        if old is not None:  # the capture changed
            self.digests.discard(old["sha256"])
            self.replaced.extend(old["files"])
        self.rows[result.source] = entry
        self.digests.add(entry["sha256"])
        self.uncommitted += 1
        return result

    def commit(self, force: bool = False) -> None:
        """Write the manifest if rows are uncommitted and it is due (or ``force``), then
        delete the files of the rows it replaced."""
        if not self.uncommitted or (not force and self.clock() < self.due):
            return
        start = self.clock()
        self.store.write_manifest(list(self.rows.values()))
        self.uncommitted = 0
        if self.replaced:
            kept = {f for r in self.rows.values() for f in r["files"]}
            self.store.remove([f for f in self.replaced if f not in kept])
            self.replaced = []
        end = self.clock()
        self.due = end + max(COMMIT_SECONDS, (end - start) * (1 / _WRITE_SHARE - 1))


def _run(client: Any, sources: Sequence[str], url: str, known: frozenset[str],
         options: Options) -> Iterator[Result]:
    """Results of the tasks in order of completion (``client`` None: in this process)."""
    if client is None:
        for source in sources:
            yield convert_capture(source, url, known, options)
        return
    from distributed import as_completed

    # submitted one by one, the tasks start in this order (largest first, below)
    futures = {client.submit(convert_capture, source, url, known, options, pure=False):
               source for source in largest_first(sources)}
    for future in as_completed(futures):
        try:
            yield future.result()
        except Exception as exc:  # noqa: BLE001 -- a worker died or the task raised
            yield Failed(futures[future], f"{futures[future]}: task failed: "
                         f"{type(exc).__name__}: {exc}")


def largest_first(sources: Sequence[str]) -> list[str]:
    """The order the tasks are submitted in: the largest local files first (the longest
    tasks then never end the run on one busy worker while the others idle); URLs (a size is
    a request each) keep their place, after the local files."""
    def size(source: str) -> int:
        try:
            return os.stat(source).st_size if "://" not in source else -1
        except OSError:
            return -1  # unreadable: its task says why
    return sorted(sources, key=size, reverse=True)


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """The Dask client :func:`convert_many` submits to: of the cluster at ``scheduler``, or
    of a local cluster of ``workers`` processes of one thread (None: the machine's cores)
    with :data:`LOCAL_CLUSTER_CONFIG`; ``workers=0``: None (convert in this process)."""
    if scheduler is None and workers == 0:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    import dask

    # quiet: the cluster's own logging would bury the progress bar
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with dask.config.set(LOCAL_CLUSTER_CONFIG), _nanny_environ_undone(), \
            LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                         processes=True, dashboard_address=None,
                         # its HTTP routes (health, metrics) even without a dashboard: on
                         # a free port, not 8787 (another cluster there gave a warning)
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


@contextmanager
def _nanny_environ_undone() -> Iterator[None]:
    """Undo, when the cluster is gone, what the nanny writes into this process's environment
    before it spawns a worker (its pre-spawn environment and PYTHONHASHSEED): a process
    started later here must not inherit the workers' allocator settings."""
    import dask

    keys = [*dask.config.get(_ENVIRON.rstrip(".")), "PYTHONHASHSEED"]
    saved = {key: os.environ.get(key) for key in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
