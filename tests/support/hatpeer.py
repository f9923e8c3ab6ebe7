"""hat-drivers (0.10.x) as an independent IEC 104 peer and encoder.

Everything here was run against hat-drivers 0.10.10 (see /tmp/notes/peers.md for the research
notes). hat is pure asyncio, so these helpers are coroutines meant for ``async def`` tests.

Encoding (no sockets)
---------------------
``encode_msgs(msgs) -> list[bytes]``        hat messages -> ASDU bytes (one ASDU per message)
``decode_asdu(data) -> list[Msg]``         ASDU bytes -> hat messages (raises ``AsduTypeError``
                                           for type ids hat does not know)
``encode_asdu(asdu) / decode_structural``  the structural layer (``ASDU``/``IO``/``IoElement_*``)
``i_frame(ssn, rsn, asdu) -> bytes``       full APDU via hat's APCI encoder; also ``s_frame``,
``u_frame(name)``, ``decode_apdu``
hat's 104 encoders have a *fixed* profile: COT 2, CA 2, IOA 3 octets.

Peers (sockets on 127.0.0.1)
----------------------------
``HatRtu``     a small controlled station (server): answers general interrogation with its
               points (ActCon, data with COT 20, ActTerm), confirms commands (ActCon +
               ActTerm, or a negative ActCon for unknown IOAs), counter interrogation (ActCon,
               counters with COT 37, ActTerm) and clock sync (ActCon); answers a read with
               the point (COT 5) or COT 47, confirms reset process, parameters and parameter
               (de)activations (hat's messages carry no P/N bit for those); records every
               message.
``hat_connect(port)``  a hat client (controlling station); ``connect`` itself sends STARTDT act and
               waits for STARTDT con.
``receive_until(conn, pred)``  collect messages until ``pred(msg)`` is true.

Value conventions of hat that differ from the standard text / other tools
-------------------------------------------------------------------------
* Normalized values are scaled by **32767** (``0x7fff``), not 32768: encode is
  ``round(v * 32767)``, decode is ``raw / 32767`` (so raw -32768 decodes to -1.0000305...).
  Use :func:`hat_normalized_raw` to predict the wire value.
* Bitstrings are 4 raw ``bytes`` in wire order (``BitstringValue(b'\\x01\\x02\\x03\\x04')``).
* ``Time`` holds the raw CP56Time2a fields; ``time_from_datetime`` uses the *local* time zone
  of the machine (``time.localtime``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any, Self

from hat.drivers import iec104, net
from hat.drivers.iec104 import encoder as _msg_encoder
from hat.drivers.iec60870.apci import common as _apci
from hat.drivers.iec60870.apci import encoder as _apci_encoder
from hat.drivers.iec60870.encodings import iec104 as structural

from tests.support import HOST

__all__ = [
    "HatRtu",
    "decode_apdu",
    "decode_asdu",
    "decode_structural",
    "encode_asdu",
    "encode_msgs",
    "good_measurement",
    "hat_connect",
    "hat_normalized_raw",
    "i_frame",
    "iec104",
    "receive_until",
    "s_frame",
    "structural",
    "u_frame",
]

# Short timers so that tests notice a dead peer fast (t1, t2, t3 in seconds).
FAST_TIMEOUTS: dict[str, float] = {
    "response_timeout": 5.0,
    "supervisory_timeout": 0.05,
    "test_timeout": 30.0,
}


# --- encoding -------------------------------------------------------------------------------


def encode_msgs(msgs: Iterable[iec104.Msg]) -> list[bytes]:
    """hat messages -> ASDU bytes, one ASDU per message (hat 0.10 does not group)."""
    return [bytes(b) for b in _msg_encoder.Encoder().encode(list(msgs))]


def decode_asdu(data: bytes) -> list[iec104.Msg]:
    """ASDU bytes -> hat messages (one per information element; SQ=1 is expanded)."""
    return list(_msg_encoder.Encoder().decode(data))


def encode_asdu(asdu: structural.ASDU) -> bytes:
    """Structural ASDU (``structural.ASDU``) -> bytes."""
    return bytes(structural.Encoder().encode_asdu(asdu))


def decode_structural(data: bytes) -> tuple[structural.ASDU, bytes]:
    """Bytes -> (structural ASDU, trailing bytes hat did not consume)."""
    asdu, rest = structural.Encoder().decode_asdu(data)
    return asdu, bytes(rest)


def i_frame(ssn: int, rsn: int, asdu: bytes) -> bytes:
    """Full I-format APDU (0x68, length, control fields, ASDU) built by hat."""
    return bytes(_apci_encoder.encode(_apci.APDUI(ssn=ssn, rsn=rsn, data=asdu)))


def s_frame(rsn: int) -> bytes:
    return bytes(_apci_encoder.encode(_apci.APDUS(rsn=rsn)))


def u_frame(name: str) -> bytes:
    """``name`` is one of STARTDT_ACT, STARTDT_CON, STOPDT_ACT, STOPDT_CON, TESTFR_ACT,
    TESTFR_CON."""
    return bytes(_apci_encoder.encode(_apci.APDUU(function=_apci.ApduFunction[name])))


def decode_apdu(data: bytes) -> _apci.APDUI | _apci.APDUS | _apci.APDUU:
    return _apci_encoder.decode(data)


def hat_normalized_raw(value: float) -> int:
    """The int16 hat puts on the wire for a normalized value (scale 32767, Python round)."""
    return round(value * 0x7FFF)


def good_measurement() -> iec104.MeasurementQuality:
    return iec104.MeasurementQuality(
        invalid=False, not_topical=False, substituted=False, blocked=False, overflow=False
    )


# --- client ---------------------------------------------------------------------------------


async def hat_connect(port: int, host: str = HOST, **timeouts: float) -> iec104.Connection:
    """Connect a hat client; returns once STARTDT con has been received."""
    return await iec104.connect(net.TcpAddress(host, port), **{**FAST_TIMEOUTS, **timeouts})


async def receive_until(
    conn: iec104.Connection, pred: Callable[[iec104.Msg], bool], timeout: float = 5.0
) -> list[iec104.Msg]:
    """Receive messages until one satisfies ``pred``; return all of them (that one last)."""
    out: list[iec104.Msg] = []

    async def loop() -> None:
        while True:
            for msg in await conn.receive():
                out.append(msg)
                if pred(msg):
                    return

    await asyncio.wait_for(loop(), timeout)
    return out


# --- server ---------------------------------------------------------------------------------


class HatRtu:
    """A hat-drivers controlled station on 127.0.0.1 with a fixed point list.

    Use as ``async with HatRtu(port, points={100: FloatingData(...)}) as rtu:``.

    Attributes:
        points: ``{ioa: iec104.Data}`` sent in answer to a general interrogation (COT 20) and, for
            ``BinaryCounterData``, to a counter interrogation (COT 37).
        asdu_address: common address of the station (commands/GI to other CAs are still
            answered; hat does not filter).
        command_ioas: IOAs that accept commands (ActCon + ActTerm); any other IOA gets a
            negative ActCon with COT 47 (unknown IOA). ``None`` accepts every IOA.
        received: every message received from any client, in order.
        errors: ``AsduTypeError`` raised by ``Connection.receive`` for ASDUs with a type id hat
            does not know (the connection stays open).
        connections: the hat connections accepted so far.
    """

    def __init__(
        self,
        port: int,
        points: Mapping[int, Any] | None = None,
        *,
        asdu_address: int = 1,
        command_ioas: Container[int] | None = None,
        host: str = HOST,
        **timeouts: float,
    ) -> None:
        self.port = port
        self.command_ioas = command_ioas
        self.host = host
        self.points: dict[int, Any] = dict(points or {})
        self.asdu_address = asdu_address
        self.received: list[iec104.Msg] = []
        self.errors: list[Exception] = []
        self.connections: list[iec104.Connection] = []
        self._timeouts = {**FAST_TIMEOUTS, **timeouts}
        self._server: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._new_connection = asyncio.Event()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await iec104.listen(
            self._on_connection, net.TcpAddress(self.host, self.port), **self._timeouts
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for conn in self.connections:
            await conn.async_close()
        if self._server is not None:
            await self._server.async_close()

    async def wait_connection(self, timeout: float = 5.0) -> iec104.Connection:
        await asyncio.wait_for(self._new_connection.wait(), timeout)
        return self.connections[-1]

    async def wait_enabled(self, conn: iec104.Connection, timeout: float = 5.0) -> None:
        """Wait for the client's STARTDT act. hat silently DROPS I-frames sent before it."""
        enabled = asyncio.Event()
        handle = conn.register_enabled_cb(lambda on: enabled.set() if on else enabled.clear())
        try:
            if not conn.is_enabled:
                await asyncio.wait_for(enabled.wait(), timeout)
        finally:
            handle.cancel()

    async def send_spontaneous(
        self, conn: iec104.Connection, ioa: int, data: Any, time: iec104.Time | None = None
    ) -> None:
        await self.wait_enabled(conn)
        await conn.send([self._data_msg(ioa, data, iec104.DataResCause.SPONTANEOUS, time)])

    def _data_msg(
        self, ioa: int, data: Any, cause: Any, time: iec104.Time | None = None
    ) -> iec104.DataMsg:
        return iec104.DataMsg(
            is_test=False,
            originator_address=0,
            asdu_address=self.asdu_address,
            io_address=ioa,
            data=data,
            time=time,
            cause=cause,
        )

    async def _on_connection(self, conn: iec104.Connection) -> None:
        self.connections.append(conn)
        self._new_connection.set()
        task = asyncio.get_running_loop().create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: iec104.Connection) -> None:
        res = iec104.CommandResCause
        while True:
            try:
                msgs = await conn.receive()
            except ConnectionError:
                return
            except iec104.AsduTypeError as exc:  # unknown type id; the connection stays open
                self.errors.append(exc)
                continue
            for msg in msgs:
                self.received.append(msg)
                if isinstance(msg, iec104.InterrogationMsg):
                    await conn.send([msg._replace(cause=res.ACTIVATION_CONFIRMATION)])
                    data = [
                        self._data_msg(ioa, d, iec104.DataResCause.INTERROGATED_STATION)
                        for ioa, d in sorted(self.points.items())
                        if not isinstance(d, iec104.BinaryCounterData)
                    ]
                    if data:
                        await conn.send(data)
                    await conn.send([msg._replace(cause=res.ACTIVATION_TERMINATION)])
                elif isinstance(msg, iec104.CounterInterrogationMsg):
                    await conn.send([msg._replace(cause=res.ACTIVATION_CONFIRMATION)])
                    counters = [
                        self._data_msg(ioa, d, iec104.DataResCause.INTERROGATED_COUNTER)
                        for ioa, d in sorted(self.points.items())
                        if isinstance(d, iec104.BinaryCounterData)
                    ]
                    if counters:
                        await conn.send(counters)
                    await conn.send([msg._replace(cause=res.ACTIVATION_TERMINATION)])
                elif isinstance(msg, iec104.CommandMsg):
                    if msg.cause != iec104.CommandReqCause.ACTIVATION:
                        continue
                    if self.command_ioas is not None and msg.io_address not in self.command_ioas:
                        await conn.send(
                            [msg._replace(cause=res.UNKNOWN_IO_ADDRESS, is_negative_confirm=True)]
                        )
                        continue
                    await conn.send(
                        [
                            msg._replace(cause=res.ACTIVATION_CONFIRMATION),
                            msg._replace(cause=res.ACTIVATION_TERMINATION),
                        ]
                    )
                elif isinstance(msg, iec104.ClockSyncMsg):
                    await conn.send(
                        [msg._replace(cause=iec104.ClockSyncResCause.ACTIVATION_CONFIRMATION)]
                    )
                elif isinstance(msg, iec104.ReadMsg):
                    if msg.io_address in self.points:
                        data = self.points[msg.io_address]
                        await conn.send(
                            [self._data_msg(msg.io_address, data, iec104.DataResCause.REQUEST)]
                        )
                    else:
                        await conn.send(
                            [msg._replace(cause=iec104.ReadResCause.UNKNOWN_IO_ADDRESS)]
                        )
                elif isinstance(msg, iec104.ResetMsg):
                    await conn.send(
                        [msg._replace(cause=iec104.ActivationResCause.ACTIVATION_CONFIRMATION)]
                    )
                elif isinstance(msg, iec104.ParameterMsg):
                    await conn.send(
                        [msg._replace(cause=iec104.ParameterResCause.ACTIVATION_CONFIRMATION)]
                    )
                elif isinstance(msg, iec104.ParameterActivationMsg):
                    cause = iec104.ParameterActivationResCause
                    await conn.send([msg._replace(cause=(
                        cause.DEACTIVATION_CONFIRMATION
                        if msg.cause == iec104.ParameterActivationReqCause.DEACTIVATION
                        else cause.ACTIVATION_CONFIRMATION))])
