"""asyncio IEC 104 server (controlled station): accepts connections, one Session each."""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl as _ssl
from typing import Any

from ..codec.session import Role
from .common import (
    Address,
    ClockSyncCb,
    CommandCb,
    ConnectionCb,
    CounterInterrogateCb,
    GroupInterrogateCb,
    InterrogateCb,
)
from .connection import Connection, Settings, _Protocol
from .files import FileProvider
from .lifetime import Group, Resource

mlog = logging.getLogger("iec104.driver")


class Server(Resource):
    """Listening server (create with :func:`listen`); closing it closes its connections."""

    def __init__(self, group: Group) -> None:
        self._group = group
        self._server: asyncio.base_events.Server | None = None
        self._addresses: list[Address] = []
        self._connections: set[Connection] = set()
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
        The other arguments are those of :func:`~iec104.connect`.
    """
    loop = asyncio.get_running_loop()
    settings = Settings(interrogate_cb, counter_interrogate_cb, command_cb, response_timeout,
                        supervisory_timeout, test_timeout, send_window_size,
                        receive_window_size, group_interrogate_cb, clock_sync_cb,
                        receive_queue_size, send_queue_size, file_provider)
    settings.session(Role.CONTROLLED, loop.time)  # validate now
    group = Group()
    server = Server(group)

    def on_connection(conn: Connection) -> None:
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
