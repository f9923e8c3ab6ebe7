"""What tshark 4.0.17's IEC 104 dissector decodes of each type, and the differences tolerated.

Theory of operation
-------------------
:data:`KIND` names the element layout tshark decodes for each type ID (the comparison in
:mod:`iec104.verify.compare` checks the keys of that layout); :data:`TSHARK_RAW` lists the type
IDs tshark shows only as the first IOA plus raw octets (there the first IOA and the raw octets
are compared). Every standard type ID is in exactly one of the two. :data:`KNOWN_DIFFERENCES`
states, once, every kind of difference between the two dissections that is counted rather
than reported, and why.
"""

from __future__ import annotations

from ..codec import TypeId

__all__ = ["KIND", "KNOWN_DIFFERENCES", "TSHARK_RAW"]

T = TypeId

KIND: dict[TypeId, str] = {
    **dict.fromkeys((T.M_SP_NA_1, T.M_SP_TA_1, T.M_SP_TB_1), "siq"),
    **dict.fromkeys((T.M_DP_NA_1, T.M_DP_TA_1, T.M_DP_TB_1), "diq"),
    **dict.fromkeys((T.M_ST_NA_1, T.M_ST_TA_1, T.M_ST_TB_1), "vti"),
    **dict.fromkeys((T.M_BO_NA_1, T.M_BO_TA_1, T.M_BO_TB_1), "bsi"),
    **dict.fromkeys((T.M_ME_NA_1, T.M_ME_TA_1, T.M_ME_TD_1, T.M_ME_ND_1), "nva"),
    **dict.fromkeys((T.M_ME_NB_1, T.M_ME_TB_1, T.M_ME_TE_1), "sva"),
    **dict.fromkeys((T.M_ME_NC_1, T.M_ME_TC_1, T.M_ME_TF_1), "flt"),
    **dict.fromkeys((T.M_IT_NA_1, T.M_IT_TA_1, T.M_IT_TB_1), "bcr"),
    **dict.fromkeys((T.C_SC_NA_1, T.C_SC_TA_1, T.C_DC_NA_1, T.C_DC_TA_1, T.C_RC_NA_1,
                     T.C_RC_TA_1), "command"),
    **dict.fromkeys((T.C_SE_NA_1, T.C_SE_TA_1), "nva"),
    **dict.fromkeys((T.C_SE_NB_1, T.C_SE_TB_1), "sva"),
    **dict.fromkeys((T.C_SE_NC_1, T.C_SE_TC_1), "flt"),
    **dict.fromkeys((T.C_BO_NA_1, T.C_BO_TA_1), "bsi"),
    T.M_EI_NA_1: "coi", T.C_IC_NA_1: "qualifier", T.C_RP_NA_1: "qualifier",
    T.C_CI_NA_1: "qcc", T.C_CS_NA_1: "time only",
    T.P_ME_NA_1: "nva", T.P_ME_NB_1: "sva", T.P_ME_NC_1: "flt",
}
"""What tshark decodes of each type's objects, by the element layout of the type."""

_NO_DECODER = "no element decoder in tshark's ASDU dissector: IOA + rawdata"
_NOT_104 = ("not in tshark's type-name table either (an IEC 101 type that IEC 104 excludes); "
            + _NO_DECODER)
TSHARK_RAW: dict[TypeId, str] = {
    T.M_EP_TA_1: _NOT_104, T.M_EP_TB_1: _NOT_104, T.M_EP_TC_1: _NOT_104,
    T.M_PS_NA_1: _NO_DECODER,
    T.M_EP_TD_1: _NO_DECODER, T.M_EP_TE_1: _NO_DECODER, T.M_EP_TF_1: _NO_DECODER,
    T.S_IT_TC_1: "IEC 62351-5 security statistics: named, but " + _NO_DECODER,
    T.C_RD_NA_1: "no information element, and tshark stops after the first IOA: the other "
                 "objects' IOAs come as rawdata",
    T.C_TS_NA_1: _NOT_104, T.C_CD_NA_1: _NOT_104,
    T.C_TS_TA_1: _NO_DECODER, T.P_AC_NA_1: _NO_DECODER,
    **dict.fromkeys((T.F_FR_NA_1, T.F_SR_NA_1, T.F_SC_NA_1, T.F_LS_NA_1, T.F_AF_NA_1,
                     T.F_SG_NA_1, T.F_DR_TA_1, T.F_SC_NB_1), "file transfer: " + _NO_DECODER),
}
"""Type IDs tshark 4.0.17 shows only as IOA + raw octets, and why."""

KNOWN_DIFFERENCES: dict[str, str] = {
    "junk prefix": (
        "octets that are not an APDU start (no 0x68): tshark reports them as a 'prefix' "
        "(iec60870_104.data) of the next APDU, in the frame that completes that APDU; we "
        "record them as a malformed row (apci null, error 'APCI: start octet ...') in the "
        "frame where they were seen, and the next APDU is clean. The octets are the same."),
    "bad APCI": (
        "an APCI that breaks the framing rules: a U- or S-frame whose length octet is not 4 "
        "(snort3 '68 05 07 ...'), an S-frame with reserved control bits set (snort3 "
        "'68 04 05 00 28 00'), an unknown U function (0x05), an I-frame with no ASDU. tshark "
        "dissects the fields anyway (and flags only some of them); we record the octets as one "
        "malformed row with the reason and resynchronise on the next APDU. Such frames are "
        "counted under 'flagged by both' when our row carries an error."),
    "truncated ASDU": (
        "an ASDU shorter than its header or its VSQ count (snort3 SQ=1 VSQ=127, ITI types 24/26 "
        "with 2-4 octets): tshark decodes as many objects as the bytes hold and flags the frame "
        "malformed; we keep the header fields (compared) and record the APDU with an error and "
        "no objects (a partial ASDU is not trusted object by object)."),
    "undecoded type": (
        "tshark 4.0.17 has no element decoder for some type IDs (TSHARK_RAW: M_EP_TD/TE/TF_1 "
        "38-40, C_RD_NA_1 102, C_TS_TA_1 107, P_AC_NA_1 113, file transfer 120-127, ...): it "
        "shows the first IOA and the rest as raw octets. Only the first IOA is compared; we "
        "decode every object."),
    "secure authentication": (
        "IEC 62351-5 messages (type IDs 81-95) carry one object without an IOA; tshark 4.0.17 "
        "names 81-87 but shows the first 3 octets after the data unit identifier as an 'IOA' "
        "and the rest as raw octets (and S_KR_NA_1, 2 octets, as malformed): those octets "
        "must be ours, in a 2/2/3 profile; we decode the message's fields."),
    "unknown type": (
        "a type ID that is not defined in IEC 104 (ITI's 24 and 26): we keep the header and "
        "record 'unknown type ID n: objects not decoded'; tshark shows the header too."),
    "invalid time tag": (
        "a CP56Time2a that is no calendar time (e.g. day 0, month 0): tshark shows the raw "
        "components; our time_tag is null and error says 'time tag: ... out of range', so "
        "there is nothing to compare the components with."),
    "summer time": (
        "a CP56Time2a with SU=1: tshark 4.0 converts it with mktime as local summer time and "
        "shows it one hour before its hour field; time_tag keeps the fields (the device's "
        "wall clock, read as UTC)."),
    "year above 99": (
        "a CP56Time2a year field above the standard's 99 (ITI's 2009 capture sends 109): "
        "both show the same date (2009, the 7-bit field read as 1900 + 109); we also flag "
        "the row, error 'time tag: year 109 outside [0, 99], ...'."),
}
"""Every kind of difference the comparison tolerates (counted, not reported), and why."""
