"""Values and qualities carried by information objects.

These are shared by the structural ASDU layer and the driver's ``Data``/``Command``;
names follow the seed API (hat-drivers). All are immutable and compare with ``==``.
Ranges are those of the wire encoding; the encoder raises ``EncodeError`` outside them.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from .timetag import Time


class Quality(NamedTuple):
    """Quality descriptor (QDS, and the quality bits of SIQ/DIQ).

    ``overflow`` (OV) exists only in QDS; single and double points have no OV bit and
    must carry ``overflow=False``.
    """

    invalid: bool = False
    not_topical: bool = False
    substituted: bool = False
    blocked: bool = False
    overflow: bool = False


class ProtectionQuality(NamedTuple):
    """Quality of protection events (SEP/QDP): ``time_invalid`` is the EI bit."""

    invalid: bool = False
    not_topical: bool = False
    substituted: bool = False
    blocked: bool = False
    time_invalid: bool = False


class SingleValue(enum.IntEnum):
    OFF = 0
    ON = 1


class DoubleValue(enum.IntEnum):
    INTERMEDIATE = 0
    OFF = 1
    ON = 2
    FAULT = 3


class RegulatingValue(enum.IntEnum):
    """Regulating step command state (0 and 3 are 'not permitted' and decode as int)."""

    LOWER = 1
    HIGHER = 2


class StepPositionValue(NamedTuple):
    """Value with transient state indication (VTI).

    Attributes:
        value: [-64, 63].
        transient: equipment is in transient state.
    """

    value: int
    transient: bool


class BitstringValue(NamedTuple):
    """Bitstring of 32 bits (BSI): ``value`` is exactly 4 octets, as on the wire."""

    value: bytes


class NormalizedValue(NamedTuple):
    """Normalized value (NVA): ``value`` in [-1, 1 - 2**-15], resolution 2**-15."""

    value: float


class ScaledValue(NamedTuple):
    """Scaled value (SVA): ``value`` in [-32768, 32767]."""

    value: int


class FloatingValue(NamedTuple):
    """Short floating point value (IEEE 754 binary32)."""

    value: float


FLOAT32_TYPE_IDS = frozenset((13, 14, 36, 50, 63, 112))
"""Type IDs whose value is a short float (binary32): M_ME_NC_1, M_ME_TC_1, M_ME_TF_1,
C_SE_NC_1, C_SE_TC_1, P_ME_NC_1; display their values with :func:`float32_text`."""


def float32_text(value: float) -> str:
    """The shortest decimal text that reads back as the same binary32 number: what the
    device sent, e.g. ``'3.14'`` for 3.140000104904175 (``repr`` shows the binary64 that
    holds it). Values that are no binary32 (a binary64 given by hand) get ``repr``."""
    try:
        wire = struct.pack("<f", value)
    except (OverflowError, struct.error):
        return repr(value)
    if value != value or value in (float("inf"), float("-inf")):
        return repr(value)
    for digits in range(1, 10):  # 9 significant digits always round-trip a binary32
        shortest = float(f"{value:.{digits}g}")
        try:
            if struct.pack("<f", shortest) == wire:
                return repr(shortest)
        except OverflowError:  # rounded up past the largest binary32 (3.4028235e38)
            continue
    return repr(value)


class BinaryCounterValue(NamedTuple):
    """Binary counter reading (BCR).

    Attributes:
        value: [-2**31, 2**31 - 1].
        sequence: sequence number [0, 31].
        overflow: CY, counter overflowed in the period.
        adjusted: CA, counter was adjusted.
        invalid: IV.
    """

    value: int
    sequence: int = 0
    overflow: bool = False
    adjusted: bool = False
    invalid: bool = False


class ProtectionValue(NamedTuple):
    """Single event of protection equipment (SEP + CP16Time2a).

    Attributes:
        state: event state (``DoubleValue``).
        elapsed_time: milliseconds [0, 65535].
    """

    state: DoubleValue
    elapsed_time: int


class ProtectionStartValue(NamedTuple):
    """Start events of protection equipment (SPE + CP16Time2a duration, ms [0, 65535])."""

    general: bool
    l1: bool
    l2: bool
    l3: bool
    ie: bool
    reverse: bool
    duration_time: int


class ProtectionCommandValue(NamedTuple):
    """Output circuit information (OCI + CP16Time2a operating time, ms [0, 65535])."""

    general: bool
    l1: bool
    l2: bool
    l3: bool
    operating_time: int


class StatusChangeValue(NamedTuple):
    """Packed single points with status change detection (SCD).

    Attributes:
        status: 16 status bits [0, 65535], bit i is point i.
        change: 16 change-detection bits [0, 65535].
    """

    status: int
    change: int


class InitializationValue(NamedTuple):
    """Cause of initialization (COI).

    Attributes:
        cause: 0 local power on, 1 local manual reset, 2 remote reset, [0, 127].
        param_change: initialization after change of local parameters (BS1).
    """

    cause: int
    param_change: bool = False


class FreezeCode(enum.IntEnum):
    """FRZ of the counter interrogation qualifier (QCC)."""

    READ = 0
    FREEZE = 1
    FREEZE_AND_RESET = 2
    RESET = 3


class FileReadyValue(NamedTuple):
    """F_FR_NA_1: file ``file_name`` [0, 65535] of ``length`` octets [0, 2**24 - 1] ready."""

    file_name: int
    length: int


class SectionReadyValue(NamedTuple):
    """F_SR_NA_1: section [0, 255] of ``length`` octets ready."""

    file_name: int
    section: int
    length: int


class CallFileValue(NamedTuple):
    """F_SC_NA_1: call directory, select/call file or section."""

    file_name: int
    section: int


class LastSectionValue(NamedTuple):
    """F_LS_NA_1: last section or segment, with its checksum [0, 255]."""

    file_name: int
    section: int
    checksum: int


class AckFileValue(NamedTuple):
    """F_AF_NA_1: acknowledge file or section."""

    file_name: int
    section: int


class SegmentValue(NamedTuple):
    """F_SG_NA_1: one segment of a section; ``data`` up to 240 octets (LOS)."""

    file_name: int
    section: int
    data: bytes


class DirectoryValue(NamedTuple):
    """F_DR_TA_1: one directory entry; ``status`` is the raw SOF octet."""

    file_name: int
    length: int
    status: int


class QueryLogValue(NamedTuple):
    """F_SC_NB_1: request archive file between two CP56Time2a instants."""

    file_name: int
    start: Time
    stop: Time


# -- IEC 62351-5 / IEC 60870-5-7 secure authentication (codec: security.py) ----------------


class SecurityStatisticValue(NamedTuple):
    """S_IT_TC_1: one security statistic counter of an association.

    Attributes:
        association_id: AID [0, 65535].
        counter: the statistic as an integrated total (BCR).
    """

    association_id: int
    counter: BinaryCounterValue


class AuthenticationChallenge(NamedTuple):
    """S_CH_NA_1: a challenge.

    Attributes:
        csq: challenge sequence number [0, 2**32 - 1].
        user: user number [0, 65535].
        mac_algorithm: MAL [0, 255] (e.g. 4 = HMAC-SHA-256 truncated to 16 octets).
        reason: RSC [0, 255] (1 = critical ASDU).
        challenge: the pseudo-random challenge data (at most 65535 octets).
    """

    csq: int
    user: int
    mac_algorithm: int
    reason: int
    challenge: bytes


class AuthenticationReply(NamedTuple):
    """S_RP_NA_1: the reply to a challenge; ``mac`` is the MAC value (opaque)."""

    csq: int
    user: int
    mac: bytes


class AggressiveModeRequest(NamedTuple):
    """S_AR_NA_1: an ASDU sent with its authentication (no challenge first).

    Attributes:
        asdu: the authenticated ASDU's octets (decode with ``decode_asdu`` and the profile).
        csq: challenge sequence number [0, 2**32 - 1].
        user: user number [0, 65535].
        mac: the MAC value (opaque), to the end of the message.
    """

    asdu: bytes
    csq: int
    user: int
    mac: bytes


class KeyStatusRequest(NamedTuple):
    """S_KR_NA_1: session key status request for ``user`` [0, 65535]."""

    user: int


class KeyStatus(NamedTuple):
    """S_KS_NA_1: session key status.

    Attributes:
        ksq: key change sequence number [0, 2**32 - 1].
        user: user number [0, 65535].
        key_wrap_algorithm: KWA [0, 255].
        key_status: KST [0, 255] (1 OK, 2 NOT_INIT, 3 COMM_FAIL, 4 AUTH_FAIL).
        mac_algorithm: MAL [0, 255].
        challenge: challenge data.
        mac: MAC value (opaque, to the end of the message; empty when none).
    """

    ksq: int
    user: int
    key_wrap_algorithm: int
    key_status: int
    mac_algorithm: int
    challenge: bytes
    mac: bytes


class KeyChange(NamedTuple):
    """S_KC_NA_1: session key change; ``wrapped_key`` is the wrapped key data (opaque)."""

    ksq: int
    user: int
    wrapped_key: bytes


class AuthenticationErrorValue(NamedTuple):
    """S_ER_NA_1: an authentication error (its time stamp is the object's ``time``).

    Attributes:
        csq: challenge sequence number [0, 2**32 - 1].
        user: user number [0, 65535].
        association_id: AID [0, 65535].
        error_code: ERR [0, 255] (``AuthErrorCode`` where standard).
        text: the error text (UTF-8 on the wire; undecodable octets kept as surrogates).
    """

    csq: int
    user: int
    association_id: int
    error_code: int
    text: str


class AuthErrorCode(enum.IntEnum):
    """Error codes of S_ER_NA_1 (IEC 62351-5, as in DNP3 SAv5)."""

    AUTHENTICATION_FAILED = 1
    UNEXPECTED_RESPONSE = 2
    NO_RESPONSE = 3
    AGGRESSIVE_MODE_NOT_SUPPORTED = 4
    MAC_ALGORITHM_NOT_SUPPORTED = 5
    KEY_WRAP_ALGORITHM_NOT_SUPPORTED = 6
    AUTHORIZATION_FAILED = 7
    UPDATE_KEY_METHOD_NOT_PERMITTED = 8
    INVALID_SIGNATURE = 9
    INVALID_CERTIFICATION_DATA = 10
    UNKNOWN_USER = 11
    MAX_SESSION_KEY_STATUS_REQUESTS_EXCEEDED = 12


class SecurityData(NamedTuple):
    """The octets of a secure authentication message kept undecoded: one segment of a
    message sent in several ASDUs (the object's ``qualifier`` holds the segmentation
    octet), or the content of S_UC_NA_1 and S_US_NA_1..S_UF_NA_1 (certificates, update keys,
    signatures), which this codec leaves opaque."""

    data: bytes


Value = (SingleValue | DoubleValue | RegulatingValue | StepPositionValue | BitstringValue
         | NormalizedValue | ScaledValue | FloatingValue | BinaryCounterValue
         | ProtectionValue | ProtectionStartValue | ProtectionCommandValue
         | StatusChangeValue | InitializationValue | FreezeCode | FileReadyValue
         | SectionReadyValue | CallFileValue | LastSectionValue | AckFileValue
         | SegmentValue | DirectoryValue | QueryLogValue | SecurityStatisticValue
         | AuthenticationChallenge | AuthenticationReply | AggressiveModeRequest
         | KeyStatusRequest | KeyStatus | KeyChange | AuthenticationErrorValue | SecurityData
         | int)
