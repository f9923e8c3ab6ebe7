"""The proxy over real sockets on 127.0.0.1: transparency, logging, connection events, rules.

Peers here are raw asyncio sockets (byte-exact control) and, for rules, hat-drivers (master)
with c104 (outstation): implementations we did not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pandas as pd
import pytest

from iec104.codec import (
    Framer,
    IFrame,
    SFrame,
    TypeId,
    UFrame,
    UFunction,
    encode_apdu,
)
from iec104.recorder import BackgroundProxy, Proxy, Rule, parse_rule
from tests.conftest import find_unused_tcp_port
from tests.support import HOST
from tests.support.apdus import measurement

pytestmark = pytest.mark.timeout(120)




def stream_of(n: int, seed: int, garbage: bool = True) -> tuple[bytes, list[bytes]]:
    """``n`` APDUs of mixed kinds with some garbage between them; returns (bytes, apdus)."""
    rng = random.Random(seed)
    out = bytearray()
    apdus = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.8:
            apdu = encode_apdu(IFrame(i % 32768, rng.randrange(32768),
                                      measurement(rng.randrange(1 << 24), rng.random())))
        elif kind < 0.9:
            apdu = encode_apdu(SFrame(rng.randrange(32768)))
        else:
            apdu = encode_apdu(UFrame(rng.choice(list(UFunction))))
        apdus.append(apdu)
        out += apdu
        if garbage and rng.random() < 0.01:
            out += bytes([0x00, 0xFF, 0x13])  # never looks like a start octet
    return bytes(out), apdus


async def send_in_chunks(writer: asyncio.StreamWriter, data: bytes, seed: int) -> None:
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        n = rng.choice((1, 2, 7, 100, 1500, 20000))
        writer.write(data[pos:pos + n])
        pos += n
        if rng.random() < 0.05:
            await writer.drain()
            await asyncio.sleep(0)
    await writer.drain()


class RawOutstation:
    """A TCP server that sends a scripted byte stream to each client and records input."""

    def __init__(self, script: bytes = b"", seed: int = 1) -> None:
        self.script = script
        self.seed = seed
        self.received: dict[int, bytearray] = {}
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.writers)
        self.writers.append(writer)
        buf = self.received.setdefault(index, bytearray())
        sender = asyncio.create_task(send_in_chunks(writer, self.script, self.seed + index))
        while data := await reader.read(65536):
            buf += data
        await sender
        writer.close()  # the master left: so do we


async def read_exactly(reader: asyncio.StreamReader, n: int, timeout: float = 30) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), timeout)


def logged_apdus(df: pd.DataFrame, stream: int, direction: str) -> list[bytes]:
    """The raw APDUs logged for one direction, once per APDU (object rows share ``apdu``)."""
    part = df[(df["stream"] == stream) & (df["direction"] == direction) & df["apci"].notna()]
    return part.drop_duplicates("apdu").sort_values("apdu")["raw"].tolist()


async def test_bytes_pass_unchanged_both_ways_and_every_apdu_is_logged_once(
        tmp_path: Path) -> None:
    s2c, s2c_apdus = stream_of(3000, seed=1)
    c2s, c2s_apdus = stream_of(2000, seed=2)
    async with RawOutstation(s2c) as out:
        proxy = Proxy(f"{HOST}:0", (HOST, out.port), tmp_path, flush_rows=500)
        await proxy.start()
        reader, writer = await asyncio.open_connection(*proxy.address)
        sender = asyncio.create_task(send_in_chunks(writer, c2s, seed=3))
        got = await read_exactly(reader, len(s2c))
        await sender
        while len(out.received.get(0, b"")) < len(c2s):
            await asyncio.sleep(0.01)
        writer.close()
        await proxy.stop()
    assert got == s2c
    assert bytes(out.received[0]) == c2s
    df = pd.read_parquet(tmp_path)
    assert logged_apdus(df, 0, "c2s") == c2s_apdus
    assert logged_apdus(df, 0, "s2c") == s2c_apdus
    garbage = df[df["error"].fillna("").str.startswith("APCI")]
    assert set(garbage["raw"]) == {b"\x00\xff\x13"}
    assert len(garbage) == s2c.count(b"\x00\xff\x13") + c2s.count(b"\x00\xff\x13")
    row = df[df["direction"] == "c2s"].iloc[0]
    assert (row["dst"], row["dport"], row["src"]) == (HOST, out.port, HOST)
    assert pd.isna(row["frame"]) and row["time"].tzinfo is not None
    assert df["apdu"].dropna().is_monotonic_increasing  # numbered in the order logged


async def test_many_masters_at_once(tmp_path: Path) -> None:
    script, script_apdus = stream_of(300, seed=5, garbage=False)
    masters = 25
    async with RawOutstation(script) as out, Proxy(f"{HOST}:0", (HOST, out.port),
                                                   tmp_path) as proxy:

        async def master(i: int) -> bytes:
            reader, writer = await asyncio.open_connection(*proxy.address)
            mine = b"".join(encode_apdu(IFrame(n, 0, measurement(i, n))) for n in range(100))
            await send_in_chunks(writer, mine, seed=i)
            got = await read_exactly(reader, len(script))
            writer.close()
            return got

        results = await asyncio.gather(*(master(i) for i in range(masters)))
        assert all(r == script for r in results)
        assert proxy.stats["connections_total"] == masters
        for _ in range(200):
            if proxy.stats["connections_open"] == 0:
                break
            await asyncio.sleep(0.01)
    df = pd.read_parquet(tmp_path)
    assert sorted(df["stream"].unique()) == list(range(masters))
    for stream in range(masters):
        assert logged_apdus(df, stream, "s2c") == script_apdus
        c2s = df[(df["stream"] == stream) & (df["direction"] == "c2s") & df["apci"].notna()]
        assert len(c2s) == 100 and c2s["ioa"].nunique() == 1  # one master's own points


async def test_unreachable_upstream_closes_the_master_cleanly_and_is_logged(
        tmp_path: Path) -> None:
    dead_port = find_unused_tcp_port()
    async with Proxy(f"{HOST}:0", (HOST, dead_port), tmp_path) as proxy:
        reader, writer = await asyncio.open_connection(*proxy.address)
        writer.write(encode_apdu(UFrame(UFunction.STARTDT_ACT)))
        assert await asyncio.wait_for(reader.read(), 10) == b""  # EOF (FIN), not a reset
        writer.close()
    df = pd.read_parquet(tmp_path)
    events = df[df["error"].fillna("").str.startswith("proxy:")]
    assert len(events) == 1
    assert f"upstream {HOST}:{dead_port} unreachable" in events.iloc[0]["error"]
    assert events.iloc[0]["dport"] == dead_port


async def test_upstream_dropping_closes_the_master_after_forwarding_everything(
        tmp_path: Path) -> None:
    script, script_apdus = stream_of(500, seed=9, garbage=False)
    script += b"\x68\x0e\x00"  # the outstation dies in the middle of an APDU

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(script)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    async with Proxy(f"{HOST}:0", (HOST, port), tmp_path) as proxy:
        reader, writer = await asyncio.open_connection(*proxy.address)
        got = await asyncio.wait_for(reader.read(), 10)  # everything, then EOF
        writer.close()
    server.close()
    assert got == script
    df = pd.read_parquet(tmp_path)
    assert logged_apdus(df, 0, "s2c") == script_apdus
    errors = df["error"].dropna().tolist()
    assert any(e.startswith("proxy: upstream closed its sending direction (FIN)")
               for e in errors)
    assert any("stream ended inside an APDU (3 octets)" in e for e in errors)


async def test_master_leaving_closes_the_upstream_connection(tmp_path: Path) -> None:
    closed = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        closed.set()
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    async with Proxy(f"{HOST}:0", (HOST, port), None) as proxy:
        _, writer = await asyncio.open_connection(*proxy.address)
        writer.write(b"\x68\x04\x07\x00\x00\x00")
        await writer.drain()
        writer.close()
        await asyncio.wait_for(closed.wait(), 5)
    server.close()


@contextlib.contextmanager
def raw_peers_through(output: Path) -> Iterator[tuple[BackgroundProxy, socket.socket,
                                                         socket.socket]]:
    """A :class:`BackgroundProxy` logging into ``output``, between two raw sockets:
    yields (proxy, master, outstation); stops the proxy on the way out."""
    with socket.socket() as srv:
        srv.bind((HOST, 0))
        srv.listen()
        proxy = BackgroundProxy(f"{HOST}:0", srv.getsockname(), output).start()
        try:
            master = socket.create_connection(proxy.address, timeout=10)
            outstation, _ = srv.accept()
            outstation.settimeout(10)
            with master, outstation:
                yield proxy, master, outstation
        finally:
            proxy.stop()


def test_background_proxy_notebook_api(tmp_path: Path) -> None:
    script, apdus = stream_of(50, seed=11, garbage=False)
    with raw_peers_through(tmp_path) as (proxy, master, outstation):
        outstation.sendall(script)
        got = b""
        while len(got) < len(script):
            got += master.recv(65536)
        df = proxy.dataframe()  # while running: everything so far
        assert df.drop_duplicates("apdu")["raw"].tolist() == apdus
        assert proxy.stats["connections_open"] == 1
        master.close()
        outstation.close()
        files = proxy.stop()
    assert len(files) == 1
    assert len(proxy.dataframe()) == len(pd.read_parquet(tmp_path))


def test_listening_on_a_busy_port_raises(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        with pytest.raises(OSError):
            BackgroundProxy(busy.getsockname(), (HOST, 1), tmp_path).start()


def test_a_log_directory_that_cannot_be_made_is_a_log_error_not_a_listen_error(
        tmp_path: Path) -> None:
    from iec104.recorder import LogWriterError

    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(LogWriterError, match=r"file/log: cannot write the log: .*Not a directory"):
        BackgroundProxy(f"{HOST}:0", (HOST, 1), tmp_path / "file" / "log").start()


# -- rules with real peers: hat-drivers master, c104 outstation ---------------------------------


@pytest.fixture
def c104_outstation():
    from tests.support.c104peer import C104Server, c104

    port = find_unused_tcp_port()
    server = C104Server(port)
    for ioa in (100, 101):
        server.add_point(ioa, c104.Type.C_SC_NA_1)
    server.start()
    yield server
    server.stop()


async def test_drop_rule_blocks_a_command_and_the_master_connection_survives(
        tmp_path: Path, c104_outstation) -> None:
    from tests.support import hatpeer
    from tests.support.hatpeer import iec104

    rule = parse_rule("drop", "type=C_SC_NA_1,ioa=100")
    async with Proxy(f"{HOST}:0", (HOST, c104_outstation.port), tmp_path,
                     rules=[rule]) as proxy:
        conn = await hatpeer.hat_connect(proxy.address[1], response_timeout=1.0,
                                         supervisory_timeout=0.2)

        def cmd(ioa: int) -> iec104.CommandMsg:
            return iec104.CommandMsg(
                is_test=False, originator_address=0, asdu_address=1, io_address=ioa,
                command=iec104.SingleCommand(value=iec104.SingleValue.ON, select=False,
                                             qualifier=0),
                is_negative_confirm=False, time=None, cause=iec104.CommandReqCause.ACTIVATION)

        await conn.send([cmd(100)])
        with pytest.raises(TimeoutError):  # blocked: no confirmation ever comes
            await hatpeer.receive_until(conn, lambda m: True, timeout=2.0)
        # 2 s > hat's t1 of 1 s: the proxy acknowledged the dropped I-frame in time
        assert conn.is_open
        await conn.send([cmd(101)])
        msgs = await hatpeer.receive_until(
            conn, lambda m: isinstance(m, iec104.CommandMsg)
            and m.cause == iec104.CommandResCause.ACTIVATION_CONFIRMATION, timeout=5.0)
        assert msgs[-1].io_address == 101 and not msgs[-1].is_negative_confirm
        await conn.async_close()
    assert [c.ioa for c in c104_outstation.commands] == [101]
    assert rule.applied == 1
    df = pd.read_parquet(tmp_path)
    actions = df[df["error"].fillna("").str.startswith("proxy: rule")]
    assert len(actions) == 1 and "dropped c2s C_SC_NA_1" in actions.iloc[0]["error"]
    sent = df[(df["direction"] == "c2s") & (df["type_id"] == TypeId.C_SC_NA_1)]
    assert sent["ioa"].tolist() == [100, 101]  # the log shows what the master sent


async def test_rewrite_rule_turns_confirmations_negative(tmp_path: Path, c104_outstation) -> None:
    from tests.support import hatpeer
    from tests.support.hatpeer import iec104

    rules = [Rule("rewrite", direction="s2c", type_id=TypeId.C_SC_NA_1,
                  changes={"negative": True})]
    async with Proxy(f"{HOST}:0", (HOST, c104_outstation.port), tmp_path, rules=rules) as proxy:
        conn = await hatpeer.hat_connect(proxy.address[1])
        await conn.send([iec104.CommandMsg(
            is_test=False, originator_address=0, asdu_address=1, io_address=100,
            command=iec104.SingleCommand(value=iec104.SingleValue.ON, select=False, qualifier=0),
            is_negative_confirm=False, time=None, cause=iec104.CommandReqCause.ACTIVATION)])
        msgs = await hatpeer.receive_until(
            conn, lambda m: isinstance(m, iec104.CommandMsg), timeout=5.0)
        assert msgs[-1].is_negative_confirm is True
        await conn.async_close()
    assert [c.ioa for c in c104_outstation.commands] == [100]  # it did execute
    df = pd.read_parquet(tmp_path)
    confirmation = df[(df["direction"] == "s2c") & (df["type_id"] == TypeId.C_SC_NA_1)]
    assert confirmation["negative"].tolist() == [False]  # as the outstation sent it
    assert df["error"].fillna("").str.contains("rewrote s2c C_SC_NA_1").sum() == 1


def test_framer_sees_the_same_apdus_as_the_log() -> None:
    # guard for logged_apdus(): object rows of one APDU share their index and raw octets
    data, apdus = stream_of(20, seed=3, garbage=False)
    framer = Framer()
    framer.feed(data)
    assert [e.raw for e in framer] == apdus  # type: ignore[union-attr]


async def test_forwarding_goes_on_when_the_log_cannot_be_written(tmp_path: Path) -> None:
    import shutil

    from iec104.recorder import LogWriterError

    out = tmp_path / "log"
    script, _ = stream_of(4000, seed=21, garbage=False)
    half = len(script) // 2
    async with RawOutstation() as outstation:
        proxy = Proxy(f"{HOST}:0", (HOST, outstation.port), out, flush_rows=100,
                      max_bytes=4096)
        await proxy.start()
        _, writer = await asyncio.open_connection(*proxy.address)
        await send_in_chunks(writer, script[:half], seed=1)
        while len(outstation.received.get(0, b"")) < half:
            await asyncio.sleep(0.01)
        proxy.flush()
        assert proxy.writer is not None
        proxy.writer.sync()  # the writer thread is idle: nothing is written during rmtree
        shutil.rmtree(out)  # the next journal cannot be created
        await send_in_chunks(writer, script[half:], seed=2)
        while len(outstation.received.get(0, b"")) < len(script):
            await asyncio.sleep(0.01)
        proxy.flush()
        proxy.writer.sync()
        assert bytes(outstation.received[0]) == script  # every byte still forwarded
        assert proxy.writer.suspended and proxy.stats["rows_held"] > 0
        writer.close()
        with pytest.raises(LogWriterError, match="rows held in memory could not be written"):
            await proxy.stop()  # the directory never came back


# -- half-close: a FIN is passed on, the other direction keeps flowing --------------------------


def half_close_through_proxy(tmp_path: Path, first: str) -> tuple[bytes, bytes, pd.DataFrame]:
    """Raw sockets on both ends: the ``first`` side ('master' or 'outstation') sends a request
    and shuts down its sending direction (FIN); the other side reads it to EOF, then answers
    and closes. Returns (what the other side read, the answer the first side read, the log)."""
    request = encode_apdu(IFrame(0, 0, measurement(1, 1.0)))
    answer = encode_apdu(IFrame(0, 1, measurement(2, 2.0))) + encode_apdu(SFrame(1))
    with raw_peers_through(tmp_path) as (_, master, outstation):
        closer, answerer = (master, outstation) if first == "master" else (outstation, master)
        closer.sendall(request)
        closer.shutdown(socket.SHUT_WR)
        heard = b""
        while chunk := answerer.recv(65536):  # up to the FIN passed on by the proxy
            heard += chunk
        answerer.sendall(answer)
        answerer.close()
        got = b""
        while chunk := closer.recv(65536):
            got += chunk
        closer.close()
    return heard, got, pd.read_parquet(tmp_path)


@pytest.mark.parametrize("first", ["master", "outstation"])
def test_half_close_is_passed_through_and_the_answer_still_arrives(tmp_path: Path,
                                                                   first: str) -> None:
    heard, got, df = half_close_through_proxy(tmp_path, first)
    assert heard == encode_apdu(IFrame(0, 0, measurement(1, 1.0)))
    assert got == encode_apdu(IFrame(0, 1, measurement(2, 2.0))) + encode_apdu(SFrame(1))
    closer, other = ("c2s", "s2c") if first == "master" else ("s2c", "c2s")
    assert len(logged_apdus(df, 0, closer)) == 1 and len(logged_apdus(df, 0, other)) == 2
    events = df[df["error"].fillna("").str.startswith("proxy:")]
    # one row per FIN passed on, in order, in the direction of the side that sent it
    who = {"c2s": "master", "s2c": "upstream"}
    text = "proxy: {} closed its sending direction (FIN); passed on to the {}"
    expected = [(d, text.format(who[d], who[o])) for d, o in ((closer, other), (other, closer))]
    assert list(zip(events["direction"], events["error"], strict=True)) == expected


# -- the logger process ----------------------------------------------------------------------------


async def test_a_killed_logger_is_restarted_and_numbers_on(tmp_path: Path) -> None:
    import os
    import signal

    from iec104.recorder import LogWriterError

    script, apdus = stream_of(300, seed=5, garbage=False)
    more, more_apdus = stream_of(100, seed=6, garbage=False)
    async with RawOutstation() as outstation:
        proxy = Proxy(f"{HOST}:0", (HOST, outstation.port), tmp_path)
        await proxy.start()
        assert proxy.writer is not None and proxy.writer.pid is not None
        _, writer = await asyncio.open_connection(*proxy.address)
        await send_in_chunks(writer, script, seed=4)
        while len(outstation.received.get(0, b"")) < len(script):
            await asyncio.sleep(0.01)
        proxy.writer.sync()  # everything so far is in the journal
        pid = proxy.writer.pid
        os.kill(pid, signal.SIGKILL)
        while proxy.writer.deaths == 0 or proxy.writer.pid is None:  # the event loop notices
            await asyncio.sleep(0.01)
        assert proxy.writer.pid != pid
        await send_in_chunks(writer, more, seed=7)
        while len(outstation.received.get(0, b"")) < len(script) + len(more):
            await asyncio.sleep(0.01)
        writer.close()
        with pytest.raises(LogWriterError, match=r"logger process died 1 time\(s\); 0 octets"):
            await proxy.stop()
    assert bytes(outstation.received[0]) == script + more
    df = pd.read_parquet(tmp_path)  # the dead logger's journal was recovered
    assert not list(tmp_path.glob(".*"))
    # the cut fell between two APDUs: nothing malformed, nothing twice, numbering goes on
    assert logged_apdus(df, 0, "c2s") == apdus + more_apdus
    died = df[df["error"].fillna("").str.startswith(f"proxy: the logger process (pid {pid}) "
                                                    "died (killed by signal 9); 0 octets")]
    assert died["kind"].tolist() == ["event"]


def accounted_octets(df: pd.DataFrame) -> int:
    """Octets of one direction's rows: APDUs (once each), malformed octets, gaps' missing
    octets and the partial APDUs the gaps dropped; every octet received is in one of them."""
    apdus = df[df["apdu"].notna()].drop_duplicates("apdu")
    total = int(apdus[apdus["kind"] != "malformed"]["raw"].map(len).sum())
    total += int(df[df["kind"] == "malformed"]["raw"].map(len).sum())
    for text in df[df["kind"] == "gap"]["error"]:
        missing = re.match(r"gap: (\d+) octets", text)
        dropped = re.search(r"(\d+) buffered octets of an incomplete APDU dropped", text)
        total += int(missing.group(1)) + (int(dropped.group(1)) if dropped else 0)  # type: ignore[union-attr]
    return total


@pytest.mark.timeout(180)
async def test_a_stalled_logger_holds_forwarding_up_at_most_stall_seconds_and_the_loss_is_logged(
        tmp_path: Path) -> None:
    """A real logger process stopped (SIGSTOP) while traffic goes on: the pipe (up to
    1 MiB) and the backlog fill, reading pauses, and after ``stall_seconds`` forwarding goes
    on unlogged. Once it runs again, the log has a gap row and an event row counting what
    it missed, and every octet received is accounted for exactly once."""
    import os
    import signal

    from iec104.recorder import LogWriterError

    before, before_apdus = stream_of(2000, seed=12, garbage=False)
    block, _ = stream_of(20000, seed=13, garbage=False)
    during = block * 8  # some 3 MB: more than the pipe and the backlog take
    after, after_apdus = stream_of(1000, seed=14, garbage=False)
    async with RawOutstation() as outstation:
        proxy = Proxy(f"{HOST}:0", (HOST, outstation.port), tmp_path, max_backlog=64 << 10,
                      stall_seconds=0.3)
        await proxy.start()
        log = proxy.writer
        assert log is not None and log.pid is not None
        _, writer = await asyncio.open_connection(*proxy.address)

        async def forward(data: bytes, seed: int) -> None:
            want = len(outstation.received.get(0, b"")) + len(data)
            await send_in_chunks(writer, data, seed=seed)
            while len(outstation.received.get(0, b"")) < want:
                await asyncio.sleep(0.01)

        await forward(before, 1)
        log.sync()
        pid = log.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            await forward(during, 2)  # forwarded in full while the logger is stopped
            assert log.stalls == 1 and proxy.backlog_pauses >= 1  # paused, then stalled
            lost = log.octets_lost
            assert 0 < lost <= len(during)
            assert proxy.stats["octets_not_logged"] == lost
        finally:
            os.kill(pid, signal.SIGCONT)
        while log.backlog:  # the logger catches up with what the pipe and backlog held
            await asyncio.sleep(0.01)
        await forward(after, 3)
        writer.close()
        with pytest.raises(LogWriterError, match=rf"stalled 1 time\(s\); {lost} octets"):
            await proxy.stop()
    assert bytes(outstation.received[0]) == before + during + after
    df = pd.read_parquet(tmp_path)
    c2s = df[df["direction"] == "c2s"]
    gaps = c2s[c2s["kind"] == "gap"]
    assert len(gaps) == 1 and gaps["error"].iloc[0].startswith(f"gap: {lost} octets")
    assert "the proxy forwarded them while its logger process was stalled" in gaps["error"].iloc[0]
    events = df[df["error"].fillna("").str.startswith(
        f"proxy: the logger process (pid {pid}) took nothing from the pipe for 0.3 s")]
    assert len(events) == 1 and f"; {lost} octets received" in events["error"].iloc[0]
    assert accounted_octets(c2s) == len(before + during + after)
    logged = logged_apdus(df, 0, "c2s")
    assert logged[:len(before_apdus)] == before_apdus  # logged before the stall
    assert logged[-len(after_apdus):] == after_apdus  # and after it caught up


async def test_a_logger_dead_at_the_end_is_logged_by_one_started_to_say_so(
        tmp_path: Path) -> None:
    import os
    import signal

    from iec104.recorder import LogWriterError
    from iec104.recorder.logprocess import LogProcess
    from iec104.records.builder import Endpoints

    log = LogProcess.spawn(tmp_path, {}, restart_seconds=3600.0)  # no restart in this test
    log.wait_ready()
    log.attach(asyncio.get_running_loop())
    script, apdus = stream_of(50, seed=8, garbage=False)
    log.open(0, {d: Endpoints(0, d, "10.0.0.1", 1, "10.0.0.2", 2404) for d in ("c2s", "s2c")})
    log.data(0, "c2s", 1_000, script)
    log.sync()
    pid = log.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while log.pid is not None:
        await asyncio.sleep(0.01)
    log.data(0, "c2s", 2_000, script[:40])  # no logger: counted, not logged
    log.detach()
    with pytest.raises(LogWriterError, match=r"died 1 time\(s\); 40 octets"):
        log.close()
    df = pd.read_parquet(tmp_path)
    assert logged_apdus(df, 0, "c2s") == apdus
    died = df[df["error"].fillna("").str.contains(f"logger process \\(pid {pid}\\) died")]
    assert died["kind"].tolist() == ["event"] and "40 octets" in died["error"].iloc[0]
