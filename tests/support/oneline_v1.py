"""The one-line formatter of ``iec104 read`` before issue 14's rewrite (``iec104.cli.oneline``
up to 9bbf59b): Arrow string kernels, one Python string per line. Kept as the oracle of
``tests/cli/test_cli_oneline.py``, which checks that the block formatter prints the same
bytes on every capture and on random batches; not shipped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iec104.cli.oneline import (
    QUALIFIER_NAMES,
    _compact,
    _note_line,
    _number,
    _per_distinct,
    format_endpoint,
    format_time,
)
from iec104.codec.values import FLOAT32_TYPE_IDS, float32_text

_QUALIFIER_LOOKUP = pa.array([QUALIFIER_NAMES.get(t, "Q") for t in range(256)], pa.string())
_FLOAT_MASK = np.zeros(256, bool)
_FLOAT_MASK[list(FLOAT32_TYPE_IDS)] = True
_FLAGS = ("iv", "nt", "sb", "bl", "ov", "ei")
_NS = 1_000_000_000


def _times(column: pa.Array, mode: str, t0: int) -> pa.Array:
    """:func:`format_time` of a timestamp column; mode ``a`` by column, others per value."""
    ns = column.cast(pa.int64())
    if mode != "a":
        return pa.array([format_time(v, mode, t0) for v in ns.to_pylist()], pa.string())
    values = np.asarray(ns.fill_null(0), np.int64)
    # strftime is slow per value, and a batch spans few distinct seconds
    seconds, inverse = np.unique(values // _NS, return_inverse=True)
    dates = pc.strftime(pa.array(seconds, pa.timestamp("s", tz="UTC")),
                        format="%Y-%m-%d %H:%M:%S").take(pa.array(inverse.reshape(-1)))
    micros = pa.array(values % _NS // 1000).cast(pa.string())
    text = pc.binary_join_element_wise(dates, pc.utf8_lpad(micros, 6, "0"), ".")
    return pc.if_else(ns.is_null(), "-", text)


def _endpoint(ip: pa.Array, port: pa.Array) -> pa.Array:
    """:func:`format_endpoint` by column (once per distinct endpoint)."""
    # one string key per endpoint (a null address stays null: "?")
    keys = pc.binary_join_element_wise(ip, pc.fill_null(port.cast(pa.string()), "None"), "\0")
    return _per_distinct(keys, lambda key: format_endpoint(None, None) if key is None
                         else format_endpoint(*key.split("\0")))


def _join(first: pa.Array, *optional: pa.Array, sep: str = " ") -> pa.Array:
    """``first`` then each non-null ``optional`` part, separated by ``sep`` (nulls skipped;
    pyarrow 26's ``null_handling="skip"`` drops rows where all parts are null)."""
    pieces = [pc.fill_null(pc.binary_join_element_wise(sep, p, ""), "") for p in optional]
    return pc.binary_join_element_wise(first, *pieces, "")


def _replace(out: pa.Array, where: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``out`` with the rows ``where`` replaced by ``fn`` of those rows."""
    if not pc.any(where).as_py():
        return out
    return pc.replace_with_mask(out, where, fn(out.filter(where)))


def _short_floats(values: np.ndarray) -> pa.Array:
    """:func:`float32_text` of short float values, once per distinct one."""
    _keys, index, inverse = np.unique(values.view(np.int64), return_index=True,
                                     return_inverse=True)
    return pa.array([float32_text(v) for v in values[index].tolist()], pa.string()).take(
        pa.array(inverse.reshape(-1)))


def _values(rows: pa.RecordBatch, type_id: np.ndarray) -> pa.Array:
    """The value as the one-line view shows it (null when there is none)."""
    text = rows.column("value_text")
    value = rows.column("value")
    # a secure authentication message (no IOA): its fields, as they are
    as_is = pc.and_(text.is_valid(), rows.column("ioa").is_null())
    spaced = pc.and_(pc.fill_null(pc.match_substring(text, " "), False), pc.invert(as_is))
    out = _replace(text, spaced, lambda t: _per_distinct(t, _compact))
    # short floats: the text is repr() of the binary64 value; show the binary32 sent
    floats = pc.and_(pc.and_(pc.invert(spaced), pc.is_valid(text)),
                     pc.and_(pa.array(_FLOAT_MASK[type_id]), value.is_valid()))
    floats = pc.and_(floats, pc.invert(as_is))
    if pc.any(floats).as_py():
        out = pc.replace_with_mask(out, floats, _short_floats(
            np.asarray(value.filter(floats), np.float64)))
    missing = pc.and_(text.is_null(), rows.column("value").is_valid())
    if pc.any(missing).as_py():  # a number without text (Parquet from elsewhere)
        out = pc.if_else(missing, pa.array([_number(v) for v in
                                            rows.column("value").to_pylist()], pa.string()),
                         out)
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def _objects(rows: pa.RecordBatch, type_id: np.ndarray) -> pa.Array:
    """One ``ioa=value [flags] @time select Q=n`` string per object row."""
    n = rows.num_rows
    ioa = rows.column("ioa")
    values = _values(rows, type_id)
    # secure authentication messages have no IOA: the value alone
    first = pc.if_else(ioa.is_null(), pc.coalesce(values, "(no value)"),
                       _join(ioa.cast(pa.string()), values, sep="="))
    names = [pc.if_else(pc.fill_null(rows.column(f), False), f.upper(),
                        pa.scalar(None, pa.string())) for f in _FLAGS]
    flags = pc.utf8_slice_codeunits(_join(pa.nulls(n, pa.string()).fill_null(""), *names), 1)
    flags = pc.if_else(pc.equal(flags, ""), pa.scalar(None, pa.string()),
                       pc.binary_join_element_wise("[", flags, "]", ""))
    tag = rows.column("time_tag")
    tag_text = pc.utf8_slice_codeunits(_times(tag, "a", 0), 11, 23)
    tag_text = pc.if_else(tag.is_null(), pa.scalar(None, pa.string()),
                          pc.binary_join_element_wise("@", tag_text, ""))
    select = pc.if_else(rows.column("select"), "select", "execute")
    qualifier = pc.binary_join_element_wise(
        _QUALIFIER_LOOKUP.take(pa.array(type_id)), rows.column("qualifier").cast(pa.string()),
        "=")
    return _join(first, flags, tag_text, select, qualifier)


def batch_lines(batch: pa.RecordBatch, time_mode: str = "a", t0: int = 0) -> list[str]:
    """One line per APDU of ``batch`` (rows of :data:`iec104.records.schema.SCHEMA`)."""
    n = batch.num_rows
    if not n:
        return []
    apdu = batch.column("apdu")
    numbers = np.asarray(apdu.fill_null(-1), np.int64)
    null = np.asarray(apdu.is_null(), bool)
    start = np.ones(n, bool)
    start[1:] = null[1:] | null[:-1] | (numbers[1:] != numbers[:-1])
    heads_at = np.flatnonzero(start)
    group = np.cumsum(start) - 1
    head = batch.take(pa.array(heads_at))

    frame = head.column("frame").cast(pa.string())
    where = pc.binary_join_element_wise(
        pc.utf8_lpad(pc.fill_null(frame, "-"), 6, " "),
        _times(head.column("time"), time_mode, t0),
        _endpoint(head.column("src"), head.column("sport")), "->",
        _endpoint(head.column("dst"), head.column("dport")), " ")
    apci = head.column("apci")
    ssn, rsn = head.column("ssn").cast(pa.string()), head.column("rsn").cast(pa.string())
    apci_text = pc.case_when(
        pc.make_struct(pc.equal(apci, "I"), pc.equal(apci, "S"), pc.equal(apci, "U")),
        pc.binary_join_element_wise("I(", ssn, ",", rsn, ")", ""),
        pc.binary_join_element_wise("S(", rsn, ")", ""),
        pc.binary_join_element_wise("U(", head.column("u_func"), ")", ""))
    apci_text = pc.fill_null(apci_text, "?")

    type_id = head.column("type_id")
    asdu = pc.and_(pc.equal(apci, "I"), type_id.is_valid())
    none = pa.scalar(None, pa.string())
    type_text = pc.coalesce(head.column("type_name"),
                            pc.binary_join_element_wise("TYPE_", type_id.cast(pa.string()), ""))
    cot_text = pc.coalesce(head.column("cot_name"),
                           pc.binary_join_element_wise("CAUSE_", head.column("cot")
                                                       .cast(pa.string()), ""))
    negative = pc.if_else(pc.fill_null(head.column("negative"), False), "NEGATIVE", none)
    test = pc.if_else(pc.fill_null(head.column("test"), False), "TEST", none)
    oa = head.column("oa")
    oa_text = pc.if_else(pc.fill_null(pc.not_equal(oa, 0), False),
                         pc.binary_join_element_wise("OA=", oa.cast(pa.string()), ""), none)
    ca_text = pc.binary_join_element_wise("CA=", head.column("ca").cast(pa.string()), "")

    # objects: rows with an object, joined per APDU
    obj_rows = np.flatnonzero(np.asarray(batch.column("obj").is_valid(), bool))
    objects_text = pa.nulls(len(heads_at), pa.string())
    if len(obj_rows):
        rows = batch.take(pa.array(obj_rows))
        # an object row's type is its APDU's (rows of one APDU share the head cells)
        row_types = np.asarray(rows.column("type_id").fill_null(0), np.int64)
        strings = _objects(rows, row_types)
        per_group = np.bincount(group[obj_rows], minlength=len(heads_at))
        offsets = np.zeros(len(heads_at) + 1, np.int32)
        np.cumsum(per_group, out=offsets[1:])
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), strings), "; ")
        # "IOA " before the objects, unless the first has none (secure authentication)
        has = per_group > 0
        prefixed = np.zeros(len(heads_at), bool)
        prefixed[has] = np.asarray(rows.column("ioa").is_valid(), bool)[offsets[:-1][has]]
        objects_text = pc.if_else(
            pa.array(has),
            pc.if_else(pa.array(prefixed), pc.binary_join_element_wise("IOA", joined, " "),
                       joined), none)
    error = head.column("error")
    error_text = pc.if_else(pc.fill_null(pc.not_equal(error, ""), False),
                            pc.binary_join_element_wise("!!", error, " "), none)
    asdu_parts = [pc.if_else(asdu, part, none) for part in
                  (type_text, cot_text, negative, test, oa_text, ca_text, objects_text)]
    lines = _join(where, apci_text, *asdu_parts, error_text).to_pylist()
    notes = np.flatnonzero(np.asarray(apci.is_null(), bool))
    if len(notes):
        wheres = where.take(pa.array(notes)).to_pylist()
        cols = {c: head.column(c).take(pa.array(notes)).to_pylist()
                for c in ("error", "raw", "kind")}
        for i, w, e, r, k in zip(notes.tolist(), wheres, cols["error"], cols["raw"],
                                 cols["kind"], strict=True):
            lines[i] = _note_line(w, e, r, k)
    return lines
