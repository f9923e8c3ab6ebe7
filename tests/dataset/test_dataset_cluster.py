"""The local Dask cluster of ``convert --dataset --workers N`` (iec104.dataset.run).

Real worker processes: the settings of :data:`LOCAL_CLUSTER_CONFIG` must hold inside them
(the allocator's environment, no statistical profiler, the slower housekeeping), this
process's environment must not keep what the nanny would have set, and the tasks must start
largest capture first.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from iec104.dataset.run import LOCAL_CLUSTER_CONFIG, convert_many, dask_client, largest_first
from tests.support import cli

REPO = Path(__file__).resolve().parents[2]
CAPTURES = sorted([*(REPO / "captures").glob("*.pcap*"),
                   *(REPO / "captures" / "public").glob("*.pcap*")])


ALLOCATOR = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MIMALLOC_PURGE_DELAY")


def _probe(dask_worker: Any) -> dict[str, Any]:
    """What a worker process runs with (runs in the worker)."""
    import dask
    import pyarrow as pa

    return {
        "pid": os.getpid(),
        "allocator": {key: os.environ.get(key) for key in ALLOCATOR},
        "pool": pa.default_memory_pool().backend_name,
        "profiling": "profile" in dask_worker.periodic_callbacks,
        "tick": dask.config.get("distributed.admin.tick.interval"),
        "memory_check": dask.config.get("distributed.worker.memory.monitor-interval"),
        "threads": dask_worker.state.nthreads,
    }


def test_local_workers_run_with_the_cluster_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ALLOCATOR:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    nanny_keys = [*ALLOCATOR, "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED"]
    before = {key: os.environ.get(key) for key in nanny_keys}
    with dask_client(2, None) as client:
        seen = list(client.run(_probe).values())
    assert len(seen) == 2
    assert len({s["pid"] for s in seen} | {os.getpid()}) == 3  # two processes of their own
    allocator = {key: LOCAL_CLUSTER_CONFIG[f"distributed.nanny.pre-spawn-environ.{key}"]
                 for key in ALLOCATOR}
    assert allocator == {"MALLOC_TRIM_THRESHOLD_": "268435456",
                         "MALLOC_MMAP_THRESHOLD_": "268435456", "MIMALLOC_PURGE_DELAY": "-1"}
    for s in seen:
        assert s == {**s, "allocator": allocator, "profiling": False, "threads": 1,
                     "tick": LOCAL_CLUSTER_CONFIG["distributed.admin.tick.interval"],
                     "memory_check": LOCAL_CLUSTER_CONFIG[
                         "distributed.worker.memory.monitor-interval"]}
    # the nanny writes the workers' environment into this process too: undone (and what
    # was there before, OMP_NUM_THREADS here, is back)
    assert {key: os.environ.get(key) for key in nanny_keys} == before


def test_a_cluster_given_by_address_is_not_reconfigured() -> None:
    """--scheduler: the settings are the cluster owner's; only the local cluster gets ours."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, \
            dask_client(None, cluster.scheduler_address) as client:
        (seen,) = client.run(_probe).values()
    assert seen["profiling"] is True


def test_largest_first_orders_local_files_by_size(tmp_path: Path) -> None:
    sizes = {"a": 10, "b": 300, "c": 20}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    local = [str(tmp_path / n) for n in ("a", "b", "c")]
    urls = ["s3://bucket/x.pcap", "file:///y.pcap"]
    missing = str(tmp_path / "missing")
    assert largest_first([urls[0], *local, missing, urls[1]]) == [
        str(tmp_path / "b"), str(tmp_path / "c"), str(tmp_path / "a"),
        urls[0], missing, urls[1]]


def test_tasks_start_largest_first(tmp_path: Path) -> None:
    """One worker of one thread runs the tasks in the order they start: its results come
    back largest capture first."""
    assert len({p.stat().st_size for p in CAPTURES}) == len(CAPTURES) >= 5
    sources = sorted(map(str, CAPTURES))  # by name: not the order of their sizes
    results = convert_many(sources, str(tmp_path / "ds"), workers=1)
    assert [r.source for r in results] == sorted(sources, key=os.path.getsize, reverse=True)


def test_another_cluster_on_the_dashboard_port_gives_no_warning(tmp_path: Path) -> None:
    """The local scheduler's HTTP routes take a free port: Dask's 8787 held by another
    cluster (or anything) used to print four lines of UserWarning above the result."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError as exc:  # held already: as good
        assert exc.errno == errno.EADDRINUSE
    try:
        proc = cli.run("convert", REPO / "captures" / "station.pcap", "--dataset",
                       tmp_path / "ds", "--workers", "1")
    finally:
        holder.close()
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "8787" not in proc.stderr
    assert proc.stderr.startswith("iec104 convert: 1 captures converted")
