"""Flags for security analysts: things worth a look, each with where and how often.

Every flag is one row of :func:`anomalies`, aggregated where a fault repeats (per connection
and address), with the first occurrence's ``time``/``frame`` and a ``count``:

``unknown_ca`` / ``unknown_ioa``
    A common address / point outside ``known_cas`` / ``known_points`` (or outside a
    ``baseline`` capture) when given. Without them: an address the outstation refused
    (causes UNKNOWN_ASDU_ADDRESS / UNKNOWN_IO_ADDRESS), and a common address used in control
    direction that never reports any data.
``unknown_type`` / ``unknown_cause``
    The outstation refused a type or cause (causes 44 / 45).
``unexpected_command_source``
    Commands (and interrogations) sent by a host not in ``masters``. Without ``masters``
    the expected masters are the TCP clients that ran a general interrogation; commands
    sent by the TCP server (outstation side) are always flagged.
``burst`` / ``command_burst``
    A time window (``burst_window``) with at least ``burst_min`` APDUs and
    ``burst_factor`` times the connection's median; a host sending at least
    ``command_burst`` commands in one window.
``time_tag_drift``
    Object time tags more than ``max_drift`` seconds away from the capture time (per point;
    a drift of whole hours usually means a device clock in local time).
``invalid_time_tag``
    A time tag that is no calendar time (month 13, minute 61...).
``broadcast_ca``
    The global address (65535): normal for interrogation, counter interrogation, clock
    synchronisation and reset process from the master (severity ``low``), suspicious for
    anything else.
``malformed`` / ``test_asdu``
    Undecodable APDUs or octets; ASDUs with the T (test) bit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..codec import Cause, TypeId
from .frames import (
    AUDITED_COMMANDS,
    INTERROGATIONS,
    PROCESS_INFO_TYPES,
    Source,
    apdus,
    as_frame,
    by_time,
    empty,
    endpoint,
    ns,
)

ANOMALY_COLUMNS = {"kind": "str", "severity": "str", "stream": "Int64",
                   "time": "datetime64[ns, UTC]", "frame": "Int64", "src": "str", "dst": "str",
                   "ca": "Int64", "ioa": "Int64", "type_name": "str", "count": "int64",
                   "detail": "str"}

_GLOBAL_OK = {int(TypeId.C_IC_NA_1), int(TypeId.C_CI_NA_1), int(TypeId.C_CS_NA_1),
              int(TypeId.C_RP_NA_1)}
_COMMANDS = AUDITED_COMMANDS | INTERROGATIONS
_REQUEST = {int(Cause.ACTIVATION), int(Cause.DEACTIVATION)}


def _flag(kind: str, severity: str, row: Any, count: int, detail: str, *, ca: Any = None,
          ioa: Any = None) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "stream": row["stream"], "time": row["time"],
            "frame": row["frame"], "src": endpoint(row["src"], row["sport"]),
            "dst": endpoint(row["dst"], row["dport"]), "ca": ca, "ioa": ioa,
            "type_name": row.get("type_name"), "count": int(count), "detail": detail}


def _grouped(rows: pd.DataFrame, keys: list[str]) -> Iterable[tuple[Any, pd.DataFrame]]:
    if not len(rows):
        return []
    return by_time(rows).groupby(keys, sort=False, dropna=False)


def anomalies(source: Source, *, known_cas: Iterable[int] | None = None,
              known_points: Iterable[tuple[int, int]] | None = None,
              baseline: Source | None = None, masters: Iterable[str] | None = None,
              max_drift: float = 60.0, burst_window: str = "1s", burst_factor: float = 10.0,
              burst_min: int = 50, command_burst: int = 10,
              broadcast_ca: int = 0xFFFF, streams: Collection[int] | None = None
              ) -> pd.DataFrame:
    """Security-relevant flags (see the module docstring).

    Args:
        source: DataFrame, Parquet path/directory or capture.
        known_cas, known_points: the station's configuration: common addresses, and
            ``(ca, ioa)`` pairs, that exist.
        baseline: normal traffic; its common addresses and points are taken as known.
        masters: IP addresses allowed to send commands.
        max_drift: seconds a time tag may differ from the capture time.
        burst_window, burst_factor, burst_min, command_burst: burst thresholds.
        broadcast_ca: the global common address (255 with 1-octet addresses).
        streams: the connections whose findings of one connection (bursts of APDUs, time
            tags, broadcasts, malformed and test APDUs) are wanted (default: all); the rows
            of the others still count for the findings that span connections (addresses,
            command sources and bursts), so those of these connections come out as on the
            whole data, without the cost of the others' own findings.

    Returns:
        One row per flag, sorted by time: ``kind, severity`` (``high``, ``medium``,
        ``low``), ``stream, time, frame, src, dst`` of the first occurrence, ``ca, ioa,
        type_name`` where they apply, ``count`` (occurrences) and ``detail``.
    """
    df = as_frame(source)
    flags: list[dict[str, Any]] = []
    asdu_rows = df[df["apci"].eq("I") & df["type_id"].notna()]
    if baseline is not None:
        base = as_frame(baseline)
        base = base[base["type_id"].notna() & base["ca"].notna()]
        known_cas = set(known_cas or ()) | {int(c) for c in base["ca"].unique()}
        pts = base[base["ioa"].notna() & base["type_id"].isin(PROCESS_INFO_TYPES | _COMMANDS)]
        known_points = set(known_points or ()) | {
            (int(c), int(i)) for c, i in zip(pts["ca"], pts["ioa"])}
    flags += _addresses(asdu_rows, known_cas, known_points, broadcast_ca)
    flags += _command_sources(df, asdu_rows, masters)
    flags += _command_bursts(df, burst_window, command_burst, streams)
    if streams is not None:  # the findings of one connection: its rows only
        df = df[df["stream"].isin(list(streams)).fillna(False).astype(bool)]
        asdu_rows = asdu_rows[asdu_rows["stream"].isin(list(streams))
                              .fillna(False).astype(bool)]
    flags += _bursts(df, burst_window, burst_factor, burst_min)
    flags += _time_tags(df, max_drift)
    flags += _broadcast(asdu_rows, broadcast_ca)
    flags += _malformed_and_test(df)
    if not flags:
        return empty(ANOMALY_COLUMNS)
    table = pd.DataFrame(flags)
    for name in ("stream", "frame", "ca", "ioa"):
        table[name] = table[name].astype("Int64")
    table["time"] = pd.to_datetime(table["time"], utc=True)
    table = table.sort_values(["time", "kind"], kind="stable").reset_index(drop=True)
    return table[list(ANOMALY_COLUMNS)]


def _addresses(rows: pd.DataFrame, known_cas: Iterable[int] | None,
               known_points: Iterable[tuple[int, int]] | None,
               broadcast_ca: int) -> list[dict[str, Any]]:
    flags = []
    refusals = {int(Cause.UNKNOWN_ASDU_ADDRESS): "unknown_ca",
                int(Cause.UNKNOWN_IO_ADDRESS): "unknown_ioa",
                int(Cause.UNKNOWN_TYPE): "unknown_type",
                int(Cause.UNKNOWN_CAUSE): "unknown_cause"}
    refused = rows[rows["cot"].isin(list(refusals))]
    for (stream, cot, ca, ioa), g in _grouped(refused, ["stream", "cot", "ca", "ioa"]):
        r = g.iloc[0]
        flags.append(_flag(refusals[int(cot)], "medium", r, len(g),
                           f"outstation answered {r['cot_name']} to {r['type_name']} "
                           f"(CA {int(ca)}" + (f", IOA {int(ioa)})" if pd.notna(ioa) else ")"),
                           ca=ca, ioa=ioa))
    rows = rows[~rows["cot"].isin(list(refusals)) & rows["ca"].ne(broadcast_ca)]
    if known_cas is not None:
        known = {int(c) for c in known_cas}
        bad = rows[~rows["ca"].isin(known)]
        for (stream, ca), g in _grouped(bad, ["stream", "ca"]):
            flags.append(_flag("unknown_ca", "high", g.iloc[0], len(g),
                               f"common address {int(ca)} is not a known station", ca=ca))
    else:
        reporting = set(rows.loc[rows["type_id"].isin(PROCESS_INFO_TYPES | {70}), "ca"].dropna())
        ctl = rows[rows["type_id"].isin(_COMMANDS) & rows["cot"].isin(_REQUEST)
                   & ~rows["ca"].isin(reporting)]
        for (stream, ca), g in _grouped(ctl, ["stream", "ca"]):
            flags.append(_flag("unknown_ca", "medium", g.iloc[0], len(g),
                               f"commands to common address {int(ca)}, which never reports "
                               "data", ca=ca))
    if known_points is not None:
        known_p = {(int(c), int(i)) for c, i in known_points}
        obj = rows[rows["ioa"].notna() & rows["type_id"].isin(PROCESS_INFO_TYPES | _COMMANDS)
                   & ~rows["type_id"].isin(INTERROGATIONS)]
        pairs = pd.Series(list(zip(obj["ca"].astype("int64"), obj["ioa"].astype("int64"))),
                          index=obj.index, dtype="object")
        bad = obj[~pairs.isin(known_p)]
        for (stream, ca, ioa), g in _grouped(bad, ["stream", "ca", "ioa"]):
            flags.append(_flag("unknown_ioa", "high", g.iloc[0], len(g),
                               f"IOA {int(ioa)} of CA {int(ca)} is not a known point "
                               f"({g.iloc[0]['type_name']})", ca=ca, ioa=ioa))
    return flags


def _command_rows(df: pd.DataFrame) -> pd.DataFrame:
    a = apdus(df)
    return a[a["apci"].eq("I") & a["type_id"].isin(_COMMANDS) & a["cot"].isin(_REQUEST)
             & ~a["negative"].fillna(False).astype(bool)]


def _command_sources(df: pd.DataFrame, rows: pd.DataFrame,
                     masters: Iterable[str] | None) -> list[dict[str, Any]]:
    cmds = _command_rows(df)
    flags = []
    from_server = cmds[cmds["direction"].eq("s2c")]
    for (stream, src), g in _grouped(from_server, ["stream", "src"]):
        flags.append(_flag("unexpected_command_source", "high", g.iloc[0], len(g),
                           f"{len(g)} command(s) sent by the TCP server {src} (outstation "
                           "side)"))
    cmds = cmds[cmds["direction"].eq("c2s")]
    if masters is None:
        gi = cmds[cmds["type_id"].eq(int(TypeId.C_IC_NA_1))]
        if not len(gi):
            return flags
        allowed = set(gi["src"].astype(str))
        why = "hosts that ran a general interrogation: " + ", ".join(sorted(allowed))
    else:
        allowed = {str(m) for m in masters}
        why = "masters: " + ", ".join(sorted(allowed))
    bad = cmds[~cmds["src"].astype(str).isin(allowed)]
    for (stream, src), g in _grouped(bad, ["stream", "src"]):
        kinds = ", ".join(sorted(set(g["type_name"].astype(str))))
        flags.append(_flag("unexpected_command_source", "high", g.iloc[0], len(g),
                           f"{len(g)} command(s) ({kinds}) from {src}, not an expected master "
                           f"({why})"))
    return flags


def _windows(times: pd.Series, window: str) -> pd.Series:
    return times.dt.floor(window)


def _bursts(df: pd.DataFrame, window: str, factor: float, minimum: int
            ) -> list[dict[str, Any]]:
    """APDU rate bursts, per connection."""
    flags = []
    a = apdus(df)
    a = a[a["time"].notna()]
    for stream, part in a.groupby("stream", sort=True):
        bins = _windows(part["time"], window)
        counts = bins.value_counts().sort_index()
        median = float(np.median(counts.to_numpy())) if len(counts) else 0.0
        limit = max(float(minimum), factor * median)
        hot = counts[counts >= limit]
        for start, n in _runs(hot, window):
            first = part[bins >= start].iloc[0]
            flags.append(_flag("burst", "medium", first, n,
                               f"{n} APDUs from {start:%H:%M:%S} in {_runs_len(hot, start, window)}"
                               f" window(s) of {window} (median {median:g} per window)"))
    return flags


def _command_bursts(df: pd.DataFrame, window: str, command_burst: int,
                    streams: Collection[int] | None) -> list[dict[str, Any]]:
    """Command bursts, per sending host over all its connections (only the hosts that
    command on ``streams``, when given)."""
    flags = []
    cmds = _command_rows(df)
    if streams is not None:
        mine = cmds["stream"].isin(list(streams)).fillna(False).astype(bool)
        cmds = cmds[cmds["src"].isin(cmds.loc[mine, "src"].unique())]
    width = pd.Timedelta(window).value
    for src, part in cmds.groupby("src", sort=True):
        part = by_time(part)
        times = ns(part["time"])
        i = 0
        while i < len(times):
            # the commands within one window from the i-th (a sliding, not a fixed, window)
            j = int(np.searchsorted(times, times[i] + width, side="left"))
            if j - i >= command_burst:
                end = j
                while end < len(times) and times[end] - times[end - command_burst + 1] < width:
                    end += 1
                first = part.iloc[i]
                span = (times[end - 1] - times[i]) / 1e9
                flags.append(_flag("command_burst", "high", first, end - i,
                                   f"{end - i} commands from {src} in {span:.2f} s (at least "
                                   f"{command_burst} within {window})"))
                i = end
            else:
                i += 1
    return flags


def _runs(hot: pd.Series, window: str) -> list[tuple[pd.Timestamp, int]]:
    """Merge consecutive hot windows: (first window start, total count)."""
    step = pd.Timedelta(window)
    runs: list[tuple[pd.Timestamp, int]] = []
    prev = None
    for start, n in hot.items():
        if prev is not None and start - prev == step:
            runs[-1] = (runs[-1][0], runs[-1][1] + int(n))
        else:
            runs.append((start, int(n)))
        prev = start
    return runs


def _runs_len(hot: pd.Series, start: pd.Timestamp, window: str) -> int:
    step = pd.Timedelta(window)
    n = 0
    while start + n * step in hot.index:
        n += 1
    return n


def time_drift(source: Source) -> pd.DataFrame:
    """Every time-tagged object with ``drift`` = time tag - capture time, in seconds (objects
    of packets without a capture time are left out)."""
    df = as_frame(source)
    rows = df[df["time_tag"].notna() & df["time"].notna()].copy()
    rows["drift"] = (ns(rows["time_tag"]) - ns(rows["time"])) / 1e9
    return rows


def _time_tags(df: pd.DataFrame, max_drift: float) -> list[dict[str, Any]]:
    flags = []
    rows = time_drift(df)
    bad = rows[rows["drift"].abs() > max_drift]
    for (stream, ca, ioa), g in _grouped(bad, ["stream", "ca", "ioa"]):
        d = g["drift"]
        worst = float(d.iloc[int(np.argmax(d.abs().to_numpy()))])
        hint = ""
        hours = worst / 3600
        if abs(hours) >= 0.99 and abs(hours - round(hours)) < 0.02:
            hint = f"; about {round(hours):+d} h: device clock in another time zone?"
        flags.append(_flag("time_tag_drift", "medium", g.iloc[0], len(g),
                           f"time tag {g.iloc[0]['time_tag']:%Y-%m-%d %H:%M:%S.%f} vs capture "
                           f"{g.iloc[0]['time']:%Y-%m-%d %H:%M:%S.%f}: drift up to {worst:+.3f} s "
                           f"(limit {max_drift:g} s){hint}", ca=ca, ioa=ioa))
    # the only text an object row carries is about its time tag
    invalid = df[(df["kind"] == "object") & df["error"].notna()]
    for _, r in by_time(invalid).iterrows():
        flags.append(_flag("invalid_time_tag", "medium", r, 1, str(r["error"]), ca=r["ca"],
                           ioa=r["ioa"]))
    return flags


def _broadcast(rows: pd.DataFrame, broadcast_ca: int) -> list[dict[str, Any]]:
    flags = []
    b = rows[rows["ca"].eq(broadcast_ca)]
    b = b[~b["apdu"].duplicated()]
    for (stream, type_id, direction), g in _grouped(b, ["stream", "type_id", "direction"]):
        ok = int(type_id) in _GLOBAL_OK and direction == "c2s"
        flags.append(_flag("broadcast_ca", "low" if ok else "high", g.iloc[0], len(g),
                           f"{len(g)} {g.iloc[0]['type_name']} ASDU(s) to the global address "
                           f"{broadcast_ca} ({direction})"
                           + ("" if ok else ": the global address is only meant for "
                                            "interrogation, clock sync and reset"),
                           ca=broadcast_ca))
    return flags


def _malformed_and_test(df: pd.DataFrame) -> list[dict[str, Any]]:
    flags = []
    a = apdus(df)
    bad = a[a["kind"] == "malformed"]
    for stream, g in _grouped(bad, ["stream"]):
        flags.append(_flag("malformed", "medium", g.iloc[0], len(g),
                           f"{len(g)} undecodable APDU(s)/octet run(s); first: "
                           f"{g.iloc[0]['error']}"))
    test = a[a["test"].fillna(False).astype(bool)]
    for (stream, src), g in _grouped(test, ["stream", "src"]):
        flags.append(_flag("test_asdu", "low", g.iloc[0], len(g),
                           f"{len(g)} ASDU(s) with the test bit set"))
    return flags
