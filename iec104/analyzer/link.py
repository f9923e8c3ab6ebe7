"""Connections and the APCI layer: sessions, sequence numbers, acknowledgements, timeouts.

Theory of operation
-------------------
:func:`link_findings` replays each TCP connection (``stream``) in time order as a *passive
observer* of both ends, using the codec's modular sequence arithmetic (``seq_diff``,
``seq_add``), and reports every deviation it sees instead of stopping at the first one (the
codec's :class:`~iec104.codec.session.Session` is an active end that closes the connection on
the first violation, which is what a driver must do and not what an analyst wants).

Per sending side ``d`` (``'c2s'`` or ``'s2c'``) it keeps:

* the N(S) expected next from ``d`` (unknown until the first I-frame is seen, so a capture
  that starts mid-connection raises nothing);
* the I-frames of ``d`` not yet acknowledged by the peer (N(S), time), popped by the N(R) of
  the peer's I- and S-frames;
* the U-frame acts of ``d`` awaiting their confirmation;
* when ``d`` last received anything (for t3).

Deviations (``kind``):

sequence (:func:`sequence_analysis`)
    ``gap`` N(S) ahead of the expected one (frames missing); ``duplicate`` N(S) behind it
    (a frame sent again); ``reset`` N(S) back to 0 inside a connection; ``bad_ack`` N(R)
    acknowledging frames never sent; ``capture_lost`` such an N(R) that acknowledges frames
    the capture lost (actor ``capture``, see :mod:`.capture_loss`); ``ack_backwards`` N(R) lower than one already
    received; ``k_exceeded`` more than ``k`` I-frames of one side unacknowledged;
    ``w_exceeded`` (only when ``w`` is given) more than ``w`` received I-frames not
    acknowledged; ``late_ack`` an acknowledgement later than ``t2`` after the oldest frame
    it acknowledges; ``data_while_stopped`` an I-frame outside STARTDT con .. STOPDT act
    (only where the connection's start was captured).
timeouts (:func:`timeouts`)
    ``t1_expired`` an I-frame or a U act not acknowledged/confirmed within ``t1`` (late,
    or never while the connection went on for longer than ``t1``); ``t3_no_testfr`` a side
    that received nothing for longer than ``t3`` (+ ``slack``) and sent no TESTFR act;
    ``unsolicited_con`` a U con without an act.

A capture gap in direction ``d`` (bytes the capture lost) resynchronises ``d``'s N(S) and
forgets the peer's unacknowledged frames (their acknowledgement may be in the lost bytes), so
capture loss is not reported as a protocol fault.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..codec import seq_add, seq_diff
from .capture_loss import attribute_capture_loss
from .frames import (
    Source,
    apdus,
    as_frame,
    auto_freq,
    by_time,
    empty,
    gaps,
    ns,
    opt_int,
    stream_endpoints,
)

_NS = 1_000_000_000
_HALF = 1 << 14  # seq_diff below this is "ahead", above it "behind"
_PEER = {"c2s": "s2c", "s2c": "c2s"}

FINDING_COLUMNS = {"stream": "int64", "time": "datetime64[ns, UTC]", "frame": "Int64",
                   "apdu": "Int64", "direction": "str", "actor": "str", "kind": "str",
                   "expected": "Int64", "got": "Int64", "delay": "float64", "detail": "str"}

SEQUENCE_KINDS = ("gap", "duplicate", "reset", "bad_ack", "capture_lost", "ack_backwards",
                  "k_exceeded", "w_exceeded", "late_ack", "data_while_stopped")
TIMEOUT_KINDS = ("t1_expired", "t3_no_testfr", "unsolicited_con")


@dataclass
class _Side:
    next_ssn: int | None = None
    acked: int | None = None  # last N(R) the peer sent for our frames
    outstanding: collections.deque[tuple[int, int, Any]] = field(
        default_factory=collections.deque)  # (ssn, time_ns, frame)
    over_k: bool = False
    over_w: bool = False
    u_pending: dict[str, tuple[int, Any]] = field(default_factory=dict)
    last_rx: int | None = None
    testfr_since_rx: int | None = None  # first TESTFR act sent since last receive


class _Observer:
    def __init__(self, stream: int, names: dict[str, str], *, k: int, w: int | None,
                 t1: float, t2: float, t3: float, slack: float) -> None:
        self.stream = stream
        self.names = names
        self.k, self.w = k, w
        self.t1, self.t2, self.t3 = int(t1 * _NS), int(t2 * _NS), int(t3 * _NS)
        self.slack = int(slack * _NS)
        self.sides = {"c2s": _Side(), "s2c": _Side()}
        self.started: bool | None = None  # None: state unknown (start not captured)
        self.findings: list[dict[str, Any]] = []

    def report(self, t: int, frame: Any, apdu: Any, direction: str, actor: str, kind: str,
               detail: str, expected: int | None = None, got: int | None = None,
               delay: float | None = None) -> None:
        self.findings.append({"stream": self.stream, "time": t, "frame": frame, "apdu": apdu,
                              "direction": direction, "actor": self.names.get(actor, actor),
                              "kind": kind, "expected": expected, "got": got,
                              "delay": delay, "detail": detail})

    # -- events ---------------------------------------------------------------------------

    def gap(self, d: str) -> None:
        side, peer = self.sides[d], self.sides[_PEER[d]]
        side.next_ssn = None
        side.u_pending.clear()
        peer.outstanding.clear()
        peer.acked = None
        peer.over_k = side.over_w = False

    def apdu(self, t: int, frame: Any, apdu: Any, d: str, apci: str, u_func: Any,
              ssn: int | None, rsn: int | None) -> None:
        peer = self.sides[_PEER[d]]
        self.check_idle(t, frame, apdu, d)
        peer.last_rx = t
        peer.testfr_since_rx = None
        if apci == "U":
            self.u_frame(t, frame, apdu, d, str(u_func))
        elif apci == "I":
            assert ssn is not None and rsn is not None
            self.i_frame(t, frame, apdu, d, ssn)
            self.ack(t, frame, apdu, d, rsn)
        elif apci == "S":
            assert rsn is not None
            self.ack(t, frame, apdu, d, rsn)

    def check_idle(self, t: int, frame: Any, apdu: Any, d: str) -> None:
        # the receiver of this frame had heard nothing since last_rx: did it test the link?
        receiver = _PEER[d]
        r = self.sides[receiver]
        if r.last_rx is not None and t - r.last_rx > self.t3 + self.slack:
            idle = (t - r.last_rx) / _NS
            if r.testfr_since_rx is None:
                self.report(t, frame, apdu, d, receiver, "t3_no_testfr",
                            f"received nothing for {idle:.1f} s (t3 {self.t3 / _NS:g} s) "
                            "and sent no TESTFR act", delay=idle)
            elif r.testfr_since_rx - r.last_rx > self.t3 + self.slack:
                late = (r.testfr_since_rx - r.last_rx) / _NS
                self.report(t, frame, apdu, d, receiver, "t3_no_testfr",
                            f"received nothing for {idle:.1f} s and sent TESTFR act only "
                            f"after {late:.1f} s (t3 {self.t3 / _NS:g} s)", delay=late)

    def u_frame(self, t: int, frame: Any, apdu: Any, d: str, func: str) -> None:
        side, peer = self.sides[d], self.sides[_PEER[d]]
        name, _, kind = func.partition("_")
        if kind == "ACT":
            side.u_pending.setdefault(name, (t, frame))
            if name == "TESTFR" and side.testfr_since_rx is None:
                side.testfr_since_rx = t
            elif name == "STOPDT" and self.started is not None:
                self.started = False
            return
        if kind != "CON":
            return
        act = peer.u_pending.pop(name, None)
        if act is None:
            self.report(t, frame, apdu, d, d, "unsolicited_con",
                        f"{func} without a preceding {name}_ACT")
        else:
            waited = t - act[0]
            if waited > self.t1 + self.slack:
                self.report(t, frame, apdu, d, d, "t1_expired",
                            f"{name}_ACT (frame {act[1]}) confirmed after {waited / _NS:.1f} s "
                            f"(t1 {self.t1 / _NS:g} s)", delay=waited / _NS)
        if name == "STARTDT":
            self.started = True

    def i_frame(self, t: int, frame: Any, apdu: Any, d: str, ssn: int) -> None:
        side, peer = self.sides[d], self.sides[_PEER[d]]
        if self.started is False:
            self.report(t, frame, apdu, d, d, "data_while_stopped",
                        "I-frame while data transfer is stopped (no STARTDT con, or after "
                        "STOPDT act)")
        expected = side.next_ssn
        count = True
        if expected is not None and ssn != expected:
            ahead = seq_diff(ssn, expected)
            if ssn == 0:
                self.report(t, frame, apdu, d, d, "reset",
                            f"N(S) restarted at 0 (expected {expected})", expected, ssn)
                side.outstanding.clear()
                side.acked = None
                side.over_k = peer.over_w = False
            elif ahead < _HALF:
                self.report(t, frame, apdu, d, d, "gap",
                            f"N(S) {ssn}: {ahead} I-frame(s) missing (expected {expected})",
                            expected, ssn)
            else:
                self.report(t, frame, apdu, d, d, "duplicate",
                            f"N(S) {ssn} again ({seq_diff(expected, ssn)} behind the "
                            f"expected {expected})", expected, ssn)
                count = False
        if not count:
            return
        side.next_ssn = seq_add(ssn, 1)
        side.outstanding.append((ssn, t, frame))
        n = len(side.outstanding)
        if n > self.k:
            if not side.over_k:
                side.over_k = True
                self.report(t, frame, apdu, d, d, "k_exceeded",
                            f"{n} I-frames unacknowledged (k {self.k})", self.k, n)
        if self.w is not None and n > self.w and not peer.over_w:
            peer.over_w = True
            self.report(t, frame, apdu, d, _PEER[d], "w_exceeded",
                        f"{n} received I-frames not acknowledged (w {self.w})", self.w, n)

    def ack(self, t: int, frame: Any, apdu: Any, d: str, rsn: int) -> None:
        # d acknowledges the peer's I-frames up to rsn - 1
        owner = self.sides[_PEER[d]]
        if owner.acked is not None:
            back = seq_diff(owner.acked, rsn)
            if 0 < back < _HALF:
                self.report(t, frame, apdu, d, d, "ack_backwards",
                            f"N(R) {rsn} lower than the N(R) {owner.acked} sent before",
                            owner.acked, rsn)
                return
        if owner.next_ssn is not None:
            base = owner.acked if owner.acked is not None else (
                owner.outstanding[0][0] if owner.outstanding else owner.next_ssn)
            if seq_diff(rsn, base) > seq_diff(owner.next_ssn, base):
                self.report(t, frame, apdu, d, d, "bad_ack",
                            f"N(R) {rsn} acknowledges I-frames never sent (next N(S) "
                            f"{owner.next_ssn})", owner.next_ssn, rsn)
                return
        owner.acked = rsn
        popped: list[tuple[int, int, Any]] = []
        out = owner.outstanding
        while out and 0 < seq_diff(rsn, out[0][0]) < _HALF:
            popped.append(out.popleft())
        if not popped:
            return
        oldest = popped[0]
        waited = t - oldest[1]
        if waited > self.t2 + self.slack:
            self.report(t, frame, apdu, d, d, "late_ack",
                        f"acknowledged {len(popped)} I-frame(s) {waited / _NS:.1f} s after "
                        f"N(S) {oldest[0]} (frame {oldest[2]}; t2 {self.t2 / _NS:g} s)",
                        None, rsn, waited / _NS)
        if waited > self.t1 + self.slack:
            self.report(t, frame, apdu, _PEER[d], _PEER[d], "t1_expired",
                        f"I-frame N(S) {oldest[0]} (frame {oldest[2]}) acknowledged only "
                        f"after {waited / _NS:.1f} s (t1 {self.t1 / _NS:g} s)", None,
                        oldest[0], waited / _NS)
        if len(out) <= self.k:
            owner.over_k = False
        if self.w is not None and len(out) <= self.w:
            self.sides[d].over_w = False

    def finish(self, end: int) -> None:
        # never acknowledged / confirmed although the connection went on for longer than t1
        for d, side in self.sides.items():
            if side.outstanding:
                ssn, t, frame = side.outstanding[0]
                if end - t > self.t1 + self.slack:
                    self.report(t, frame, None, d, d, "t1_expired",
                                f"I-frame N(S) {ssn} (frame {frame}) never acknowledged; "
                                f"connection seen for {(end - t) / _NS:.1f} s more "
                                f"(t1 {self.t1 / _NS:g} s)", None, ssn, (end - t) / _NS)
            for name, (t, frame) in side.u_pending.items():
                if end - t > self.t1 + self.slack:
                    self.report(t, frame, None, d, d, "t1_expired",
                                f"{name}_ACT (frame {frame}) never confirmed; connection "
                                f"seen for {(end - t) / _NS:.1f} s more", None, None,
                                (end - t) / _NS)


def link_findings(source: Source, *, k: int = 12, w: int | None = None, t1: float = 15.0,
                  t2: float = 10.0, t3: float = 20.0, slack: float = 1.0) -> pd.DataFrame:
    """Every APCI-level deviation of every connection (see the module docstring).

    Args:
        source: DataFrame, Parquet path/directory or capture (see :mod:`.frames`).
        k, w: the send window and the acknowledge-after count (``w=None``: not checked,
            as many stations acknowledge by t2 only).
        t1, t2, t3: the timeouts in seconds (IEC 60870-5-104 defaults 15, 10, 20).
        slack: tolerance in seconds added to t1, t2 and t3 (timer granularity, jitter).

    Returns:
        One row per finding, in time order: ``stream, time, frame, apdu, direction`` (of
        the frame where it was seen), ``actor`` (``ip:port`` of the side at fault),
        ``kind``, ``expected``/``got`` (sequence numbers or counts), ``delay`` (seconds,
        for late/idle kinds) and ``detail``.
    """
    df = as_frame(source)
    names: dict[int, dict[str, str]] = {}
    for stream, row in stream_endpoints(df).iterrows():
        names[int(stream)] = {"c2s": row["client"], "s2c": row["server"]}
    events = pd.concat([apdus(df), gaps(df)]).sort_index(kind="stable")
    events = by_time(events[events["stream"].notna()])
    findings: list[dict[str, Any]] = []
    if len(events):
        times = ns(events["time"])
        cols = [events[c].tolist() for c in ("stream", "frame", "apdu", "direction", "apci",
                                             "u_func", "ssn", "rsn")]
        observers: dict[int, _Observer] = {}
        last: dict[int, int] = {}
        for t, stream, frame, apdu, d, apci, u_func, ssn, rsn in zip(times.tolist(), *cols):
            stream = int(stream)
            obs = observers.get(stream)
            if obs is None:
                obs = observers[stream] = _Observer(stream, names.get(stream, {}), k=k, w=w,
                                                    t1=t1, t2=t2, t3=t3, slack=slack)
                obs.started = False if apci == "U" and u_func == "STARTDT_ACT" else None
            last[stream] = t
            frame = opt_int(frame)
            if not isinstance(apci, str):
                if opt_int(apdu) is None:  # a capture gap
                    obs.gap(str(d))
                continue  # malformed octets carry no APCI
            obs.apdu(t, frame, opt_int(apdu), str(d), apci, u_func, opt_int(ssn),
                      opt_int(rsn))
        for stream, obs in observers.items():
            obs.finish(last[stream])
            findings.extend(obs.findings)
    if not findings:
        return empty(FINDING_COLUMNS)
    table = pd.DataFrame(findings)
    table["time"] = pd.to_datetime(table["time"], unit="ns", utc=True)
    for name in ("frame", "apdu", "expected", "got"):
        table[name] = table[name].astype("Int64")
    table["delay"] = table["delay"].astype("float64")
    table = attribute_capture_loss(table, df)
    return table.sort_values(["time", "stream"], kind="stable").reset_index(drop=True)


def sequence_analysis(source: Source, *, k: int = 12, w: int | None = None,
                      t2: float = 10.0, slack: float = 1.0) -> pd.DataFrame:
    """Sequence-number findings: gaps, duplicates, resets, bad/backward acknowledgements,
    windows beyond ``k`` (and ``w``), acknowledgements later than ``t2``, I-frames while
    stopped. Columns as :func:`link_findings`."""
    table = link_findings(source, k=k, w=w, t2=t2, slack=slack)
    return table[table["kind"].isin(SEQUENCE_KINDS)].reset_index(drop=True)


def timeouts(source: Source, *, t1: float = 15.0, t3: float = 20.0,
             slack: float = 1.0) -> pd.DataFrame:
    """Timer findings: t1 expiries (I-frames and U acts), idle periods beyond ``t3``
    without TESTFR act, U confirmations without an act. Columns as :func:`link_findings`."""
    table = link_findings(source, t1=t1, t3=t3, slack=slack)
    return table[table["kind"].isin(TIMEOUT_KINDS)].reset_index(drop=True)


SESSION_COLUMNS = {
    "stream": "int64", "client": "str", "server": "str", "master": "str", "master_by": "str",
    "start": "datetime64[ns, UTC]", "end": "datetime64[ns, UTC]", "duration": "float64",
    "apdus": "int64", "i_frames": "int64", "s_frames": "int64", "u_frames": "int64",
    "c2s_apdus": "int64", "s2c_apdus": "int64", "errors": "int64", "capture_gaps": "int64",
    "startdt_act": "int64", "startdt_con": "int64", "stopdt_act": "int64",
    "stopdt_con": "int64", "testfr_act": "int64", "testfr_con": "int64",
    "started": "datetime64[ns, UTC]", "stopped": "datetime64[ns, UTC]",
    "complete": "bool",
}


def sessions(source: Source) -> pd.DataFrame:
    """One row per TCP connection (``stream``): who talked, when, and the U-frame dialogue.

    Columns: ``client``/``server`` (``ip:port``); ``master`` (the controlling station) and
    ``master_by`` (how it was decided: the side that sent STARTDT act; else the side that
    sent commands; else the TCP client); ``start``/``end`` (first and last APDU or gap),
    ``duration`` (seconds); counts of APDUs by format and direction, ``errors`` (undecodable
    APDUs or octets), ``capture_gaps``; counts of each U function; ``started`` (first
    STARTDT con), ``stopped`` (last STOPDT con); ``complete``: the capture holds the
    connection's STARTDT act (so its start was seen).
    """
    df = as_frame(source)
    endpoints = stream_endpoints(df)
    rows = []
    a = apdus(df)
    g = gaps(df)
    for stream, part in a.groupby("stream", sort=True):
        stream = int(stream)
        ep = endpoints.loc[stream] if stream in endpoints.index else None
        client = ep["client"] if ep is not None else "?"
        server = ep["server"] if ep is not None else "?"
        u = part[part["apci"] == "U"]
        ufunc = u["u_func"].value_counts()
        startdt = u[u["u_func"] == "STARTDT_ACT"]
        commands = part[(part["type_id"].between(45, 69) | part["type_id"].between(100, 113))
                        & (part["cot"] == 6)]
        if len(startdt):
            master_dir, by = str(startdt["direction"].iloc[0]), "STARTDT_ACT"
        elif len(commands):
            master_dir, by = str(commands["direction"].mode().iloc[0]), "commands"
        else:
            master_dir, by = "c2s", "tcp client"
        gpart = g[g["stream"] == stream]
        times = pd.concat([part["time"], gpart["time"]])
        start, end = times.min(), times.max()
        started = u.loc[u["u_func"] == "STARTDT_CON", "time"]
        stopped = u.loc[u["u_func"] == "STOPDT_CON", "time"]
        errors = part["kind"] == "malformed"
        rows.append({
            "stream": stream, "client": client, "server": server,
            "master": client if master_dir == "c2s" else server, "master_by": by,
            "start": start, "end": end, "duration": (end - start).total_seconds(),
            "apdus": len(part), "i_frames": int((part["apci"] == "I").sum()),
            "s_frames": int((part["apci"] == "S").sum()), "u_frames": len(u),
            "c2s_apdus": int((part["direction"] == "c2s").sum()),
            "s2c_apdus": int((part["direction"] == "s2c").sum()),
            "errors": int(errors.sum()), "capture_gaps": len(gpart),
            **{f.lower(): int(ufunc.get(f, 0)) for f in
               ("STARTDT_ACT", "STARTDT_CON", "STOPDT_ACT", "STOPDT_CON", "TESTFR_ACT",
                "TESTFR_CON")},
            "started": started.min() if len(started) else pd.NaT,
            "stopped": stopped.max() if len(stopped) else pd.NaT,
            "complete": bool(len(part) and part["u_func"].iloc[0] == "STARTDT_ACT"),
        })
    if not rows:
        return empty(SESSION_COLUMNS)
    table = pd.DataFrame(rows)
    for name in ("started", "stopped"):
        table[name] = pd.to_datetime(table[name], utc=True)
    return table


def message_rate(source: Source, freq: str | None = "1s", by: str = "apci") -> pd.DataFrame:
    """APDUs per time bin (rows: bin start; columns: the values of ``by``, e.g. I/S/U or
    c2s/s2c or type_name), zero-filled: what :func:`iec104.analyzer.plot_message_rate`
    draws. ``freq=None`` picks a round bin width giving at most about 300 bins."""
    a = apdus(as_frame(source))
    a = a[a["time"].notna()]
    if not len(a):
        return pd.DataFrame()
    if freq is None:
        freq = auto_freq(a["time"])
    key = a[by].astype("string").fillna("error")
    counts = a.groupby([a["time"].dt.floor(freq), key]).size().unstack(fill_value=0)
    full = pd.date_range(counts.index.min(), counts.index.max(), freq=freq)
    counts = counts.reindex(full, fill_value=0)
    counts.index.name = "time"
    counts.columns.name = by
    return counts.astype(np.int64)
