"""Round-trip latency and CPU cost of ``iec104 proxy``, with and without logging, beside a
plain asyncio forwarder, all in one run.

Forwarders (each in its own process; outstations and masters are other processes):

* ``direct``          no forwarder: the master connects to the outstation (the floor of
                      the machine and of this script's own client);
* ``asyncio fwd``     a plain asyncio forwarder (two ``asyncio.Protocol`` objects per
                      connection writing what they read to the other socket): the floor
                      for a Python proxy;
* ``proxy no-log``    ``iec104 proxy --no-log`` (forwarding only);
* ``proxy + file``    the proxy logging into a flat rotating directory (``Proxy(...,
                      dataset=False)``, run through the CLI's serving loop);
* ``proxy + dataset`` ``iec104 proxy -o DIR`` (a dataset: ``date=`` partitions).

Latency: the master sends one I-frame, the outstation echoes it, 1 ms pause, repeat; once
idle and once while a second master (another process) receives a paced stream of
``--load-rate`` APDUs/s through the same forwarder. Every forwarder runs for the whole
latency part, and the round trips are taken in ``--rounds`` interleaved rounds (each round
visits every forwarder, in a rotating order), so that a change in the machine's load hits
all of them alike. Reported: p50, p99 and p99.9 of the round trips; a round trip crosses
the forwarder twice.

CPU per forwarded APDU, the figure that does not depend on the machine's load: CPU time
(``/proc/PID/task/*/schedstat``, nanoseconds on CPU, all threads) of the forwarder's process
and of the proxy's logger process, summed over the measured batches only (start-up
excluded), divided by the APDUs forwarded in them (two per round trip, plus the load
stream's).

Throughput (``--messages``, 0 to skip): the outstation writes N pre-encoded I-frames
(M_ME_NC_1, 20 octets each) as fast as TCP takes them through a fresh forwarder; the master
counts them. With logging, *logged* is APDUs per second until the log is written (the
logger idle, then SIGTERM and the proxy's exit), and the CPU per APDU is taken over the
transfer and the logger's catching up.

    python bench/proxy.py [--pings 10000] [--rounds 10] [--load-rate 10000]
                          [--messages 500000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iec104.codec import (  # noqa: E402
    ASDU,
    Cause,
    FloatingValue,
    IFrame,
    InformationObject,
    Quality,
    TypeId,
    UFrame,
    UFunction,
    encode_apdu,
    encode_asdu,
)

HOST = "127.0.0.1"
GO = encode_apdu(UFrame(UFunction.STARTDT_ACT))
GOOD = Quality(False, False, False, False, False)
APDU_SIZE = 20
CONFIGS = ("direct", "asyncio fwd", "proxy no-log", "proxy + file", "proxy + dataset")
LOGGING = ("proxy + file", "proxy + dataset")


def frames(n: int, start: int = 0) -> bytes:
    out = bytearray()
    for i in range(start, start + n):
        asdu = encode_asdu(ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
                                (InformationObject(i % 10_000, FloatingValue(float(i)), GOOD),)))
        out += encode_apdu(IFrame(i % 32768, 0, asdu))
    return bytes(out)


def bulk_blob(n: int) -> bytes:
    """``n`` APDUs: one cycle of send sequence numbers (32,768 distinct APDUs), repeated."""
    cycle = frames(min(n, 32768))
    whole, rest = divmod(n, 32768)
    return cycle * whole + cycle[:rest * APDU_SIZE]


def listener() -> socket.socket:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, 0))
    srv.listen(64)
    return srv


# -- outstation processes ----------------------------------------------------------------------


def bulk_outstation(srv: socket.socket, blob: bytes) -> None:
    """Per connection: wait for STARTDT act, send ``blob``, wait for the master to close."""
    while True:
        conn, _ = srv.accept()
        if conn.recv(16) != GO:
            conn.close()
            continue
        conn.sendall(blob)
        while conn.recv(65536):
            pass
        conn.close()


def echo_outstation(srv: socket.socket, rate: int) -> None:
    """Echo what arrives; a connection that starts with STARTDT act gets a paced stream of
    ``rate`` APDUs/s instead (the load), until it closes."""

    def serve(conn: socket.socket) -> None:
        first = conn.recv(65536)
        if first == GO:
            paced(conn, rate)
            return
        data = first
        try:
            while data:
                conn.sendall(data)
                data = conn.recv(65536)
        except OSError:
            pass
        conn.close()

    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def paced(conn: socket.socket, rate: int) -> None:
    """Send ``rate`` APDUs/s in batches every 5 ms until the peer closes."""
    conn.setblocking(False)
    batch = max(1, rate // 200)
    blob = frames(batch)
    t0 = time.perf_counter()
    sent = 0
    while True:
        try:
            if conn.recv(65536) == b"":
                break
        except BlockingIOError:
            pass
        except OSError:
            break
        if sent + batch <= (time.perf_counter() - t0) * rate:
            try:
                conn.setblocking(True)
                conn.sendall(blob)
                conn.setblocking(False)
            except OSError:
                break
            sent += batch
        else:
            time.sleep(0.001)
    conn.close()


def load_master(port: int, ready: Any, stop: Any, got: Any) -> None:
    """The second master: STARTDT act, then receive the paced stream until ``stop``."""
    sock = socket.create_connection((HOST, port))
    sock.sendall(GO)
    sock.settimeout(0.05)
    total = 0
    ready.set()
    while not stop.is_set():
        try:
            n = len(sock.recv(1 << 20))
        except TimeoutError:
            continue
        if not n:
            break
        total += n
    sock.close()
    got.value = total


# -- CPU time of a process and of its children -----------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Seconds on CPU of every live thread of ``pid`` (schedstat: nanoseconds; else the
    user + system ticks of /proc/PID/stat)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except FileNotFoundError:
        pass
    except OSError:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def children_of(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def tree_cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- forwarders ------------------------------------------------------------------------------------


class _Pipe(asyncio.Protocol):
    """One socket of the plain forwarder: what it reads goes to ``peer`` unchanged."""

    def __init__(self, peer: _Pipe | None = None) -> None:
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


def plain_forwarder(upstream: int) -> None:
    """The floor: forward bytes both ways with asyncio, nothing else."""

    async def run() -> None:
        loop = asyncio.get_running_loop()

        def accept() -> _Pipe:
            master = _Pipe()

            async def connect() -> None:
                _, up = await loop.create_connection(lambda: _Pipe(master), HOST, upstream)
                master.peer = up
                for data in master.early:
                    up.transport.write(data)  # type: ignore[union-attr]
                master.early.clear()

            loop.create_task(connect())
            return master

        server = await loop.create_server(accept, HOST, 0)
        print(f"listening on {HOST}:{server.sockets[0].getsockname()[1]}", file=sys.stderr,
              flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()

    asyncio.run(run())


def file_proxy(upstream: int, output: str) -> int:
    """``iec104 proxy`` logging into a flat directory (not a dataset): the CLI's serving
    loop around ``Proxy(..., dataset=False)``."""
    from iec104.cli.proxy import _serve
    from iec104.recorder import Proxy

    return asyncio.run(_serve(Proxy(f"{HOST}:0", f"{HOST}:{upstream}", output), None))


class Forwarder:
    """One forwarder process (None for ``direct``) in front of ``upstream``."""

    def __init__(self, config: str, upstream: int, output: Path | None) -> None:
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.port = upstream
        self.output = output
        self.tree0 = tree_cpu_children()
        self.tree = 0.0
        if config == "direct":
            return
        me = [sys.executable, __file__]
        cli = [sys.executable, "-m", "iec104.cli", "proxy", "--listen", f"{HOST}:0",
               "--upstream", f"{HOST}:{upstream}"]
        command = {"asyncio fwd": [*me, "--plain-forwarder", str(upstream)],
                   "proxy no-log": [*cli, "--no-log"],
                   "proxy + file": [*me, "--file-proxy", str(upstream), str(output)],
                   "proxy + dataset": [*cli, "-o", str(output)]}[config]
        self.proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        m = re.search(r"listening on [\d.]+:(\d+)", line)
        if m is None:
            raise RuntimeError(f"{config} did not start: {line}{self.proc.stderr.read()}")
        self.port = int(m.group(1))
        # keep reading stderr so that a chatty proxy never blocks on a full pipe
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def cpu(self) -> tuple[float, float]:
        """(forwarder, logger) CPU seconds so far (threads alive now)."""
        if self.proc is None:
            return 0.0, 0.0
        pid = self.proc.pid
        return process_cpu(pid), sum(process_cpu(c) for c in children_of(pid))

    def logger_idle(self, timeout: float = 600.0) -> None:
        """Wait until the logger process has used less than 5 ms of CPU in 100 ms."""
        if self.proc is None:
            return
        deadline = time.monotonic() + timeout
        last = self.cpu()[1]
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.cpu()[1]
            if now - last < 0.005:
                return
            last = now

    def stop(self) -> float:
        """SIGTERM; returns seconds until the process exited (its log written)."""
        if self.proc is None:
            return 0.0
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)
        elapsed = time.perf_counter() - t0
        self.tree = tree_cpu_children() - self.tree0  # the process and its logger
        return elapsed


# -- measurements ----------------------------------------------------------------------------------


class Samples:
    """Round trips and CPU of one forwarder under one condition, over all rounds."""

    def __init__(self) -> None:
        self.rtts: list[float] = []
        self.cpu = [0.0, 0.0]
        self.apdus = 0

    def add(self, rtts: list[float], cpu0: tuple[float, float], cpu1: tuple[float, float],
            apdus: int) -> None:
        self.rtts += rtts
        self.cpu[0] += cpu1[0] - cpu0[0]
        self.cpu[1] += max(0.0, cpu1[1] - cpu0[1])  # a restarted logger starts afresh
        self.apdus += apdus

    def figures(self) -> dict[str, float]:
        rtts = sorted(self.rtts)
        out = {f"p{q}_ms": quantile(rtts, q / 100) * 1e3 for q in (50, 99, 99.9)}
        if self.apdus:
            out["proxy_us_per_apdu"] = self.cpu[0] / self.apdus * 1e6
            out["logger_us_per_apdu"] = self.cpu[1] / self.apdus * 1e6
        out["round_trips"] = len(rtts)
        return out


def quantile(values: list[float], q: float) -> float:
    """The value at rank ceil(q * n) of sorted ``values`` (nearest rank)."""
    if not values:
        return float("nan")
    rank = max(1, math.ceil(q * len(values) - 1e-9))
    return values[min(len(values), rank) - 1]


def pings(sock: socket.socket, n: int, frame: bytes) -> list[float]:
    out = []
    size = len(frame)
    for _ in range(n):
        t0 = time.perf_counter()
        sock.sendall(frame)
        got = 0
        while got < size:
            chunk = sock.recv(256)
            if not chunk:
                raise RuntimeError("the forwarder closed the connection")
            got += len(chunk)
        out.append(time.perf_counter() - t0)
        time.sleep(0.001)
    return out


def latency(configs: list[str], echo_port: int, tmp: Path, args: argparse.Namespace,
            ctx: Any) -> dict[str, dict[str, dict[str, float]]]:
    forwarders = {c: Forwarder(c, echo_port, tmp / f"lat-{i}") for i, c in enumerate(configs)}
    frame = frames(1)
    idle = {c: Samples() for c in configs}
    loaded = {c: Samples() for c in configs}
    socks = {}
    try:
        for c, fwd in forwarders.items():
            socks[c] = socket.create_connection((HOST, fwd.port))
            socks[c].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pings(socks[c], 20, frame)  # warm up: the upstream connection is up
        per_round = max(1, args.pings // args.rounds)
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            for c in order:
                fwd = forwarders[c]
                cpu0 = fwd.cpu()
                rtts = pings(socks[c], per_round, frame)
                idle[c].add(rtts, cpu0, fwd.cpu(), 2 * per_round)
                ready, stop, got = ctx.Event(), ctx.Event(), ctx.Value("q", 0)
                load = ctx.Process(target=load_master, args=(fwd.port, ready, stop, got),
                                   daemon=True)
                load.start()
                ready.wait(30)
                time.sleep(0.1)  # the stream is flowing
                cpu0 = fwd.cpu()
                t0 = time.perf_counter()
                rtts = pings(socks[c], per_round, frame)
                span = time.perf_counter() - t0
                cpu1 = fwd.cpu()
                stop.set()
                load.join(30)
                # the stream's APDUs forwarded during the round trips (paced: rate x time)
                streamed = min(int(args.load_rate * span), got.value // APDU_SIZE)
                loaded[c].add(rtts, cpu0, cpu1, 2 * per_round + streamed)
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for s in socks.values():
            s.close()
        for fwd in forwarders.values():
            fwd.stop()
    return {c: {"idle": idle[c].figures(), "load": loaded[c].figures()} for c in configs}


def bulk(configs: list[str], bulk_port: int, total_apdus: int, tmp: Path
         ) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    total = total_apdus * APDU_SIZE
    for i, c in enumerate(configs):
        out = tmp / f"bulk-{i}"
        fwd = Forwarder(c, bulk_port, out)
        time.sleep(0.2)  # let the logger settle after start-up
        cpu0 = fwd.cpu()
        sock = socket.create_connection((HOST, fwd.port))
        t0 = time.perf_counter()
        sock.sendall(GO)
        buf = bytearray(1 << 20)
        got = 0
        while got < total:
            n = sock.recv_into(buf)
            if not n:
                raise RuntimeError(f"{c}: connection closed after {got} of {total} octets")
            got += n
        forwarded = time.perf_counter() - t0
        sock.close()
        row: dict[str, float] = {"fwd_apdu_per_s": total_apdus / forwarded}
        if c in LOGGING:
            fwd.logger_idle()
            caught_up = time.perf_counter() - t0
            cpu1 = fwd.cpu()
            row["stop_s"] = fwd.stop()
            row["caught_up_s"] = caught_up
            row["logged_apdu_per_s"] = total_apdus / (caught_up + row["stop_s"])
            import pyarrow.dataset as ds

            row["rows"] = ds.dataset(out, format="parquet", partitioning="hive").count_rows()
            row["parquet_octets_per_apdu"] = sum(
                p.stat().st_size for p in out.rglob("*.parquet")) / total_apdus
        else:
            cpu1 = fwd.cpu()
            fwd.stop()
        if fwd.proc is not None:
            row["proxy_us_per_apdu"] = (cpu1[0] - cpu0[0]) / total_apdus * 1e6
            row["logger_us_per_apdu"] = (cpu1[1] - cpu0[1]) / total_apdus * 1e6
            row["tree_cpu_s"] = fwd.tree
        results[c] = row
        print(f"  bulk {c} done", file=sys.stderr, flush=True)
    return results


# -- report ------------------------------------------------------------------------------------------


def report(configs: list[str], lat: dict[str, Any], blk: dict[str, Any],
           args: argparse.Namespace) -> None:
    print(f"Round trips: {args.pings} per forwarder idle and as many under a load of "
          f"{args.load_rate} APDUs/s, in {args.rounds} interleaved rounds; bulk: "
          f"{args.messages} APDUs of {APDU_SIZE} octets. CPython {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end.")
    print()
    print("Round trip ms (p50 / p99 / p99.9); CPU µs per forwarded APDU (forwarder + logger "
          "process):")
    print()
    print("| forwarder       | idle p50 / p99 / p99.9 ms  | load p50 / p99 / p99.9 ms  "
          "| CPU µs/APDU idle  | CPU µs/APDU load  |")
    print("|-----------------|---------------------------:|---------------------------:"
          "|------------------:|------------------:|")

    def rtt(f: dict[str, float]) -> str:
        return f"{f['p50_ms']:.3f} / {f['p99_ms']:.3f} / {f['p99.9_ms']:.3f}"

    def cpu(f: dict[str, float]) -> str:
        if "proxy_us_per_apdu" not in f:
            return "-"
        return f"{f['proxy_us_per_apdu']:.1f} + {f['logger_us_per_apdu']:.1f}"

    for c in configs:
        idle, load = lat[c]["idle"], lat[c]["load"]
        cpu_idle = cpu(idle) if c != "direct" else "-"
        cpu_load = cpu(load) if c != "direct" else "-"
        print(f"| {c:<15} | {rtt(idle):>26} | {rtt(load):>26} | {cpu_idle:>17} "
              f"| {cpu_load:>17} |")
    if "asyncio fwd" in lat:
        floor = lat["asyncio fwd"]
        print()
        print("Same-run ratios to the plain asyncio forwarder (idle p50 / p99 / p99.9; load "
              "p50 / p99 / p99.9):")
        print()
        for c in configs:
            if c in ("direct", "asyncio fwd"):
                continue
            parts = [f"{lat[c][k][q] / floor[k][q]:.2f}"
                     for k in ("idle", "load") for q in ("p50_ms", "p99_ms", "p99.9_ms")]
            print(f"* {c}: idle {' / '.join(parts[:3])}; load {' / '.join(parts[3:])}")
    if blk:
        print()
        print("| forwarder       |  fwd APDU/s | logged APDU/s | CPU µs/APDU fwd + logger "
              "| tree CPU s | Parquet B/APDU |")
        print("|-----------------|------------:|--------------:|-------------------------:"
              "|-----------:|---------------:|")
        for c in configs:
            b = blk.get(c)
            if b is None:
                continue
            logged = f"{b['logged_apdu_per_s']:,.0f}" if "logged_apdu_per_s" in b else "-"
            cpu_b = (f"{b['proxy_us_per_apdu']:.2f} + {b['logger_us_per_apdu']:.2f}"
                     if "proxy_us_per_apdu" in b else "-")
            tree = f"{b['tree_cpu_s']:.2f}" if "tree_cpu_s" in b else "-"
            size = (f"{b['parquet_octets_per_apdu']:.1f}" if "parquet_octets_per_apdu" in b
                    else "-")
            print(f"| {c:<15} | {b['fwd_apdu_per_s']:>11,.0f} | {logged:>13} | {cpu_b:>24} "
                  f"| {tree:>10} | {size:>14} |")
        print()
        for c in LOGGING:
            if c in blk and blk[c].get("rows") is not None:
                b = blk[c]
                print(f"* {c}: {int(b['rows']):,} rows for {args.messages:,} APDUs (the "
                      "others: the master's STARTDT act, the FIN event rows); the logger "
                      f"idle {b['caught_up_s']:.2f} s after the first octet, the proxy "
                      f"exited {b['stop_s']:.2f} s after SIGTERM")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pings", type=int, default=10_000,
                    help="round trips per forwarder, idle and again under load")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    ap.add_argument("--load-rate", type=int, default=10_000, help="APDUs/s of the load stream")
    ap.add_argument("--messages", type=int, default=500_000,
                    help="APDUs of the bulk transfer (0: skip it)")
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help=f"comma-separated subset of: {', '.join(CONFIGS)}")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plain-forwarder", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--file-proxy", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain_forwarder:
        plain_forwarder(args.plain_forwarder)
        return
    if args.file_proxy:
        sys.exit(file_proxy(int(args.file_proxy[0]), args.file_proxy[1]))
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown or not configs:
        ap.error(f"unknown configs: {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.pings < args.rounds:
        ap.error("--pings must be at least --rounds, and --rounds at least 1")

    ctx = mp.get_context("fork")
    bulk_srv, echo_srv = listener(), listener()
    workers = [ctx.Process(target=echo_outstation, args=(echo_srv, args.load_rate), daemon=True)]
    if args.messages:
        workers.append(ctx.Process(target=bulk_outstation,
                                   args=(bulk_srv, bulk_blob(args.messages)), daemon=True))
    for w in workers:
        w.start()
    tmp = Path(tempfile.mkdtemp(prefix="iec104-bench-proxy-"))
    t0 = time.perf_counter()
    try:
        lat = latency(configs, echo_srv.getsockname()[1], tmp, args, ctx)
        blk = bulk(configs, bulk_srv.getsockname()[1], args.messages, tmp) if args.messages \
            else {}
    finally:
        for w in workers:
            w.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps({"latency": lat, "bulk": blk, "seconds": time.perf_counter() - t0},
                         indent=2))
        return
    report(configs, lat, blk, args)
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
