"""The asyncio driver against itself: application layer over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import subprocess
from pathlib import Path

import pytest

import iec104
from iec104.codec import ASDU, InformationObject, TypeId
from tests.conftest import find_unused_tcp_port

pytestmark = pytest.mark.timeout(30)

Q = iec104.Quality()
T7 = iec104.Time.from_datetime(datetime.datetime(2024, 5, 6, 7, 8, 9, 123000))
T3 = iec104.Time(iec104.TimeSize.THREE, 9123, False, 8)
PQ = iec104.ProtectionQuality(invalid=True)


def data(value, quality=Q, time=None, ioa=1, ca=1, cause=iec104.Cause.SPONTANEOUS, test=False):
    return iec104.Data(value, quality, time, ca, ioa, cause, test)


# one item of every monitor type (without, with CP24 and with CP56 time tags)
ALL_DATA = [
    data(iec104.SingleValue.ON, ioa=1),
    data(iec104.SingleValue.OFF, iec104.Quality(invalid=True), T3, ioa=2),
    data(iec104.SingleValue.ON, Q, T7, ioa=3),
    data(iec104.DoubleValue.FAULT, ioa=4),
    data(iec104.DoubleValue.OFF, Q, T3, ioa=5),
    data(iec104.DoubleValue.INTERMEDIATE, iec104.Quality(blocked=True), T7, ioa=6),
    data(iec104.StepPositionValue(-64, True), iec104.Quality(overflow=True), ioa=7),
    data(iec104.StepPositionValue(63, False), Q, T3, ioa=8),
    data(iec104.StepPositionValue(0, True), Q, T7, ioa=9),
    data(iec104.BitstringValue(b"\x01\x02\x03\x04"), ioa=10),
    data(iec104.BitstringValue(b"\xff\x00\xff\x00"), Q, T3, ioa=11),
    data(iec104.BitstringValue(b"\x00\x00\x00\x80"), Q, T7, ioa=12),
    data(iec104.NormalizedValue(-1.0), ioa=13),
    data(iec104.NormalizedValue(0.5), Q, T3, ioa=14),
    data(iec104.NormalizedValue(32767 / 32768), Q, T7, ioa=15),
    data(iec104.NormalizedValue(0.25), None, ioa=16),  # M_ME_ND_1
    data(iec104.ScaledValue(-32768), ioa=17),
    data(iec104.ScaledValue(32767), Q, T3, ioa=18),
    data(iec104.ScaledValue(0), iec104.Quality(not_topical=True), T7, ioa=19),
    data(iec104.FloatingValue(21.5), ioa=20),
    data(iec104.FloatingValue(-1e10), Q, T3, ioa=21),
    data(iec104.FloatingValue(3.25), iec104.Quality(substituted=True), T7, ioa=22),
    data(iec104.BinaryCounterValue(-2 ** 31, 31, True, True, True), None, ioa=23),
    data(iec104.BinaryCounterValue(2 ** 31 - 1), None, T3, ioa=24),
    data(iec104.BinaryCounterValue(5, 1), None, T7, ioa=25),
    data(iec104.ProtectionValue(iec104.DoubleValue.ON, 65535), PQ, T3, ioa=26),
    data(iec104.ProtectionValue(iec104.DoubleValue.OFF, 0), PQ, T7, ioa=27),
    data(iec104.ProtectionStartValue(True, False, True, False, True, False, 100), PQ, T3,
         ioa=28),
    data(iec104.ProtectionStartValue(False, True, False, True, False, True, 7), PQ, T7,
         ioa=29),
    data(iec104.ProtectionCommandValue(True, True, False, False, 1000), PQ, T3, ioa=30),
    data(iec104.ProtectionCommandValue(False, False, True, True, 1), PQ, T7, ioa=31),
    data(iec104.StatusChangeValue(0xA5A5, 0x00FF), Q, ioa=32),
    data(iec104.InitializationValue(2, True), None, cause=iec104.Cause.INITIALIZED, ioa=0),
]


def cmd(value, action=iec104.Action.EXECUTE, time=None, qualifier=0, ioa=100, ca=1):
    return iec104.Command(action, value, ca, ioa, time, qualifier)


ALL_COMMANDS = [
    cmd(iec104.SingleValue.ON),
    cmd(iec104.SingleValue.OFF, time=T7, qualifier=1),
    cmd(iec104.DoubleValue.ON),
    cmd(iec104.DoubleValue.OFF, time=T7, qualifier=3),
    cmd(iec104.RegulatingValue.HIGHER),
    cmd(iec104.RegulatingValue.LOWER, time=T7, qualifier=2),
    cmd(iec104.NormalizedValue(-0.5)),
    cmd(iec104.NormalizedValue(0.125), time=T7, qualifier=5),
    cmd(iec104.ScaledValue(-1234)),
    cmd(iec104.ScaledValue(1234), time=T7),
    cmd(iec104.FloatingValue(1.5)),
    cmd(iec104.FloatingValue(-7.75), time=T7, qualifier=127),
    cmd(iec104.BitstringValue(b"\xde\xad\xbe\xef")),
    cmd(iec104.BitstringValue(b"\x00\x01\x02\x03"), time=T7),
]


class Pair:
    """Our server and our client connected on 127.0.0.1."""

    def __init__(self) -> None:
        self.server: iec104.Server
        self.client: iec104.Connection
        self.peer: iec104.Connection


async def make_pair(server_kwargs=None, client_kwargs=None) -> Pair:
    pair = Pair()
    addr = iec104.Address("127.0.0.1", find_unused_tcp_port())
    queue: asyncio.Queue = asyncio.Queue()
    pair.server = await iec104.listen(queue.put_nowait, addr, **(server_kwargs or {}))
    pair.client = await iec104.connect(addr, **(client_kwargs or {}))
    pair.peer = await asyncio.wait_for(queue.get(), 5)
    return pair


async def close(pair: Pair) -> None:
    await pair.client.async_close()
    await pair.server.async_close()
    assert pair.peer.is_closed


async def test_every_data_type_both_directions():
    pair = await make_pair()
    try:
        for sender, receiver in ((pair.peer, pair.client), (pair.client, pair.peer)):
            sender.notify_data_change(ALL_DATA)
            got = []
            while len(got) < len(ALL_DATA):
                got += await asyncio.wait_for(receiver.receive(), 5)
            assert got == ALL_DATA
    finally:
        await close(pair)


async def test_packing_many_items_in_order():
    pair = await make_pair()
    items = [data(iec104.FloatingValue(i / 4), ioa=i) for i in range(5000)]
    try:
        pair.peer.notify_data_change(items)
        got = []
        asdus = 0
        while len(got) < len(items):
            got += await asyncio.wait_for(pair.client.receive(), 5)
            asdus += 1
        assert got == items
        assert asdus == -(-5000 // 30)  # 30 floats per I-frame
    finally:
        await close(pair)


@pytest.mark.parametrize("group", [0, 1, 16])
async def test_interrogation(group):
    requests = []
    station = [data(iec104.SingleValue.ON, ioa=1, cause=iec104.Cause.SPONTANEOUS),
               data(iec104.FloatingValue(2.5), ioa=2)]

    def on_interrogate(conn, asdu_address):
        requests.append((asdu_address, 0))
        return station

    async def on_group(conn, asdu_address, grp):
        await asyncio.sleep(0.01)
        requests.append((asdu_address, grp))
        return station[1:]

    pair = await make_pair({"interrogate_cb": on_interrogate, "group_interrogate_cb": on_group})
    try:
        # spontaneous data sent before stays outside the interrogation
        pair.peer.notify_data_change([data(iec104.ScaledValue(7), ioa=9)])
        result = await asyncio.wait_for(pair.client.interrogate(1, group=group), 5)
        cause = iec104.Cause(20 + group)
        expected = station if group == 0 else station[1:]
        assert result == [d._replace(cause=cause) for d in expected]
        assert requests == [(1, group)]
        assert await pair.client.receive() == [data(iec104.ScaledValue(7), ioa=9)]
    finally:
        await close(pair)


async def test_interrogation_wire_sequence():
    """ACT -> ACTCON, data (INTERROGATED_STATION), ACTTERM, seen as raw ASDUs."""
    pair = await make_pair({"interrogate_cb": lambda conn, ca: [data(iec104.SingleValue.ON)]})
    try:
        seen = []
        original = pair.client._on_asdu

        def spy(raw):
            seen.append(iec104.codec.decode_asdu(raw))
            original(raw)

        pair.client._on_asdu = spy
        await pair.client.interrogate(5)
        assert [(a.type_id, a.cause, a.negative) for a in seen] == [
            (TypeId.C_IC_NA_1, iec104.Cause.ACTIVATION_CONFIRMATION, False),
            (TypeId.M_SP_NA_1, iec104.Cause.INTERROGATED_STATION, False),
            (TypeId.C_IC_NA_1, iec104.Cause.ACTIVATION_TERMINATION, False)]
        assert seen[0].common_address == 5 and seen[0].objects[0].qualifier == 20
    finally:
        await close(pair)


async def test_interrogation_negative_when_callback_returns_none_or_missing():
    pair = await make_pair({"interrogate_cb": lambda conn, ca: None})
    try:
        assert await asyncio.wait_for(pair.client.interrogate(1), 5) == []
        # no group callback: negative too
        assert await asyncio.wait_for(pair.client.interrogate(1, group=3), 5) == []
        # no callbacks at all on the client side: the server's request is refused
        assert await asyncio.wait_for(pair.peer.interrogate(1), 5) == []
        assert await asyncio.wait_for(pair.peer.counter_interrogate(1), 5) == []
    finally:
        await close(pair)


@pytest.mark.parametrize("freeze", list(iec104.FreezeCode))
async def test_counter_interrogation(freeze):
    calls = []
    counters = [data(iec104.BinaryCounterValue(123456, 3), None, ioa=40),
                data(iec104.BinaryCounterValue(-5, 4, invalid=True), None, T7, ioa=41)]

    async def on_counter(conn, asdu_address, frz):
        calls.append((asdu_address, frz))
        return counters

    pair = await make_pair({"counter_interrogate_cb": on_counter})
    try:
        result = await asyncio.wait_for(pair.client.counter_interrogate(7, freeze), 5)
        assert result == [d._replace(cause=iec104.Cause.INTERROGATED_COUNTER)
                          for d in counters]
        assert calls == [(7, freeze)]
        assert isinstance(calls[0][1], iec104.FreezeCode)
        result = await pair.client.counter_interrogate(7, freeze, request=2)
        assert {d.cause for d in result} == {iec104.Cause.INTERROGATED_COUNTER02}
    finally:
        await close(pair)


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: type(c.value).__name__)
async def test_every_command_type(command):
    received = []

    def on_command(conn, commands):
        received.extend(commands)
        return True

    pair = await make_pair({"command_cb": on_command})
    try:
        assert await asyncio.wait_for(pair.client.send_command(command), 5) is True
        assert received == [command]
    finally:
        await close(pair)


async def test_command_confirmations_on_the_wire():
    verdicts = iter([True, False, True, True])

    async def on_command(conn, commands):
        return next(verdicts)

    pair = await make_pair({"command_cb": on_command})
    seen = []
    original = pair.client._on_asdu

    def spy(raw):
        asdu = iec104.codec.decode_asdu(raw)
        seen.append((asdu.cause, asdu.negative, asdu.objects[0].select))
        original(raw)

    pair.client._on_asdu = spy
    try:
        c = cmd(iec104.DoubleValue.ON, iec104.Action.SELECT)
        assert await pair.client.send_command(c) is True
        assert await pair.client.send_command(c._replace(action=iec104.Action.EXECUTE)) is False
        assert await pair.client.send_command(c._replace(action=iec104.Action.EXECUTE)) is True
        assert await pair.client.send_command(c._replace(action=iec104.Action.CANCEL)) is True
        await asyncio.sleep(0.05)
        C = iec104.Cause
        assert seen == [
            (C.ACTIVATION_CONFIRMATION, False, True),          # select: no ACTTERM
            (C.ACTIVATION_CONFIRMATION, True, False),          # negative: no ACTTERM
            (C.ACTIVATION_CONFIRMATION, False, False),
            (C.ACTIVATION_TERMINATION, False, False),
            (C.DEACTIVATION_CONFIRMATION, False, False)]
    finally:
        await close(pair)


async def test_command_negative_on_false_exception_or_no_callback():
    def on_command(conn, commands):
        if commands[0].io_address == 1:
            return False
        raise RuntimeError("device busy")

    pair = await make_pair({"command_cb": on_command})
    try:
        assert await pair.client.send_command(cmd(iec104.SingleValue.ON, ioa=1)) is False
        assert await pair.client.send_command(cmd(iec104.SingleValue.ON, ioa=2)) is False
        assert await pair.peer.send_command(cmd(iec104.SingleValue.ON, ioa=2)) is False
        with pytest.raises(iec104.EncodeError):
            await pair.client.send_command(cmd(iec104.BitstringValue(b"\x00" * 4),
                                               iec104.Action.SELECT))
    finally:
        await close(pair)


async def test_clock_sync_and_test_command():
    syncs = []

    def on_clock_sync(conn, asdu_address, time):
        syncs.append((asdu_address, time))
        return True

    pair = await make_pair({"clock_sync_cb": on_clock_sync})
    try:
        assert await pair.client.clock_sync(T7, 3) is True
        assert syncs == [(3, T7)]
        assert await pair.client.clock_sync() is True
        assert syncs[-1][1].to_datetime().year == datetime.datetime.now().year
        assert await pair.peer.clock_sync(T7) is False  # client has no clock_sync_cb
        assert await pair.client.test_command(1) is True
        assert await pair.peer.test_command(1) is True
    finally:
        await close(pair)


async def test_unsupported_request_gets_unknown_type():
    pair = await make_pair()
    try:
        pair.client.send_asdu(ASDU(TypeId.C_RP_NA_1, False, iec104.Cause.ACTIVATION, False,
                                   False, 0, 1, (InformationObject(0, qualifier=1),)))
        pair.client.send_asdu(iec104.codec.RawASDU(200, False, iec104.Cause.ACTIVATION, False,
                                                   False, 0, 1, 1, b"\x00\x00\x00\x01"))
        # the peer's answer is no data: nothing arrives at receive(), the link stays up
        assert await pair.client.test_command() is True
        assert pair.client.is_open
    finally:
        await close(pair)


async def test_receive_raises_after_close_and_pending_fail():
    pair = await make_pair({"command_cb": lambda conn, cmds: asyncio.sleep(10, True),
                                "interrogate_cb": lambda conn, ca: asyncio.sleep(10, [])})
    try:
        pending = asyncio.ensure_future(pair.client.send_command(cmd(iec104.SingleValue.ON)))
        gi = asyncio.ensure_future(pair.client.interrogate())
        receiving = asyncio.ensure_future(pair.client.receive())
        await asyncio.sleep(0.05)
        await pair.peer.async_close()
        await asyncio.wait_for(pair.client.wait_closed(), 5)
        for fut in (pending, gi, receiving):
            with pytest.raises(ConnectionError):
                await fut
        with pytest.raises(ConnectionError):
            pair.client.notify_data_change([ALL_DATA[0]])
        assert pair.client.close_reason == "closed by peer"
    finally:
        await close(pair)


async def test_data_queued_before_close_is_delivered():
    pair = await make_pair()
    items = [data(iec104.ScaledValue(i), ioa=i) for i in range(10)]
    pair.peer.notify_data_change(items)
    await pair.peer.async_close()
    got = []
    with pytest.raises(ConnectionError):
        while True:
            got += await asyncio.wait_for(pair.client.receive(), 5)
    assert got == items
    await close(pair)


async def test_drain_reports_values_that_cannot_be_encoded():
    pair = await make_pair()
    try:
        with pytest.raises(iec104.EncodeError):  # no type for this value: nothing queued
            pair.client.notify_data_change([data(iec104.RegulatingValue.LOWER)])
        bad = data(iec104.NormalizedValue(1.5), ioa=2)
        good = [data(iec104.NormalizedValue(0.5), ioa=1), data(iec104.NormalizedValue(0), ioa=3)]
        pair.client.notify_data_change([good[0], bad, good[1]])
        with pytest.raises(iec104.EncodeError):
            await pair.client.drain()
        got = []
        while len(got) < 2:
            got += await asyncio.wait_for(pair.peer.receive(), 5)
        assert got == good
        await pair.client.drain()  # reported once
    finally:
        await close(pair)


async def test_coroutine_connection_callback_is_cancelled_on_close():
    events = []

    async def on_connection(conn):
        events.append("open")
        try:
            await conn.wait_closing()
        finally:
            events.append("closing")

    addr = iec104.Address("127.0.0.1", find_unused_tcp_port())
    srv = await iec104.listen(on_connection, addr)
    conn = await iec104.connect(addr)
    await asyncio.sleep(0.05)
    assert len(srv.connections) == 1
    assert srv.addresses == [addr]
    await conn.async_close()
    for _ in range(100):
        if events == ["open", "closing"] and not srv.connections:
            break
        await asyncio.sleep(0.01)
    assert events == ["open", "closing"]
    assert srv.connections == []
    await srv.async_close()
    assert srv.is_closed
    with pytest.raises(OSError):
        await iec104.connect(addr)


async def test_server_close_closes_connections():
    pair = await make_pair()
    await pair.server.async_close()
    await asyncio.wait_for(pair.client.wait_closed(), 5)
    assert pair.peer.is_closed
    await close(pair)


async def test_connect_times_out_without_startdt_con():
    async def silent(reader, writer):
        await asyncio.sleep(5)
        writer.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectionError, match="STARTDT_ACT not confirmed"):
            await iec104.connect(iec104.Address("127.0.0.1", port), response_timeout=0.3)
    finally:
        srv.close()


def _tls_contexts(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key, crt = tmp / "key.pem", tmp / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(crt, key)
    client_ctx = ssl.create_default_context(cafile=str(crt))
    return server_ctx, client_ctx


async def test_tls(tmp_path):
    server_ctx, client_ctx = _tls_contexts(tmp_path)
    addr = iec104.Address("127.0.0.1", find_unused_tcp_port())
    queue: asyncio.Queue = asyncio.Queue()
    srv = await iec104.listen(queue.put_nowait, addr, ssl_context=server_ctx,
                              interrogate_cb=lambda conn, ca: ALL_DATA[:3])
    conn = await iec104.connect(addr, ssl_context=client_ctx)
    peer = await queue.get()
    try:
        assert conn.ssl_object is not None and peer.ssl_object is not None
        assert conn.ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        peer.notify_data_change(ALL_DATA)
        got = []
        while len(got) < len(ALL_DATA):
            got += await asyncio.wait_for(conn.receive(), 5)
        assert got == ALL_DATA
        assert len(await conn.interrogate(1)) == 3
        # a plain client cannot talk to the TLS server
        with pytest.raises((ConnectionError, OSError)):
            await iec104.connect(addr, response_timeout=0.5)
    finally:
        await conn.async_close()
        await srv.async_close()


async def test_tls_client_rejects_untrusted_server(tmp_path):
    server_ctx, _ = _tls_contexts(tmp_path)
    addr = iec104.Address("127.0.0.1", find_unused_tcp_port())
    srv = await iec104.listen(lambda conn: None, addr, ssl_context=server_ctx)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await iec104.connect(addr, ssl_context=ssl.create_default_context())
    finally:
        await srv.async_close()


async def test_200_simultaneous_connections():
    def on_interrogate(conn, asdu_address):
        return [data(iec104.ScaledValue(asdu_address), ca=asdu_address)]

    addr = iec104.Address("127.0.0.1", find_unused_tcp_port())
    srv = await iec104.listen(lambda conn: None, addr, interrogate_cb=on_interrogate)
    try:
        conns = await asyncio.gather(*(iec104.connect(addr) for _ in range(200)))
        assert len(srv.connections) == 200
        results = await asyncio.gather(*(c.interrogate(i + 1) for i, c in enumerate(conns)))
        assert [r[0].value.value for r in results] == list(range(1, 201))
        # still serving new clients while 200 are connected
        extra = await iec104.connect(addr)
        assert (await extra.interrogate(7))[0].value == iec104.ScaledValue(7)
        await asyncio.gather(*(c.async_close() for c in [*conns, extra]))
    finally:
        await srv.async_close()


@pytest.mark.parametrize("k", [1, 3, 12])
async def test_window_respected_with_small_k(k):
    pair = await make_pair({"send_window_size": k, "receive_window_size": 1},
                           {"send_window_size": k, "receive_window_size": 1})
    items = [data(iec104.FloatingValue(float(i)), ioa=i) for i in range(2000)]
    try:
        pair.peer.notify_data_change(items)
        await asyncio.wait_for(pair.peer.drain(), 10)
        got = []
        while len(got) < len(items):
            got += await asyncio.wait_for(pair.client.receive(), 5)
        assert got == items
        assert pair.peer.session.unacknowledged <= k
    finally:
        await close(pair)


async def test_concurrent_receivers_each_get_data():
    pair = await make_pair()
    try:
        receivers = [asyncio.ensure_future(pair.client.receive()) for _ in range(3)]
        await asyncio.sleep(0.01)
        pair.peer.notify_data_change([data(iec104.ScaledValue(i), ca=i + 1) for i in range(3)])
        results = await asyncio.wait_for(asyncio.gather(*receivers), 5)
        assert sorted(r[0].value.value for r in results) == [0, 1, 2]
        late = asyncio.ensure_future(pair.client.receive())
        await asyncio.sleep(0.01)
        late.cancel()  # a cancelled receiver does not disturb the next one
        pair.peer.notify_data_change([data(iec104.ScaledValue(9))])
        assert (await asyncio.wait_for(pair.client.receive(), 5))[0].value.value == 9
    finally:
        await close(pair)


async def test_notify_data_change_snapshots_the_list():
    pair = await make_pair({"receive_window_size": 1}, {"send_window_size": 1})
    try:
        items = [data(iec104.ScaledValue(i), ca=1 + i % 2, ioa=i) for i in range(20)]
        expected = list(items)
        pair.client.notify_data_change(items)
        items.clear()  # the caller reuses its list at once
        items.append(data(iec104.ScaledValue(999)))
        got = []
        while len(got) < 20:
            got += await asyncio.wait_for(pair.peer.receive(), 5)
        assert got == expected
    finally:
        await close(pair)
