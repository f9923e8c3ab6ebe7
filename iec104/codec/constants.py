"""Wire codes of IEC 60870-5-101/104, named by the standard's mnemonics.

Unknown or private values decode to plain ``int`` (see :func:`to_type_id`,
:func:`to_cause`) so that a dissector can record them and a driver can refuse them.
"""

from __future__ import annotations

import enum


class TypeId(enum.IntEnum):
    """Type identification (1 octet, [1, 255])."""

    # process information in monitor direction
    M_SP_NA_1 = 1
    M_SP_TA_1 = 2
    M_DP_NA_1 = 3
    M_DP_TA_1 = 4
    M_ST_NA_1 = 5
    M_ST_TA_1 = 6
    M_BO_NA_1 = 7
    M_BO_TA_1 = 8
    M_ME_NA_1 = 9
    M_ME_TA_1 = 10
    M_ME_NB_1 = 11
    M_ME_TB_1 = 12
    M_ME_NC_1 = 13
    M_ME_TC_1 = 14
    M_IT_NA_1 = 15
    M_IT_TA_1 = 16
    M_EP_TA_1 = 17
    M_EP_TB_1 = 18
    M_EP_TC_1 = 19
    M_PS_NA_1 = 20
    M_ME_ND_1 = 21
    M_SP_TB_1 = 30
    M_DP_TB_1 = 31
    M_ST_TB_1 = 32
    M_BO_TB_1 = 33
    M_ME_TD_1 = 34
    M_ME_TE_1 = 35
    M_ME_TF_1 = 36
    M_IT_TB_1 = 37
    M_EP_TD_1 = 38
    M_EP_TE_1 = 39
    M_EP_TF_1 = 40
    # IEC 62351-5 / 60870-5-7 secure authentication (see security.py)
    S_IT_TC_1 = 41
    # process information in control direction
    C_SC_NA_1 = 45
    C_DC_NA_1 = 46
    C_RC_NA_1 = 47
    C_SE_NA_1 = 48
    C_SE_NB_1 = 49
    C_SE_NC_1 = 50
    C_BO_NA_1 = 51
    C_SC_TA_1 = 58
    C_DC_TA_1 = 59
    C_RC_TA_1 = 60
    C_SE_TA_1 = 61
    C_SE_TB_1 = 62
    C_SE_TC_1 = 63
    C_BO_TA_1 = 64
    # system information in monitor direction
    M_EI_NA_1 = 70
    # IEC 62351-5 / 60870-5-7 secure authentication messages (see security.py)
    S_CH_NA_1 = 81
    S_RP_NA_1 = 82
    S_AR_NA_1 = 83
    S_KR_NA_1 = 84
    S_KS_NA_1 = 85
    S_KC_NA_1 = 86
    S_ER_NA_1 = 87
    S_UC_NA_1 = 88
    S_US_NA_1 = 90
    S_UQ_NA_1 = 91
    S_UR_NA_1 = 92
    S_UK_NA_1 = 93
    S_UA_NA_1 = 94
    S_UF_NA_1 = 95
    # system information in control direction
    C_IC_NA_1 = 100
    C_CI_NA_1 = 101
    C_RD_NA_1 = 102
    C_CS_NA_1 = 103
    C_TS_NA_1 = 104
    C_RP_NA_1 = 105
    C_CD_NA_1 = 106
    C_TS_TA_1 = 107
    # parameters in control direction
    P_ME_NA_1 = 110
    P_ME_NB_1 = 111
    P_ME_NC_1 = 112
    P_AC_NA_1 = 113
    # file transfer
    F_FR_NA_1 = 120
    F_SR_NA_1 = 121
    F_SC_NA_1 = 122
    F_LS_NA_1 = 123
    F_AF_NA_1 = 124
    F_SG_NA_1 = 125
    F_DR_TA_1 = 126
    F_SC_NB_1 = 127


class Cause(enum.IntEnum):
    """Cause of transmission (6 bits, [0, 63]).

    Member names follow the seed API (hat-drivers); ``Cause.SPONTANEOUS`` == 3.
    """

    UNDEFINED = 0
    PERIODIC = 1
    BACKGROUND_SCAN = 2
    SPONTANEOUS = 3
    INITIALIZED = 4
    REQUEST = 5
    ACTIVATION = 6
    ACTIVATION_CONFIRMATION = 7
    DEACTIVATION = 8
    DEACTIVATION_CONFIRMATION = 9
    ACTIVATION_TERMINATION = 10
    REMOTE_COMMAND = 11
    LOCAL_COMMAND = 12
    FILE_TRANSFER = 13
    INTERROGATED_STATION = 20
    INTERROGATED_GROUP01 = 21
    INTERROGATED_GROUP02 = 22
    INTERROGATED_GROUP03 = 23
    INTERROGATED_GROUP04 = 24
    INTERROGATED_GROUP05 = 25
    INTERROGATED_GROUP06 = 26
    INTERROGATED_GROUP07 = 27
    INTERROGATED_GROUP08 = 28
    INTERROGATED_GROUP09 = 29
    INTERROGATED_GROUP10 = 30
    INTERROGATED_GROUP11 = 31
    INTERROGATED_GROUP12 = 32
    INTERROGATED_GROUP13 = 33
    INTERROGATED_GROUP14 = 34
    INTERROGATED_GROUP15 = 35
    INTERROGATED_GROUP16 = 36
    INTERROGATED_COUNTER = 37
    INTERROGATED_COUNTER01 = 38
    INTERROGATED_COUNTER02 = 39
    INTERROGATED_COUNTER03 = 40
    INTERROGATED_COUNTER04 = 41
    UNKNOWN_TYPE = 44
    UNKNOWN_CAUSE = 45
    UNKNOWN_ASDU_ADDRESS = 46
    UNKNOWN_IO_ADDRESS = 47


_TYPE_IDS = {m.value: m for m in TypeId}
_CAUSES = {m.value: m for m in Cause}
# names precomputed: Enum.name is a descriptor, slow on a per-row hot path
_TYPE_NAMES = {m.value: m.name for m in TypeId}
_CAUSE_NAMES = {m.value: m.name for m in Cause}


def to_type_id(value: int) -> TypeId | int:
    """``TypeId`` member for a standard type ID, else the plain int."""
    return _TYPE_IDS.get(value, value)


def to_cause(value: int) -> Cause | int:
    """``Cause`` member for a standard cause, else the plain int."""
    return _CAUSES.get(value, value)


def type_name(value: int) -> str:
    """Mnemonic of a type ID (``'M_ME_NC_1'``), or ``'TYPE_<n>'`` when not standard."""
    name = _TYPE_NAMES.get(value)
    return name if name is not None else f"TYPE_{value}"


def cause_name(value: int) -> str:
    """Name of a cause (``'SPONTANEOUS'``), or ``'CAUSE_<n>'`` when not standard."""
    name = _CAUSE_NAMES.get(value)
    return name if name is not None else f"CAUSE_{value}"
