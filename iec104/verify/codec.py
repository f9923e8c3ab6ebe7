"""Our codec's decoding of an ASDU against tshark's view of the same octets.

Theory of operation
-------------------
:mod:`iec104.verify.compare` checks the dissector's rows; this module checks the codec's own
objects (:class:`iec104.codec.ASDU`), which carry more than a row: a time tag's day of week,
SU and reserved GEN bit besides its other raw fields, the whole COI octet, a set-point's QL
next to its S/E. The interop tests
encode ASDUs of every type with random values, let tshark dissect them and require
:func:`compare_asdu` to find nothing. The element layouts and undecoded types are those of
:mod:`iec104.verify.tables`; the date tshark shows for a CP56Time2a is read with
:func:`iec104.verify.compare.shown_ns` and must be our time tag as
:meth:`iec104.codec.Time.to_datetime` reads it (Wireshark's century rule), one hour earlier
when SU is set (tshark converts summer time).
"""

from __future__ import annotations

import struct
from typing import Any

from ..codec import (
    ASDU,
    BitstringValue,
    DecodeError,
    FloatingValue,
    InformationObject,
    NormalizedValue,
    Profile,
    Time,
    TimeSize,
    TypeId,
)
from .compare import Diff, shown_ns
from .tables import KIND, TSHARK_RAW

__all__ = ["compare_asdu", "compare_codec_object"]

_ASDU_HEADER = 6  # type, VSQ, COT 2, CA 2: tshark's fixed profile
_TSHARK_PROFILE = Profile()  # the default one: COT 2, CA 2, IOA 3 octets
_HOUR_NS = 3600 * 10**9


def _quality(ours: Any, theirs: dict[str, Any], ov: bool) -> list[Diff]:
    want = {"iv": ours.invalid, "nt": ours.not_topical, "sb": ours.substituted,
            "bl": ours.blocked}
    if ov:
        want["ov"] = ours.overflow
    return [Diff(f"quality {key}", value, theirs.get(key))
            for key, value in want.items() if theirs.get(key) != value]


def _time(ours: Time, theirs: dict[str, Any] | None) -> list[Diff]:
    if theirs is None:
        return [Diff("time tag", ours, None)]
    want: dict[str, Any] = {"ms": ours.milliseconds, "min": ours.minutes, "iv": ours.invalid}
    if ours.size == TimeSize.SEVEN:
        want.update(gen=bool(ours.reserved & 1), hour=ours.hours, su=ours.summer_time,
                    day=ours.day_of_month, dow=ours.day_of_week, month=ours.months,
                    year=ours.years)
    out = [Diff(f"time {key}", value, theirs.get(key))
           for key, value in want.items() if theirs.get(key) != value]
    if ours.size == TimeSize.SEVEN:
        try:
            when = ours.to_datetime()
        except DecodeError:
            return out  # no calendar time: tshark shows the raw fields, compared above
        ns = int(when.timestamp()) * 10**9 + when.microsecond * 1000
        if ours.summer_time:
            ns -= _HOUR_NS
        if shown_ns(theirs.get("text")) != ns:
            out.append(Diff("time shown", when.isoformat(), theirs.get("text")))
    return out


def compare_codec_object(kind: str, ours: InformationObject,
                         theirs: dict[str, Any]) -> list[Diff]:
    """Differences between our object and tshark's view of it (empty when they agree).

    ``kind``: the element layout, a value of :data:`~iec104.verify.tables.KIND`."""
    out: list[Diff] = []
    v: Any = ours.value
    if theirs.get("ioa") != ours.address:
        out.append(Diff("ioa", ours.address, theirs.get("ioa")))
    got: tuple[Any, ...]
    want: tuple[Any, ...] | None = None
    if kind == "siq":
        got, want = (theirs.get("value"),), (bool(v),)
        out += _quality(ours.quality, theirs, False)
    elif kind == "diq":
        got, want = (theirs.get("value"),), (int(v),)
        out += _quality(ours.quality, theirs, False)
    elif kind == "vti":
        got, want = (theirs.get("value"), theirs.get("transient")), (v.value, v.transient)
        out += _quality(ours.quality, theirs, True)
    elif kind == "bsi":
        assert isinstance(v, BitstringValue)
        got, want = (theirs.get("bitstring_bytes"),), (v.value,)
    elif kind == "nva":
        assert isinstance(v, NormalizedValue)
        got = (theirs.get("normval_raw"), theirs.get("value"))
        want = (round(v.value * 32768), v.value)
    elif kind == "sva":
        got, want = (theirs.get("value"),), (v.value,)
    elif kind == "flt":
        assert isinstance(v, FloatingValue)
        mine = struct.pack("<f", v.value)
        got = (None if "value" not in theirs else struct.pack("<f", theirs["value"]),)
        want = (mine,)
    elif kind == "bcr":
        want = (v.value, v.sequence, v.overflow, v.adjusted, v.invalid)
        got = tuple(theirs.get(k) for k in ("value", "seq", "cy", "ca", "iv"))
    elif kind == "command":
        got = (theirs.get("value"), theirs.get("qu"), theirs.get("select"))
        want = (bool(v) if isinstance(theirs.get("value"), bool) else int(v), ours.qualifier,
                ours.select)
    elif kind == "coi":
        got = (theirs.get("coi_r"), theirs.get("coi_i"), theirs.get("qualifier"))
        want = (v.cause, v.param_change, v.cause | (0x80 if v.param_change else 0))
    elif kind == "qualifier":
        got, want = (theirs.get("qualifier"),), (ours.qualifier,)
    elif kind == "qcc":
        got, want = (theirs.get("rqt"), theirs.get("frz")), (ours.qualifier, int(v))
    if want is not None and got != want:
        out.append(Diff(kind, want, got))
    if kind in ("nva", "sva", "flt"):
        if ours.select is not None:  # set-point: S/E + QL
            got = (theirs.get("ql"), theirs.get("select"))
            if got != (ours.qualifier, ours.select):
                out.append(Diff("QOS", (ours.qualifier, ours.select), got))
        elif ours.qualifier is not None and theirs.get("qualifier") != ours.qualifier:
            out.append(Diff("QPM", ours.qualifier, theirs.get("qualifier")))  # P_ME_*
        if ours.quality is not None:
            out += _quality(ours.quality, theirs, True)
    if ours.time is not None:
        out += _time(ours.time, theirs.get("time"))
    return out


def compare_asdu(asdu: ASDU, raw: bytes, apdu: dict[str, Any],
                 profile: Profile = _TSHARK_PROFILE) -> list[Diff]:
    """Differences between an ASDU of ours (``raw``: its octets) and tshark's dissection of
    it (an APDU dict of :func:`iec104.verify.tshark.tshark_apdus`); empty when they agree.

    For the types of :data:`~iec104.verify.tables.TSHARK_RAW` the first IOA and the raw
    octets after it are compared. ``profile``: tshark's fixed one (COT 2, CA 2, IOA 3)."""
    header = {"type_id": int(asdu.type_id), "sq": asdu.sequence,
              "num_objects": len(asdu.objects), "cot": int(asdu.cause),
              "negative": asdu.negative, "test": asdu.test, "oa": asdu.originator,
              "ca": asdu.common_address, "malformed": False}
    out = [Diff(key, value, apdu.get(key)) for key, value in header.items()
           if apdu.get(key) != value]
    objects = apdu["objects"]
    type_id = TypeId(asdu.type_id)
    if type_id in TSHARK_RAW:
        first = asdu.objects[0]
        rest = raw[_ASDU_HEADER + profile.ioa_size:]
        if not objects or objects[0]["ioa"] != first.address:
            out.append(Diff("first IOA", first.address, objects[0]["ioa"] if objects else None))
        elif objects[0].get("raw", b"") != rest:
            out.append(Diff("rawdata", rest.hex(), objects[0].get("raw", b"").hex()))
        return out
    if len(objects) != len(asdu.objects):
        return [*out, Diff("objects", len(asdu.objects), len(objects))]
    for i, (ours, theirs) in enumerate(zip(asdu.objects, objects, strict=True)):
        out += [d._replace(field=f"objects[{i}] {d.field}")
                for d in compare_codec_object(KIND[type_id], ours, theirs)]
    return out
