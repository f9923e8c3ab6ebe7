"""Tests of the peer helpers (hat-drivers, c104), against each other and against tshark.

These are the facts later driver tests rely on: each peer talks to the other over real sockets
on 127.0.0.1, and what they put on the wire decodes in tshark as expected.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from tests.support import hatpeer
from tests.support import tshark as ts
from tests.support.c104peer import C104Client, C104Server, c104, plain_value, wait_for
from tests.support.hatpeer import HatRtu, iec104, structural
from tests.support.pcapwriter import write_pcap

pytestmark = pytest.mark.timeout(60)

Q = hatpeer.good_measurement()


def float_data(value: float) -> iec104.FloatingData:
    return iec104.FloatingData(value=iec104.FloatingValue(value), quality=Q)


# --- hat encoding ---------------------------------------------------------------------------


def test_hat_encodes_float_measurand_to_known_bytes() -> None:
    msg = iec104.DataMsg(
        is_test=False,
        originator_address=0,
        asdu_address=1,
        io_address=100,
        data=float_data(1.5),
        time=None,
        cause=iec104.DataResCause.SPONTANEOUS,
    )
    (asdu,) = hatpeer.encode_msgs([msg])
    assert asdu == bytes.fromhex("0d 01 03 00 01 00 64 00 00 00 00 c0 3f 00")
    assert hatpeer.decode_asdu(asdu) == [msg]
    apdu = hatpeer.i_frame(3, 7, asdu)
    assert apdu[:6] == bytes.fromhex("68 12 06 00 0e 00")
    decoded = hatpeer.decode_apdu(apdu)
    assert (decoded.ssn, decoded.rsn, bytes(decoded.data)) == (3, 7, asdu)
    assert hatpeer.u_frame("STARTDT_ACT") == bytes.fromhex("68 04 07 00 00 00")
    assert hatpeer.s_frame(8) == bytes.fromhex("68 04 01 00 10 00")


def test_hat_structural_sq_and_time_tag() -> None:
    t = structural.Time(
        size=structural.TimeSize.SEVEN,
        milliseconds=12345,
        invalid=False,
        substituted=False,
        minutes=34,
        summer_time=False,
        hours=12,
        day_of_week=3,
        day_of_month=15,
        months=6,
        years=24,
    )
    asdu = structural.ASDU(
        type=structural.AsduType.M_ME_TF,
        cause=structural.Cause(structural.CauseType.SPONTANEOUS, False, False, 7),
        address=0x1234,
        ios=[
            structural.IO(
                address=0x010203,
                time=t,
                elements=[structural.IoElement_M_ME_TF(structural.FloatingValue(-2.0), Q)],
            )
        ],
    )
    raw = hatpeer.encode_asdu(asdu)
    assert raw == bytes.fromhex("24 01 03 07 34 12 03 02 01 00 00 00 c0 00 39 30 22 0c 6f 06 18")
    assert hatpeer.decode_structural(raw) == (asdu, b"")


def test_hat_normalized_scale_is_32767() -> None:
    assert hatpeer.hat_normalized_raw(0.5) == 16384
    assert hatpeer.hat_normalized_raw(-1.0) == -32767
    (msg,) = hatpeer.decode_asdu(bytes.fromhex("09 01 03 00 01 00 01 00 00 00 80 00"))
    assert msg.data.value.value == -32768 / 32767


def test_hat_rejects_unknown_type_id() -> None:
    with pytest.raises(structural.AsduTypeError):
        hatpeer.decode_asdu(bytes.fromhex("18 01 03 00 01 00 01 00 00 00"))


def test_hat_frames_decode_in_tshark(tmp_path: Path) -> None:
    ts.ensure_tshark()
    cmd = iec104.CommandMsg(
        is_test=False,
        originator_address=3,
        asdu_address=7,
        io_address=5000,
        command=iec104.DoubleCommand(value=iec104.DoubleValue.ON, select=True, qualifier=1),
        is_negative_confirm=False,
        time=None,
        cause=iec104.CommandReqCause.ACTIVATION,
    )
    (asdu,) = hatpeer.encode_msgs([cmd])
    path = write_pcap(
        tmp_path / "hat.pcap",
        [
            ("c2s", hatpeer.u_frame("STARTDT_ACT")),
            ("s2c", hatpeer.u_frame("STARTDT_CON")),
            ("c2s", hatpeer.i_frame(0, 0, asdu)),
        ],
    )
    _, _, apdu = ts.tshark_apdus(path)
    assert (apdu["type_name"], apdu["cot"], apdu["oa"], apdu["ca"]) == ("C_DC_NA_1", 6, 3, 7)
    (obj,) = apdu["objects"]
    assert (obj["ioa"], obj["value"], obj["select"], obj["qu"]) == (5000, 2, True, 1)


# --- hat server and client ------------------------------------------------------------------


async def test_hat_round_trip(unused_tcp_port: int) -> None:
    points = {
        100: float_data(21.5),
        101: float_data(-3.25),
        200: iec104.BinaryCounterData(
            value=iec104.BinaryCounterValue(42),
            quality=iec104.CounterQuality(False, False, False, 0),
        ),
    }
    async with HatRtu(unused_tcp_port, points, command_ioas={5}) as rtu:
        conn = await hatpeer.hat_connect(unused_tcp_port)
        try:
            server_conn = await rtu.wait_connection()
            await rtu.send_spontaneous(server_conn, 100, float_data(22.0))
            (spont,) = await hatpeer.receive_until(conn, lambda m: True)
            assert (spont.io_address, spont.data.value.value) == (100, 22.0)
            assert spont.cause == iec104.DataResCause.SPONTANEOUS

            def command(ioa: int) -> iec104.CommandMsg:
                return iec104.CommandMsg(
                    is_test=False,
                    originator_address=0,
                    asdu_address=1,
                    io_address=ioa,
                    command=iec104.SingleCommand(iec104.SingleValue.ON, False, 0),
                    is_negative_confirm=False,
                    time=None,
                    cause=iec104.CommandReqCause.ACTIVATION,
                )

            await conn.send([command(5)])
            replies = await hatpeer.receive_until(
                conn, lambda m: m.cause == iec104.CommandResCause.ACTIVATION_TERMINATION
            )
            assert [(m.cause, m.is_negative_confirm) for m in replies] == [
                (iec104.CommandResCause.ACTIVATION_CONFIRMATION, False),
                (iec104.CommandResCause.ACTIVATION_TERMINATION, False),
            ]
            await conn.send([command(6)])
            (neg,) = await hatpeer.receive_until(conn, lambda m: True)
            assert (
                neg.is_negative_confirm and neg.cause == iec104.CommandResCause.UNKNOWN_IO_ADDRESS
            )

            await conn.send(
                [
                    iec104.InterrogationMsg(
                        is_test=False,
                        originator_address=0,
                        asdu_address=1,
                        request=20,
                        is_negative_confirm=False,
                        cause=iec104.CommandReqCause.ACTIVATION,
                    )
                ]
            )
            gi = await hatpeer.receive_until(
                conn,
                lambda m: (
                    isinstance(m, iec104.InterrogationMsg)
                    and m.cause == iec104.CommandResCause.ACTIVATION_TERMINATION
                ),
            )
            data = [(m.io_address, m.data.value.value) for m in gi[1:-1]]
            assert data == [(100, 21.5), (101, -3.25)]
            assert all(m.cause == iec104.DataResCause.INTERROGATED_STATION for m in gi[1:-1])
            assert [type(m) for m in rtu.received] == [iec104.CommandMsg] * 2 + [
                iec104.InterrogationMsg
            ]
        finally:
            await conn.async_close()


# --- c104 server and client -----------------------------------------------------------------


def test_c104_round_trip(unused_tcp_port: int) -> None:
    with C104Server(unused_tcp_port) as srv:
        srv.add_point(100, c104.Type.M_ME_NC_1, 21.5)
        srv.add_point(200, c104.Type.M_IT_NA_1, 12345)
        srv.add_point(5, c104.Type.C_SC_NA_1)
        with C104Client(unused_tcp_port) as cl:
            srv.wait_client()
            assert cl.interrogation()
            assert wait_for(lambda: cl.values().get(100) == 21.5)
            (gi,) = [r for r in cl.received if r.ioa == 100]
            assert gi.cot == c104.Cot.INTERROGATED_BY_STATION

            point = srv.station.get_point(io_address=100)
            assert point is not None
            point.value = 1.25
            assert srv.transmit(100)
            assert wait_for(lambda: cl.values().get(100) == 1.25)
            assert cl.received[-1].cot == c104.Cot.SPONTANEOUS

            assert cl.command(5, c104.Type.C_SC_NA_1, True)
            assert [(c.ioa, c.value, c.cot) for c in srv.commands] == [
                (5, True, c104.Cot.ACTIVATION)
            ]
            srv.reject_commands = True
            assert not cl.command(5, c104.Type.C_SC_NA_1, False)

            assert cl.counter_interrogation()
            assert wait_for(lambda: cl.values().get(200) == 12345)

            assert cl.clock_sync()
            assert wait_for(lambda: srv.clock_syncs)


def test_c104_client_process_commands_and_reports_a_dead_child(unused_tcp_port: int) -> None:
    import os
    import signal

    from tests.support.c104process import C104ClientProcess

    with C104Server(unused_tcp_port) as srv:
        srv.add_point(100, c104.Type.M_ME_NC_1, 21.5)
        srv.add_point(5, c104.Type.C_SC_NA_1)
        client = C104ClientProcess(unused_tcp_port, timeout=30)
        client.start()
        try:
            srv.wait_client()
            assert client.commands([(5, "C_SC_NA_1", True), (5, "C_SC_NA_1", False)]) == [
                True, True]
            assert [(c.ioa, c.value) for c in srv.commands] == [(5, True), (5, False)]
            assert srv.transmit(100)
            assert wait_for(lambda: client.received_count() == 1)
            assert client.received_values() == [21.5]
            sent = [f.data for f in client.raw() if f.direction == "c2s"]
            assert sum(1 for apdu in sent if apdu[2] & 1 == 0 and apdu[6] == 45) == 2
            with pytest.raises(AssertionError, match="c104 master failed in 'commands': "
                                                     "AttributeError"):
                client.commands([(5, "NO_SUCH_TYPE", True)])
            # a crash of the peer fails the caller with the exit status, not this process
            os.kill(client._process.pid, signal.SIGABRT)
            client._process.join(10)
            with pytest.raises(AssertionError, match=r"process died during 'received_count': "
                                                     r"exit status -6"):
                client.received_count()
        finally:
            client.stop()


def test_c104_raw_log_decodes_in_tshark(unused_tcp_port: int, tmp_path: Path) -> None:
    ts.ensure_tshark()
    with C104Server(unused_tcp_port) as srv:
        srv.add_point(100, c104.Type.M_ME_NC_1, 0.1)
        srv.add_point(9, c104.Type.M_ME_NA_1, c104.NormalizedFloat(0.5))
        with C104Client(unused_tcp_port) as cl:
            assert cl.interrogation()
            assert wait_for(
                lambda: any(f.data[6:7] == b"\x64" and f.data[8] == 10 for f in cl.raw.snapshot())
            )  # C_IC_NA_1 ActTerm
    path = write_pcap(tmp_path / "c104.pcap", cl.raw.messages())
    apdus = ts.tshark_apdus(path)
    i_apdus = [a for a in apdus if a["apci"] == "I"]
    assert [(a["type_id"], a["cot"]) for a in i_apdus] == [
        (100, 6),
        (100, 7),
        (9, 20),
        (13, 20),
        (100, 10),
    ]
    assert all(a["sq"] for a in i_apdus if a["cot"] == 20)  # c104 uses SQ=1 for GI answers
    normalized = i_apdus[2]["objects"][0]
    assert (normalized["ioa"], normalized["normval_raw"]) == (9, 16384)
    short = i_apdus[3]["objects"][0]
    assert short["value"] == struct.unpack("<f", struct.pack("<f", 0.1))[0]


def test_plain_value() -> None:
    assert plain_value(c104.NormalizedFloat(0.5)) == 0.5
    assert plain_value(c104.Int16(-5)) == -5
    assert plain_value(c104.Byte32(b"\x01\x02\x03\x04")) == b"\x01\x02\x03\x04"
    assert plain_value(c104.Double.ON) == 2
    assert plain_value(True) is True


# --- the two peers against each other -------------------------------------------------------


async def test_hat_client_against_c104_server(unused_tcp_port: int) -> None:
    with C104Server(unused_tcp_port) as srv:
        srv.add_point(100, c104.Type.M_ME_NC_1, 21.5)
        srv.add_point(5, c104.Type.C_SC_NA_1)
        conn = await hatpeer.hat_connect(unused_tcp_port)
        try:
            await conn.send(
                [
                    iec104.CommandMsg(
                        is_test=False,
                        originator_address=0,
                        asdu_address=1,
                        io_address=5,
                        command=iec104.SingleCommand(iec104.SingleValue.ON, False, 0),
                        is_negative_confirm=False,
                        time=None,
                        cause=iec104.CommandReqCause.ACTIVATION,
                    )
                ]
            )
            (con,) = await hatpeer.receive_until(conn, lambda m: True)
            assert con.cause == iec104.CommandResCause.ACTIVATION_CONFIRMATION
            assert not con.is_negative_confirm
            assert wait_for(lambda: srv.commands, 2)
        finally:
            await conn.async_close()


async def test_c104_client_against_hat_server(unused_tcp_port: int) -> None:
    async with HatRtu(unused_tcp_port, {100: float_data(21.5)}) as rtu:
        cl = C104Client(unused_tcp_port)
        # c104 calls block their caller: run them in a thread, hat needs the event loop free
        await asyncio.to_thread(cl.start)
        try:
            assert await asyncio.to_thread(cl.interrogation)
            assert await asyncio.to_thread(wait_for, lambda: cl.values().get(100) == 21.5)
            assert isinstance(rtu.received[0], iec104.InterrogationMsg)
        finally:
            await asyncio.to_thread(cl.stop)


async def test_hat_rtu_survives_unknown_type_id(unused_tcp_port: int) -> None:
    async with HatRtu(unused_tcp_port) as rtu:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        try:
            writer.write(hatpeer.u_frame("STARTDT_ACT"))
            assert await asyncio.wait_for(reader.readexactly(6), 5) == hatpeer.u_frame(
                "STARTDT_CON"
            )
            writer.write(hatpeer.i_frame(0, 0, bytes.fromhex("18 01 03 00 01 00 01 00 00 00")))
            writer.write(hatpeer.i_frame(1, 0, bytes.fromhex("64 01 06 00 01 00 00 00 00 14")))
            while True:  # skip S-frames (t2 is short in hatpeer)
                head = await asyncio.wait_for(reader.readexactly(2), 5)
                con = head + await asyncio.wait_for(reader.readexactly(head[1]), 5)
                if con[2] & 1 == 0:
                    break
            assert con[6:] == bytes.fromhex("64 01 07 00 01 00 00 00 00 14")  # GI ActCon
            assert [type(e) for e in rtu.errors] == [structural.AsduTypeError]
        finally:
            writer.close()
