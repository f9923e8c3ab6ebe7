"""asyncio IEC 104 client and server on the sans-IO codec (seed API: hat-drivers).

The driver only moves bytes between sockets and :class:`iec104.codec.session.Session` and
runs callbacks; all parsing and encoding is the codec's.
"""

from .common import (
                     Address,
                     AsduCb,
                     ClockSyncCb,
                     CommandCb,
                     ConnectionCb,
                     ConnectionInfo,
                     CounterInterrogateCb,
                     DelayCb,
                     EnabledCb,
                     GroupInterrogateCb,
                     InterrogateCb,
                     NegativeResponse,
                     ParameterCb,
                     ReadCb,
                     ResetCb,
                     ResponseTimeout,
)
from .connection import Connection, connect
from .files import FileProvider, MemoryFiles
from .lifetime import Group, Resource
from .outstation import RedundancyGroup
from .server import Server, listen

__all__ = [
    "Address", "AsduCb", "ClockSyncCb", "CommandCb", "Connection", "ConnectionCb",
    "ConnectionInfo", "CounterInterrogateCb", "DelayCb", "EnabledCb", "FileProvider", "Group",
    "GroupInterrogateCb", "InterrogateCb", "MemoryFiles", "NegativeResponse", "ParameterCb",
    "ReadCb", "RedundancyGroup", "ResetCb", "Resource", "ResponseTimeout", "Server", "connect",
    "listen",
]
