"""Decoded frames -> rows of the Parquet schema (``iec104.records.schema``).

The dissector, the proxy and live capture all describe what they saw with the same
:class:`RecordBuilder`: one call per APDU (``Frame``), per run of malformed octets
(``Malformed``) and per capture gap. Rows are kept as flat lists of Python cells (APDU-level
cells once per APDU, see :class:`RecordBuilder`) and handed out as a ``pyarrow.RecordBatch``
with :meth:`RecordBuilder.take_batch`, so a writer can flush row groups while reading and
memory stays bounded.
"""

from __future__ import annotations

import calendar
import enum
from typing import Any, NamedTuple

import pyarrow as pa

from ..codec import (
    DEFAULT_PROFILE,
    BinaryCounterValue,
    BitstringValue,
    Cause,
    DecodeError,
    DecodeReason,
    FloatingValue,
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
    cp56_year,
    decode_apdu,
    decode_asdu,
    decode_header,
    type_name,
)
from ..codec import values as _v
from .arrays import array
from .schema import COLUMN_NAMES, SCHEMA, RowKind

_NS = 1_000_000_000


class Endpoints(NamedTuple):
    """Who sent an APDU: TCP connection number, direction and addresses."""

    stream: int
    direction: str  # 'c2s' or 's2c'
    src: str
    sport: int
    dst: str
    dport: int


def _dot_value(value: Any) -> float:
    return float(value.value)


_NUMERIC: dict[type, Any] = {
    _v.NormalizedValue: _dot_value, _v.ScaledValue: _dot_value, _v.FloatingValue: _dot_value,
    _v.StepPositionValue: _dot_value, _v.BinaryCounterValue: _dot_value,
    _v.BitstringValue: lambda v: float(int.from_bytes(v.value, "little")),
    _v.ProtectionValue: lambda v: float(v.state),
    _v.StatusChangeValue: lambda v: float(v.status),
    _v.InitializationValue: lambda v: float(v.cause),
    _v.SecurityStatisticValue: lambda v: float(v.counter.value),
    _v.AuthenticationErrorValue: lambda v: float(v.error_code),
    _v.KeyStatus: lambda v: float(v.key_status),
}


_AUTH_ERRORS = {m.value: m.name for m in _v.AuthErrorCode}
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
    if cls is _v.SecurityStatisticValue:
        return f"{value_text(value.counter)} aid={value.association_id}"
    if cls is _v.AggressiveModeRequest:
        return (f"asdu={type_name(value.asdu[0])}:{value.asdu.hex()} csq={value.csq} "
                f"user={value.user} mac={value.mac.hex()}")
    if cls is _v.AuthenticationErrorValue:
        code = value.error_code
        name = _AUTH_ERRORS.get(code, str(code))
        return (f"error={name} csq={value.csq} user={value.user} "
                f"aid={value.association_id} text={value.text!r}")
    fields = getattr(value, "_fields", None)  # the other NamedTuple values
    if fields is not None:  # octets (MACs, challenges, opaque messages) in hex
        return " ".join(f"{k}={v.hex() if isinstance(v, bytes) else v!s}"
                        for k, v in zip(fields, value))
    return str(value)


def time_tag_ns(tag: Time, reference_ns: int | None) -> int:
    """UTC nanoseconds of a time tag; CP24 tags take hour and date from ``reference_ns``.

    Raises:
        DecodeError: the tag is no calendar time (e.g. month 0), or a CP24 tag has no
            reference (the packet's capture time was out of range).
    """
    if tag.size == TimeSize.THREE:
        if reference_ns is None:
            raise DecodeError("CP24 time tag without a capture time to complete it", 0,
                              DecodeReason.TIME_TAG)
        if tag.minutes > 59 or tag.milliseconds > 59999:
            raise DecodeError(f"CP24 time tag {tag.minutes} min {tag.milliseconds} ms "
                              "out of range", 0, DecodeReason.TIME_TAG)
        hour_ns = reference_ns - reference_ns % (3600 * _NS)
        ns = hour_ns + (tag.minutes * 60_000 + tag.milliseconds) * 1_000_000
        if ns > reference_ns + 60 * _NS:  # the tag belongs to the previous hour
            ns -= 3600 * _NS
        return ns
    # a CP56 tag has all its fields (the decoder sets them)
    years, months, day, hours = tag.years, tag.months, tag.day_of_month, tag.hours
    assert years is not None and months is not None and day is not None and hours is not None
    year = cp56_year(years)  # Wireshark's century rule; years > 99 are flagged by the caller
    if not (tag.milliseconds <= 59999 and tag.minutes <= 59 and hours <= 23
            and 1 <= months <= 12 and 1 <= day <= calendar.monthrange(year, months)[1]):
        raise DecodeError(f"CP56 time tag {years:02}-{months:02}-{day:02} "
                          f"{hours:02}:{tag.minutes:02}:{tag.milliseconds} out of range", 0,
                          DecodeReason.TIME_TAG)
    seconds = (_days_from_civil(year, months, day) * 86400 + hours * 3600
               + tag.minutes * 60)
    return seconds * _NS + tag.milliseconds * 1_000_000


def _year_error(years: int) -> str:
    """The ``error`` of an object whose CP56 year field is outside the standard's 0..99 (its
    ``time_tag`` is kept, read as Wireshark reads it)."""
    return f"time tag: year {years} outside [0, 99], read as {cp56_year(years)} (as Wireshark)"


def _days_from_civil(y: int, m: int, d: int) -> int:
    # days since 1970-01-01 (proleptic Gregorian), without building datetime objects
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


# A row's cells come in two parts (see RecordBuilder): the head, shared by the rows of one
# APDU, and the row's own cells. The tuples below are the order of the cells in the
# builder's flat lists (the order the add_* methods write them in); take_batch() puts the
# columns in the schema's order by name.
_HEAD_COLUMNS = ("time", "frame", "stream", "direction", "src", "sport", "dst", "dport",
                 "apdu", "apci", "u_func", "ssn", "rsn", "type_id", "type_name", "sq",
                 "num_objects", "cot", "cot_name", "negative", "test", "oa", "ca", "raw",
                 "profile", "profile_confidence")
_ROW_COLUMNS = ("obj", "ioa", "value", "value_text", "iv", "nt", "sb", "bl", "ov", "ei",
                "time_tag", "time_tag_iv", "select", "qualifier", "error", "kind")
assert sorted(_HEAD_COLUMNS + _ROW_COLUMNS) == sorted(COLUMN_NAMES)
_NH = len(_HEAD_COLUMNS)
_NR = len(_ROW_COLUMNS) + 1  # the row's cells, then the index of its head in the batch
_HEAD_TYPES = [SCHEMA.field(name).type for name in _HEAD_COLUMNS]
_ROW_TYPES = [SCHEMA.field(name).type for name in _ROW_COLUMNS]
_NO_HEADER = (None,) * 10  # type_id .. ca, for APDUs without an ASDU header
_NO_OBJECT = (None,) * 14  # obj .. qualifier
_OBJECT, _APDU, _MALFORMED, _GAP, _EVENT = (str(kind) for kind in RowKind)  # plain str cells
assert (_OBJECT, _APDU, _MALFORMED, _GAP, _EVENT) == ("object", "apdu", "malformed", "gap", "event")
_CACHE_LIMIT = 4096
_TS = pa.timestamp("ns", tz="UTC")
_U_NAMES = {f: f.name for f in UFunction}
_TYPE_CELLS: dict[int, tuple[int, str]] = {int(m): (int(m), m.name) for m in TypeId}
_CAUSE_CELLS: dict[int, tuple[int, str]] = {int(m): (int(m), m.name) for m in Cause}
_NO_QUALITY = (None,) * 6
_NO_PROFILE = (None, None)  # profile cells of rows that are no I-frame
# "2/2/3" by Profile: one text per profile, built once
_PROFILE_TEXT: dict[Profile, str] = {}
_THREE = TimeSize.THREE  # an enum member looked up once (class attribute lookups are slow)
# Quality (a NamedTuple of 5 bools: at most 32 distinct values) -> its 6 quality columns
_QUALITY: dict[Quality, tuple] = {}


def profile_text(profile: Profile) -> str:
    """The ``profile`` cell of a profile: its sizes as ``"COT/CA/IOA"``, e.g. ``"2/2/3"``."""
    text = _PROFILE_TEXT.get(profile)
    if text is None:
        text = _PROFILE_TEXT[profile] = "/".join(map(str, profile))
    return text


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

    Each APDU (and each malformed run, gap or event) adds one *head*: its APDU-level cells
    ("time" through "ca", and "raw"), appended to one flat list of heads. Each row adds its
    own cells (object columns and "error") and the index of its head to another flat list.
    A batch takes column *i* of either part as the slice ``[i::N]`` of its list (no
    per-row transposition) and repeats the head columns for the rows of multi-object APDUs
    with one Arrow ``take``, so APDU-level cells are converted once per APDU, not per row.
    """

    def __init__(self, profile: Profile = DEFAULT_PROFILE, first_apdu: int = 0) -> None:
        self.profile = profile
        self.next_apdu = first_apdu
        # the cells of every head, head after head (extend with one tuple per head)
        self._heads: list[Any] = []
        # the cells of every row and its head's index in _heads, row after row
        self._cells: list[Any] = []
        # CP56 minute (years, months, day, hours, minutes) -> ns at 0 ms, or why it is none
        self._tag_cache: dict[tuple[int | None, ...], int | str] = {}
        self.errors = 0
        self.gaps = 0
        # (profile, confidence, their two cells) of the last I-frame
        self._last_profile: tuple[Any, Any, tuple[str, float | None]] = (None, None, ("", None))

    @property
    def rows(self) -> int:
        """Rows accumulated since the last :meth:`take_batch`."""
        return len(self._cells) // _NR

    def __len__(self) -> int:
        return len(self._cells) // _NR

    def _tag(self, tag: Time, time_ns: int | None) -> int | str:
        """UTC ns of a time tag, or the reason it has none.

        CP56 tags are converted through a cache of their minute (tags of one minute differ
        only in milliseconds, so the calendar arithmetic runs about once a minute).
        """
        _size, ms, _iv, minutes, _su, hours, _dow, day, months, years, _res = tag
        if _size == _THREE:
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

    def _one_row(self, head: tuple, error: str | None, kind: str,
                 profile_cells: tuple[str | None, float | None] = _NO_PROFILE) -> None:
        """A head with one row that has no object (only ``error``, which may be None)."""
        index = len(self._heads) // _NH
        self._heads.extend(head)
        self._heads.extend(profile_cells)
        self._cells.extend((*_NO_OBJECT, error, kind, index))

    def add_frame(self, time_ns: int | None, frame: int | None, ep: Endpoints,
                  event: Frame, profile: Profile | None = None,
                  confidence: float | None = None) -> None:
        """Rows for one complete APDU; an I-frame's ASDU is decoded with ``profile`` (default:
        the builder's), and ``confidence`` says how sure its detection was (None: given)."""
        apdu_index = self.next_apdu
        self.next_apdu += 1
        apdu = event.apdu
        raw = event.raw
        if apdu is None:  # from a framer that only checks (Framer(decode=False))
            apdu = decode_apdu(raw)
        cls = type(apdu)
        if cls is UFrame:
            self._one_row((time_ns, frame, *ep, apdu_index, "U",
                           _U_NAMES[apdu.function], None, None,  # type: ignore[union-attr]
                           *_NO_HEADER, raw), None, _APDU)
            return
        if cls is SFrame:
            self._one_row((time_ns, frame, *ep, apdu_index, "S", None, None,
                           apdu.rsn, *_NO_HEADER, raw), None, _APDU)  # type: ignore[union-attr]
            return
        assert cls is IFrame
        ssn, rsn, data = apdu  # type: ignore[misc]
        if profile is None:
            profile = self.profile
        last = self._last_profile  # consecutive I-frames mostly share theirs
        if last[0] is profile and last[1] == confidence:
            pcells = last[2]
        else:
            pcells = (profile_text(profile), confidence)
            self._last_profile = (profile, confidence, pcells)
        try:
            asdu = decode_asdu(data, profile)
        except DecodeError as exc:
            self.errors += 1
            try:
                header, _ = decode_header(data, profile)
                head = _header_fields(header, header.num_objects)
            except DecodeError:
                head = _NO_HEADER
            # the ASDU starts 6 octets into the APDU
            self._one_row((time_ns, frame, *ep, apdu_index, "I", None, ssn, rsn, *head, raw),
                          f"ASDU: {exc.reason} (APDU offset {exc.offset + 6})", _MALFORMED,
                          pcells)
            return
        if type(asdu) is RawASDU:
            self._one_row((time_ns, frame, *ep, apdu_index, "I", None, ssn, rsn,
                           *_header_fields(asdu, asdu.num_objects), raw),
                          f"unknown type ID {asdu.type_id}: objects not decoded", _MALFORMED,
                          pcells)
            return
        type_id, sequence, cause, negative, test, originator, ca, objects = asdu  # type: ignore[misc]
        # (code, name) cells in one lookup; every decoded type ID is standard, a cause may not be
        type_cells = _TYPE_CELLS[type_id]
        cause_cells = _CAUSE_CELLS.get(cause)
        if cause_cells is None:
            cause_cells = (int(cause), cause_name(int(cause)))
        heads = self._heads
        index = len(heads) // _NH
        heads.extend((time_ns, frame, *ep, apdu_index, "I", None, ssn, rsn, *type_cells,
                      sequence, len(objects), *cause_cells, negative, test, originator, ca,
                      raw, *pcells))
        cells = self._cells
        if not objects:
            cells.extend((*_NO_OBJECT, None, _APDU, index))
            return
        tag_ns = self._tag
        convert = _CONVERT.get
        last_tag = None
        ns: int | str = 0
        number: float | None
        text: str | None
        for i, (address, value, q, tag, select, qualifier) in enumerate(objects):
            vcls = type(value)
            if vcls is FloatingValue:  # the commonest value type: _float_text(), inline
                v = value[0]
                number, text = float(v), repr(v)
            else:
                conv = convert(vcls)
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
            elif type(value) is _v.SecurityStatisticValue:
                c = value.counter
                quality = (c.invalid, None, None, None, c.overflow, None)
            else:
                quality = _NO_QUALITY
            if tag is None:
                cells.extend((i, address, number, text, *quality, None, None, select,
                              qualifier, None, _OBJECT, index))
                continue
            if tag is not last_tag:
                # objects of one ASDU often share their tag, and the codec hands out one
                # Time object for equal octets: convert it once (same APDU, same time_ns)
                last_tag = tag
                ns = tag_ns(tag, time_ns)
            if type(ns) is str:
                cells.extend((i, address, number, text, *quality, None, tag.invalid,
                              select, qualifier, f"time tag: {ns}", _OBJECT, index))
            else:
                years = tag[9]  # None for CP24; the standard allows 0..99
                cells.extend((i, address, number, text, *quality, ns, tag.invalid,
                              select, qualifier,
                              None if years is None or years < 100 else _year_error(years),
                              _OBJECT, index))

    def add_malformed(self, time_ns: int | None, frame: int | None, ep: Endpoints,
                      event: Malformed) -> None:
        """One row for octets that are no valid APDU."""
        self.errors += 1
        apdu_index = self.next_apdu
        self.next_apdu += 1
        self._one_row((time_ns, frame, *ep, apdu_index, None, None, None, None, *_NO_HEADER,
                       event.raw), f"APCI: {event.reason} (stream offset {event.offset})",
                      _MALFORMED)

    def add_gap(self, time_ns: int | None, frame: int | None, ep: Endpoints, missing: int,
                detail: str = "") -> None:
        """One row for octets missing from the capture."""
        self.gaps += 1
        error = f"gap: {missing} octets not captured" + (f"; {detail}" if detail else "")
        self._one_row((time_ns, frame, *ep, None, None, None, None, None, *_NO_HEADER, None),
                      error, _GAP)

    def add_event(self, time_ns: int | None, frame: int | None, ep: Endpoints, text: str,
                  raw: bytes | None = None) -> None:
        """One row for something that happened to a connection rather than an APDU.

        Used by the proxy for e.g. an unreachable or dropped upstream and for rule actions.
        The row (kind ``event``) has no ``apdu``/``apci``; ``text`` goes in the ``error``
        column (prefixed with its origin for people, e.g. ``'proxy: ...'``) and ``raw`` in
        ``raw``.
        """
        self._one_row((time_ns, frame, *ep, None, None, None, None, None, *_NO_HEADER, raw),
                      text, _EVENT)

    def take_batch(self) -> pa.RecordBatch:
        """The rows so far as a RecordBatch; the builder starts empty again."""
        heads, cells = self._heads, self._cells
        self._heads, self._cells = [], []
        head = [_array(heads[i::_NH], t) for i, t in enumerate(_HEAD_TYPES)]
        if len(cells) // _NR != len(heads) // _NH:
            # some heads have several rows (every head has at least one, in order): repeat
            # their cells; with one row per head the row's head index is its own index
            index = array(cells[_NR - 1::_NR], pa.int64())
            head = [column.take(index) for column in head]
        own = [_array(cells[i::_NR], t) for i, t in enumerate(_ROW_TYPES)]
        columns = dict(zip(_HEAD_COLUMNS, head, strict=True))
        columns.update(zip(_ROW_COLUMNS, own, strict=True))
        return pa.RecordBatch.from_arrays([columns[name] for name in COLUMN_NAMES],
                                          schema=SCHEMA)


def _array(cells: list[Any], dtype: pa.DataType) -> pa.Array:
    # through .arrays, not pa.array, which would import pandas (0.3 s of every start-up)
    return array(cells, dtype)


def _header_fields(header: Any, count: int) -> tuple:
    type_id = int(header.type_id)
    cot = int(header.cause)
    return (type_id, type_name(type_id), header.sequence, count, cot, cause_name(cot),
            header.negative, header.test, header.originator, header.common_address)
