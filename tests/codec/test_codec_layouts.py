"""The element layouts (``codec.elements.Layout``) agree with the scalar element decoders,
and the data unit identifier's layout (``codec.asdu.HeaderLayout``) with the encoder.

The columnar dissector reads fields where the layouts say they are; the scalar decoders are
what the driver and ``read -V`` use. Every declared field is checked against the decoder for
every value of the octet that holds it (and random multi-octet values), so the two cannot
drift apart.
"""

from __future__ import annotations

import math
import random
import struct

import pytest

from iec104.codec import (
    ASDU,
    ASDU_AT,
    PROFILES,
    IFrame,
    InformationObject,
    Profile,
    Quality,
    SingleValue,
    TypeId,
    decode_header,
    encode_apdu,
    encode_asdu,
    header_layout,
)
from iec104.codec.elements import ELEMENTS, Layout, ValueKind
from iec104.codec.header import CAUSE_MASK, COUNT_MASK, NEGATIVE_BIT, SQ_BIT, TEST_BIT
from iec104.records.builder import numeric_value

LAID_OUT = sorted(t for t, c in ELEMENTS.items() if c.layout is not None)


def _number(layout: Layout, element: bytes) -> float | None:
    """What the layout says the value is (a reference written from the standard)."""
    o, kind = layout.value_at, layout.kind
    if kind is ValueKind.NONE:
        return None
    if kind is ValueKind.CODE:
        return float((element[o] >> layout.value_shift) & layout.value_mask)
    if kind is ValueKind.STEP:
        v = element[o] & layout.value_mask
        return float(v - 128 if v & 0x40 else v)
    if kind is ValueKind.UINT16:
        return float(struct.unpack_from("<H", element, o)[0])
    if kind is ValueKind.UINT32:
        return float(struct.unpack_from("<I", element, o)[0])
    if kind is ValueKind.NORMALIZED:
        return struct.unpack_from("<h", element, o)[0] / 32768
    if kind is ValueKind.SCALED:
        return float(struct.unpack_from("<h", element, o)[0])
    if kind is ValueKind.FLOAT:
        return float(struct.unpack_from("<f", element, o)[0])
    assert kind is ValueKind.COUNTER
    return float(struct.unpack_from("<i", element, o)[0])


def _elements(layout: Layout) -> list[bytes]:
    """Every value of each octet (others zero or random), plus random elements."""
    rng = random.Random(104)
    out = []
    for position in range(layout.size):
        for b in range(256):
            for fill in (0, None):
                e = bytearray(rng.randrange(256) if fill is None else 0
                              for _ in range(layout.size))
                e[position] = b
                out.append(bytes(e))
    out += [rng.randbytes(layout.size) for _ in range(500)]
    return out or [b""]


@pytest.mark.parametrize("type_id", LAID_OUT)
def test_layout_matches_decoder(type_id: int) -> None:
    codec = ELEMENTS[type_id]
    layout = codec.layout
    assert layout is not None
    assert codec.size == layout.size + int(codec.time_size or 0)
    assert layout.value_at + layout.value_width <= layout.size
    for element in _elements(layout):
        value, quality, select, qualifier = codec.decode_untimed(element, 0)
        expected = _number(layout, element)
        number = numeric_value(value)
        if expected is None or math.isnan(expected):
            assert number is None or math.isnan(number), (element, value)
        else:
            assert number == expected, (element, value)
        if layout.quality_at is None:
            assert quality is None, (element, quality)
        else:
            b = element[layout.quality_at] & layout.quality_mask
            assert quality == Quality(bool(b & 0x80), bool(b & 0x40), bool(b & 0x20),
                                      bool(b & 0x10), bool(b & 0x01)), element
        if layout.select_at is None:
            assert select is None
        else:
            assert select == bool(element[layout.select_at] & 0x80), element
        if layout.qualifier_at is None:
            assert qualifier is None
        else:
            assert qualifier == ((element[layout.qualifier_at] >> layout.qualifier_shift)
                                 & layout.qualifier_mask), element


def test_the_common_types_are_laid_out() -> None:
    """The types of ordinary SCADA traffic take the columnar path (see the dissector)."""
    laid_out = {ELEMENTS[t].layout is not None for t in (1, 3, 9, 11, 13, 30, 31, 34, 35, 36,
                                                         45, 46, 50, 100, 103)}
    assert laid_out == {True}


# -- the data unit identifier (codec.asdu.HeaderLayout) ----------------------------------------

@pytest.mark.parametrize("profile", PROFILES, ids=str)
def test_header_layout_reads_what_the_encoder_wrote(profile: Profile) -> None:
    """Every field of the identifier where ``header_layout`` says it lies, in ASDUs that
    ``encode_asdu`` wrote (random fields, both SQ values), and in the APDU after
    ``ASDU_AT``; the first object's address follows at ``objects_at``."""
    rng = random.Random(str(profile))
    layout = header_layout(profile)
    assert (layout.objects_at, layout.ioa_size) == (
        2 + profile.cot_size + profile.ca_size, profile.ioa_size)
    for _ in range(300):
        sequence = rng.random() < 0.5
        count = rng.randint(1, 5)
        first = rng.randrange(0, (1 << (8 * profile.ioa_size)) - count)
        asdu = ASDU(TypeId.M_SP_NA_1, sequence, rng.randrange(64), rng.random() < 0.5,
                    rng.random() < 0.5, rng.randrange(256) if profile.cot_size == 2 else 0,
                    rng.randrange(1 << (8 * profile.ca_size)),
                    tuple(InformationObject(first + i if sequence else rng.randrange(
                        1 << (8 * profile.ioa_size)), SingleValue.ON, Quality())
                          for i in range(count)))
        data = encode_asdu(asdu, profile)
        apdu = encode_apdu(IFrame(1, 2, data))
        assert apdu[ASDU_AT:] == data
        assert data[layout.type_id_at] == asdu.type_id
        vsq, cot = data[layout.vsq_at], data[layout.cot_at]
        assert (bool(vsq & SQ_BIT), vsq & COUNT_MASK) == (sequence, count)
        assert (cot & CAUSE_MASK, bool(cot & NEGATIVE_BIT), bool(cot & TEST_BIT)) == (
            asdu.cause, asdu.negative, asdu.test)
        assert (0 if layout.oa_at is None else data[layout.oa_at]) == asdu.originator
        assert int.from_bytes(data[layout.ca_at:layout.ca_at + layout.ca_size],
                              "little") == asdu.common_address
        at = layout.objects_at
        assert int.from_bytes(data[at:at + layout.ioa_size], "little") == \
            asdu.objects[0].address
        assert decode_header(data, profile)[1] == at
