"""The outstation model (issue 15): select before operate, stale time-tagged commands and
redundancy groups, over real sockets on 127.0.0.1.

Select timeouts and command ages run on :class:`~tests.support.fakeclock.FakeClockLoop`
(the driver's wall clock is the loop's clock anchored once, so advancing the loop ages a
time tag). Redundancy uses hand-written masters on plain sockets where a master must
misbehave (never acknowledge), and our client elsewhere.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import struct

import pytest

import iec104
from iec104.codec import TypeId, decode_asdu
from tests.support.fakeclock import FakeClockLoop, run, settle

pytestmark = pytest.mark.timeout(60)

CA = 1
Action = iec104.Action
ON, OFF = iec104.SingleValue.ON, iec104.SingleValue.OFF
STARTDT_ACT = bytes.fromhex("68 04 07 00 00 00")
STARTDT_CON = bytes.fromhex("68 04 0b 00 00 00")


def command(action, value=ON, ioa=10, time=None, qualifier=0):
    return iec104.Command(action, value, CA, ioa, time, qualifier)


def sbo_test(body, accept=lambda command: True, **server_kwargs):
    """Run ``body(loop, client, other_client, commands)`` against an SBO server on the
    fake clock; ``commands`` lists what reached ``command_cb``, which confirms what
    ``accept`` accepts."""
    async def main(loop: FakeClockLoop) -> None:
        commands = []

        def command_cb(conn, cmds):
            commands.extend(cmds)
            return all(accept(c) for c in cmds)

        srv = await iec104.listen(lambda conn: None, iec104.Address("127.0.0.1", 0),
                                  command_cb=command_cb, **server_kwargs)
        client = await iec104.connect(srv.addresses[0])
        other = await iec104.connect(srv.addresses[0])
        try:
            await body(loop, client, other, commands)
        finally:
            await client.async_close()
            await other.async_close()
            await srv.async_close()

    run(main)


def test_execute_needs_a_live_select_of_the_same_point_value_and_connection():
    async def body(loop, client, other, commands):
        # execute without select: refused before command_cb
        assert await client.send_command(command(Action.EXECUTE)) is False
        assert commands == []
        # select, then execute: both confirmed, both reach command_cb (the S/E bit too)
        assert await client.send_command(command(Action.SELECT)) is True
        assert await client.send_command(command(Action.EXECUTE)) is True
        assert commands == [command(Action.SELECT), command(Action.EXECUTE)]
        # the selection was consumed
        assert await client.send_command(command(Action.EXECUTE)) is False
        # another value than selected: refused, and the selection is gone
        assert await client.send_command(command(Action.SELECT)) is True
        assert await client.send_command(command(Action.EXECUTE, OFF)) is False
        assert await client.send_command(command(Action.EXECUTE)) is False
        # another qualifier (QU) than selected
        assert await client.send_command(command(Action.SELECT, qualifier=1)) is True
        assert await client.send_command(command(Action.EXECUTE, qualifier=2)) is False
        # selected on one connection, executed on another
        assert await client.send_command(command(Action.SELECT, ioa=11)) is True
        assert await other.send_command(command(Action.EXECUTE, ioa=11)) is False
        assert await client.send_command(command(Action.EXECUTE, ioa=11)) is True
        # a cancel (deactivation) drops the selection
        assert await client.send_command(command(Action.SELECT, ioa=12)) is True
        assert await client.send_command(command(Action.CANCEL, ioa=12)) is True
        assert await client.send_command(command(Action.EXECUTE, ioa=12)) is False
        # set-points have S/E too; bitstrings have none and pass
        setpoint = command(Action.SELECT, iec104.FloatingValue(1.5), ioa=13)
        assert await client.send_command(setpoint) is True
        assert await client.send_command(setpoint._replace(action=Action.EXECUTE)) is True
        bits = command(Action.EXECUTE, iec104.BitstringValue(b"\x00\x00\x00\x01"), ioa=14)
        assert await client.send_command(bits) is True

    sbo_test(body, select_timeout=10)


def test_a_select_times_out_on_the_fake_clock():
    async def body(loop, client, other, commands):
        assert await client.send_command(command(Action.SELECT)) is True
        await _wait(loop, 9.9)
        assert await client.send_command(command(Action.EXECUTE)) is True
        assert await client.send_command(command(Action.SELECT)) is True
        await _wait(loop, 10.1)
        assert await client.send_command(command(Action.EXECUTE)) is False
        assert commands == [command(Action.SELECT), command(Action.EXECUTE),
                            command(Action.SELECT)]

    sbo_test(body, select_timeout=10)


def test_a_refused_select_selects_nothing():
    async def body(loop, client, other, commands):
        assert await client.send_command(command(Action.SELECT)) is False
        assert await client.send_command(command(Action.EXECUTE)) is False
        assert commands == [command(Action.SELECT)]

    sbo_test(body, lambda command: command.action != Action.SELECT, select_timeout=5)


def test_without_select_timeout_commands_pass_as_before():
    async def body(loop, client, other, commands):
        assert await client.send_command(command(Action.EXECUTE)) is True
        assert commands == [command(Action.EXECUTE)]

    sbo_test(body)


async def _wait(loop: FakeClockLoop, seconds: float) -> None:
    """Let ``seconds`` pass in steps below t2, so that acknowledgements keep t1 away."""
    while seconds > 0:
        step = min(seconds, 5)
        loop.advance(step)
        seconds -= step
        await settle()


def _now_tag() -> iec104.Time:
    return iec104.Time.from_datetime(datetime.datetime.now(datetime.UTC))


def test_time_tagged_commands_older_than_command_max_age_are_refused():
    async def body(loop, client, other, commands):
        fresh = command(Action.EXECUTE, time=_now_tag())
        assert await client.send_command(fresh) is True
        old = command(Action.EXECUTE, ioa=11, time=_now_tag())
        await _wait(loop, 30.5)  # the tag is 30.5 s old when the server sees it
        assert await client.send_command(old) is False
        ahead = command(Action.EXECUTE, ioa=12, time=iec104.Time.from_datetime(
            # 49.5 s ahead of the server, whose clock is 30.5 s ahead
            datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=80)))
        assert await client.send_command(ahead) is False
        invalid = command(Action.EXECUTE, ioa=13, time=_now_tag()._replace(invalid=True))
        assert await client.send_command(invalid) is False
        untagged = command(Action.EXECUTE, ioa=14)
        assert await client.send_command(untagged) is True
        assert commands == [fresh, untagged]

    sbo_test(body, command_max_age=30)


def test_command_max_age_and_select_together():
    async def body(loop, client, other, commands):
        tag = _now_tag()
        assert await client.send_command(command(Action.SELECT, time=tag)) is True
        await _wait(loop, 3)
        assert await client.send_command(command(Action.EXECUTE, time=tag)) is False  # stale
        assert commands == [command(Action.SELECT, time=tag)]

    sbo_test(body, select_timeout=10, command_max_age=2)


# --- redundancy groups ----------------------------------------------------------------------

class NeverAcks:
    """A master on a plain socket that starts data transfer and reads I-frames but never
    acknowledges them (so the outstation's window k fills)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.points: list[tuple[int, int]] = []

    @classmethod
    async def start(cls, port):
        self = cls(*await asyncio.open_connection("127.0.0.1", port))
        self.writer.write(STARTDT_ACT)
        assert await self.reader.readexactly(6) == STARTDT_CON
        return self

    async def read_iframes(self, count):
        for _ in range(count):
            head = await asyncio.wait_for(self.reader.readexactly(2), 5)
            body = await asyncio.wait_for(self.reader.readexactly(head[1]), 5)
            assert not struct.unpack_from("<H", body)[0] & 1, body.hex()
            asdu = decode_asdu(body[4:])
            self.points += [(asdu.common_address, o.address) for o in asdu.objects]

    def kill(self):
        self.writer.transport.abort()  # RST, as a crashed master


def _one_asdu_each(ioas):
    # alternate the types so that every item is an ASDU of its own
    return [iec104.Data(iec104.SingleValue.ON if i % 2 else iec104.FloatingValue(i),
                        iec104.Quality(), None, CA, i, iec104.Cause.SPONTANEOUS, False)
            for i in ioas]


async def _until(condition, seconds=10.0):
    """Poll ``condition`` (state the server reaches by itself) for up to ``seconds``."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def _receive_points(conn, count):
    points = []
    while len(points) < count:
        points += [(d.asdu_address, d.io_address)
                   for d in await asyncio.wait_for(conn.receive(), 10)]
    return points


async def test_killed_master_its_unsent_and_buffered_data_go_to_the_next_one_started():
    group = iec104.RedundancyGroup("station")
    srv = await iec104.listen(lambda conn: None, iec104.Address("127.0.0.1", 0),
                              redundancy_groups=[group], send_window_size=12)
    port = srv.addresses[0].port
    try:
        first = await NeverAcks.start(port)
        await _until(lambda: srv.redundancy_groups["station"] is not None)
        batch_a = _one_asdu_each(range(1, 101))
        srv.notify_data_change(batch_a)
        await first.read_iframes(12)  # k frames, then the outstation waits for acks
        first.kill()
        await _until(lambda: srv.redundancy_groups["station"] is None)
        assert srv.redundancy_groups["station"] is None
        assert srv.buffered("station") == 88  # the unsent rest came back to the group
        batch_b = _one_asdu_each(range(101, 151))
        srv.notify_data_change(batch_b)  # no started connection: buffered
        assert srv.buffered("station") == 138
        second = await iec104.connect(srv.addresses[0])
        got = await _receive_points(second, 138)
        counts = collections.Counter(first.points + got)
        assert set(counts) == {(CA, i) for i in range(1, 151)}
        assert set(counts.values()) == {1}  # nothing lost, nothing twice
        assert first.points == [(CA, i) for i in range(1, 13)]
        assert got == [(CA, i) for i in range(13, 151)]  # in order
        await second.async_close()
    finally:
        await srv.async_close()


async def test_one_started_connection_per_group_and_takeover():
    groups = [iec104.RedundancyGroup("a", frozenset({"127.0.0.1"})),
              iec104.RedundancyGroup("other", frozenset({"192.0.2.1"}))]
    srv = await iec104.listen(lambda conn: None, iec104.Address("127.0.0.1", 0),
                              redundancy_groups=groups)
    try:
        one = await iec104.connect(srv.addresses[0])
        two = await iec104.connect(srv.addresses[0])  # also started: takes over
        await _until(lambda: srv.redundancy_groups["a"] is not None and
                     srv.redundancy_groups["a"].info.remote_addr == two.info.local_addr)
        assert srv.redundancy_groups["a"].info.remote_addr == two.info.local_addr
        assert srv.redundancy_groups["other"] is None
        srv.notify_data_change(_one_asdu_each([1, 2]))
        assert await _receive_points(two, 2) == [(CA, 1), (CA, 2)]
        assert srv.buffered("other") == 2  # its own buffer, nobody started there
        # the first master stops, then starts again: it takes over
        await two.stop()
        srv.notify_data_change(_one_asdu_each([3]))
        await one.stop()
        await one.start()
        assert await _receive_points(one, 1) == [(CA, 3)]
        assert not two._received
        await one.async_close()
        await two.async_close()
    finally:
        await srv.async_close()


async def test_a_connection_in_no_group_is_closed():
    srv = await iec104.listen(
        lambda conn: None, iec104.Address("127.0.0.1", 0),
        redundancy_groups=[iec104.RedundancyGroup("remote", frozenset({"192.0.2.1"}))])
    try:
        with pytest.raises(ConnectionError):
            await iec104.connect(srv.addresses[0], response_timeout=5)
    finally:
        await srv.async_close()


async def test_group_buffer_keeps_the_latest_value_per_point_when_full():
    srv = await iec104.listen(lambda conn: None, iec104.Address("127.0.0.1", 0),
                              redundancy_groups=[iec104.RedundancyGroup("g")],
                              send_queue_size=10)
    try:
        for round_ in range(3):
            srv.notify_data_change([iec104.Data(iec104.ScaledValue(round_ * 10 + i),
                                                iec104.Quality(), None, CA, i,
                                                iec104.Cause.SPONTANEOUS, False)
                                    for i in range(5)])
        assert srv.buffered("g") == 5
        client = await iec104.connect(srv.addresses[0])
        got = []
        while len(got) < 5:
            got += await asyncio.wait_for(client.receive(), 5)
        assert [d.value for d in got] == [iec104.ScaledValue(20 + i) for i in range(5)]
        await client.async_close()
    finally:
        await srv.async_close()


async def test_without_groups_server_notify_goes_to_every_connection():
    srv = await iec104.listen(lambda conn: None, iec104.Address("127.0.0.1", 0))
    try:
        one = await iec104.connect(srv.addresses[0])
        two = await iec104.connect(srv.addresses[0])
        await _until(lambda: len(srv.connections) == 2)
        srv.notify_data_change(_one_asdu_each([1]))
        assert await _receive_points(one, 1) == [(CA, 1)]
        assert await _receive_points(two, 1) == [(CA, 1)]
        with pytest.raises(iec104.EncodeError):
            srv.notify_data_change([iec104.Data(  # no monitor type carries a regulating step
                iec104.RegulatingValue.HIGHER, None, None, CA, 1, iec104.Cause.SPONTANEOUS,
                False)])
        await one.async_close()
        await two.async_close()
    finally:
        await srv.async_close()


def test_type_of_time_tagged_commands():
    from iec104.driver.outstation import _TIME_TAGGED
    assert _TIME_TAGGED == {TypeId.C_SC_TA_1, TypeId.C_DC_TA_1, TypeId.C_RC_TA_1,
                            TypeId.C_SE_TA_1, TypeId.C_SE_TB_1, TypeId.C_SE_TC_1,
                            TypeId.C_BO_TA_1}


MASTER = """
import asyncio, sys, iec104

async def main():
    conn = await iec104.connect(iec104.Address("127.0.0.1", int(sys.argv[1])))
    while True:
        for item in await conn.receive():
            print(item.asdu_address, item.io_address, flush=True)

asyncio.run(main())
"""


async def test_sigkilled_master_process_then_the_other_master_gets_the_buffered_data():
    import signal
    import sys

    from tests.conftest import REPO_ROOT

    srv = await iec104.listen(lambda conn: None, iec104.Address("127.0.0.1", 0),
                              redundancy_groups=[iec104.RedundancyGroup("station")])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MASTER, str(srv.addresses[0].port), cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE)
    try:
        await _until(lambda: srv.redundancy_groups["station"] is not None)
        # a second master connected all along, stopped (standby, as 10.3 has it)
        second = await iec104.connect(srv.addresses[0], started=False)
        assert not second.is_enabled
        srv.notify_data_change(_one_asdu_each(range(1, 61)))
        first = []
        while len(first) < 60:
            line = await asyncio.wait_for(proc.stdout.readline(), 10)
            ca, ioa = map(int, line.split())
            first.append((ca, ioa))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await _until(lambda: srv.redundancy_groups["station"] is None)
        assert srv.redundancy_groups["station"] is None
        srv.notify_data_change(_one_asdu_each(range(61, 101)))  # nobody started: buffered
        await second.start()  # the standby connection takes over
        got = await _receive_points(second, 40)
        counts = collections.Counter(first + got)
        assert set(counts) == {(CA, i) for i in range(1, 101)}
        assert set(counts.values()) == {1}
        await second.async_close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await srv.async_close()


def test_command_gate_refuses_impossible_time_tags_without_raising():
    from iec104.codec import ASDU, InformationObject
    from iec104.driver.outstation import CommandGate

    gate = CommandGate(None, 30, lambda: 1000.0, 1.7e9 - 1000.0)
    tag = iec104.Time.from_datetime(datetime.datetime.fromtimestamp(1.7e9, datetime.UTC))
    for time, refused in ((tag, False), (tag._replace(months=0), True),
                          (tag._replace(day_of_month=31, months=2), True)):
        asdu = ASDU(TypeId.C_SC_TA_1, False, iec104.Cause.ACTIVATION, False, False, 0, CA,
                    (InformationObject(1, ON, time=time, select=False, qualifier=0),))
        assert (gate.refusal(asdu) is not None) is refused, time
