"""iec104: IEC 60870-5-104 toolkit (codec, driver, dissector, proxy, analyzer).

The package itself exports the seed driver API (compatible with hat-drivers' ``iec104``)::

    import iec104
    srv = await iec104.listen(on_connection, iec104.Address('127.0.0.1', 2404))
    conn = await iec104.connect(iec104.Address('127.0.0.1', 2404))
"""

from .codec import DecodeError, EncodeError, Iec104Error
from .codec.constants import Cause
from .codec.model import Action, Command, Data
from .codec.timetag import Time, TimeSize
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
from .driver import Address, Connection, ConnectionInfo, Server, connect, listen

__all__ = [
    "Action", "Address", "BinaryCounterValue", "BitstringValue", "Cause", "Command",
    "Connection", "ConnectionInfo", "Data", "DecodeError", "DoubleValue", "EncodeError",
    "FloatingValue", "FreezeCode", "Iec104Error", "InitializationValue", "NormalizedValue",
    "ProtectionCommandValue", "ProtectionQuality", "ProtectionStartValue", "ProtectionValue",
    "Quality", "RegulatingValue", "ScaledValue", "Server", "SingleValue",
    "StatusChangeValue", "StepPositionValue", "Time", "TimeSize", "connect", "listen",
]
__version__ = "0.1.0"
