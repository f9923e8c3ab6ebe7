"""Decoded frames -> rows of the Parquet schema (``iec104.analyzer.schema``).

The dissector, the proxy and live capture all describe what they saw with the same
:class:`RecordBuilder`: one call per APDU (``Frame``), per run of malformed octets
(``Malformed``) and per capture gap. Rows are kept column by column (plain lists) and
handed out as a ``pyarrow.RecordBatch`` with :meth:`RecordBuilder.take_batch`, so a
writer can flush row groups while reading and memory stays bounded.
"""

from __future__ import annotations

import calendar
from typing import Any, NamedTuple

import pyarrow as pa

from ..analyzer.schema import COLUMN_NAMES, SCHEMA
from ..codec import (ASDU, DEFAULT_PROFILE, BinaryCounterValue, BitstringValue, DecodeError,
                     Frame, IFrame, Malformed, Profile, ProtectionQuality, Quality, RawASDU,
                     SFrame, Time, TimeSize, UFrame, cause_name, decode_asdu, decode_header,
                     type_name)
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


def numeric_value(value: Any) -> float | None:
    """The number a value stands for, or None (file-transfer values, None)."""
    if value is None:
        return None
    if isinstance(value, int):  # enums (single/double/regulating/freeze) and plain ints
        return float(value)
    cls = type(value)
    if cls in (_v.NormalizedValue, _v.ScaledValue, _v.FloatingValue, _v.StepPositionValue,
               _v.BinaryCounterValue):
        return float(value.value)
    if cls is _v.BitstringValue:
        return float(int.from_bytes(value.value, "little"))
    if cls is _v.ProtectionValue:
        return float(value.state)
    if cls is _v.StatusChangeValue:
        return float(value.status)
    if cls is _v.InitializationValue:
        return float(value.cause)
    return None


def value_text(value: Any) -> str | None:
    """A short text form of a value (enum name, hex bitstring, named fields)."""
    if value is None:
        return None
    if hasattr(value, "name") and isinstance(value, int):
        return str(value.name)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, BitstringValue):
        return value.value.hex()
    if isinstance(value, (_v.NormalizedValue, _v.ScaledValue, _v.FloatingValue)):
        return repr(value.value)
    if isinstance(value, BinaryCounterValue):
        return f"{value.value} seq={value.sequence}" + (" adjusted" if value.adjusted else "")
    if isinstance(value, _v.SegmentValue):
        return f"file_name={value.file_name} section={value.section} data={value.data.hex()}"
    if isinstance(value, tuple):
        return " ".join(f"{k}={getattr(value, k)!s}" for k in value._fields)
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
    if not (tag.milliseconds <= 59999 and tag.minutes <= 59 and tag.hours <= 23  # type: ignore[operator]
            and 1 <= tag.months <= 12 and 1 <= tag.day_of_month  # type: ignore[operator]
            and tag.day_of_month <= calendar.monthrange(2000 + tag.years,  # type: ignore[operator]
                                                        tag.months)[1]):  # type: ignore[arg-type]
        raise DecodeError(f"CP56 time tag {tag.years:02}-{tag.months:02}-{tag.day_of_month:02} "
                          f"{tag.hours:02}:{tag.minutes:02}:{tag.milliseconds} out of range", 0)
    days = _days_from_civil(2000 + tag.years, tag.months, tag.day_of_month)  # type: ignore[arg-type]
    seconds = days * 86400 + tag.hours * 3600 + tag.minutes * 60  # type: ignore[operator]
    return seconds * _NS + tag.milliseconds * 1_000_000


def _days_from_civil(y: int, m: int, d: int) -> int:
    # days since 1970-01-01 (proleptic Gregorian), without building datetime objects
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


class RecordBuilder:
    """Accumulates rows column by column; see the module docstring."""

    def __init__(self, profile: Profile = DEFAULT_PROFILE, first_apdu: int = 0) -> None:
        self.profile = profile
        self.next_apdu = first_apdu
        self._cols: dict[str, list[Any]] = {name: [] for name in COLUMN_NAMES}
        self.rows = 0
        self.errors = 0
        self.gaps = 0

    def __len__(self) -> int:
        return self.rows

    def _append(self, time_ns: int, frame: int | None, ep: Endpoints, apdu: int | None,
                fields: dict[str, Any]) -> None:
        cols = self._cols
        for name in COLUMN_NAMES:
            cols[name].append(fields.get(name))
        cols["time"][-1] = time_ns
        cols["frame"][-1] = frame
        cols["stream"][-1] = ep.stream
        cols["direction"][-1] = ep.direction
        cols["src"][-1] = ep.src
        cols["sport"][-1] = ep.sport
        cols["dst"][-1] = ep.dst
        cols["dport"][-1] = ep.dport
        cols["apdu"][-1] = apdu
        self.rows += 1

    def add_frame(self, time_ns: int, frame: int | None, ep: Endpoints, event: Frame) -> None:
        """Rows for one complete APDU."""
        apdu_index = self.next_apdu
        self.next_apdu += 1
        apdu = event.apdu
        base: dict[str, Any] = {"raw": event.raw}
        if type(apdu) is UFrame:
            base["apci"] = "U"
            base["u_func"] = apdu.function.name
            self._append(time_ns, frame, ep, apdu_index, base)
            return
        if type(apdu) is SFrame:
            base["apci"] = "S"
            base["rsn"] = apdu.rsn
            self._append(time_ns, frame, ep, apdu_index, base)
            return
        assert type(apdu) is IFrame
        base["apci"] = "I"
        base["ssn"] = apdu.ssn
        base["rsn"] = apdu.rsn
        try:
            asdu = decode_asdu(apdu.asdu, self.profile)
        except DecodeError as exc:
            self.errors += 1
            try:
                header, _ = decode_header(apdu.asdu, self.profile)
                base.update(_header_fields(header, header.count))
            except DecodeError:
                pass
            # the ASDU starts 6 octets into the APDU
            base["error"] = f"ASDU: {exc.reason} (APDU offset {exc.offset + 6})"
            self._append(time_ns, frame, ep, apdu_index, base)
            return
        if type(asdu) is RawASDU:
            base.update(_header_fields(asdu, asdu.count))
            base["error"] = f"unknown type ID {asdu.type_id}: objects not decoded"
            self._append(time_ns, frame, ep, apdu_index, base)
            return
        base.update(_header_fields(asdu, len(asdu.objects)))
        if not asdu.objects:
            self._append(time_ns, frame, ep, apdu_index, base)
            return
        for i, obj in enumerate(asdu.objects):
            row = dict(base)
            row["obj"] = i
            row["ioa"] = obj.address
            value = obj.value
            row["value"] = numeric_value(value)
            row["value_text"] = value_text(value)
            q = obj.quality
            if type(q) is Quality:
                row["iv"], row["nt"], row["sb"], row["bl"], row["ov"] = q
            elif type(q) is ProtectionQuality:
                row["iv"], row["nt"], row["sb"], row["bl"], row["ei"] = q
            elif type(value) is BinaryCounterValue:
                row["iv"] = value.invalid
                row["ov"] = value.overflow
            tag = obj.time
            if tag is not None:
                row["time_tag_iv"] = tag.invalid
                try:
                    row["time_tag"] = time_tag_ns(tag, time_ns)
                except DecodeError as exc:
                    row["error"] = f"time tag: {exc.reason}"
            row["select"] = obj.select
            row["qualifier"] = obj.qualifier
            self._append(time_ns, frame, ep, apdu_index, row)

    def add_malformed(self, time_ns: int, frame: int | None, ep: Endpoints,
                      event: Malformed) -> None:
        """One row for octets that are no valid APDU."""
        self.errors += 1
        apdu_index = self.next_apdu
        self.next_apdu += 1
        self._append(time_ns, frame, ep, apdu_index,
                     {"raw": event.raw, "error": f"APCI: {event.reason} "
                                                 f"(stream offset {event.offset})"})

    def add_gap(self, time_ns: int, frame: int | None, ep: Endpoints, missing: int,
                detail: str = "") -> None:
        """One row for octets missing from the capture."""
        self.gaps += 1
        self._append(time_ns, frame, ep, None,
                     {"error": f"gap: {missing} octets not captured" + (f"; {detail}" if detail
                                                                        else "")})

    def add_event(self, time_ns: int, frame: int | None, ep: Endpoints, text: str,
                  raw: bytes | None = None) -> None:
        """One row for something that happened to a connection rather than an APDU.

        Used by the proxy for e.g. an unreachable or dropped upstream and for rule actions.
        The row has no ``apdu``/``apci``; ``text`` goes in the ``error`` column (by
        convention prefixed with its origin, e.g. ``'proxy: ...'``) and ``raw`` in ``raw``.
        """
        self._append(time_ns, frame, ep, None, {"raw": raw, "error": text})

    def take_batch(self) -> pa.RecordBatch:
        """The rows so far as a RecordBatch; the builder starts empty again."""
        cols = self._cols
        batch = pa.RecordBatch.from_arrays(
            [pa.array(cols[field.name], type=field.type) for field in SCHEMA], schema=SCHEMA)
        self._cols = {name: [] for name in COLUMN_NAMES}
        self.rows = 0
        return batch


def _header_fields(header: Any, count: int) -> dict[str, Any]:
    cot = int(header.cause)
    return {"type_id": int(header.type_id), "type_name": type_name(int(header.type_id)),
            "sq": header.sequence, "num_objects": count, "cot": cot,
            "cot_name": cause_name(cot), "negative": header.negative, "test": header.test,
            "oa": header.originator, "ca": header.common_address}
