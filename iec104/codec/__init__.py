"""Sans-IO codec for IEC 60870-5-104 (standard library only).

Layers: :mod:`.apci` (frames), :mod:`.framer` (stream splitting), :mod:`.asdu` with
:mod:`.elements` (structural ASDU), :mod:`.timetag`, :mod:`.values`, :mod:`.session` (the
APCI state machine) and :mod:`.model` (``Data``/``Command`` for the driver API).
"""

from .apci import (APDU, MAX_ASDU_SIZE, IFrame, SFrame, UFrame, UFunction, decode_apdu,
                   encode_apdu, seq_add, seq_diff)
from .asdu import (ASDU, DEFAULT_PROFILE, Header, InformationObject, Profile, RawASDU,
                   decode_asdu, decode_header, encode_asdu)
from .constants import Cause, TypeId, cause_name, to_cause, to_type_id, type_name
from .errors import (DecodeError, EncodeError, Iec104Error, LocalProtocolError,
                     RemoteProtocolError)
from .framer import NEED_DATA, Frame, Framer, Malformed
from .model import (Action, Command, Data, asdu_to_commands, asdu_to_data, command_to_asdu,
                    data_to_asdus)
from .session import (Acknowledged, AsduReceived, DataTransferStarted, DataTransferStopped, Role,
                      Session, State)
from .timetag import Time, TimeSize
from .values import (AckFileValue, BinaryCounterValue, BitstringValue, CallFileValue,
                     DirectoryValue, DoubleValue, FileReadyValue, FloatingValue, FreezeCode,
                     InitializationValue, LastSectionValue, NormalizedValue,
                     ProtectionCommandValue, ProtectionQuality, ProtectionStartValue,
                     ProtectionValue, Quality, QueryLogValue, RegulatingValue, ScaledValue,
                     SectionReadyValue, SegmentValue, SingleValue, StatusChangeValue,
                     StepPositionValue, Value)

__all__ = [
    "APDU", "ASDU", "Acknowledged", "AsduReceived", "DataTransferStarted",
    "DataTransferStopped", "Role", "Session", "State", "Action", "Command", "Data", "asdu_to_commands", "asdu_to_data",
    "command_to_asdu", "data_to_asdus", "DEFAULT_PROFILE", "MAX_ASDU_SIZE", "NEED_DATA", "AckFileValue",
    "BinaryCounterValue", "BitstringValue", "CallFileValue", "Cause", "DecodeError",
    "DirectoryValue", "DoubleValue", "EncodeError", "FileReadyValue", "FloatingValue", "Frame",
    "Framer", "FreezeCode", "Header", "IFrame", "Iec104Error", "InformationObject",
    "InitializationValue", "LastSectionValue", "LocalProtocolError", "Malformed",
    "NormalizedValue", "Profile", "ProtectionCommandValue", "ProtectionQuality",
    "ProtectionStartValue", "ProtectionValue", "Quality", "QueryLogValue", "RawASDU",
    "RegulatingValue", "RemoteProtocolError", "SFrame", "ScaledValue", "SectionReadyValue",
    "SegmentValue", "SingleValue", "StatusChangeValue", "StepPositionValue", "Time", "TimeSize",
    "TypeId", "UFrame", "UFunction", "Value", "cause_name", "decode_apdu", "decode_asdu",
    "decode_header", "encode_apdu", "encode_asdu", "seq_add", "seq_diff", "to_cause",
    "to_type_id", "type_name",
]
