"""asyncio IEC 104 client and server on the sans-IO codec (seed API: hat-drivers).

The driver only moves bytes between sockets and :class:`iec104.codec.session.Session` and
runs callbacks; all parsing and encoding is the codec's.
"""

from .common import (
                     Address,
                     ClockSyncCb,
                     CommandCb,
                     ConnectionCb,
                     ConnectionInfo,
                     CounterInterrogateCb,
                     GroupInterrogateCb,
                     InterrogateCb,
)
from .connection import Connection, connect
from .files import FileProvider, MemoryFiles
from .lifetime import Group, Resource
from .server import Server, listen

__all__ = [
    "Address", "ClockSyncCb", "CommandCb", "Connection", "ConnectionCb", "ConnectionInfo",
    "CounterInterrogateCb", "FileProvider", "Group", "GroupInterrogateCb", "InterrogateCb",
    "MemoryFiles", "Resource", "Server", "connect", "listen",
]
