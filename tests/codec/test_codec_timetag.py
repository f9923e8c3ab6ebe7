"""CP24Time2a / CP56Time2a: raw fields on the wire, explicit conversion to datetime."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iec104.codec import DecodeError, EncodeError, Time, TimeSize, cp56_year
from iec104.codec.timetag import decode_time, encode_time
from tests.codec.test_codec_asdu import CODEC_SETTINGS, cp24, cp56

UTC = dt.UTC
SEVEN, THREE = TimeSize.SEVEN, TimeSize.THREE


@CODEC_SETTINGS
@given(st.one_of(cp24, cp56))
def test_time_roundtrip(time: Time) -> None:
    raw = encode_time(time, time.size)
    assert len(raw) == time.size
    assert decode_time(raw, 0, time.size) == time
    # at an offset inside a larger buffer too
    assert decode_time(b"\xaa" * 5 + raw + b"\xbb", 5, time.size) == time


@settings(CODEC_SETTINGS, max_examples=300)
@given(st.binary(min_size=7, max_size=7))
def test_every_cp56_octet_string_roundtrips(raw: bytes) -> None:
    """All 56 bits are kept, reserved bits included, so any 7 octets re-encode unchanged."""
    assert encode_time(decode_time(raw, 0, SEVEN), SEVEN) == raw
    assert encode_time(decode_time(raw, 0, THREE), THREE) == raw[:3]


# Tags from the Wireshark wiki capture (frames 25 and 43), as tshark displays them.
@pytest.mark.parametrize("raw, fields, when", [
    ("c75d170884070d", (24007, False, 23, False, 8, 4, 4, 7, 13),
     dt.datetime(2013, 7, 4, 8, 23, 24, 7000, tzinfo=UTC)),
    ("648f170884070d", (36708, False, 23, False, 8, 4, 4, 7, 13),
     dt.datetime(2013, 7, 4, 8, 23, 36, 708000, tzinfo=UTC)),
    # IV, SU and day of week (Sunday = 7) set: 2024-03-31 02:59:59.999 (summer time starts)
    ("5fea bb82 ff 03 18".replace(" ", ""), (59999, True, 59, True, 2, 7, 31, 3, 24),
     dt.datetime(2024, 3, 31, 2, 59, 59, 999000, tzinfo=UTC)),
    # day of week unused (0)
    ("000000000101 00".replace(" ", ""), (0, False, 0, False, 0, 0, 1, 1, 0),
     dt.datetime(2000, 1, 1, tzinfo=UTC)),
])
def test_known_cp56(raw: str, fields: tuple, when: dt.datetime) -> None:
    time = decode_time(bytes.fromhex(raw), 0, SEVEN)
    assert time == Time(SEVEN, *fields)
    assert time.to_datetime() == when
    assert encode_time(time, SEVEN).hex() == raw


def test_flag_bits() -> None:
    base = Time(SEVEN, 0, False, 0, False, 0, 0, 1, 1, 0)
    assert encode_time(base._replace(invalid=True), SEVEN)[2] == 0x80
    assert encode_time(base._replace(summer_time=True), SEVEN)[3] == 0x80
    assert encode_time(base._replace(day_of_week=7), SEVEN)[4] == 0xE1
    assert encode_time(base._replace(reserved=1), SEVEN)[2] == 0x40  # RES1 (GEN in 101)
    assert encode_time(base._replace(reserved=0x06), SEVEN)[3] == 0x60  # RES2
    assert encode_time(base._replace(reserved=0x78), SEVEN)[5] == 0xF1  # RES3
    assert encode_time(base._replace(reserved=0x80), SEVEN)[6] == 0x80  # RES4
    cp24 = Time(THREE, 1234, True, 5, reserved=1)
    assert encode_time(cp24, THREE) == bytes((0xD2, 0x04, 0xC5))


@settings(CODEC_SETTINGS, max_examples=200)
@given(st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2069, 12, 31, 23, 59, 59)),
       st.booleans(), st.booleans())
def test_datetime_roundtrip(when: dt.datetime, invalid: bool, summer: bool) -> None:
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    time = Time.from_datetime(when, invalid=invalid, summer_time=summer)
    assert time.invalid is invalid and time.summer_time is summer
    assert time.day_of_week == when.isoweekday()
    assert time.years == when.year % 100
    assert time.to_datetime() == when.replace(tzinfo=UTC)
    zone = ZoneInfo("Europe/Vienna")
    assert time.to_datetime(zone) == when.replace(tzinfo=zone)
    # and through the wire
    assert decode_time(encode_time(time, SEVEN), 0, SEVEN) == time


def test_century() -> None:
    time = Time.from_datetime(dt.datetime(2095, 6, 1), century=2000)
    assert time.years == 95
    assert time.to_datetime(century=2000) == dt.datetime(2095, 6, 1, tzinfo=UTC)
    assert time.to_datetime() == dt.datetime(1995, 6, 1, tzinfo=UTC)  # Wireshark's rule
    for year in (2070, 2100, 1969):
        with pytest.raises(EncodeError) as err:
            Time.from_datetime(dt.datetime(year, 1, 1))
        assert err.value.field == "years" and "[1970, 2069]" in str(err.value)


@pytest.mark.parametrize(("years", "year"), [(0, 2000), (9, 2009), (69, 2069), (70, 1970),
                                             (99, 1999), (100, 2000), (109, 2009), (127, 2027)])
def test_cp56_year_follows_wireshark(years: int, year: int) -> None:
    """tshark: ``tm_year = year & 0x7F; if (tm_year < 70) tm_year += 100`` (years since
    1900). The ITI 2009 capture sends 109 for 2009: not 2109."""
    assert cp56_year(years) == year
    time = Time(SEVEN, 0, False, 0, False, 0, 0, 13, 8, years)
    assert time.to_datetime() == dt.datetime(year, 8, 13, tzinfo=UTC)


@pytest.mark.parametrize("field, value", [
    ("months", 0), ("months", 13), ("day_of_month", 0), ("day_of_month", 31),
    ("hours", 24), ("minutes", 60), ("milliseconds", 60000),
])
def test_out_of_calendar_cp56_is_a_decode_error(field: str, value: int) -> None:
    """The wire can carry month 13 etc.; only the conversion to datetime refuses it."""
    time = Time(SEVEN, 0, False, 0, False, 0, 0, 30, 4, 24)._replace(**{field: value})  # type: ignore[arg-type]
    assert decode_time(encode_time(time, SEVEN), 0, SEVEN) == time
    with pytest.raises(DecodeError):
        time.to_datetime()


# -- CP24Time2a needs a reference -------------------------------------------------------

def test_cp24_needs_a_reference() -> None:
    with pytest.raises(ValueError, match="reference"):
        Time(THREE, 0, False, 0).to_datetime()


@pytest.mark.parametrize("tag, reference, expected", [
    ((30_000, 10), "10:10:45", "10:10:30"),   # same minute
    ((30_000, 59), "11:00:10", "10:59:30"),   # previous hour
    ((5_000, 11), "10:10:45", "10:11:05"),    # device clock slightly ahead: still this hour
    ((59_000, 9), "10:10:00", "10:09:59"),
    ((10_000, 0), "10:59:30", "11:00:10"),    # slightly ahead, across the hour
    ((30_000, 0), "10:59:30", "11:00:30"),    # exactly reference + 1 minute
    ((31_000, 0), "10:59:30", "10:00:31"),    # later than that: an hour ago
])
def test_cp24_reference(tag: tuple[int, int], reference: str, expected: str) -> None:
    day = "2024-05-06T"
    ref = dt.datetime.fromisoformat(day + reference).replace(tzinfo=UTC)
    got = Time(THREE, tag[0], False, tag[1]).to_datetime(reference=ref)
    assert got == dt.datetime.fromisoformat(day + expected).replace(tzinfo=UTC)


@settings(CODEC_SETTINGS, max_examples=300)
@given(st.integers(0, 59_999), st.integers(0, 59),
       st.datetimes(min_value=dt.datetime(2001, 1, 1), max_value=dt.datetime(2098, 1, 1)))
def test_cp24_is_the_latest_matching_instant(ms: int, minutes: int, ref: dt.datetime) -> None:
    """As documented: the latest instant not after reference + 1 minute with these fields."""
    ref = ref.replace(tzinfo=UTC)
    got = Time(THREE, ms, False, minutes).to_datetime(reference=ref)
    assert got.minute == minutes and got.second * 1000 + got.microsecond // 1000 == ms
    limit = ref + dt.timedelta(minutes=1)
    assert got <= limit < got + dt.timedelta(hours=1)


def test_cp24_out_of_range() -> None:
    ref = dt.datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(DecodeError):
        Time(THREE, 60_000, False, 0).to_datetime(reference=ref)
    with pytest.raises(DecodeError):
        Time(THREE, 0, False, 60).to_datetime(reference=ref)


# -- encoding checks every field ----------------------------------------------------------

GOOD56 = Time(SEVEN, 0, False, 0, False, 0, 0, 1, 1, 0)


@pytest.mark.parametrize("time, size, field", [
    (GOOD56._replace(milliseconds=65536), SEVEN, "time.milliseconds"),
    (GOOD56._replace(milliseconds=-1), SEVEN, "time.milliseconds"),
    (GOOD56._replace(minutes=64), SEVEN, "time.minutes"),
    (GOOD56._replace(hours=32), SEVEN, "time.hours"),
    (GOOD56._replace(day_of_week=8), SEVEN, "time.day_of_week"),
    (GOOD56._replace(day_of_month=32), SEVEN, "time.day_of_month"),
    (GOOD56._replace(months=16), SEVEN, "time.months"),
    (GOOD56._replace(years=128), SEVEN, "time.years"),
    (GOOD56._replace(years=1.5), SEVEN, "time.years"),  # type: ignore[arg-type]
    (GOOD56._replace(reserved=256), SEVEN, "time.reserved"),
    (GOOD56._replace(hours=None), SEVEN, "time.hours"),
    (GOOD56._replace(summer_time=None), SEVEN, "time.summer_time"),
    (Time(THREE, 0, False, 0, reserved=2), THREE, "time.reserved"),
    (Time(THREE, 0, False, 64), THREE, "time.minutes"),
    (GOOD56, THREE, "time.size"),
    (Time(THREE, 0, False, 0), SEVEN, "time.size"),
    ("12:00", SEVEN, "time"),
])
def test_encode_error_names_the_field(time: Time, size: TimeSize, field: str) -> None:
    with pytest.raises(EncodeError) as err:
        encode_time(time, size)
    assert err.value.field == field
    assert str(err.value).startswith(field + ":")


def test_civil_from_days() -> None:
    """Days since 1970 -> (year, month, day) as ``datetime.date`` counts them, for ints and,
    element-wise, for numpy arrays (the one-line view's dates)."""
    import datetime
    import random

    import numpy as np

    from iec104.codec.timetag import civil_from_days

    epoch = datetime.date(1970, 1, 1)
    rng = random.Random(56)
    days = [0, -1, 59, 60, 365, 10_956, -25_567, 2_932_896, -719_162] + [
        rng.randint(-719_162, 2_932_896) for _ in range(5000)]
    for d in days:
        when = epoch + datetime.timedelta(days=d)
        assert civil_from_days(d) == (when.year, when.month, when.day)
    year, month, day = civil_from_days(np.array(days, np.int64))
    assert list(zip(year.tolist(), month.tolist(), day.tolist(), strict=True)) == [
        civil_from_days(d) for d in days]
