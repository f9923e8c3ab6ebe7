"""Throughput and added latency of ``iec104 proxy`` against a direct connection.

Every configuration runs in the same invocation, on 127.0.0.1, each endpoint in its own
process (outstation, proxy, master), so the proxy does not share a GIL with the peers:

* ``direct``        master connected straight to the outstation;
* ``asyncio fwd``   a plain asyncio forwarder (two ``asyncio.Protocol`` objects per
                    connection writing what they read to the other socket): the floor
                    for a Python proxy;
* ``proxy no-log``  ``iec104 proxy --no-log`` (forwarding only);
* ``proxy + log``   ``iec104 proxy -o DIR`` (forwarding; decoding and Parquet in its
                    logger process).

CPU seconds: user + system time of the forwarder's process tree (the proxy and its logger
process), for the bulk transfer and for the latency runs, from ``RUSAGE_CHILDREN``.

Throughput: the outstation writes N pre-encoded I-frames (M_ME_NC_1, 20 octets each) as
fast as TCP takes them; the master counts APDUs until it has all of them. For ``proxy +
log`` the time until every row is on disk is measured too (SIGTERM after the transfer;
the proxy exits once it has written everything).

Latency: the master sends one I-frame, the outstation echoes it, 1 ms pause, repeat
(idle); "under load" repeats that while another master receives a paced stream of
``--load-rate`` APDUs/s through the same proxy. Reported: median and 99th percentile round
trip, and the median added by the proxy (a round trip crosses the proxy twice).

    python bench/proxy.py [--messages 1000000] [--pings 2000] [--load-rate 10000] [--json]

(``python bench/proxy.py --plain-forwarder PORT`` runs the plain asyncio forwarder alone.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import asyncio
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iec104.codec import (
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


def frames(n: int, start: int = 0) -> bytes:
    out = bytearray()
    for i in range(start, start + n):
        asdu = encode_asdu(ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
                                (InformationObject(i % 10_000, FloatingValue(float(i)), GOOD),)))
        out += encode_apdu(IFrame(i % 32768, 0, asdu))
    return bytes(out)


def listener() -> socket.socket:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, 0))
    srv.listen(16)
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
    ``rate`` APDUs/s instead (the load generator), until it closes."""
    import threading

    def serve(conn: socket.socket) -> None:
        first = conn.recv(65536)
        if first == GO:
            conn.setblocking(False)
            batch = max(1, rate // 200)  # every 5 ms
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
                due = int((time.perf_counter() - t0) * rate)
                if sent + batch <= due:
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
            return
        data = first
        while data:
            conn.sendall(data)
            data = conn.recv(65536)
        conn.close()

    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


# -- the proxy under test ------------------------------------------------------------------------


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


class ProxyProcess:
    def __init__(self, upstream: int, output: Path | None, plain: bool = False) -> None:
        args = ["-o", str(output)] if output is not None else ["--no-log"]
        command = ([sys.executable, __file__, "--plain-forwarder", str(upstream)] if plain
                   else [sys.executable, "-m", "iec104.cli", "proxy", "--listen", f"{HOST}:0",
                         "--upstream", f"{HOST}:{upstream}", *args])
        self.cpu0 = children_cpu()
        self.cpu = 0.0
        self.proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        m = re.search(r"listening on [\d.]+:(\d+)", line)
        if m is None:
            raise RuntimeError(f"proxy did not start: {line}")
        self.port = int(m.group(1))

    def stop(self) -> float:
        """SIGTERM; returns seconds until the process exited (log written)."""
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=600)
        self.cpu = children_cpu() - self.cpu0  # the process and its logger (reaped by it)
        return time.perf_counter() - t0


# -- measurements --------------------------------------------------------------------------------


def throughput(port: int, total: int) -> float:
    """Seconds from STARTDT act to the last octet of ``total`` octets received."""
    sock = socket.create_connection((HOST, port))
    got = 0
    t0 = time.perf_counter()
    sock.sendall(GO)
    buf = bytearray(1 << 20)
    while got < total:
        n = sock.recv_into(buf)
        if not n:
            raise RuntimeError(f"connection closed after {got} of {total} octets")
        got += n
    elapsed = time.perf_counter() - t0
    sock.close()
    return elapsed


def pings(port: int, n: int) -> list[float]:
    frame = frames(1)
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        sock.sendall(frame)
        got = 0
        while got < len(frame):
            got += len(sock.recv(256))
        out.append(time.perf_counter() - t0)
        time.sleep(0.001)
    sock.close()
    return out


def load_connection(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port))
    sock.sendall(GO)
    return sock


def drain_in_thread(sock: socket.socket) -> Any:
    import threading

    def run() -> None:
        try:
            while sock.recv(1 << 20):
                pass
        except OSError:
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def cpu(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.2f}" if key in row else "-"


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--load-rate", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plain-forwarder", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain_forwarder:
        plain_forwarder(args.plain_forwarder)
        return

    blob = frames(args.messages)
    bulk_srv = listener()
    echo_srv = listener()
    ctx = mp.get_context("fork")
    workers = [ctx.Process(target=bulk_outstation, args=(bulk_srv, blob), daemon=True),
               ctx.Process(target=echo_outstation, args=(echo_srv, args.load_rate), daemon=True)]
    for w in workers:
        w.start()
    bulk_port = bulk_srv.getsockname()[1]
    echo_port = echo_srv.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="iec104-bench-proxy-"))
    results: list[dict[str, Any]] = []
    try:
        throughput(bulk_port, len(blob))  # warm up the outstation
        for name in ("direct", "asyncio fwd", "proxy no-log", "proxy + log"):
            out = tmp / name.replace(" ", "_").replace("+", "") if name == "proxy + log" else None
            row: dict[str, Any] = {"config": name}
            # throughput
            plain = name == "asyncio fwd"
            proxy = None if name == "direct" else ProxyProcess(bulk_port, out, plain)
            port = bulk_port if proxy is None else proxy.port
            elapsed = throughput(port, len(blob))
            row["apdu_per_s"] = args.messages / elapsed
            if proxy is not None:
                time.sleep(0.2)
                drain = proxy.stop()
                row["bulk_cpu_s"] = proxy.cpu
                row["logged_per_s"] = (args.messages / (elapsed + drain) if out is not None
                                       else None)
                if out is not None:
                    import pandas as pd

                    rows = len(pd.read_parquet(out))
                    row["rows"] = rows
                    row["parquet_bytes"] = sum(p.stat().st_size for p in out.glob("*.parquet"))
            # latency, idle and under load
            proxy = None if name == "direct" else ProxyProcess(echo_port, out and tmp / (
                out.name + "-lat"), plain)
            port = echo_port if proxy is None else proxy.port
            idle = pings(port, args.pings)
            load = load_connection(port)
            drainer = drain_in_thread(load)
            time.sleep(0.3)
            loaded = pings(port, args.pings)
            load.close()
            drainer.join(5)
            if proxy is not None:
                proxy.stop()
                row["latency_cpu_s"] = proxy.cpu
            row["idle_median_ms"] = statistics.median(idle) * 1e3
            row["idle_p99_ms"] = percentile(idle, 0.99) * 1e3
            row["load_median_ms"] = statistics.median(loaded) * 1e3
            row["load_p99_ms"] = percentile(loaded, 0.99) * 1e3
            results.append(row)
    finally:
        for w in workers:
            w.terminate()
        shutil.rmtree(tmp, ignore_errors=True)

    direct = results[0]
    for row in results:
        row["added_idle_ms"] = row["idle_median_ms"] - direct["idle_median_ms"]
        row["added_load_ms"] = row["load_median_ms"] - direct["load_median_ms"]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.messages} APDUs of 20 octets; {args.pings} round trips idle and under a "
          f"load of {args.load_rate} APDUs/s; CPython {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    print()
    print("| config       |  fwd APDU/s | fwd MB/s | logged APDU/s | RTT idle med / p99 ms "
          "| added idle ms | RTT load med / p99 ms | added load ms | CPU s bulk / latency |")
    print("|--------------|------------:|---------:|--------------:|----------------------:"
          "|--------------:|----------------------:|--------------:|---------------------:|")
    for r in results:
        logged = f"{r['logged_per_s']:,.0f}" if r.get("logged_per_s") else "-"
        mbps = r["apdu_per_s"] * 20 / 1e6
        print(f"| {r['config']:<12} | {r['apdu_per_s']:>11,.0f} | {mbps:>8,.0f} | {logged:>13} "
              f"| {r['idle_median_ms']:>9.3f} / {r['idle_p99_ms']:<9.3f} "
              f"| {r['added_idle_ms']:>13.3f} | {r['load_median_ms']:>9.3f} / "
              f"{r['load_p99_ms']:<9.3f} | {r['added_load_ms']:>13.3f} | "
              f"{cpu(r, 'bulk_cpu_s'):>9} / {cpu(r, 'latency_cpu_s'):<8} |")
    logged_row = results[-1]
    if "rows" in logged_row:
        print()
        print(f"proxy + log wrote {logged_row['rows']} rows, "
              f"{logged_row['parquet_bytes'] / args.messages:.1f} Parquet octets per APDU")


if __name__ == "__main__":
    main()
