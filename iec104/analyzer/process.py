"""Investigations of the process, not the protocol: limits, rates, stale points, feedback.

Theory of operation
-------------------
The protocol may be flawless while the process it carries is not: a feeder current beyond
its limit, a temperature that jumps faster than physics allows, a measurement that stopped
updating, a breaker that did not move after an execute. These investigations read the
point timeline (:func:`~.points.point_timeline`, points keyed by ``(ca, ioa,
point_type)``) and a *point list*: a small table (a CSV file or a DataFrame) with one row
per point and the columns

``ca, ioa`` (required), ``point_type`` (optional: the type without time tag, e.g.
``M_ME_NC_1``; empty matches any), ``low``, ``high`` (limits of the value), ``max_rate``
(largest credible change per second), ``feedback_ioa`` (for a command point: the status
point that shows its effect; default the command's own IOA), ``name`` (free text).

Empty cells mean "no such check". :func:`learn_limits` builds a point list from a baseline
capture (its minimum, maximum and largest rate per point, widened by a margin).

* :func:`limit_violations`: reports below ``low`` / above ``high`` (kind ``low``/``high``)
  and changes faster than ``max_rate`` between consecutive reports (kind ``rate``).
* :func:`stale_points`: a point whose silence exceeds ``factor`` times its usual interval
  (the median between its reports), within the capture or at its end (``stale`` /
  ``stale_at_end``); points with fewer than ``min_reports`` reports have no usual interval.
* :func:`command_feedback`: every executed, positively confirmed single/double command
  (:func:`~.command_audit.commands`) is matched with the first report of its feedback point
  within ``within`` seconds; ``status`` is ``confirmed`` (the state commanded), ``wrong``
  (another state) or ``no_feedback``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from .command_audit import commands
from .frames import Source, as_frame, empty, ns
from .points import point_timeline

__all__ = ["POINT_LIST_COLUMNS", "command_feedback", "learn_limits", "limit_violations",
           "read_point_list", "stale_points"]

POINT_LIST_COLUMNS = ["ca", "ioa", "point_type", "low", "high", "max_rate", "feedback_ioa",
                      "name"]

VIOLATION_COLUMNS = {"time": "datetime64[ns, UTC]", "ca": "int64", "ioa": "int64",
                     "point_type": "str", "name": "str", "kind": "str", "value": "float64",
                     "limit": "float64", "detail": "str"}
STALE_COLUMNS = {"ca": "int64", "ioa": "int64", "point_type": "str", "kind": "str",
                 "last_report": "datetime64[ns, UTC]", "silence": "float64",
                 "usual_interval": "float64", "reports": "int64", "detail": "str"}
FEEDBACK_COLUMNS = {"time": "datetime64[ns, UTC]", "ca": "int64", "ioa": "int64",
                    "type_name": "str", "value": "float64", "feedback_ioa": "int64",
                    "status": "str", "delay": "float64", "feedback_value": "float64",
                    "detail": "str"}
_NS = 1_000_000_000


def read_point_list(points: str | os.PathLike[str] | pd.DataFrame) -> pd.DataFrame:
    """The point list as a DataFrame with every column of :data:`POINT_LIST_COLUMNS`.

    Raises:
        ValueError: ``ca`` or ``ioa`` is missing, or a limit is not a number.
    """
    table = points.copy() if isinstance(points, pd.DataFrame) else pd.read_csv(
        points, dtype={"point_type": "string", "name": "string"}, skipinitialspace=True)
    missing = {"ca", "ioa"} - set(table.columns)
    if missing:
        raise ValueError(f"point list: no {', '.join(sorted(missing))} column")
    for column in POINT_LIST_COLUMNS:
        if column not in table.columns:
            table[column] = pd.NA
    for column in ("low", "high", "max_rate"):
        try:
            table[column] = pd.to_numeric(table[column]).astype("float64")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"point list: {column}: {exc}") from None
    table["ca"] = table["ca"].astype("int64")
    table["ioa"] = table["ioa"].astype("int64")
    table["feedback_ioa"] = pd.to_numeric(table["feedback_ioa"]).astype("Int64")
    table["point_type"] = table["point_type"].astype("string")
    table["name"] = table["name"].astype("string")
    return table[POINT_LIST_COLUMNS].reset_index(drop=True)


def _matching(timeline: pd.DataFrame, point: Any) -> pd.DataFrame:
    mask = (timeline["ca"] == point.ca) & (timeline["ioa"] == point.ioa) & \
        timeline["value"].notna() & timeline["time"].notna()
    if isinstance(point.point_type, str) and point.point_type:
        mask &= timeline["point_type"] == point.point_type
    return timeline[mask]


def _rates(reports: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per consecutive pair of reports: |change| per second, and seconds between them."""
    times = ns(reports["time"]) / _NS
    values = reports["value"].to_numpy(dtype="float64")
    dt = np.diff(times)
    dv = np.abs(np.diff(values))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(dt > 0, dv / np.where(dt > 0, dt, 1), np.where(dv > 0, np.inf, 0.0))
    return rate, dt


def limit_violations(source: Source, points: str | os.PathLike[str] | pd.DataFrame
                     ) -> pd.DataFrame:
    """Reports outside ``low``/``high`` and changes faster than ``max_rate``, in time order.

    Columns: ``time, ca, ioa, point_type, name, kind`` (``low``, ``high``, ``rate``),
    ``value`` (the report's value, or the rate per second), ``limit``, ``detail``.
    """
    timeline = point_timeline(source)
    found: list[dict[str, Any]] = []
    for point in read_point_list(points).itertuples(index=False):
        reports = _matching(timeline, point)
        if not len(reports):
            continue
        name = point.name if isinstance(point.name, str) else ""
        for kind, limit, bad in (("low", point.low, reports["value"] < point.low),
                                 ("high", point.high, reports["value"] > point.high)):
            if np.isnan(limit):
                continue
            for r in reports[bad.fillna(False).to_numpy(dtype=bool)].itertuples(index=False):
                found.append({"time": r.time, "ca": r.ca, "ioa": r.ioa,
                              "point_type": r.point_type, "name": name, "kind": kind,
                              "value": r.value, "limit": limit,
                              "detail": f"{r.value:g} is {'below' if kind == 'low' else 'above'}"
                                        f" the {kind} limit {limit:g}"})
        if not np.isnan(point.max_rate) and len(reports) > 1:
            rate, dt = _rates(reports)
            for i in np.flatnonzero(rate > point.max_rate):
                r = reports.iloc[i + 1]
                before = reports.iloc[i]["value"]
                found.append({"time": r["time"], "ca": r["ca"], "ioa": r["ioa"],
                              "point_type": r["point_type"], "name": name, "kind": "rate",
                              "value": float(rate[i]), "limit": point.max_rate,
                              "detail": f"{before:g} -> {r['value']:g} in {dt[i]:.3f} s "
                                        f"({rate[i]:g}/s, at most {point.max_rate:g}/s)"})
    if not found:
        return empty(VIOLATION_COLUMNS)
    table = pd.DataFrame(found)
    return table.sort_values(["time", "ca", "ioa"], kind="stable").reset_index(drop=True)


def learn_limits(baseline: Source, *, margin: float = 0.1) -> pd.DataFrame:
    """A point list from normal traffic: per point the observed minimum and maximum, widened
    by ``margin`` times their range (at least ``margin`` times the value), and the largest
    observed rate times ``1 + margin``."""
    timeline = point_timeline(baseline)
    rows = []
    for (ca, ioa, kind), reports in timeline[timeline["value"].notna()].groupby(
            ["ca", "ioa", "point_type"], sort=True):
        low, high = float(reports["value"].min()), float(reports["value"].max())
        pad = margin * max(high - low, abs(high), abs(low), 1e-9)
        rate, _ = _rates(reports) if len(reports) > 1 else (np.array([]), None)
        finite = rate[np.isfinite(rate)] if len(rate) else rate
        rows.append({"ca": ca, "ioa": ioa, "point_type": kind, "low": low - pad,
                     "high": high + pad,
                     "max_rate": float(finite.max()) * (1 + margin) if len(finite) and
                     finite.max() > 0 else np.nan, "feedback_ioa": pd.NA, "name": ""})
    return read_point_list(pd.DataFrame(rows, columns=POINT_LIST_COLUMNS))


def stale_points(source: Source, *, factor: float = 3.0, min_reports: int = 3,
                 end: Any = None) -> pd.DataFrame:
    """Points silent for longer than ``factor`` times their usual interval.

    Args:
        source: DataFrame, Parquet path/directory or capture.
        factor: how many usual intervals of silence make a point stale (> 1).
        min_reports: reports a point needs for a usual interval (>= 3).
        end: the end of the observation (default: the last row's time in ``source``).

    Returns:
        One row per silence: ``ca, ioa, point_type, kind`` (``stale`` inside the capture,
        ``stale_at_end`` until its end), ``last_report`` (before the silence), ``silence``
        and ``usual_interval`` in seconds, ``reports``, ``detail``.
    """
    df = as_frame(source)
    timeline = point_timeline(df)
    times = df["time"].dropna()
    end_ns = ns(pd.Series([pd.Timestamp(end)]))[0] if end is not None else (
        ns(times).max() if len(times) else None)
    found: list[dict[str, Any]] = []
    for (ca, ioa, kind), reports in timeline[timeline["time"].notna()].groupby(
            ["ca", "ioa", "point_type"], sort=True):
        if len(reports) < max(min_reports, 3):
            continue
        at = ns(reports["time"])
        gaps = np.diff(at) / _NS
        usual = float(np.median(gaps))
        if usual <= 0:
            continue
        silences = [(i, gap, "stale") for i, gap in enumerate(gaps) if gap > factor * usual]
        if end_ns is not None and (end_ns - at[-1]) / _NS > factor * usual:
            silences.append((len(at) - 1, (end_ns - at[-1]) / _NS, "stale_at_end"))
        for i, silence, what in silences:
            found.append({"ca": ca, "ioa": ioa, "point_type": kind, "kind": what,
                          "last_report": reports["time"].iloc[i], "silence": silence,
                          "usual_interval": usual, "reports": len(reports),
                          "detail": f"silent for {silence:.1f} s, {silence / usual:.1f} times "
                                    f"its usual {usual:.1f} s"
                                    + (" (until the end of the capture)"
                                       if what == "stale_at_end" else "")})
    if not found:
        return empty(STALE_COLUMNS)
    return pd.DataFrame(found).sort_values(["last_report", "ca", "ioa"],
                                           kind="stable").reset_index(drop=True)


_FEEDBACK_TYPES = {"C_SC_NA_1": "M_SP_NA_1", "C_SC_TA_1": "M_SP_NA_1",
                   "C_DC_NA_1": "M_DP_NA_1", "C_DC_TA_1": "M_DP_NA_1"}
"""Commands with a state to check, and the point type that shows that state."""


def command_feedback(source: Source, points: str | os.PathLike[str] | pd.DataFrame |
                     None = None, *, within: float = 5.0) -> pd.DataFrame:
    """Did the status point follow each executed command within ``within`` seconds?

    Args:
        source: DataFrame, Parquet path/directory or capture.
        points: point list whose ``feedback_ioa`` maps a command's ``(ca, ioa)`` to its
            status point (default: the command's own IOA).
        within: seconds after the execute in which the state must be reported.

    Returns:
        One row per executed single/double command that the outstation confirmed
        positively: ``time, ca, ioa, type_name, value`` (commanded), ``feedback_ioa``,
        ``status`` (``confirmed``, ``wrong``, ``no_feedback``), ``delay`` (seconds to the
        feedback), ``feedback_value``, ``detail``.
    """
    df = as_frame(source)
    cmds = commands(df)
    timeline = point_timeline(df)
    feedback: dict[tuple[int, int], int] = {}
    if points is not None:
        for p in read_point_list(points).itertuples(index=False):
            if not pd.isna(p.feedback_ioa):
                feedback[(int(p.ca), int(p.ioa))] = int(p.feedback_ioa)
    found: list[dict[str, Any]] = []
    executes = cmds[cmds["type_name"].isin(list(_FEEDBACK_TYPES))
                    & ~cmds["select"].fillna(False).astype(bool)
                    & cmds["status"].isin(["ok", "no_actterm"]) & cmds["value"].notna()]
    for c in executes.itertuples(index=False):
        ca, ioa = int(c.ca), int(c.ioa)
        target = feedback.get((ca, ioa), ioa)
        start = ns(pd.Series([c.time]))[0]
        reports = timeline[(timeline["ca"] == ca) & (timeline["ioa"] == target)
                           & (timeline["point_type"] == _FEEDBACK_TYPES[c.type_name])
                           & timeline["time"].notna()]
        at = ns(reports["time"]) if len(reports) else np.array([], dtype="int64")
        after = np.flatnonzero((at >= start) & (at <= start + within * _NS))
        row = {"time": c.time, "ca": ca, "ioa": ioa, "type_name": c.type_name,
               "value": float(c.value), "feedback_ioa": target}
        if not len(after):
            found.append({**row, "status": "no_feedback", "delay": np.nan,
                          "feedback_value": np.nan,
                          "detail": f"no report of IOA {target} within {within:g} s"})
            continue
        first = reports.iloc[after[0]]
        delay = (at[after[0]] - start) / _NS
        ok = float(first["value"]) == float(c.value)
        found.append({**row, "status": "confirmed" if ok else "wrong", "delay": delay,
                      "feedback_value": float(first["value"]),
                      "detail": f"IOA {target} reported {first['value_text']} after "
                                f"{delay:.3f} s" + ("" if ok else
                                                    f", not the commanded {c.value_text}")})
    if not found:
        return empty(FEEDBACK_COLUMNS)
    return pd.DataFrame(found).reset_index(drop=True)
