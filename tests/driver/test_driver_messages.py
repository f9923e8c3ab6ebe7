"""Read, reset process, delay acquisition, parameters, STARTDT/STOPDT, profiles and the
ASDU escape hatch: our client against our server over real sockets on 127.0.0.1 (issue 15).

Timeouts run on :class:`~tests.support.fakeclock.FakeClockLoop`.
"""

from __future__ import annotations

import asyncio

import pytest

import iec104
from iec104.codec import ASDU, InformationObject, RawASDU, TypeId
from iec104.codec.parameters import (
    asdu_to_parameters,
    delay_reply,
    parameter_to_asdu,
    qpm,
    transmission_delay,
)
from tests.conftest import find_unused_tcp_port
from tests.support.fakeclock import FakeClockLoop, run, settle

pytestmark = pytest.mark.timeout(30)

Q = iec104.Quality()
CA = 7


def point(value, ioa, cause=iec104.Cause.SPONTANEOUS, quality=Q):
    return iec104.Data(value, quality, None, CA, ioa, cause, False)


@pytest.fixture
async def pair():
    """``make(server_kwargs, client_kwargs)`` -> (server, server connection, client)."""
    made = []

    async def make(server_kwargs=None, client_kwargs=None):
        accepted: asyncio.Queue = asyncio.Queue()
        addr = iec104.Address("127.0.0.1", find_unused_tcp_port())
        srv = await iec104.listen(accepted.put_nowait, addr, **(server_kwargs or {}))
        client = await iec104.connect(addr, **(client_kwargs or {}))
        made.append((srv, client))
        return srv, await accepted.get(), client

    yield make
    for srv, client in made:
        await client.async_close()
        await srv.async_close()


# --- read ---------------------------------------------------------------------------------

async def test_read_answers_with_cause_request_and_not_through_receive(pair):
    asked = []

    def read_cb(conn, asdu_address, io_address):
        asked.append((asdu_address, io_address))
        return point(iec104.FloatingValue(21.5), io_address)

    _, sconn, client = await pair({"read_cb": read_cb})
    got = await client.read(100, asdu_address=CA)
    assert got == point(iec104.FloatingValue(21.5), 100, iec104.Cause.REQUEST)
    assert asked == [(CA, 100)]
    # the answer was consumed by read(): the next received data is what comes next
    sconn.notify_data_change([point(iec104.SingleValue.ON, 5)])
    assert await asyncio.wait_for(client.receive(), 5) == [point(iec104.SingleValue.ON, 5)]


async def test_read_coroutine_callback_and_concurrent_reads(pair):
    async def read_cb(conn, asdu_address, io_address):
        await asyncio.sleep(0)
        # a careless application: the answer still names the point asked for
        return point(iec104.ScaledValue(io_address), 0)._replace(asdu_address=99)

    _, _, client = await pair({"read_cb": read_cb})
    got = await asyncio.gather(*(client.read(ioa, CA) for ioa in (1, 2, 3, 1)))
    assert [g.value for g in got] == [iec104.ScaledValue(i) for i in (1, 2, 3, 1)]
    assert [(g.asdu_address, g.io_address) for g in got] == [(CA, i) for i in (1, 2, 3, 1)]


async def test_read_of_unknown_point_is_negative_unknown_ioa(pair):
    _, _, client = await pair({"read_cb": lambda conn, ca, ioa: None})
    with pytest.raises(iec104.NegativeResponse) as info:
        await client.read(9, CA)
    assert info.value.cause == iec104.Cause.UNKNOWN_IO_ADDRESS


async def test_read_bad_callback_result_and_exception_are_negative(pair):
    def read_cb(conn, ca, ioa):
        if ioa == 1:
            return "not data"
        raise RuntimeError("broken")

    _, _, client = await pair({"read_cb": read_cb})
    for ioa in (1, 2):
        with pytest.raises(iec104.NegativeResponse):
            await client.read(ioa, CA)
    assert client.is_open


async def test_read_without_callback_is_unknown_type(pair):
    _, _, client = await pair()
    with pytest.raises(iec104.NegativeResponse) as info:
        await client.read(1, CA)
    assert info.value.cause == iec104.Cause.UNKNOWN_TYPE


def test_read_times_out_after_t1_on_the_fake_clock():
    async def main(loop: FakeClockLoop) -> None:
        never: asyncio.Future = loop.create_future()

        async def read_cb(conn, ca, ioa):
            return await never

        srv = await iec104.listen(lambda conn: None, iec104.Address("127.0.0.1", 0),
                                  read_cb=read_cb)
        client = await iec104.connect(srv.addresses[0], response_timeout=15)
        task = asyncio.ensure_future(client.read(1, CA))
        await settle()
        loop.advance(10.5)  # t2: the server acknowledges the read's I-frame
        await settle()
        assert not task.done()
        loop.advance(5)
        await settle()
        with pytest.raises(iec104.ResponseTimeout):
            await task
        assert isinstance(task.exception(), TimeoutError)
        assert client.is_open
        never.cancel()
        await client.async_close()
        await srv.async_close()

    run(main)


# --- reset process, delay acquisition -------------------------------------------------------

async def test_reset_process_reaches_callback_and_confirms(pair):
    resets = []

    def reset_cb(conn, asdu_address, kind):
        resets.append((asdu_address, kind))
        return kind == iec104.ResetKind.GENERAL

    _, _, client = await pair({"reset_cb": reset_cb})
    assert await client.reset_process(CA) is True
    assert await client.reset_process(CA, iec104.ResetKind.EVENT_BUFFER) is False
    assert await client.reset_process(CA, 200) is False
    assert resets == [(CA, iec104.ResetKind.GENERAL), (CA, iec104.ResetKind.EVENT_BUFFER),
                      (CA, 200)]
    assert type(resets[2][1]) is int


async def test_reset_without_callback_is_negative(pair):
    _, _, client = await pair()
    assert await client.reset_process() is False


async def test_delay_acquisition_loads_the_measured_delay(pair):
    loaded = asyncio.Queue()
    _, sconn, client = await pair(
        {"delay_cb": lambda conn, ca, delay: loaded.put_nowait((ca, delay))})
    delay = await client.acquire_delay(CA)
    assert 0 <= delay < 30_000
    assert await asyncio.wait_for(loaded.get(), 5) == (CA, delay)
    assert sconn.transmission_delay == delay


def test_delay_arithmetic_of_iec_60870_5_5():
    # sent at 59.990 s of the minute, held 15 ms by the station, back at 0.045 s
    returned = delay_reply(59_990, 15)
    assert returned == 5
    assert transmission_delay(returned, 60_045) == 20  # (45 - 5) / 2
    assert transmission_delay(delay_reply(1000, 0), 1000) == 0


# --- parameters -----------------------------------------------------------------------------

PARAMETERS = [
    iec104.Parameter(iec104.NormalizedValue(0.25), CA, 10),
    iec104.Parameter(iec104.ScaledValue(-300), CA, 11, iec104.ParameterKind.LOW_LIMIT,
                     local_change=True),
    iec104.Parameter(iec104.FloatingValue(99.5), CA, 12, iec104.ParameterKind.HIGH_LIMIT,
                     in_operation=False),
    iec104.Parameter(iec104.FloatingValue(0.5), CA, 13, 40),  # a private KPA
]


async def test_parameters_reach_the_callback_which_accepts_or_refuses(pair):
    seen = []

    def parameter_cb(conn, request):
        seen.append(request)
        return request.io_address != 13

    _, _, client = await pair({"parameter_cb": parameter_cb})
    results = [await client.set_parameter(p) for p in PARAMETERS]
    assert results == [True, True, True, False]
    assert seen == PARAMETERS
    activation = iec104.ParameterActivation(CA, 12)
    assert await client.activate_parameter(activation) is True
    assert await client.activate_parameter(activation._replace(activate=False)) is True
    assert await client.activate_parameter(iec104.ParameterActivation(
        CA, 13, iec104.ActivationKind.CYCLIC_TRANSMISSION)) is False
    assert seen[4:] == [activation, activation._replace(activate=False),
                        iec104.ParameterActivation(CA, 13,
                                                   iec104.ActivationKind.CYCLIC_TRANSMISSION)]


async def test_parameters_without_callback_are_refused(pair):
    _, _, client = await pair()
    assert await client.set_parameter(PARAMETERS[0]) is False
    assert await client.activate_parameter(iec104.ParameterActivation(CA, 1)) is False


def test_qpm_bits_round_trip():
    assert qpm(iec104.ParameterKind.THRESHOLD) == 0x01
    assert qpm(4, local_change=True, in_operation=False) == 0xC4
    for p in PARAMETERS:
        assert asdu_to_parameters(parameter_to_asdu(p)) == [p]
    with pytest.raises(iec104.EncodeError):
        qpm(64)


# --- STARTDT / STOPDT -----------------------------------------------------------------------

async def test_stop_and_start_hold_notified_data_until_started(pair):
    server_events: asyncio.Queue = asyncio.Queue()
    client_events = []
    _, sconn, client = await pair(
        {"enabled_cb": lambda conn, enabled: server_events.put_nowait(enabled)},
        {"enabled_cb": lambda conn, enabled: client_events.append(enabled)})
    assert await server_events.get() is True
    assert client.is_enabled and sconn.is_enabled and client_events == [True]
    await client.stop()
    assert not client.is_enabled
    assert await asyncio.wait_for(server_events.get(), 5) is False
    assert not sconn.is_enabled
    await client.stop()  # stopped already: nothing to do
    sconn.notify_data_change([point(iec104.SingleValue.ON, i) for i in range(1, 4)])
    await asyncio.sleep(0.05)  # time to send, if it were sent
    assert not client._received
    assert sconn.session.unacknowledged == 0
    await client.start()
    assert client.is_enabled and client_events == [True, False, True]
    got = await asyncio.wait_for(client.receive(), 5)
    assert [d.io_address for d in got] == [1, 2, 3]
    assert await asyncio.wait_for(server_events.get(), 5) is True


async def test_only_the_controlling_station_starts_and_stops(pair):
    _, sconn, _ = await pair()
    with pytest.raises(iec104.codec.LocalProtocolError):
        await sconn.stop()
    await sconn.start()  # started already (by the client): nothing to do


# --- profiles -------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", [iec104.Profile(1, 1, 1), iec104.Profile(2, 1, 2),
                                     iec104.Profile(1, 2, 3)])
async def test_every_field_size_profile_end_to_end(pair, profile):
    commands = []

    def command_cb(conn, cmds):
        commands.extend(cmds)
        return True

    items = [iec104.Data(iec104.FloatingValue(i / 2), Q, None, 200, 250 - i,
                         iec104.Cause.INTERROGATED_STATION, False) for i in range(40)]
    _, sconn, client = await pair(
        {"profile": profile, "interrogate_cb": lambda conn, ca: items,
         "command_cb": command_cb,
         "read_cb": lambda conn, ca, ioa: items[0]._replace(io_address=ioa)},
        {"profile": profile})
    assert client.profile == profile == sconn.profile
    assert await client.interrogate(200) == items
    cmd = iec104.Command(iec104.Action.EXECUTE, iec104.SingleValue.ON, 200, 255, None, 0)
    assert await client.send_command(cmd) is True
    assert commands == [cmd]
    assert (await client.read(255, 200)).io_address == 255
    with pytest.raises(iec104.EncodeError):  # IOA 256 does not fit a 1-octet profile
        client.send_asdu(ASDU(TypeId.C_RD_NA_1, False, iec104.Cause.REQUEST, False, False,
                              0, 200, (InformationObject(256 ** profile.ioa_size),)))


async def test_profile_is_checked():
    with pytest.raises(ValueError, match="unsupported profile"):
        await iec104.listen(lambda conn: None, iec104.Address("127.0.0.1", 0),
                            profile=iec104.Profile(3, 2, 3))


# --- escape hatch ---------------------------------------------------------------------------

async def test_private_type_ids_through_asdu_cb_and_send_asdu(pair):
    server_got: asyncio.Queue = asyncio.Queue()
    client_got: asyncio.Queue = asyncio.Queue()

    def server_asdu_cb(conn, asdu):
        server_got.put_nowait(asdu)
        if asdu.type_id == 150:
            conn.send_asdu(asdu._replace(cause=iec104.Cause.ACTIVATION_CONFIRMATION))
            return True
        return None  # type 151: not handled, the driver refuses it

    _, _, client = await pair({"asdu_cb": server_asdu_cb},
                              {"asdu_cb": lambda conn, asdu: client_got.put_nowait(asdu)})
    private = RawASDU(150, False, iec104.Cause.ACTIVATION, False, False, 3, CA, 1,
                      b"\x01\x00\x00\xaa\xbb")
    client.send_asdu(private)
    assert await asyncio.wait_for(server_got.get(), 5) == private
    assert await asyncio.wait_for(client_got.get(), 5) == private._replace(
        cause=iec104.Cause.ACTIVATION_CONFIRMATION)
    client.send_asdu(private._replace(type_id=151))
    assert (await asyncio.wait_for(server_got.get(), 5)).type_id == 151
    assert await asyncio.wait_for(client_got.get(), 5) == private._replace(
        type_id=151, cause=iec104.Cause.UNKNOWN_TYPE, negative=True)


def test_readme_message_set_snippet(tmp_path):
    import re
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
                if "select_timeout=10" in b)
    code = code.replace("2404", str(find_unused_tcp_port()))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "FloatingValue(value=21.5)\nFalse\nFalse\n"


async def test_every_cause_of_the_new_request_types_leaves_the_server_serving(pair):
    """Requests with any cause, P/N, missing or extra objects: answered or ignored, never
    a crash; the callbacks see only well-formed requests."""
    seen = []

    def record(*args):
        seen.append(args[1:])
        return True

    _, sconn, client = await pair({
        "read_cb": lambda conn, ca, ioa: point(iec104.SingleValue.ON, ioa),
        "reset_cb": record, "parameter_cb": record,
        "delay_cb": lambda conn, ca, ms: None, "asdu_cb": lambda conn, asdu: None})
    objects = {
        TypeId.C_RD_NA_1: InformationObject(1),
        TypeId.C_RP_NA_1: InformationObject(0, qualifier=1),
        TypeId.C_CD_NA_1: InformationObject(0, 100),
        TypeId.P_ME_NA_1: InformationObject(1, iec104.NormalizedValue(0.5), qualifier=1),
        TypeId.P_ME_NB_1: InformationObject(1, iec104.ScaledValue(5), qualifier=2),
        TypeId.P_ME_NC_1: InformationObject(1, iec104.FloatingValue(5.0), qualifier=3),
        TypeId.P_AC_NA_1: InformationObject(1, qualifier=2),
    }
    for type_id, obj in objects.items():
        for cause in range(64):
            for negative in (False, True):
                for objs in ((obj,), (), (obj, obj._replace(address=2))):
                    client.send_asdu(ASDU(type_id, False, cause, negative, False, 0, CA,
                                          objs))
    await client.drain()
    assert await client.read(1, CA) == point(iec104.SingleValue.ON, 1, iec104.Cause.REQUEST)
    assert sconn.is_open and client.is_open
    for args in seen:
        assert isinstance(args[-1], iec104.ResetKind | iec104.Parameter
                          | iec104.ParameterActivation), args


def test_delay_acquisition_round_trip_on_the_fake_clock():
    """The controlling side of IEC 60870-5-5's procedure against a hand-written station:
    100 ms round trip of which the station held 40 ms -> 30 ms each way, then loaded."""
    from iec104.codec import decode_asdu, encode_asdu
    from tests.driver.test_driver_protocol import STARTDT_ACT, STARTDT_CON, Raw, iframe

    async def main(loop: FakeClockLoop) -> None:
        accepted: asyncio.Queue = asyncio.Queue()

        async def on_client(reader, writer):
            await accepted.put(Raw(reader, writer))

        raw_srv = await asyncio.start_server(on_client, "127.0.0.1", 0)
        task = asyncio.ensure_future(iec104.connect(
            iec104.Address("127.0.0.1", raw_srv.sockets[0].getsockname()[1])))
        raw = await accepted.get()
        assert await raw.read() == ("U", STARTDT_ACT)
        raw.send(STARTDT_CON)
        conn = await task
        delay = asyncio.ensure_future(conn.acquire_delay(CA))
        kind, _, _, body = await raw.read()
        request = decode_asdu(body)
        assert (kind, request.type_id, request.cause) == ("I", TypeId.C_CD_NA_1,
                                                          iec104.Cause.ACTIVATION)
        sent = request.objects[0].value
        loop.advance(0.1)
        reply = request._replace(cause=iec104.Cause.ACTIVATION_CONFIRMATION, objects=(
            request.objects[0]._replace(value=(sent + 40) % 60_000),))
        raw.send(iframe(0, 1, encode_asdu(reply)))
        assert await delay == 30
        kind, _, _, body = await raw.read()
        loaded = decode_asdu(body)
        assert (loaded.type_id, loaded.cause, loaded.objects[0].value) == (
            TypeId.C_CD_NA_1, iec104.Cause.SPONTANEOUS, 30)
        await conn.async_close()
        raw_srv.close()

    run(main)
