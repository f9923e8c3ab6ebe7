"""Issue 15 against hat-drivers 0.10: read, reset process, parameters and parameter
activation in both roles, over real sockets on 127.0.0.1.

hat has ``ReadMsg``, ``ResetMsg``, ``ParameterMsg`` and ``ParameterActivationMsg`` (no
delay acquisition message, and no P/N bit on the reset and parameter messages, so it
cannot confirm those negatively). Its parameter qualifier is the whole QPM octet.
"""

from __future__ import annotations

import asyncio

import pytest

import iec104
from tests.conftest import find_unused_tcp_port
from tests.support import hatpeer
from tests.support.hatpeer import iec104 as hat

pytestmark = pytest.mark.timeout(30)

CA = 1
Q = iec104.Quality()
HQ = hatpeer.good_measurement()


# --- our client against a hat server ------------------------------------------------------

@pytest.fixture
async def hat_rtu():
    rtus = []

    async def make(**kwargs):
        rtu = hatpeer.HatRtu(find_unused_tcp_port(), asdu_address=CA, **kwargs)
        await rtu.start()
        rtus.append(rtu)
        conn = await iec104.connect(iec104.Address("127.0.0.1", rtu.port))
        hat_conn = await rtu.wait_connection()
        await rtu.wait_enabled(hat_conn)
        return rtu, conn

    yield make
    for rtu in rtus:
        await rtu.close()


async def test_our_read_reset_and_parameters_to_hat(hat_rtu):
    rtu, conn = await hat_rtu(points={
        100: hat.FloatingData(value=hat.FloatingValue(12.5), quality=HQ)})
    assert await conn.read(100, CA) == iec104.Data(
        iec104.FloatingValue(12.5), Q, None, CA, 100, iec104.Cause.REQUEST, False)
    with pytest.raises(iec104.NegativeResponse) as info:
        await conn.read(101, CA)
    assert info.value.cause == iec104.Cause.UNKNOWN_IO_ADDRESS
    assert await conn.reset_process(CA, iec104.ResetKind.EVENT_BUFFER) is True
    assert await conn.set_parameter(iec104.Parameter(
        iec104.ScaledValue(-5), CA, 100, iec104.ParameterKind.LOW_LIMIT,
        local_change=True)) is True
    assert await conn.set_parameter(iec104.Parameter(
        iec104.FloatingValue(2.5), CA, 100, in_operation=False)) is True
    assert await conn.activate_parameter(iec104.ParameterActivation(CA, 100)) is True
    assert await conn.activate_parameter(iec104.ParameterActivation(
        CA, 100, activate=False)) is True
    received = rtu.received
    assert [(type(m).__name__, m.cause.name) for m in received] == [
        ("ReadMsg", "REQUEST"), ("ReadMsg", "REQUEST"), ("ResetMsg", "ACTIVATION"),
        ("ParameterMsg", "ACTIVATION"), ("ParameterMsg", "ACTIVATION"),
        ("ParameterActivationMsg", "ACTIVATION"), ("ParameterActivationMsg", "DEACTIVATION")]
    assert [m.io_address for m in received[:2]] == [100, 101]
    assert received[2].qualifier == 2
    assert received[3].parameter == hat.ScaledParameter(value=hat.ScaledValue(-5),
                                                        qualifier=0x43)
    assert received[4].parameter == hat.FloatingParameter(value=hat.FloatingValue(2.5),
                                                          qualifier=0x81)
    assert received[5].qualifier == received[6].qualifier == 2
    await conn.async_close()


# --- a hat client against our server ------------------------------------------------------

@pytest.fixture
async def our_server():
    servers = []

    async def make(**kwargs):
        queue: asyncio.Queue = asyncio.Queue()
        port = find_unused_tcp_port()
        srv = await iec104.listen(queue.put_nowait, iec104.Address("127.0.0.1", port),
                                  **kwargs)
        servers.append(srv)
        hat_conn = await hatpeer.hat_connect(port)
        await asyncio.wait_for(queue.get(), 5)
        return hat_conn

    yield make
    for srv in servers:
        await srv.async_close()


async def _answer(hat_conn, msg):
    await hat_conn.send([msg])
    return (await asyncio.wait_for(hat_conn.receive(), 5))[0]


async def test_hat_reads_resets_and_sets_parameters_on_our_server(our_server):
    seen = []

    def read_cb(conn, asdu_address, io_address):
        if io_address != 100:
            return None
        return iec104.Data(iec104.ScaledValue(321), Q, None, asdu_address, io_address,
                           iec104.Cause.SPONTANEOUS, False)

    def reset_cb(conn, asdu_address, kind):
        seen.append(("reset", asdu_address, kind))
        return True

    def parameter_cb(conn, request):
        seen.append(request)
        return True

    hat_conn = await our_server(read_cb=read_cb, reset_cb=reset_cb, parameter_cb=parameter_cb)
    read = hat.ReadMsg(is_test=False, originator_address=0, asdu_address=CA, io_address=100,
                       cause=hat.ReadReqCause.REQUEST)
    assert await _answer(hat_conn, read) == hat.DataMsg(
        is_test=False, originator_address=0, asdu_address=CA, io_address=100,
        data=hat.ScaledData(value=hat.ScaledValue(321), quality=HQ), time=None,
        cause=hat.DataResCause.REQUEST)
    refused = await _answer(hat_conn, read._replace(io_address=101))
    assert refused == read._replace(io_address=101, cause=hat.ReadResCause.UNKNOWN_IO_ADDRESS)
    reset = hat.ResetMsg(is_test=False, originator_address=0, asdu_address=CA, qualifier=1,
                         cause=hat.ActivationReqCause.ACTIVATION)
    assert await _answer(hat_conn, reset) == reset._replace(
        cause=hat.ActivationResCause.ACTIVATION_CONFIRMATION)
    parameter = hat.ParameterMsg(
        is_test=False, originator_address=0, asdu_address=CA, io_address=100,
        parameter=hat.NormalizedParameter(value=hat.NormalizedValue(0.5), qualifier=0x44),
        cause=hat.ParameterReqCause.ACTIVATION)
    answer = await _answer(hat_conn, parameter)
    assert answer.cause == hat.ParameterResCause.ACTIVATION_CONFIRMATION
    assert answer.parameter.qualifier == 0x44
    activation = hat.ParameterActivationMsg(
        is_test=False, originator_address=0, asdu_address=CA, io_address=100, qualifier=3,
        cause=hat.ParameterActivationReqCause.DEACTIVATION)
    assert await _answer(hat_conn, activation) == activation._replace(
        cause=hat.ParameterActivationResCause.DEACTIVATION_CONFIRMATION)
    # hat normalizes with 32767: 0.5 is 16384 on the wire, 16384/32768 for us
    assert seen == [
        ("reset", CA, iec104.ResetKind.GENERAL),
        iec104.Parameter(iec104.NormalizedValue(hatpeer.hat_normalized_raw(0.5) / 32768), CA,
                         100, iec104.ParameterKind.HIGH_LIMIT, local_change=True),
        iec104.ParameterActivation(CA, 100, iec104.ActivationKind.CYCLIC_TRANSMISSION,
                                   activate=False)]
    await hat_conn.async_close()
