"""Cross-check our dissection of a capture against tshark's, APDU by APDU (``iec104 verify``).

Theory of operation
-------------------
Both tools attribute an APDU to the frame that carried its last octet, so the *k*-th APDU of
frame *n* is the same APDU on both sides. :func:`verify` runs our dissector
(:func:`iec104.dissect_table`) and tshark (:func:`iec104.verify.tshark.tshark_apdus`,
``-T pdml``, which keeps APDUs and objects grouped) over the same file, pairs the APDUs frame
by frame and compares the APCI format, N(S)/N(R), U function, type ID, SQ, number of objects,
COT, P/N, T, OA, CA and, object by object, the IOA, value, quality bits, S/E, qualifier and
time tag. Every difference is a :class:`Disagreement` (frame, APDU, field, ours, theirs),
unless it is one of :data:`KNOWN_DIFFERENCES`: documented limitations of tshark 4.0's IEC 104
dissector or documented choices of ours, which are counted, not reported.

When the two tools cut a frame's octets differently (junk before a start octet, a broken
APCI), the APDUs each tool flags are matched against the other's flags and the well-formed
ones are compared in order. ``tests/test_wireshark_agreement.py`` runs this same code over
every bundled and public capture.

tshark's 104 dissector has a fixed profile (COT 2, CA 2, IOA 3 octets): only captures of
that profile can be verified.
"""

from __future__ import annotations

import os
import re
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from ..codec import TypeId
from ..codec.security import NO_ADDRESS
from .tshark import IEC104_PORT, TSHARK_NO_SEQ_ANALYSIS, tshark_apdus

__all__ = ["KIND", "KNOWN_DIFFERENCES", "TSHARK_RAW", "Agreement", "Disagreement",
           "TSHARK_NO_SEQ_ANALYSIS", "compare_apdu", "compare_object", "our_apdus", "verify"]

T = TypeId

KIND: dict[TypeId, str] = {
    **dict.fromkeys((T.M_SP_NA_1, T.M_SP_TA_1, T.M_SP_TB_1), "siq"),
    **dict.fromkeys((T.M_DP_NA_1, T.M_DP_TA_1, T.M_DP_TB_1), "diq"),
    **dict.fromkeys((T.M_ST_NA_1, T.M_ST_TA_1, T.M_ST_TB_1), "vti"),
    **dict.fromkeys((T.M_BO_NA_1, T.M_BO_TA_1, T.M_BO_TB_1), "bsi"),
    **dict.fromkeys((T.M_ME_NA_1, T.M_ME_TA_1, T.M_ME_TD_1, T.M_ME_ND_1), "nva"),
    **dict.fromkeys((T.M_ME_NB_1, T.M_ME_TB_1, T.M_ME_TE_1), "sva"),
    **dict.fromkeys((T.M_ME_NC_1, T.M_ME_TC_1, T.M_ME_TF_1), "flt"),
    **dict.fromkeys((T.M_IT_NA_1, T.M_IT_TA_1, T.M_IT_TB_1), "bcr"),
    **dict.fromkeys((T.C_SC_NA_1, T.C_SC_TA_1, T.C_DC_NA_1, T.C_DC_TA_1, T.C_RC_NA_1,
                     T.C_RC_TA_1), "command"),
    **dict.fromkeys((T.C_SE_NA_1, T.C_SE_TA_1), "nva"),
    **dict.fromkeys((T.C_SE_NB_1, T.C_SE_TB_1), "sva"),
    **dict.fromkeys((T.C_SE_NC_1, T.C_SE_TC_1), "flt"),
    **dict.fromkeys((T.C_BO_NA_1, T.C_BO_TA_1), "bsi"),
    T.M_EI_NA_1: "coi", T.C_IC_NA_1: "qualifier", T.C_RP_NA_1: "qualifier",
    T.C_CI_NA_1: "qcc", T.C_CS_NA_1: "time only",
    T.P_ME_NA_1: "nva", T.P_ME_NB_1: "sva", T.P_ME_NC_1: "flt",
}
"""What tshark decodes of each type's objects, by the element layout of the type."""

_NO_DECODER = "no element decoder in tshark's ASDU dissector: IOA + rawdata"
_NOT_104 = ("not in tshark's type-name table either (an IEC 101 type that IEC 104 excludes); "
            + _NO_DECODER)
TSHARK_RAW: dict[TypeId, str] = {
    T.M_EP_TA_1: _NOT_104, T.M_EP_TB_1: _NOT_104, T.M_EP_TC_1: _NOT_104,
    T.M_PS_NA_1: _NO_DECODER,
    T.M_EP_TD_1: _NO_DECODER, T.M_EP_TE_1: _NO_DECODER, T.M_EP_TF_1: _NO_DECODER,
    T.C_RD_NA_1: "no information element, and tshark stops after the first IOA: the other "
                 "objects' IOAs come as rawdata",
    T.C_TS_NA_1: _NOT_104, T.C_CD_NA_1: _NOT_104,
    T.C_TS_TA_1: _NO_DECODER, T.P_AC_NA_1: _NO_DECODER,
    **dict.fromkeys((T.F_FR_NA_1, T.F_SR_NA_1, T.F_SC_NA_1, T.F_LS_NA_1, T.F_AF_NA_1,
                     T.F_SG_NA_1, T.F_DR_TA_1, T.F_SC_NB_1), "file transfer: " + _NO_DECODER),
}
"""Type IDs tshark 4.0.17 shows only as IOA + raw octets, and why."""

KNOWN_DIFFERENCES: dict[str, str] = {
    "junk prefix": (
        "octets that are not an APDU start (no 0x68): tshark reports them as a 'prefix' "
        "(iec60870_104.data) of the next APDU, in the frame that completes that APDU; we "
        "record them as a malformed row (apci null, error 'APCI: start octet ...') in the "
        "frame where they were seen, and the next APDU is clean. The octets are the same."),
    "bad APCI": (
        "an APCI that breaks the framing rules: a U- or S-frame whose length octet is not 4 "
        "(snort3 '68 05 07 ...'), an S-frame with reserved control bits set (snort3 "
        "'68 04 05 00 28 00'), an unknown U function (0x05), an I-frame with no ASDU. tshark "
        "dissects the fields anyway (and flags only some of them); we record the octets as one "
        "malformed row with the reason and resynchronise on the next APDU. Such frames are "
        "counted under 'flagged by both' when our row carries an error."),
    "truncated ASDU": (
        "an ASDU shorter than its header or its VSQ count (snort3 SQ=1 VSQ=127, ITI types 24/26 "
        "with 2-4 octets): tshark decodes as many objects as the bytes hold and flags the frame "
        "malformed; we keep the header fields (compared) and record the APDU with an error and "
        "no objects (a partial ASDU is not trusted object by object)."),
    "undecoded type": (
        "tshark 4.0.17 has no element decoder for some type IDs (TSHARK_RAW: M_EP_TD/TE/TF_1 "
        "38-40, C_RD_NA_1 102, C_TS_TA_1 107, P_AC_NA_1 113, file transfer 120-127, ...): it "
        "shows the first IOA and the rest as raw octets. Only the first IOA is compared; we "
        "decode every object."),
    "secure authentication": (
        "IEC 62351-5 messages (type IDs 81-95) carry one object without an IOA; tshark 4.0.17 "
        "names 81-87 but shows the first 3 octets after the data unit identifier as an 'IOA' "
        "and the rest as raw octets (and S_KR_NA_1, 2 octets, as malformed): those octets "
        "must be ours, in a 2/2/3 profile; we decode the message's fields."),
    "unknown type": (
        "a type ID that is not defined in IEC 104 (ITI's 24 and 26): we keep the header and "
        "record 'unknown type ID n: objects not decoded'; tshark shows the header too."),
    "invalid time tag": (
        "a CP56Time2a that is no calendar time (e.g. day 0, month 0): tshark shows the raw "
        "components; our time_tag is null and error says 'time tag: ... out of range', so "
        "there is nothing to compare the components with."),
    "summer time": (
        "a CP56Time2a with SU=1: tshark 4.0 converts it with mktime as local summer time and "
        "shows it one hour before its hour field; time_tag keeps the fields (the device's "
        "wall clock, read as UTC)."),
    "year above 99": (
        "a CP56Time2a year field above the standard's 99 (ITI's 2009 capture sends 109): "
        "both show the same date (2009, the 7-bit field read as 1900 + 109); we also flag "
        "the row, error 'time tag: year 109 outside [0, 99], ...'."),
}
"""Every kind of difference the comparison tolerates (counted, not reported), and why."""


class Diff(NamedTuple):
    """One field on which the two tools disagree inside an APDU."""

    field: str
    """'cot', 'object 2 (IOA 114) value', 'well-formed', ..."""
    ours: object
    theirs: object


class Disagreement(NamedTuple):
    """One difference between our dissection and tshark's."""

    frame: int
    """Frame number in the capture, 1-based (tshark's ``frame.number``)."""
    apdu: int | None
    """Position of the APDU in the frame, 0-based (None: the frame as a whole)."""
    field: str
    ours: object
    theirs: object

    def __str__(self) -> str:
        where = f"frame {self.frame}" + ("" if self.apdu is None else f" APDU {self.apdu}")
        return f"{where}: {self.field}: ours {self.ours!r}, tshark {self.theirs!r}"


@dataclass
class Agreement:
    """What was compared in one capture and where the tools disagree."""

    name: str
    tshark_apdus: int = 0
    our_apdus: int = 0
    apdus_compared: int = 0
    objects_compared: int = 0
    first_ioa_only: int = 0
    flagged_by_both: int = 0
    known: Counter[str] = field(default_factory=Counter)
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """The disagreements as text, one line each."""
        return [str(d) for d in self.disagreements]

    def line(self) -> str:
        known = ", ".join(f"{k}: {n}" for k, n in sorted(self.known.items()) if n) or "-"
        return (f"{self.name:55} tshark {self.tshark_apdus:5} ours {self.our_apdus:5} | "
                f"APDUs compared {self.apdus_compared:5} objects {self.objects_compared:5} "
                f"(+{self.first_ioa_only} first IOA only) flagged by both "
                f"{self.flagged_by_both:3} | known differences: {known}")

    def _add(self, frame: int, apdu: int | None, diffs: Iterable[Diff],
             prefix: str = "") -> None:
        self.disagreements += [Disagreement(frame, apdu, prefix + d.field, d.ours, d.theirs)
                               for d in diffs]


# -- our side ------------------------------------------------------------------------------

def our_apdus(path: str | os.PathLike[str],
              ports: Iterable[int] | None = None) -> list[list[dict[str, Any]]]:
    """The dissector's rows grouped by APDU (file order); connection-level rows dropped.
    Only ``ports`` (default 2404) are decoded, as tshark does: no heuristic."""
    from ..dissector import dissect_table

    out: list[list[dict[str, Any]]] = []
    for row in dissect_table(path, ports, heuristic=False).to_pylist():
        if row["apdu"] is None:
            continue  # gap / dissector event rows: not APDUs
        if out and out[-1][0]["apdu"] == row["apdu"]:
            out[-1].append(row)
        else:
            out.append([row])
    return out


def _is_clean(apdu: list[dict[str, Any]]) -> bool:
    head = apdu[0]
    if head["apci"] is None:
        return False
    error = head["error"]
    return error is None or error.startswith("time tag:")


# Reasons our framer/decoder gives for APDUs that tshark dissects without complaint.
_OUR_APCI_REASONS = ("U-frame with length", "S-frame with length", "S-frame control octets",
                     "U-frame function", "U-frame control octets", "I-frame without ASDU",
                     "APDU length")


def _our_problem(apdu: list[dict[str, Any]]) -> str | None:
    """The documented difference an APDU we flagged falls under (None: undocumented)."""
    error = apdu[0]["error"] or ""
    if error.startswith("APCI: ") and error[6:].startswith(_OUR_APCI_REASONS):
        return "bad APCI"
    if error.startswith("ASDU: ") and apdu[0]["apci"] == "I":
        return "truncated ASDU"
    return None


# -- tshark side -------------------------------------------------------------------------

def _tshark_suspect(apdu: dict[str, Any]) -> str | None:
    """Why tshark's APDU is not a well-formed one (None if it is)."""
    if apdu["apci"] is None:
        return "no APCI"
    if apdu["apci"] in ("S", "U") and apdu["apdu_len"] != 4:
        return f"{apdu['apci']}-frame with length {apdu['apdu_len']}"
    if apdu["apci"] == "U" and apdu["u_func"] is None:
        return f"unknown U function {apdu['u_code']}"
    if apdu["apci"] == "I" and (apdu["apdu_len"] or 0) <= 4:
        return "I-frame without ASDU"
    if apdu["malformed"]:
        return "malformed"
    return None


# -- comparison ---------------------------------------------------------------------------

_HEADER = ("apci", "ssn", "rsn", "u_func", "type_id", "sq", "num_objects", "cot", "negative",
           "test", "oa", "ca")
_I_ONLY = frozenset(("type_id", "sq", "num_objects", "cot", "negative", "test", "oa", "ca",
                     "ssn"))


def _text_field(text: str | None, key: str) -> str | None:
    match = re.search(rf"\b{key}=(\S+)", text or "")
    return match.group(1) if match else None


def _f32(value: float) -> bytes:
    return struct.pack("<f", value)


def _time_components(ns: int) -> dict[str, int]:
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    ms = when.second * 1000 + (ns // 1_000_000) % 1000
    return {"ms": ms, "min": when.minute}


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


def _iso(ns: int) -> str:
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{when:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d}"


def _time_ns(value: Any) -> int:
    if isinstance(value, datetime):
        return round(value.timestamp() * 1_000_000) * 1000 if value.tzinfo else 0
    return int(value)


def _compare_time(ours: dict[str, Any], tag: dict[str, Any], known: Counter[str]) -> list[Diff]:
    if ours["time_tag"] is None:
        if (ours["error"] or "").startswith("time tag:"):
            known["invalid time tag"] += 1
            return []
        return [Diff("time tag", None, tag.get("text"))]
    out: list[Diff] = []
    ns = _time_ns(ours["time_tag"])
    if "hour" in tag:
        # CP56: the date as tshark shows it (its century rule is ours), not the raw fields
        shown = shown_ns(tag.get("text"))
        if shown is not None and tag.get("su") and shown == ns - 3600 * 10**9:
            known["summer time"] += 1
        elif shown != ns:
            out.append(Diff("time tag", _iso(ns), tag.get("text")))
        elif (tag.get("year") or 0) > 99:
            known["year above 99"] += 1
            if not (ours["error"] or "").startswith(f"time tag: year {tag['year']} "):
                out.append(Diff("time tag year flagged", False, tag["year"]))
    else:
        # CP24: tshark shows seconds into the hour; we complete it from the capture
        mine = _time_components(ns)
        out += [Diff(f"time {key}", mine[key], tag.get(key))
                for key in ("ms", "min") if tag.get(key) != mine[key]]
    if tag.get("iv") != ours["time_tag_iv"]:
        out.append(Diff("time IV", ours["time_tag_iv"], tag.get("iv")))
    return out


def compare_object(type_id: int, ours: dict[str, Any], theirs: dict[str, Any],
                   known: Counter[str]) -> list[Diff]:
    """Differences between one of our object rows and tshark's object (empty: agree)."""
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
    if kind == "qualifier" or (kind in ("nva", "sva", "flt") and ours["select"] is None
                               and ours["qualifier"] is not None):
        same("qualifier", ours["qualifier"])
    if kind != "bcr":
        for bit in ("iv", "nt", "sb", "bl", "ov"):
            same(bit, ours[bit], f"quality {bit.upper()}")
    same("select", ours["select"], "S/E")
    same("qu", ours["qualifier"], "QU")
    same("ql", ours["qualifier"], "QL")
    if theirs.get("time") is not None:
        out += _compare_time(ours, theirs["time"], known)
    return out


def compare_apdu(ours: list[dict[str, Any]], theirs: dict[str, Any], result: Agreement, *,
                 header_only: bool = False) -> list[Diff]:
    """Differences between one of our APDUs (its rows) and tshark's (empty: agree)."""
    head = ours[0]
    out: list[Diff] = []
    for key in _HEADER:
        if head["apci"] != "I" and key in _I_ONLY or key == "rsn" and head["apci"] == "U":
            continue
        if key == "u_func" and head["apci"] != "U" or header_only and key == "num_objects":
            continue
        if theirs[key] != head[key]:
            out.append(Diff(key, head[key], theirs[key]))
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
        if ours_objects and (not objects or objects[0]["ioa"] != ours_objects[0]["ioa"]):
            out.append(Diff("first IOA", ours_objects[0]["ioa"],
                            objects[0]["ioa"] if objects else None))
        result.first_ioa_only += 1
        return out
    if len(objects) != len(ours_objects):
        return [*out, Diff("objects", len(ours_objects), len(objects))]
    for i, (mine, them) in enumerate(zip(ours_objects, objects, strict=True)):
        out += [d._replace(field=f"object {i} (IOA {mine['ioa']}) {d.field}")
                for d in compare_object(type_id, mine, them, result.known)]
        result.objects_compared += 1
    return out


def _compare_secure(head: dict[str, Any], theirs: dict[str, Any]) -> list[Diff]:
    """tshark's 'IOA' + raw data of a secure message against our octets after the header."""
    if head.get("profile") not in (None, "2/2/3"):
        return []  # tshark's 104 dissector knows 2/2/3 only
    body = bytes(head["raw"])[12:]  # APCI 6 + type, VSQ, COT 2, CA 2
    objects = theirs["objects"]
    got = (objects[0]["ioa"], objects[0].get("raw", b"")) if objects else (None, b"")
    want = (int.from_bytes(body[:3], "little"), body[3:])
    return [] if got == want else [Diff("secure message octets (tshark: 'IOA' + raw)",
                                        body.hex(), got)]


def _pair(frame: int, mine: list[dict[str, Any]], theirs: dict[str, Any],
          result: Agreement) -> None:
    suspect = _tshark_suspect(theirs)
    index = theirs["index"]
    if _is_clean(mine):
        if suspect == "malformed" and mine[0]["type_id"] in NO_ADDRESS \
                and len(bytes(mine[0]["raw"])) < 15:  # shorter than tshark's 3-octet 'IOA'
            result.known["secure authentication"] += 1
            result.apdus_compared += 1
            return
        if suspect is not None:
            result._add(frame, index, [Diff("well-formed", "decodes cleanly", suspect)])
            return
        result._add(frame, index, compare_apdu(mine, theirs, result))
        result.apdus_compared += 1
        return
    kind = _our_problem(mine)
    if kind is None:
        result._add(frame, index, [Diff("error (undocumented)", mine[0]["error"], suspect)])
        return
    result.known[kind] += 1
    result.flagged_by_both += 1
    if kind == "truncated ASDU" and theirs["apci"] == "I" and mine[0]["type_id"] is not None:
        # the header we could decode must still agree
        diffs = compare_apdu([{**mine[0], "error": None, "obj": None}], theirs, result,
                             header_only=True)
        result._add(frame, index, diffs, "truncated ASDU header: ")


def _unpaired(frame: int, mine: list[list[dict[str, Any]]], them: list[dict[str, Any]],
              result: Agreement, skipped: bool) -> None:
    """Frames where the two tools cut the octets differently: the APDUs tshark flags must
    match octets we flagged or skipped; the well-formed ones are compared in order."""
    mine_clean = [a for a in mine if _is_clean(a)]
    mine_bad = [a for a in mine if not _is_clean(a)]
    them_clean = [a for a in them if _tshark_suspect(a) is None]
    them_bad = [a for a in them if _tshark_suspect(a) is not None]
    undocumented = [a[0]["error"] for a in mine_bad if _our_problem(a) is None]
    if undocumented:
        result._add(frame, None, [Diff("errors (undocumented)", undocumented, None)])
    if them_bad and not mine_bad and not skipped:
        result._add(frame, None, [Diff("flagged APDUs", [],
                                       [_tshark_suspect(a) for a in them_bad])])
    for a in mine_bad:
        result.known[_our_problem(a) or "?"] += 1
    result.flagged_by_both += len(them_bad)
    if len(mine_clean) != len(them_clean):
        result._add(frame, None, [Diff("well-formed APDUs", len(mine_clean),
                                       len(them_clean))])
        return
    for a, b in zip(mine_clean, them_clean, strict=True):
        result._add(frame, b["index"], compare_apdu(a, b, result))
        result.apdus_compared += 1


def verify(path: str | os.PathLike[str], *, port: int | None = None,
           tshark_options: Sequence[str] = (), name: str | None = None) -> Agreement:
    """Dissect ``path`` with us and with tshark and compare every APDU.

    Args:
        path: pcap or pcapng capture (of the 104 profile: COT 2, CA 2, IOA 3 octets).
        port: the IEC 104 server port when it is not 2404 (tshark is told to decode it).
        tshark_options: more tshark arguments, e.g. :data:`TSHARK_NO_SEQ_ANALYSIS` for a
            capture whose TCP sequence numbers tshark would take for retransmissions.
        name: the label of :meth:`Agreement.line` (default: the file's folder and name).

    Raises:
        TsharkError: tshark is missing or failed on the file.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    result = Agreement(name or f"{path.parent.name}/{path.name}")
    theirs = tshark_apdus(path, port=port, extra_opts=tshark_options)
    ours = our_apdus(path, None if port is None else [IEC104_PORT, port])
    result.tshark_apdus = len(theirs)
    result.our_apdus = sum(1 for a in ours if a[0]["apci"] is not None)
    by_frame_ours: dict[int, list[list[dict[str, Any]]]] = defaultdict(list)
    for apdu in ours:
        by_frame_ours[apdu[0]["frame"]].append(apdu)
    by_frame_theirs: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for tapdu in theirs:
        by_frame_theirs[tapdu["frame"]].append(tapdu)
    for frame in sorted(set(by_frame_ours) | set(by_frame_theirs)):
        mine = by_frame_ours.get(frame, [])
        them = by_frame_theirs.get(frame, [])
        result.known["junk prefix"] += sum(1 for a in them if a["prefix"])
        junk = [a for a in mine if (a[0]["error"] or "").startswith("APCI: start octet")]
        result.known["junk prefix"] += len(junk)
        mine = [a for a in mine if a not in junk]
        if len(mine) == len(them):
            for a, b in zip(mine, them, strict=True):  # one to one, in order
                _pair(frame, a, b, result)
        else:
            # tshark glued junk to an APDU that we cut into several pieces (ITI's file)
            _unpaired(frame, mine, them, result, skipped=bool(junk))
    return result
