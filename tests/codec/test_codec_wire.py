"""Table-driven wire tests: APDUs from real captures and what they decode to.

The octets were extracted once with
``tshark -r wireshark-wiki_iec104.pcap -T fields -e frame.number -e tcp.payload`` (and the
same for ``wireshark-wiki_iec104-sq.pcapng``), both from ``../shared/captures/public``;
every expected value below is what tshark 4.0.17 displays for that APDU (frame number
in the comment). The table does not need the capture files at run time.
"""

from __future__ import annotations

import pytest

from iec104.codec import (
    ASDU,
    BitstringValue,
    Cause,
    DoubleValue,
    FloatingValue,
    Frame,
    Framer,
    IFrame,
    InformationObject,
    InitializationValue,
    Malformed,
    NormalizedValue,
    Quality,
    RegulatingValue,
    ScaledValue,
    SFrame,
    SingleValue,
    StepPositionValue,
    Time,
    TimeSize,
    TypeId,
    UFrame,
    UFunction,
    decode_apdu,
    decode_asdu,
    encode_apdu,
    encode_asdu,
)

T, C = TypeId, Cause
Q = Quality()
CA = 10  # the wiki capture's common address


def io(address: int, value: object = None, quality: Quality | None = None, time: Time | None = None,
       select: bool | None = None, qualifier: int | None = None) -> InformationObject:
    return InformationObject(address, value, quality, time, select, qualifier)  # type: ignore[arg-type]


def asdu(type_id: TypeId, cause: Cause, *objects: InformationObject, sq: bool = False,
         ca: int = CA) -> ASDU:
    return ASDU(type_id, sq, cause, False, False, 0, ca, objects)


def cp56(ms: int, minutes: int, hours: int = 8, day: int = 4, dow: int = 4, month: int = 7,
         year: int = 13) -> Time:
    return Time(TimeSize.SEVEN, ms, False, minutes, False, hours, dow, day, month, year)


WIRE = [
    # (wiki frame, APDU octets, APCI, ASDU or None)
    ("f4 U TESTFR act", "680443000000", UFrame(UFunction.TESTFR_ACT), None),
    ("f8 U STARTDT con", "68040b000000", UFrame(UFunction.STARTDT_CON), None),
    ("f15 S(13)", "680401001a00", SFrame(13), None),
    ("f9 C_IC_NA_1 Act QOI=20", "680e00000000640106000a0000000014", IFrame(0, 0, b""),
     asdu(T.C_IC_NA_1, C.ACTIVATION, io(0, qualifier=20))),
    ("f10 M_EI_NA_1 Init COI=0", "680e00000000460104000a0000000000", IFrame(0, 0, b""),
     asdu(T.M_EI_NA_1, C.INITIALIZED, io(0, InitializationValue(0, False)))),
    ("f12 M_SP_NA_1 Inrogen x4", "681a04000200010414000a0001000000020000000300000004000000",
     IFrame(2, 1, b""), asdu(T.M_SP_NA_1, C.INTERROGATED_STATION,
                             *[io(a, SingleValue.OFF, Q) for a in (1, 2, 3, 4)])),
    ("f25 M_SP_TB_1 Spont", "68154c0008001e0103000a000d000001c75d170884070d", IFrame(38, 4, b""),
     asdu(T.M_SP_TB_1, C.SPONTANEOUS, io(13, SingleValue.ON, Q, cp56(24007, 23)))),
    ("f20 C_SC_NA_1 Act", "680e040042002d0106000a0002000001", IFrame(2, 33, b""),
     asdu(T.C_SC_NA_1, C.ACTIVATION, io(2, SingleValue.ON, select=False, qualifier=0))),
    ("f35 C_DC_NA_1 ActCon", "680e54000c002e0107000a000e000002", IFrame(42, 6, b""),
     asdu(T.C_DC_NA_1, C.ACTIVATION_CONFIRMATION,
          io(14, DoubleValue.ON, select=False, qualifier=0))),
    ("f35 M_DP_TB_1 Spont", "681558000c001f0103000a000e000002e679170884070d", IFrame(44, 6, b""),
     asdu(T.M_DP_TB_1, C.SPONTANEOUS, io(14, DoubleValue.ON, Q, cp56(31206, 23)))),
    ("f39 C_RC_NA_1 Act", "680e0c005a002f0106000a0001000002", IFrame(6, 45, b""),
     asdu(T.C_RC_NA_1, C.ACTIVATION,
          io(1, RegulatingValue.HIGHER, select=False, qualifier=0))),
    ("f40 M_ST_NA_1 Spont", "680f5e000e00050103000a000100000100", IFrame(47, 7, b""),
     asdu(T.M_ST_NA_1, C.SPONTANEOUS, io(1, StepPositionValue(1, False), Q))),
    ("f43 M_ST_TB_1 Spont VTI=-1", "681664001000200103000a000c00007f00648f170884070d",
     IFrame(50, 8, b""), asdu(T.M_ST_TB_1, C.SPONTANEOUS,
                              io(12, StepPositionValue(-1, False), Q, cp56(36708, 23)))),
    ("f49 C_BO_NA_1 Act", "681110006600330106000a0003000002000000", IFrame(8, 51, b""),
     asdu(T.C_BO_NA_1, C.ACTIVATION, io(3, BitstringValue(b"\x02\x00\x00\x00")))),
    ("f55 M_BO_TB_1 Spont", "681970001400210103000a000e0000040000000040ae170884070d",
     IFrame(56, 10, b""), asdu(T.M_BO_TB_1, C.SPONTANEOUS,
                               io(14, BitstringValue(b"\x04\x00\x00\x00"), Q,
                                  cp56(44608, 23)))),
    ("f57 C_SE_NA_1 Act 0.03125", "681014007200300106000a00010000000400", IFrame(10, 57, b""),
     asdu(T.C_SE_NA_1, C.ACTIVATION,
          io(1, NormalizedValue(0.03125), select=False, qualifier=0))),
    ("f60 M_ME_NA_1 Spont 0.03125", "681076001600090103000a00010000000400", IFrame(59, 11, b""),
     asdu(T.M_ME_NA_1, C.SPONTANEOUS, io(1, NormalizedValue(0.03125), Q))),
    ("f63 M_ME_TD_1 Spont 0.25", "68177c001800220103000a000c000000200027cb170884070d",
     IFrame(62, 12, b""), asdu(T.M_ME_TD_1, C.SPONTANEOUS,
                               io(12, NormalizedValue(0.25), Q, cp56(52007, 23)))),
    ("f73 M_ME_NB_1 Spont 123", "681082001a000b0103000a000300007b0000", IFrame(65, 13, b""),
     asdu(T.M_ME_NB_1, C.SPONTANEOUS, io(3, ScaledValue(123), Q))),
    ("f73 C_SE_NB_1 ActTerm 123", "681080001a0031010a000a000300007b0000", IFrame(64, 13, b""),
     asdu(T.C_SE_NB_1, C.ACTIVATION_TERMINATION,
          io(3, ScaledValue(123), select=False, qualifier=0))),
    ("f76 M_ME_TE_1 Spont 456", "681788001c00230103000a000e0000c801006412180884070d",
     IFrame(68, 14, b""), asdu(T.M_ME_TE_1, C.SPONTANEOUS,
                               io(14, ScaledValue(456), Q, cp56(4708, 24)))),
    ("f78 C_SE_NC_1 Act 3.14", "68121c008a00320106000a00010000c3f5484000", IFrame(14, 69, b""),
     asdu(T.C_SE_NC_1, C.ACTIVATION,
          io(1, FloatingValue(3.140000104904175), select=False, qualifier=0))),
    ("f79 M_ME_NC_1 Spont 3.14", "68128e001e000d0103000a00010000c3f5484000", IFrame(71, 15, b""),
     asdu(T.M_ME_NC_1, C.SPONTANEOUS, io(1, FloatingValue(3.140000104904175), Q))),
    ("f88 M_ME_TF_1 Spont 9.87", "681994002000240103000a000c000085eb1d4100e337180884070d",
     IFrame(74, 16, b""), asdu(T.M_ME_TF_1, C.SPONTANEOUS,
                               io(12, FloatingValue(9.869999885559082), Q, cp56(14307, 24)))),
    # wireshark-wiki_iec104-sq.pcapng: SQ=1, 16 single points from one address
    ("sq1 M_SP_NA_1 SQ=1 IOA 0..15",
     "681d02000200019014001e0400000000000000000000000000000000000101", IFrame(1, 1, b""),
     asdu(T.M_SP_NA_1, C.INTERROGATED_STATION,
          *[io(a, SingleValue(a in (14, 15)), Q) for a in range(16)], sq=True, ca=1054)),
    ("sq2 M_SP_NA_1 SQ=1 IOA 16..31",
     "681d04000200019014001e0410000000010000000101000100000001010001", IFrame(2, 1, b""),
     asdu(T.M_SP_NA_1, C.INTERROGATED_STATION,
          *[io(a, SingleValue(a in (17, 21, 22, 24, 28, 29, 31)), Q) for a in range(16, 32)],
          sq=True, ca=1054)),
]


@pytest.mark.parametrize("name, octets, apci, expected", WIRE, ids=[w[0] for w in WIRE])
def test_wire(name: str, octets: str, apci: IFrame | SFrame | UFrame,
              expected: ASDU | None) -> None:
    raw = bytes.fromhex(octets)
    apdu = decode_apdu(raw)
    if isinstance(apci, IFrame):
        assert isinstance(apdu, IFrame)
        assert (apdu.ssn, apdu.rsn) == (apci.ssn, apci.rsn)
        assert apdu.asdu == raw[6:]
        decoded = decode_asdu(apdu.asdu)
        assert decoded == expected
        assert encode_asdu(decoded) == apdu.asdu
    else:
        assert apdu == apci
    assert encode_apdu(apdu) == raw
    # the framer finds it the same way, whole and byte by byte
    for chunks in ([raw], [raw[i:i + 1] for i in range(len(raw))]):
        framer = Framer()
        events: list[Frame | Malformed] = []
        for chunk in chunks:
            framer.feed(chunk)
            events.extend(framer)
        assert events == [Frame(0, raw, apdu)]


def test_whole_table_as_one_stream() -> None:
    """All table entries back to back, as they would arrive on one connection."""
    stream = b"".join(bytes.fromhex(w[1]) for w in WIRE)
    framer = Framer()
    framer.feed(stream)
    assert [e.raw.hex() for e in framer] == [w[1] for w in WIRE]  # type: ignore[union-attr]


def test_tshark_quirks_we_do_not_share() -> None:
    """Where tshark's rendering differs from our values (documented, not a disagreement).

    tshark shows BSI big-endian (wire 02 00 00 00 as 0x02000000 = 33554432); we keep the
    4 octets as they are on the wire. tshark shows NVA as raw / 32768 like we do.
    """
    octets = {w[0]: bytes.fromhex(w[1]) for w in WIRE}
    obj = decode_asdu(octets["f49 C_BO_NA_1 Act"][6:]).objects[0]  # type: ignore[union-attr]
    assert isinstance(obj.value, BitstringValue)
    assert int.from_bytes(obj.value.value, "big") == 33554432
    nva = decode_asdu(octets["f57 C_SE_NA_1 Act 0.03125"][6:]).objects[0]  # type: ignore[union-attr]
    assert isinstance(nva.value, NormalizedValue) and nva.value.value * 32768 == 1024
