"""Read, reset process, delay acquisition and parameters, in both roles.

Theory of operation
-------------------
:class:`Requests` is a part of :class:`~iec104.driver.connection.Connection` (a mixin:
it uses the connection's sending, callback and settings machinery, and owns only the
state of these requests). All bit-level meaning comes from ``codec.parameters``.

Controlling side (methods): each request is an ASDU sent at once; its answer is matched
by (type ID, common address, IOA), or by type ID alone for the station-wide requests
(reset process, delay acquisition) whose answer carries the station's address even when
the request was broadcast. A second request with the same key waits for the first one's
answer (the entry is removed when the answer arrives). Every request waits at most
``response_timeout`` (t1) on the event loop's clock, then raises :class:`ResponseTimeout`.

* ``read``: the answer is the point's data with cause REQUEST (it does not go to
  ``receive()``), or the C_RD_NA_1 mirrored with P/N=1 or an UNKNOWN_* cause, raised as
  :class:`NegativeResponse`. lib60870 first confirms a read with a C_RD_NA_1 ACTCON,
  which the standard does not define: a positive one is skipped, a negative one refuses.
* ``acquire_delay`` runs IEC 60870-5-5's procedure: C_CD_NA_1 ACT carrying the send time
  (CP16, ms of the minute); the ACTCON carries it back plus the outstation's holding time;
  half the remaining round trip is the transmission delay, which is then loaded into the
  outstation with C_CD_NA_1 SPONTANEOUS.

Controlled side (handlers): each request calls its callback (plain or coroutine); a
missing callback, an exception or a refusal answers negatively, so a station never
confirms what the application did not do. Delay acquisition is answered by the driver
itself (the echo is protocol, not application).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import TYPE_CHECKING, Any

from ..codec.asdu import ASDU, InformationObject
from ..codec.constants import Cause, TypeId
from ..codec.model import Data, data_type_id
from ..codec.parameters import (
    Parameter,
    ParameterActivation,
    ResetKind,
    activation_to_asdu,
    asdu_to_activations,
    asdu_to_parameters,
    cp16,
    delay_reply,
    parameter_to_asdu,
    reset_kind,
    transmission_delay,
)
from .common import NegativeResponse, ResponseTimeout

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..codec.asdu import RawASDU
    from .connection import Settings

_UNKNOWN_CAUSES = frozenset((Cause.UNKNOWN_TYPE, Cause.UNKNOWN_CAUSE,
                             Cause.UNKNOWN_ASDU_ADDRESS, Cause.UNKNOWN_IO_ADDRESS))
_REPLY_CAUSES = frozenset((Cause.ACTIVATION_CONFIRMATION, Cause.DEACTIVATION_CONFIRMATION))
_STATION_WIDE = frozenset((TypeId.C_RP_NA_1, TypeId.C_CD_NA_1))
Key = tuple[int, int, int | None]  # IOA None: codec objects without one (security types)


class Requests:
    """The connection's read/reset/delay/parameter requests and answers (a mixin)."""

    if TYPE_CHECKING:  # what Connection provides
        _loop: asyncio.AbstractEventLoop
        _settings: Settings
        _wall_offset: float

        @property
        def is_open(self) -> bool: ...
        def _send_asdu(self, asdu: ASDU | RawASDU) -> None: ...
        def _respond(self, asdu: ASDU | RawASDU) -> None: ...
        def _confirm(self, request: ASDU, cause: Cause, positive: bool) -> None: ...
        def _call(self, what: str, cb: Callable[..., Any] | None, args: tuple[Any, ...],
                  done: Callable[[Any], None]) -> None: ...
        def _is_open_then(self, fn: Callable[..., None], *args: Any) -> None: ...
        def _on_unhandled(self, asdu: ASDU | RawASDU) -> None: ...
        def _send_answer(self, request: ASDU, data: list[Data]) -> None: ...
        def _log_warning(self, message: str, *args: Any) -> None: ...

    def _init_requests(self) -> None:
        self._reads: dict[tuple[int, int | None], asyncio.Future[Data]] = {}
        self._replies: dict[Key, asyncio.Future[ASDU]] = {}
        self._transmission_delay: int | None = None
        self._received_at = 0.0  # loop time the ASDU being handled arrived
        self._delay_reply_at = 0.0  # ... and the last C_CD_NA_1 ACTCON

    @property
    def transmission_delay(self) -> int | None:
        """Milliseconds the controlling station loaded with C_CD_NA_1 (None before)."""
        return self._transmission_delay

    # -- controlling side ------------------------------------------------------------------

    async def read(self, io_address: int, asdu_address: int) -> Data:
        """Read one point (C_RD_NA_1).

        Returns:
            The point's ``Data`` (cause REQUEST).

        Raises:
            NegativeResponse: the station refused (e.g. cause UNKNOWN_IO_ADDRESS).
            ResponseTimeout: no answer within the response timeout (t1).
            ConnectionError: the connection closed first.
        """
        key = (asdu_address, io_address)
        while (pending := self._reads.get(key)) is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        future: asyncio.Future[Data] = self._loop.create_future()
        self._reads[key] = future
        asdu = ASDU(TypeId.C_RD_NA_1, False, Cause.REQUEST, False, False, 0, asdu_address,
                    (InformationObject(io_address),))
        try:
            self._send_asdu(asdu)
            return await self._answer(future, "read")
        finally:
            if self._reads.get(key) is future:
                del self._reads[key]

    async def reset_process(self, asdu_address: int = 0xFFFF,
                            kind: ResetKind | int = ResetKind.GENERAL) -> bool:
        """Reset process command (C_RP_NA_1) with QRP ``kind`` [0, 255].

        Returns:
            Whether the station confirmed positively.

        Raises:
            ResponseTimeout: no ACTCON within t1.
        """
        asdu = ASDU(TypeId.C_RP_NA_1, False, Cause.ACTIVATION, False, False, 0, asdu_address,
                    (InformationObject(0, qualifier=int(kind)),))
        reply = await self._request(asdu, "reset process")
        return _positive(reply)

    async def acquire_delay(self, asdu_address: int = 0xFFFF, *,
                            load: bool = True) -> int:
        """Measure the transmission delay (IEC 60870-5-5, C_CD_NA_1) and, with
        ``load``, send it to the station (cause SPONTANEOUS) for its clock corrections.

        Returns:
            The one-way delay in milliseconds [0, 29999].

        Raises:
            NegativeResponse: the station refused the activation.
            ResponseTimeout: no ACTCON within t1.
        """
        sent = cp16(self._wall_ms())
        asdu = ASDU(TypeId.C_CD_NA_1, False, Cause.ACTIVATION, False, False, 0, asdu_address,
                    (InformationObject(0, sent),))
        reply = await self._request(asdu, "delay acquisition")
        if not _positive(reply) or not reply.objects:
            raise NegativeResponse("delay acquisition", reply.cause)
        delay = transmission_delay(int(reply.objects[0].value),  # type: ignore[arg-type]
                                   self._wall_ms(self._delay_reply_at))
        if load:
            self._send_asdu(asdu._replace(cause=Cause.SPONTANEOUS,
                                          common_address=reply.common_address,
                                          objects=(InformationObject(0, delay),)))
        return delay

    async def set_parameter(self, parameter: Parameter) -> bool:
        """Parameter of measured values (P_ME_NA/NB/NC_1 by the value's class).

        Returns:
            Whether the station confirmed positively.

        Raises:
            EncodeError: the parameter cannot be encoded.
            ResponseTimeout: no ACTCON within t1.
        """
        return _positive(await self._request(parameter_to_asdu(parameter), "parameter"))

    async def activate_parameter(self, activation: ParameterActivation) -> bool:
        """Parameter activation (P_AC_NA_1), or deactivation when ``activation.activate``
        is False.

        Returns:
            Whether the station confirmed positively.
        """
        return _positive(await self._request(activation_to_asdu(activation),
                                              "parameter activation"))

    async def _request(self, asdu: ASDU, what: str) -> ASDU:
        obj = asdu.objects[0]
        key: Key = ((int(asdu.type_id), -1, -1) if asdu.type_id in _STATION_WIDE
                    else (int(asdu.type_id), asdu.common_address, obj.address))
        while (pending := self._replies.get(key)) is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        future: asyncio.Future[ASDU] = self._loop.create_future()
        self._replies[key] = future
        try:
            self._send_asdu(asdu)
            return await self._answer(future, what)
        finally:
            if self._replies.get(key) is future:
                del self._replies[key]

    async def _answer(self, future: asyncio.Future[Any], what: str) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(future),
                                          self._settings.response_timeout)
        except TimeoutError:
            if future.done():  # closed meanwhile: its error, not a timeout
                return future.result()
            raise ResponseTimeout(f"{what}: no answer within "
                                  f"{self._settings.response_timeout} s (t1)") from None

    def _wall_ms(self, at: float | None = None) -> float:
        """Wall-clock milliseconds at loop time ``at`` (default now)."""
        return ((self._loop.time() if at is None else at) + self._wall_offset) * 1000

    def _take_read_answers(self, data: list[Data]) -> list[Data]:
        """Resolve the reads that ``data`` (cause REQUEST) answers; return the rest."""
        rest = []
        for item in data:
            future = self._reads.pop((item.asdu_address, item.io_address), None)
            if future is not None and not future.done():
                future.set_result(item)
            else:
                rest.append(item)
        return rest

    def _resolve_reply(self, asdu: ASDU) -> bool:
        """Resolve a request that ``asdu`` answers; False if none waits for it."""
        if asdu.cause not in _REPLY_CAUSES and asdu.cause not in _UNKNOWN_CAUSES:
            return False
        if not asdu.objects:
            return False
        address = asdu.objects[0].address
        if asdu.type_id == TypeId.C_RD_NA_1:
            point = (asdu.common_address, address)
            read = self._reads.get(point)
            if read is None or read.done():
                return False
            if _positive(asdu):
                return True  # lib60870's ACTCON before the data: the data answers
            del self._reads[point]
            read.set_exception(NegativeResponse("read", asdu.cause))
            return True
        key: Key = ((int(asdu.type_id), -1, -1) if asdu.type_id in _STATION_WIDE
                    else (int(asdu.type_id), asdu.common_address, address))
        future = self._replies.pop(key, None)
        if future is None or future.done():
            return False
        if asdu.type_id == TypeId.C_CD_NA_1:  # its arrival time is part of the answer
            self._delay_reply_at = self._received_at
        future.set_result(asdu)
        return True

    def _fail_requests(self, error: Exception) -> None:
        futures: list[asyncio.Future[Any]] = [*self._reads.values(), *self._replies.values()]
        for future in futures:
            if not future.done():
                future.set_exception(error)
                future.exception()

    # -- controlled side -------------------------------------------------------------------

    def _on_request(self, asdu: ASDU) -> None:
        """A read/reset/delay/parameter ASDU from the peer (cause already checked)."""
        if self._resolve_reply(asdu):
            return
        cause = asdu.cause
        if asdu.negative or cause in _REPLY_CAUSES or cause in _UNKNOWN_CAUSES:
            self._on_unhandled(asdu)  # an answer nobody waits for
            return
        type_id = asdu.type_id
        if not asdu.objects:
            self._confirm(asdu, Cause.ACTIVATION_CONFIRMATION, False)
        elif type_id == TypeId.C_RD_NA_1:
            self._serve_read(asdu)
        elif type_id == TypeId.C_RP_NA_1:
            self._call("reset process", self._settings.reset_cb,
                       (asdu.common_address, reset_kind(asdu.objects[0].qualifier)),
                       lambda ok: self._is_open_then(
                           self._confirm, asdu, Cause.ACTIVATION_CONFIRMATION, ok is True))
        elif type_id == TypeId.C_CD_NA_1:
            self._serve_delay(asdu)
        else:  # P_ME_*, P_AC_NA_1
            request: Parameter | ParameterActivation
            if type_id == TypeId.P_AC_NA_1:
                request = asdu_to_activations(asdu)[0]
            elif cause == Cause.ACTIVATION:
                request = asdu_to_parameters(asdu)[0]
            else:
                self._on_unhandled(asdu)
                return
            con = (Cause.DEACTIVATION_CONFIRMATION if cause == Cause.DEACTIVATION
                   else Cause.ACTIVATION_CONFIRMATION)
            self._call("parameter", self._settings.parameter_cb, (request,),
                       lambda ok: self._is_open_then(self._confirm, asdu, con, ok is True))

    def _serve_read(self, asdu: ASDU) -> None:
        cb = self._settings.read_cb
        if cb is None:
            self._respond(asdu._replace(cause=Cause.UNKNOWN_TYPE, negative=True))
            return
        for obj in asdu.objects:
            self._call("read", cb, (asdu.common_address, obj.address),
                       functools.partial(self._answer_read, asdu._replace(objects=(obj,))))

    def _answer_read(self, request: ASDU, data: Any) -> None:
        if not self.is_open:
            return
        if data is not None:
            try:
                data_type_id(data)
            except Exception as exc:  # noqa: BLE001 -- a bad callback result means "refused"
                self._log_warning("read callback returned bad data: %s", exc)
                data = None
        if data is None:
            self._respond(request._replace(cause=Cause.UNKNOWN_IO_ADDRESS, negative=True))
            return
        # the answer names the point asked for, whatever address the callback filled in
        self._send_answer(request, [data._replace(
            asdu_address=request.common_address, io_address=request.objects[0].address,
            cause=Cause.REQUEST)])

    def _serve_delay(self, asdu: ASDU) -> None:
        obj = asdu.objects[0]
        if asdu.cause == Cause.SPONTANEOUS:  # the delay the master measured, loaded
            self._transmission_delay = int(obj.value)  # type: ignore[arg-type]
            self._call("delay", self._settings.delay_cb,
                       (asdu.common_address, self._transmission_delay), lambda _: None)
            return
        held = (self._loop.time() - self._received_at) * 1000
        self._respond(asdu._replace(cause=Cause.ACTIVATION_CONFIRMATION, objects=(
            obj._replace(value=delay_reply(int(obj.value), held)),)))  # type: ignore[arg-type]


def _positive(reply: ASDU) -> bool:
    return not reply.negative and reply.cause not in _UNKNOWN_CAUSES
