"""The whole dissector (capture -> reassembly -> records) agrees with Wireshark on real captures.

For every capture in ``captures/`` (generated with our driver) and every public capture
(``captures/public`` and ``../shared/captures/public``, see their SOURCES.md), every APDU of
:func:`dissect_table` is compared with tshark's dissection of the same file
(:func:`tests.support.tshark.tshark_apdus`, ``-T pdml``), on what the user sees:

* the packet: TCP stream number (``tcp.stream``) and capture time (``frame.time_epoch``, ns);
* the APCI: format, N(S)/N(R), U function;
* the ASDU header: type ID and its name, SQ, number of objects, COT, P/N, T, OA, CA;
* every information object: IOA, the value of every element type (exactly, and as tshark
  shows normalized and float values: 6 significant digits), the quality bits (IV NT SB BL OV,
  counter IV CY CA and sequence), S/E, QU, QL, QOI, QRP, QCC (RQT, FRZ), QPM (KPA, LPC,
  POP), COI, and the time tags *as shown*: the date tshark prints for a CP56Time2a (its
  century rule, not the raw fields) and the seconds into the hour it prints for a CP24Time2a
  against the minutes and seconds of our completed date.

The same comparison runs on a generated capture with every standard type ID, SQ=0 and SQ=1,
random values, quality bits, qualifiers and time tags (``test_every_type_with_random_values``).

APDUs are paired by frame: both tools attribute an APDU to the frame that carried its last
octet, so the *k*-th APDU of frame *n* is the same APDU on both sides. Every difference must
be one of :data:`KNOWN_DIFFERENCES` (a documented limitation of tshark 4.0.17's IEC 104
dissector, or a documented choice of ours); anything else fails the test with the frame and
the field. The counts of compared APDUs and objects are printed per file
(``pytest -s tests/test_wireshark_agreement.py``) and asserted to be non-trivial.

A missing tshark or ``../shared`` folder skips outside CI and fails in CI (``CI=true``).
"""

from __future__ import annotations

import functools
import re
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from iec104.codec import TypeId
from iec104.dissector import dissect_table
from tests.codec.test_codec_tshark import KIND, TSHARK_RAW, conversation
from tests.conftest import (
    CAPTURE_SUFFIXES,
    REPO_ROOT,
    public_capture,
    public_capture_names,
    public_captures_dir,
)
from tests.support.pcapwriter import write_pcap
from tests.support.tshark import TSHARK_NO_SEQ_ANALYSIS, ensure_tshark, tshark_apdus

OWN_CAPTURES_DIR = REPO_ROOT / "captures"

TSHARK_OPTIONS: dict[str, tuple[str, ...]] = {
    # SOURCES.md: every segment has Seq=1/Ack=1; with sequence analysis on, tshark takes
    # 3,421 of the 3,422 frames for retransmissions and dissects one APDU.
    "heinrihs_attack-stages-synthetic-broken-tcpseq.pcap": TSHARK_NO_SEQ_ANALYSIS,
}

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
        "tshark 4.0.17 has no element decoder for some type IDs (test_codec_tshark.TSHARK_RAW: "
        "M_EP_TD/TE/TF_1 38-40, C_RD_NA_1 102, C_TS_TA_1 107, P_AC_NA_1 113, file transfer "
        "120-127, ...): it shows the first IOA and the rest as raw octets. Only the first IOA "
        "is compared; we decode every object."),
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
"""Every kind of difference the comparison tolerates, and why (see the module docstring)."""


def capture_ids() -> list[str]:
    """``captures/NAME`` for our own captures, ``public/NAME`` for the public ones."""
    own = sorted(p.name for p in OWN_CAPTURES_DIR.iterdir() if p.name.endswith(CAPTURE_SUFFIXES))
    return [f"captures/{name}" for name in own] + \
        [f"public/{name}" for name in public_capture_names()]


def _path(capture_id: str) -> Path:
    folder, name = capture_id.split("/", 1)
    return OWN_CAPTURES_DIR / name if folder == "captures" else public_capture(name)


# -- our side ------------------------------------------------------------------------------

def our_apdus(path: Path) -> list[list[dict[str, Any]]]:
    """The dissector's rows grouped by APDU (file order); connection-level rows dropped."""
    table = dissect_table(path)
    rows = table.to_pylist()
    out: list[list[dict[str, Any]]] = []
    for row in rows:
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


# -- tshark side -------------------------------------------------------------------------

_U_BY_CODE = {1: "STARTDT_ACT", 2: "STARTDT_CON", 4: "STOPDT_ACT", 8: "STOPDT_CON",
              0x10: "TESTFR_ACT", 0x20: "TESTFR_CON"}


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

@dataclass
class Agreement:
    """What was compared in one capture and what differed."""

    name: str
    tshark_apdus: int = 0
    our_apdus: int = 0
    apdus_compared: int = 0
    objects_compared: int = 0
    first_ioa_only: int = 0
    flagged_by_both: int = 0
    known: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        known = ", ".join(f"{k}: {n}" for k, n in sorted(self.known.items()) if n) or "-"
        return (f"{self.name:55} tshark {self.tshark_apdus:5} ours {self.our_apdus:5} | "
                f"APDUs compared {self.apdus_compared:5} objects {self.objects_compared:5} "
                f"(+{self.first_ioa_only} first IOA only) flagged by both "
                f"{self.flagged_by_both:3} | known differences: {known}")


_HEADER = (("apci", "apci"), ("ssn", "ssn"), ("rsn", "rsn"), ("u_func", "u_func"),
           ("type_id", "type_id"), ("sq", "sq"), ("num_objects", "num_objects"),
           ("cot", "cot"), ("negative", "negative"), ("test", "test"), ("oa", "oa"),
           ("ca", "ca"))


def _text_field(text: str | None, key: str) -> str | None:
    match = re.search(rf"\b{key}=(\S+)", text or "")
    return match.group(1) if match else None


def _f32(value: float) -> bytes:
    return struct.pack("<f", value)


def _seconds_into_hour(ns: int) -> str:
    """A CP24Time2a as tshark shows it: seconds into the hour, 9 decimals."""
    into = ns % 3_600_000_000_000
    return f"{into // 1_000_000_000}.{into % 1_000_000_000:09d}"


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


def compare_object(type_id: int, ours: dict[str, Any], theirs: dict[str, Any],
                   known: Counter) -> list[str]:
    """Differences between one of our object rows and tshark's object (empty: agree)."""
    out: list[str] = []
    if ours["ioa"] != theirs["ioa"]:
        return [f"ioa: tshark {theirs['ioa']}, ours {ours['ioa']}"]
    kind = KIND.get(TypeId(type_id)) if type_id in TypeId._value2member_map_ else None
    value = ours["value"]

    def same(key: str, mine: Any, label: str | None = None) -> None:
        if key in theirs and theirs[key] != mine:
            out.append(f"{label or key}: tshark {theirs[key]!r}, ours {mine!r}")

    if kind in ("siq", "diq", "command"):
        if isinstance(theirs.get("value"), bool):
            same("value", bool(value), "value")
        else:
            same("value", None if value is None else int(value), "value")
    elif kind == "vti":
        same("value", None if value is None else int(value), "value")
        same("transient", _text_field(ours["value_text"], "transient") == "True", "transient")
    elif kind == "bsi":
        same("bitstring_bytes", bytes.fromhex(ours["value_text"] or ""), "bitstring octets")
        if "bitstring_bytes" in theirs and value != int.from_bytes(theirs["bitstring_bytes"],
                                                                    "little"):
            out.append(f"bitstring value: ours {value}")
    elif kind in ("nva", "sva"):
        same("value", value, "value")
    elif kind == "flt":
        if "value" in theirs and (value is None or _f32(theirs["value"]) != _f32(value)):
            out.append(f"float: tshark {theirs['value']!r}, ours {value!r}")
    elif kind == "bcr":
        same("value", None if value is None else int(value), "counter")
        same("seq", int(_text_field(ours["value_text"], "seq") or -1), "counter SQ")
        same("cy", ours["ov"], "counter CY")
        same("ca", " adjusted" in (ours["value_text"] or ""), "counter CA")
        same("iv", ours["iv"], "counter IV")
    elif kind == "coi":
        same("coi_r", None if value is None else int(value), "COI cause")
        same("coi_i", _text_field(ours["value_text"], "param_change") == "True", "COI BS1")
    elif kind == "qcc":
        same("rqt", ours["qualifier"], "QCC RQT")
        same("frz", None if value is None else int(value), "QCC FRZ")
    # the value as tshark shows it (6 significant digits, C's %g) is ours rounded alike
    for key in ("normval_text", "float_text"):
        if key in theirs and (value is None or f"{value:.6g}" != theirs[key]):
            out.append(f"value shown: tshark {theirs[key]!r}, ours {value!r}")
    if kind in ("qualifier",) or (kind in ("nva", "sva", "flt") and ours["select"] is None
                                  and ours["qualifier"] is not None):
        same("qualifier", ours["qualifier"], "qualifier")
    if kind != "bcr":
        for bit in ("iv", "nt", "sb", "bl", "ov"):
            same(bit, ours[bit], f"quality {bit.upper()}")
    if "kpa" in theirs:  # QPM: KPA bits 1-6, LPC bit 7, POP bit 8 of our qualifier octet
        q = ours["qualifier"]
        mine_qpm = None if q is None else {"kpa": q & 0x3F, "lpc": q >> 6 & 1, "pop": q >> 7}
        for key in ("kpa", "lpc", "pop"):
            same(key, None if mine_qpm is None else mine_qpm[key], f"QPM {key.upper()}")
    same("select", ours["select"], "S/E")
    same("qu", ours["qualifier"], "QU")
    same("ql", ours["qualifier"], "QL")
    tag = theirs.get("time")
    if tag is not None:
        if ours["time_tag"] is None:
            if (ours["error"] or "").startswith("time tag:"):
                known["invalid time tag"] += 1
            else:
                out.append("time tag: tshark has one, ours is null")
        else:
            ns = _ns(ours["time_tag"])
            if "hour" in tag:
                # CP56: the date as tshark shows it (its century rule is ours), not raw fields
                shown = shown_ns(tag.get("text"))
                if shown is not None and tag.get("su") and shown == ns - 3600 * 10**9:
                    known["summer time"] += 1
                elif shown != ns:
                    out.append(f"time tag: tshark shows {tag.get('text')!r}, ours {_iso(ns)}")
                elif (tag.get("year") or 0) > 99:
                    known["year above 99"] += 1
                    if not (ours["error"] or "").startswith(f"time tag: year {tag['year']} "):
                        out.append(f"time tag: year {tag['year']} is not flagged")
            else:
                # CP24: tshark shows seconds into the hour ('599.123000000'); we complete the
                # tag from the capture time, so our date shows the same minutes and seconds
                shown = _seconds_into_hour(ns)
                if tag.get("text") != shown:
                    out.append(f"time tag: tshark shows {tag.get('text')!r}, ours {shown!r} "
                               f"({_iso(ns)})")
            if tag.get("iv") != ours["time_tag_iv"]:
                out.append(f"time IV: tshark {tag.get('iv')}, ours {ours['time_tag_iv']}")
    return out


def _ns(value: Any) -> int:
    """A timestamp cell of ours (pandas.Timestamp, datetime or int ns) as int ns."""
    if hasattr(value, "value"):  # pandas.Timestamp keeps the nanoseconds
        return int(value.value)
    if isinstance(value, datetime):
        return round(value.timestamp() * 1_000_000) * 1000 if value.tzinfo else 0
    return int(value)


def compare_frame(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """What both tools show for the packet an APDU came in: TCP stream number and time."""
    out: list[str] = []
    if theirs["stream"] != ours["stream"]:
        out.append(f"tcp.stream: tshark {theirs['stream']}, ours {ours['stream']}")
    if ours["time"] is not None and theirs["time_ns"] != _ns(ours["time"]):
        out.append(f"time: tshark {theirs['time_ns']}, ours {_ns(ours['time'])}")
    return out


def compare_apdu(ours: list[dict[str, Any]], theirs: dict[str, Any], result: Agreement, *,
                 header_only: bool = False) -> list[str]:
    head = ours[0]
    out: list[str] = compare_frame(head, theirs)
    for tkey, okey in _HEADER:
        mine = head[okey]
        if head["apci"] != "I" and tkey in ("type_id", "sq", "num_objects", "cot", "negative",
                                            "test", "oa", "ca", "ssn"):
            continue
        if tkey == "rsn" and head["apci"] == "U":
            continue
        if tkey == "u_func" and head["apci"] != "U" or header_only and tkey == "num_objects":
            continue
        if theirs[tkey] != mine:
            out.append(f"{tkey}: tshark {theirs[tkey]!r}, ours {mine!r}")
    if head["apci"] == "I" and theirs["type_name"] is not None and \
            theirs["type_name"] != head["type_name"]:
        out.append(f"type name: tshark {theirs['type_name']!r}, ours {head['type_name']!r}")
    if head["apci"] != "I" or out or header_only:
        return out
    type_id = head["type_id"]
    if (head["error"] or "").startswith("unknown type ID"):
        result.known["unknown type"] += 1
        return out
    objects = theirs["objects"]
    ours_objects = [r for r in ours if r["obj"] is not None]
    if type_id not in KIND or TypeId(type_id) in TSHARK_RAW:
        result.known["undecoded type"] += 1
        if ours_objects and (not objects or objects[0]["ioa"] != ours_objects[0]["ioa"]):
            out.append(f"first IOA: tshark {objects[:1]}, ours {ours_objects[0]['ioa']}")
        result.first_ioa_only += 1
        return out
    if len(objects) != len(ours_objects):
        return out + [f"{len(objects)} objects in tshark, {len(ours_objects)} in ours"]
    for i, (mine, them) in enumerate(zip(ours_objects, objects)):
        out += [f"object {i} (IOA {mine['ioa']}) {d}"
                for d in compare_object(type_id, mine, them, result.known)]
        result.objects_compared += 1
    return out


def compare_capture(path: Path) -> Agreement:
    result = Agreement(f"{path.parent.name}/{path.name}")
    theirs = tshark_apdus(path, extra_opts=TSHARK_OPTIONS.get(path.name, ()))
    ours = our_apdus(path)
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
            # one to one, in order
            for a, b in zip(mine, them):
                _pair(frame, a, b, result)
        else:
            # tshark glued junk to an APDU that we cut into several pieces (ITI's file)
            _unpaired(frame, mine, them, result, skipped=bool(junk))
    return result


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


def _pair(frame: int, mine: list[dict[str, Any]], theirs: dict[str, Any],
          result: Agreement) -> None:
    suspect = _tshark_suspect(theirs)
    where = f"frame {frame} APDU {theirs['index']}"
    if _is_clean(mine):
        if suspect is not None:
            result.problems.append(f"{where}: tshark: {suspect}; ours decodes it cleanly")
            return
        result.problems += [f"{where}: {d}" for d in compare_apdu(mine, theirs, result)]
        result.apdus_compared += 1
        return
    kind = _our_problem(mine)
    if kind is None:
        result.problems.append(f"{where}: ours: {mine[0]['error']} (undocumented)")
        return
    result.known[kind] += 1
    result.flagged_by_both += 1
    if kind == "truncated ASDU" and theirs["apci"] == "I" and mine[0]["type_id"] is not None:
        # the header we could decode must still agree
        diffs = compare_apdu([{**mine[0], "error": None, "obj": None}], theirs, result,
                             header_only=True)
        result.problems += [f"{where} (truncated ASDU header): {d}" for d in diffs]


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
        result.problems.append(f"frame {frame}: ours: {undocumented} (undocumented)")
    if them_bad and not mine_bad and not skipped:
        result.problems.append(f"frame {frame}: tshark flags "
                               f"{[_tshark_suspect(a) for a in them_bad]}, ours has no error")
    for a in mine_bad:
        result.known[_our_problem(a) or "?"] += 1
    result.flagged_by_both += len(them_bad)
    if len(mine_clean) != len(them_clean):
        result.problems.append(f"frame {frame}: {len(them_clean)} well-formed APDUs in "
                               f"tshark, {len(mine_clean)} in ours")
        return
    for a, b in zip(mine_clean, them_clean):
        result.problems += [f"frame {frame} APDU {b['index']}: {d}"
                            for d in compare_apdu(a, b, result)]
        result.apdus_compared += 1


@functools.cache
def agreement(capture_id: str) -> Agreement:
    return compare_capture(_path(capture_id))


# -- tests --------------------------------------------------------------------------------

@pytest.mark.parametrize("capture_id", capture_ids())
def test_every_apdu_agrees_with_tshark(capture_id: str) -> None:
    path = _path(capture_id)
    ensure_tshark()
    result = agreement(capture_id)
    print(result.line())
    assert not result.problems, f"{result.name}:\n" + "\n".join(result.problems)
    assert set(result.known) <= set(KNOWN_DIFFERENCES)
    # every APDU tshark saw was compared or flagged by both
    assert result.tshark_apdus > 0, f"tshark found no IEC 104 in {path.name}"
    assert result.apdus_compared + result.flagged_by_both == result.tshark_apdus


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_type_with_random_values_agrees(tmp_path: Path, seed: int) -> None:
    """Every standard type ID, SQ=0 and SQ=1, random values, quality bits, qualifiers, S/E
    and time tags (the conversation of test_codec_tshark), through the whole dissector."""
    ensure_tshark()
    path = write_pcap(tmp_path / "every-type.pcap", [(d, raw) for d, _, raw in
                                                     conversation(seed)], seed=seed)
    result = compare_capture(path)
    print(result.line())
    assert not result.problems, "\n".join(result.problems)
    assert set(result.known) <= set(KNOWN_DIFFERENCES)
    assert result.apdus_compared + result.flagged_by_both == result.tshark_apdus
    assert result.objects_compared >= 2 * len(KIND)


def test_agreement_table() -> None:
    """All files at once: the table printed (``-s``) and the totals."""
    public_captures_dir()  # the totals are over every public capture
    ensure_tshark()
    results = [agreement(c) for c in capture_ids()]
    print()
    for r in results:
        print(r.line())
    apdus = sum(r.apdus_compared for r in results)
    objects = sum(r.objects_compared for r in results)
    print(f"{'total':55} APDUs compared {apdus}, objects compared {objects}")
    assert apdus >= 4400 and objects >= 4300


def test_comparison_detects_differences() -> None:
    """The comparison is not vacuous: a changed value, quality bit or time tag is caught."""
    row = {"ioa": 5, "value": 1.0, "value_text": "ON", "iv": False, "nt": False, "sb": False,
           "bl": False, "ov": None, "select": None, "qualifier": None, "time_tag": None,
           "time_tag_iv": None, "error": None}
    theirs = {"ioa": 5, "value": True, "iv": False, "nt": False, "sb": False, "bl": False}
    known: Counter = Counter()
    assert compare_object(1, row, theirs, known) == []
    assert compare_object(1, {**row, "value": 0.0}, theirs, known)
    assert compare_object(1, {**row, "iv": True}, theirs, known)
    assert compare_object(1, {**row, "ioa": 6}, theirs, known)
    stamp = int(datetime(2024, 2, 29, 13, 14, 15, 16000, UTC).timestamp() * 1e9)
    timed = {**row, "time_tag": stamp, "time_tag_iv": False}
    tag = {"ms": 15016, "min": 14, "hour": 13, "day": 29, "month": 2, "year": 24, "iv": False,
           "text": "Feb 29, 2024 13:14:15.016000000 UTC"}
    assert compare_object(30, timed, {**theirs, "time": tag}, known) == []
    assert compare_object(30, timed, {**theirs, "time": {
        **tag, "text": "Feb 29, 2024 12:14:15.016000000 UTC"}}, known)
    assert compare_object(30, timed, {**theirs, "time": {
        **tag, "text": "Feb 29, 2124 13:14:15.016000000 UTC"}}, known)
    assert compare_object(30, timed, {**theirs, "time": {**tag, "iv": True}}, known)
    # the date shown decides, not the raw year field: 109 is 2009 on both sides
    y2009 = int(datetime(2009, 8, 13, 19, 23, 0, 8000, UTC).timestamp() * 1e9)
    tag109 = {**tag, "year": 109, "text": "Aug 13, 2009 19:23:00.008000000 UTC"}
    flagged = {**row, "time_tag": y2009, "time_tag_iv": False,
               "error": "time tag: year 109 outside [0, 99], read as 2009 (as Wireshark)"}
    assert compare_object(30, flagged, {**theirs, "time": tag109}, known) == []
    assert compare_object(30, {**flagged, "error": None}, {**theirs, "time": tag109}, known)
    y2109 = int(datetime(2109, 8, 13, 19, 23, 0, 8000, UTC).timestamp() * 1e9)
    assert compare_object(30, {**flagged, "time_tag": y2109}, {**theirs, "time": tag109}, known)


def test_comparison_detects_differences_in_what_is_shown() -> None:
    """The checks added for what the user sees fail when the two sides differ."""
    known: Counter = Counter()
    row = {"ioa": 7, "value": 11.25, "value_text": "11.25", "iv": False, "nt": False,
           "sb": False, "bl": False, "ov": False, "select": None, "qualifier": None,
           "time_tag": None, "time_tag_iv": None, "error": None}
    flt = {"ioa": 7, "value": 11.25, "float_text": "11.25", "iv": False}
    assert compare_object(13, row, flt, known) == []
    assert compare_object(13, row, {**flt, "float_text": "11.3"}, known)
    nva = {"ioa": 7, "value": 0.0764465, "normval_text": "0.0764465"}
    assert compare_object(9, {**row, "value": 2505 / 32768}, {**nva, "value": 2505 / 32768},
                          known) == []
    assert compare_object(9, {**row, "value": 2505 / 32768},
                          {**nva, "value": 2505 / 32768, "normval_text": "0.0764"}, known)
    # CP24Time2a: tshark's seconds into the hour against the minutes and seconds of our date
    stamp = int(datetime(2026, 11, 26, 8, 9, 59, tzinfo=UTC).timestamp()) * 10**9 + 123_000_000
    timed = {**row, "time_tag": stamp, "time_tag_iv": False}
    cp24 = {"ms": 59123, "min": 9, "iv": False, "text": "599.123000000"}
    assert _seconds_into_hour(stamp) == "599.123000000"
    assert compare_object(14, timed, {**flt, "time": cp24}, known) == []
    assert compare_object(14, timed, {**flt, "time": {**cp24, "text": "599.124000000"}}, known)
    # QPM: KPA, LPC and POP are the bits of our qualifier octet
    qpm = {"ioa": 7, "value": 11.25, "qualifier": 0x81, "kpa": 1, "lpc": 0, "pop": 1}
    assert compare_object(112, {**row, "qualifier": 0x81}, qpm, known) == []
    assert compare_object(112, {**row, "qualifier": 0x81}, {**qpm, "lpc": 1}, known)
    # the packet: TCP stream number and capture time
    ours = {"stream": 3, "time": 1_795_680_599_123_890_698}
    theirs = {"stream": 3, "time_ns": 1_795_680_599_123_890_698}
    assert compare_frame(ours, theirs) == []
    assert compare_frame(ours, {**theirs, "stream": 2})
    assert compare_frame(ours, {**theirs, "time_ns": theirs["time_ns"] + 1})
