"""APCI: I/S/U frames, control field checks, sequence number arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iec104.codec import (
    MAX_ASDU_SIZE,
    DecodeError,
    IFrame,
    SFrame,
    UFrame,
    UFunction,
    decode_apdu,
    encode_apdu,
    seq_add,
    seq_diff,
)
from iec104.codec.apci import APCI, CONTROL_RULES, SEQ_MODULO, apdu_run, apdu_size, check_apdu
from tests.codec.test_codec_asdu import CODEC_SETTINGS

seq = st.integers(0, SEQ_MODULO - 1)
asdu_bytes = st.binary(min_size=1, max_size=MAX_ASDU_SIZE)
apdus = st.one_of(st.builds(IFrame, seq, seq, asdu_bytes), st.builds(SFrame, seq),
                  st.builds(UFrame, st.sampled_from(UFunction)))


@settings(CODEC_SETTINGS, max_examples=300)
@given(apdus)
def test_apdu_roundtrip(apdu: IFrame | SFrame | UFrame) -> None:
    raw = encode_apdu(apdu)
    assert raw[0] == 0x68 and raw[1] == len(raw) - 2
    assert decode_apdu(raw) == apdu
    assert decode_apdu(memoryview(raw)) == apdu
    assert decode_apdu(bytearray(raw)) == apdu


@st.composite
def valid_apdu_octets(draw: st.DrawFn) -> bytes:
    """Valid APDU octets built bit by bit (not through the encoder)."""
    kind = draw(st.sampled_from("ISU"))
    if kind == "I":
        asdu = draw(asdu_bytes)
        c1, c2, c3, c4 = draw(st.integers(0, 255)) & 0xFE, draw(st.integers(0, 255)), \
            draw(st.integers(0, 255)) & 0xFE, draw(st.integers(0, 255))
        return bytes((0x68, 4 + len(asdu), c1, c2, c3, c4)) + asdu
    if kind == "S":
        return bytes((0x68, 4, 0x01, 0, draw(st.integers(0, 255)) & 0xFE,
                      draw(st.integers(0, 255))))
    return bytes((0x68, 4, draw(st.sampled_from([0x07, 0x0B, 0x13, 0x23, 0x43, 0x83])), 0, 0,
                  0))


@settings(CODEC_SETTINGS, max_examples=300)
@given(valid_apdu_octets())
def test_apdu_octets_roundtrip(raw: bytes) -> None:
    assert encode_apdu(decode_apdu(raw)) == raw


@pytest.mark.parametrize("raw, apdu", [
    ("680443000000", UFrame(UFunction.TESTFR_ACT)),
    ("680483000000", UFrame(UFunction.TESTFR_CON)),
    ("680407000000", UFrame(UFunction.STARTDT_ACT)),
    ("68040b000000", UFrame(UFunction.STARTDT_CON)),
    ("680413000000", UFrame(UFunction.STOPDT_ACT)),
    ("680423000000", UFrame(UFunction.STOPDT_CON)),
    ("680401001a00", SFrame(13)),
    ("68040100feff", SFrame(32767)),
    ("680e02000200640107000a0000000014", IFrame(1, 1, bytes.fromhex("640107000a0000000014"))),
    ("6805feff feff 01".replace(" ", ""), IFrame(32767, 32767, b"\x01")),
])
def test_known_frames(raw: str, apdu: IFrame | SFrame | UFrame) -> None:
    assert decode_apdu(bytes.fromhex(raw)) == apdu
    assert encode_apdu(apdu).hex() == raw


@pytest.mark.parametrize("raw, offset, reason", [
    ("", 0, "shorter than 6"),
    ("6804010000", 5, "shorter than 6"),
    ("690401000000", 0, "start octet 0x69"),
    ("680301000000", 1, "outside [4, 253]"),
    ("68fe01000000" + "00" * 252, 1, "outside [4, 253]"),
    ("680501000000", 1, "does not match"),
    ("680601000000", 1, "does not match"),
    ("680400000000", 1, "I-frame without ASDU"),
    ("680500000100ff", 4, "bit 0 set"),
    ("680401000100", 4, "bit 0 set"),
    ("680401010000", 2, "S-frame control"),
    ("680405000000", 2, "S-frame control"),
    ("680501000000ff", 1, "S-frame with length 5"),
    ("680507000000ff", 1, "U-frame with length 5"),
    ("680403000000", 2, "not exactly one function"),
    ("68040f000000", 2, "not exactly one function"),
    ("6804c3000000", 2, "not exactly one function"),
    ("680407010000", 3, "octets 2-4 are not zero"),
    ("680407000100", 3, "octets 2-4 are not zero"),
    ("680407000001", 3, "octets 2-4 are not zero"),
])
def test_bad_control_field(raw: str, offset: int, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_apdu(bytes.fromhex(raw))
    assert err.value.offset == offset
    assert reason in err.value.reason


@settings(CODEC_SETTINGS, max_examples=500)
@given(st.binary(min_size=6, max_size=6))
def test_every_six_octet_control_field_decodes_or_is_rejected(raw: bytes) -> None:
    """Any 4-octet control field: a valid S/U frame re-encodes to itself, else DecodeError."""
    raw = b"\x68\x04" + raw[2:]
    try:
        apdu = decode_apdu(raw)
    except DecodeError:
        c1 = raw[2]
        valid_s = c1 == 0x01 and raw[3] == 0 and not raw[4] & 1
        valid_u = c1 in (0x07, 0x0B, 0x13, 0x23, 0x43, 0x83) and raw[3:] == b"\0\0\0"
        assert not (valid_s or valid_u)
    else:
        assert isinstance(apdu, (SFrame, UFrame))
        assert encode_apdu(apdu) == raw


def test_largest_and_smallest_iframe() -> None:
    biggest = IFrame(1, 2, bytes(range(249)))
    raw = encode_apdu(biggest)
    assert len(raw) == 255 and raw[1] == 253
    assert decode_apdu(raw) == biggest
    assert decode_apdu(encode_apdu(IFrame(0, 0, b"\x00"))) == IFrame(0, 0, b"\x00")


# -- sequence numbers -------------------------------------------------------------------

def test_seq_wraps_around() -> None:
    assert seq_add(32767, 1) == 0
    assert seq_add(32767, 2) == 1
    assert seq_add(0, -1) == 32767
    assert seq_diff(0, 32767) == 1
    assert seq_diff(5, 32760) == 13
    assert seq_diff(7, 7) == 0
    assert seq_diff(32767, 0) == 32767
    # the wire carries the wrapped number: N(S)=32767 then 0
    assert encode_apdu(IFrame(32767, 0, b"\x01"))[2:6] == bytes.fromhex("feff0000")
    assert encode_apdu(IFrame(seq_add(32767, 1), 0, b"\x01"))[2:6] == bytes(4)


@CODEC_SETTINGS
@given(seq, st.integers(-100_000, 100_000))
def test_seq_add_diff_are_inverse(start: int, n: int) -> None:
    later = seq_add(start, n)
    assert 0 <= later < SEQ_MODULO
    assert seq_diff(later, start) == n % SEQ_MODULO
    assert seq_add(start, seq_diff(later, start)) == later
    assert seq_diff(start, later) == (-n) % SEQ_MODULO


@CODEC_SETTINGS
@given(seq, st.integers(0, 200))
def test_consecutive_iframes_across_the_wrap(start: int, count: int) -> None:
    """Numbers from seq_add survive the wire and seq_diff counts the frames between."""
    numbers = [seq_add(start, i) for i in range(count + 1)]
    decoded = [decode_apdu(encode_apdu(IFrame(n, 0, b"\x01"))).ssn  # type: ignore[union-attr]
               for n in numbers]
    assert decoded == numbers
    assert seq_diff(decoded[-1], decoded[0]) == count


def _chain(data: bytes, offset: int, end: int) -> list[int]:
    """apdu_size over and over: the reference of apdu_run."""
    out = []
    while True:
        size = apdu_size(data[:end], offset)
        if not size or offset + size > end:
            return out
        offset += size
        out.append(offset)


@settings(CODEC_SETTINGS, max_examples=300)
@given(st.lists(st.one_of(st.binary(min_size=6, max_size=6),
                          st.sampled_from([b"\x68\x04\x01\x00\x02\x00",
                                           b"\x68\x04\x43\x00\x00\x00",
                                           b"\x68\x0e\x00\x00\x00\x00" + bytes(12)]),
                          st.binary(min_size=2, max_size=4).map(lambda b: b"\x68" + b)),
                max_size=12),
       st.integers(0, 3))
def test_apdu_run_is_apdu_size_over_and_over(parts: list[bytes], cut: int) -> None:
    """The control octets of every format, valid or not (random six-octet headers), APDUs
    cut short at the end."""
    data = b"".join(parts)
    end = max(0, len(data) - cut)
    for offset in range(min(len(data), 8)):
        assert apdu_run(data, offset, end) == _chain(data, offset, end)


def test_apdu_run_every_control_octet() -> None:
    for c1 in range(256):
        for rest in (b"\0\0\0", b"\0\1\0", b"\1\0\0", b"\0\0\1", b"\0\2\0"):
            for length in (3, 4, 5, 253, 254):
                data = bytes((0x68, length, c1)) + rest + bytes(max(0, length - 4)) * 2
                assert apdu_run(data, 0, len(data)) == _chain(data, 0, len(data))


def test_control_rules_are_check_apdus_verdict() -> None:
    """The yes/no table (what apdu_size, apdu_run and the framing by column apply) and
    check_apdu (the reasons) agree on every first control octet."""
    for c1 in range(256):
        for c2 in (0, 1, 0x80):
            for c3 in (0, 1, 2, 0xFF):
                for c4 in (0, 1):
                    for length in (3, 4, 5, 6, 253, 254):
                        data = bytes((0x68, length, c1, c2, c3, c4)) + bytes(max(0, length - 4))
                        _, _, word = APCI.unpack_from(data)
                        rule = CONTROL_RULES[c1]
                        ruled = (rule.min_length <= length <= rule.max_length
                                 and word & rule.mask == rule.value)
                        try:
                            check_apdu(data)
                        except DecodeError:
                            assert not ruled, data.hex()
                        else:
                            assert ruled, data.hex()
