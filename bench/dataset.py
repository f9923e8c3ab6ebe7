"""Dataset benchmark: ``iec104 convert --dataset`` on Dask, and questions via ``iec104 sql``.

1. Conversion. Generates ``--captures`` captures of ``--apdus`` APDUs each (bench/dissect.py's
   generator, two connections per capture, a different seed per capture) in
   ``bench/_work/dataset/`` (reused), then runs, each as a child process whose wall time, CPU
   seconds (the child and its descendants) and peak RSS (the process tree) are measured:

   * ``iec104 convert CAPTURES --dataset DIR --workers 1`` and ``--workers 2`` (a fresh DIR);
   * a shell loop of single converts: ``for f; do iec104 convert $f -o $f.parquet; done``;
   * a shell loop of ``tshark -T fields`` (the fields of bench/dissect.py), if installed.

   The table gives APDUs/s, and the ratio to one worker; the scaling efficiency of two
   workers is (time with 1 / time with 2) / 2, from the same run. It needs two free CPUs to
   mean anything: ``os.getloadavg()`` before the run is printed with it. For the dataset runs
   the CPU seconds are also split by process (sampled from /proc: the CLI process, which
   holds the client, the scheduler and the nannies, and each Dask worker), with the
   machine's idle, iowait and steal seconds over the run (/proc/stat): where the time of
   two workers goes.
2. Questions. Builds a dataset of at least ``--query-rows`` rows from the converted one
   (its files copied with ``time`` shifted by whole days and new ``capture`` names: the same
   traffic on later days, every file a real conversion's) and times three typical questions
   with ``iec104 sql`` (a one-hour time range, commands per hour per source, the busiest
   connections) against loading everything into pandas and answering them there, plus
   ``iec104 summary`` of the whole dataset (peak RSS).

Usage::

    python bench/dataset.py                                  # 64 x 100k APDUs, 50M rows
    python bench/dataset.py --captures 16 --apdus 25000 --query-rows 5000000
    python bench/dataset.py --skip tshark,pandas,summary
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dissect import TSHARK_FIELDS, WORK, generate, measure

DATA = WORK / "dataset"
IEC104 = [sys.executable, "-m", "iec104.cli"]


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the child and its descendants, peak RSS MiB)."""
    wall, cpu, rss, _ = measure(cmd)
    print(f"  {wall:8.1f} s  {cpu:8.1f} CPU-s  {rss:7.0f} MB  {' '.join(cmd)[:100]}", flush=True)
    return wall, cpu, rss


_CLK = os.sysconf("SC_CLK_TCK")
_MACHINE = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _machine_seconds() -> dict[str, float]:
    """The machine's CPU seconds by state since boot (/proc/stat, all CPUs)."""
    with open("/proc/stat") as fh:
        values = fh.readline().split()[1:1 + len(_MACHINE)]
    return {k: int(v) / _CLK for k, v in zip(_MACHINE, values)}


class ProcessCpu:
    """CPU seconds of each process below this one while a run lasts (``with``): sampled from
    /proc/PID/stat every 0.1 s, so the last 0.1 s of a process that exits is missed, and the
    machine's idle / iowait / steal seconds over the run (/proc/stat)."""

    def __init__(self) -> None:
        import threading

        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, CPU seconds)
        self.machine: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ProcessCpu:
        self._before = _machine_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        after = _machine_seconds()
        self.machine = {k: after[k] - self._before[k] for k in _MACHINE}

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            parents: dict[int, int] = {}
            stats: dict[int, list[bytes]] = {}
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat", "rb") as fh:
                            fields = fh.read().rsplit(b")", 1)[1].split()
                    except OSError:
                        continue
                    parents[int(entry)] = int(fields[1])
                    stats[int(entry)] = fields
            for pid, fields in stats.items():
                up = parents.get(pid)
                while up is not None and up != os.getpid():
                    up = parents.get(up)
                if up is None:
                    continue
                role = self.cpu.get(pid, ("", 0.0))[0] or _role(pid)
                self.cpu[pid] = (role, (int(fields[11]) + int(fields[12])) / _CLK)

    def by_role(self) -> dict[str, list[float]]:
        """CPU seconds of the CLI process and of each Dask worker process."""
        roles: dict[str, list[float]] = {}
        for role, seconds in self.cpu.values():
            if role:
                roles.setdefault(role, []).append(seconds)
        return roles


def _role(pid: int) -> str:
    """"cli" (the iec104 command), "worker" (a Dask worker process), "" (anything else)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return ""
    if b"multiprocessing.spawn" in cmdline:
        return "worker"
    return "cli" if b"iec104.cli" in cmdline else ""


def captures(count: int, apdus: int) -> tuple[list[Path], int]:
    """The captures (generated once); their total APDU count."""
    folder = DATA / f"caps-{count}x{apdus}"
    folder.mkdir(parents=True, exist_ok=True)
    paths, total = [], 0
    for n in range(count):
        path = folder / f"ring_{n:05d}.pcap"
        if not path.exists():
            generate(path.with_suffix(".tmp"), apdus, connections=2, seed=1000 + n)
            path.with_suffix(".tmp").replace(path)
        paths.append(path)
        total += apdus
    return paths, total


def conversion(paths: list[Path], apdus: int, skip: set[str]) -> list[dict[str, Any]]:
    rows = []
    for workers in (1, 2):
        out = DATA / f"ds-w{workers}"
        shutil.rmtree(out, ignore_errors=True)
        with ProcessCpu() as per:
            wall, cpu, rss = run([*IEC104, "convert", *map(str, paths), "--dataset", str(out),
                                  "--workers", str(workers), "-q"])
        roles, machine = per.by_role(), per.machine
        split = (f"{sum(roles.get('cli', [0])):.1f} / "
                 + " + ".join(f"{c:.1f}" for c in sorted(roles.get("worker", []))))
        print(f"    CPU-s: CLI (client, scheduler, nannies) / each worker: {split}; machine: "
              + ", ".join(f"{k} {machine[k]:.1f} s" for k in ("idle", "iowait", "steal"))
              + f" (of {os.cpu_count()} CPUs x {wall:.1f} s)", flush=True)
        rows.append({"tool": f"convert --dataset --workers {workers}", "seconds": wall,
                     "cpu": cpu, "rss": rss, "split": split, "idle": machine["idle"]})
    singles = DATA / "singles"
    shutil.rmtree(singles, ignore_errors=True)
    singles.mkdir()
    loop = ('for f in "$@"; do "$PY" -m iec104.cli convert "$f" -o '
            f'"{singles}/$(basename "$f").parquet" -q || exit 1; done')
    wall, cpu, rss = run(["env", f"PY={sys.executable}", "bash", "-c", loop, "loop",
                          *map(str, paths)])
    rows.append({"tool": "shell loop of convert -o", "seconds": wall, "cpu": cpu, "rss": rss})
    if "tshark" not in skip and shutil.which("tshark"):
        fields = " ".join(f"-e {f}" for f in TSHARK_FIELDS)
        loop = ('for f in "$@"; do tshark -n -r "$f" -Y iec60870_104 -T fields -E '
                f'occurrence=a {fields} > /dev/null || exit 1; done')
        wall, cpu, rss = run(["bash", "-c", loop, "loop", *map(str, paths)])
        rows.append({"tool": "shell loop of tshark -T fields", "seconds": wall, "cpu": cpu,
                     "rss": rss})
    for row in rows:
        row["rate"] = apdus / row["seconds"]
    return rows


def big_dataset(source: Path, min_rows: int) -> tuple[Path, int]:
    """A dataset of at least ``min_rows`` rows: copies of ``source``'s captures on later
    days (reused when it exists with enough rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from iec104.dataset.layout import DATASET_SCHEMA, data_file, with_capture
    from iec104.dataset.store import Store

    out = DATA / f"ds-big-{min_rows}"
    store = Store(str(out))
    if out.exists():
        have = store.read_manifest()
        if have.num_rows:
            return out, int(pc.sum(have.column("rows")).as_py())
    shutil.rmtree(out, ignore_errors=True)
    manifest = Store(str(source)).read_manifest().to_pylist()
    per_copy = sum(r["rows"] for r in manifest)
    copies = -(-min_rows // per_copy)
    rows: list[dict[str, Any]] = []
    for k in range(copies):
        shift = dt.timedelta(days=k)
        for entry in manifest:
            digest = f"{entry['sha256'][:40]}{k:024x}"
            name = f"{entry['capture']}+{k}d"
            files = []
            for rel in entry["files"]:
                table = pq.read_table(source / rel)
                time_ = pc.add(table.column("time"), pa.scalar(shift))
                table = table.set_column(1, "time", time_)
                table = table.drop_columns(["capture"])
                batches = [with_capture(b, name) for b in table.to_batches(65536)]
                day = dt.date.fromisoformat(rel.split("/")[0].split("=")[1]) + shift
                target = data_file(digest, day, len(files))
                (out / target).parent.mkdir(parents=True, exist_ok=True)
                with pq.ParquetWriter(out / target, DATASET_SCHEMA, compression="zstd") as w:
                    for b in batches:
                        w.write_batch(b)
                files.append(target)
            rows.append({**entry, "capture": name, "sha256": digest, "files": files,
                         "start": entry["start"] + shift, "end": entry["end"] + shift})
    store.write_manifest(rows)
    return out, per_copy * copies


QUESTIONS = {
    "one hour: last value per point": (
        "SELECT ca, ioa, arg_max(value, time) AS v FROM iec104 WHERE time >= '{h0}' AND "
        "time < '{h1}' AND value IS NOT NULL GROUP BY ALL"),
    "commands per hour per source": (
        "SELECT date_trunc('hour', time) AS hour, src, count(*) FROM iec104 WHERE "
        "type_id BETWEEN 45 AND 69 GROUP BY ALL"),
    "busiest connections": (
        "SELECT capture, stream, count(*) AS n FROM iec104 GROUP BY ALL ORDER BY n DESC "
        "LIMIT 10"),
}

_PANDAS = r"""
import sys, pandas as pd
# only the columns the three questions need: everything would not fit (50 M rows x 40 columns)
df = pd.read_parquet(sys.argv[1], columns=["time", "ca", "ioa", "value", "type_id", "src",
                                           "capture", "stream"])
h0, h1 = pd.Timestamp(sys.argv[2]), pd.Timestamp(sys.argv[3])
w = df[(df.time >= h0) & (df.time < h1) & df.value.notna()]
a = w.sort_values("time").groupby(["ca", "ioa"]).value.last()
c = df[df.type_id.between(45, 69)]
b = c.groupby([c.time.dt.floor("h"), "src"]).size()
d = df.groupby(["capture", "stream"], observed=True).size().nlargest(10)
print(len(a), len(b), len(d))
"""


def questions(ds: Path, skip: set[str]) -> list[dict[str, Any]]:
    from iec104.dataset import connect

    (first,), = connect(ds).sql("SELECT min(time) FROM iec104").fetchall()
    h0 = (first + dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    h1 = h0 + dt.timedelta(hours=1)
    stamps = {"h0": h0.strftime("%Y-%m-%d %H:%M:%S"), "h1": h1.strftime("%Y-%m-%d %H:%M:%S")}
    rows = []
    for title, query in QUESTIONS.items():
        wall, cpu, rss = run([*IEC104, "sql", str(ds), query.format(**stamps), "--max-rows", "1"])
        con = connect(ds)  # the query alone, without starting a process: best of 3
        inside = []
        for _ in range(3):
            started = time.perf_counter()
            con.sql(query.format(**stamps)).fetchall()
            inside.append(time.perf_counter() - started)
        rows.append({"what": f"iec104 sql: {title}", "seconds": wall, "cpu": cpu, "rss": rss,
                     "query": min(inside)})
    if "pandas" not in skip:
        wall, cpu, rss = run([sys.executable, "-c", _PANDAS, str(ds), h0.isoformat(),
                              h1.isoformat()])
        rows.append({"what": "pandas: read the 8 columns, answer all three", "seconds": wall,
                     "cpu": cpu, "rss": rss})
    if "summary" not in skip:
        wall, cpu, rss = run([*IEC104, "summary", str(ds)])
        rows.append({"what": "iec104 summary of the dataset", "seconds": wall, "cpu": cpu,
                     "rss": rss})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--captures", type=int, default=64)
    p.add_argument("--apdus", type=int, default=100_000, help="APDUs per capture")
    p.add_argument("--query-rows", type=int, default=50_000_000)
    p.add_argument("--skip", default="", help="comma-separated: tshark, pandas, summary, "
                   "convert, questions")
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    paths, apdus = captures(args.captures, args.apdus)
    print(f"{len(paths)} captures x {args.apdus:,} APDUs; load average before: "
          f"{os.getloadavg()[0]:.2f}; CPUs: {os.cpu_count()}")
    if "convert" not in skip:
        rows = conversion(paths, apdus, skip)
        one = rows[0]["seconds"]
        print("\n| run | seconds | CPU s | CPU s: CLI / workers | machine idle s | APDUs/s | "
              "peak RSS MB | speed vs 1 worker |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            idle = f"{r['idle']:.1f}" if "idle" in r else "-"
            print(f"| {r['tool']} | {r['seconds']:.1f} | {r['cpu']:.1f} | {r.get('split', '-')} "
                  f"| {idle} | {r['rate']:,.0f} | {r['rss']:,.0f} | {one / r['seconds']:.2f}x |")
        print(f"\nscaling efficiency of 2 workers: {one / rows[1]['seconds'] / 2:.2f} "
              f"(speed-up {one / rows[1]['seconds']:.2f}x)")
    if "questions" not in skip:
        ds, total = big_dataset(DATA / "ds-w1", args.query_rows)
        print(f"\nquestions over {total:,} rows ({ds})")
        print("\n| question | seconds (process) | CPU s | peak RSS MB | query alone s |")
        print("|---|---:|---:|---:|---:|")
        for r in questions(ds, skip):
            query = f"{r['query']:.3f}" if "query" in r else "-"
            print(f"| {r['what']} | {r['seconds']:.2f} | {r['cpu']:.1f} | {r['rss']:,.0f} | "
                  f"{query} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
