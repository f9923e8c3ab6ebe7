"""One APDU of our dissection (its rows) against tshark's view of it, field by field.

Theory of operation
-------------------
The rows of :func:`iec104.dissect_table` and the APDU dicts of
:func:`iec104.verify.tshark.tshark_apdus` describe the same APDU; this module compares what a
user sees of it in both tools and returns one :class:`Diff` per field that differs:

* the packet: TCP stream number (``tcp.stream``) and capture time (``frame.time_epoch``, ns);
* the APCI: format, N(S)/N(R), U function;
* the ASDU header: type ID and its name, SQ, number of objects, COT, P/N, T, OA, CA;
* every information object of a type tshark decodes (:data:`~iec104.verify.tables.KIND`):
  IOA, the value of every element type (exactly, and as tshark *shows* normalized and float
  values: 6 significant digits, C's ``%g``), the quality bits (IV NT SB BL OV; counter IV CY
  CA and sequence), S/E, QU, QL, QOI, QRP, QCC (RQT, FRZ), QPM (KPA, LPC, POP), COI, and
  the time tags *as shown*: the date tshark prints for a CP56Time2a (its century rule, not
  the raw fields) and those raw fields too (milliseconds, minutes, hour, day, month, year;
  our rows keep no day of week, SU or GEN), the seconds into the hour tshark prints for a
  CP24Time2a against the minutes and seconds of our completed date, and the time tag's IV;
* for the types tshark does not decode (:data:`~iec104.verify.tables.TSHARK_RAW`): the first
  IOA, and tshark's raw octets against ours after that IOA; for the secure authentication
  messages (no IOA), the 'IOA' and raw octets tshark shows against our octets.

Differences listed in :data:`~iec104.verify.tables.KNOWN_DIFFERENCES` are counted in the
``known`` counter the caller passes, not returned.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from ..codec import ASDU_AT, TypeId, cp56_year, header_layout
from ..codec.security import NO_ADDRESS
from .tables import KIND, TSHARK_RAW

if TYPE_CHECKING:
    from . import Agreement

__all__ = ["Diff", "as_ns", "compare_apdu", "compare_frame", "compare_object",
           "seconds_into_hour", "secure_too_short", "shown_ns"]

# APCI + data unit identifier of tshark's fixed profile (type, VSQ, COT 2, CA 2)
_DUI_END = ASDU_AT + header_layout().objects_at
# + the first IOA (3 octets): where tshark's raw octets of an undecoded type begin.
_FIRST_OBJECT_BODY = _DUI_END + header_layout().ioa_size


class Diff(NamedTuple):
    """One field on which the two tools disagree inside an APDU."""

    field: str
    """'cot', 'object 2 (IOA 114) value', 'well-formed', ..."""
    ours: object
    theirs: object

    def __str__(self) -> str:
        return f"{self.field}: ours {self.ours!r}, tshark {self.theirs!r}"


# -- what tshark shows --------------------------------------------------------------------

_SHOWN = re.compile(r"(\w{3}) +(\d{1,2}), (\d{4}) (\d\d):(\d\d):(\d\d)\.(\d{9}) UTC$")


def shown_ns(text: str | None) -> int | None:
    """The instant tshark *shows* for a CP56Time2a (``'Aug 13, 2009 19:23:00.008000000
    UTC'``) as ns since the epoch; None if it shows no such date."""
    match = _SHOWN.match(text or "")
    if match is None:
        return None
    month, day, year, hour, minute, second, nanos = match.groups()
    when = datetime.strptime(f"{month} {day} {year} {hour}:{minute}:{second}",
                             "%b %d %Y %H:%M:%S").replace(tzinfo=UTC)
    return int(when.timestamp()) * 1_000_000_000 + int(nanos)


def seconds_into_hour(ns: int) -> str:
    """A CP24Time2a as tshark shows it: seconds into the hour, 9 decimals ('599.123000000')."""
    into = ns % 3_600_000_000_000
    return f"{into // 1_000_000_000}.{into % 1_000_000_000:09d}"


def as_ns(value: Any) -> int:
    """A timestamp cell of ours (pandas.Timestamp, datetime or int ns) as int ns."""
    if hasattr(value, "value"):  # pandas.Timestamp keeps the nanoseconds
        return int(value.value)
    if isinstance(value, datetime):
        return round(value.timestamp() * 1_000_000) * 1000 if value.tzinfo else 0
    return int(value)


def _iso(ns: int) -> str:
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{when:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d}"


def _text_field(text: str | None, key: str) -> str | None:
    match = re.search(rf"\b{key}=(\S+)", text or "")
    return match.group(1) if match else None


def _f32(value: float) -> bytes:
    return struct.pack("<f", value)


# -- objects ------------------------------------------------------------------------------

def _cp56_fields(ns: int, tag: dict[str, Any]) -> list[Diff]:
    """The raw CP56Time2a fields tshark lists against our time tag, which keeps them (the
    device's wall clock read as UTC; the year by :func:`iec104.codec.cp56_year`). Day of
    week, SU and GEN are not in our rows."""
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    mine = {"ms": when.second * 1000 + ns // 1_000_000 % 1000, "min": when.minute,
            "hour": when.hour, "day": when.day, "month": when.month, "year": when.year}
    theirs = {**tag, "year": None if tag.get("year") is None else cp56_year(tag["year"])}
    return [Diff(f"time {key}", value, theirs.get(key)) for key, value in mine.items()
            if key in theirs and theirs[key] != value]


def _compare_time(ours: dict[str, Any], tag: dict[str, Any], known: Counter[str]) -> list[Diff]:
    if ours["time_tag"] is None:
        if (ours["error"] or "").startswith("time tag:"):
            known["invalid time tag"] += 1
            return []
        return [Diff("time tag", None, tag.get("text"))]
    out: list[Diff] = []
    ns = as_ns(ours["time_tag"])
    if "hour" in tag:
        out += _cp56_fields(ns, tag)
        # CP56: the date as tshark shows it (its century rule is ours)
        shown = shown_ns(tag.get("text"))
        if shown is not None and tag.get("su") and shown == ns - 3600 * 10**9:
            known["summer time"] += 1
        elif shown != ns:
            out.append(Diff("time tag", _iso(ns), tag.get("text")))
        elif (tag.get("year") or 0) > 99:
            known["year above 99"] += 1
            if not (ours["error"] or "").startswith(f"time tag: year {tag['year']} "):
                out.append(Diff("time tag year flagged", False, tag["year"]))
    elif tag.get("text") != seconds_into_hour(ns):
        # CP24: tshark shows seconds into the hour; we complete the tag from the capture
        # time, so our date shows the same minutes and seconds
        out.append(Diff("time tag (seconds into the hour)",
                        f"{seconds_into_hour(ns)} ({_iso(ns)})", tag.get("text")))
    if tag.get("iv") != ours["time_tag_iv"]:
        out.append(Diff("time IV", ours["time_tag_iv"], tag.get("iv")))
    return out


def compare_object(type_id: int, ours: dict[str, Any], theirs: dict[str, Any],
                   known: Counter[str]) -> list[Diff]:
    """Differences between one of our object rows and tshark's object (empty: agree).

    ``known`` counts the :data:`~iec104.verify.tables.KNOWN_DIFFERENCES` met."""
    if ours["ioa"] != theirs["ioa"]:
        return [Diff("ioa", ours["ioa"], theirs["ioa"])]
    out: list[Diff] = []
    kind = KIND.get(TypeId(type_id)) if type_id in TypeId._value2member_map_ else None
    value = ours["value"]
    text = ours["value_text"]

    def same(key: str, mine: Any, label: str | None = None) -> None:
        if key in theirs and theirs[key] != mine:
            out.append(Diff(label or key, mine, theirs[key]))

    if kind in ("siq", "diq", "command"):
        if isinstance(theirs.get("value"), bool):
            same("value", bool(value))
        else:
            same("value", None if value is None else int(value))
    elif kind == "vti":
        same("value", None if value is None else int(value))
        same("transient", _text_field(text, "transient") == "True")
    elif kind == "bsi":
        same("bitstring_bytes", bytes.fromhex(text or ""), "bitstring octets")
        if "bitstring_bytes" in theirs:
            wire = int.from_bytes(theirs["bitstring_bytes"], "little")
            if value != wire:
                out.append(Diff("bitstring value", value, wire))
    elif kind in ("nva", "sva"):
        same("value", value)
    elif kind == "flt":
        if "value" in theirs and (value is None or _f32(theirs["value"]) != _f32(value)):
            out.append(Diff("float", value, theirs["value"]))
    elif kind == "bcr":
        same("value", None if value is None else int(value), "counter")
        same("seq", int(_text_field(text, "seq") or -1), "counter SQ")
        same("cy", ours["ov"], "counter CY")
        same("ca", " adjusted" in (text or ""), "counter CA")
        same("iv", ours["iv"], "counter IV")
    elif kind == "coi":
        same("coi_r", None if value is None else int(value), "COI cause")
        same("coi_i", _text_field(text, "param_change") == "True", "COI BS1")
    elif kind == "qcc":
        same("rqt", ours["qualifier"], "QCC RQT")
        same("frz", None if value is None else int(value), "QCC FRZ")
    # the value as tshark shows it (6 significant digits, C's %g) is ours rounded alike
    for key in ("normval_text", "float_text"):
        if key in theirs and (value is None or f"{value:.6g}" != theirs[key]):
            out.append(Diff("value shown", None if value is None else f"{value:.6g}",
                            theirs[key]))
    if kind == "qualifier" or (kind in ("nva", "sva", "flt") and ours["select"] is None
                               and ours["qualifier"] is not None):
        same("qualifier", ours["qualifier"])
    if kind != "bcr":
        for bit in ("iv", "nt", "sb", "bl", "ov"):
            same(bit, ours[bit], f"quality {bit.upper()}")
    if "kpa" in theirs:  # QPM: KPA bits 1-6, LPC bit 7, POP bit 8 of our qualifier octet
        q = ours["qualifier"]
        qpm = None if q is None else {"kpa": q & 0x3F, "lpc": q >> 6 & 1, "pop": q >> 7}
        for key in ("kpa", "lpc", "pop"):
            same(key, None if qpm is None else qpm[key], f"QPM {key.upper()}")
    same("select", ours["select"], "S/E")
    same("qu", ours["qualifier"], "QU")
    same("ql", ours["qualifier"], "QL")
    if theirs.get("time") is not None:
        out += _compare_time(ours, theirs["time"], known)
    return out


# -- APDUs --------------------------------------------------------------------------------

_HEADER = ("apci", "ssn", "rsn", "u_func", "type_id", "sq", "num_objects", "cot", "negative",
           "test", "oa", "ca")
_I_ONLY = frozenset(("type_id", "sq", "num_objects", "cot", "negative", "test", "oa", "ca",
                     "ssn"))


def compare_frame(ours: dict[str, Any], theirs: dict[str, Any]) -> list[Diff]:
    """What both tools show of the packet an APDU came in: TCP stream number and time."""
    out: list[Diff] = []
    if theirs["stream"] != ours["stream"]:
        out.append(Diff("tcp.stream", ours["stream"], theirs["stream"]))
    if ours["time"] is not None and theirs["time_ns"] != as_ns(ours["time"]):
        out.append(Diff("time (ns)", as_ns(ours["time"]), theirs["time_ns"]))
    return out


def _compare_undecoded(ours_objects: list[dict[str, Any]], objects: list[dict[str, Any]],
                       type_id: int) -> list[Diff]:
    """A type tshark shows as the first IOA + raw octets: that IOA, and for the types of
    TSHARK_RAW the raw octets (ours after the first IOA)."""
    if not ours_objects:
        return []
    first = ours_objects[0]
    if not objects or objects[0]["ioa"] != first["ioa"]:
        return [Diff("first IOA", first["ioa"], objects[0]["ioa"] if objects else None)]
    if type_id in TSHARK_RAW and first["raw"] is not None:
        rest = bytes(first["raw"][_FIRST_OBJECT_BODY:])
        if objects[0].get("raw", b"") != rest:
            return [Diff("raw octets after the first IOA", rest.hex(),
                         objects[0].get("raw", b"").hex())]
    return []


def _compare_secure(head: dict[str, Any], theirs: dict[str, Any]) -> list[Diff]:
    """tshark's 'IOA' + raw data of a secure message against our octets after the header."""
    if head.get("profile") not in (None, "2/2/3"):
        return []  # tshark's 104 dissector knows 2/2/3 only
    body = bytes(head["raw"])[_DUI_END:]
    objects = theirs["objects"]
    got = (objects[0]["ioa"], objects[0].get("raw", b"")) if objects else (None, b"")
    want = (int.from_bytes(body[:3], "little"), body[3:])
    return [] if got == want else [Diff("secure message octets (tshark: 'IOA' + raw)",
                                        body.hex(), got)]


def secure_too_short(head: dict[str, Any]) -> bool:
    """A secure authentication message shorter than the 3-octet 'IOA' tshark reads in it
    (S_KR_NA_1): tshark flags it malformed, we decode it (a documented difference)."""
    return head["type_id"] in NO_ADDRESS and len(bytes(head["raw"])) < _FIRST_OBJECT_BODY


def compare_apdu(ours: list[dict[str, Any]], theirs: dict[str, Any], result: Agreement, *,
                 header_only: bool = False) -> list[Diff]:
    """Differences between one of our APDUs (its rows) and tshark's (empty: agree).

    Counts the objects compared and the known differences met in ``result``;
    ``header_only`` compares the packet, APCI and ASDU header but not the objects."""
    head = ours[0]
    out = compare_frame(head, theirs)
    for key in _HEADER:
        if head["apci"] != "I" and key in _I_ONLY or key == "rsn" and head["apci"] == "U":
            continue
        if key == "u_func" and head["apci"] != "U" or header_only and key == "num_objects":
            continue
        if theirs[key] != head[key]:
            out.append(Diff(key, head[key], theirs[key]))
    if head["apci"] == "I" and theirs["type_name"] is not None and \
            theirs["type_name"] != head["type_name"]:
        out.append(Diff("type name", head["type_name"], theirs["type_name"]))
    if head["apci"] != "I" or out or header_only:
        return out
    type_id = head["type_id"]
    if type_id in NO_ADDRESS:
        result.known["secure authentication"] += 1
        return out + _compare_secure(head, theirs)
    if (head["error"] or "").startswith("unknown type ID"):
        result.known["unknown type"] += 1
        return out
    objects = theirs["objects"]
    ours_objects = [r for r in ours if r["obj"] is not None]
    if type_id not in KIND or TypeId(type_id) in TSHARK_RAW:
        result.known["undecoded type"] += 1
        result.first_ioa_only += 1
        return out + _compare_undecoded(ours_objects, objects, type_id)
    if len(objects) != len(ours_objects):
        return [*out, Diff("objects", len(ours_objects), len(objects))]
    for i, (mine, them) in enumerate(zip(ours_objects, objects, strict=True)):
        out += [d._replace(field=f"object {i} (IOA {mine['ioa']}) {d.field}")
                for d in compare_object(type_id, mine, them, result.known)]
        result.objects_compared += 1
    return out
