"""Time tags CP24Time2a, CP56Time2a (and CP16Time2a elapsed times).

A :class:`Time` keeps the raw fields exactly as on the wire, so a capture decodes the
same way tomorrow as today; conversion to ``datetime`` happens only when asked, with an
explicit time zone (and, for the 3-octet CP24Time2a, a reference time that supplies the
missing hour and date).

CP56Time2a layout (7 octets)::

    ms (2 octets, LE) | IV RES1 min(6) | SU RES2(2) hour(5) | DOW(3) day(5) | RES3(4) month(4) | RES4 year(7)

CP24Time2a is the first three octets. Reserved bits are kept in ``reserved`` (bit 0 RES1,
bits 1-2 RES2, bits 3-6 RES3, bit 7 RES4) so that re-encoding gives the same octets.

The standard gives the year as 0..99 without a century. Every conversion to a date follows
Wireshark (:func:`cp56_year`): 0-69 are 2000-2069 and 70-127 are 1970-2027, so the 7-bit
field's out-of-range 109 (sent by some devices for 2009) is 2009, not 2109.

Two conversions to ``datetime`` exist:

* :meth:`Time.to_datetime` / :meth:`Time.from_datetime` (recommended): the caller names the
  zone the device's clock runs in; nothing depends on the machine running the code.
* :func:`time_from_datetime` / :func:`time_to_datetime`: the seed API's module-level helpers
  (hat-drivers), kept with their meaning: the tag holds the *local* wall-clock time of this
  machine (its zone and summer time, as ``time.localtime`` sees them), and two-digit years
  below 70 are 20xx, the others 19xx (:func:`cp56_year`).
"""

from __future__ import annotations

import datetime as _dt
import enum
import time as _time
from typing import Any, NamedTuple

from .errors import DecodeError, DecodeReason, EncodeError


class TimeSize(enum.IntEnum):
    """Octets of a time tag."""

    THREE = 3
    SEVEN = 7


class Time(NamedTuple):
    """Raw time tag fields.

    Every field has a default, so the seed API's keyword construction
    ``Time(milliseconds=..., invalid=..., minutes=..., ..., years=...)`` makes a CP56Time2a.

    Attributes:
        size: ``TimeSize.THREE`` (CP24Time2a) or ``TimeSize.SEVEN`` (CP56Time2a).
        milliseconds: milliseconds within the minute, [0, 59999] (wire allows 65535).
        invalid: IV bit.
        minutes: [0, 59] (wire allows 63).
        summer_time: SU bit; None for CP24.
        hours: [0, 23] (wire allows 31); None for CP24.
        day_of_week: [1, 7] Monday..Sunday, 0 when unused; None for CP24.
        day_of_month: [1, 31]; None for CP24.
        months: [1, 12] (wire allows 15); None for CP24.
        years: [0, 99], years since 2000 by default; None for CP24.
        reserved: the reserved bits, packed (see module docstring), normally 0.
    """

    size: TimeSize = TimeSize.SEVEN
    milliseconds: int = 0
    invalid: bool = False
    minutes: int = 0
    summer_time: bool | None = None
    hours: int | None = None
    day_of_week: int | None = None
    day_of_month: int | None = None
    months: int | None = None
    years: int | None = None
    reserved: int = 0

    def to_datetime(self, tz: _dt.tzinfo = _dt.UTC, *,
                    reference: _dt.datetime | None = None,
                    century: int | None = None) -> _dt.datetime:
        """Convert to an aware ``datetime`` in ``tz``.

        Args:
            tz: the zone the device's clock runs in (IEC 104 does not say; UTC by default).
            reference: for CP24 only: the time the tag was received; the result is the
                latest instant not after ``reference`` + 1 minute with these minutes and
                milliseconds.
            century: added to the year field; None (default): Wireshark's rule,
                :func:`cp56_year`.

        Raises:
            DecodeError: a field outside its calendar range (e.g. month 13).
        """
        if self.size == TimeSize.THREE:
            if reference is None:
                raise ValueError("a CP24Time2a needs a reference time to become a datetime")
            ref = reference.astimezone(tz)
            candidate = ref.replace(minute=0, second=0, microsecond=0) + _dt.timedelta(
                minutes=self.minutes, milliseconds=self.milliseconds)
            _check_range("minutes", self.minutes, 0, 59)
            _check_range("milliseconds", self.milliseconds, 0, 59999)
            limit = ref + _dt.timedelta(minutes=1)
            if candidate > limit:
                candidate -= _dt.timedelta(hours=1)
            elif candidate + _dt.timedelta(hours=1) <= limit:
                candidate += _dt.timedelta(hours=1)  # tag in the next hour's first minute
            return candidate
        assert self.hours is not None and self.day_of_month is not None
        assert self.months is not None and self.years is not None
        _check_range("milliseconds", self.milliseconds, 0, 59999)
        _check_range("minutes", self.minutes, 0, 59)
        _check_range("hours", self.hours, 0, 23)
        _check_range("months", self.months, 1, 12)
        try:
            year = cp56_year(self.years) if century is None else century + self.years
            return _dt.datetime(year, self.months, self.day_of_month,
                                self.hours, self.minutes, self.milliseconds // 1000,
                                (self.milliseconds % 1000) * 1000, tzinfo=tz)
        except ValueError as exc:
            raise DecodeError(f"time tag is no calendar date: {exc}", 0,
                              DecodeReason.TIME_TAG) from exc

    @classmethod
    def from_datetime(cls, value: _dt.datetime, size: TimeSize = TimeSize.SEVEN, *,
                      invalid: bool = False, summer_time: bool = False,
                      century: int | None = None) -> Time:
        """Build a time tag from a ``datetime`` (its wall-clock fields are used as they are).

        ``day_of_week`` is set from the date (Monday = 1). ``century`` is subtracted from the
        year; None (default): the inverse of :func:`cp56_year`, for the years 1970-2069.
        """
        ms = value.second * 1000 + value.microsecond // 1000
        if size == TimeSize.THREE:
            return cls(TimeSize.THREE, ms, invalid, value.minute)
        if century is None:
            first = 1970
            years = value.year % 100 if first <= value.year < first + 100 else -1
        else:
            first = century
            years = value.year - century
        if not 0 <= years <= 99:
            raise EncodeError("years", f"{value.year} outside [{first}, {first + 99}]")
        return cls(TimeSize.SEVEN, ms, invalid, value.minute, summer_time, value.hour,
                   value.isoweekday(), value.day, value.month, years)


def time_from_datetime(dt: _dt.datetime, invalid: bool = False) -> Time:
    """CP56Time2a holding the local wall-clock time of ``dt`` (seed API, hat-drivers).

    A naive ``dt`` is local time, an aware one any zone; the tag gets this machine's local
    time of that instant, the summer-time bit from the local zone, day of week 1-7
    (Monday = 1) and the year modulo 100. Microseconds round to the nearest millisecond
    (half to even, as hat does). Prefer :meth:`Time.from_datetime` with an explicit zone.
    """
    rounded = (dt.replace(microsecond=0)
               + _dt.timedelta(milliseconds=round(dt.microsecond / 1000)))
    local = _time.localtime(rounded.timestamp())
    return Time(TimeSize.SEVEN, local.tm_sec * 1000 + rounded.microsecond // 1000, invalid,
                local.tm_min, bool(local.tm_isdst), local.tm_hour, local.tm_wday + 1,
                local.tm_mday, local.tm_mon, local.tm_year % 100)


def time_to_datetime(t: Time) -> _dt.datetime:
    """Aware UTC ``datetime`` of a CP56Time2a read as local wall-clock time (seed API).

    Years follow :func:`cp56_year`; the summer-time bit picks the instant when the local
    clock shows the time twice (the hour the clocks go back). Prefer
    :meth:`Time.to_datetime` with an explicit zone.

    Raises:
        ValueError: a CP24Time2a (no date: use ``Time.to_datetime(tz, reference=...)``).
        DecodeError: a field outside its calendar range (e.g. month 13).
    """
    if t.size != TimeSize.SEVEN:
        raise ValueError("a CP24Time2a has no date: use Time.to_datetime(tz, reference=...)")
    assert t.hours is not None and t.day_of_month is not None
    assert t.months is not None and t.years is not None
    _check_range("milliseconds", t.milliseconds, 0, 59999)
    try:
        local = _dt.datetime(cp56_year(t.years), t.months, t.day_of_month, t.hours, t.minutes,
                             t.milliseconds // 1000, (t.milliseconds % 1000) * 1000,
                             fold=0 if t.summer_time else 1)
    except ValueError as exc:
        raise DecodeError(f"time tag is no calendar date: {exc}", 0,
                              DecodeReason.TIME_TAG) from exc
    return local.astimezone(_dt.UTC)


def cp56_year(years: int) -> int:
    """The calendar year of a CP56Time2a year field [0, 127], as Wireshark shows it.

    IEC 60870-5-4 defines 0..99 and no century; Wireshark (and this toolkit: the dissector,
    :meth:`Time.to_datetime`) reads 0-69 as 2000-2069 and 70-127 as 1970-2027, so 109 is 2009.
    Callers that store the date should flag a field above 99 as out of range.
    """
    years &= 0x7F
    return 2000 + years if years < 70 else 1900 + years


def civil_from_days(days: Any) -> tuple[Any, Any, Any]:
    """Year, month [1, 12] and day [1, 31] of ``days`` since 1970-01-01 in the proleptic
    Gregorian calendar (Howard Hinnant's ``civil_from_days``). Arithmetic only, so ``days``
    may be an int or a numpy array of int64 (element-wise; the dissector's one-line view)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 - 12 * (mp >= 10)
    return yoe + era * 400 + (month <= 2), month, day


_new = tuple.__new__
# enum members looked up once: ``TimeSize.THREE`` costs a class attribute lookup each time
_THREE, _SEVEN = TimeSize.THREE, TimeSize.SEVEN


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise DecodeError(f"time tag {name} {value} outside [{low}, {high}]", 0,
                          DecodeReason.TIME_TAG)


def decode_time(data: bytes | bytearray | memoryview, offset: int, size: TimeSize) -> Time:
    """Decode a CP24/CP56 time tag at ``offset`` (caller checked the length)."""
    ms = data[offset] | (data[offset + 1] << 8)
    b2 = data[offset + 2]
    res1 = (b2 >> 6) & 1
    # tuple.__new__ skips the NamedTuple's Python-level __new__ (a hot path of the dissector)
    if size == _THREE:
        return _new(Time, (_THREE, ms, bool(b2 & 0x80), b2 & 0x3F, None, None, None, None,
                           None, None, res1))
    b3 = data[offset + 3]
    b4 = data[offset + 4]
    b5 = data[offset + 5]
    b6 = data[offset + 6]
    reserved = res1 | ((b3 >> 5) & 0x03) << 1 | ((b5 >> 4) & 0x0F) << 3 | (b6 >> 7) << 7
    return _new(Time, (_SEVEN, ms, bool(b2 & 0x80), b2 & 0x3F, bool(b3 & 0x80), b3 & 0x1F,
                       b4 >> 5, b4 & 0x1F, b5 & 0x0F, b6 & 0x7F, reserved))


def _field(name: str, value: object, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise EncodeError(f"time.{name}", f"{value!r} outside [0, {(1 << bits) - 1}]")
    return value


def encode_time(time: Time, size: TimeSize) -> bytes:
    """Encode a time tag; ``size`` is what the type ID requires.

    Raises:
        EncodeError: wrong size for the type, or a field wider than its bits.
    """
    if not isinstance(time, Time):
        raise EncodeError("time", f"{type(time).__name__} is not a Time")
    if time.size != size:
        raise EncodeError("time.size", f"type needs a {size}-octet time tag, got {time.size}")
    ms = _field("milliseconds", time.milliseconds, 16)
    reserved = _field("reserved", time.reserved, 8 if size == TimeSize.SEVEN else 1)
    b2 = _field("minutes", time.minutes, 6) | (reserved & 1) << 6 | (0x80 if time.invalid else 0)
    if size == TimeSize.THREE:
        return bytes((ms & 0xFF, ms >> 8, b2))
    for name in ("summer_time", "hours", "day_of_week", "day_of_month", "months", "years"):
        if getattr(time, name) is None:
            raise EncodeError(f"time.{name}", "None in a CP56Time2a")
    b3 = (_field("hours", time.hours, 5) | ((reserved >> 1) & 0x03) << 5
          | (0x80 if time.summer_time else 0))
    b4 = _field("day_of_month", time.day_of_month, 5) | _field("day_of_week", time.day_of_week, 3) << 5
    b5 = _field("months", time.months, 4) | ((reserved >> 3) & 0x0F) << 4
    b6 = _field("years", time.years, 7) | (reserved >> 7) << 7
    return bytes((ms & 0xFF, ms >> 8, b2, b3, b4, b5, b6))
