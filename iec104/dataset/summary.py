"""The summary of a dataset in bounded memory (``iec104 summary DIR``).

Theory of operation
-------------------
A dataset may be larger than memory, so it is never loaded whole, nor is any one capture:

* the overview, the type and the cause counts are aggregates that DuckDB computes while it
  streams the Parquet files (or the filtered batches, with a filter expression);
* the investigations (connections, APCI findings, commands, interrogations, anomalies) run
  on one TCP connection, ``(capture, stream)``, at a time (:func:`per_connection`). Each
  capture's rows are scanned once (its files only, time range and filter pushed down,
  :func:`iec104.dataset.read.batches`) into a DuckDB table under a memory limit with a
  temporary directory, so DuckDB spills to disk rather than grow; ``ORDER BY stream,
  <file order>`` of that table, fetched as Arrow record batches, is cut where ``stream``
  changes. Memory holds one connection (plus DuckDB's bounded buffers), not the capture.
* A few findings of a connection depend on the rest of its capture: an outstation that
  terminates commands (ACTTERM), points that had a select, the hosts that ran a general
  interrogation, the commands a host sent on every connection (command bursts), the common
  addresses that report data, and the points an interrogation should have returned, all
  about the connection's commands and interrogations. So a connection that sends or answers
  any gets the capture's *context* from the other connections: every row
  of a command or interrogation ASDU and the first row of each (CA, cause) of process
  information (small: commands are rare), and, on a connection that interrogates, the first
  row of each point (CA, IOA, type) of its common addresses (a DuckDB query per such
  connection). Commands, interrogations and anomalies run on the connection's rows plus
  that context, in the capture's row order, and keep only the connection's findings: the
  same findings as on the whole capture, each found once. The analyzer is told which
  connection is investigated (``streams=``), so the context's own connections are read
  only by the rules that span connections, never investigated themselves (that cost grew
  with the square of the commanding connections of a capture).
* Findings are added up; the tables get a ``capture`` column. A TCP connection never spans
  two captures in a dataset (every capture numbers its own streams).

The text has the sections of :func:`iec104.analyzer.summary_text`, with the captures added.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa

from ..analyzer.frames import (
    INTERROGATIONS,
    PROCESS_COMMANDS,
    PROCESS_INFO_TYPES,
    SYSTEM_COMMANDS,
)
from ..codec import TypeId
from ..records.schema import SCHEMA
from .layout import DATASET_SCHEMA
from .read import _quote, batches, committed_files, connect, time_bound
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


MEMORY_LIMIT = 256 << 20
"""DuckDB's memory limit (bytes) for the table and sort of each capture by connection (it
spills to a temporary directory beyond it)."""

# The context of a connection (see the module docstring), as queries over the capture's
# table ``cap_``: every row of a command or interrogation ASDU ...
_COMMANDS = frozenset(int(t) for t in PROCESS_COMMANDS | SYSTEM_COMMANDS | INTERROGATIONS)
_CONTEXT_TYPES = ", ".join(map(str, sorted(_COMMANDS)))
# ... the first row of each (CA, cause) of process information: the CAs that report ...
_POINT_TYPES = ", ".join(str(int(t)) for t in sorted(PROCESS_INFO_TYPES | {TypeId.M_EI_NA_1}))
_INTERROGATIONS = ", ".join(str(int(t)) for t in sorted(INTERROGATIONS))
_CONTEXT = f"""
SELECT * FROM cap_ WHERE apci = 'I' AND type_id IN ({_CONTEXT_TYPES})
UNION ALL
SELECT cap_.* FROM cap_ JOIN (SELECT min(_seq) AS first FROM cap_
                              WHERE apci = 'I' AND type_id IN ({_POINT_TYPES})
                              GROUP BY ca, cot) ON _seq = first
"""
# ... and, for a connection that interrogates, the first row of each point (CA, IOA, type)
# of the common addresses on that connection: the points an interrogation should return
# (a grouping and a join, which DuckDB spills, where DISTINCT ON would not fit)
_POINTS = f"""
CREATE OR REPLACE TABLE points_ AS
SELECT cap_.* FROM cap_ JOIN (SELECT min(_seq) AS first FROM cap_
                              WHERE apci = 'I' AND type_id IN ({_POINT_TYPES})
                                    AND ioa IS NOT NULL
                              GROUP BY ca, ioa, type_id) ON _seq = first
"""
_INTERROGATED = f"""
SELECT stream, list(DISTINCT ca) FROM cap_ WHERE ca IS NOT NULL AND stream IN (
    SELECT stream FROM cap_ WHERE apci = 'I' AND type_id IN ({_INTERROGATIONS}))
GROUP BY stream
"""
_TIMES = ("time", "time_tag")  # timestamp[ns] columns: int64 through DuckDB (its TZ type is us)
_SEQ = "_seq"  # a row's place in its capture (file order)


def _size(memory_limit: int) -> str:
    """A memory limit in bytes as DuckDB's setting (KiB, at least 1 MiB)."""
    return f"{max(memory_limit, 1 << 20) >> 10}KiB"


def _captures(url: str | os.PathLike[str]) -> list[tuple[str, list[str], bool]]:
    """``(capture, its files (full paths), whether a file may hold other captures)``, by
    name: the manifest's captures, then the recorder log sessions (named in their files)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    store = Store(url)
    manifest = store.read_manifest()
    groups: dict[str, tuple[list[str], bool]] = {
        name: ([store.path(f) for f in files or ()], False) for name, files in
        zip(manifest.column("capture").to_pylist(), manifest.column("files").to_pylist())}
    listed = {f for files, _ in groups.values() for f in files}
    for path in committed_files(store):
        if path in listed:
            continue
        with store.fs.open(path, "rb") as fh:
            names = pc.unique(pq.read_table(fh, columns=["capture"]).column("capture")
                              .cast(pa.string())).to_pylist()
        for name in names:
            if name is not None:
                groups.setdefault(name, ([], True))[0].append(path)
    return sorted(((name, files, mixed) for name, (files, mixed) in groups.items()
                   if files), key=lambda g: g[0])


def _for_duckdb(batch: pa.RecordBatch, seq: int) -> pa.RecordBatch:
    """A batch of the records schema as DuckDB takes it without loss: times as int64
    nanoseconds, the row's place in the capture appended."""
    import numpy as np

    arrays = [c.cast(pa.int64()) if name in _TIMES else c
              for name, c in zip(batch.schema.names, batch.columns)]
    arrays.append(pa.array(np.arange(seq, seq + batch.num_rows, dtype=np.int64)))
    return pa.RecordBatch.from_arrays(arrays, schema=_sort_schema())


def _sort_schema() -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.int64()) if f.name in _TIMES else f
                      for f in _base_schema()] + [pa.field(_SEQ, pa.int64())])


def _base_schema() -> pa.Schema:
    """The columns the investigations read: the dataset schema without ``capture`` (one
    value per capture) and ``raw`` (the octets, for people and file transfers; the largest
    column, never read by these investigations)."""
    return pa.schema([f for f in DATASET_SCHEMA if f.name not in ("capture", "raw")])


def _frame(parts: list[pa.RecordBatch]) -> pd.DataFrame:
    """Rows back from DuckDB (or the context) as the analyzer's DataFrame, ``_seq`` kept,
    with the records schema's nullable dtypes (as ``iec104 summary FILE`` gives it: the
    dtypes of a column do not depend on whether one connection has nulls in it)."""
    schema = pa.schema([*_base_schema(), pa.field(_SEQ, pa.int64())], metadata=SCHEMA.metadata)
    table = pa.Table.from_batches(parts) if parts else _sort_schema().empty_table()
    return table.rename_columns(schema.names).cast(schema).to_pandas()


class Connection(NamedTuple):
    """One TCP connection's rows and the context of its capture (see the module docstring).

    Attributes:
        capture: the ``capture`` value.
        stream: the connection's ``stream`` (None: rows outside any connection).
        rows: its rows in file order (records schema).
        context: the context rows of the capture's other connections, with ``rows``, in
            the capture's row order.
    """

    capture: str
    stream: int | None
    rows: pd.DataFrame
    context: pd.DataFrame


def per_connection(url: str | os.PathLike[str], *, start: Any = None, end: Any = None,
                   filter: Filter | None = None, memory_limit: int = MEMORY_LIMIT
                   ) -> Iterator[Connection]:
    """Every connection with selected rows, one in memory at a time, in order of
    ``(capture, stream)`` (see the module docstring)."""
    import tempfile

    import duckdb
    import numpy as np

    base = _base_schema().names
    with tempfile.TemporaryDirectory(prefix="iec104-summary-") as spill:
        # a database file, not in memory: its tables' blocks can leave memory (an in-memory
        # table cannot); two threads: each holds sort buffers within the limit
        con = duckdb.connect(os.path.join(spill, "capture.duckdb"),
                             config={"memory_limit": _size(memory_limit),
                                     "temp_directory": spill, "threads": 2,
                                     "preserve_insertion_order": False})
        con.execute("SET enable_progress_bar = false")
        side = con.cursor()  # queries while the ordered rows stream on ``con``
        try:
            for name, files, mixed in _captures(url):

                def rows(files: list[str] = files, mixed: bool = mixed, name: str = name
                         ) -> Iterator[pa.RecordBatch]:
                    seq = 0
                    for batch in batches(url, start=start, end=end, columns=base,
                                         filter=filter, files=files,
                                         capture=name if mixed else None):
                        yield _for_duckdb(batch, seq)
                        seq += batch.num_rows

                con.register("capture_", pa.RecordBatchReader.from_batches(_sort_schema(),
                                                                           rows()))
                con.execute("CREATE OR REPLACE TABLE cap_ AS SELECT * FROM capture_")
                con.unregister("capture_")
                context = _frame(con.sql(_CONTEXT).to_arrow_table().to_batches())
                con.execute(_POINTS)
                asks = dict(con.sql(_INTERROGATED).fetchall())
                ordered = con.sql(f"SELECT * FROM cap_ ORDER BY stream NULLS LAST, "
                                  f"{_SEQ}").to_arrow_reader(1 << 16)
                pending: list[pa.RecordBatch] = []

                def connection(parts: list[pa.RecordBatch], name: str = name,
                               context: pd.DataFrame = context,
                               asks: dict[int, list[int]] = asks) -> Connection:
                    stream = parts[0].column("stream")[0].as_py()
                    points = None
                    if stream in asks:
                        cas = ", ".join(str(int(c)) for c in asks[stream])
                        points = _frame(side.sql(
                            f"SELECT * FROM points_ WHERE ca IN ({cas}) AND stream <> "
                            f"{int(stream)}").to_arrow_table().to_batches())
                    return _connection(name, parts, context, points)

                for batch in ordered:
                    streams = batch.column("stream").fill_null(-1).to_numpy()
                    cuts = [0, *(np.flatnonzero(np.diff(streams)) + 1), batch.num_rows]
                    for lo, hi in itertools.pairwise(cuts):
                        part = batch.slice(lo, hi - lo)
                        if pending and (pending[0].column("stream")[0].as_py()
                                        != part.column("stream")[0].as_py()):
                            yield connection(pending)
                            pending = []
                        pending.append(part)
                if pending:
                    yield connection(pending)
                con.execute("DROP TABLE cap_; DROP TABLE points_")
        finally:
            side.close()
            con.close()


def _connection(name: str, parts: list[pa.RecordBatch], context: pd.DataFrame,
                points: pd.DataFrame | None) -> Connection:
    import pandas as pd

    rows = _frame(parts)
    first = rows["stream"].iloc[0]
    stream = None if pd.isna(first) else int(first)
    commanding = (rows["apci"].eq("I") & rows["type_id"].isin(_COMMANDS)).any()
    if not commanding:  # every finding that needs other connections is about a command
        return Connection(name, stream, rows.drop(columns=[_SEQ]),
                          rows.drop(columns=[_SEQ]).reset_index(drop=True))
    others = context["stream"].notna() if stream is None else \
        context["stream"].ne(stream).fillna(True).astype(bool)
    frames = [rows, context[others]] + ([points] if points is not None else [])
    both = pd.concat(frames).drop_duplicates(_SEQ).sort_values(_SEQ, kind="stable")
    return Connection(name, stream, rows.drop(columns=[_SEQ]),
                      both.drop(columns=[_SEQ]).reset_index(drop=True))


def _findings(conn: Connection, options: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The investigations' tables of one connection (see the module docstring)."""
    from ..analyzer import anomalies, commands, interrogations, link_findings, sessions
    from ..analyzer.report import _ANOMALY_OPTIONS, _COMMAND_OPTIONS, _LINK_OPTIONS

    def pick(names: tuple[str, ...]) -> dict[str, Any]:
        return {k: v for k, v in options.items() if k in names}

    def own(table: pd.DataFrame) -> pd.DataFrame:
        stream = table["stream"]
        mine = stream.isna() if conn.stream is None else stream.eq(conn.stream).fillna(False)
        return table[mine.astype(bool)].reset_index(drop=True)

    # the connection's findings only: the context's own connections are not investigated
    # (their findings of one connection would be dropped), only read where rules span them
    mine = {} if conn.stream is None else {"streams": (conn.stream,)}
    return {
        "sessions": sessions(conn.rows),
        "link": link_findings(conn.rows, **pick(_LINK_OPTIONS)),
        "commands": own(commands(conn.context, **pick(_COMMAND_OPTIONS))),
        "interrogations": own(interrogations(conn.context, **mine)),
        "anomalies": own(anomalies(conn.context, **pick(_ANOMALY_OPTIONS), **mine)),
    }


class Findings(NamedTuple):
    """The investigations' findings over a dataset, added up connection by connection.

    Attributes:
        sessions: one row per connection (:func:`iec104.analyzer.sessions`) with its
            ``capture``, by capture then stream.
        anomalies: :func:`iec104.analyzer.anomalies` with ``capture``: by capture, then by
            time as on the whole capture.
        counts: ``link`` (APCI finding kinds), ``commands`` and ``interrogations``
            (statuses), ``anomalies`` (kinds): how many of each.
        sbo_violations: commands that broke select-before-operate.
    """

    sessions: pd.DataFrame
    anomalies: pd.DataFrame
    counts: dict[str, Counter[str]]
    sbo_violations: int


def findings(url: str | os.PathLike[str], *, start: Any = None, end: Any = None,
             filter: Filter | None = None, memory_limit: int = MEMORY_LIMIT,
             **options: Any) -> Findings:
    """Run the per-connection investigations over the dataset (see the module docstring);
    ``options`` go to them as in :func:`iec104.analyzer.summary`."""
    import pandas as pd

    from ..analyzer.report import _ANOMALY_OPTIONS, _COMMAND_OPTIONS, _LINK_OPTIONS

    unknown = set(options) - set(_LINK_OPTIONS + _ANOMALY_OPTIONS + _COMMAND_OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    sessions, anomalies = [], []
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("link", "commands",
                                                              "interrogations", "anomalies")}
    sbo = 0
    capture_flags: list[pd.DataFrame] = []

    def flush(name: str | None) -> None:
        """A capture's anomalies in its own order (by time, as on the whole capture)."""
        if name is not None and capture_flags:
            table = pd.concat(capture_flags, ignore_index=True)
            anomalies.append(table.sort_values(["time", "kind"], kind="stable")
                             .assign(capture=name))
        capture_flags.clear()

    current: str | None = None
    for conn in per_connection(url, start=start, end=end, filter=filter,
                               memory_limit=memory_limit):
        if conn.capture != current:
            flush(current)
            current = conn.capture
        tables = _findings(conn, options)
        sessions.append(tables["sessions"].assign(capture=conn.capture))
        if len(tables["anomalies"]):
            capture_flags.append(tables["anomalies"])
        for key, column in (("link", "kind"), ("commands", "status"),
                            ("interrogations", "status"), ("anomalies", "kind")):
            if len(tables[key]):
                counts[key].update(tables[key][column].astype(str).tolist())
        cmds = tables["commands"]
        if len(cmds):
            sbo += int((cmds["sbo_violation"].astype(str) != "").sum())
    flush(current)
    return Findings(pd.concat(sessions, ignore_index=True) if sessions else pd.DataFrame(),
                    pd.concat(anomalies, ignore_index=True) if anomalies else pd.DataFrame(),
                    counts, sbo)


def summary_text(url: str | os.PathLike[str], *, start: Any = None, end: Any = None,
                 filter: Filter | None = None, max_rows: int = 20,
                 memory_limit: int = MEMORY_LIMIT, **options: Any) -> str:
    """The summary of the dataset at ``url`` (see the module docstring); ``options`` go to
    the investigations as in :func:`iec104.analyzer.summary`; ``memory_limit``: DuckDB's for
    the sort of each capture by connection, in bytes [1 MiB, ...)."""
    import tempfile

    import pandas as pd

    from ..analyzer.report import _display

    lo, hi = time_bound(start), time_bound(end)
    con = connect(url)  # constant-memory aggregates (_HEAD): DuckDB's own memory limit
    spill = tempfile.TemporaryDirectory(prefix="iec104-summary-")
    con.execute(f"SET temp_directory = {_quote(spill.name)}")
    con.execute("SET enable_progress_bar = false")
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
        spill.cleanup()
    found = findings(url, start=lo, end=hi, filter=filter, memory_limit=memory_limit,
                     **options)
    counts, sbo = found.counts, found.sbo_violations

    def line(counter: Counter[str]) -> str:  # most first, ties by name (any order of input)
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{k} {v}" for k, v in ranked) or "none"

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
    section("Connections", found.sessions,
            ["capture", "stream", "client", "server", "master", "start", "duration", "apdus",
             "errors", "capture_gaps"])
    lines.append("")
    lines.append(f"== APCI findings: {line(counts['link'])} ==")
    lines.append(f"== Commands: {line(counts['commands'])} ==")
    lines.append(f"== Select-before-operate violations: {sbo} ==")
    lines.append(f"== Interrogations: {line(counts['interrogations'])} ==")
    lines.append(f"== Anomalies: {line(counts['anomalies'])} ==")
    section("Anomalies", found.anomalies,
            ["capture", "kind", "severity", "stream", "frame", "src", "ca", "ioa", "count",
             "detail"])
    section("Types", types, ["type_id", "type_name", "direction", "asdus", "objects"])
    section("Causes", causes, ["cot", "cot_name", "negative", "direction", "asdus", "objects"])
    return "\n".join(lines) + "\n"
