"""``iec104 proxy`` as a real process: end to end with real peers, and kill tests.

* End to end: a hat-drivers outstation, our proxy (``python -m iec104.cli proxy``), a c104
  (lib60870) master: 100,000 data messages and 1,000 commands. c104 records every APDU it
  sends and receives; the proxy's Parquet log must hold exactly those APDUs, once each, with
  the right direction, and hat must decode exactly the commands c104 sent.
* The log directory is a dataset (``date=`` partitions, README 'Datasets'); files are
  found as ``date=*/*.parquet``.
* SIGTERM mid-stream loses nothing; SIGKILL mid-stream leaves a readable directory and, after
  recovery, loses at most what arrived within the last flush interval.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from iec104.codec import (
    ASDU,
    Cause,
    FloatingValue,
    Framer,
    IFrame,
    InformationObject,
    Quality,
    TypeId,
    encode_apdu,
    encode_asdu,
)
from iec104.recorder import read_journal, recover
from tests.conftest import REPO_ROOT, find_unused_tcp_port
from tests.support import HOST

GOOD = Quality(False, False, False, False, False)


class ProxyProcess(subprocess.Popen[str]):
    early_stderr = ""
    """What the proxy wrote to stderr before it was listening."""


_started: list[ProxyProcess] = []


@pytest.fixture(autouse=True)
def _no_proxy_left_behind() -> Iterator[None]:
    """A test that fails before stopping its proxy must not leave the process running."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def start_proxy(upstream_port: int, output: Path, *args: str) -> tuple[ProxyProcess, int]:
    """Start ``iec104 proxy`` on a free port; returns the process and its port."""
    proc = ProxyProcess(
        [sys.executable, "-m", "iec104.cli", "proxy", "--listen", f"{HOST}:0",
         "--upstream", f"{HOST}:{upstream_port}", "-o", str(output), *args],
        cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    _started.append(proc)
    assert proc.stderr is not None
    lines = []
    while line := proc.stderr.readline():
        lines.append(line)
        m = re.search(r"listening on [\d.]+:(\d+)", line)
        if m is not None:
            proc.early_stderr = "".join(lines)
            return proc, int(m.group(1))
    proc.kill()
    raise AssertionError(f"proxy did not start: {''.join(lines)}")


def stop_proxy(proc: ProxyProcess, sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, proc.early_stderr + err


def log_apdus(df: pd.DataFrame, direction: str) -> list[bytes]:
    part = df[(df["direction"] == direction) & df["apci"].notna()]
    return part.drop_duplicates("apdu").sort_values("apdu")["raw"].tolist()


# -- end to end: hat outstation <-> proxy <-> c104 master -------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_end_to_end_100k_data_1k_commands_hat_outstation_c104_master(
        tmp_path: Path) -> None:
    from tests.support import hatpeer
    from tests.support.c104process import C104ClientProcess
    from tests.support.hatpeer import HatRtu, iec104

    n_data, n_commands = 100_000, 1_000
    loop = asyncio.get_running_loop()
    out = tmp_path / "log"
    port = find_unused_tcp_port()
    # hat's t1 at the standard 15 s, above lib60870's t2 of 10 s (hatpeer's fast 5 s t1 can
    # expire while lib60870 legitimately waits for t2 before acknowledging a short burst)
    async with HatRtu(port, command_ioas=None, response_timeout=15.0) as rtu:
        proc, proxy_port = start_proxy(port, out, "--rotate-size", "8M")
        # c104 2.2.1 sometimes misses an ActCon that arrives in the same TCP segment as its
        # ActTerm (reproduced without the proxy: hat writes them 20 us apart, the proxy can
        # read both at once); command() then waits for its timeout and returns False. So
        # the timeout is short and the confirmations are checked on the wire below.
        # in a child process: c104 must not share this process's GIL and heap (c104process)
        client = C104ClientProcess(proxy_port, command_timeout_ms=1000)
        try:
            await loop.run_in_executor(None, client.start)
            conn = await rtu.wait_connection()
            await rtu.wait_enabled(conn)
            q = hatpeer.good_measurement()
            msgs = [rtu._data_msg(1000 + i % 500,
                                  iec104.FloatingData(value=iec104.FloatingValue(float(i)),
                                                      quality=q),
                                  iec104.DataResCause.SPONTANEOUS) for i in range(n_data)]
            # 100 rounds: the outstation sends 1000 data messages, the master sends 10
            # commands meanwhile (hat queues its confirmations behind all data it has been
            # given, so the data is paced rather than handed to hat at once)
            per_round = n_commands * 1000 // n_data

            def send_commands(first: int) -> list[bool]:
                return client.commands([(5000 + k % 50, "C_SC_NA_1", bool(k % 2))
                                        for k in range(first, first + per_round)])

            async def received_at_least(n: int, timeout: float) -> int:
                deadline = loop.time() + timeout
                while (count := await loop.run_in_executor(None, client.received_count)) < n:
                    if loop.time() > deadline:
                        break
                    await asyncio.sleep(0.005)
                return count

            confirmed: list[bool] = []
            for r, i in enumerate(range(0, n_data, 1000)):
                await conn.send(msgs[i:i + 1000])
                confirmed += await loop.run_in_executor(None, send_commands, r * per_round)
                await received_at_least(i + 1000, 120)
            assert len(confirmed) == n_commands
            count = await received_at_least(n_data, 120)
            assert count >= n_data, f"c104 received {count} of {n_data}"
            await asyncio.sleep(0.5)  # last acknowledgements
            raw = await loop.run_in_executor(None, client.raw)  # before stop(): see below
            values = await loop.run_in_executor(None, client.received_values)
        finally:
            await loop.run_in_executor(None, client.stop)
        code, err = stop_proxy(proc)
    assert code == 0, err

    # what the master saw
    assert values == [float(i) for i in range(n_data)]
    # what the outstation saw: exactly the commands the master sent, in order
    got_commands = [m for m in rtu.received if isinstance(m, iec104.CommandMsg)]
    assert [(m.io_address, m.command.value) for m in got_commands] == [
        (5000 + i % 50, iec104.SingleValue(i % 2)) for i in range(n_commands)]

    # every command was confirmed and terminated on the wire, as c104 received it
    from iec104.codec import decode_apdu, decode_asdu

    def commands_by_cause(frames: list[bytes]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for apdu in frames:
            if apdu[2] & 0x01 == 0 and apdu[6] == TypeId.C_SC_NA_1:
                cause = int(decode_asdu(decode_apdu(apdu).asdu).cause)  # type: ignore[union-attr]
                counts[cause] = counts.get(cause, 0) + 1
        return counts

    assert commands_by_cause([f.data for f in raw if f.direction == "s2c"]) == {
        Cause.ACTIVATION_CONFIRMATION: n_commands, Cause.ACTIVATION_TERMINATION: n_commands}
    print(f"c104 command() reported {sum(confirmed)} of {n_commands} confirmations")

    # the log: every APDU the master sent or received, exactly once, with its direction.
    # lib60870 sends a last S-frame when it is stopped without reporting it to on_send_raw,
    # so frames after the snapshot taken before stop() may only be S/U-frames
    c2s = [f.data for f in raw if f.direction == "c2s"]
    s2c = [f.data for f in raw if f.direction == "s2c"]
    df = pd.read_parquet(out)
    for logged, seen in ((log_apdus(df, "c2s"), c2s), (log_apdus(df, "s2c"), s2c)):
        assert logged[:len(seen)] == seen
        assert all(apdu[2] & 0x01 for apdu in logged[len(seen):])  # no I-frame
        assert len(logged) - len(seen) <= 2
    # no decoding error; the only event rows are the FINs the proxy passed on
    assert df["error"].dropna().str.contains(r"^proxy: \w+ closed its sending direction "
                                             r"\(FIN\)").all()
    data_rows = df[(df["type_id"] == TypeId.M_ME_NC_1)]
    assert len(data_rows) == n_data and data_rows["value"].tolist() == [
        float(i) for i in range(n_data)]
    cmd_rows = df[(df["type_id"] == TypeId.C_SC_NA_1)]
    assert (cmd_rows["direction"] == "c2s").sum() == n_commands
    assert (cmd_rows["cot_name"] == "ACTIVATION_CONFIRMATION").sum() == n_commands
    assert len(list(out.glob("date=*/*.parquet"))) >= 1
    assert not list(out.rglob(".*"))  # nothing left open


# -- kill tests ----------------------------------------------------------------------------------


class Streamer:
    """A raw outstation that sends numbered I-frames as fast as its client reads them, and a
    raw master that reads and timestamps them; both in threads of this process."""

    def __init__(self) -> None:
        import socket

        self.server = socket.socket()
        self.server.bind((HOST, 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        self.receive_times: list[tuple[float, int]] = []  # (time, bytes received so far)
        self.sent = 0
        self._stop = threading.Event()
        self._pause = threading.Event()  # set: the outstation stops sending ...
        self._paused = threading.Event()  # ... and sets this once it has stopped
        self._threads: list[threading.Thread] = []

    @staticmethod
    def frame(i: int) -> bytes:
        asdu = encode_asdu(ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
                                (InformationObject(i % 1000, FloatingValue(float(i)), GOOD),)))
        return encode_apdu(IFrame(i % 32768, 0, asdu))

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        i = 0
        try:
            while not self._stop.is_set():
                if self._pause.is_set():
                    self._paused.set()
                    time.sleep(0.01)
                    continue
                self._paused.clear()
                chunk = b"".join(self.frame(i + j) for j in range(50))
                conn.sendall(chunk)
                i += 50
                self.sent = i
                time.sleep(0.001)
        except OSError:
            pass
        finally:
            conn.close()

    def _read(self, sock: object) -> None:
        import socket

        assert isinstance(sock, socket.socket)
        while True:
            try:
                data = sock.recv(1 << 16)
            except OSError:
                break
            if not data:
                break
            self.received += data
            self.receive_times.append((time.time(), len(self.received)))

    def start(self, proxy_port: int) -> None:
        import socket

        t = threading.Thread(target=self._serve, daemon=True)
        t.start()
        sock = socket.create_connection((HOST, proxy_port))
        r = threading.Thread(target=self._read, args=(sock,), daemon=True)
        r.start()
        self._threads = [t, r]
        self._sock = sock

    def pause(self) -> None:
        """Stop sending; return once the outstation has (what it sent may still be in flight)."""
        self._pause.set()
        assert self._paused.wait(10), "the outstation did not pause"

    def resume(self) -> None:
        self._pause.clear()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self._sock.close()
        self.server.close()

    def apdus(self) -> list[bytes]:
        framer = Framer()
        framer.feed(bytes(self.received))
        return [e.raw for e in framer]  # type: ignore[union-attr]


@pytest.fixture
def streamer() -> Iterator[Streamer]:
    s = Streamer()
    yield s
    s.stop()


@pytest.mark.timeout(120)
def test_sigterm_mid_stream_loses_nothing(tmp_path: Path, streamer: Streamer) -> None:
    proc, port = start_proxy(streamer.port, tmp_path, "--flush-seconds", "10",
                             "--rotate-size", "256k")
    streamer.start(port)
    deadline = time.monotonic() + 20
    while len(streamer.received) < 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    code, err = stop_proxy(proc, signal.SIGTERM)
    assert code == 0, err
    received = streamer.apdus()
    assert len(received) > 25_000
    df = pd.read_parquet(tmp_path)
    logged = log_apdus(df, "s2c")
    # everything the master received was logged; the proxy may have logged a little more
    # that it read after it stopped forwarding (the outstation kept sending)
    assert logged[:len(received)] == received
    assert logged == [Streamer.frame(i) for i in range(len(logged))]
    assert len(list(tmp_path.glob("date=*/*.parquet"))) > 1  # rotated along the way
    assert not list(tmp_path.rglob(".*"))


@pytest.mark.timeout(120)
def test_sigkill_leaves_readable_files_and_loses_at_most_one_flush_interval(
        tmp_path: Path, streamer: Streamer) -> None:
    flush_seconds = 0.3
    proc, port = start_proxy(streamer.port, tmp_path, "--flush-seconds", str(flush_seconds),
                             "--flush-rows", "1000000", "--rotate-size", "1M")
    streamer.start(port)
    deadline = time.monotonic() + 20
    while len(streamer.received) < 3_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.stderr is not None
    proc.stderr.close()
    time.sleep(0.2)

    # 1. right after the kill: the directory is a readable dataset (complete files only)
    visible = sorted(tmp_path.glob("date=*/*.parquet"))
    assert visible, "no file was completed before the kill"
    before = pd.read_parquet(tmp_path)
    journals = list(tmp_path.glob(".*.arrows"))
    assert len(journals) <= 1  # the open segment's (none if it had just rotated)

    # 2. recovery turns the journal into a Parquet file
    recovered = recover(tmp_path)  # (a journal killed before its first batch holds no rows)
    assert len(recovered) <= len(journals)
    assert not list(tmp_path.rglob(".*"))
    after = pd.read_parquet(tmp_path)
    assert len(after) >= len(before)
    logged = log_apdus(after, "s2c")
    received = streamer.apdus()
    assert logged == received[:len(logged)]  # a prefix: nothing wrong, nothing twice
    # the bound: what the master had received flush_seconds (+ scheduling slack) before the
    # kill is in the log
    margin = flush_seconds + 0.5
    safe_bytes = max((n for t, n in streamer.receive_times if t <= killed_at - margin),
                     default=0)
    framer = Framer()
    framer.feed(bytes(streamer.received[:safe_bytes]))
    safe = sum(1 for _ in framer)
    assert len(logged) >= safe, (len(logged), safe, len(received))
    lost = len(received) - len(logged)
    print(f"SIGKILL: {len(received)} APDUs received by the master, {len(logged)} logged "
          f"after recovery, {lost} lost (flush interval {flush_seconds} s)")


@pytest.mark.timeout(60)
def test_a_restarted_proxy_recovers_the_killed_one_s_journal(tmp_path: Path,
                                                              streamer: Streamer) -> None:
    proc, port = start_proxy(streamer.port, tmp_path, "--flush-seconds", "0.2")
    streamer.start(port)
    deadline = time.monotonic() + 60
    # kill once a flush reached the journal (an event, not a delay: startup is slow under load)
    while len(streamer.received) < 200_000 or not any(
            read_journal(j)[0] for j in tmp_path.glob(".*.arrows")):
        assert time.monotonic() < deadline, "nothing reached the journal"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert list(tmp_path.glob("date=*/*.parquet")) == []  # one open segment, nothing complete
    proc2, _ = start_proxy(find_unused_tcp_port(), tmp_path)
    code, err = stop_proxy(proc2)
    assert code == 0, err
    assert "recovered" in err
    logged = log_apdus(pd.read_parquet(tmp_path), "s2c")
    assert len(logged) > 0
    assert logged == streamer.apdus()[:len(logged)]


def test_sigint_stops_cleanly_with_exit_code_130(tmp_path: Path) -> None:
    proc, _ = start_proxy(find_unused_tcp_port(), tmp_path)
    code, err = stop_proxy(proc, signal.SIGINT)
    assert code == 130, err
    assert "stopped" in err


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    env = {**os.environ}
    for args in (["--listen", "nope", "--upstream", "127.0.0.1:1", "-o", str(tmp_path)],
                 ["--listen", ":0", "--upstream", ":1", "-o", str(tmp_path), "--drop", "x"]):
        res = subprocess.run([sys.executable, "-m", "iec104.cli", "proxy", *args], cwd=REPO_ROOT,
                             capture_output=True, text=True, env=env, timeout=60, check=False)
        assert res.returncode == 2, res.stderr
        assert res.stderr.startswith("iec104: ")


def test_a_log_directory_that_cannot_be_written_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    for output, problem in ((tmp_path / "missing" / "log", f"{tmp_path / 'missing'}: no such "
                             "directory"),
                            (tmp_path / "file", f"{tmp_path / 'file'}: is not a directory"),
                            (tmp_path / "file" / "log", f"{tmp_path / 'file'}: is not a "
                             "directory")):
        res = subprocess.run([sys.executable, "-m", "iec104.cli", "proxy", "--listen",
                              f"{HOST}:0", "--upstream", f"{HOST}:1", "-o", str(output)],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                             check=False)
        assert (res.returncode, res.stderr) == (2, f"iec104: {problem}\n")
    assert not (tmp_path / "missing").exists()


@pytest.mark.timeout(60)
def test_cli_drop_rule_renumbers_and_logs(tmp_path: Path) -> None:
    import socket

    from iec104.codec import InformationObject as IO
    from iec104.codec import SingleValue, decode_asdu

    def cmd(ssn: int, ioa: int) -> bytes:
        asdu = encode_asdu(ASDU(TypeId.C_SC_NA_1, False, Cause.ACTIVATION, False, False, 0, 1,
                                (IO(ioa, SingleValue.ON, select=False, qualifier=0),)))
        return encode_apdu(IFrame(ssn, 0, asdu))

    with socket.socket() as srv:
        srv.bind((HOST, 0))
        srv.listen()
        proc, port = start_proxy(srv.getsockname()[1], tmp_path,
                                 "--drop", "type=C_SC_NA_1,ioa=5")
        try:
            master = socket.create_connection((HOST, port), timeout=5)
            outstation, _ = srv.accept()
            outstation.settimeout(5)
            master.sendall(cmd(0, 4) + cmd(1, 5) + cmd(2, 6))
            got = b""
            while len(got) < 32:
                got += outstation.recv(100)
            framer = Framer()
            framer.feed(got)
            apdus = [e.apdu for e in framer]  # type: ignore[union-attr]
            assert all(isinstance(a, IFrame) for a in apdus)
            # the outstation sees N(S) 0, 1 without a gap: the command to IOA 5 is gone
            assert [(a.ssn, decode_asdu(a.asdu).objects[0].address)  # type: ignore[union-attr]
                    for a in apdus] == [(0, 4), (1, 6)]
            master.close()
            outstation.close()
        finally:
            code, err = stop_proxy(proc)
    assert code == 0, err
    assert "rules={'drop type=C_SC_NA_1,ioa=5': 1}" in err
    df = pd.read_parquet(tmp_path)
    assert df["error"].fillna("").str.contains("dropped c2s C_SC_NA_1").sum() == 1


def logger_pid(proxy_pid: int) -> int:
    """The pid of the proxy's logger process (its only child)."""
    children = [int(pid) for task in Path(f"/proc/{proxy_pid}/task").iterdir()
                for pid in (task / "children").read_text().split()]
    assert len(children) == 1, children
    return children[0]


@pytest.mark.timeout(120)
def test_killing_the_logger_process_forwarding_goes_on_and_the_log_is_readable(
        tmp_path: Path, streamer: Streamer) -> None:
    proc, port = start_proxy(streamer.port, tmp_path, "--flush-seconds", "0.2",
                             "--rotate-size", "256k")
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(iter(proc.stderr.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    streamer.start(port)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("date=*/*.parquet")):  # an event, not a delay
        assert time.monotonic() < deadline, "no file completed"
        time.sleep(0.05)
    first = logger_pid(proc.pid)
    os.kill(first, signal.SIGKILL)
    killed_at = len(streamer.received)
    # the directory stays a readable dataset right after the kill
    assert len(pd.read_parquet(tmp_path)) > 0
    while len(streamer.received) < killed_at + 1_000_000 or not any(
            "logger process restarted" in line for line in stderr):
        assert time.monotonic() < deadline, "forwarding or the restart stalled"
        assert proc.poll() is None, "".join(stderr)
        time.sleep(0.05)
    assert logger_pid(proc.pid) != first
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    reader.join(10)
    err = "".join(stderr)
    assert proc.returncode == 1, err  # the log is incomplete
    assert f"the logger process (pid {first}) died (killed by signal 9)" in err
    assert stderr[-1].startswith("iec104: the logger process died 1 time(s)"), stderr[-1]
    assert "Traceback" not in err
    assert not list(tmp_path.rglob(".*"))  # the dead logger's journal was recovered

    df = pd.read_parquet(tmp_path)
    text = df["error"].fillna("")
    died = df[text.str.startswith(f"proxy: the logger process (pid {first}) died")]
    assert len(died) == 1 and died["stream"].isna().all(), died
    apdus = df[df["apci"].notna()]
    assert apdus["apdu"].is_unique  # the new logger numbers on
    received = streamer.apdus()
    index = {apdu: i for i, apdu in enumerate(received)}
    death = died["time"].iloc[0]
    logged = log_apdus(df[df["time"] < death], "s2c")
    # before the death: a prefix of what the master received, nothing wrong, nothing twice
    assert len(logged) > 0 and logged == received[:len(logged)]
    # after the restart: logging goes on, in order, every row one the master received
    later = [index.get(raw) for raw in log_apdus(df[df["time"] > death], "s2c")]
    later = [i for i in later if i is not None]  # an APDU cut by the restart is malformed
    assert len(later) > 10_000 and later == sorted(later) and later[0] >= len(logged)
