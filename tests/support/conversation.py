"""Scripted IEC 104 conversations for analyzer tests, encoded with our codec.

A :class:`Conversation` is one TCP connection between a client (master) and a server
(outstation). Tests advance a clock (:meth:`Conversation.wait`) and send frames; I-frames are
numbered like a correct peer would number them (N(S) counts, N(R) acknowledges everything
received) unless the test overrides ``ssn``/``rsn`` to inject a fault.

The result goes through the real decoding path: :func:`to_frame` feeds the octets, one
TCP segment per message, to :class:`~iec104.records.decoder.DirectionDecoder` and
:class:`~iec104.records.builder.RecordBuilder` (what the dissector and the proxy use), and
:func:`write_pcap` writes a real capture with :mod:`tests.support.pcapwriter` (scapy) with the
scripted timestamps, for tests that go through ``iec104 convert``/``report``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from iec104.codec import (
    ASDU,
    Cause,
    IFrame,
    InformationObject,
    SFrame,
    Time,
    TypeId,
    UFrame,
    UFunction,
    encode_apdu,
    encode_asdu,
)
from iec104.records.builder import Endpoints, RecordBuilder
from iec104.records.decoder import DirectionDecoder

START = dt.datetime(2024, 3, 1, 8, 0, 0, tzinfo=dt.UTC)
_NS = 1_000_000_000
_PEER = {"c2s": "s2c", "s2c": "c2s"}


def asdu(type_id: TypeId | int, cause: Cause | int, objects: Sequence[InformationObject], *,
         ca: int = 1, negative: bool = False, oa: int = 0, sequence: bool = False) -> bytes:
    """Encode an ASDU (104 default profile)."""
    return encode_asdu(ASDU(type_id, sequence, cause, negative, False, oa, ca,  # type: ignore[arg-type]
                            tuple(objects)))


def cp56(when: dt.datetime) -> Time:
    return Time.from_datetime(when.astimezone(dt.UTC))


class Conversation:
    """One scripted connection (see the module docstring)."""

    def __init__(self, *, client: tuple[str, int] = ("10.0.0.1", 50001),
                 server: tuple[str, int] = ("10.0.0.2", 2404),
                 start: dt.datetime = START) -> None:
        self.client = client
        self.server = server
        self.start = start
        self.now_ns = int(start.timestamp() * _NS)
        self.messages: list[tuple[int, str, bytes]] = []
        self.vs = {"c2s": 0, "s2c": 0}  # next N(S) each side sends
        self.vr = {"c2s": 0, "s2c": 0}  # next N(S) each side expects (= its N(R))

    @property
    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now_ns / _NS, dt.UTC)

    def wait(self, seconds: float) -> Conversation:
        self.now_ns += round(seconds * _NS)
        return self

    def raw(self, direction: str, data: bytes) -> Conversation:
        self.messages.append((self.now_ns, direction, data))
        return self

    def capture_gap(self, direction: str, missing: int) -> Conversation:
        """Bytes of ``direction`` the capture lost (a gap row, as the dissector records it)."""
        self.messages.append((self.now_ns, direction, missing))  # type: ignore[arg-type]
        return self

    def u(self, direction: str, function: UFunction) -> Conversation:
        return self.raw(direction, encode_apdu(UFrame(function)))

    def s(self, direction: str, rsn: int | None = None) -> Conversation:
        return self.raw(direction, encode_apdu(SFrame(self.vr[direction] if rsn is None
                                                      else rsn)))

    def i(self, direction: str, data: bytes, *, ssn: int | None = None,
          rsn: int | None = None) -> Conversation:
        ssn = self.vs[direction] if ssn is None else ssn
        rsn = self.vr[direction] if rsn is None else rsn
        self.vs[direction] = (ssn + 1) % 32768
        self.vr[_PEER[direction]] = (ssn + 1) % 32768
        return self.raw(direction, encode_apdu(IFrame(ssn, rsn, data)))

    # -- common dialogues ---------------------------------------------------------------

    def startdt(self, rtt: float = 0.01) -> Conversation:
        self.u("c2s", UFunction.STARTDT_ACT).wait(rtt)
        return self.u("s2c", UFunction.STARTDT_CON)

    def testfr(self, direction: str = "c2s", rtt: float = 0.01) -> Conversation:
        self.u(direction, UFunction.TESTFR_ACT).wait(rtt)
        return self.u(_PEER[direction], UFunction.TESTFR_CON)

    def ack(self, direction: str, after: float = 0.01) -> Conversation:
        """S-frame from ``direction`` acknowledging all it received, ``after`` s later."""
        return self.wait(after).s(direction)


def to_frame(conversations: Conversation | Iterable[Conversation]) -> pd.DataFrame:
    """Decode the conversations (stream = position in the list) as the dissector would."""
    convs = [conversations] if isinstance(conversations, Conversation) else list(conversations)
    builder = RecordBuilder()
    decoders: dict[tuple[int, str], DirectionDecoder] = {}
    for n, conv in enumerate(convs):
        c, s = conv.client, conv.server
        decoders[(n, "c2s")] = DirectionDecoder(Endpoints(n, "c2s", c[0], c[1], s[0], s[1]),
                                                builder)
        decoders[(n, "s2c")] = DirectionDecoder(Endpoints(n, "s2c", s[0], s[1], c[0], c[1]),
                                                builder)
    merged = sorted(((t, n, i, d, data) for n, conv in enumerate(convs)
                     for i, (t, d, data) in enumerate(conv.messages)), key=lambda m: m[:3])
    for frame, (t, n, _, d, data) in enumerate(merged, start=1):
        if isinstance(data, int):
            decoders[(n, d)].gap(t, frame, data)
        else:
            decoders[(n, d)].feed(t, frame, data)
    return builder.take_batch().to_pandas()


def packets(conv: Conversation) -> list:  # type: ignore[type-arg]
    """The scapy packets of ``conv``: handshake, one segment per message at its scripted
    time (a pure ACK from the receiver 100 us later), FIN exchange."""
    from decimal import Decimal

    from scapy.utils import EDecimal

    from tests.support.pcapwriter import build_conversation
    out = build_conversation([(d, data) for _, d, data in conv.messages],
                             client_ip=conv.client[0], client_port=conv.client[1],
                             server_ip=conv.server[0], server_port=conv.server[1],
                             ack_each=True, start_time=conv.messages[0][0] / _NS - 0.003)
    for i, (t, _, _) in enumerate(conv.messages):
        base = Decimal(t) / Decimal(_NS)
        out[3 + 2 * i].time = EDecimal(base)
        out[4 + 2 * i].time = EDecimal(base + Decimal("0.0001"))
    end = Decimal(conv.messages[-1][0]) / Decimal(_NS)
    for j, pkt in enumerate(out[3 + 2 * len(conv.messages):]):
        pkt.time = EDecimal(end + Decimal("0.001") * (j + 1))
    return out


def write_pcap(path: str | os.PathLike[str],
               conversations: Conversation | Iterable[Conversation]) -> Path:
    """Write the conversations as one pcap (see :func:`packets`), their packets merged in
    time order (a connection's own order kept among equal times)."""
    from tests.support.pcapwriter import write_packets
    convs = [conversations] if isinstance(conversations, Conversation) else list(conversations)
    merged = sorted(((pkt.time, n, i, pkt) for n, conv in enumerate(convs)
                     for i, pkt in enumerate(packets(conv))), key=lambda p: p[:3])
    return write_packets(path, [pkt for *_, pkt in merged])


def single(ioa: int, on: bool, **kw: object) -> InformationObject:
    from iec104.codec import Quality, SingleValue
    return InformationObject(ioa, SingleValue.ON if on else SingleValue.OFF,
                             kw.pop("quality", Quality()), **kw)  # type: ignore[arg-type]


def floating(ioa: int, value: float, **kw: object) -> InformationObject:
    from iec104.codec import FloatingValue, Quality
    return InformationObject(ioa, FloatingValue(value), kw.pop("quality", Quality()),  # type: ignore[arg-type]
                             **kw)  # type: ignore[arg-type]
