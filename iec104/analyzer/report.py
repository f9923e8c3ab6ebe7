"""All investigations at once: a dict of tables, a terminal summary, a self-contained HTML
report.

:func:`summary` runs every investigation and returns the tables by name; ``iec104 summary``
prints :func:`summary_text` of them and ``iec104 report`` writes :func:`report_html`: one
HTML file with inline CSS and the plots embedded as PNG ``data:`` URIs, no script and no
external resource, so it opens anywhere and can be mailed around.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from ..codec import FLOAT32_TYPE_IDS, TypeId, float32_text
from .anomaly import anomalies
from .command_audit import commands, interrogations
from .field_sizes import profiles
from .frames import Source, apdus, as_frame, gaps
from .link import link_findings, sessions
from .points import latest_values, quality_transitions
from .security import authentication
from .stats import apci_counts, cause_counts, type_counts

_LINK_OPTIONS = ("k", "w", "t1", "t2", "t3", "slack")
_ANOMALY_OPTIONS = ("known_cas", "known_points", "baseline", "masters", "max_drift",
                    "burst_window", "burst_factor", "burst_min", "command_burst",
                    "broadcast_ca")
_COMMAND_OPTIONS = ("expect_actterm", "sbo_timeout")


def overview(source: Source) -> pd.DataFrame:
    """Key figures of the data as a two-column table (``item``, ``value``)."""
    df = as_frame(source)
    a = apdus(df)
    times = df["time"].dropna()
    objects = df[df["ioa"].notna()]
    items: list[tuple[str, Any]] = [
        ("rows", len(df)), ("APDUs", len(a)),
        ("connections (TCP streams)", int(df["stream"].nunique())),
        ("first", _ts(times.min()) if len(times) else ""),
        ("last", _ts(times.max()) if len(times) else ""),
        ("duration (s)", round((times.max() - times.min()).total_seconds(), 3)
         if len(times) else 0.0),
        ("I / S / U frames", " / ".join(str(int((a["apci"] == k).sum())) for k in "ISU")),
        ("information objects", int(df["obj"].notna().sum())),  # also those without IOA
        ("common addresses (list)",
         ", ".join(str(int(c)) for c in sorted(a["ca"].dropna().unique()))[:200]),
        ("points (CA, IOA)", len(objects.drop_duplicates(["ca", "ioa"]))),
        ("undecodable APDUs / octet runs", int((a["kind"] == "malformed").sum())),
        ("capture gaps", len(gaps(df))),
    ]
    return pd.DataFrame(items, columns=["item", "value"]).astype({"value": "string"})


def summary(source: Source, **options: Any) -> dict[str, pd.DataFrame]:
    """Every investigation's table, by name (in report order).

    Keyword options go to the investigation that takes them: ``k, w, t1, t2, t3, slack``
    (:func:`~iec104.analyzer.link_findings`), ``expect_actterm, sbo_timeout``
    (:func:`~iec104.analyzer.commands`), and ``known_cas, known_points, baseline,
    masters, max_drift, burst_*, command_burst, broadcast_ca``
    (:func:`~iec104.analyzer.anomalies`).

    Keys: ``overview, sessions, profiles, link`` (sequence + timeout findings), ``commands,
    interrogations, anomalies, authentication, latest_values, quality_transitions, apci,
    types, causes``.
    """
    unknown = set(options) - set(_LINK_OPTIONS + _ANOMALY_OPTIONS + _COMMAND_OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    df = as_frame(source)

    def pick(names: tuple[str, ...]) -> dict[str, Any]:
        return {k: v for k, v in options.items() if k in names}

    return {
        "overview": overview(df),
        "sessions": sessions(df),
        "profiles": profiles(df),
        "link": link_findings(df, **pick(_LINK_OPTIONS)),
        "commands": commands(df, **pick(_COMMAND_OPTIONS)),
        "interrogations": interrogations(df),
        "anomalies": anomalies(df, **pick(_ANOMALY_OPTIONS)),
        "authentication": authentication(df),
        "latest_values": latest_values(df),
        "quality_transitions": quality_transitions(df),
        "apci": apci_counts(df).reset_index().rename_axis(columns=None),
        "types": type_counts(df),
        "causes": cause_counts(df),
    }


def _ts(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _compact(values: Any) -> str:
    """``[1, 2, 3, 7]`` -> ``'1-3, 7'``."""
    if not isinstance(values, (list, tuple)) or not values:
        return "" if not isinstance(values, (list, tuple)) else "-"
    out: list[str] = []
    start = prev = values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """Format for people: times as text, lists compacted, floats rounded, nulls blank."""
    out = table.copy()
    if "type_id" in out.columns or "type_name" in out.columns:
        # short floats as the device sent them: 50.016, not 50.015999 (binary32 -> 64)
        kind = out["type_id"] if "type_id" in out.columns else out["type_name"].map(
            lambda n: getattr(TypeId, str(n), None) if isinstance(n, str) else None)
        floats = kind.isin(FLOAT32_TYPE_IDS).fillna(False).astype(bool)
        for name, text_name in (("value", "value_text"), ("prev_value", "prev_text")):
            if name not in out.columns or not floats.any():
                continue
            shown = floats & out[name].notna()
            texts = out.loc[shown, name].map(float32_text)
            for target in (name, text_name):
                if target in out.columns:
                    column = out[target].astype(object)
                    column[shown] = texts
                    out[target] = column
    for name in out.columns:
        col = out[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(
                col.dtype):
            out[name] = col.map(_ts)
        elif col.dtype == object and col.map(lambda v: isinstance(v, list)).any():
            out[name] = col.map(_compact)
        elif pd.api.types.is_float_dtype(col.dtype):
            out[name] = col.round(6)
    return out.astype(object).where(out.notna(), "")


def _counts_line(table: pd.DataFrame, column: str) -> str:
    if not len(table):
        return "none"
    counts = table[column].value_counts()
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def summary_text(source: Source, *, max_rows: int = 20, **options: Any) -> str:
    """A plain-text summary for a terminal: overview, connections and the counts of each
    investigation's findings, with the first ``max_rows`` rows of the important ones."""
    tables = summary(source, **options)
    lines: list[str] = []

    def section(title: str, table: pd.DataFrame, columns: list[str] | None = None) -> None:
        lines.append("")
        lines.append(f"== {title} ({len(table)}) ==")
        if len(table):
            shown = _display(table[columns] if columns else table).head(max_rows)
            lines.append(shown.to_string(index=False))
            if len(table) > max_rows:
                lines.append(f"... {len(table) - max_rows} more")

    lines.append("== Overview ==")
    for item, value in tables["overview"].itertuples(index=False):
        lines.append(f"{item:32} {value}")
    section("Connections", tables["sessions"],
            ["stream", "client", "server", "master", "start", "duration", "apdus", "errors",
             "capture_gaps"])
    section("Field-size profiles (COT/CA/IOA octets)", tables["profiles"],
            ["stream", "direction", "src", "dst", "profile", "confidence", "basis",
             "i_frames"])
    link = tables["link"]
    lines.append("")
    lines.append(f"== APCI findings: {_counts_line(link, 'kind')} ==")
    cmds = tables["commands"]
    lines.append(f"== Commands: {_counts_line(cmds, 'status')} ==")
    sbo = cmds[cmds["sbo_violation"].astype(str) != ""] if len(cmds) else cmds
    lines.append(f"== Select-before-operate violations: {len(sbo)} ==")
    ics = tables["interrogations"]
    lines.append(f"== Interrogations: {_counts_line(ics, 'status')} ==")
    an = tables["anomalies"]
    lines.append(f"== Anomalies: {_counts_line(an, 'kind')} ==")
    section("Anomalies", an, ["kind", "severity", "stream", "frame", "src", "ca", "ioa",
                              "count", "detail"])
    auth = tables["authentication"]
    if len(auth):  # only captures with IEC 62351-5 secure authentication
        lines.append("")
        lines.append(f"== Secure authentication: {int(auth['challenges'].sum())} challenges, "
                     f"{int(auth['replies'].sum())} replies, "
                     f"{int(auth['failures'].sum())} failures ==")
        section("Secure authentication", auth,
                ["stream", "client", "server", "challenges", "replies", "aggressive",
                 "key_changes", "errors", "key_failures", "error_codes"])
    section("Types", tables["types"], ["type_id", "type_name", "direction", "asdus",
                                       "objects"])
    section("Causes", tables["causes"], ["cot", "cot_name", "negative", "direction", "asdus",
                                         "objects"])
    section("Errors and gaps", _problems(as_frame(source)),
            ["frame", "time", "stream", "direction", "src", "dst", "error"])
    return "\n".join(lines) + "\n"


def _problems(df: pd.DataFrame) -> pd.DataFrame:
    """One row per undecodable APDU or octet run, per capture gap and per connection note
    (e.g. the dissector's per-segment fallback), in file order. Time tags that are no
    calendar time are left out: their APDU itself was decoded."""
    a = apdus(df)
    bad = a[a["kind"] == "malformed"]
    notes = df[df["kind"].isin(("gap", "event"))]
    table = pd.concat([bad, notes]).sort_index(kind="stable")
    table = table.assign(src=table["src"].astype("string") + ":" + table["sport"].astype("string"),
                         dst=table["dst"].astype("string") + ":" + table["dport"].astype("string"))
    return table.reset_index(drop=True)


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;
background:#f6f8fa}
header{background:#1f3a5f;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:0;opacity:.85;font-size:13px}
nav{padding:8px 28px;background:#e8eef5;font-size:13px;position:sticky;top:0}
nav a{margin-right:14px;color:#1f3a5f;text-decoration:none} nav a:hover{text-decoration:underline}
main{padding:8px 28px 40px}
section{background:#fff;border:1px solid #d8dee4;border-radius:6px;margin:16px 0;padding:12px 16px}
h2{font-size:17px;margin:4px 0 6px} p.note{color:#57606a;font-size:13px;margin:4px 0 10px}
.badges span{display:inline-block;margin:2px 6px 2px 0;padding:2px 8px;border-radius:10px;
background:#eaeef2;font-size:12px}
.badges span.bad{background:#ffebe9;color:#a40e26} .badges span.ok{background:#dafbe1;color:#116329}
.wrap{overflow-x:auto;max-height:520px;overflow-y:auto}
table{border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8dee4;padding:3px 7px;text-align:left;vertical-align:top;
white-space:nowrap} td:last-child{white-space:normal;min-width:260px}
th{background:#f0f3f6;position:sticky;top:0}
tr:nth-child(even) td{background:#fafbfc}
img{max-width:100%;height:auto;border:1px solid #eaeef2}
footer{color:#57606a;font-size:12px;padding:0 28px 20px}
"""

_SECTIONS = [
    ("sessions", "Connections",
     "One row per TCP connection: endpoints, the controlling station (master) and how it "
     "was recognised, duration, APDU counts, STARTDT/STOPDT/TESTFR exchanges."),
    ("profiles", "Field-size profiles",
     "The COT/CA/IOA sizes in octets each direction was decoded with: detected from its "
     "ASDUs (confidence 0-1), assumed 2/2/3 when too few I-frames, or given by --profile."),
    ("link", "Sequence numbers and timeouts",
     "APCI-level findings: N(S) gaps, duplicates and resets, acknowledgements that are "
     "wrong or later than t2, send windows beyond k, t1 expiries, idle links without TESTFR "
     "(t3). 'actor' is the side at fault."),
    ("commands", "Command audit",
     "Every command with its confirmation (ACTCON) and termination (ACTTERM), round-trip "
     "times in seconds, negative confirmations, unanswered commands and "
     "select-before-operate violations."),
    ("interrogations", "Interrogations",
     "General and counter interrogations: ACT, ACTCON, the points that answered, ACTTERM; "
     "for station interrogations the known points that did not answer."),
    ("anomalies", "Anomalies",
     "Flags for security analysts: unknown addresses, commands from unexpected hosts, "
     "bursts, time-tag drift, broadcast common address, malformed frames."),
    ("authentication", "Secure authentication",
     "IEC 62351-5 messages per connection: challenges, replies, aggressive-mode requests, "
     "session key statuses and changes, and the failures (authentication errors by code, "
     "key statuses other than OK)."),
    ("latest_values", "Points: latest values",
     "The last report of every point (CA, IOA) with its number of reports and value "
     "changes."),
    ("quality_transitions", "Points: quality transitions",
     "Reports where a point's quality flags changed (IV invalid, NT not topical, SB "
     "substituted, BL blocked, OV overflow, EI elapsed time invalid)."),
    ("types", "Type identifications", "ASDUs and information objects per type and direction."),
    ("causes", "Causes of transmission", "ASDUs and objects per cause, P/N bit and direction."),
    ("apci", "APDU formats", "APDUs per format (U-frames by function) and direction."),
]

_DROP = {"commands": ["direction", "value", "con_time", "term_time"],
         "link": ["apdu"],
         "interrogations": ["con_time", "term_time"]}


def _table_html(table: pd.DataFrame, max_rows: int) -> str:
    shown = _display(table.head(max_rows))
    if "detail" in shown.columns:  # free text last: the CSS lets the last column wrap
        shown = shown[[c for c in shown.columns if c != "detail"] + ["detail"]]
    text = shown.to_html(index=False, escape=True, border=0, na_rep="")
    text = text.replace('class="dataframe"', "")
    more = (f'<p class="note">showing the first {max_rows} of {len(table)} rows</p>'
            if len(table) > max_rows else "")
    return f'<div class="wrap">{text}</div>{more}'


def _badges(name: str, table: pd.DataFrame) -> str:
    column = {"link": "kind", "commands": "status", "interrogations": "status",
              "anomalies": "kind"}.get(name)
    if column is None or not len(table):
        return ""
    good = {"ok", "complete"}
    spans = []
    for value, n in table[column].value_counts().items():
        cls = "ok" if value in good else "bad"
        spans.append(f'<span class="{cls}">{html.escape(str(value))}: {n}</span>')
    if name == "commands":
        sbo = int((table["sbo_violation"].astype(str) != "").sum())
        if sbo:
            spans.append(f'<span class="bad">select-before-operate violations: {sbo}</span>')
    return f'<div class="badges">{"".join(spans)}</div>'


def _png_tag(fig: Any, alt: str) -> str:
    from .plots import figure_png
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def report_html(source: Source, *, title: str | None = None, max_rows: int = 500,
                points: list[tuple[int, int]] | None = None, **options: Any) -> str:
    """The HTML report (a complete document) of ``source``.

    Args:
        title: heading (default: the file name, or "IEC 104 report").
        max_rows: rows shown per table (the counts above each table cover all rows).
        points: ``(ca, ioa)`` pairs for the value timeline (default: the busiest).
        options: passed to :func:`summary`.
    """
    df = as_frame(source)
    if title is None:
        title = (f"IEC 104 report: {Path(source).name}"
                 if isinstance(source, (str, os.PathLike)) else "IEC 104 report")
    tables = summary(df, **options)
    from .plots import plot_message_rate, plot_value_timeline
    rate = _png_tag(plot_message_rate(df), "message rate chart")
    values = _png_tag(plot_value_timeline(df, points), "value timeline")
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    nav = ['<a href="#overview">Overview</a>', '<a href="#plots">Plots</a>']
    nav += [f'<a href="#{key}">{html.escape(heading)}</a>' for key, heading, _ in _SECTIONS]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1><p>generated {generated} by iec104 "
        f"{html.escape(__version__)}</p></header>",
        f"<nav>{''.join(nav)}</nav><main>",
        '<section id="overview"><h2>Overview</h2>',
        _table_html(tables["overview"], max_rows), "</section>",
        '<section id="plots"><h2>Plots</h2>',
        '<p class="note">APDUs per time bin by format, and the values of the busiest points '
        "(red x: report with a quality flag set).</p>", rate, values, "</section>",
    ]
    for key, heading, note in _SECTIONS:
        table = tables[key]
        drop = [c for c in _DROP.get(key, []) if c in table.columns]
        table = table.drop(columns=drop)
        parts.append(f'<section id="{key}"><h2>{html.escape(heading)} ({len(table)})</h2>')
        parts.append(f'<p class="note">{html.escape(note)}</p>')
        parts.append(_badges(key, tables[key]))
        parts.append(_table_html(table, max_rows) if len(table) else
                     '<p class="note">none</p>')
        parts.append("</section>")
    parts.append("</main><footer>iec104 analyzer report; thresholds: "
                 + html.escape(", ".join(f"{k}={v}" for k, v in sorted(options.items()))
                               or "defaults")
                 + "</footer></body></html>")
    return "\n".join(parts)


def write_report(source: Source, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write :func:`report_html` to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    if "title" not in kwargs and isinstance(source, (str, os.PathLike)):
        kwargs["title"] = f"IEC 104 report: {Path(source).name}"
    path.write_text(report_html(source, **kwargs), encoding="utf-8")
    return path
