"""APCI behaviour of the driver against a raw socket peer written here (bytes by hand).

The peer does not use our codec: frames are built and split with ``struct`` so that a bug
shared by our encoder and decoder cannot hide. Timer tests (t1, t2, t3) run on a
:class:`~tests.support.fakeclock.FakeClockLoop`: real sockets, a clock that moves only when
the test advances it, so they check each timer to the millisecond whatever the load.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import sys
import time
import tracemalloc

import pytest

import iec104
from tests.conftest import REPO_ROOT, find_unused_tcp_port
from tests.support.fakeclock import FakeClockLoop, nothing_to_read, run, settle

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


async def fake_clock_server(**kwargs) -> tuple[iec104.Server, asyncio.Queue]:
    """Our server on a free port (for tests on a :class:`FakeClockLoop`)."""
    queue: asyncio.Queue = asyncio.Queue()
    srv = await iec104.listen(queue.put_nowait, iec104.Address("127.0.0.1", 0), **kwargs)
    return srv, queue


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


def test_t1_expiry_closes_the_connection(caplog):
    caplog.set_level(logging.WARNING, "iec104.driver")

    async def main(loop: FakeClockLoop) -> None:
        srv, queue = await fake_clock_server(response_timeout=0.5, supervisory_timeout=0.2)
        raw = await Raw.connect(srv.addresses[0].port)
        conn = await queue.get()
        await raw.start()
        conn.notify_data_change(spontaneous(1))
        assert (await raw.read())[0] == "I"  # sent now, never acknowledged
        loop.advance(0.499)
        await settle()
        assert conn.is_open
        loop.advance(0.002)
        await conn.wait_closed()
        assert await raw.closed()
        assert conn.close_reason.startswith("t1 expired")
        await srv.async_close()

    run(main)
    assert "t1 expired: I-frame N(S)=0 not acknowledged within 0.5 s" in caplog.text


def test_acknowledged_iframes_keep_the_connection():
    async def main(loop: FakeClockLoop) -> None:
        srv, queue = await fake_clock_server(response_timeout=0.5, supervisory_timeout=0.2,
                                             test_timeout=5)
        raw = await Raw.connect(srv.addresses[0].port)
        conn = await queue.get()
        await raw.start()
        for i in range(4):  # 0.8 s in all, more than t1, each I-frame acknowledged in time
            conn.notify_data_change(spontaneous(1))
            assert (await raw.read())[:2] == ("I", i)
            raw.send(sframe(i + 1))
            await settle()
            loop.advance(0.2)
        await settle()
        assert conn.is_open
        raw.close()
        await srv.async_close()

    run(main)


def test_t1_expiry_on_unconfirmed_testfr(caplog):
    caplog.set_level(logging.WARNING, "iec104.driver")

    async def main(loop: FakeClockLoop) -> None:
        srv, queue = await fake_clock_server(response_timeout=0.3, test_timeout=0.2)
        raw = await Raw.connect(srv.addresses[0].port)
        conn = await queue.get()
        loop.advance(0.199)
        assert await nothing_to_read(raw.reader)
        loop.advance(0.002)
        assert await raw.read() == ("U", TESTFR_ACT)  # t3 runs before STARTDT too
        loop.advance(0.298)
        await settle()
        assert conn.is_open
        loop.advance(0.002)
        await conn.wait_closed()
        await srv.async_close()

    run(main)
    assert "TESTFR_ACT not confirmed" in caplog.text


def test_t3_sends_testfr_and_con_keeps_connection():
    async def main(loop: FakeClockLoop) -> None:
        srv, queue = await fake_clock_server(response_timeout=0.5, test_timeout=0.3)
        raw = await Raw.connect(srv.addresses[0].port)
        conn = await queue.get()
        await raw.start()
        for _ in range(3):  # each TESTFR after 0.3 s without a frame from the peer
            loop.advance(0.299)
            assert await nothing_to_read(raw.reader)
            loop.advance(0.002)
            assert await raw.read() == ("U", TESTFR_ACT)
            raw.send(TESTFR_CON)
            await settle()
        assert conn.is_open
        raw.close()
        await srv.async_close()

    run(main)


async def test_our_client_t3_and_testfr_answer(raw_server):
    conn, raw = await connect_our_client(raw_server, test_timeout=0.3, response_timeout=1)
    assert await raw.read(1) == ("U", TESTFR_ACT)
    raw.send(TESTFR_CON)
    raw.send(TESTFR_ACT)
    assert await raw.read(1) == ("U", TESTFR_CON)
    await conn.async_close()


def test_w_acknowledgement_count():
    async def main(loop: FakeClockLoop) -> None:
        accepted: asyncio.Queue[Raw] = asyncio.Queue()

        async def on_client(reader, writer):
            await accepted.put(Raw(reader, writer))

        raw_srv = await asyncio.start_server(on_client, "127.0.0.1", 0)
        task = asyncio.ensure_future(iec104.connect(
            iec104.Address("127.0.0.1", raw_srv.sockets[0].getsockname()[1]),
            receive_window_size=4, supervisory_timeout=0.4, test_timeout=10))
        raw = await accepted.get()
        assert await raw.read() == ("U", STARTDT_ACT)
        raw.send(STARTDT_CON)
        conn = await task
        one = [iec104.Data(iec104.SingleValue.ON, Q, None, 1, 1, iec104.Cause.SPONTANEOUS,
                           False)]
        # w frames one by one: an S-frame right after the w-th
        for i in range(3):
            raw.send(iframe(i, 0))
            assert await conn.receive() == one
        assert await nothing_to_read(raw.reader)
        raw.send(iframe(3, 0))
        assert await raw.read() == ("S", 4)
        assert await conn.receive() == one
        # fewer than w: acknowledged only when t2 expires
        raw.send(iframe(4, 0))
        assert await conn.receive() == one  # received now
        loop.advance(0.399)
        assert await nothing_to_read(raw.reader)
        loop.advance(0.002)
        assert await raw.read() == ("S", 5)
        await conn.async_close()
        raw_srv.close()

    run(main)


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
    srv, queue = await server(send_queue_size=33_000)
    conn = await iec104.connect(srv.addresses[0], send_queue_size=33_000)
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
    # t3 an hour: under load (tracemalloc slows every allocation) the 200 rounds may take
    # longer than the default 20 s without a frame from the peer, and a TESTFR would come
    srv, queue = await server(send_window_size=k, response_timeout=10, test_timeout=3600,
                              send_queue_size=1_000_000)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    value, quality = iec104.FloatingValue(1.5), Q
    items = tuple(iec104.Data(value, quality, None, 1, i, iec104.Cause.SPONTANEOUS, False)
                  for i in range(1_000_000))  # a tuple is not copied
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        conn.notify_data_change(items)
        # returned at once: nothing encoded yet, the tuple queued as it is
        assert conn.session.send_sequence == 0 and len(conn._pending) == 1
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


async def read_objects(raw: Raw, frames: int, ack_from: int) -> list[tuple[int, object]]:
    """Read ``frames`` I-frames, acknowledging each; (IOA, value) of their objects."""
    objects = []
    for n in range(frames):
        kind, ssn, _, asdu = await raw.read()
        assert kind == "I" and ssn == ack_from + n
        raw.send(sframe(ssn + 1))
        objects += [(o.address, o.value) for o in iec104.codec.decode_asdu(asdu).objects]
    return objects


def point(ioa: int, value: int) -> iec104.Data:
    return iec104.Data(iec104.ScaledValue(value), Q, None, 1, ioa, iec104.Cause.SPONTANEOUS,
                       False)


async def window_full(server, first: iec104.Data) -> tuple[iec104.Connection, Raw]:
    """Our server with k=1 and send_queue_size=4, its one I-frame (``first``) unacknowledged."""
    srv, queue = await server(send_window_size=1, send_queue_size=4)
    raw = await Raw.connect(srv.addresses[0].port)
    conn = await queue.get()
    await raw.start()
    conn.notify_data_change([first])
    assert (await raw.read())[:2] == ("I", 0)  # k is full until raw acknowledges it
    return conn, raw


async def test_full_send_queue_keeps_the_latest_value_per_point(server, caplog):
    caplog.set_level(logging.INFO, "iec104.driver")
    conn, raw = await window_full(server, point(1, 1))
    for item in (point(2, 1), point(1, 2), point(1, 3), point(1, 4), point(3, 1)):
        conn.notify_data_change([item])  # the 5th queued item passes the bound
    assert "send queue reached 5 items: kept the latest of 3 points, 3 left" in caplog.text
    raw.send(sframe(1))
    got = await read_objects(raw, 3, 1)
    assert got == [(2, iec104.ScaledValue(1)), (1, iec104.ScaledValue(4)),
                   (3, iec104.ScaledValue(1))]
    assert conn.is_open
    await asyncio.wait_for(conn.drain(), 2)
    raw.close()


async def test_send_queue_closes_a_slow_consumer(server, caplog):
    caplog.set_level(logging.WARNING, "iec104.driver")
    conn, raw = await window_full(server, point(100, 0))  # never acknowledged
    conn.notify_data_change([point(i, i) for i in range(5)])  # 5 points: nothing to merge
    await asyncio.wait_for(conn.wait_closed(), 5)
    assert conn.close_reason == ("slow consumer: 5 items still queued for 5 points after "
                                 "coalescing (send_queue_size 4)")
    assert "closing connection: slow consumer" in caplog.text
    assert await raw.closed()
    with pytest.raises(ConnectionError):
        conn.notify_data_change([point(1, 1)])


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
async def test_send_queue_size_must_be_a_positive_int(server, size):
    with pytest.raises(ValueError, match="send_queue_size"):
        await server(send_queue_size=size)


async def test_interrogation_refused_while_the_previous_answer_is_queued(server):
    calls = []

    def on_interrogate(conn, ca):
        calls.append(ca)
        return [point(i, i) for i in range(3)]

    srv, queue = await server(send_window_size=1, interrogate_cb=on_interrogate)
    raw = await Raw.connect(srv.addresses[0].port)
    await queue.get()
    await raw.start()
    gi = bytes.fromhex("64 01 06 00 01 00 00 00 00 14")
    raw.send(iframe(0, 0, gi))
    first = await raw.read()  # ACTCON; the answer waits for the acknowledgement
    assert first[3][2] == 7
    raw.send(iframe(1, 1, gi))  # acknowledges ACTCON, and a second GI: the answer waits
    causes = []
    for _ in range(3):
        _, ssn, _, asdu = await raw.read()
        raw.send(sframe(ssn + 1))
        causes.append((asdu[0], asdu[2]))
    assert causes == [(11, 20), (100, 10), (100, 0x47)]  # data, ACTTERM, negative ACTCON
    assert calls == [1]
    raw.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_slow_peer_keeps_the_notifying_server_bounded():
    """Issue 10: a peer that reads and acknowledges 2 KB/s for 30 s while the server (a
    child process, default send_queue_size) notifies 1,000 items/s one call each over 1,000
    points: the server's RSS grows < 10 MB, the link stays up, and once the peer catches up
    it holds the latest value of every point."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.notifier", "--port", str(find_unused_tcp_port()),
        "--rate", "1000", "--points", "1000", "--seconds", "30",
        stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT)
    assert proc.stdout is not None
    port = json.loads(await proc.stdout.readline())["listening"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(STARTDT_ACT)
    fast = asyncio.Event()
    values: dict[int, float] = {}

    async def read() -> bytes:
        # the server closes once drain() saw every I-frame acknowledged; an S-frame or
        # TESTFR con of ours still in flight then makes its kernel answer with a reset
        try:
            return await reader.read(65536 if fast.is_set() else 200)
        except ConnectionResetError:
            return b""

    async def slow_peer() -> None:
        buf = bytearray()
        received = acked = 0
        while chunk := await read():
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + buf[1]:
                frame, buf[:2 + buf[1]] = bytes(buf[:2 + buf[1]]), b""
                if not frame[2] & 1:
                    received = (struct.unpack_from("<H", frame, 2)[0] >> 1) + 1 & 0x7FFF
                    for obj in iec104.codec.decode_asdu(frame[6:]).objects:
                        values[obj.address] = obj.value.value
                elif frame == TESTFR_ACT:
                    writer.write(TESTFR_CON)
            if received != acked:
                writer.write(sframe(received))
                acked = received
            if not fast.is_set():
                await asyncio.sleep(0.1)  # 200 octets per 0.1 s

    peer = asyncio.ensure_future(slow_peer())
    reports = []
    try:
        while line := await proc.stdout.readline():
            reports.append(json.loads(line))
            if "notified" in reports[-1]:
                fast.set()
        await asyncio.wait_for(peer, 30)  # the server closes after its last report
    finally:
        writer.close()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    samples = [r["rss"] for r in reports if "rss" in r]
    growth = max(samples) - samples[0]
    final = reports[-1]
    assert reports[-2]["notified"] >= 29_000
    assert final["open"] and final["reason"] is None, final
    assert growth < 10_000_000, f"RSS grew {growth / 1e6:.1f} MB"
    assert {int(ioa): value for ioa, value in final["last"].items()} == values
    print(f"RSS {samples[0] / 1e6:.1f} MB -> max {max(samples) / 1e6:.1f} MB "
          f"(+{growth / 1e6:.1f} MB) over {len(samples)} s")
