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

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..codec import Cause, TypeId
from .frames import (
    AUDITED_COMMANDS,
    INTERROGATIONS,
    NEGATIVE_CAUSES,
    PROCESS_COMMANDS,
    PROCESS_INFO_TYPES,
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


def _object_rows(df: pd.DataFrame, types: frozenset[int]) -> list[dict[str, Any]]:
    return _records(df, df["apci"].eq("I") & df["type_id"].isin(types) & df["ioa"].notna())


# the columns the matching of commands and interrogations reads (a row as a dict of these
# only: building dicts of every column was most of their time)
_READ = ["stream", "time", "frame", "src", "sport", "dst", "dport", "direction", "type_name",
         "cot_name", "type_id", "cot", "negative", "ca", "ioa", "value", "value_text",
         "select", "qualifier"]


def _records(df: pd.DataFrame, mask: pd.Series) -> list[dict[str, Any]]:
    """The rows of ``df`` where ``mask``, as dicts of the columns read, in time order (equal
    times keep file order)."""
    rows = by_time(df.loc[mask, _READ])
    # column by column (to_dict boxes cell by cell): the same Python values as to_dict,
    # NA as None, but a missing time stays NaT (time arithmetic on it gives NaT/nan, not an error)
    cols = [rows[c].astype(object).tolist() if c == "time"
            else rows[c].astype(object).where(rows[c].notna(), None).tolist() for c in _READ]
    return [dict(zip(_READ, cells)) for cells in zip(*cols)]


def _terminating_stations(df: pd.DataFrame) -> set[str]:
    rows = df[df["apci"].eq("I") & df["type_id"].isin(PROCESS_COMMANDS)
              & df["cot"].eq(_TERM)]
    return {endpoint(r.src, r.sport) for r in rows.itertuples(index=False)}


@dataclass(slots=True)
class _Command:
    """One audited request (or an answer that matched none), completed as answers arrive.

    The fields up to ``detail`` are the columns of :func:`commands` (``rtt_*`` are computed
    on the table); ``cot`` and ``type_id`` are the request's codes, used for matching."""

    stream: int
    time: Any
    frame: int | None
    src: str
    dst: str
    direction: str
    type_name: str
    cot_name: str
    ca: int
    ioa: int
    value: Any
    value_text: Any
    select: bool | None
    qualifier: int | None
    cot: int
    type_id: int
    con_time: Any = pd.NaT
    con_cot: str | None = None
    con_negative: bool | None = None
    term_time: Any = pd.NaT
    status: str = ""
    sbo_violation: str = ""
    detail: str = ""


def _command(r: dict[str, Any], cot: int) -> _Command:
    """The :class:`_Command` of an object row (a request, or an answer nobody asked for)."""
    return _Command(int(r["stream"]), r["time"], opt_int(r["frame"]),
                    endpoint(r["src"], r["sport"]), endpoint(r["dst"], r["dport"]),
                    r["direction"], r["type_name"], r["cot_name"], int(r["ca"]), int(r["ioa"]),
                    r["value"], r["value_text"], opt_bool(r["select"]),
                    opt_int(r["qualifier"]), cot, int(r["type_id"]))


def _candidates(pending: dict[tuple[Any, ...], list[_Command]], key: tuple[Any, ...],
                r: dict[str, Any]) -> list[_Command]:
    """Open requests an answer row ``r`` may belong to: same connection, type, CA (or a
    broadcast request), IOA, opposite direction; oldest first."""
    cands = pending.get(key, [])
    if not cands and r["ca"] != BROADCAST_CA:
        cands = pending.get((r["stream"], r["type_id"], BROADCAST_CA, r["ioa"]), [])
    return [c for c in cands if c.direction != r["direction"]]


def _answer(cands: list[_Command], r: dict[str, Any], cot: int) -> _Command | None:
    """Record answer ``r`` (cause ``cot``) on the first request it answers; that request."""
    if cot == _TERM:
        match = next((c for c in cands if c.cot == _ACT and c.con_negative is False
                      and not c.select and pd.isna(c.term_time)), None)
        if match is not None:
            match.term_time = r["time"]
        return match
    match = next((c for c in cands if c.con_cot is None
                  and (cot in _NEG or _CON_OF[c.cot] == cot)), None)
    if match is not None:
        match.con_time = r["time"]
        match.con_cot = r["cot_name"]
        match.con_negative = bool(r["negative"]) or cot in _NEG
    return match


def _settle(cmd: _Command, expect_actterm: bool | str, terminating: set[str]) -> None:
    """The ``status`` (and ``detail``) of a request once every answer is in."""
    if cmd.status:
        return
    term_expected = (cmd.type_id in PROCESS_COMMANDS and cmd.cot == _ACT and not cmd.select
                     and (expect_actterm is True
                          or (expect_actterm == "auto" and cmd.dst in terminating)))
    if cmd.con_cot is None:
        cmd.status, cmd.detail = "unanswered", _join(cmd.detail, "no confirmation")
    elif cmd.con_negative:
        cmd.status = "negative"
        cmd.detail = _join(cmd.detail, f"refused: {cmd.con_cot} negative")
    elif term_expected and pd.isna(cmd.term_time):
        cmd.status = "no_actterm"
        cmd.detail = _join(cmd.detail, "confirmed but never terminated")
    else:
        cmd.status = "ok"


def _with_times(table: pd.DataFrame) -> pd.DataFrame:
    """Time columns as UTC datetimes, frame/qualifier as nullable ints (in place)."""
    # "time" too: a column of NaT only (a capture without timestamps) would come out naive
    for name in ("time", "con_time", "term_time"):
        table[name] = pd.to_datetime(table[name], utc=True)
    for name in ("frame", "qualifier"):
        table[name] = table[name].astype("Int64")
    return table


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
    rows = _object_rows(df, AUDITED_COMMANDS)
    terminating = _terminating_stations(df) if expect_actterm == "auto" else set()
    sbo_points = {(r["ca"], r["ioa"]) for r in rows
                  if opt_bool(r["select"]) and r["cot"] == _ACT and r["type_id"] in SBO_COMMANDS}
    out: list[_Command] = []
    pending: dict[tuple[Any, ...], list[_Command]] = {}
    open_select: dict[tuple[Any, ...], _Command] = {}
    for r in rows:
        cot = opt_int(r["cot"])
        key = (r["stream"], r["type_id"], r["ca"], r["ioa"])
        if cot in (_ACT, _DEACT) and not r["negative"]:
            cmd = _command(r, cot)
            pending.setdefault(key, []).append(cmd)
            out.append(cmd)
            _check_sbo(cmd, key, open_select, sbo_points, sbo_timeout)
        elif cot in _RESPONSES and _answer(_candidates(pending, key, r), r, cot) is None:
            cmd = _command(r, cot)  # type: ignore[arg-type]
            cmd.status = "unmatched_response"
            cmd.detail = f"{r['cot_name']} that answers no request seen"
            out.append(cmd)
    if not out:
        return empty(COMMAND_COLUMNS)
    for cmd in out:
        _settle(cmd, expect_actterm, terminating)
    table = _with_times(pd.DataFrame([_row(cmd, COMMAND_COLUMNS) for cmd in out]))
    table["rtt_con"] = (table["con_time"] - table["time"]).dt.total_seconds()
    table["rtt_term"] = (table["term_time"] - table["time"]).dt.total_seconds()
    table = table.sort_values("time", kind="stable").reset_index(drop=True)
    return table[list(COMMAND_COLUMNS)]


def _row(record: Any, columns: dict[str, str]) -> dict[str, Any]:
    """The cells of a record for the columns of a result table (computed ones left out)."""
    return {name: getattr(record, name) for name in columns if hasattr(record, name)}


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _check_sbo(cmd: _Command, key: tuple[Any, ...], open_select: dict[tuple[Any, ...], _Command],
               sbo_points: set[tuple[Any, Any]], timeout: float) -> None:
    if cmd.type_id not in SBO_COMMANDS:
        return
    if cmd.cot == _DEACT:
        open_select.pop(key, None)
        return
    if cmd.select:
        open_select[key] = cmd
        return
    sel = open_select.pop(key, None)
    if sel is None:
        if (cmd.ca, cmd.ioa) in sbo_points:
            cmd.sbo_violation = "execute without select"
            cmd.detail = "the point is operated with select-before-operate elsewhere"
        return
    waited = (cmd.time - sel.time).total_seconds()
    problems = []
    if sel.con_negative:
        problems.append(("execute after negative select",
                         f"select at frame {sel.frame} was refused"))
    elif sel.con_cot is None:
        problems.append(("execute before select confirmed",
                         f"select at frame {sel.frame} not confirmed yet"))
    if waited > timeout:
        problems.append(("select expired", f"{waited:.1f} s after the select "
                                           f"(timeout {timeout:g} s)"))
    if (sel.value_text, sel.qualifier) != (cmd.value_text, cmd.qualifier):
        problems.append(("execute differs from select",
                         f"select {sel.value_text} qu={sel.qualifier}, execute "
                         f"{cmd.value_text} qu={cmd.qualifier}"))
    if problems:
        cmd.sbo_violation = "; ".join(p for p, _ in problems)
        cmd.detail = "; ".join(d for _, d in problems)


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


@dataclass(slots=True)
class _Interrogation:
    """One interrogation activation, completed as its answers arrive.

    The fields up to ``objects`` are columns of :func:`interrogations`; ``direction``,
    ``cause`` (the COT its data must carry), ``type_id``, and the IOAs/CAs that answered
    are for matching."""

    stream: int
    time: Any
    frame: int | None
    src: str
    dst: str
    type_name: str
    ca: int
    qualifier: int | None
    group: str
    direction: str
    cause: int
    type_id: int
    con_time: Any = pd.NaT
    con_negative: bool | None = None
    term_time: Any = pd.NaT
    objects: int = 0
    answered: set[int] = field(default_factory=set)
    answering_cas: set[int] = field(default_factory=set)
    status: str = ""
    detail: str = ""
    n_points: int = 0
    points: list[int] = field(default_factory=list)
    missing_points: list[int] = field(default_factory=list)


def _interrogation(r: dict[str, Any]) -> _Interrogation:
    """The :class:`_Interrogation` opened by an activation row."""
    cause, group = _expected_cause(int(r["type_id"]), opt_int(r["qualifier"]))
    return _Interrogation(int(r["stream"]), r["time"], opt_int(r["frame"]),
                          endpoint(r["src"], r["sport"]), endpoint(r["dst"], r["dport"]),
                          r["type_name"], int(r["ca"]), opt_int(r["qualifier"]), group,
                          r["direction"], cause, int(r["type_id"]))


def _count_data(opened: list[_Interrogation], r: dict[str, Any]) -> None:
    """Credit a data object row to the latest open interrogation it answers (if any)."""
    for ic in reversed(opened):
        if (ic.cause == r["cot"] and ic.direction != r["direction"]
                and ic.ca in (r["ca"], BROADCAST_CA) and pd.isna(ic.term_time)):
            ic.answered.add(int(r["ioa"]))
            ic.answering_cas.add(int(r["ca"]))
            ic.objects += 1
            return


def _control(opened: list[_Interrogation], r: dict[str, Any], cot: int | None) -> None:
    """Record a confirmation or termination row on the interrogation it answers."""
    for ic in opened:
        if (ic.type_id != r["type_id"] or ic.direction == r["direction"]
                or ic.ca not in (r["ca"], BROADCAST_CA)):
            continue
        if cot == _TERM and pd.isna(ic.term_time) and ic.con_negative is False:
            ic.term_time = r["time"]
            return
        if (cot == int(Cause.ACTIVATION_CONFIRMATION) or cot in _NEG) \
                and ic.con_negative is None:
            ic.con_time = r["time"]
            ic.con_negative = bool(r["negative"]) or cot in _NEG
            return


def _settle_interrogation(ic: _Interrogation,
                          known: dict[tuple[int, bool], set[int]]) -> None:
    """Points, missing points, ``status`` and ``detail`` once every answer is in."""
    ic.points = sorted(ic.answered)
    ic.n_points = len(ic.points)
    if ic.group in ("station", "counters"):
        counters = ic.type_id == TypeId.C_CI_NA_1
        expected = set().union(*(known.get((ca, counters), set())
                                 for ca in ic.answering_cas or {ic.ca}))
        ic.missing_points = sorted(expected - ic.answered)
    if ic.con_negative is None:
        ic.status, ic.detail = "unanswered", "no confirmation"
    elif ic.con_negative:
        ic.status, ic.detail = "negative", "refused"
    elif pd.isna(ic.term_time):
        ic.status, ic.detail = "no_actterm", "confirmed but never terminated"
    else:
        ic.status, ic.detail = "complete", ""
    if ic.missing_points:
        ic.detail = _join(ic.detail, f"{len(ic.missing_points)} known point(s) did not answer")


def interrogations(source: Source, *, streams: Collection[int] | None = None
                   ) -> pd.DataFrame:
    """General and counter interrogations and how completely they were answered.

    ``streams``: only the interrogations of these connections (default: all); the points
    of the other connections still count as the points an interrogation should return.

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
    is_data = (df["apci"].eq("I") & df["type_id"].isin(PROCESS_INFO_TYPES) & df["ioa"].notna()
               & df["cot"].between(20, 41))
    is_control = df["apci"].eq("I") & df["type_id"].isin(INTERROGATIONS) & df["ioa"].notna()
    if streams is not None:  # an interrogation is answered on its own connection
        mine = df["stream"].isin(list(streams)).fillna(False).astype(bool)
        is_data, is_control = is_data & mine, is_control & mine
    out: list[_Interrogation] = []
    opened: dict[int, list[_Interrogation]] = {}
    # one pass in time order; equal times keep file order (an ACTTERM in the same segment
    # as the data comes after it)
    for r in _records(df, is_data | is_control):
        stream_open = opened.setdefault(int(r["stream"]), [])
        cot = opt_int(r["cot"])
        if r["type_id"] not in INTERROGATIONS:
            _count_data(stream_open, r)
        elif cot == _ACT and not r["negative"]:
            stream_open.append(_interrogation(r))
            out.append(stream_open[-1])
        else:
            _control(stream_open, r, cot)
    if not out:
        return empty(INTERROGATION_COLUMNS)
    known = _known_points(df)
    for ic in out:
        _settle_interrogation(ic, known)
    table = _with_times(pd.DataFrame([_row(ic, INTERROGATION_COLUMNS) for ic in out]))
    table["duration"] = (table["term_time"] - table["time"]).dt.total_seconds()
    table["objects"] = table["objects"].astype(np.int64)
    return table[list(INTERROGATION_COLUMNS)].reset_index(drop=True)


_COUNTER_TYPES = {int(TypeId.M_IT_NA_1), int(TypeId.M_IT_TA_1), int(TypeId.M_IT_TB_1)}


def _known_points(df: pd.DataFrame) -> dict[tuple[int, bool], set[int]]:
    rows = df[df["apci"].eq("I") & df["type_id"].isin(PROCESS_INFO_TYPES) & df["ioa"].notna()]
    rows = rows.drop_duplicates(["ca", "ioa", "type_id"])
    known: dict[tuple[int, bool], set[int]] = {}
    for ca, ioa, type_id in zip(rows["ca"], rows["ioa"], rows["type_id"]):
        known.setdefault((int(ca), int(type_id) in _COUNTER_TYPES), set()).add(int(ioa))
    return known
