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
    # iec104.load (datasets, Parquet files): imported on first use, so that the driver and
    # the codec start without pyarrow and pandas
    if name == "load":
        from .dataset.read import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
