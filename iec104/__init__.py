"""iec104: IEC 60870-5-104 toolkit (codec, driver, dissector, recorder, analyzer).

The package itself exports the seed driver API (compatible with hat-drivers' ``iec104``)::

    import iec104
    srv = await iec104.listen(on_connection, iec104.Address('127.0.0.1', 2404))
    conn = await iec104.connect(iec104.Address('127.0.0.1', 2404))

and the faces of the dissector and of the records::

    for batch in iec104.dissect("capture.pcapng"):   # pyarrow.RecordBatch of the schema
        ...
    table = iec104.dissect_table("capture.pcapng")   # the same, as one pyarrow.Table
    df = iec104.load("capture-log")                  # Parquet file(s)/directory -> DataFrame

Every name is imported on first use (PEP 562): ``import iec104.codec`` must not pay for
asyncio and the driver (nor pyarrow), in every ``--jobs`` worker process too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
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
    from .dataset.read import load
    from .dissector import dissect, dissect_table
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

_HOMES = {
    ".codec.errors": ("DecodeError", "EncodeError", "Iec104Error"),
    ".codec.constants": ("Cause",),
    ".codec.model": ("Action", "Command", "CommandValue", "Data", "DataValue"),
    ".codec.asdu": ("Profile",),
    ".codec.parameters": ("ActivationKind", "Parameter", "ParameterActivation", "ParameterKind",
                          "ResetKind"),
    ".codec.timetag": ("Time", "TimeSize", "time_from_datetime", "time_to_datetime"),
    ".codec.values": (
        "BinaryCounterValue", "BitstringValue", "DoubleValue", "FloatingValue", "FreezeCode",
        "InitializationValue", "NormalizedValue", "ProtectionCommandValue", "ProtectionQuality",
        "ProtectionStartValue", "ProtectionValue", "Quality", "RegulatingValue", "ScaledValue",
        "SingleValue", "StatusChangeValue", "StepPositionValue"),
    ".driver": (
        "Address", "ClockSyncCb", "CommandCb", "Connection", "ConnectionCb", "ConnectionInfo",
        "CounterInterrogateCb", "GroupInterrogateCb", "InterrogateCb", "NegativeResponse",
        "RedundancyGroup", "ResponseTimeout", "Server", "connect", "listen"),
    ".dissector": ("dissect", "dissect_table"),
    ".dataset.read": ("load",),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "Action", "ActivationKind", "Address", "BinaryCounterValue", "BitstringValue", "Cause",
    "ClockSyncCb", "Command", "CommandCb", "CommandValue", "Connection", "ConnectionCb",
    "ConnectionInfo", "CounterInterrogateCb", "Data", "DataValue", "DecodeError", "DoubleValue",
    "EncodeError", "FloatingValue", "FreezeCode", "GroupInterrogateCb", "Iec104Error",
    "InitializationValue", "InterrogateCb", "NegativeResponse", "NormalizedValue", "Parameter",
    "ParameterActivation", "ParameterKind", "Profile", "ProtectionCommandValue",
    "ProtectionQuality", "ProtectionStartValue", "ProtectionValue", "Quality", "RedundancyGroup",
    "RegulatingValue", "ResetKind", "ResponseTimeout", "ScaledValue", "Server", "SingleValue",
    "StatusChangeValue", "StepPositionValue", "Time", "TimeSize", "connect", "dissect",
    "dissect_table", "listen", "load", "time_from_datetime", "time_to_datetime",
]
assert sorted(__all__) == sorted(_MODULE_OF)  # one list for ruff and readers, one for lookups
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
