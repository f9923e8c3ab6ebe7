"""iec104: IEC 60870-5-104 toolkit (codec, driver, dissector, proxy, analyzer).

The package itself exports the seed driver API (compatible with hat-drivers' ``iec104``)::

    import iec104
    srv = await iec104.listen(on_connection, iec104.Address('127.0.0.1', 2404))
    conn = await iec104.connect(iec104.Address('127.0.0.1', 2404))
"""

from .codec import DecodeError, EncodeError, Iec104Error
from .codec.constants import Cause
from .codec.model import Action, Command, CommandValue, Data, DataValue
from .codec.timetag import Time, TimeSize, time_from_datetime, time_to_datetime
from .codec.values import (
                           BinaryCounterValue,
                           BitstringValue,
                           DoubleValue,
                           FloatingValue,
                           FreezeCode,
                           InitializationValue,
                           NormalizedValue,
                           ProtectionCommandValue,
                           ProtectionQuality,
                           ProtectionStartValue,
                           ProtectionValue,
                           Quality,
                           RegulatingValue,
                           ScaledValue,
                           SingleValue,
                           StatusChangeValue,
                           StepPositionValue,
)
from .driver import (
                     Address,
                     ClockSyncCb,
                     CommandCb,
                     Connection,
                     ConnectionCb,
                     ConnectionInfo,
                     CounterInterrogateCb,
                     GroupInterrogateCb,
                     InterrogateCb,
                     Server,
                     connect,
                     listen,
)

__all__ = [
    "Action", "Address", "BinaryCounterValue", "BitstringValue", "Cause", "ClockSyncCb",
    "Command", "CommandCb", "CommandValue", "Connection", "ConnectionCb", "ConnectionInfo",
    "CounterInterrogateCb", "Data", "DataValue", "DecodeError", "DoubleValue", "EncodeError",
    "FloatingValue", "FreezeCode", "GroupInterrogateCb", "Iec104Error", "InitializationValue",
    "InterrogateCb", "NormalizedValue", "ProtectionCommandValue", "ProtectionQuality",
    "ProtectionStartValue", "ProtectionValue", "Quality", "RegulatingValue", "ScaledValue",
    "Server", "SingleValue", "StatusChangeValue", "StepPositionValue", "Time", "TimeSize",
    "connect", "listen", "time_from_datetime", "time_to_datetime",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``iec104.dissect`` and ``iec104.load``, imported on first use: they need pyarrow and
    pandas, which the codec and the driver do not."""
    if name == "dissect":
        from .dissectors.stream import dissect

        return dissect
    if name == "load":
        from .analyzer.storage import load

        return load
    raise AttributeError(f"module 'iec104' has no attribute {name!r}")
