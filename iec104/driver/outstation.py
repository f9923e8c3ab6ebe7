"""Outstation behaviour beyond the APCI: select-before-operate, stale time-tagged commands,
redundancy groups.

Theory of operation
-------------------
Select before operate (IEC 60870-5-5 command transmission) is enforced per connection by
:class:`CommandGate` when ``select_timeout`` is given. An activation with S/E=1 (select)
goes to ``command_cb``; when that confirms it, the point is *selected* on that connection
until ``select_timeout`` seconds have passed on the event loop's clock. An execute (S/E=0)
of a type that has S/E must find a live selection of the same type, common address, IOA,
value and qualifier, else it is refused with a negative ACTCON without reaching
``command_cb``; a matching execute consumes the selection, a refused one drops it. A
deactivation drops it too. Bitstring commands (C_BO_*) have no S/E and pass.

Time-tagged commands (C_*_TA_1) are refused when ``command_max_age`` is given and their
CP56Time2a is invalid (IV) or further than that from now, either way (the standard
recommends against executing delayed commands; a tag far in the future is a clock error).
"Now" is the wall clock read once per connection and then advanced by the event loop's
clock, so a loop with a fake clock drives this check in tests as it drives t1..t3.

Redundancy groups (IEC 60870-5-104 10.3, lib60870's server modes): a
:class:`RedundancyGroup` gathers connections (by remote host); at most one of them is
*active*, the most recently started one. ``Server.notify_data_change`` gives data to the
active connection of every group; while a group has none, its data waits in the group's
buffer (bounded by ``send_queue_size``: then only the latest value per point stays, in
order) and is handed to the next connection that starts. When the active connection stops,
closes, or another one of its group starts, the notified data it has not sent yet returns
to the group's buffer ahead of newer data, so nothing queued is lost and nothing is sent
twice. I-frames already sent are not sent again: the peer may have processed them, and
its general interrogation after a switch-over recovers the state.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..codec.asdu import ASDU
from ..codec.constants import Cause, TypeId
from ..codec.elements import ELEMENTS
from ..codec.model import COMMAND_TYPES, Data
from ..codec.timetag import Time

if TYPE_CHECKING:
    from .connection import Connection

mlog = logging.getLogger("iec104.driver")

_NO_SELECT = frozenset((TypeId.C_BO_NA_1, TypeId.C_BO_TA_1))
_TIME_TAGGED = frozenset(t for t in COMMAND_TYPES if ELEMENTS[t].time_size is not None)


class CommandGate:
    """Select-before-operate and command age checks of one connection.

    Args:
        select_timeout: seconds a select stays valid (> 0), or None: no enforcement.
        max_age: seconds a C_*_TA_1 time tag may differ from now (> 0), or None.
        clock: the event loop's clock (seconds).
        wall_offset: wall-clock seconds (POSIX) minus ``clock()``, read once.
    """

    def __init__(self, select_timeout: float | None, max_age: float | None,
                 clock: Callable[[], float], wall_offset: float) -> None:
        self._timeout = select_timeout
        self._max_age = max_age
        self._clock = clock
        self._wall_offset = wall_offset
        # (type ID, common address, IOA) -> (value, qualifier, deadline)
        self._selected: dict[tuple[int, int, int | None], tuple[object, object, float]] = {}

    def refusal(self, asdu: ASDU) -> str | None:
        """Why the command activation/deactivation ``asdu`` is refused, else None (it goes
        to ``command_cb``). Consumes or drops selections as the module docstring says."""
        if self._max_age is not None and asdu.type_id in _TIME_TAGGED:
            for obj in asdu.objects:
                reason = self._stale(obj.time)
                if reason is not None:
                    return reason
        if self._timeout is None or asdu.type_id in _NO_SELECT:
            return None
        now = self._clock()
        for obj in asdu.objects:
            key = (int(asdu.type_id), asdu.common_address, obj.address)
            if asdu.cause == Cause.DEACTIVATION:
                self._selected.pop(key, None)
            elif not obj.select:
                selected = self._selected.pop(key, None)
                if selected is None:
                    return f"execute of IOA {obj.address} without a select"
                value, qualifier, deadline = selected
                if now > deadline:
                    return f"execute of IOA {obj.address} after the select timed out"
                if (value, qualifier) != (obj.value, obj.qualifier):
                    return f"execute of IOA {obj.address} differs from its select"
        return None

    def confirmed(self, asdu: ASDU, positive: bool) -> None:
        """Record the selects of ``asdu`` that ``command_cb`` confirmed positively."""
        if self._timeout is None or asdu.cause != Cause.ACTIVATION or not positive:
            return
        deadline = self._clock() + self._timeout
        for obj in asdu.objects:
            if obj.select:
                key = (int(asdu.type_id), asdu.common_address, obj.address)
                self._selected[key] = (obj.value, obj.qualifier, deadline)

    def _stale(self, time: object) -> str | None:
        if not isinstance(time, Time) or time.invalid:
            return "time-tagged command with an invalid time tag"
        try:
            tagged = time.to_datetime(datetime.UTC).timestamp()
        except ValueError:
            return "time-tagged command with an impossible date"
        age = self._clock() + self._wall_offset - tagged
        assert self._max_age is not None
        if abs(age) > self._max_age:
            return (f"time-tagged command {age:.3f} s {'old' if age > 0 else 'ahead'} "
                    f"(command_max_age {self._max_age} s)")
        return None


class RedundancyGroup(NamedTuple):
    """Connections of which only one receives data (IEC 60870-5-104 10.3).

    Attributes:
        name: for logs.
        clients: remote hosts (IP addresses as the socket reports them) that belong to the
            group; empty: every host no other group names.
    """

    name: str
    clients: frozenset[str] = frozenset()


class GroupState:
    """Run-time state of one :class:`RedundancyGroup` (owned by the server)."""

    def __init__(self, group: RedundancyGroup, limit: int) -> None:
        self.group = group
        self.active: Connection | None = None
        self._limit = limit
        self._buffer: list[Data] = []

    @property
    def buffered(self) -> int:
        """Data items waiting for a started connection."""
        return len(self._buffer)

    def notify(self, data: Sequence[Data]) -> None:
        """Give ``data`` to the active connection, or buffer it."""
        active = self.active
        if active is not None and active.is_open:  # a closing one returns its data soon
            active.notify_data_change(data)
            return
        self._buffer.extend(data)
        if len(self._buffer) > self._limit:
            self._coalesce()

    def started(self, conn: Connection) -> None:
        """``conn`` of this group started: it becomes the active one and gets the buffer."""
        previous = self.active
        if previous is conn:
            return
        if previous is not None:
            mlog.info("redundancy group %s: %s takes over from %s", self.group.name,
                      conn.info.remote_addr, previous.info.remote_addr)
            self.stopped(previous)
        self.active = conn
        if self._buffer:
            data, self._buffer = tuple(self._buffer), []
            conn.notify_data_change(data)

    def stopped(self, conn: Connection) -> None:
        """``conn`` stopped or closed: if it was active, its unsent data returns."""
        if self.active is not conn:
            return
        self.active = None
        unsent = conn._take_notified()
        if unsent:
            self._buffer[:0] = unsent
            if len(self._buffer) > self._limit:
                self._coalesce()

    def _coalesce(self) -> None:
        # an outstation's event buffer: the latest value per point, where it was queued
        latest: dict[tuple[int, int], int] = {}
        for i, item in enumerate(self._buffer):
            latest[(item.asdu_address, item.io_address)] = i
        keep = sorted(latest.values())
        mlog.info("redundancy group %s: buffer reached %d items, kept the latest of %d "
                  "points", self.group.name, len(self._buffer), len(keep))
        self._buffer = [self._buffer[i] for i in keep]


def assign_group(groups: Iterable[GroupState], host: str) -> GroupState | None:
    """The group of a connection from ``host``: the first that names it, else the first
    that names no host; None if neither exists."""
    fallback = None
    for state in groups:
        if host in state.group.clients:
            return state
        if not state.group.clients and fallback is None:
            fallback = state
    return fallback
