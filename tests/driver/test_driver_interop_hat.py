"""Interoperability with hat-drivers 0.10 (an independent asyncio implementation).

(a) our client against a hat server, (b) a hat client against our server, on 127.0.0.1:
every data type hat's 104 layer has, interrogation, counter interrogation, every command
type with its confirmations, clock synchronization, read, reset process, parameters and
parameter activation. Values must arrive equal.

hat's own conventions that we translate in :func:`to_hat` (documented in
``tests/support/hatpeer.py``): normalized values use the scale 32767 (ours, like the
standard and lib60870, 32768), so the hat value carrying the same wire integer is
``raw / 32767``; quality of counters lives in hat's ``CounterQuality``; hat's protection
event state is an OFF/ON enum (ours a ``DoubleValue``); hat has no qualifier on set-points.
"""

from __future__ import annotations

import asyncio
import datetime

import pytest

import iec104
from tests.conftest import find_unused_tcp_port
from tests.support import hatpeer
from tests.support.hatpeer import iec104 as hat

pytestmark = pytest.mark.timeout(30)

Q = iec104.Quality()
QX = iec104.Quality(invalid=True, not_topical=False, substituted=True, blocked=False,
                    overflow=True)
PQ = iec104.ProtectionQuality(invalid=False, not_topical=True, substituted=False,
                              blocked=True, time_invalid=True)
T7 = iec104.Time.from_datetime(datetime.datetime(2024, 5, 6, 7, 8, 9, 123000))
CA = 1


def d(value, quality=Q, time=None, ioa=1, cause=iec104.Cause.SPONTANEOUS, test=False):
    return iec104.Data(value, quality, time, CA, ioa, cause, test)


# every monitor type hat's 104 layer knows (NA and CP56 variants, no CP24 in 104)
DATA = [
    d(iec104.SingleValue.ON, iec104.Quality(blocked=True), ioa=1),
    d(iec104.SingleValue.OFF, Q, T7, ioa=2),
    d(iec104.DoubleValue.FAULT, ioa=3),
    d(iec104.DoubleValue.ON, iec104.Quality(invalid=True), T7, ioa=4),
    d(iec104.StepPositionValue(-64, True), QX, ioa=5),
    d(iec104.StepPositionValue(63, False), Q, T7, ioa=6),
    d(iec104.BitstringValue(b"\x01\x02\x03\x04"), ioa=7),
    d(iec104.BitstringValue(b"\xff\x00\x80\x7f"), Q, T7, ioa=8),
    d(iec104.NormalizedValue(0.5), ioa=9),
    d(iec104.NormalizedValue(-1.0), QX, T7, ioa=10),
    d(iec104.NormalizedValue(-0.25), None, ioa=11),  # M_ME_ND_1
    d(iec104.ScaledValue(-32768), ioa=12),
    d(iec104.ScaledValue(32767), Q, T7, ioa=13),
    d(iec104.FloatingValue(21.5), ioa=14),
    d(iec104.FloatingValue(-3328.0625), QX, T7, ioa=15),
    d(iec104.BinaryCounterValue(-2 ** 31, 31, True, True, True), None, ioa=16),
    d(iec104.BinaryCounterValue(2 ** 31 - 1, 0, False, False, False), None, T7, ioa=17),
    d(iec104.ProtectionValue(iec104.DoubleValue.ON, 65535), PQ, T7, ioa=18),
    d(iec104.ProtectionStartValue(True, False, True, False, True, False, 1234), PQ, T7, ioa=19),
    d(iec104.ProtectionCommandValue(False, True, False, True, 7), PQ, T7, ioa=20),
    d(iec104.StatusChangeValue(0b1000_0000_0000_0101, 0b0100_0000_0000_0011), QX, ioa=21),
    d(iec104.SingleValue.ON, cause=iec104.Cause.PERIODIC, test=True, ioa=22),
    d(iec104.ScaledValue(5), cause=iec104.Cause.BACKGROUND_SCAN, ioa=23),
    d(iec104.InitializationValue(2, True), None, ioa=0, cause=iec104.Cause.INITIALIZED),
]


def _time(t: iec104.Time | None) -> hat.Time | None:
    if t is None:
        return None
    return hat.Time(size=hat.TimeSize.SEVEN, milliseconds=t.milliseconds, invalid=t.invalid,
                    substituted=bool(t.reserved & 1), minutes=t.minutes,
                    summer_time=t.summer_time, hours=t.hours, day_of_week=t.day_of_week,
                    day_of_month=t.day_of_month, months=t.months, years=t.years)


def _norm(value: float) -> hat.NormalizedValue:
    # the hat value that puts the same int16 on the wire as ours (scale 32767 vs 32768)
    return hat.NormalizedValue(min(32767, round(value * 32768)) / 32767)


def _ind(q: iec104.Quality) -> hat.IndicationQuality:
    return hat.IndicationQuality(q.invalid, q.not_topical, q.substituted, q.blocked)


def _meas(q: iec104.Quality) -> hat.MeasurementQuality:
    return hat.MeasurementQuality(q.invalid, q.not_topical, q.substituted, q.blocked,
                                  q.overflow)


def _prot(q: iec104.ProtectionQuality) -> hat.ProtectionQuality:
    return hat.ProtectionQuality(q.invalid, q.not_topical, q.substituted, q.blocked,
                                 q.time_invalid)


def hat_data(item: iec104.Data):
    v, q = item.value, item.quality
    if isinstance(v, iec104.SingleValue):
        return hat.SingleData(hat.SingleValue(int(v)), _ind(q))
    if isinstance(v, iec104.DoubleValue):
        return hat.DoubleData(hat.DoubleValue(int(v)), _ind(q))
    if isinstance(v, iec104.StepPositionValue):
        return hat.StepPositionData(hat.StepPositionValue(v.value, v.transient), _meas(q))
    if isinstance(v, iec104.BitstringValue):
        return hat.BitstringData(hat.BitstringValue(v.value), _meas(q))
    if isinstance(v, iec104.NormalizedValue):
        return hat.NormalizedData(_norm(v.value), None if q is None else _meas(q))
    if isinstance(v, iec104.ScaledValue):
        return hat.ScaledData(hat.ScaledValue(v.value), _meas(q))
    if isinstance(v, iec104.FloatingValue):
        return hat.FloatingData(hat.FloatingValue(v.value), _meas(q))
    if isinstance(v, iec104.BinaryCounterValue):
        return hat.BinaryCounterData(hat.BinaryCounterValue(v.value),
                                     hat.CounterQuality(v.invalid, v.adjusted, v.overflow,
                                                        v.sequence))
    if isinstance(v, iec104.ProtectionValue):
        return hat.ProtectionData(hat.ProtectionValue(int(v.state)), _prot(q), v.elapsed_time)
    if isinstance(v, iec104.ProtectionStartValue):
        return hat.ProtectionStartData(hat.ProtectionStartValue(*v[:6]), _prot(q),
                                       v.duration_time)
    if isinstance(v, iec104.ProtectionCommandValue):
        return hat.ProtectionCommandData(hat.ProtectionCommandValue(*v[:4]), _prot(q),
                                         v.operating_time)
    if isinstance(v, iec104.StatusChangeValue):
        return hat.StatusData(hat.StatusValue([bool(v.status >> i & 1) for i in range(16)],
                                              [bool(v.change >> i & 1) for i in range(16)]),
                              _meas(q))
    raise TypeError(v)


def to_hat(item: iec104.Data):
    """The hat message for one of our Data."""
    if isinstance(item.value, iec104.InitializationValue):
        return hat.InitializationMsg(is_test=item.is_test, originator_address=0,
                                     asdu_address=item.asdu_address,
                                     param_change=item.value.param_change,
                                     cause=hat.InitializationResCause(item.value.cause))
    return hat.DataMsg(is_test=item.is_test, originator_address=0,
                       asdu_address=item.asdu_address, io_address=item.io_address,
                       data=hat_data(item), time=_time(item.time),
                       cause=hat.DataResCause(int(item.cause)))


def c(value, action=iec104.Action.EXECUTE, time=None, qualifier=0, ioa=100):
    return iec104.Command(action, value, CA, ioa, time, qualifier)


# every command type; set-points with QL 0 (hat has no qualifier there)
COMMANDS = [
    c(iec104.SingleValue.ON, qualifier=1),
    c(iec104.SingleValue.OFF, iec104.Action.SELECT, T7, qualifier=31),
    c(iec104.DoubleValue.ON),
    c(iec104.DoubleValue.OFF, iec104.Action.SELECT, T7, qualifier=2),
    c(iec104.RegulatingValue.HIGHER, qualifier=3),
    c(iec104.RegulatingValue.LOWER, iec104.Action.EXECUTE, T7),
    c(iec104.NormalizedValue(-0.5)),
    c(iec104.NormalizedValue(0.25), iec104.Action.SELECT, T7),
    c(iec104.ScaledValue(-1234)),
    c(iec104.ScaledValue(32767), iec104.Action.SELECT, T7),
    c(iec104.FloatingValue(1.5)),
    c(iec104.FloatingValue(-7.75), iec104.Action.EXECUTE, T7),
    c(iec104.BitstringValue(b"\xde\xad\xbe\xef")),
    c(iec104.BitstringValue(b"\x00\x01\x02\x03"), iec104.Action.EXECUTE, T7),
]


def hat_command(cmd: iec104.Command):
    v, select = cmd.value, cmd.action == iec104.Action.SELECT
    if isinstance(v, iec104.SingleValue):
        return hat.SingleCommand(hat.SingleValue(int(v)), select, cmd.qualifier)
    if isinstance(v, iec104.DoubleValue):
        return hat.DoubleCommand(hat.DoubleValue(int(v)), select, cmd.qualifier)
    if isinstance(v, iec104.RegulatingValue):
        return hat.RegulatingCommand(hat.RegulatingValue(int(v)), select, cmd.qualifier)
    if isinstance(v, iec104.NormalizedValue):
        return hat.NormalizedCommand(_norm(v.value), select)
    if isinstance(v, iec104.ScaledValue):
        return hat.ScaledCommand(hat.ScaledValue(v.value), select)
    if isinstance(v, iec104.FloatingValue):
        return hat.FloatingCommand(hat.FloatingValue(v.value), select)
    if isinstance(v, iec104.BitstringValue):
        return hat.BitstringCommand(hat.BitstringValue(v.value))
    raise TypeError(v)


def hat_command_msg(cmd: iec104.Command, cause, negative=False):
    return hat.CommandMsg(is_test=False, originator_address=0, asdu_address=cmd.asdu_address,
                          io_address=cmd.io_address, command=hat_command(cmd),
                          is_negative_confirm=negative, time=_time(cmd.time), cause=cause)


def test_translation_is_not_trivially_symmetric():
    """Guard the helpers: a few hat values fixed by hand."""
    status = to_hat(DATA[20]).data.value
    assert status.value[0] and status.value[2] and status.value[15] and not status.value[1]
    assert to_hat(DATA[8]).data.value == hat.NormalizedValue(16384 / 32767)
    assert hatpeer.encode_msgs([to_hat(DATA[8])])[0][-3:] == b"\x00\x40\x00"


# --- (a) our client against a hat server --------------------------------------------------

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
        return rtu, hat_conn, conn

    yield make
    for rtu in rtus:
        await rtu.close()


async def test_our_client_receives_every_data_type_from_hat(hat_rtu):
    _rtu, hat_conn, conn = await hat_rtu()
    await hat_conn.send([to_hat(item) for item in DATA])
    got = []
    while len(got) < len(DATA):
        got += await asyncio.wait_for(conn.receive(), 5)
    assert got == DATA
    await conn.async_close()


async def test_our_client_interrogates_hat(hat_rtu):
    station = [item for item in DATA if item.time is None and item.io_address
               and not isinstance(item.value, iec104.BinaryCounterValue)
               and item.cause == iec104.Cause.SPONTANEOUS and not item.is_test]
    counters = [d(iec104.BinaryCounterValue(v, s, o, a, i), None, ioa=ioa)
                for ioa, (v, s, o, a, i) in ((300, (123456, 3, False, True, False)),
                                             (301, (-7, 31, True, False, True)))]
    points = {item.io_address: hat_data(item) for item in station + counters}
    rtu, _hat_conn, conn = await hat_rtu(points=points)
    result = await asyncio.wait_for(conn.interrogate(CA), 5)
    assert result == [x._replace(cause=iec104.Cause.INTERROGATED_STATION) for x in station]
    result = await asyncio.wait_for(conn.counter_interrogate(CA), 5)
    assert result == [x._replace(cause=iec104.Cause.INTERROGATED_COUNTER) for x in counters]
    assert [type(m).__name__ for m in rtu.received] == ["InterrogationMsg",
                                                        "CounterInterrogationMsg"]
    assert rtu.received[0].request == 20 and rtu.received[0].asdu_address == CA
    assert rtu.received[1].request == 5 and rtu.received[1].freeze == hat.FreezeCode.READ
    await conn.async_close()


@pytest.mark.parametrize("freeze", list(iec104.FreezeCode))
async def test_our_counter_interrogation_freeze_codes_reach_hat(hat_rtu, freeze):
    rtu, _hat_conn, conn = await hat_rtu()
    assert await asyncio.wait_for(conn.counter_interrogate(CA, freeze), 5) == []
    assert rtu.received[-1].freeze == hat.FreezeCode(int(freeze))
    await conn.async_close()


async def test_our_commands_to_hat(hat_rtu):
    rtu, _hat_conn, conn = await hat_rtu(command_ioas={100})
    for cmd in COMMANDS:
        assert await asyncio.wait_for(conn.send_command(cmd), 5) is True, cmd
        assert rtu.received[-1] == hat_command_msg(cmd, hat.CommandReqCause.ACTIVATION)
    cancel = COMMANDS[0]._replace(action=iec104.Action.CANCEL)
    hat_conn_received = len(rtu.received)
    with pytest.raises(asyncio.TimeoutError):  # hat's RTU does not answer deactivation
        await asyncio.wait_for(conn.send_command(cancel), 0.3)
    # negative confirmation (hat answers unknown IOA with P/N=1, COT 47)
    unknown = COMMANDS[2]._replace(io_address=999)
    assert await asyncio.wait_for(conn.send_command(unknown), 5) is False
    assert rtu.received[-1] == hat_command_msg(unknown, hat.CommandReqCause.ACTIVATION)
    assert rtu.received[hat_conn_received] == hat_command_msg(
        cancel, hat.CommandReqCause.DEACTIVATION)
    await conn.async_close()


async def test_our_clock_sync_to_hat(hat_rtu):
    rtu, _hat_conn, conn = await hat_rtu()
    assert await asyncio.wait_for(conn.clock_sync(T7, CA), 5) is True
    msg = rtu.received[-1]
    assert isinstance(msg, hat.ClockSyncMsg)
    assert msg.time == _time(T7) and msg.asdu_address == CA
    await conn.async_close()


# --- (b) a hat client against our server ----------------------------------------------------

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
        conn = await asyncio.wait_for(queue.get(), 5)
        return srv, conn, hat_conn

    yield make
    for srv in servers:
        await srv.async_close()


async def receive_n(hat_conn, n: int) -> list:
    msgs = []
    while len(msgs) < n:
        msgs += await asyncio.wait_for(hat_conn.receive(), 5)
    return msgs


async def test_hat_client_receives_every_data_type(our_server):
    _srv, conn, hat_conn = await our_server()
    conn.notify_data_change(DATA)
    assert await receive_n(hat_conn, len(DATA)) == [to_hat(item) for item in DATA]
    # and many floats packed into few ASDUs arrive one message each, in order
    floats = [d(iec104.FloatingValue(i * 0.5), ioa=1000 + i) for i in range(500)]
    conn.notify_data_change(floats)
    assert await receive_n(hat_conn, 500) == [to_hat(item) for item in floats]
    await hat_conn.async_close()


def _act(msg_type, **fields):
    return msg_type(is_test=False, originator_address=0, asdu_address=CA,
                    is_negative_confirm=False, cause=hat.CommandReqCause.ACTIVATION, **fields)


@pytest.mark.parametrize("group", [0, 1, 16])
async def test_hat_client_interrogates_us(our_server, group):
    station = [item for item in DATA if item.io_address and not isinstance(
        item.value, iec104.BinaryCounterValue)]
    calls = []

    async def on_interrogate(conn, asdu_address):
        calls.append((asdu_address, 0))
        return station

    def on_group(conn, asdu_address, grp):
        calls.append((asdu_address, grp))
        return station[:3]

    _srv, _conn, hat_conn = await our_server(interrogate_cb=on_interrogate,
                                           group_interrogate_cb=on_group)
    request = _act(hat.InterrogationMsg, request=20 + group)
    await hat_conn.send([request])
    expected = station if group == 0 else station[:3]
    msgs = await hatpeer.receive_until(
        hat_conn, lambda m: getattr(m, "cause", None) == hat.CommandResCause.ACTIVATION_TERMINATION)
    cause = iec104.Cause(20 + group)
    assert msgs == [request._replace(cause=hat.CommandResCause.ACTIVATION_CONFIRMATION),
                    *(to_hat(item._replace(cause=cause)) for item in expected),
                    request._replace(cause=hat.CommandResCause.ACTIVATION_TERMINATION)]
    assert calls == [(CA, group)]
    await hat_conn.async_close()


async def test_hat_client_gets_negative_interrogation(our_server):
    _srv, _conn, hat_conn = await our_server(interrogate_cb=lambda conn, ca: None)
    request = _act(hat.InterrogationMsg, request=20)
    await hat_conn.send([request])
    (msg,) = await hat_conn.receive()
    assert msg == request._replace(cause=hat.CommandResCause.ACTIVATION_CONFIRMATION,
                                   is_negative_confirm=True)
    await hat_conn.async_close()


@pytest.mark.parametrize("freeze", list(iec104.FreezeCode))
async def test_hat_client_counter_interrogates_us(our_server, freeze):
    counters = [d(iec104.BinaryCounterValue(123456, 3, False, True, False), None, ioa=300),
                d(iec104.BinaryCounterValue(-7, 31, True, False, True), None, T7, ioa=301)]
    calls = []

    def on_counter(conn, asdu_address, frz):
        calls.append((asdu_address, frz))
        return counters

    _srv, _conn, hat_conn = await our_server(counter_interrogate_cb=on_counter)
    request = _act(hat.CounterInterrogationMsg, request=5, freeze=hat.FreezeCode(int(freeze)))
    await hat_conn.send([request])
    msgs = await hatpeer.receive_until(
        hat_conn, lambda m: getattr(m, "cause", None) == hat.CommandResCause.ACTIVATION_TERMINATION)
    assert msgs == [request._replace(cause=hat.CommandResCause.ACTIVATION_CONFIRMATION),
                    *(to_hat(x._replace(cause=iec104.Cause.INTERROGATED_COUNTER))
                      for x in counters),
                    request._replace(cause=hat.CommandResCause.ACTIVATION_TERMINATION)]
    assert calls == [(CA, freeze)]
    await hat_conn.async_close()


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda x: f"{type(x.value).__name__}-"
                         f"{x.action.value}-{'time' if x.time else 'notime'}")
async def test_hat_client_commands_us(our_server, cmd):
    received = []

    def on_command(conn, commands):
        received.extend(commands)
        return commands[0].io_address == 100

    _srv, _conn, hat_conn = await our_server(command_cb=on_command)
    res = hat.CommandResCause
    request = hat_command_msg(cmd, hat.CommandReqCause.ACTIVATION)
    await hat_conn.send([request])
    if cmd.action == iec104.Action.SELECT:
        msgs = await receive_n(hat_conn, 1)
        assert msgs == [request._replace(cause=res.ACTIVATION_CONFIRMATION)]
    else:
        msgs = await receive_n(hat_conn, 2)
        assert msgs == [request._replace(cause=res.ACTIVATION_CONFIRMATION),
                        request._replace(cause=res.ACTIVATION_TERMINATION)]
    assert received == [cmd]
    # refused by the callback: negative ACTCON only
    refused = hat_command_msg(cmd._replace(io_address=101), hat.CommandReqCause.ACTIVATION)
    await hat_conn.send([refused])
    assert await receive_n(hat_conn, 1) == [refused._replace(cause=res.ACTIVATION_CONFIRMATION,
                                                             is_negative_confirm=True)]
    # deactivation
    cancel = request._replace(cause=hat.CommandReqCause.DEACTIVATION)
    await hat_conn.send([cancel])
    assert await receive_n(hat_conn, 1) == [cancel._replace(
        cause=res.DEACTIVATION_CONFIRMATION)]
    assert received[-1] == cmd._replace(action=iec104.Action.CANCEL)
    await hat_conn.async_close()


async def test_hat_client_clock_sync_and_test(our_server):
    syncs = []

    def on_clock_sync(conn, asdu_address, time):
        syncs.append((asdu_address, time))
        return True

    _srv, _conn, hat_conn = await our_server(clock_sync_cb=on_clock_sync)
    request = hat.ClockSyncMsg(is_test=False, originator_address=0, asdu_address=CA,
                               time=_time(T7), is_negative_confirm=False,
                               cause=hat.ClockSyncReqCause.ACTIVATION)
    await hat_conn.send([request])
    assert await receive_n(hat_conn, 1) == [request._replace(
        cause=hat.ClockSyncResCause.ACTIVATION_CONFIRMATION)]
    assert syncs == [(CA, T7)]
    test = hat.TestMsg(is_test=False, originator_address=0, asdu_address=CA, counter=0x55AA,
                       time=_time(T7), cause=hat.ActivationReqCause.ACTIVATION)
    await hat_conn.send([test])
    assert await receive_n(hat_conn, 1) == [test._replace(
        cause=hat.ActivationResCause.ACTIVATION_CONFIRMATION)]
    await hat_conn.async_close()


async def test_hat_client_sends_data_to_us(our_server):
    """Data in the control direction too (both ends may notify)."""
    _srv, conn, hat_conn = await our_server()
    await hat_conn.send([to_hat(item) for item in DATA])
    got = []
    while len(got) < len(DATA):
        got += await asyncio.wait_for(conn.receive(), 5)
    assert got == DATA
    await hat_conn.async_close()


# --- issue 15: read, reset process, parameters (hat 0.10 has ReadMsg, ResetMsg, ParameterMsg,
# ParameterActivationMsg; no delay acquisition, and no P/N bit on reset and parameters, so
# it cannot confirm those negatively; its parameter qualifier is the whole QPM octet) -------

HQ = hatpeer.good_measurement()


async def test_our_read_reset_and_parameters_to_hat(hat_rtu):
    rtu, _hat_conn, conn = await hat_rtu(points={
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

    _srv, _conn, hat_conn = await our_server(read_cb=read_cb, reset_cb=reset_cb,
                                             parameter_cb=parameter_cb)
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
