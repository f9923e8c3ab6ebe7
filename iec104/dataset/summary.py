"""The summary of a dataset in bounded memory (``iec104 summary DIR``).

Theory of operation
-------------------
A dataset may be larger than memory, so it is never loaded whole:

* the overview, the type and the cause counts are aggregates that DuckDB computes while it
  streams the Parquet files (or the filtered batches, with a filter expression);
* the investigations (connections, APCI findings, commands, interrogations, anomalies) run on
  one capture at a time: a TCP connection never spans two captures in a dataset (every
  capture numbers its own streams), so ``(capture, stream)`` keeps them apart and memory
  holds the largest capture, not the dataset. Their findings are added up, and the tables
  get a ``capture`` column.

The text has the sections of :func:`iec104.analyzer.summary_text`, with the captures added.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .layout import DATASET_SCHEMA, is_capture_file, partition_schema
from .read import _expression, arrow_dataset, arrow_dataset_schema, batches, connect, time_bound
from .store import Store

if TYPE_CHECKING:
    import pandas as pd

    from ..records.filter import Filter

# An APDU's first row: its object 0, or its only row when it has no object. Counting these
# rows instead of DISTINCT (capture, apdu) keeps every aggregate in constant memory.
_HEAD = "apdu IS NOT NULL AND (obj IS NULL OR obj = 0)"

_OVERVIEW = f"""
SELECT count(*) AS rows,
       count(*) FILTER (WHERE {_HEAD}) AS apdus,
       count(DISTINCT capture) AS captures,
       count(DISTINCT (capture, stream)) AS connections,
       min(time) AS first, max(time) AS last,
       count(*) FILTER (WHERE {_HEAD} AND apci = 'I') AS i,
       count(*) FILTER (WHERE {_HEAD} AND apci = 'S') AS s,
       count(*) FILTER (WHERE {_HEAD} AND apci = 'U') AS u,
       count(ioa) AS objects,
       string_agg(DISTINCT CAST(ca AS VARCHAR), ', ' ORDER BY CAST(ca AS VARCHAR)) AS cas,
       count(DISTINCT (ca, ioa)) FILTER (WHERE ioa IS NOT NULL) AS points,
       count(*) FILTER (WHERE {_HEAD} AND kind = 'malformed') AS undecodable,
       count(*) FILTER (WHERE kind = 'gap') AS gaps
FROM rows_
"""

_TYPES = f"""
SELECT type_id, any_value(type_name) AS type_name, direction,
       count(*) FILTER (WHERE {_HEAD}) AS asdus, count(ioa) AS objects
FROM rows_ WHERE apci = 'I' AND type_id IS NOT NULL GROUP BY type_id, direction
ORDER BY type_id, direction
"""

_CAUSES = f"""
SELECT cot, any_value(cot_name) AS cot_name, negative, direction,
       count(*) FILTER (WHERE {_HEAD}) AS asdus, count(ioa) AS objects
FROM rows_ WHERE apci = 'I' AND cot IS NOT NULL GROUP BY cot, negative, direction
ORDER BY cot, negative, direction
"""


def _rows(con: Any, url: str, start: dt.datetime | None, end: dt.datetime | None,
          flt: Filter | None) -> None:
    """Define ``rows_``: the selected rows, streamed (never materialised)."""
    if flt is not None:
        reader = pa.RecordBatchReader.from_batches(
            DATASET_SCHEMA, batches(url, start=start, end=end, filter=flt))
        con.register("rows_", reader)
        return
    where = []
    if start is not None:
        where.append(f"time >= TIMESTAMPTZ '{start.isoformat()}' AND date >= DATE "
                     f"'{start.date().isoformat()}'")
    if end is not None:
        where.append(f"time < TIMESTAMPTZ '{end.isoformat()}' AND date <= DATE "
                     f"'{end.date().isoformat()}'")
    con.execute("CREATE OR REPLACE TEMP VIEW rows_ AS SELECT * FROM iec104"
                + (f" WHERE {' AND '.join(where)}" if where else ""))


def per_capture(url: str | os.PathLike[str], *, start: Any = None, end: Any = None,
                filter: Filter | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
    """``(capture, rows)`` for each capture with selected rows, one capture in memory at a
    time; the rows are of the records schema (``capture`` dropped), as the analyzer takes."""
    import pyarrow.dataset as pads

    store = Store(url)
    manifest = store.read_manifest()
    groups: list[tuple[str, Any]] = [
        (name, [store.path(f) for f in files]) for name, files in
        zip(manifest.column("capture").to_pylist(), manifest.column("files").to_pylist())]
    if not groups or any(not is_capture_file(f) for f in store.data_files()):
        # no manifest, or recorder log sessions (never in it): the names are in the files
        listed = {name for name, _ in groups}
        dataset = arrow_dataset(url)
        names = connect(url).sql("SELECT DISTINCT capture FROM iec104 ORDER BY 1").fetchall()
        groups += [(name, dataset.filter(pads.field("capture") == name)) for (name,) in names
                   if name not in listed]
    base = [c for c in DATASET_SCHEMA.names if c != "capture"]
    expression = _expression(time_bound(start), time_bound(end))
    for name, files in sorted(groups, key=lambda g: g[0]):
        dataset = files if not isinstance(files, list) else pads.dataset(
            files, schema=arrow_dataset_schema(), format="parquet", filesystem=store.fs,
            partitioning=pads.HivePartitioning(partition_schema()),
            partition_base_dir=store.root)
        scanner = dataset.scanner(columns=base, filter=expression,
                                  batch_size=1 << 17)
        parts = [filter.apply(b) if filter is not None else b for b in scanner.to_batches()]
        table = pa.Table.from_batches([b for b in parts if b.num_rows],
                                      schema=scanner.projected_schema)
        if table.num_rows:
            yield name, table.to_pandas()


def summary_text(url: str | os.PathLike[str], *, start: Any = None, end: Any = None,
                 filter: Filter | None = None, max_rows: int = 20, **options: Any) -> str:
    """The summary of the dataset at ``url`` (see the module docstring); ``options`` go to
    the investigations as in :func:`iec104.analyzer.summary`."""
    import pandas as pd

    from ..analyzer.report import _display, summary

    lo, hi = time_bound(start), time_bound(end)
    con = connect(url)
    try:
        _rows(con, os.fspath(url), lo, hi, filter)
        o = con.sql(_OVERVIEW).df().iloc[0]
        if filter is not None:  # the reader is consumed: define it again
            _rows(con, os.fspath(url), lo, hi, filter)
        types = con.sql(_TYPES).df()
        if filter is not None:
            _rows(con, os.fspath(url), lo, hi, filter)
        causes = con.sql(_CAUSES).df()
    finally:
        con.close()
    sessions, anomalies = [], []
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("link", "commands",
                                                              "interrogations", "anomalies")}
    sbo = 0
    for name, df in per_capture(url, start=lo, end=hi, filter=filter):
        tables = summary(df, **options)
        sessions.append(tables["sessions"].assign(capture=name))
        anomalies.append(tables["anomalies"].assign(capture=name))
        for key, column in (("link", "kind"), ("commands", "status"),
                            ("interrogations", "status"), ("anomalies", "kind")):
            if len(tables[key]):
                counts[key].update(tables[key][column].astype(str).tolist())
        cmds = tables["commands"]
        if len(cmds):
            sbo += int((cmds["sbo_violation"].astype(str) != "").sum())

    def line(counter: Counter[str]) -> str:
        return ", ".join(f"{k} {v}" for k, v in counter.most_common()) or "none"

    lines: list[str] = []

    def section(title: str, table: pd.DataFrame, columns: list[str]) -> None:
        lines.append("")
        lines.append(f"== {title} ({len(table)}) ==")
        if len(table):
            shown = _display(table[[c for c in columns if c in table.columns]]).head(max_rows)
            lines.append(shown.to_string(index=False))
            if len(table) > max_rows:
                lines.append(f"... {len(table) - max_rows} more")

    def stamp(value: Any) -> str:  # DuckDB answers in its TimeZone, set to UTC by connect()
        return "" if value is None or pd.isna(value) else \
            pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    duration = ((o["last"] - o["first"]).total_seconds()
                if not pd.isna(o["first"]) else 0.0)
    items = [("captures", o["captures"]), ("rows", o["rows"]), ("APDUs", o["apdus"]),
             ("connections (capture, stream)", o["connections"]),
             ("first", stamp(o["first"])), ("last", stamp(o["last"])),
             ("duration (s)", round(duration, 3)),
             ("I / S / U frames", f"{o['i']} / {o['s']} / {o['u']}"),
             ("information objects", o["objects"]),
             ("common addresses", (o["cas"] or "")[:200]),
             ("points (CA, IOA)", o["points"]),
             ("undecodable APDUs / octet runs", o["undecodable"]),
             ("capture gaps", o["gaps"])]
    lines.append("== Overview ==")
    lines += [f"{item:32} {value}" for item, value in items]
    empty = pd.DataFrame()
    section("Connections", pd.concat(sessions, ignore_index=True) if sessions else empty,
            ["capture", "stream", "client", "server", "master", "start", "duration", "apdus",
             "errors", "capture_gaps"])
    lines.append("")
    lines.append(f"== APCI findings: {line(counts['link'])} ==")
    lines.append(f"== Commands: {line(counts['commands'])} ==")
    lines.append(f"== Select-before-operate violations: {sbo} ==")
    lines.append(f"== Interrogations: {line(counts['interrogations'])} ==")
    lines.append(f"== Anomalies: {line(counts['anomalies'])} ==")
    section("Anomalies", pd.concat(anomalies, ignore_index=True) if anomalies else empty,
            ["capture", "kind", "severity", "stream", "frame", "src", "ca", "ioa", "count",
             "detail"])
    section("Types", types, ["type_id", "type_name", "direction", "asdus", "objects"])
    section("Causes", causes, ["cot", "cot_name", "negative", "direction", "asdus", "objects"])
    return "\n".join(lines) + "\n"
