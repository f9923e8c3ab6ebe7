"""Addresses and callback types of the driver API (seed: hat-drivers ``iec104``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from ..codec.model import Command, Data
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
