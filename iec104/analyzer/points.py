"""Per-point views: what each information object reported, when it changed, its quality.

A *point* is ``(ca, ioa, point_type)``: common address of the station, information object
address and the kind of information, ``point_type``, the type without its time tag
(M_SP_TB_1 and M_SP_NA_1 report the same single point; a single point and a measured value
at the same IOA are two points).
Only process information in monitor direction counts (type IDs 1-44: single/double points,
step positions, bitstrings, measured values, counters, protection events), whatever the
cause (spontaneous, interrogated, periodic, return information of a command...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..codec import TypeId
from .frames import PROCESS_INFO_TYPES, QUALITY_FLAGS, Source, as_frame, by_time

_KEY = ["ca", "ioa", "point_type"]

_UNTAGGED = {2: 1, 30: 1, 4: 3, 31: 3, 6: 5, 32: 5, 8: 7, 33: 7, 10: 9, 34: 9, 21: 9,
             12: 11, 35: 11, 14: 13, 36: 13, 16: 15, 37: 15, 38: 17, 39: 18, 40: 19}
"""Time-tagged (and M_ME_ND_1, without quality) type IDs -> the type of the same
information without a time tag."""


def point_type(type_id: object) -> str | None:
    """The ``point_type`` of a type ID (its name without the time tag variant)."""
    if type_id is None or type_id is pd.NA:
        return None
    base = _UNTAGGED.get(int(type_id), int(type_id))  # type: ignore[call-overload]
    return TypeId(base).name if base in TypeId._value2member_map_ else f"TYPE_{base}"
TIMELINE_COLUMNS = ["time", "stream", "frame", "direction", "src", "ca", "ioa", "point_type",
                    "type_name",
                    "cot_name", "value", "value_text", "quality", *QUALITY_FLAGS, "time_tag"]


def quality_text(df: pd.DataFrame) -> pd.Series:
    """The set quality flags of each row as text, e.g. ``'IV NT'``; ``''`` when good."""
    text = pd.Series("", index=df.index, dtype="object")
    for flag in QUALITY_FLAGS:
        if flag in df:
            on = df[flag].fillna(False).astype(bool)
            text = text.where(~on, text + " " + flag.upper())
    return text.str.strip().astype("string")


def point_timeline(source: Source, ca: int | None = None,
                   ioa: int | list[int] | None = None) -> pd.DataFrame:
    """Every monitor-direction object report, in time order, optionally for some points.

    Columns: ``time, stream, frame, direction, src, ca, ioa, point_type`` (the type without
    its time tag, part of the point's key), ``type_name, cot_name, value, value_text,
    quality`` (set flags as text, ``''`` = good), the quality flags, and
    ``time_tag``.
    """
    df = as_frame(source)
    mask = df["ioa"].notna() & df["type_id"].isin(PROCESS_INFO_TYPES)
    if ca is not None:
        mask &= df["ca"] == ca
    if ioa is not None:
        mask &= df["ioa"].isin([ioa] if isinstance(ioa, int) else ioa)
    rows = by_time(df[mask]).copy()
    rows["ca"] = rows["ca"].astype("int64")
    rows["ioa"] = rows["ioa"].astype("int64")
    rows["quality"] = quality_text(rows)
    rows["point_type"] = rows["type_id"].map(point_type).astype("string")
    return rows[[c for c in TIMELINE_COLUMNS if c in rows]].reset_index(drop=True)


def value_changes(source: Source) -> pd.DataFrame:
    """The reports where a point's value differs from its previous report (its first
    report included), with ``prev_value``/``prev_text`` and ``since`` (seconds since the
    previous change). Values compare by ``value`` where numeric, else ``value_text``."""
    return _changes(point_timeline(source))


def _changes(t: pd.DataFrame) -> pd.DataFrame:
    if not len(t):
        return t.assign(prev_value=pd.Series(dtype="float64"), prev_text=pd.Series(dtype="str"),
                        since=pd.Series(dtype="float64"))
    comparable = t["value"].astype("object").where(t["value"].notna(), t["value_text"])
    prev = comparable.groupby([t[k] for k in _KEY]).shift()
    changed = prev.isna() | (comparable != prev)
    out = t[changed].copy()
    grouped = out.groupby(_KEY)
    out["prev_value"] = grouped["value"].shift()
    out["prev_text"] = grouped["value_text"].shift()
    out["since"] = grouped["time"].diff().dt.total_seconds()
    return out.reset_index(drop=True)


def quality_transitions(source: Source) -> pd.DataFrame:
    """The reports where a point's quality flags differ from its previous report (a first
    report with bad quality included), with ``prev_quality``; ``''`` means good."""
    t = point_timeline(source)
    prev = t.groupby(_KEY)["quality"].shift()
    changed = (prev.isna() & (t["quality"] != "")) | (prev.notna() & (t["quality"] != prev))
    out = t[changed].copy()
    out["prev_quality"] = prev[changed].fillna("").astype("string")
    return out.reset_index(drop=True)


def latest_values(source: Source) -> pd.DataFrame:
    """One row per point: its last report (``time, value, value_text, quality, type_name,
    cot_name``), ``first_seen``, ``reports`` and ``changes`` (value changes after the
    first report). Sorted by ``ca, ioa, point_type``."""
    t = point_timeline(source)
    columns = ["ca", "ioa", "point_type", "type_name", "time", "value", "value_text",
               "quality", "cot_name"]
    if not len(t):
        return pd.DataFrame(columns=[*columns, "first_seen", "reports", "changes"])
    g = t.groupby(_KEY, sort=True)
    last = g.last(skipna=False)[[c for c in columns if c not in _KEY]]
    n_changes = _changes(t).groupby(_KEY).size() - 1
    out = last.assign(first_seen=g["time"].min(), reports=g.size(),
                      changes=n_changes.reindex(last.index, fill_value=0).astype(np.int64))
    return out.reset_index()
