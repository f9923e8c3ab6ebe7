"""Driver benchmark: iec104 vs hat-drivers (and c104 where it runs), side by side.

Each implementation talks to itself (its own server and client) on 127.0.0.1, in a fresh
subprocess so that one run's memory and GC state cannot slow the next. Measured:

* spontaneous data: N float measurands (M_ME_NC_1, distinct IOAs) from server to client,
  Data messages per second from the first send until the client holds all N;
  for iec104 also with one ``notify_data_change`` call per item (one ASDU each);
* command round trip: C_SC_NA_1 activation -> ACTCON at the client, one at a time,
  median and 99th percentile over M commands (the server answers ACTCON + ACTTERM);
* interrogation: C_IC_NA_1 with N points in the answer, until ACTTERM (seconds).

Usage: ``python bench/driver.py [--points 100000] [--commands 1000] [--only iec104,hat,c104]``
(``--impl NAME`` runs one implementation in this process and prints JSON).
"""

# no ``from __future__ import annotations``: c104 checks callback annotations at runtime
import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

IMPLS = ("iec104", "hat", "c104")
C104_CHUNK = 600
LABELS = {"iec104": "iec104 (ours)", "hat": "hat-drivers", "c104": "c104 (lib60870-C)"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- iec104 (ours) --------------------------------------------------------------------------

async def bench_iec104(points: int, commands: int) -> dict[str, Any]:
    import iec104

    q = iec104.Quality()
    floats = [iec104.Data(iec104.FloatingValue(i * 0.5), q, None, 1, i + 1,
                          iec104.Cause.SPONTANEOUS, False) for i in range(points)]
    result: dict[str, Any] = {}
    queue: asyncio.Queue = asyncio.Queue()
    port = free_port()
    srv = await iec104.listen(queue.put_nowait, iec104.Address("127.0.0.1", port),
                              interrogate_cb=lambda conn, ca: floats,
                              command_cb=lambda conn, cmds: True,
                              send_queue_size=max(points, 10_000))  # one bulk load
    client = await iec104.connect(iec104.Address("127.0.0.1", port))
    server = await queue.get()

    async def receive_all(n: int) -> None:
        got = 0
        while got < n:
            got += len(await client.receive())

    start = time.perf_counter()
    server.notify_data_change(floats)
    await receive_all(points)
    result["spontaneous_per_s"] = points / (time.perf_counter() - start)

    start = time.perf_counter()
    for item in floats:
        server.notify_data_change([item])
    await receive_all(points)
    result["spontaneous_single_per_s"] = points / (time.perf_counter() - start)

    cmd = iec104.Command(iec104.Action.EXECUTE, iec104.SingleValue.ON, 1, 1000, None, 0)
    rtts = []
    for _ in range(commands):
        t0 = time.perf_counter()
        assert await client.send_command(cmd)
        rtts.append(time.perf_counter() - t0)
    result["command_rtts"] = rtts

    start = time.perf_counter()
    data = await client.interrogate(1)
    result["interrogation_s"] = time.perf_counter() - start
    assert len(data) == points
    await client.async_close()
    await srv.async_close()
    return result


# --- hat-drivers 0.10 -----------------------------------------------------------------------

async def bench_hat(points: int, commands: int) -> dict[str, Any]:
    from hat.drivers import iec104, net

    mq = iec104.MeasurementQuality(False, False, False, False, False)
    res = iec104.CommandResCause

    def float_msg(i: int, cause: Any) -> Any:
        return iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1,
                              io_address=i + 1,
                              data=iec104.FloatingData(iec104.FloatingValue(i * 0.5), mq),
                              time=None, cause=cause)

    spontaneous = [float_msg(i, iec104.DataResCause.SPONTANEOUS) for i in range(points)]
    interrogated = [float_msg(i, iec104.DataResCause.INTERROGATED_STATION)
                    for i in range(points)]
    connections: asyncio.Queue = asyncio.Queue()

    async def serve(conn: Any) -> None:
        await connections.put(conn)
        while True:
            try:
                msgs = await conn.receive()
            except ConnectionError:
                return
            for msg in msgs:
                if isinstance(msg, iec104.CommandMsg):
                    await conn.send([msg._replace(cause=res.ACTIVATION_CONFIRMATION),
                                     msg._replace(cause=res.ACTIVATION_TERMINATION)])
                elif isinstance(msg, iec104.InterrogationMsg):
                    await conn.send([msg._replace(cause=res.ACTIVATION_CONFIRMATION)])
                    await conn.send(interrogated)
                    await conn.send([msg._replace(cause=res.ACTIVATION_TERMINATION)])

    port = free_port()
    srv = await iec104.listen(serve, net.TcpAddress("127.0.0.1", port))
    client = await iec104.connect(net.TcpAddress("127.0.0.1", port))
    server = await connections.get()
    while not server.is_enabled:
        await asyncio.sleep(0.001)
    result: dict[str, Any] = {}

    start = time.perf_counter()
    sender = asyncio.ensure_future(server.send(spontaneous))
    got = 0
    while got < points:
        got += len(await client.receive())
    result["spontaneous_per_s"] = points / (time.perf_counter() - start)
    await sender

    cmd = iec104.CommandMsg(is_test=False, originator_address=0, asdu_address=1,
                            io_address=1000,
                            command=iec104.SingleCommand(iec104.SingleValue.ON, False, 0),
                            is_negative_confirm=False, time=None,
                            cause=iec104.CommandReqCause.ACTIVATION)
    rtts = []
    for _ in range(commands):
        t0 = time.perf_counter()
        await client.send([cmd])
        confirmed = False
        while not confirmed:
            for msg in await client.receive():
                if getattr(msg, "cause", None) == res.ACTIVATION_CONFIRMATION:
                    confirmed = True
        rtts.append(time.perf_counter() - t0)
    await asyncio.sleep(0.05)
    while True:  # drop the ACTTERM of the last command
        try:
            await asyncio.wait_for(client.receive(), 0.05)
        except TimeoutError:
            break
    result["command_rtts"] = rtts

    start = time.perf_counter()
    await client.send([iec104.InterrogationMsg(is_test=False, originator_address=0,
                                               asdu_address=1, request=20,
                                               is_negative_confirm=False,
                                               cause=iec104.CommandReqCause.ACTIVATION)])
    count = 0
    done = False
    while not done:
        for msg in await client.receive():
            if isinstance(msg, iec104.DataMsg):
                count += 1
            elif getattr(msg, "cause", None) == res.ACTIVATION_TERMINATION:
                done = True
    result["interrogation_s"] = time.perf_counter() - start
    assert count == points
    await client.async_close()
    await srv.async_close()
    return result


# --- c104 2.x (lib60870-C, threads) ---------------------------------------------------------

def bench_c104(points: int, commands: int) -> dict[str, Any]:
    import threading

    import c104

    def wait_for(cond: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.0005)
        return False

    def settle(counter: list[int]) -> tuple[int, float]:
        """Wait until ``counter`` reaches ``points`` or stops moving for 2 s; return it and
        the perf_counter() of its last change."""
        last, changed = -1, time.perf_counter()
        while counter[0] < points and time.perf_counter() - changed < 2:
            if counter[0] != last:
                last, changed = counter[0], time.perf_counter()
            time.sleep(0.0005)
        if counter[0] != last:
            changed = time.perf_counter()
        return counter[0], changed

    port = free_port()
    server = c104.Server(ip="127.0.0.1", port=port, tick_rate_ms=50)
    station = server.add_station(common_address=1)
    sv_points = []
    for i in range(points):
        point = station.add_point(io_address=i + 1, type=c104.Type.M_ME_NC_1)
        point.value = i * 0.5
        sv_points.append(point)
    control = station.add_point(io_address=100_000_000 % 16_777_216, type=c104.Type.C_SC_NA_1)

    def on_command(point: c104.Point, previous_info: c104.Information,
                   message: c104.IncomingMessage) -> c104.ResponseState:
        return c104.ResponseState.SUCCESS

    control.on_receive(callable=on_command)
    server.start()
    wait_for(lambda: server.is_running, 5)

    client = c104.Client(tick_rate_ms=50, command_timeout_ms=5000)
    connection = client.add_connection(ip="127.0.0.1", port=port, init=c104.Init.NONE)
    cl_station = connection.add_station(common_address=1)
    counter = [0]
    lock = threading.Lock()

    def on_receive(point: c104.Point, previous_info: c104.Information,
                   message: c104.IncomingMessage) -> c104.ResponseState:
        with lock:
            counter[0] += 1
        return c104.ResponseState.NONE

    for i in range(points):
        cl_station.add_point(io_address=i + 1, type=c104.Type.M_ME_NC_1).on_receive(
            callable=on_receive)
    cl_control = cl_station.add_point(io_address=control.io_address,
                                      type=c104.Type.C_SC_NA_1)
    client.start()
    wait_for(lambda: connection.is_connected, 5)
    connection.unmute()
    if not wait_for(lambda: connection.state == c104.ConnectionState.OPEN, 5):
        raise RuntimeError(f"c104 connection not open: {connection.state}")
    result: dict[str, Any] = {}

    # lib60870's outgoing queue drops what does not fit (about 5,000 floats at once), so
    # batches are paced: one batch of C104_CHUNK points in flight at a time
    start = time.perf_counter()
    for first in range(0, points, C104_CHUNK):
        batch = c104.Batch(cause=c104.Cot.SPONTANEOUS,
                           points=sv_points[first:first + C104_CHUNK])
        if not server.transmit_batch(batch):
            raise RuntimeError("c104 transmit_batch failed")
        wait_for(lambda first=first: counter[0] >= first - C104_CHUNK // 2, 10)
    received, last_change = settle(counter)
    result["spontaneous_per_s"] = received / (last_change - start)
    if received < points:
        result["spontaneous_note"] = f"{points - received:,} of {points:,} floats lost"

    rtts = []
    cl_control.value = True
    for _ in range(commands):
        t0 = time.perf_counter()
        if not cl_control.transmit(cause=c104.Cot.ACTIVATION):
            raise RuntimeError("c104 command failed")
        rtts.append(time.perf_counter() - t0)
    result["command_rtts"] = rtts

    counter[0] = 0
    start = time.perf_counter()
    connection.interrogation(common_address=1, cause=c104.Cot.ACTIVATION,
                             qualifier=c104.Qoi.STATION)
    received, last_change = settle(counter)
    if received >= points:
        result["interrogation_s"] = last_change - start
    else:
        # the c104 server itself sends ACTTERM after what its queue held (a raw socket
        # client sees the same), so there is no full interrogation to time
        result["interrogation_note"] = (f"its server answered an interrogation with only "
                                        f"{counter[0]:,} of {points:,} points")
    client.stop()
    server.stop()
    return result


# --- driver ---------------------------------------------------------------------------------

def run_one(impl: str, points: int, commands: int) -> dict[str, Any]:
    if impl == "iec104":
        return asyncio.run(bench_iec104(points, commands))
    if impl == "hat":
        return asyncio.run(bench_hat(points, commands))
    if impl == "c104":
        return bench_c104(points, commands)
    raise ValueError(impl)


def run_subprocess(impl: str, points: int, commands: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--impl", impl, "--points", str(points),
           "--commands", str(commands)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[0][:120]}"}
    return json.loads(lines[-1])


def table(results: dict[str, dict[str, Any]], points: int, commands: int) -> str:
    def fmt_rate(r: dict[str, Any], key: str) -> str:
        return f"{r[key]:,.0f}" if key in r else "-"

    rows = [(f"spontaneous floats, msgs/s ({points:,})", "spontaneous_per_s", fmt_rate),
            ("  same, one notify call per item", "spontaneous_single_per_s", fmt_rate)]
    header = ["", *(LABELS[name] for name in results)]
    lines = []
    for label, key, fmt in rows:
        lines.append([label, *(fmt(r, key) if "error" not in r else "n/a"
                               for r in results.values())])
    for label, p in (("command round trip median, ms", 50), ("command round trip p99, ms", 99)):
        cells = []
        for r in results.values():
            rtts = r.get("command_rtts")
            cells.append(f"{(statistics.median(rtts) if p == 50 else percentile(rtts, p)) * 1e3:.3f}"
                         if rtts else "n/a")
        lines.append([f"{label} ({commands:,})", *cells])
    lines.append([f"interrogation of {points:,} points, s",
                  *(f"{r['interrogation_s']:.3f}" if "interrogation_s" in r else "n/a"
                    for r in results.values())])
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    out = [" | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                      for i, (c, w) in enumerate(zip(header, widths, strict=True)))]
    out.append("-+-".join("-" * w for w in widths))
    for row in lines:
        out.append(" | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                              for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    for name, r in results.items():
        for key in ("error", "spontaneous_note", "interrogation_note"):
            if key in r:
                out.append(f"{LABELS[name]}: {r[key]}")
    ours, hat = results.get("iec104", {}), results.get("hat", {})
    if "spontaneous_per_s" in ours and "spontaneous_per_s" in hat:
        out.append("")
        out.append(f"iec104 / hat-drivers: spontaneous x{ours['spontaneous_per_s'] / hat['spontaneous_per_s']:.1f}"
                   f", one-call-per-item x{ours['spontaneous_single_per_s'] / hat['spontaneous_per_s']:.1f}"
                   f", command median x{statistics.median(hat['command_rtts']) / statistics.median(ours['command_rtts']):.1f}"
                   f", interrogation x{hat['interrogation_s'] / ours['interrogation_s']:.1f}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--only", default=",".join(IMPLS))
    parser.add_argument("--impl", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    if args.impl:
        result = run_one(args.impl, args.points, args.commands)
        print(json.dumps(result))
        return
    names = [name for name in args.only.split(",") if name]
    results = {}
    for name in names:
        print(f"running {LABELS[name]} ...", file=sys.stderr, flush=True)
        results[name] = run_subprocess(name, args.points, args.commands, args.timeout)
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {platform.platform(terse=True)}")
    print(table(results, args.points, args.commands))


if __name__ == "__main__":
    main()
