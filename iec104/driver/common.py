"""Addresses and callback types of the driver API (seed: hat-drivers ``iec104``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from ..codec.asdu import ASDU, RawASDU
from ..codec.constants import Cause
from ..codec.errors import Iec104Error
from ..codec.model import Command, Data
from ..codec.parameters import Parameter, ParameterActivation, ResetKind
from ..codec.timetag import Time
from ..codec.values import FreezeCode

if TYPE_CHECKING:
    from .connection import Connection


class Address(NamedTuple):
    """TCP address.

    Attributes:
        host: host name or IP address.
        port: TCP port [0, 65535]; 2404 is the IEC 104 port (19998 with TLS).
    """

    host: str
    port: int = 2404


class ConnectionInfo(NamedTuple):
    """Both ends of a connection."""

    local_addr: Address
    remote_addr: Address


InterrogateCb: TypeAlias = Callable[["Connection", int],
                                    "list[Data] | None | Awaitable[list[Data] | None]"]
"""Station interrogation request: called with the connection and the ASDU address; returns
the data to send (cause set to INTERROGATED_STATION), or None for a negative confirmation."""

GroupInterrogateCb: TypeAlias = Callable[["Connection", int, int],
                                         "list[Data] | None | Awaitable[list[Data] | None]"]
"""Group interrogation request: also called with the group in [1, 16]."""

CounterInterrogateCb: TypeAlias = Callable[["Connection", int, FreezeCode],
                                           "list[Data] | None | Awaitable[list[Data] | None]"]
"""Counter interrogation request: called with the ASDU address and the freeze code; returns
the counters to send (cause INTERROGATED_COUNTER*), or None for a negative confirmation."""

CommandCb: TypeAlias = Callable[["Connection", "list[Command]"], "bool | Awaitable[bool]"]
"""Command request (activation or deactivation): returns whether it succeeded; the
confirmation is negative when it returns False (or raises)."""

ClockSyncCb: TypeAlias = Callable[["Connection", int, Time], "bool | Awaitable[bool]"]
"""Clock synchronization request: called with the ASDU address and the time; returns
whether the clock was set."""

ConnectionCb: TypeAlias = Callable[["Connection"], "None | Awaitable[None]"]
"""New connection accepted by a server."""

ReadCb: TypeAlias = Callable[["Connection", int, int], "Data | None | Awaitable[Data | None]"]
"""Read request (C_RD_NA_1): called with the ASDU and IO address; returns the point's
``Data`` (sent with cause REQUEST and the addresses asked for), or None for a negative
answer with cause UNKNOWN_IO_ADDRESS."""

ResetCb: TypeAlias = Callable[["Connection", int, "ResetKind | int"], "bool | Awaitable[bool]"]
"""Reset process request (C_RP_NA_1): called with the ASDU address and the QRP; returns
whether the reset is carried out (positive ACTCON)."""

DelayCb: TypeAlias = Callable[["Connection", int, int], "None | Awaitable[None]"]
"""Transmission delay loaded by the controlling station (C_CD_NA_1, cause SPONTANEOUS):
called with the ASDU address and the delay in milliseconds [0, 59999], to be added to the
time of the next clock synchronization (also kept in ``Connection.transmission_delay``)."""

ParameterCb: TypeAlias = Callable[["Connection", "Parameter | ParameterActivation"],
                                  "bool | Awaitable[bool]"]
"""Parameter of a measured value (P_ME_NA/NB/NC_1) or parameter (de)activation
(P_AC_NA_1) request; returns whether it is accepted (positive (DE)ACTCON)."""

AsduCb: TypeAlias = Callable[["Connection", "ASDU | RawASDU"],
                             "bool | None | Awaitable[bool | None]"]
"""Any ASDU the driver does not handle itself (private type IDs, answers it does not wait
for); returns True when the application handled it, so that a request is not refused
with UNKNOWN_TYPE."""

EnabledCb: TypeAlias = Callable[["Connection", bool], "None | Awaitable[None]"]
"""Data transfer started (True, STARTDT confirmed) or stopped (False, STOPDT confirmed)."""


class NegativeResponse(Iec104Error):
    """The peer answered a request negatively (P/N=1, or an UNKNOWN_* cause).

    Attributes:
        cause: the cause of transmission of the answer.
    """

    def __init__(self, what: str, cause: Cause | int) -> None:
        name = cause.name if isinstance(cause, Cause) else str(cause)
        super().__init__(f"{what}: negative answer, cause {name}")
        self.cause = cause


class ResponseTimeout(Iec104Error, TimeoutError):
    """No answer to a request within the response timeout (t1)."""
