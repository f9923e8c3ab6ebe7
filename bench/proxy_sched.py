"""Who delays the logging proxy's round trips: ``perf sched`` attribution of wake-ups.

A round trip through ``iec104 proxy -o DIR`` wakes four or five tasks in turn (the master,
the proxy twice, the echo outstation). When one of them wakes on a CPU that another task
is using, it waits; its round trip's latency is the sum of these waits and the work. p99 of
the round trip depends on everything else the machine runs; *which task a delayed wake-up
waited behind* does much less, which makes it the figure to compare trees with on a
shared machine.

Per run: an echo outstation (``bench/proxy.py``'s, with the paced load stream of
``--load-rate`` APDUs/s through the same proxy unless 0), the proxy from ``--trees``
(each tree's ``.venv``; runs alternate between the trees), ``--pings`` round trips of one
I-frame with 1 ms pauses, recorded system-wide with ``perf record -e sched:sched_waking -e
sched:sched_switch``. For every wake-up of the round trip's tasks: the time until it ran
and the task that ran on that CPU just before it (``prev`` of the switch that ran it).
Reported per tree, summed over the runs: wake-ups delayed more than ``--threshold-ms``
behind the proxy's logger process (its main thread or its writer thread), how many of
those were the proxy's own, how many waited more than 1 ms, their total delay (``--json``:
also how many waited behind the writer thread); wake-ups delayed behind other processes
(the machine's load); the logger's CPU time; the round trips' p50/p99.

Needs ``perf`` and the right to trace the whole system (root, or
``kernel.perf_event_paranoid`` -1).

    python bench/proxy_sched.py --trees /work/base,. [--runs 4] [--pings 3000]
                                [--load-rate 10000] [--threshold-ms 0.2] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import proxy as bench  # noqa: E402  -- bench/proxy.py: outstations, masters, CPU readers

HOST = bench.HOST
_EVENT = re.compile(r"\s*(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s+(.*)")
_WAKING = re.compile(r" pid=(\d+)")
_SWITCH = re.compile(r"prev_pid=(\d+).*next_pid=(\d+)")


def tids(pid: int) -> set[int]:
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


def python_of(tree: Path) -> str:
    venv = tree / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def one_run(tree: Path, args: argparse.Namespace, ctx: Any, tmp: Path) -> dict[str, Any]:
    """One proxy from ``tree``, ``args.pings`` round trips under perf; the attribution."""
    echo_srv = bench.listener()
    echo = ctx.Process(target=bench.echo_outstation, args=(echo_srv, args.load_rate),
                       daemon=True)
    echo.start()
    log_dir = tmp / f"log-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [python_of(tree), "-m", "iec104.cli", "proxy", "--listen", f"{HOST}:0", "--upstream",
         f"{HOST}:{echo_srv.getsockname()[1]}", "-o", str(log_dir)],
        cwd=tree, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r"listening on [\d.]+:(\d+)", line)
    if m is None:
        raise RuntimeError(f"the proxy of {tree} did not start: {line}{proc.stderr.read()}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    port = int(m.group(1))
    load = stop = None
    perf_data = tmp / "perf.data"
    try:
        sock = socket.create_connection((HOST, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frame = bench.frames(1)
        bench.pings(sock, 50, frame)  # warm up: the upstream connection is up
        time.sleep(0.3)
        echo_threads = tids(echo.pid) - {echo.pid}  # the thread echoing our round trips
        if args.load_rate:
            ready, stop, got = ctx.Event(), ctx.Event(), ctx.Value("q", 0)
            load = ctx.Process(target=bench.load_master, args=(port, ready, stop, got),
                               daemon=True)
            load.start()
            ready.wait(30)
        time.sleep(0.3)
        loggers = bench.children_of(proc.pid)
        logger_threads = {t: ("logger" if t in loggers else "logger thread")
                          for c in loggers for t in tids(c)}
        round_trip = {os.getpid(): "master", proc.pid: "proxy",
                      **{t: "echo" for t in echo_threads}}
        perf = subprocess.Popen(["perf", "record", "-q", "-a", "-e", "sched:sched_waking",
                                 "-e", "sched:sched_switch", "-o", str(perf_data)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf is recording
        logger_cpu0 = sum(bench.process_cpu(c) for c in loggers)
        rtts = bench.pings(sock, args.pings, frame)
        logger_cpu = sum(bench.process_cpu(c) for c in loggers) - logger_cpu0
        perf.send_signal(signal.SIGINT)
        perf.wait(60)
        sock.close()
    finally:
        if stop is not None and load is not None:
            stop.set()
            load.join(10)
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        echo.terminate()
        echo_srv.close()
        shutil.rmtree(log_dir, ignore_errors=True)
    script = subprocess.run(["perf", "script", "-i", str(perf_data), "-F",
                             "tid,cpu,time,event,trace"], capture_output=True, text=True,
                            check=True).stdout
    perf_data.unlink()
    delays = attribute(script, round_trip, logger_threads)
    threshold = args.threshold_ms / 1e3
    late = [(d, task, behind) for d, task, behind in delays if d > threshold]
    by_logger = [(d, task) for d, task, behind in late if behind.startswith("logger")]
    by_writer = [d for d, _, behind in late if behind == "logger thread"]
    rtts.sort()
    return {
        "wakeups": len(delays),
        "behind_logger": len(by_logger),
        "behind_logger_ms": sum(d for d, _ in by_logger) * 1e3,
        "behind_logger_over_1ms": sum(d > 1e-3 for d, _ in by_logger),
        "behind_logger_thread": len(by_writer),
        "behind_logger_thread_over_1ms": sum(d > 1e-3 for d in by_writer),
        "proxy_behind_logger": sum(task == "proxy" for _, task in by_logger),
        "behind_logger_by_task": dict(Counter(task for _, task in by_logger)),
        "behind_others": sum(behind == "other" for _, _, behind in late),
        "behind_others_ms": sum(d for d, _, behind in late if behind == "other") * 1e3,
        "logger_cpu_ms": logger_cpu * 1e3,
        "p50_ms": bench.quantile(rtts, 0.5) * 1e3,
        "p99_ms": bench.quantile(rtts, 0.99) * 1e3,
        "load_average": os.getloadavg()[0],
    }


def attribute(script: str, round_trip: dict[int, str], logger: dict[int, str]
              ) -> list[tuple[float, str, str]]:
    """(delay s, task, who ran just before it) for every wake-up of a round-trip task."""
    woken: dict[int, float] = {}
    out = []
    for line in script.splitlines():
        m = _EVENT.match(line)
        if m is None:
            continue
        t, event, rest = float(m[3]), m[4], m[5]
        if event == "sched_waking":
            w = _WAKING.search(rest)
            if w is not None and int(w[1]) in round_trip:
                woken.setdefault(int(w[1]), t)
        elif event == "sched_switch":
            s = _SWITCH.search(rest)
            if s is None:
                continue
            prev, nxt = int(s[1]), int(s[2])
            if nxt in woken:
                behind = (logger.get(prev) or ("idle" if prev == 0 else None)
                          or ("round trip" if prev in round_trip else "other"))
                out.append((t - woken.pop(nxt), round_trip[nxt], behind))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trees", default=".", help="comma-separated source trees, alternated")
    ap.add_argument("--runs", type=int, default=4, help="runs per tree")
    ap.add_argument("--pings", type=int, default=3000, help="round trips per run")
    ap.add_argument("--load-rate", type=int, default=10_000,
                    help="APDUs/s streamed through the proxy meanwhile (0: idle)")
    ap.add_argument("--threshold-ms", type=float, default=0.2,
                    help="a wake-up is delayed when it ran later than this")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("perf") is None:
        ap.error("perf is not installed")
    trees = [Path(t).resolve() for t in args.trees.split(",") if t]
    ctx = mp.get_context("fork")
    tmp = Path(tempfile.mkdtemp(prefix="iec104-bench-sched-"))
    runs: dict[str, list[dict[str, Any]]] = {str(t): [] for t in trees}
    try:
        for r in range(args.runs):
            for tree in trees if r % 2 == 0 else trees[::-1]:
                runs[str(tree)].append(one_run(tree, args, ctx, tmp))
                print(f"  {tree} run {len(runs[str(tree)])}: {runs[str(tree)][-1]}",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(runs, indent=2))
        return
    print(f"{args.runs} runs per tree of {args.pings} round trips, load stream "
          f"{args.load_rate} APDU/s; wake-ups of the round trip's tasks that ran more than "
          f"{args.threshold_ms} ms after waking, by the task that ran before them:")
    print()
    print("| tree | wake-ups | behind the logger (proxy's) | > 1 ms | their ms | behind others "
          "| their ms | logger CPU ms | p50 / p99 ms per run |")
    print("|------|---------:|----------------------------:|-------:|---------:|--------------:"
          "|---------:|--------------:|:---------------------|")
    for tree, rows in runs.items():
        def total(key: str) -> float:
            return sum(row[key] for row in rows)
        per_run = ", ".join(f"{row['p50_ms']:.3f} / {row['p99_ms']:.2f}" for row in rows)
        print(f"| {tree} | {total('wakeups'):,.0f} | {total('behind_logger'):.0f} "
              f"({total('proxy_behind_logger'):.0f}) | {total('behind_logger_over_1ms'):.0f} "
              f"| {total('behind_logger_ms'):.1f} "
              f"| {total('behind_others'):.0f} | {total('behind_others_ms'):.1f} "
              f"| {total('logger_cpu_ms'):.0f} | {per_run} |")


if __name__ == "__main__":
    main()
