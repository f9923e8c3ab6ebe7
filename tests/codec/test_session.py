"""The sans-IO APCI session: two sessions wired back to back, a manual clock, no sockets."""

from __future__ import annotations

import pytest

from iec104.codec import (
    IFrame,
    LocalProtocolError,
    RemoteProtocolError,
    SFrame,
    UFrame,
    UFunction,
    decode_apdu,
    encode_apdu,
)
from iec104.codec.framer import Framer
from iec104.codec.session import (
    NEED_DATA,
    Acknowledged,
    AsduReceived,
    DataTransferStarted,
    DataTransferStopped,
    Role,
    Session,
    State,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def frames(data: bytes) -> list:
    framer = Framer()
    framer.feed(data)
    return [event.apdu for event in framer]


def events(session: Session) -> list:
    out = []
    while (event := session.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def deliver(src: Session, dst: Session) -> list:
    """Move src's output to dst and return dst's events."""
    dst.receive_data(src.data_to_send())
    return events(dst)


def pair(clock: Clock, **kwargs) -> tuple[Session, Session]:
    client = Session(Role.CONTROLLING, clock=clock, **kwargs)
    server = Session(Role.CONTROLLED, clock=clock, **kwargs)
    client.start()
    assert deliver(client, server) == [DataTransferStarted()]
    assert deliver(server, client) == [DataTransferStarted()]
    assert client.state is server.state is State.STARTED
    return client, server


def test_startdt_handshake_bytes():
    clock = Clock()
    client = Session(Role.CONTROLLING, clock=clock)
    server = Session(Role.CONTROLLED, clock=clock)
    assert client.send_window == server.send_window == 0
    client.start()
    assert client.state is State.STARTING
    out = client.data_to_send()
    assert out == bytes.fromhex("68 04 07 00 00 00")
    server.receive_data(out)
    assert events(server) == [DataTransferStarted()]
    assert server.data_to_send() == bytes.fromhex("68 04 0b 00 00 00")
    assert server.state is State.STARTED and server.send_window == 12


def test_only_controlling_starts_and_nobody_sends_before_start():
    clock = Clock()
    client = Session(Role.CONTROLLING, clock=clock)
    server = Session(Role.CONTROLLED, clock=clock)
    with pytest.raises(LocalProtocolError):
        server.start()
    with pytest.raises(LocalProtocolError):
        server.stop()
    with pytest.raises(LocalProtocolError):
        server.send_asdu(b"\x01")
    with pytest.raises(LocalProtocolError):
        client.send_asdu(b"\x01")
    client.start()
    with pytest.raises(LocalProtocolError):
        client.send_asdu(b"\x01")  # STARTDT con not yet received
    with pytest.raises(LocalProtocolError):
        client.start()


@pytest.mark.parametrize("kwargs", [{"t1": 0}, {"k": 0}, {"w": 40000}, {"k": True}])
def test_parameters_checked(kwargs):
    with pytest.raises(ValueError):
        Session(Role.CONTROLLED, **kwargs)


def test_iframe_bytes_and_piggyback_ack():
    clock = Clock()
    client, server = pair(clock)
    client.send_asdu(b"\x64\x01\x06\x00\x01\x00\x00\x00\x00\x14")
    out = client.data_to_send()
    assert out == bytes.fromhex("68 0e 00 00 00 00 64 01 06 00 01 00 00 00 00 14")
    server.receive_data(out)
    assert events(server) == [AsduReceived(0, bytes.fromhex("64 01 06 00 01 00 00 00 00 14"))]
    assert server.unacknowledged_received == 1
    server.send_asdu(b"\x01")  # carries N(R)=1
    assert server.unacknowledged_received == 0
    out = server.data_to_send()
    assert decode_apdu(out) == IFrame(0, 1, b"\x01")
    client.receive_data(out)
    assert events(client) == [Acknowledged(1, 1), AsduReceived(0, b"\x01")]
    assert client.unacknowledged == 0


def test_k_blocks_and_ack_reopens():
    clock = Clock()
    client, server = pair(clock, k=5, w=3)
    for i in range(5):
        assert client.send_window == 5 - i
        client.send_asdu(bytes([i + 1]))
    assert client.send_window == 0
    with pytest.raises(LocalProtocolError, match="send window full"):
        client.send_asdu(b"\x09")
    got = deliver(client, server)
    assert [e.ssn for e in got] == [0, 1, 2, 3, 4]
    assert deliver(server, client) == [Acknowledged(5, 5)]
    assert client.send_window == 5


def test_w_acknowledgement_count():
    clock = Clock()
    client, server = pair(clock, k=12, w=4)
    for i in range(3):
        client.send_asdu(b"\x01")
        deliver(client, server)
        assert server.data_to_send() == b""  # fewer than w: no S-frame yet
    client.send_asdu(b"\x01")
    deliver(client, server)
    ack = server.data_to_send()
    assert frames(ack) == [SFrame(4)]
    client.receive_data(ack)
    assert events(client) == [Acknowledged(4, 4)]
    # a burst read at once is acknowledged by one S-frame
    for i in range(9):
        client.send_asdu(b"\x02")
    deliver(client, server)
    assert frames(server.data_to_send()) == [SFrame(13)]


def test_t2_sends_sframe_when_receiving_stops():
    clock = Clock()
    client, server = pair(clock, t1=15, t2=10, t3=20, w=8)
    client.send_asdu(b"\x01")
    clock.now += 1
    deliver(client, server)
    assert server.data_to_send() == b""
    assert server.next_deadline() == pytest.approx(clock.now + 10)
    clock.now += 9.9
    server.handle_timeout()
    assert server.data_to_send() == b""
    clock.now += 0.1
    server.handle_timeout()
    assert frames(server.data_to_send()) == [SFrame(1)]
    assert server.unacknowledged_received == 0


def test_t1_expiry_closes_on_unacknowledged_iframe():
    clock = Clock()
    client, _server = pair(clock, t1=0.5, t2=0.3, t3=20)
    client.send_asdu(b"\x01")
    client.data_to_send()  # lost
    assert client.next_deadline() == pytest.approx(clock.now + 0.5)
    clock.now += 0.49
    client.handle_timeout()
    clock.now += 0.01
    with pytest.raises(RemoteProtocolError, match=r"t1 expired: I-frame N\(S\)=0"):
        client.handle_timeout()
    assert client.state is State.CLOSED
    assert client.next_deadline() is None
    with pytest.raises(RemoteProtocolError):
        client.next_event()


def test_t1_expiry_on_startdt_without_con():
    clock = Clock()
    client = Session(Role.CONTROLLING, clock=clock, t1=2)
    client.start()
    client.data_to_send()
    clock.now += 2
    with pytest.raises(RemoteProtocolError, match="STARTDT_ACT not confirmed"):
        client.handle_timeout()


def test_t3_testfr_act_con_and_t1_on_missing_con():
    clock = Clock()
    client, server = pair(clock, t1=1, t2=0.5, t3=5)
    clock.now += 4.9
    client.handle_timeout()
    assert client.data_to_send() == b""
    clock.now += 0.1
    assert client.next_deadline() == pytest.approx(clock.now)
    client.handle_timeout()
    out = client.data_to_send()
    assert frames(out) == [UFrame(UFunction.TESTFR_ACT)]
    server.receive_data(out)
    assert events(server) == []
    con = server.data_to_send()
    assert frames(con) == [UFrame(UFunction.TESTFR_CON)]
    client.receive_data(con)
    assert events(client) == []
    # confirmed: next test frame after another t3 of silence
    assert client.next_deadline() == pytest.approx(clock.now + 5)
    clock.now += 5
    client.handle_timeout()
    assert frames(client.data_to_send()) == [UFrame(UFunction.TESTFR_ACT)]
    clock.now += 1
    with pytest.raises(RemoteProtocolError, match="TESTFR_ACT not confirmed"):
        client.handle_timeout()


def test_any_received_frame_restarts_t3():
    clock = Clock()
    client, server = pair(clock, t2=10, t3=5)
    assert client.next_deadline() == pytest.approx(clock.now + 5)
    clock.now += 4
    server.send_asdu(b"\x01")
    deliver(server, client)
    assert client.next_deadline() == pytest.approx(clock.now + 5)


def test_wrong_send_sequence_number_closes():
    clock = Clock()
    _client, server = pair(clock)
    server.receive_data(encode_apdu(IFrame(1, 0, b"\x01")))
    with pytest.raises(RemoteProtocolError, match=r"N\(S\)=1 out of sequence: expected 0"):
        server.next_event()
    assert server.state is State.CLOSED


@pytest.mark.parametrize("apdu", [SFrame(1), IFrame(0, 1, b"\x01")])
def test_ack_of_unsent_frames_closes(apdu):
    clock = Clock()
    _client, server = pair(clock)
    server.receive_data(encode_apdu(apdu))
    with pytest.raises(RemoteProtocolError, match="acknowledges I-frames never sent"):
        server.next_event()


def test_ack_going_backwards_closes():
    clock = Clock()
    client, server = pair(clock)
    for _ in range(3):
        client.send_asdu(b"\x01")
    deliver(client, server)
    client.receive_data(encode_apdu(SFrame(2)))
    assert events(client) == [Acknowledged(2, 2)]
    client.receive_data(encode_apdu(SFrame(1)))
    with pytest.raises(RemoteProtocolError, match="never sent"):
        client.next_event()


def test_garbage_closes_with_reason():
    clock = Clock()
    _client, server = pair(clock)
    server.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(RemoteProtocolError, match="malformed APDU at stream offset 6"):
        server.next_event()
    assert server.data_to_send() == b""


def test_byte_by_byte_input():
    clock = Clock()
    client, server = pair(clock, k=20, w=100)
    for i in range(20):
        client.send_asdu(bytes(range(i + 1)))
    data = client.data_to_send()
    got = []
    for i in range(len(data)):
        server.receive_data(data[i:i + 1])
        got += events(server)
    assert got == [AsduReceived(i, bytes(range(i + 1))) for i in range(20)]


def test_sequence_numbers_wrap_around():
    clock = Clock()
    client, server = pair(clock, k=12, w=8)
    total = 32768 + 100
    sent = received_s = 0
    received_c = []
    while sent < total or client.unacknowledged:
        while client.send_window and sent < total:
            client.send_asdu(b"\x01")
            sent += 1
        for event in deliver(client, server):
            if not isinstance(event, AsduReceived):
                continue
            received_s += 1
            if event.ssn % 1000 == 0:  # answer now and then, across the wrap too
                server.send_asdu(b"\x02")
        received_c += [e for e in deliver(server, client) if isinstance(e, AsduReceived)]
    assert received_s == total
    assert client.send_sequence == server.receive_sequence == 100
    assert [e.ssn for e in received_c][-2:] == [32, 33]  # 34 replies (33 before the wrap, 1 after): N(S) 0..33
    assert client.unacknowledged == 0


def test_wrap_around_boundary_frames():
    clock = Clock()
    client, server = pair(clock, k=20, w=20)
    client._vs = server._vr = client._ack = 32760  # jump near the boundary
    for _ in range(15):
        client.send_asdu(b"\x01")
    raw = frames(client.data_to_send())
    assert [f.ssn for f in raw] == list(range(32760, 32768)) + list(range(7))
    server.receive_data(b"".join(encode_apdu(f) for f in raw))
    assert [e.ssn for e in events(server)][-8:] == [32767, 0, 1, 2, 3, 4, 5, 6]
    server.handle_timeout(clock.now + 100)
    assert frames(server.data_to_send())[0] == SFrame(7)
    client.receive_data(encode_apdu(SFrame(7)))
    assert events(client) == [Acknowledged(7, 15)]


def test_stopdt_waits_for_outstanding_acks():
    clock = Clock()
    client, server = pair(clock, w=8)
    server.send_asdu(b"\x01")
    server.send_asdu(b"\x02")
    data_from_server = server.data_to_send()
    client.receive_data(data_from_server)
    assert len(events(client)) == 2
    # client stops: it first acknowledges what it received, then STOPDT act
    client.stop()
    out = client.data_to_send()
    assert frames(out) == [SFrame(2), UFrame(UFunction.STOPDT_ACT)]
    assert client.state is State.STOPPING
    server.receive_data(out)
    assert events(server) == [Acknowledged(2, 2), DataTransferStopped()]
    assert frames(server.data_to_send()) == [UFrame(UFunction.STOPDT_CON)]
    assert server.state is State.STOPPED


def test_stopdt_con_deferred_until_acknowledged():
    clock = Clock()
    client, server = pair(clock)
    server.send_asdu(b"\x01")
    in_flight = server.data_to_send()
    server.receive_data(encode_apdu(UFrame(UFunction.STOPDT_ACT)))
    assert events(server) == []
    assert server.state is State.STOPPING and server.send_window == 0
    assert server.data_to_send() == b""  # no con while our I-frame is unacknowledged
    with pytest.raises(LocalProtocolError):
        server.send_asdu(b"\x02")
    client.receive_data(in_flight)
    events(client)
    server.receive_data(encode_apdu(SFrame(1)))
    assert events(server) == [Acknowledged(1, 1), DataTransferStopped()]
    assert frames(server.data_to_send()) == [UFrame(UFunction.STOPDT_CON)]
    # and data transfer can start again
    server.receive_data(encode_apdu(UFrame(UFunction.STARTDT_ACT)))
    assert events(server) == [DataTransferStarted()]
    assert server.send_window == 12


def test_client_stop_then_con():
    clock = Clock()
    client, server = pair(clock)
    client.stop()
    assert deliver(client, server) == [DataTransferStopped()]
    assert deliver(server, client) == [DataTransferStopped()]
    assert client.state is server.state is State.STOPPED


def test_unsolicited_confirmations_are_ignored():
    clock = Clock()
    client, _server = pair(clock)
    client.receive_data(encode_apdu(UFrame(UFunction.STARTDT_CON))
                        + encode_apdu(UFrame(UFunction.TESTFR_CON)))
    assert events(client) == []
    assert client.state is State.STARTED


def test_encode_error_for_empty_asdu():
    from iec104.codec import EncodeError
    clock = Clock()
    client, _server = pair(clock)
    with pytest.raises(EncodeError):
        client.send_asdu(b"")
    with pytest.raises(EncodeError):
        client.send_asdu(bytes(250))
    client.send_asdu(bytes(249))
    assert len(client.data_to_send()) == 255


def test_passive_observer_follows_both_directions():
    """Two observer sessions fed a conversation's bytes see what the two ends saw."""
    clock = Clock()
    client = Session(Role.CONTROLLING, clock=clock, k=4, w=2)
    server = Session(Role.CONTROLLED, clock=clock, k=4, w=2)
    obs_client = Session(Role.CONTROLLING, clock=clock, k=4, w=2)
    obs_server = Session(Role.CONTROLLED, clock=clock, k=4, w=2)
    seen = {"client": [], "server": [], "obs_client": [], "obs_server": []}

    def c2s(data: bytes) -> None:
        obs_client.observe_sent(data)
        assert obs_client.data_to_send() == b""  # an observer answers nothing
        obs_server.receive_data(data)
        seen["obs_server"] += events(obs_server)
        obs_server.data_to_send()
        server.receive_data(data)
        seen["server"] += events(server)

    def s2c(data: bytes) -> None:
        obs_server.observe_sent(data)
        obs_server.data_to_send()
        obs_client.receive_data(data)
        seen["obs_client"] += events(obs_client)
        obs_client.data_to_send()
        client.receive_data(data)
        seen["client"] += events(client)

    client.start()
    c2s(client.data_to_send())
    s2c(server.data_to_send())
    for i in range(30):
        server.send_asdu(bytes([i + 1]))
        if i % 3 == 0:
            client.send_asdu(b"\x99")
        s2c(server.data_to_send())
        c2s(client.data_to_send())
        clock.now += 0.5
        for session in (client, server):
            session.handle_timeout()
        s2c(server.data_to_send())
        c2s(client.data_to_send())
    client.stop()
    c2s(client.data_to_send())
    s2c(server.data_to_send())
    assert seen["obs_client"] == seen["client"]
    assert seen["obs_server"] == seen["server"]
    assert len([e for e in seen["client"] if isinstance(e, AsduReceived)]) == 30
    for real, obs in ((client, obs_client), (server, obs_server)):
        assert (obs.state, obs.send_sequence, obs.receive_sequence, obs.unacknowledged) == (
            real.state, real.send_sequence, real.receive_sequence, real.unacknowledged)
    assert obs_client.state is State.STOPPED


def test_observer_reports_violations_of_the_observed_end():
    clock = Clock()
    obs = Session(Role.CONTROLLED, clock=clock, k=2)
    obs.receive_data(encode_apdu(UFrame(UFunction.STARTDT_ACT)))
    assert events(obs) == [DataTransferStarted()]
    obs.observe_sent(encode_apdu(IFrame(0, 0, b"\x01")) + encode_apdu(IFrame(1, 0, b"\x01")))
    with pytest.raises(LocalProtocolError, match="k=2"):
        obs.observe_sent(encode_apdu(IFrame(2, 0, b"\x01")))
    obs = Session(Role.CONTROLLED, clock=clock)
    with pytest.raises(LocalProtocolError, match=r"N\(S\)=5, expected 0"):
        obs.observe_sent(encode_apdu(IFrame(5, 0, b"\x01")))
    obs = Session(Role.CONTROLLED, clock=clock)
    with pytest.raises(LocalProtocolError, match="not received"):
        obs.observe_sent(encode_apdu(SFrame(3)))
    # t1 runs on observed I-frames: the other end never acknowledged in time
    obs = Session(Role.CONTROLLED, clock=clock, t1=1)
    obs.receive_data(encode_apdu(UFrame(UFunction.STARTDT_ACT)))
    events(obs)
    obs.observe_sent(encode_apdu(IFrame(0, 0, b"\x01")))
    clock.now += 1
    with pytest.raises(RemoteProtocolError, match="t1 expired"):
        obs.handle_timeout()
