"""Regenerate the sample captures in this folder with our own driver.

Each scenario runs a real outstation (``iec104.listen``) and real masters
(``iec104.connect``) on 127.0.0.1 while ``dumpcap`` (Debian package ``tshark``)
captures the loopback interface, so the files are genuine TCP conversations, not
synthesized packets. Values are deterministic; timestamps and time tags are those of the
run. Needs permission to capture on ``lo`` (root, or the wireshark group).

Usage: ``python captures/generate.py [OUTDIR]`` (default: this folder).

Scenarios:

* ``station.pcap`` -- one master and one outstation: STARTDT, general interrogation
  answered with every monitor value type (with and without CP24/CP56 time tags), counter
  interrogation, clock synchronization, spontaneous float measurands with CP56 tags, a
  TESTFR exchange after an idle period (t3 = 1 s), a selection of commands of every type
  (select-before-operate, execute, with time tag, one rejected), a test command, close.
* ``commands.pcapng`` -- two masters on one outstation: master A interrogates and operates
  a breaker by select-before-operate; master B sends an execute without select, a command
  the outstation rejects (negative ACTCON), a cancel (deactivation), and a set-point to an
  unknown IOA.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import iec104
from iec104 import Action, Cause, Command, Data, Quality, Time, TimeSize

CA = 1
PORT = 2404
HERE = Path(__file__).resolve().parent

GOOD = Quality()


def _now_tag(size: TimeSize = TimeSize.SEVEN) -> Time:
    return Time.from_datetime(dt.datetime.now(dt.UTC), size)


def station_points() -> list[Data]:
    """What the outstation reports on a general interrogation: every monitor value type."""
    t7 = _now_tag()
    t3 = _now_tag(TimeSize.THREE)
    cause = Cause.INTERROGATED_STATION
    values: list[tuple[object, Quality | iec104.ProtectionQuality | None, Time | None]] = [
        (iec104.SingleValue.ON, GOOD, None),
        (iec104.SingleValue.OFF, Quality(blocked=True), None),
        (iec104.SingleValue.ON, GOOD, t7),
        (iec104.DoubleValue.ON, GOOD, None),
        (iec104.DoubleValue.INTERMEDIATE, Quality(invalid=True), t7),
        (iec104.StepPositionValue(12, False), GOOD, None),
        (iec104.StepPositionValue(-5, True), Quality(substituted=True), t7),
        (iec104.BitstringValue(b"\x0f\x00\xa5\x5a"), GOOD, None),
        (iec104.BitstringValue(b"\x01\x02\x03\x04"), GOOD, t7),
        (iec104.NormalizedValue(0.25), GOOD, None),
        (iec104.NormalizedValue(-0.5), Quality(overflow=True), t7),
        (iec104.ScaledValue(1234), GOOD, None),
        (iec104.ScaledValue(-321), Quality(not_topical=True), t7),
        (iec104.FloatingValue(50.0), GOOD, None),
        (iec104.FloatingValue(231.5), GOOD, t7),
        (iec104.FloatingValue(11.25), GOOD, t3),
    ]
    return [Data(value, quality, tag, CA, 100 + i, cause, False)  # type: ignore[arg-type]
            for i, (value, quality, tag) in enumerate(values)]


def counters(freeze: iec104.FreezeCode) -> list[Data]:
    cause = Cause.INTERROGATED_COUNTER
    t7 = _now_tag()
    return [Data(iec104.BinaryCounterValue(1000 * (i + 1), i, False, False, False), None,
                 t7 if i % 2 else None, CA, 300 + i, cause, False) for i in range(4)]


class Outstation:
    """A small substation: accepts commands for known IOAs, rejects IOA 999."""

    KNOWN_COMMAND_IOAS = frozenset(range(200, 220))

    def __init__(self) -> None:
        self.connections: list[iec104.Connection] = []

    def on_connection(self, conn: iec104.Connection) -> None:
        self.connections.append(conn)

    def interrogate(self, conn: iec104.Connection, asdu_address: int) -> list[Data] | None:
        return station_points() if asdu_address in (CA, 0xFFFF) else None

    def counter_interrogate(self, conn: iec104.Connection, asdu_address: int,
                            freeze: iec104.FreezeCode) -> list[Data] | None:
        return counters(freeze) if asdu_address in (CA, 0xFFFF) else None

    def command(self, conn: iec104.Connection, commands: list[Command]) -> bool:
        return all(c.asdu_address == CA and c.io_address in self.KNOWN_COMMAND_IOAS
                   for c in commands)

    def clock_sync(self, conn: iec104.Connection, asdu_address: int, time: Time) -> bool:
        return asdu_address in (CA, 0xFFFF)

    async def listen(self, port: int) -> iec104.Server:
        return await iec104.listen(self.on_connection, iec104.Address("127.0.0.1", port),
                                   interrogate_cb=self.interrogate,
                                   counter_interrogate_cb=self.counter_interrogate,
                                   command_cb=self.command, clock_sync_cb=self.clock_sync,
                                   test_timeout=1.0)


def cmd(value: object, ioa: int, action: Action = Action.EXECUTE, *, qualifier: int = 0,
        timed: bool = False) -> Command:
    return Command(action, value, CA, ioa, _now_tag() if timed else None,  # type: ignore[arg-type]
                   qualifier)


async def station(port: int) -> None:
    outstation = Outstation()
    server = await outstation.listen(port)
    master = await iec104.connect(iec104.Address("127.0.0.1", port), test_timeout=1.0)
    await asyncio.sleep(0.2)
    points = await master.interrogate(CA)
    assert len(points) == len(station_points()), points
    await master.counter_interrogate(CA, iec104.FreezeCode.FREEZE)
    assert await master.clock_sync(asdu_address=CA)
    outstation_conn = outstation.connections[0]
    for step in range(20):
        value = 50.0 + 0.05 * math.sin(step / 3)
        outstation_conn.notify_data_change([Data(
            iec104.FloatingValue(round(value, 3)), GOOD, _now_tag(), CA, 113,
            Cause.SPONTANEOUS, False)])
        if step % 5 == 4:
            outstation_conn.notify_data_change([Data(
                iec104.SingleValue(step % 2), GOOD, _now_tag(), CA, 102, Cause.SPONTANEOUS,
                False)])
        await asyncio.sleep(0.02)
    for _ in range(21):
        await master.receive()
    await asyncio.sleep(2.5)  # idle: both sides send TESTFR act (t3 = 1 s)
    commands = [
        cmd(iec104.SingleValue.ON, 200, Action.SELECT),
        cmd(iec104.SingleValue.ON, 200),
        cmd(iec104.DoubleValue.OFF, 201, qualifier=1),
        cmd(iec104.RegulatingValue.HIGHER, 202),
        cmd(iec104.NormalizedValue(0.5), 203),
        cmd(iec104.ScaledValue(-100), 204),
        cmd(iec104.FloatingValue(49.95), 205),
        cmd(iec104.BitstringValue(b"\x00\x00\x00\x81"), 206),
        cmd(iec104.SingleValue.OFF, 207, timed=True),
        cmd(iec104.FloatingValue(1.5), 208, timed=True),
        cmd(iec104.SingleValue.ON, 999),  # unknown point: negative confirmation
    ]
    results = [await master.send_command(c) for c in commands]
    assert results == [True] * 10 + [False], results
    await master.test_command(CA)
    await asyncio.sleep(0.1)
    await master.async_close()
    await server.async_close()


async def commands(port: int) -> None:
    outstation = Outstation()
    server = await outstation.listen(port)
    master_a = await iec104.connect(iec104.Address("127.0.0.1", port))
    master_b = await iec104.connect(iec104.Address("127.0.0.1", port))
    await asyncio.sleep(0.1)
    await master_a.interrogate(CA)
    assert await master_a.send_command(cmd(iec104.DoubleValue.ON, 210, Action.SELECT))
    assert await master_a.send_command(cmd(iec104.DoubleValue.ON, 210))
    assert await master_b.send_command(cmd(iec104.SingleValue.ON, 211))  # no select first
    assert not await master_b.send_command(cmd(iec104.SingleValue.ON, 999, Action.SELECT))
    assert await master_b.send_command(cmd(iec104.SingleValue.OFF, 212, Action.SELECT))
    assert await master_b.send_command(cmd(iec104.SingleValue.OFF, 212, Action.CANCEL))
    assert not await master_b.send_command(cmd(iec104.ScaledValue(7), 777))
    await asyncio.sleep(0.1)
    await master_b.async_close()
    await master_a.async_close()
    await server.async_close()


SCENARIOS = {"station.pcap": station, "commands.pcapng": commands}


def capture(scenario, path: Path, port: int = PORT) -> None:
    """Run ``scenario(port)`` while dumpcap writes ``path``."""
    dumpcap = shutil.which("dumpcap")
    if dumpcap is None:
        raise SystemExit("dumpcap not found: install the Debian package 'tshark'")
    fmt = ["-P"] if path.suffix == ".pcap" else []
    with tempfile.TemporaryDirectory() as tmp:
        partial = Path(tmp) / path.name
        proc = subprocess.Popen([dumpcap, "-q", "-i", "lo", "-f", f"tcp port {port}", *fmt,
                                 "-w", str(partial)], stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while not partial.exists() and time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"dumpcap failed: {proc.stderr.read()}")  # type: ignore[union-attr]
                time.sleep(0.05)
            time.sleep(0.3)  # dumpcap has opened the interface once the file exists
            asyncio.run(scenario(port))
            time.sleep(0.3)  # let the last segments reach dumpcap
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
        shutil.move(partial, path)
    path.chmod(0o644)


def main(argv: list[str]) -> int:
    outdir = Path(argv[1]) if len(argv) > 1 else HERE
    outdir.mkdir(parents=True, exist_ok=True)
    for name, scenario in SCENARIOS.items():
        capture(scenario, outdir / name)
        print(f"wrote {outdir / name} ({(outdir / name).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
