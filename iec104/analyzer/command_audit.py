"""Command audit and interrogation completeness.

Commands (:func:`commands`)
---------------------------
Every request with cause ACTIVATION or DEACTIVATION of the audited types (process commands
45-51 and 58-64, clock synchronisation, test, reset process, delay acquisition, parameters)
is one row. Its answers are the frames in the opposite direction of the same connection with
the same type ID, common address and IOA, matched first-in first-out:

* the confirmation: cause ACTIVATION_CONFIRMATION (or DEACTIVATION_CONFIRMATION), or one of
  the refusals 44-47 (unknown type, cause, common address, IOA); with the P/N bit it is a
  negative confirmation;
* the termination: cause ACTIVATION_TERMINATION, after a positive confirmation.

``status`` is ``ok``, ``negative``, ``unanswered`` (no confirmation at all) or
``no_actterm`` (confirmed positively but never terminated although a termination was
expected: by default when the outstation terminates other process commands in the same data,
see ``expect_actterm``). Answers that match no request are rows with status
``unmatched_response`` (a replayed or injected confirmation looks like this).

Select before operate: for commands with an S/E bit, an execute is checked against the last
select of the same point on the same connection. ``sbo_violation`` says what is wrong:
``execute without select`` (the point is operated with select elsewhere in the data),
``execute after negative select``, ``execute before select confirmed``, ``select expired``
(later than ``sbo_timeout``), ``execute differs from select`` (value or qualifier).

Interrogations (:func:`interrogations`)
---------------------------------------
Each general (C_IC_NA_1) or counter (C_CI_NA_1) interrogation activation: its ACTCON, the
objects that answered with the matching cause (INTERROGATED_STATION / GROUPnn /
COUNTERnn), its ACTTERM, and for station-wide interrogations the points of that common
address seen elsewhere in the data that did not answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..codec import Cause, TypeId
from .frames import (
    AUDITED_COMMANDS,
    INTERROGATIONS,
    MONITOR_TYPES,
    NEGATIVE_CAUSES,
    PROCESS_COMMANDS,
    SBO_COMMANDS,
    Source,
    as_frame,
    by_time,
    empty,
    endpoint,
    opt_bool,
    opt_int,
)

BROADCAST_CA = 0xFFFF

COMMAND_COLUMNS = {
    "stream": "int64", "time": "datetime64[ns, UTC]", "frame": "Int64", "src": "str",
    "dst": "str", "direction": "str", "type_name": "str", "cot_name": "str", "ca": "int64",
    "ioa": "int64", "value": "float64", "value_text": "str", "select": "object",
    "qualifier": "Int64", "status": "str", "sbo_violation": "str", "con_cot": "str",
    "con_negative": "object", "rtt_con": "float64", "rtt_term": "float64",
    "con_time": "datetime64[ns, UTC]", "term_time": "datetime64[ns, UTC]", "detail": "str",
}

_RESPONSES = {int(Cause.ACTIVATION_CONFIRMATION), int(Cause.DEACTIVATION_CONFIRMATION),
              int(Cause.ACTIVATION_TERMINATION)} | {int(c) for c in NEGATIVE_CAUSES}
_CON_OF = {int(Cause.ACTIVATION): int(Cause.ACTIVATION_CONFIRMATION),
           int(Cause.DEACTIVATION): int(Cause.DEACTIVATION_CONFIRMATION)}
_NEG = {int(c) for c in NEGATIVE_CAUSES}
_TERM = int(Cause.ACTIVATION_TERMINATION)
_ACT = int(Cause.ACTIVATION)
_DEACT = int(Cause.DEACTIVATION)


def _object_rows(df: pd.DataFrame, types: frozenset[int]) -> pd.DataFrame:
    rows = df[df["apci"].eq("I") & df["type_id"].isin(types) & df["ioa"].notna()]
    return by_time(rows)


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return rows.to_dict("records")  # type: ignore[return-value]


def _terminating_stations(df: pd.DataFrame) -> set[str]:
    rows = df[df["apci"].eq("I") & df["type_id"].isin(PROCESS_COMMANDS)
              & df["cot"].eq(_TERM)]
    return {endpoint(r.src, r.sport) for r in rows.itertuples(index=False)}


def commands(source: Source, *, expect_actterm: bool | str = "auto",
             sbo_timeout: float = 30.0) -> pd.DataFrame:
    """Audit every command (see the module docstring).

    Args:
        source: DataFrame, Parquet path/directory or capture.
        expect_actterm: ``True``/``False``, or ``"auto"``: an outstation that sent an
            ACTTERM for any process command is expected to terminate every positively
            confirmed process-command execution.
        sbo_timeout: seconds an execute may follow its select.

    Returns:
        One row per request (and per unmatched answer), in time order: ``stream, time,
        frame, src, dst, direction, type_name, cot_name, ca, ioa, value, value_text,
        select, qualifier``; the answers ``con_time, con_cot, con_negative, term_time``;
        round trips ``rtt_con``/``rtt_term`` in seconds; ``status``; ``sbo_violation``
        (empty when none); ``detail``.
    """
    df = as_frame(source)
    rows = _records(_object_rows(df, AUDITED_COMMANDS))
    terminating = _terminating_stations(df) if expect_actterm == "auto" else set()
    sbo_points = {(r["ca"], r["ioa"]) for r in rows
                  if opt_bool(r["select"]) and r["cot"] == _ACT and r["type_id"] in SBO_COMMANDS}
    out: list[dict[str, Any]] = []
    pending: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    open_select: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        cot = opt_int(r["cot"])
        key = (r["stream"], r["type_id"], r["ca"], r["ioa"])
        src, dst = endpoint(r["src"], r["sport"]), endpoint(r["dst"], r["dport"])
        if cot in (_ACT, _DEACT) and not r["negative"]:
            cmd = {"stream": int(r["stream"]), "time": r["time"], "frame": opt_int(r["frame"]),
                   "src": src, "dst": dst, "direction": r["direction"],
                   "type_name": r["type_name"], "cot_name": r["cot_name"], "ca": int(r["ca"]),
                   "ioa": int(r["ioa"]), "value": r["value"], "value_text": r["value_text"],
                   "select": opt_bool(r["select"]), "qualifier": opt_int(r["qualifier"]),
                   "con_time": pd.NaT, "con_cot": None, "con_negative": None,
                   "term_time": pd.NaT, "status": "", "sbo_violation": "", "detail": "",
                   "_cot": cot, "_type": int(r["type_id"])}
            pending.setdefault(key, []).append(cmd)
            out.append(cmd)
            _check_sbo(cmd, key, open_select, sbo_points, sbo_timeout)
            continue
        if cot not in _RESPONSES:
            continue
        cands = pending.get(key, [])
        if not cands and r["ca"] != BROADCAST_CA:
            cands = pending.get((r["stream"], r["type_id"], BROADCAST_CA, r["ioa"]), [])
        cands = [c for c in cands if c["direction"] != r["direction"]]
        match = None
        if cot == _TERM:
            match = next((c for c in cands if c["_cot"] == _ACT and c["con_negative"] is False
                          and not c["select"] and pd.isna(c["term_time"])), None)
            if match is not None:
                match["term_time"] = r["time"]
        else:
            match = next((c for c in cands if c["con_cot"] is None
                          and (cot in _NEG or _CON_OF[c["_cot"]] == cot)), None)
            if match is not None:
                match["con_time"] = r["time"]
                match["con_cot"] = r["cot_name"]
                match["con_negative"] = bool(r["negative"]) or cot in _NEG
        if match is None:
            out.append({"stream": int(r["stream"]), "time": r["time"],
                        "frame": opt_int(r["frame"]), "src": src, "dst": dst,
                        "direction": r["direction"], "type_name": r["type_name"],
                        "cot_name": r["cot_name"], "ca": int(r["ca"]), "ioa": int(r["ioa"]),
                        "value": r["value"], "value_text": r["value_text"],
                        "select": opt_bool(r["select"]), "qualifier": opt_int(r["qualifier"]),
                        "con_time": pd.NaT, "con_cot": None, "con_negative": None,
                        "term_time": pd.NaT, "status": "unmatched_response",
                        "sbo_violation": "", "detail": f"{r['cot_name']} that answers no "
                                                       "request seen", "_cot": cot,
                        "_type": int(r["type_id"])})
    if not out:
        return empty(COMMAND_COLUMNS)
    for cmd in out:
        if cmd["status"]:
            continue
        term_expected = (cmd["_type"] in PROCESS_COMMANDS and cmd["_cot"] == _ACT
                         and not cmd["select"]
                         and (expect_actterm is True
                              or (expect_actterm == "auto" and cmd["dst"] in terminating)))
        if cmd["con_cot"] is None:
            cmd["status"] = "unanswered"
            cmd["detail"] = _join(cmd["detail"], "no confirmation")
        elif cmd["con_negative"]:
            cmd["status"] = "negative"
            cmd["detail"] = _join(cmd["detail"], f"refused: {cmd['con_cot']} negative")
        elif term_expected and pd.isna(cmd["term_time"]):
            cmd["status"] = "no_actterm"
            cmd["detail"] = _join(cmd["detail"], "confirmed but never terminated")
        else:
            cmd["status"] = "ok"
    table = pd.DataFrame(out).drop(columns=["_cot", "_type"])
    # "time" too: a column of NaT only (a capture without timestamps) would come out naive
    for name in ("time", "con_time", "term_time"):
        table[name] = pd.to_datetime(table[name], utc=True)
    table["rtt_con"] = (table["con_time"] - table["time"]).dt.total_seconds()
    table["rtt_term"] = (table["term_time"] - table["time"]).dt.total_seconds()
    for name in ("frame", "qualifier"):
        table[name] = table[name].astype("Int64")
    table = table.sort_values("time", kind="stable").reset_index(drop=True)
    return table[list(COMMAND_COLUMNS)]


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _check_sbo(cmd: dict[str, Any], key: tuple[Any, ...],
               open_select: dict[tuple[Any, ...], dict[str, Any]],
               sbo_points: set[tuple[Any, Any]], timeout: float) -> None:
    if cmd["_type"] not in SBO_COMMANDS:
        return
    if cmd["_cot"] == _DEACT:
        open_select.pop(key, None)
        return
    if cmd["select"]:
        open_select[key] = cmd
        return
    sel = open_select.pop(key, None)
    if sel is None:
        if (cmd["ca"], cmd["ioa"]) in sbo_points:
            cmd["sbo_violation"] = "execute without select"
            cmd["detail"] = "the point is operated with select-before-operate elsewhere"
        return
    waited = (cmd["time"] - sel["time"]).total_seconds()
    problems = []
    if sel["con_negative"]:
        problems.append(("execute after negative select",
                         f"select at frame {sel['frame']} was refused"))
    elif sel["con_cot"] is None:
        problems.append(("execute before select confirmed",
                         f"select at frame {sel['frame']} not confirmed yet"))
    if waited > timeout:
        problems.append(("select expired", f"{waited:.1f} s after the select "
                                           f"(timeout {timeout:g} s)"))
    if (sel["value_text"], sel["qualifier"]) != (cmd["value_text"], cmd["qualifier"]):
        problems.append(("execute differs from select",
                         f"select {sel['value_text']} qu={sel['qualifier']}, execute "
                         f"{cmd['value_text']} qu={cmd['qualifier']}"))
    if problems:
        cmd["sbo_violation"] = "; ".join(p for p, _ in problems)
        cmd["detail"] = "; ".join(d for _, d in problems)


INTERROGATION_COLUMNS = {
    "stream": "int64", "time": "datetime64[ns, UTC]", "frame": "Int64", "src": "str",
    "dst": "str", "type_name": "str", "ca": "int64", "qualifier": "Int64", "group": "str",
    "status": "str", "con_negative": "object", "duration": "float64", "objects": "int64",
    "n_points": "int64", "points": "object", "missing_points": "object",
    "con_time": "datetime64[ns, UTC]", "term_time": "datetime64[ns, UTC]", "detail": "str",
}


def _expected_cause(type_id: int, qualifier: int | None) -> tuple[int, str]:
    q = qualifier or 0
    if type_id == TypeId.C_IC_NA_1:
        if q == 20:
            return int(Cause.INTERROGATED_STATION), "station"
        if 21 <= q <= 36:
            return q, f"group {q - 20}"
        return -1, f"QOI {q}"
    rqt = q & 0x3F
    if rqt == 5:
        return int(Cause.INTERROGATED_COUNTER), "counters"
    if 1 <= rqt <= 4:
        return int(Cause.INTERROGATED_COUNTER) + rqt, f"counter group {rqt}"
    return -1, f"RQT {rqt}"


def interrogations(source: Source) -> pd.DataFrame:
    """General and counter interrogations and how completely they were answered.

    Returns:
        One row per activation, in time order: ``stream, time, frame, src, dst, type_name,
        ca, qualifier`` (QOI/QCC), ``group`` (``station``, ``group n``, ``counters``...),
        ``con_time, con_negative, term_time``, ``duration`` (activation to termination,
        seconds), ``objects`` (information objects received with the matching cause),
        ``n_points`` and ``points`` (sorted IOAs that answered), ``missing_points`` (for
        station/all-counter interrogations: IOAs of that common address reported elsewhere
        in the data that did not answer), ``status`` (``complete``, ``negative``,
        ``unanswered``, ``no_actterm``) and ``detail``.
    """
    df = as_frame(source)
    is_data = (df["apci"].eq("I") & df["type_id"].isin(MONITOR_TYPES) & df["ioa"].notna()
               & df["cot"].between(20, 41))
    is_control = df["apci"].eq("I") & df["type_id"].isin(INTERROGATIONS) & df["ioa"].notna()
    # one pass in time order; equal times keep file order (an ACTTERM in the same segment
    # as the data comes after it)
    rows = _records(by_time(df[is_data | is_control]))
    out: list[dict[str, Any]] = []
    opened: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        if r["type_id"] not in INTERROGATIONS:
            for ic in reversed(opened.get(int(r["stream"]), [])):
                if (ic["_cause"] == r["cot"] and ic["direction"] != r["direction"]
                        and ic["ca"] in (r["ca"], BROADCAST_CA) and pd.isna(ic["term_time"])):
                    ic["_points"].add(int(r["ioa"]))
                    ic["_cas"].add(int(r["ca"]))
                    ic["objects"] += 1
                    break
            continue
        cot = opt_int(r["cot"])
        stream = int(r["stream"])
        if cot == _ACT and not r["negative"]:
            cause, group = _expected_cause(int(r["type_id"]), opt_int(r["qualifier"]))
            ic = {"stream": stream, "time": r["time"], "frame": opt_int(r["frame"]),
                  "src": endpoint(r["src"], r["sport"]), "dst": endpoint(r["dst"], r["dport"]),
                  "type_name": r["type_name"], "ca": int(r["ca"]),
                  "qualifier": opt_int(r["qualifier"]), "group": group, "con_time": pd.NaT,
                  "con_negative": None, "term_time": pd.NaT, "objects": 0,
                  "direction": r["direction"], "_cause": cause, "_type": int(r["type_id"]),
                  "_points": set(), "_cas": set()}
            opened.setdefault(stream, []).append(ic)
            out.append(ic)
            continue
        for ic in opened.get(stream, []):
            if (ic["_type"] != r["type_id"] or ic["direction"] == r["direction"]
                    or ic["ca"] not in (r["ca"], BROADCAST_CA)):
                continue
            if cot == _TERM and pd.isna(ic["term_time"]) and ic["con_negative"] is False:
                ic["term_time"] = r["time"]
                break
            if (cot == int(Cause.ACTIVATION_CONFIRMATION) or cot in _NEG) \
                    and ic["con_negative"] is None:
                ic["con_time"] = r["time"]
                ic["con_negative"] = bool(r["negative"]) or cot in _NEG
                break
    if not out:
        return empty(INTERROGATION_COLUMNS)
    known = _known_points(df)
    for ic in out:
        points = sorted(ic.pop("_points"))
        cas = ic.pop("_cas") or {ic["ca"]}
        ic["n_points"] = len(points)
        ic["points"] = points
        whole = ic["group"] in ("station", "counters")
        counters = ic["_type"] == TypeId.C_CI_NA_1
        expected = set().union(*(known.get((ca, counters), set()) for ca in cas))
        ic["missing_points"] = sorted(expected - set(points)) if whole else []
        if ic["con_negative"] is None:
            ic["status"], ic["detail"] = "unanswered", "no confirmation"
        elif ic["con_negative"]:
            ic["status"], ic["detail"] = "negative", "refused"
        elif pd.isna(ic["term_time"]):
            ic["status"], ic["detail"] = "no_actterm", "confirmed but never terminated"
        else:
            ic["status"], ic["detail"] = "complete", ""
        if ic["missing_points"]:
            ic["detail"] = _join(ic["detail"], f"{len(ic['missing_points'])} known point(s) "
                                               "did not answer")
    table = pd.DataFrame(out).drop(columns=["direction", "_cause", "_type"])
    # "time" too: a column of NaT only (a capture without timestamps) would come out naive
    for name in ("time", "con_time", "term_time"):
        table[name] = pd.to_datetime(table[name], utc=True)
    table["duration"] = (table["term_time"] - table["time"]).dt.total_seconds()
    for name in ("frame", "qualifier"):
        table[name] = table[name].astype("Int64")
    table["objects"] = table["objects"].astype(np.int64)
    return table[list(INTERROGATION_COLUMNS)].reset_index(drop=True)


_COUNTER_TYPES = {int(TypeId.M_IT_NA_1), int(TypeId.M_IT_TA_1), int(TypeId.M_IT_TB_1)}


def _known_points(df: pd.DataFrame) -> dict[tuple[int, bool], set[int]]:
    rows = df[df["apci"].eq("I") & df["type_id"].isin(MONITOR_TYPES) & df["ioa"].notna()]
    rows = rows.drop_duplicates(["ca", "ioa", "type_id"])
    known: dict[tuple[int, bool], set[int]] = {}
    for ca, ioa, type_id in zip(rows["ca"], rows["ioa"], rows["type_id"]):
        known.setdefault((int(ca), int(type_id) in _COUNTER_TYPES), set()).add(int(ioa))
    return known
