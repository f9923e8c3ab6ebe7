"""Cross-check our dissection of a capture against tshark's, APDU by APDU (``iec104 verify``).

Theory of operation
-------------------
Both tools attribute an APDU to the frame that carried its last octet, so the *k*-th APDU of
frame *n* is the same APDU on both sides. :func:`verify` runs our dissector
(:func:`iec104.dissect_table`) and tshark (:func:`iec104.verify.tshark.tshark_apdus`,
``-T pdml``, which keeps APDUs and objects grouped) over the same file, pairs the APDUs frame
by frame and compares each pair with :func:`iec104.verify.compare.compare_apdu`: the TCP stream
number and capture time (ns) of the packet, the APCI, the ASDU header with the type name, and
object by object what tshark shows (values exactly and as rounded for display, quality bits,
S/E, qualifiers, the dates shown for time tags; that module's docstring lists every field).
Every difference is a :class:`Disagreement` (frame, APDU, field, ours, theirs), unless it is
one of :data:`KNOWN_DIFFERENCES` (:mod:`iec104.verify.tables`): documented limitations of
tshark 4.0's IEC 104 dissector or documented choices of ours, which are counted, not reported.

When the two tools cut a frame's octets differently (junk before a start octet, a broken
APCI), the APDUs each tool flags are matched against the other's flags and the well-formed
ones are compared in order. ``tests/dissect/test_wireshark_agreement.py`` runs this same code
over every bundled and public capture, and ``tests/codec/test_codec_tshark.py`` checks the
codec's objects against tshark with :mod:`iec104.verify.codec`.

tshark's 104 dissector has a fixed profile (COT 2, CA 2, IOA 3 octets): only captures of
that profile can be verified.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .compare import (
    Diff,
    as_ns,
    compare_apdu,
    compare_frame,
    compare_object,
    seconds_into_hour,
    secure_too_short,
    shown_ns,
)
from .tables import KIND, KNOWN_DIFFERENCES, TSHARK_RAW
from .tshark import IEC104_PORT, TSHARK_NO_SEQ_ANALYSIS, tshark_apdus

__all__ = ["KIND", "KNOWN_DIFFERENCES", "TSHARK_NO_SEQ_ANALYSIS", "TSHARK_RAW", "Agreement",
           "Diff", "Disagreement", "as_ns", "compare_apdu", "compare_frame", "compare_object",
           "our_apdus", "seconds_into_hour", "shown_ns", "verify"]


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


# -- pairing -----------------------------------------------------------------------------

def _pair(frame: int, mine: list[dict[str, Any]], theirs: dict[str, Any],
          result: Agreement) -> None:
    suspect = _tshark_suspect(theirs)
    index = theirs["index"]
    if _is_clean(mine):
        if suspect == "malformed" and secure_too_short(mine[0]):
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
