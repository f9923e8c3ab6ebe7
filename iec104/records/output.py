"""tshark's output modes for our records: ``-T json``, ``-T jsonl`` and ``-T fields`` of ``read``.

Theory of operation
-------------------
tshark prints one unit per *packet*; ours is the APDU. Rows of one APDU (one per information
object) are grouped back into one APDU (:func:`apdu_record`): the APDU-level columns of the
schema (:data:`APDU_COLUMNS`, time through ca, raw) once, and its objects nested as a list
of the object-level columns (:data:`OBJECT_COLUMNS`). Gap and event rows are units of their
own (no APDU, no objects); a unit's ``kind`` is ``apdu`` for every decoded APDU (its rows
of kind ``object`` are its ``objects``), else the row's own. The names are the Parquet
schema's, so ``-e ioa`` means the ``ioa`` column and a JSON consumer and a pandas user
read the same names.

* ``json``: one JSON array of APDU objects, as ``tshark -T json`` prints one array of
  packets; ``jsonl``: one object per line (``tshark -T ek`` habits, for ``jq -c`` and log
  shippers). Times are ISO 8601 UTC with nanoseconds, ``raw`` is hex, a short float's
  ``value`` is the number the device sent (3.14). :func:`json_schema` is the JSON Schema of
  one APDU object, generated from the Parquet schema.
* ``fields``: one line per APDU with the ``-e`` columns, as ``tshark -T fields``. A column
  of the objects has one value per object, joined by the aggregator (``,``), like a field
  that occurs several times in a packet; ``-E occurrence=f|l`` keeps the first or last.
  Booleans print as ``1``/``0`` and a missing value as an empty field, as tshark does;
  ``-E separator=``, ``-E header=y``, ``-E quote=d|s|n`` and ``-E aggregator=`` work as in
  tshark.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from ..codec.values import FLOAT32_TYPE_IDS, float32_text
from .schema import COLUMNS, SCHEMA, RowKind

__all__ = ["APDU_COLUMNS", "OBJECT_COLUMNS", "FieldOptions", "apdu_record", "fields_lines",
           "json_schema", "parse_field_options"]

OBJECT_COLUMNS = ("obj", "ioa", "value", "value_text", "iv", "nt", "sb", "bl", "ov", "ei",
                  "time_tag", "time_tag_iv", "select", "qualifier", "error")
"""Columns of each information object (nested under ``objects``)."""
APDU_COLUMNS = tuple(name for name, _, _ in COLUMNS if name not in OBJECT_COLUMNS) + ("error",)
"""Columns of the APDU itself (``error``: the APDU's first row's, i.e. why it failed)."""

_TIMES = frozenset(f.name for f in SCHEMA if str(f.type).startswith("timestamp"))
_FLOAT32 = frozenset(f.name for f in SCHEMA if f.type == pa.float32())


def iso_ns(ns: int | None) -> str | None:
    """``2024-01-01T00:00:00.123456789Z`` (None stays None)."""
    if ns is None:
        return None
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000:09d}Z"


def _json_value(name: str, value: Any, type_id: Any) -> Any:
    if value is None:
        return None
    if name in _TIMES:
        return iso_ns(value)
    if name == "raw":
        return bytes(value).hex()
    if name == "value" and type_id in FLOAT32_TYPE_IDS or name in _FLOAT32:
        return float(float32_text(value))  # json.dumps prints its shortest text: 3.14
    return value


def apdu_record(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One APDU (its rows, times as int ns) as a JSON-ready dict with ``objects`` nested."""
    head = rows[0]
    type_id = head["type_id"]
    out = {name: _json_value(name, head[name], type_id) for name in APDU_COLUMNS}
    if out.get("kind") == RowKind.OBJECT:  # the unit is the APDU; its rows are the objects
        out["kind"] = RowKind.APDU.value
    out["objects"] = [{name: _json_value(name, r[name], type_id) for name in OBJECT_COLUMNS}
                      for r in rows if r["obj"] is not None]
    return out


def json_lines(groups: Iterable[Sequence[dict[str, Any]]]) -> Iterator[str]:
    """One compact JSON object per APDU (``-T jsonl``)."""
    for rows in groups:
        yield json.dumps(apdu_record(rows), separators=(",", ":"))


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one APDU object of ``-T json``/``jsonl``."""
    def prop(name: str) -> dict[str, Any]:
        dtype = str(SCHEMA.field(name).type)
        if name in _TIMES:
            base: dict[str, Any] = {"type": "string", "format": "date-time",
                                    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"}
        elif name == "raw":
            base = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
        elif dtype.startswith("int"):
            base = {"type": "integer"}
        elif dtype == "bool":
            base = {"type": "boolean"}
        elif pa.types.is_floating(SCHEMA.field(name).type):
            base = {"type": "number"}
        else:
            base = {"type": "string"}
        return {"anyOf": [base, {"type": "null"}]}

    def obj(names: Iterable[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        names = list(names)
        props = {n: prop(n) for n in names} | (extra or {})
        return {"type": "object", "properties": props, "required": list(props),
                "additionalProperties": False}

    schema = obj(APDU_COLUMNS, {"objects": {"type": "array",
                                            "items": obj(OBJECT_COLUMNS)}})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "iec104 APDU (iec104 read -T json)"
    return schema


# -- -T fields ----------------------------------------------------------------------------

class FieldOptions(NamedTuple):
    """tshark's ``-E`` options."""

    separator: str = "\t"
    header: bool = False
    quote: str = ""  # '', '"' or "'"
    aggregator: str = ","
    occurrence: str = "a"  # a (all), f (first), l (last)


_SEPARATORS = {"/t": "\t", "/s": " "}


def parse_field_options(options: Iterable[str]) -> FieldOptions:
    """``-E name=value`` options (tshark's names); ValueError for an unknown one."""
    opts = FieldOptions()
    for text in options:
        name, sep, value = text.partition("=")
        if not sep:
            raise ValueError(f"-E {text}: expected name=value")
        if name == "separator":
            opts = opts._replace(separator=_SEPARATORS.get(value, value))
        elif name == "aggregator":
            opts = opts._replace(aggregator=_SEPARATORS.get(value, value))
        elif name == "header":
            if value not in ("y", "n"):
                raise ValueError(f"-E header={value}: expected y or n")
            opts = opts._replace(header=value == "y")
        elif name == "quote":
            if value not in ("d", "s", "n"):
                raise ValueError(f"-E quote={value}: expected d, s or n")
            opts = opts._replace(quote={"d": '"', "s": "'", "n": ""}[value])
        elif name == "occurrence":
            if value not in ("a", "f", "l"):
                raise ValueError(f"-E occurrence={value}: expected a, f or l")
            opts = opts._replace(occurrence=value)
        else:
            raise ValueError(f"-E {name}: unknown option (separator, header, quote, "
                             "aggregator, occurrence)")
    return opts


def _field_text(name: str, value: Any, type_id: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if name in _TIMES:
        return iso_ns(value) or ""
    if name == "raw":
        return bytes(value).hex()
    if name in _FLOAT32:
        return float32_text(value)
    if name == "value":
        if type_id in FLOAT32_TYPE_IDS:
            return float32_text(value)
        return str(int(value)) if float(value).is_integer() else repr(value)
    return str(value)


def fields_lines(groups: Iterable[Sequence[dict[str, Any]]], names: Sequence[str],
                 opts: FieldOptions) -> Iterator[str]:
    """One line per APDU with the columns ``names`` (``-T fields -e ...``)."""
    unknown = [n for n in names if n not in SCHEMA.names]
    if unknown:
        raise ValueError(f"-e {unknown[0]}: no such column (columns: "
                         f"{', '.join(SCHEMA.names)})")
    q = opts.quote

    def cell(text: str) -> str:
        return f"{q}{text}{q}" if q else text

    if opts.header:
        yield opts.separator.join(cell(n) for n in names)
    for rows in groups:
        head = rows[0]
        objects = [r for r in rows if r["obj"] is not None] or [head]
        cells = []
        for name in names:
            if name in OBJECT_COLUMNS and name != "error":
                values = [_field_text(name, r[name], head["type_id"]) for r in objects]
                if opts.occurrence == "f":
                    values = values[:1]
                elif opts.occurrence == "l":
                    values = values[-1:]
                text = opts.aggregator.join(values) if any(values) else ""
            else:
                text = _field_text(name, head[name], head["type_id"])
            cells.append(cell(text))
        yield opts.separator.join(cells)
