"""Decoded frames -> rows of the Parquet schema (``iec104.analyzer.schema``).

The dissector, the proxy and live capture all describe what they saw with the same
:class:`RecordBuilder`: one call per APDU (``Frame``), per run of malformed octets
(``Malformed``) and per capture gap. Rows are kept column by column (plain lists) and
handed out as a ``pyarrow.RecordBatch`` with :meth:`RecordBuilder.take_batch`, so a
writer can flush row groups while reading and memory stays bounded.
"""

from __future__ import annotations

import calendar
import enum
from typing import Any, NamedTuple

import pyarrow as pa

from ..analyzer.schema import COLUMN_NAMES, SCHEMA
from ..codec import (
    DEFAULT_PROFILE,
    BinaryCounterValue,
    BitstringValue,
    Cause,
    DecodeError,
    Frame,
    IFrame,
    Malformed,
    Profile,
    ProtectionQuality,
    Quality,
    RawASDU,
    SFrame,
    Time,
    TimeSize,
    TypeId,
    UFrame,
    UFunction,
    cause_name,
    decode_asdu,
    decode_header,
    type_name,
)
from ..codec import values as _v

_NS = 1_000_000_000


class Endpoints(NamedTuple):
    """Who sent an APDU: TCP connection number, direction and addresses."""

    stream: int
    direction: str  # 'c2s' or 's2c'
    src: str
    sport: int
    dst: str
    dport: int


def _enum_or_int(value: Any) -> float:
    return float(value)


def _dot_value(value: Any) -> float:
    return float(value.value)


_NUMERIC: dict[type, Any] = {
    _v.NormalizedValue: _dot_value, _v.ScaledValue: _dot_value, _v.FloatingValue: _dot_value,
    _v.StepPositionValue: _dot_value, _v.BinaryCounterValue: _dot_value,
    _v.BitstringValue: lambda v: float(int.from_bytes(v.value, "little")),
    _v.ProtectionValue: lambda v: float(v.state),
    _v.StatusChangeValue: lambda v: float(v.status),
    _v.InitializationValue: lambda v: float(v.cause),
}


_ENUM_NAMES: dict[tuple[type, int], str] = {
    (cls, m.value): m.name for cls in (_v.SingleValue, _v.DoubleValue, _v.RegulatingValue,
                                       _v.FreezeCode) for m in cls}


def numeric_value(value: Any) -> float | None:
    """The number a value stands for, or None (file-transfer values, None)."""
    func = _NUMERIC.get(type(value))
    if func is not None:
        return func(value)  # type: ignore[no-any-return]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # enums (single/double/regulating/freeze) and plain ints
    return None


def value_text(value: Any) -> str | None:
    """A short text form of a value (enum name, hex bitstring, named fields)."""
    if value is None:
        return None
    cls = type(value)
    if cls in (_v.FloatingValue, _v.NormalizedValue, _v.ScaledValue):
        return repr(value.value)
    if isinstance(value, int):
        name = _ENUM_NAMES.get((cls, value))
        return name if name is not None else str(int(value))
    if cls is BitstringValue:
        return value.value.hex()  # type: ignore[no-any-return]
    if cls is BinaryCounterValue:
        return f"{value.value} seq={value.sequence}" + (" adjusted" if value.adjusted else "")
    if cls is _v.SegmentValue:
        return f"file_name={value.file_name} section={value.section} data={value.data.hex()}"
    fields = getattr(value, "_fields", None)  # the other NamedTuple values
    if fields is not None:
        return " ".join(f"{k}={getattr(value, k)!s}" for k in fields)
    return str(value)


def time_tag_ns(tag: Time, reference_ns: int) -> int:
    """UTC nanoseconds of a time tag; CP24 tags take hour and date from ``reference_ns``.

    Raises:
        DecodeError: the tag is no calendar time (e.g. month 0).
    """
    if tag.size == TimeSize.THREE:
        if tag.minutes > 59 or tag.milliseconds > 59999:
            raise DecodeError(f"CP24 time tag {tag.minutes} min {tag.milliseconds} ms "
                              "out of range", 0)
        hour_ns = reference_ns - reference_ns % (3600 * _NS)
        ns = hour_ns + (tag.minutes * 60_000 + tag.milliseconds) * 1_000_000
        if ns > reference_ns + 60 * _NS:  # the tag belongs to the previous hour
            ns -= 3600 * _NS
        return ns
    # a CP56 tag has all its fields (the decoder sets them)
    years, months, day, hours = tag.years, tag.months, tag.day_of_month, tag.hours
    assert years is not None and months is not None and day is not None and hours is not None
    if not (tag.milliseconds <= 59999 and tag.minutes <= 59 and hours <= 23
            and 1 <= months <= 12 and 1 <= day <= calendar.monthrange(2000 + years, months)[1]):
        raise DecodeError(f"CP56 time tag {years:02}-{months:02}-{day:02} "
                          f"{hours:02}:{tag.minutes:02}:{tag.milliseconds} out of range", 0)
    seconds = (_days_from_civil(2000 + years, months, day) * 86400 + hours * 3600
               + tag.minutes * 60)
    return seconds * _NS + tag.milliseconds * 1_000_000


def _days_from_civil(y: int, m: int, d: int) -> int:
    # days since 1970-01-01 (proleptic Gregorian), without building datetime objects
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_HEAD = 23  # columns from "time" through "ca"
_NO_HEADER = (None,) * 10  # type_id .. ca, for APDUs without an ASDU header
_NO_OBJECT = (None,) * 14  # obj .. qualifier
assert COLUMN_NAMES[_HEAD - 1] == "ca" and COLUMN_NAMES[_HEAD + 14] == "raw"
_CACHE_LIMIT = 4096
_NCOLS = len(SCHEMA)
_TS = pa.timestamp("ns", tz="UTC")
_U_NAMES = {f: f.name for f in UFunction}
_TYPE_NAMES: dict[int, str] = {int(m): m.name for m in TypeId}
_CAUSE_NAMES: dict[int, str] = {int(m): m.name for m in Cause}
_NO_QUALITY = (None,) * 6
# Quality (a NamedTuple of 5 bools: at most 32 distinct values) -> its 6 quality columns
_QUALITY: dict[Quality, tuple] = {}


def _float_text(value: Any) -> tuple[float, str]:
    v = value.value
    return float(v), repr(v)


def _enum_converter(cls: type[enum.IntEnum]) -> Any:
    table = {m: (float(m), m.name) for m in cls}

    def convert(value: Any) -> tuple[float, str]:
        pair = table.get(value)
        return pair if pair is not None else (float(value), str(int(value)))
    return convert


# exact value type -> (numeric_value(v), value_text(v)) in one call, for the common types;
# other types go through numeric_value() and value_text()
_CONVERT: dict[type, Any] = {
    _v.FloatingValue: _float_text, _v.NormalizedValue: _float_text,
    _v.ScaledValue: _float_text,
    **{cls: _enum_converter(cls) for cls in (_v.SingleValue, _v.DoubleValue,
                                             _v.RegulatingValue, _v.FreezeCode)},
}


class RecordBuilder:
    """Accumulates rows; see the module docstring.

    A row is one tuple in schema column order (APDU columns, object columns, ``raw``,
    ``error``), built in one go and appended cell by cell to one flat list; a batch takes
    column *i* as the slice ``[i::N]`` of that list (no per-row transposition).
    """

    def __init__(self, profile: Profile = DEFAULT_PROFILE, first_apdu: int = 0) -> None:
        self.profile = profile
        self.next_apdu = first_apdu
        # the cells of every row, row after row (extend with one tuple per row)
        self._rows: list[Any] = []
        # CP56 minute (years, months, day, hours, minutes) -> ns at 0 ms, or why it is none
        self._tag_cache: dict[tuple[int | None, ...], int | str] = {}
        self.errors = 0
        self.gaps = 0

    @property
    def rows(self) -> int:
        """Rows accumulated since the last :meth:`take_batch`."""
        return len(self._rows) // _NCOLS

    def __len__(self) -> int:
        return len(self._rows) // _NCOLS

    @staticmethod
    def _link(time_ns: int, frame: int | None, ep: Endpoints, apdu: int | None) -> tuple:
        return (time_ns, frame, ep.stream, ep.direction, ep.src, ep.sport, ep.dst, ep.dport,
                apdu)

    def _tag(self, tag: Time, time_ns: int) -> int | str:
        """UTC ns of a time tag, or the reason it has none.

        CP56 tags are converted through a cache of their minute (tags of one minute differ
        only in milliseconds, so the calendar arithmetic runs about once a minute).
        """
        _size, ms, _iv, minutes, _su, hours, _dow, day, months, years, _res = tag
        if _size == TimeSize.THREE:
            try:
                return time_tag_ns(tag, time_ns)
            except DecodeError as exc:
                return exc.reason
        cache = self._tag_cache
        key = (years, months, day, hours, minutes)
        base = cache.get(key)
        if base is None:
            try:
                base = time_tag_ns(tag._replace(milliseconds=0), time_ns)
            except DecodeError as exc:
                base = exc.reason
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = base
        if type(base) is str or ms > 59999:
            try:  # the reason names every field, milliseconds included
                return time_tag_ns(tag, time_ns)
            except DecodeError as exc:
                return exc.reason
        return base + ms * 1_000_000  # type: ignore[operator]

    def add_frame(self, time_ns: int, frame: int | None, ep: Endpoints, event: Frame) -> None:
        """Rows for one complete APDU."""
        apdu_index = self.next_apdu
        self.next_apdu += 1
        apdu = event.apdu
        raw = event.raw
        cls = type(apdu)
        if cls is UFrame:
            self._rows.extend((time_ns, frame, *ep, apdu_index, "U",
                               _U_NAMES[apdu.function], None, None,  # type: ignore[union-attr]
                               *_NO_HEADER, *_NO_OBJECT, raw, None))
            return
        if cls is SFrame:
            self._rows.extend((time_ns, frame, *ep, apdu_index, "S", None, None,
                               apdu.rsn, *_NO_HEADER, *_NO_OBJECT, raw, None))  # type: ignore[union-attr]
            return
        assert cls is IFrame
        ssn, rsn, data = apdu  # type: ignore[misc]
        try:
            asdu = decode_asdu(data, self.profile)
        except DecodeError as exc:
            self.errors += 1
            try:
                header, _ = decode_header(data, self.profile)
                head = _header_fields(header, header.num_objects)
            except DecodeError:
                head = _NO_HEADER
            # the ASDU starts 6 octets into the APDU
            self._rows.extend((time_ns, frame, *ep, apdu_index, "I", None, ssn, rsn, *head,
                               *_NO_OBJECT, raw,
                               f"ASDU: {exc.reason} (APDU offset {exc.offset + 6})"))
            return
        if type(asdu) is RawASDU:
            self._rows.extend((time_ns, frame, *ep, apdu_index, "I", None, ssn, rsn,
                               *_header_fields(asdu, asdu.num_objects), *_NO_OBJECT, raw,
                               f"unknown type ID {asdu.type_id}: objects not decoded"))
            return
        type_id, sequence, cause, negative, test, originator, ca, objects = asdu  # type: ignore[misc]
        type_id = int(type_id)
        cause = int(cause)
        tname = _TYPE_NAMES.get(type_id)
        cname = _CAUSE_NAMES.get(cause)
        # the APDU columns, shared by every row of the APDU ("time" through "ca")
        prefix = (time_ns, frame, *ep, apdu_index, "I", None, ssn, rsn, type_id,
                  tname if tname is not None else type_name(type_id), sequence, len(objects),
                  cause, cname if cname is not None else cause_name(cause), negative, test,
                  originator, ca)
        rows = self._rows
        if not objects:
            rows.extend((*prefix, *_NO_OBJECT, raw, None))
            return
        tag_ns = self._tag
        convert = _CONVERT.get
        for i, (address, value, q, tag, select, qualifier) in enumerate(objects):
            conv = convert(type(value))
            if conv is not None:
                number, text = conv(value)
            else:
                number, text = numeric_value(value), value_text(value)
            qcls = type(q)
            if qcls is Quality:
                quality = _QUALITY.get(q)
                if quality is None:
                    quality = _QUALITY[q] = (*q, None)  # type: ignore[index]
            elif qcls is ProtectionQuality:
                quality = (q[0], q[1], q[2], q[3], None, q[4])  # type: ignore[index]
            elif type(value) is BinaryCounterValue:
                quality = (value.invalid, None, None, None, value.overflow, None)
            else:
                quality = _NO_QUALITY
            if tag is None:
                rows.extend((*prefix, i, address, number, text, *quality, None, None, select,
                             qualifier, raw, None))
                continue
            ns = tag_ns(tag, time_ns)
            if type(ns) is str:
                rows.extend((*prefix, i, address, number, text, *quality, None, tag.invalid,
                             select, qualifier, raw, f"time tag: {ns}"))
            else:
                rows.extend((*prefix, i, address, number, text, *quality, ns, tag.invalid,
                             select, qualifier, raw, None))

    def add_malformed(self, time_ns: int, frame: int | None, ep: Endpoints,
                      event: Malformed) -> None:
        """One row for octets that are no valid APDU."""
        self.errors += 1
        apdu_index = self.next_apdu
        self.next_apdu += 1
        error = f"APCI: {event.reason} (stream offset {event.offset})"
        self._rows.extend(self._link(time_ns, frame, ep, apdu_index) + (None,) * 4 + _NO_HEADER
                          + _NO_OBJECT + (event.raw, error))

    def add_gap(self, time_ns: int, frame: int | None, ep: Endpoints, missing: int,
                detail: str = "") -> None:
        """One row for octets missing from the capture."""
        self.gaps += 1
        error = f"gap: {missing} octets not captured" + (f"; {detail}" if detail else "")
        self._rows.extend(self._link(time_ns, frame, ep, None) + (None,) * 4 + _NO_HEADER
                          + _NO_OBJECT + (None, error))

    def add_event(self, time_ns: int, frame: int | None, ep: Endpoints, text: str,
                  raw: bytes | None = None) -> None:
        """One row for something that happened to a connection rather than an APDU.

        Used by the proxy for e.g. an unreachable or dropped upstream and for rule actions.
        The row has no ``apdu``/``apci``; ``text`` goes in the ``error`` column (by
        convention prefixed with its origin, e.g. ``'proxy: ...'``) and ``raw`` in ``raw``.
        """
        self._rows.extend(self._link(time_ns, frame, ep, None) + (None,) * 4 + _NO_HEADER
                          + _NO_OBJECT + (raw, text))

    def take_batch(self) -> pa.RecordBatch:
        """The rows so far as a RecordBatch; the builder starts empty again."""
        flat = self._rows
        self._rows = []
        # one flat list, row after row: column i is the slice [i::N] (done in C)
        columns = [flat[i::_NCOLS] for i in range(_NCOLS)]
        arrays = []
        for col, field in zip(columns, SCHEMA):
            if field.type == _TS:  # from int64 and a zero-copy cast: much faster
                arrays.append(pa.array(col, pa.int64()).cast(field.type))
            else:
                arrays.append(pa.array(col, type=field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def _header_fields(header: Any, count: int) -> tuple:
    type_id = int(header.type_id)
    cot = int(header.cause)
    return (type_id, type_name(type_id), header.sequence, count, cot, cause_name(cot),
            header.negative, header.test, header.originator, header.common_address)
