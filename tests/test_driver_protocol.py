"""APCI behaviour of the driver against a raw socket peer written here (bytes by hand).

The peer does not use our codec: frames are built and split with ``struct`` so that a bug
shared by our encoder and decoder cannot hide.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import tracemalloc

import pytest

import iec104
from tests.conftest import find_unused_tcp_port

pytestmark = pytest.mark.timeout(60)

STARTDT_ACT = bytes.fromhex("68 04 07 00 00 00")
STARTDT_CON = bytes.fromhex("68 04 0b 00 00 00")
STOPDT_ACT = bytes.fromhex("68 04 13 00 00 00")
STOPDT_CON = bytes.fromhex("68 04 23 00 00 00")
TESTFR_ACT = bytes.fromhex("68 04 43 00 00 00")
TESTFR_CON = bytes.fromhex("68 04 83 00 00 00")
# M_SP_NA_1, 1 object, spontaneous, CA 1, IOA 1, ON
SP_ASDU = bytes.fromhex("01 01 03 00 01 00 01 00 00 01")
Q = iec104.Quality()


def iframe(ssn: int, rsn: int, asdu: bytes = SP_ASDU) -> bytes:
    return struct.pack("<BBHH", 0x68, len(asdu) + 4, ssn << 1, rsn << 1) + asdu


def sframe(rsn: int) -> bytes:
    return struct.pack("<BBHH", 0x68, 4, 1, rsn << 1)


class Raw:
    """A hand-written IEC 104 peer on a plain socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Raw:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self, timeout: float = 2.0) -> tuple:
        """('I', ssn, rsn, asdu) | ('S', rsn) | ('U', raw); raises TimeoutError."""
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        assert head[0] == 0x68, head
        body = await asyncio.wait_for(self.reader.readexactly(head[1]), timeout)
        c1, c2 = struct.unpack_from("<HH", body)
        if not c1 & 1:
            return ("I", c1 >> 1, c2 >> 1, body[4:])
        if c1 & 3 == 1:
            return ("S", c2 >> 1)
        return ("U", head + body)

    async def silent(self, seconds: float) -> bool:
        """True if nothing arrives for ``seconds``."""
        try:
            frame = await self.read(seconds)
        except (TimeoutError, asyncio.IncompleteReadError):
            return True
        pytest.fail(f"unexpected frame {frame}")

    async def closed(self, timeout: float = 3.0) -> bool:
        """True once the peer closed the connection (frames before EOF are skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), deadline - time.monotonic())
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
            if not data:
                return True
        return False

    async def start(self) -> None:
        self.send(STARTDT_ACT)
        assert await self.read() == ("U", STARTDT_CON)

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def server():
    """Our server on a free port; yields (server, queue of accepted connections)."""
    servers = []

    async def make(**kwargs):
        queue: asyncio.Queue = asyncio.Queue()
        addr = iec104.Address("127.0.0.1", find_unused_tcp_port())
        srv = await iec104.listen(queue.put_nowait, addr, **kwargs)
        servers.append(srv)
        return srv, queue

    yield make
    for srv in servers:
        await srv.async_close()


@pytest.fixture
async def raw_server():
    """A raw server; yields (address, queue of Raw peers)."""
    servers = []

    async def make():
        queue: asyncio.Queue = asyncio.Queue()

        async def on_client(reader, writer):
            await queue.put(Raw(reader, writer))

        srv = await asyncio.start_server(on_client, "127.0.0.1", 0)
        servers.append(srv)
        return iec104.Address("127.0.0.1", srv.sockets[0].getsockname()[1]), queue

    yield make
    for srv in servers:
        srv.close()


async def connect_our_client(raw_server, **kwargs):
    addr, queue = await raw_server()
    task = asyncio.ensure_future(iec104.connect(addr, **kwargs))
    raw: Raw = await queue.get()
    assert await raw.read() == ("U", STARTDT_ACT)
    raw.send(STARTDT_CON)
    return await task, raw


def spontaneous(n: int, ca_alternating: bool = True) -> list[iec104.Data]:
    """``n`` items that cannot share an ASDU (alternating common address)."""
    return [iec104.Data(iec104.ScaledValue(i % 30000), Q, None, 1 + (i % 2 if ca_alternating
                                                                     else 0), i,
                        iec104.Cause.SPONTANEOUS, False) for i in range(n)]


async def test_server_waits_for_startdt_before_sending(server):
    srv, queue = await server()
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    conn.notify_data_change(spontaneous(1))
    assert await raw.silent(0.3)
    raw.send(STARTDT_ACT)
    assert await raw.read() == ("U", STARTDT_CON)
    frame = await raw.read()
    assert frame[:3] == ("I", 0, 0)
    raw.close()


async def test_t1_expiry_closes_the_connection(server, caplog):
    caplog.set_level(logging.WARNING, "iec104.driver")
    srv, queue = await server(response_timeout=0.5, supervisory_timeout=0.2)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    conn.notify_data_change(spontaneous(1))
    sent_at = time.monotonic()
    assert (await raw.read())[0] == "I"  # never acknowledged
    await asyncio.wait_for(conn.wait_closed(), 3)
    elapsed = time.monotonic() - sent_at
    assert 0.4 <= elapsed < 1.5
    assert await raw.closed()
    assert "t1 expired: I-frame N(S)=0 not acknowledged within 0.5 s" in caplog.text
    assert conn.close_reason.startswith("t1 expired")


async def test_acknowledged_iframes_keep_the_connection(server):
    srv, queue = await server(response_timeout=0.5, supervisory_timeout=0.2, test_timeout=5)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    for i in range(4):
        conn.notify_data_change(spontaneous(1))
        assert (await raw.read())[:2] == ("I", i)
        raw.send(sframe(i + 1))
        await asyncio.sleep(0.2)
    assert conn.is_open
    raw.close()


async def test_t1_expiry_on_unconfirmed_testfr(server, caplog):
    caplog.set_level(logging.WARNING, "iec104.driver")
    srv, queue = await server(response_timeout=0.3, test_timeout=0.2)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    assert await raw.read(1) == ("U", TESTFR_ACT)  # t3 runs before STARTDT too
    await asyncio.wait_for(conn.wait_closed(), 2)
    assert "TESTFR_ACT not confirmed" in caplog.text


async def test_t3_sends_testfr_and_con_keeps_connection(server):
    srv, queue = await server(response_timeout=0.5, test_timeout=0.3)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    started = time.monotonic()
    for _ in range(3):
        assert await raw.read(1) == ("U", TESTFR_ACT)
        raw.send(TESTFR_CON)
    # three test frames, each after 0.3 s of silence
    assert 0.8 <= time.monotonic() - started < 2
    assert conn.is_open
    raw.close()


async def test_our_client_t3_and_testfr_answer(raw_server):
    conn, raw = await connect_our_client(raw_server, test_timeout=0.3, response_timeout=1)
    assert await raw.read(1) == ("U", TESTFR_ACT)
    raw.send(TESTFR_CON)
    raw.send(TESTFR_ACT)
    assert await raw.read(1) == ("U", TESTFR_CON)
    await conn.async_close()


async def test_w_acknowledgement_count(raw_server):
    conn, raw = await connect_our_client(raw_server, receive_window_size=4,
                                         supervisory_timeout=0.4, test_timeout=10)
    # w frames one by one: an S-frame right after the w-th
    for i in range(3):
        raw.send(iframe(i, 0))
        assert await conn.receive() == [iec104.Data(iec104.SingleValue.ON, Q, None, 1, 1,
                                                    iec104.Cause.SPONTANEOUS, False)]
    assert await raw.silent(0.15)
    raw.send(iframe(3, 0))
    assert await raw.read(0.2) == ("S", 4)
    # fewer than w: acknowledged only by t2
    raw.send(iframe(4, 0))
    sent = time.monotonic()
    assert await raw.read(1) == ("S", 5)
    assert 0.3 <= time.monotonic() - sent < 0.8
    await conn.async_close()


async def test_k_blocks_sending(server):
    srv, queue = await server(send_window_size=3, response_timeout=5)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    conn.notify_data_change(spontaneous(10))
    assert [(await raw.read())[:2] for _ in range(3)] == [("I", 0), ("I", 1), ("I", 2)]
    assert await raw.silent(0.3)  # window full: nothing more
    assert conn.session.unacknowledged == 3
    raw.send(sframe(2))
    assert [(await raw.read())[:2] for _ in range(2)] == [("I", 3), ("I", 4)]
    assert await raw.silent(0.2)
    raw.send(sframe(5))
    assert [(await raw.read())[:2] for _ in range(3)] == [("I", 5), ("I", 6), ("I", 7)]
    raw.send(sframe(8))
    assert [(await raw.read())[:2] for _ in range(2)] == [("I", 8), ("I", 9)]
    raw.send(sframe(10))
    await asyncio.wait_for(conn.drain(), 2)
    raw.close()


async def test_iframes_from_peer_acknowledge_too(server):
    srv, queue = await server(send_window_size=2)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    conn.notify_data_change(spontaneous(3))
    assert [(await raw.read())[:2] for _ in range(2)] == [("I", 0), ("I", 1)]
    raw.send(iframe(0, 2))  # carries N(R)=2
    frame = await raw.read()
    assert frame[:3] == ("I", 2, 1)  # and our I-frame acknowledges theirs
    raw.close()


@pytest.mark.parametrize("bad, reason", [
    (iframe(5, 0), "I-frame N(S)=5 out of sequence: expected 0"),
    (sframe(3), "N(R)=3 acknowledges I-frames never sent"),
    (iframe(0, 7), "N(R)=7 acknowledges I-frames never sent"),
])
async def test_wrong_sequence_numbers_close(server, caplog, bad, reason):
    caplog.set_level(logging.WARNING, "iec104.driver")
    srv, queue = await server()
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    raw.send(bad)
    assert await raw.closed()
    await asyncio.wait_for(conn.wait_closed(), 2)
    assert reason in caplog.text
    assert "closing connection" in caplog.text


async def test_sequence_error_after_valid_frames(raw_server, caplog):
    caplog.set_level(logging.WARNING, "iec104.driver")
    conn, raw = await connect_our_client(raw_server)
    raw.send(iframe(0, 0) + iframe(1, 0) + iframe(1, 0))  # duplicate N(S)
    assert len(await conn.receive()) == 1
    assert len(await conn.receive()) == 1
    await asyncio.wait_for(conn.wait_closed(), 2)
    assert "I-frame N(S)=1 out of sequence: expected 2" in caplog.text
    with pytest.raises(ConnectionError):
        await conn.receive()


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    bytes(range(256)),
    bytes.fromhex("68 04 ff 00 00 00"),       # no valid U function
    bytes.fromhex("68 02 00 00"),             # length below 4
    b"\x68\x04\x07\x00\x00",                  # truncated, then EOF
])
async def test_garbage_closes_with_clear_log_and_server_keeps_serving(server, caplog,
                                                                      garbage):
    caplog.set_level(logging.WARNING, "iec104.driver")
    srv, queue = await server(interrogate_cb=lambda conn, ca: [])
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    raw.send(garbage)
    if len(garbage) == 5:
        raw.writer.write_eof()
    assert await raw.closed()
    await asyncio.wait_for(conn.wait_closed(), 2)
    if len(garbage) != 5:
        assert "closing connection: malformed APDU at stream offset 0" in caplog.text
    # the server still accepts and serves
    good = await iec104.connect(srv.addresses[0])
    assert await good.interrogate(1) == []
    await good.async_close()
    assert srv.is_open


async def test_garbage_from_many_clients_at_once(server, caplog):
    caplog.set_level(logging.ERROR, "iec104")
    srv, _ = await server(interrogate_cb=lambda conn, ca: [])
    raws = [await Raw.connect(srv.addresses[0].port) for _ in range(50)]
    for i, raw in enumerate(raws):
        raw.send(bytes([0x68, 4 + i % 3]) + bytes(range(i, i + 40)))
    assert all(await asyncio.gather(*(raw.closed() for raw in raws)))
    good = await iec104.connect(srv.addresses[0])
    assert await good.interrogate(1) == []
    await good.async_close()
    assert "Traceback" not in caplog.text and not caplog.records


async def test_stopdt_from_peer(server):
    srv, queue = await server(response_timeout=5)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    conn.notify_data_change(spontaneous(1))
    assert (await raw.read())[:2] == ("I", 0)
    raw.send(STOPDT_ACT)
    assert await raw.silent(0.2)  # con only after our I-frame is acknowledged
    raw.send(sframe(1))
    assert await raw.read() == ("U", STOPDT_CON)
    conn.notify_data_change(spontaneous(2))
    assert await raw.silent(0.2)  # stopped: data waits
    raw.send(STARTDT_ACT)
    assert await raw.read() == ("U", STARTDT_CON)
    assert [(await raw.read())[:2] for _ in range(2)] == [("I", 1), ("I", 2)]
    raw.close()


async def test_sequence_numbers_wrap_over_sockets(server):
    """33,000 I-frames each way: N(S)/N(R) wrap at 32768 on both ends."""
    srv, queue = await server()
    conn = await iec104.connect(srv.addresses[0])
    peer = await queue.get()
    items = spontaneous(33_000)
    try:
        for sender, receiver in ((peer, conn), (conn, peer)):
            sender.notify_data_change(items)
            got = 0
            while got < len(items):
                got += len(await asyncio.wait_for(receiver.receive(), 5))
            assert sender.session.send_sequence == 33_000 - 32_768
            assert receiver.session.receive_sequence == 33_000 - 32_768
    finally:
        await conn.async_close()


@pytest.mark.slow
async def test_million_items_bounded_memory_and_k(server):
    """notify_data_change of 1,000,000 items: k respected, memory flat, slow peer paces."""
    k = 12
    srv, queue = await server(send_window_size=k, response_timeout=10)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    value, quality = iec104.FloatingValue(1.5), Q
    items = tuple(iec104.Data(value, quality, None, 1, i, iec104.Cause.SPONTANEOUS, False)
                  for i in range(1_000_000))  # a tuple is not copied
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        started = time.monotonic()
        conn.notify_data_change(items)
        assert time.monotonic() - started < 2  # returns at once
        received = acked = 0
        for round_ in range(200):
            frames = []
            while len(frames) < k:
                frames.append(await raw.read())
            assert all(f[0] == "I" for f in frames)
            assert conn.session.unacknowledged == k  # never more than k out
            if round_ == 0:
                assert await raw.silent(0.1)  # the slow peer holds the sender
            received += len(frames)
            acked = (acked + k) & 0x7FFF
            raw.send(sframe(acked))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == 200 * k
    assert peak - base < 2_000_000, (peak - base)  # the 1M items took ~150 MB themselves
    assert len(conn._pending) == 1  # the rest is still one lazy iterator
    raw.close()
    await asyncio.wait_for(conn.wait_closed(), 5)
