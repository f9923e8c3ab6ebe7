"""Proxy rules and renumbering, sans-IO: two codec Sessions wired through a Rewriter.

The sessions check every N(S) and N(R) they receive (a wrong one raises
RemoteProtocolError) and expire t1 when their frames stay unacknowledged, so they are the
judges of whether the proxy keeps both peers consistent.
"""

from __future__ import annotations

import random

import pytest

from iec104.codec import (
    ASDU,
    Cause,
    DoubleValue,
    Framer,
    IFrame,
    InformationObject,
    ScaledValue,
    SFrame,
    SingleValue,
    TypeId,
    decode_apdu,
    decode_asdu,
    encode_apdu,
    encode_asdu,
)
from iec104.codec.session import NEED_DATA, AsduReceived, Role, Session, State
from iec104.recorder import Rule, RuleError, parse_rule
from iec104.recorder.rules import Rewriter, SeqMap
from tests.support.apdus import GOOD, measurement


def command(ioa: int, ca: int = 1, cause: int = Cause.ACTIVATION) -> bytes:
    return encode_asdu(ASDU(TypeId.C_SC_NA_1, False, cause, False, False, 0, ca,
                            (InformationObject(ioa, SingleValue.ON, select=False, qualifier=0),)))



class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Wire:
    """master Session <-> Rewriter <-> outstation Session, moving bytes in random chunks."""

    def __init__(self, rules: list[Rule], seed: int = 0) -> None:
        self.clock = Clock()
        self.master = Session(Role.CONTROLLING, clock=self.clock, t1=15, t2=10, t3=20)
        self.outstation = Session(Role.CONTROLLED, clock=self.clock, t1=15, t2=10, t3=20)
        self.rewriter = Rewriter(rules)
        self.rng = random.Random(seed)
        self.received: dict[str, list[bytes]] = {"c2s": [], "s2c": []}
        self.actions: list[str] = []
        self.master.start()
        self.pump()
        assert self.master.state is State.STARTED and self.outstation.state is State.STARTED

    def _move(self, direction: str, data: bytes) -> None:
        src, dst = ((self.master, self.outstation) if direction == "c2s"
                    else (self.outstation, self.master))
        pos = 0
        while pos < len(data):
            n = self.rng.randint(1, 40)
            res = self.rewriter.feed(direction, data[pos:pos + n])
            pos += n
            dst.receive_data(res.forward)
            src.receive_data(res.back)
            self.actions += [text for text, _ in res.actions]

    def pump(self) -> None:
        while True:
            moved = False
            for direction, session in (("c2s", self.master), ("s2c", self.outstation)):
                data = session.data_to_send()
                if data:
                    moved = True
                    self._move(direction, data)
            for direction, session in (("s2c", self.master), ("c2s", self.outstation)):
                while (event := session.next_event()) is not NEED_DATA:
                    if isinstance(event, AsduReceived):
                        self.received[direction].append(event.asdu)
            if not moved:
                return

    def send(self, direction: str, asdus: list[bytes]) -> None:
        session = self.master if direction == "c2s" else self.outstation
        for asdu in asdus:
            while session.send_window == 0:
                self.pump()
                if session.send_window == 0:  # wait for the peer's t2 acknowledgement
                    self.clock.now += 11
                    self.master.handle_timeout()
                    self.outstation.handle_timeout()
            session.send_asdu(asdu)
            if self.rng.random() < 0.3:
                self.pump()

    def settle(self) -> None:
        """Let t2 acknowledgements flow; then nothing may be left unacknowledged."""
        for _ in range(3):
            self.pump()
            self.clock.now += 11
            self.master.handle_timeout()
            self.outstation.handle_timeout()
        self.pump()
        for session in (self.master, self.outstation):
            assert session.error is None, session.error
            assert session.state is State.STARTED
            assert session.unacknowledged == 0


def test_no_matching_rule_leaves_every_byte_alone() -> None:
    rw = Rewriter([parse_rule("drop", "type=C_SE_NC_1")])
    data = (encode_apdu(IFrame(0, 0, command(1))) + b"\x00garbage"
            + encode_apdu(SFrame(5)) + encode_apdu(IFrame(1, 7, measurement(3))))
    out = b"".join(rw.feed("c2s", data[i:i + 3]).forward for i in range(0, len(data), 3))
    assert out == data


@pytest.mark.parametrize("seed", range(5))
def test_dropping_and_duplicating_keeps_both_sessions_consistent(seed: int) -> None:
    rules = [
        Rule("drop", direction="c2s", type_id=TypeId.C_SC_NA_1, ioa=13),
        Rule("duplicate", direction="s2c", ioa=7),
        Rule("drop", direction="s2c", ioa=9),
    ]
    wire = Wire(rules, seed)
    rng = random.Random(seed)
    cmds = [command(rng.randint(10, 15)) for _ in range(400)]
    data = [measurement(rng.randint(5, 10), float(i)) for i in range(1500)]
    # interleave both directions
    for i in range(0, 1500, 50):
        wire.send("s2c", data[i:i + 50])
        wire.send("c2s", cmds[i // 50 * 13: i // 50 * 13 + 13])
    wire.settle()

    def ioa(asdu: bytes) -> int:
        decoded = decode_asdu(asdu)
        return decoded.objects[0].address  # type: ignore[union-attr]

    sent_cmds = cmds[: 13 * 30]
    expect_c2s = [a for a in sent_cmds if ioa(a) != 13]
    expect_s2c = []
    for a in data:
        if ioa(a) == 9:
            continue
        expect_s2c += [a, a] if ioa(a) == 7 else [a]
    assert wire.received["c2s"] == expect_c2s
    assert wire.received["s2c"] == expect_s2c
    dropped = sum(1 for text in wire.actions if "' dropped " in text)
    assert dropped == sum(1 for a in sent_cmds if ioa(a) == 13) + sum(
        1 for a in data if ioa(a) == 9)
    assert rules[0].applied + rules[2].applied == dropped


def test_a_dropped_frame_nothing_else_acknowledges_is_acknowledged_by_the_proxy() -> None:
    wire = Wire([Rule("drop", type_id=TypeId.C_SC_NA_1, ioa=5)])
    wire.send("c2s", [command(1)])
    wire.settle()
    wire.send("c2s", [command(5)])  # dropped; everything before is acknowledged already
    wire.pump()
    assert wire.master.unacknowledged == 0  # the proxy's S-frame arrived at once
    assert any("acknowledged dropped" in text for text in wire.actions)
    wire.send("c2s", [command(6)])
    wire.settle()
    assert [decode_asdu(a).objects[0].address for a in wire.received["c2s"]] == [1, 6]  # type: ignore[union-attr]


def test_seqmap_translation_is_monotonic_and_identity_until_first_change() -> None:
    m = SeqMap()
    assert [m.forward(i) for i in range(3)] == [0, 1, 2]
    assert m.ack_to_source(2) == 2 and m.ack_to_source(3) == 3  # pristine: identity
    m.forward(3)
    m.drop(4)
    assert m.forward(5) == 4
    assert m.insert() == 5
    assert m.forward(6) == 6
    acks = [m.ack_to_source(r) for r in (3, 4, 5, 6, 7)]
    # dest 4 is source 5, dest 5 was inserted, dest 6 is source 6
    assert acks == [3, 5, 6, 6, 7]
    assert acks == sorted(acks)


def test_sequence_numbers_wrap_around() -> None:
    rw = Rewriter([Rule("drop", ioa=99)])
    out = Framer()
    seqs = []
    for i in range(32760, 32760 + 20):
        ssn = i % 32768
        asdu = command(99 if i == 32765 else 1)
        res = rw.feed("c2s", encode_apdu(IFrame(ssn, 0, asdu)))
        out.feed(res.forward)
        seqs += [e.apdu.ssn for e in out]  # type: ignore[union-attr]
    expected = [i % 32768 for i in range(32760, 32765)] + [i % 32768 for i in range(32765, 32779)]
    assert seqs == expected


def test_rewrite_changes_header_and_selected_objects() -> None:
    asdu = encode_asdu(ASDU(TypeId.M_ME_NB_1, False, Cause.SPONTANEOUS, False, False, 0, 1, (
        InformationObject(200, ScaledValue(5), GOOD), InformationObject(201, ScaledValue(6), GOOD))))
    rule = parse_rule("rewrite", "type=M_ME_NB_1,ioa=200:value=-7,cot=20")
    rw = Rewriter([rule])
    res = rw.feed("s2c", encode_apdu(IFrame(0, 0, asdu)))
    decoded = decode_asdu(decode_apdu(res.forward).asdu)  # type: ignore[union-attr]
    assert decoded.cause == Cause(20)  # type: ignore[union-attr]
    assert [o.value for o in decoded.objects] == [ScaledValue(-7), ScaledValue(6)]  # type: ignore[union-attr]
    assert decode_apdu(res.forward).ssn == 0  # type: ignore[union-attr]
    assert len(res.actions) == 1 and "rewrote s2c M_ME_NB_1" in res.actions[0][0]
    assert rule.applied == 1


def test_rewrite_of_enum_values_and_negative_confirmation() -> None:
    dp = encode_asdu(ASDU(TypeId.C_DC_NA_1, False, Cause.ACTIVATION_CONFIRMATION, False, False, 0,
                          1, (InformationObject(3, DoubleValue.ON, select=False, qualifier=0),)))
    rule = parse_rule("rewrite", "dir=s2c,type=46:negative=1,value=1")
    res = Rewriter([rule]).feed("s2c", encode_apdu(IFrame(4, 2, dp)))
    decoded = decode_asdu(decode_apdu(res.forward).asdu)  # type: ignore[union-attr]
    assert decoded.negative is True  # type: ignore[union-attr]
    assert decoded.objects[0].value is DoubleValue.OFF  # type: ignore[union-attr]


def test_limit_and_direction_and_function_rules() -> None:
    seen = []

    def tap(asdu: ASDU, direction: str) -> None:
        seen.append((direction, asdu.objects[0].address))

    rules = [Rule("drop", ioa=1, limit=2, direction="c2s"), Rule(tap)]
    rw = Rewriter(rules)
    forwarded = []
    for i in range(4):
        res = rw.feed("c2s", encode_apdu(IFrame(i, 0, command(1))))
        forwarded.append(res.forward)
    res = rw.feed("s2c", encode_apdu(IFrame(0, 2, command(1, cause=Cause.ACTIVATION_CONFIRMATION))))
    assert [bool(f) for f in forwarded] == [False, False, True, True]
    assert decode_apdu(forwarded[2]).ssn == 0  # type: ignore[union-attr]
    assert seen == [("c2s", 1), ("c2s", 1), ("s2c", 1)]
    # the outstation acknowledged 2 of the proxy's numbering: 4 of the master's
    assert decode_apdu(res.forward).rsn == 4  # type: ignore[union-attr]


def test_a_failing_rewrite_forwards_unchanged_and_says_why() -> None:
    gi = encode_asdu(ASDU(TypeId.C_IC_NA_1, False, Cause.ACTIVATION, False, False, 0, 1,
                          (InformationObject(0, None, qualifier=20),)))
    frame = encode_apdu(IFrame(0, 0, gi))
    res = Rewriter([parse_rule("rewrite", "type=C_IC_NA_1:value=1")]).feed("c2s", frame)
    assert res.forward == frame
    assert "failed" in res.actions[0][0] and "forwarded unchanged" in res.actions[0][0]


@pytest.mark.parametrize("action, spec, message", [
    ("drop", "type=NOPE", "unknown type"),
    ("drop", "colour=red", "unknown match key"),
    ("drop", "ioa", "not KEY=VALUE"),
    ("drop", "ioa=x", "not an integer"),
    ("drop", "ioa=1:value=2", "only rewrite"),
    ("rewrite", "ioa=1", "needs changes"),
    ("rewrite", "ioa=1:colour=2", "cannot change"),
    ("drop", "dir=up", "direction"),
])
def test_bad_rule_specs(action: str, spec: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rule(action, spec)
