"""asyncio IEC 104 server (controlled station): accepts connections, one Session each."""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl as _ssl
from collections.abc import Iterable, Sequence
from typing import Any

from ..codec.asdu import DEFAULT_PROFILE, Profile
from ..codec.model import Data, data_type_id
from ..codec.session import Role
from .common import (
    Address,
    AsduCb,
    ClockSyncCb,
    CommandCb,
    ConnectionCb,
    CounterInterrogateCb,
    DelayCb,
    EnabledCb,
    GroupInterrogateCb,
    InterrogateCb,
    ParameterCb,
    ReadCb,
    ResetCb,
)
from .connection import Connection, Settings, _Protocol
from .files import FileProvider
from .lifetime import Group, Resource
from .outstation import GroupState, RedundancyGroup, assign_group

mlog = logging.getLogger("iec104.driver")


class Server(Resource):
    """Listening server (create with :func:`listen`); closing it closes its connections."""

    def __init__(self, group: Group, groups: Sequence[GroupState] = ()) -> None:
        self._group = group
        self._server: asyncio.base_events.Server | None = None
        self._addresses: list[Address] = []
        self._connections: set[Connection] = set()
        self._groups = list(groups)
        group.on_close(self._cleanup)

    def _attach(self, server: asyncio.base_events.Server) -> None:
        self._server = server
        self._addresses = [Address(*sock.getsockname()[:2]) for sock in server.sockets]

    @property
    def async_group(self) -> Group:
        """Lifetime of the server and of every accepted connection."""
        return self._group

    @property
    def addresses(self) -> list[Address]:
        """Addresses the server listens on (with the actual port when 0 was asked)."""
        return list(self._addresses)

    @property
    def connections(self) -> list[Connection]:
        """Connections open now."""
        return [conn for conn in self._connections if conn.is_open]

    @property
    def redundancy_groups(self) -> dict[str, Connection | None]:
        """The started (active) connection of each redundancy group, by group name."""
        return {state.group.name: state.active for state in self._groups}

    def buffered(self, group: str) -> int:
        """Data items redundancy group ``group`` holds while none of its connections is
        started (``KeyError`` for an unknown group)."""
        for state in self._groups:
            if state.group.name == group:
                return state.buffered
        raise KeyError(group)

    def notify_data_change(self, data: Iterable[Data]) -> None:
        """Send data to every client: with redundancy groups, to the started connection
        of each group (buffered by the group while it has none); without, to every open
        connection (each queues it until its data transfer is started).

        Raises:
            EncodeError: an item whose value/time fits no type ID (nothing is sent then).
        """
        items = data if type(data) is tuple else tuple(data)
        for item in items:
            data_type_id(item)
        if not items:
            return
        if self._groups:
            for state in self._groups:
                state.notify(items)
            return
        for conn in self.connections:
            conn.notify_data_change(items)

    async def _cleanup(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def listen(connection_cb: ConnectionCb,
                 addr: Address = Address("0.0.0.0"),  # noqa: B008 -- immutable, seed API
                 interrogate_cb: InterrogateCb | None = None,
                 counter_interrogate_cb: CounterInterrogateCb | None = None,
                 command_cb: CommandCb | None = None,
                 response_timeout: float = 15,
                 supervisory_timeout: float = 10,
                 test_timeout: float = 20,
                 send_window_size: int = 12,
                 receive_window_size: int = 8,
                 *,
                 ssl_context: _ssl.SSLContext | None = None,
                 group_interrogate_cb: GroupInterrogateCb | None = None,
                 clock_sync_cb: ClockSyncCb | None = None,
                 receive_queue_size: int = 1024,
                 send_queue_size: int = 10_000,
                 backlog: int = 100,
                 profile: Profile = DEFAULT_PROFILE,
                 read_cb: ReadCb | None = None,
                 reset_cb: ResetCb | None = None,
                 delay_cb: DelayCb | None = None,
                 parameter_cb: ParameterCb | None = None,
                 asdu_cb: AsduCb | None = None,
                 enabled_cb: EnabledCb | None = None,
                 select_timeout: float | None = None,
                 command_max_age: float | None = None,
                 redundancy_groups: Sequence[RedundancyGroup] | None = None,
                 file_provider: FileProvider | None = None,
                 ) -> Server:
    """Listen for IEC 104 clients (controlling stations).

    ``connection_cb`` is called with each accepted :class:`Connection` (a coroutine runs as
    a task of that connection and is cancelled when it closes). The connection sends data
    once the client's STARTDT act arrives; what is notified earlier waits.

    Args:
        connection_cb: new connection callback.
        addr: listening address (port 0: any free port, see :attr:`Server.addresses`).
        ssl_context: TLS server context (IEC 62351-3) when given.
        backlog: listen backlog.
        file_provider: the files the server offers and accepts (directory, read, write;
            see :mod:`iec104.driver.files`); None refuses file requests.
        redundancy_groups: IEC 104 redundancy groups (section 10.3): each connection
            joins the first group naming its remote host, else the first group naming
            none (a connection fitting no group is closed); of a group, only the most
            recently started connection gets :meth:`Server.notify_data_change`'s data,
            which the group buffers while none is started (``outstation.py``).
        The other arguments are those of :func:`~iec104.connect`.
    """
    loop = asyncio.get_running_loop()
    settings = Settings(interrogate_cb, counter_interrogate_cb, command_cb, response_timeout,
                        supervisory_timeout, test_timeout, send_window_size,
                        receive_window_size, group_interrogate_cb, clock_sync_cb,
                        receive_queue_size, send_queue_size, profile=profile,
                        read_cb=read_cb, reset_cb=reset_cb, delay_cb=delay_cb,
                        parameter_cb=parameter_cb, asdu_cb=asdu_cb, enabled_cb=enabled_cb,
                        select_timeout=select_timeout, command_max_age=command_max_age,
                        file_provider=file_provider)
    settings.session(Role.CONTROLLED, loop.time)  # validate now
    groups = [GroupState(g, send_queue_size) for g in redundancy_groups or ()]
    group = Group()
    server = Server(group, groups)

    def on_connection(conn: Connection) -> None:
        if groups:
            state = assign_group(groups, conn.info.remote_addr.host)
            if state is None:
                mlog.warning("closing %s: in no redundancy group", conn.info)
                conn.close()
                return
            conn._redundancy = state
        server._connections.add(conn)
        conn.async_group._closed.add_done_callback(
            lambda _: server._connections.discard(conn))  # type: ignore[union-attr]
        mlog.debug("accepted %s", conn.info)
        try:
            result = connection_cb(conn)
        except Exception as exc:  # noqa: BLE001 -- a failing user callback closes the connection
            mlog.error("connection callback failed: %s", exc, exc_info=exc)
            conn.close()
            return
        if inspect.isawaitable(result):
            conn.async_group.spawn(_run_callback, conn, result)

    kwargs: dict[str, Any] = {"ssl": ssl_context} if ssl_context is not None else {}
    try:
        asyncio_server = await loop.create_server(
            lambda: _Protocol(Role.CONTROLLED, settings, on_connection, group),
            addr.host, addr.port, reuse_address=True, backlog=backlog, **kwargs)
    except BaseException:
        group.close()
        raise
    server._attach(asyncio_server)
    return server


async def _run_callback(conn: Connection, result: Any) -> None:
    try:
        await result
    except Exception as exc:  # noqa: BLE001 -- a failing user callback closes the connection
        mlog.error("connection callback failed: %s", exc, exc_info=exc)
        conn.close()
