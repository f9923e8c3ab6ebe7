"""iec104: IEC 60870-5-104 toolkit (codec, driver, dissector, proxy, analyzer).

The package itself exports the seed driver API (compatible with hat-drivers' ``iec104``)::

    import iec104
    srv = await iec104.listen(on_connection, iec104.Address('127.0.0.1', 2404))
    conn = await iec104.connect(iec104.Address('127.0.0.1', 2404))
"""

from .codec import DecodeError, EncodeError, Iec104Error, Profile
from .codec.constants import Cause
from .codec.model import Action, Command, CommandValue, Data, DataValue
from .codec.parameters import (
                               ActivationKind,
                               Parameter,
                               ParameterActivation,
                               ParameterKind,
                               ResetKind,
)
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
                     NegativeResponse,
                     RedundancyGroup,
                     ResponseTimeout,
                     Server,
                     connect,
                     listen,
)

__all__ = [
    "Action", "ActivationKind", "Address", "BinaryCounterValue", "BitstringValue", "Cause",
    "ClockSyncCb", "Command", "CommandCb", "CommandValue", "Connection", "ConnectionCb",
    "ConnectionInfo", "CounterInterrogateCb", "Data", "DataValue", "DecodeError", "DoubleValue",
    "EncodeError", "FloatingValue", "FreezeCode", "GroupInterrogateCb", "Iec104Error",
    "InitializationValue", "InterrogateCb", "NegativeResponse", "NormalizedValue", "Parameter",
    "ParameterActivation", "ParameterKind", "Profile", "ProtectionCommandValue",
    "ProtectionQuality", "ProtectionStartValue", "ProtectionValue", "Quality", "RedundancyGroup",
    "RegulatingValue", "ResetKind", "ResponseTimeout", "ScaledValue", "Server", "SingleValue",
    "StatusChangeValue", "StepPositionValue", "Time", "TimeSize", "connect", "listen",
    "time_from_datetime", "time_to_datetime",
]
__version__ = "0.1.0"
