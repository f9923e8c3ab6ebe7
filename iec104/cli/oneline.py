"""``iec104 read``'s one-line view: a whole batch formatted into one block of UTF-8 octets.

Theory of operation
-------------------
A batch's rows are grouped into APDUs (consecutive rows with one ``apdu`` number; a row
without one stands alone); each APDU is one line. The block is built *row by row* with a
single Arrow ``binary_join_element_wise`` over row-aligned parts, nulls joining as nothing:

* on an APDU's first row, its head ``frame time src:port -> dst:port APCI [TYPE CAUSE
  NEGATIVE TEST OA=n CA=n]`` (made over the first rows only, then put in place by one take);
* on every object row, the object with its own leading separator (``' IOA '`` before the
  APDU's first object, ``'; '`` before the others): ``ioa=value [flags] @time select Q=n``;
* on an APDU's last row, ``' !! error'`` when the APDU has one, then ``'\\n'``.

The joined array's data buffer then *is* the block of lines: no Python string per line
(:func:`batch_text`). Fixed-width texts (dates, clock times, fractions of a second) are
written as digits with numpy, two at a time, the date and clock once per run of rows in
the same second; small sets (flags, S/E, qualifier names, the APCI's brackets) are taken
from lookup tables by a code; distinct combinations are found by hashing (Arrow's
``dictionary_encode``), not by sorting. Python runs only once per *distinct* value where no column rule
exists: endpoints, compacting multi-field value texts (``'value=5 transient=True'`` ->
``'5,transient'``) and the rare lines of rows without APCI
(malformed octets, gaps, notes). Short floats are shown as the device sent them
(:func:`~iec104.codec.values.float32_text`): Arrow's cast of the binary32 numbers writes
the same shortest digits for most of them (:func:`float32_texts` says when it cannot, and
those take ``float32_text`` itself). An object row without IOA (a secure authentication
message) shows its ``value_text`` as it is, without the ``IOA`` prefix.

The line format (also described in the README)::

    frame time src:port -> dst:port I(ssn,rsn) TYPE CAUSE [NEGATIVE] [TEST] [OA=n] CA=n
        IOA ioa=value [IV NT SB BL OV EI] @hh:mm:ss.mmm select|execute QU=n; ... [!! error]
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..codec.timetag import civil_from_days
from ..codec.values import FLOAT32_TYPE_IDS, float32_text
from ..records.arrays import array, scalar, to_numpy

__all__ = ["COLUMNS", "QUALIFIER_NAMES", "batch_lines", "batch_text", "float32_texts", "format_endpoint",
           "format_time"]

QUALIFIER_NAMES = {100: "QOI", 101: "RQT", 105: "QRP", 113: "QPA", 110: "QPM", 111: "QPM",
                   112: "QPM", 45: "QU", 46: "QU", 47: "QU", 58: "QU", 59: "QU", 60: "QU",
                   48: "QL", 49: "QL", 50: "QL", 61: "QL", 62: "QL", 63: "QL"}
"""Name of the qualifier column by type ID ('Q' for the others)."""
_NO_TEXT = scalar(None, pa.string())
# texts and flags given to compute functions as Arrow scalars (a Python value would be
# converted by pyarrow.scalar, which imports pandas: see iec104.records.arrays)
_EMPTY, _SPACE, _DASH, _EQUALS, _ZERO, _NEWLINE, _I = (
    scalar(text) for text in ("", " ", "-", "=", "0", "\n", "I"))
_FALSE = scalar(False)
# by type ID (out of [0, 255]: 256): ' QU=' etc., and "is a short float"
_QUALIFIERS = array([f" {QUALIFIER_NAMES.get(t, 'Q')}=" for t in range(257)], pa.string())
_FLOAT_MASK = np.zeros(257, bool)
_FLOAT_MASK[list(FLOAT32_TYPE_IDS)] = True
_FLAGS = ("iv", "nt", "sb", "bl", "ov", "ei")
# by the bits of the flags that are set (bit i: _FLAGS[i]): ' [IV NT]', none for 0
_FLAG_TEXTS = array([None] + [" [" + " ".join(f.upper() for i, f in enumerate(_FLAGS)
                                                   if code >> i & 1) + "]"
                                 for code in range(1, 64)], pa.string())
_SELECT_TEXTS = array([None, " execute", " select"], pa.string())  # null, False, True
_OBJECT_SEPARATORS = array(["; ", " IOA ", " "], pa.string())  # later, first, first w/o IOA
_SIGNS = array(["", "-"], pa.string())
_NS = 1_000_000_000
_DIGITS = np.frombuffer(b"0123456789", np.uint8)
_SAMPLE = 1024  # numbers looked at to guess whether formatting each distinct one pays
_PAIRS = np.frombuffer(b"".join(b"%02d" % i for i in range(100)), np.uint8).reshape(100, 2)


def format_time(ns: int | None, mode: str = "a", t0: int = 0) -> str:
    """A capture time as ``read`` shows it: ``a`` UTC date and time to the microsecond,
    ``r`` seconds since ``t0``, ``e`` seconds since the epoch; ``'-'`` for none."""
    if ns is None:
        return "-"
    if mode == "r":
        return f"{(ns - t0) / 1e9:.6f}"
    if mode == "e":
        return f"{ns // _NS}.{ns % _NS:09d}"
    when = datetime.fromtimestamp(ns // _NS, UTC)
    return f"{when:%Y-%m-%d %H:%M:%S}.{(ns % _NS) // 1000:06d}"


def format_endpoint(ip: str | None, port: int | None) -> str:
    """``ip:port``, ``[ip6]:port``, or ``?`` without address."""
    if ip is None:
        return "?"
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _numbers(column: pa.Array, fill: int | bool = 0) -> np.ndarray:
    """A numeric or boolean column as numpy (read-only), nulls as ``fill``."""
    if column.null_count:
        column = column.fill_null(scalar(fill, column.type))  # (of its type: no conversion)
    return to_numpy(column)


# -- fixed-width texts with numpy ------------------------------------------------------------

def _fixed(chars: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow string array of the rows of ``chars`` (n x width octets), null where not
    ``valid``."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(chars))])


def _put(chars: np.ndarray, at: int, values: np.ndarray, width: int) -> None:
    """``values`` (>= 0) as ``width`` decimal digits, zero-padded, at column ``at`` (two
    digits per step, from a table of the hundred pairs)."""
    end = at + width
    while end - at >= 2:
        chars[:, end - 2:end] = _PAIRS[values % 100]
        values = values // 100
        end -= 2
    if end > at:
        chars[:, at] = _DIGITS[values % 10]


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each run of equal consecutive ``values``, and each row's run: a
    text that depends on a slowly changing part (the second of a time) is written once
    per run."""
    change = np.empty(len(values), bool)
    change[:1] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    return np.flatnonzero(change), np.cumsum(change) - 1


def _date_times(ns: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC, microseconds) of int64 ns, n x 26 octets (the
    int64 range is the years 1677-2262: always four digits)."""
    seconds = ns // _NS
    starts, run = _runs(seconds)
    seconds = seconds[starts]
    days, day_seconds = seconds // 86400, seconds % 86400
    year, month, day = civil_from_days(days)
    prefix = np.empty((len(seconds), 20), np.uint8)
    prefix[:] = np.frombuffer(b"0000-00-00 00:00:00.", np.uint8)
    for at, values, width in ((0, year, 4), (5, month, 2), (8, day, 2),
                              (11, day_seconds // 3600, 2), (14, day_seconds // 60 % 60, 2),
                              (17, day_seconds % 60, 2)):
        _put(prefix, at, values, width)
    chars = np.empty((len(ns), 26), np.uint8)
    chars[:, :20] = prefix[run]
    _put(chars, 20, ns % _NS // 1000, 6)
    return chars


def _times(column: pa.Array, mode: str, t0: int) -> pa.Array:
    """:func:`format_time` of a timestamp column."""
    ns = column.cast(pa.int64())
    values = _numbers(ns)
    if mode == "a":
        text = _fixed(_date_times(values))
    elif mode == "e":
        fraction = np.empty((len(values), 9), np.uint8)
        _put(fraction, 0, values % _NS, 9)
        text = pc.binary_join_element_wise(array(values // _NS).cast(pa.string()),
                                           _fixed(fraction), scalar("."))
    else:
        text = _relative(values, t0)
    return pc.if_else(ns.is_null(), _DASH, text) if ns.null_count else text


def _relative(ns: np.ndarray, t0: int) -> pa.Array:
    """``f"{(ns - t0) / 1e9:.6f}"`` of each value: the binary64 quotient as Python computes
    it, rounded to microseconds. ``rint`` of the quotient times 1e6 (one more rounding) is
    the correctly rounded result unless that product lies within two units in its last
    place of a half; those values, and differences beyond 2**62 ns, are formatted by
    Python."""
    if len(ns) and (int(ns.min()) - t0 < -2**62 or int(ns.max()) - t0 > 2**62):
        return array([format_time(v, "r", t0) for v in ns.tolist()], pa.string())
    seconds = (ns - t0).astype(np.float64) / 1e9
    micros = seconds * 1e6
    rounded = np.rint(micros)
    own = (np.abs(micros - np.floor(micros) - 0.5) <= 2 * np.abs(np.spacing(micros))) | (
        np.abs(micros) >= 2.0 ** 52)
    whole = np.abs(rounded).astype(np.int64)
    fraction = np.empty((len(ns), 7), np.uint8)
    fraction[:, 0] = ord(".")
    _put(fraction, 1, whole % 1_000_000, 6)
    text = pc.binary_join_element_wise(
        _SIGNS.take(array((seconds < 0).astype(np.int8))),
        array(whole // 1_000_000).cast(pa.string()),
        _fixed(fraction), _EMPTY)
    if own.any():
        text = pc.replace_with_mask(text, array(own), array(
            [format_time(v, "r", t0) for v in ns[own].tolist()], pa.string()))
    return text


def _tag_times(column: pa.Array) -> pa.Array:
    """`` @HH:MM:SS.mmm`` of a time tag column (null where none; only the tags are
    written)."""
    ns = column.cast(pa.int64())
    values = to_numpy(ns.drop_null() if ns.null_count else ns)
    seconds = values // _NS
    starts, run = _runs(seconds)
    day_seconds = seconds[starts] % 86400
    prefix = np.empty((len(starts), 11), np.uint8)
    prefix[:] = np.frombuffer(b" @00:00:00.", np.uint8)
    for at, part in ((2, day_seconds // 3600), (5, day_seconds // 60 % 60),
                     (8, day_seconds % 60)):
        _put(prefix, at, part, 2)
    chars = np.empty((len(values), 14), np.uint8)
    chars[:, :11] = prefix[run]
    _put(chars, 11, values % _NS // 1_000_000, 3)
    if not ns.null_count:
        return _fixed(chars)
    valid = to_numpy(ns.is_valid())
    offsets = np.zeros(len(ns) + 1, np.int32)
    np.cumsum(valid * np.int32(14), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(ns), [
        pa.py_buffer(np.packbits(valid, bitorder="little")), pa.py_buffer(offsets),
        pa.py_buffer(chars)])


# -- values ----------------------------------------------------------------------------------

def _per_distinct(column: pa.Array, fn: Callable[[Any], str | None]) -> pa.Array:
    """``fn`` of each value, computed once per distinct value."""
    encoded = column.dictionary_encode()
    return array([fn(v) for v in encoded.dictionary.to_pylist()], pa.string()).take(
        encoded.indices)


def _compact(text: str) -> str:
    """A multi-field value text made compact: ``'value=5 transient=False'`` -> ``'5'``,
    ``'... transient=True'`` -> ``'5,transient'``."""
    parts = []
    for i, item in enumerate(text.split(" ")):
        key, sep, val = item.partition("=")
        if i == 0 and sep:
            parts.append(val)
        elif val == "False":
            continue
        elif val == "True":
            parts.append(key)
        else:
            parts.append(item)
    return ",".join(parts)


def _number(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(value)


def float32_texts(values: np.ndarray) -> pa.Array:
    """:func:`~iec104.codec.values.float32_text` of each of ``values`` (float64).

    Arrow's cast of a binary32 number to text writes its shortest round-trip digits, as
    ``float32_text`` does, and in the same fixed notation as ``repr()`` for magnitudes in
    [2e-4, 2**23) that are not integral. Where several digit strings of that length read
    back as the number, Arrow takes the one nearest to it, ``float32_text`` the correctly
    rounded one: they are the same digits when those lie within 0.49 of a last-digit step
    of the number (binary64 arithmetic errs by far less). Every other value -- integral,
    tiny, huge, NaN, infinite, no binary32 at all, or failing that check -- takes
    ``float32_text`` itself. Where the first numbers repeat (as measurements do), each
    distinct number (bit pattern) is formatted once.
    """
    bits = values.view(np.int64)
    if len(np.unique(bits[:_SAMPLE])) * 2 <= min(len(bits), _SAMPLE):  # repeats: by value
        encoded = array(bits).dictionary_encode()
        return float32_texts(to_numpy(encoded.dictionary).view(np.float64)).take(
            encoded.indices)
    with np.errstate(over="ignore", invalid="ignore"):
        single = values.astype(np.float32)
        magnitude = np.abs(values)
        own = ~((single.astype(np.float64) == values) & (magnitude >= 2e-4)
                & (magnitude < 2.0 ** 23) & (np.floor(values) != values))
    text = array(single).cast(pa.string())
    if not own.all():
        # digits after the point: the last digit's step (own rows: any valid text)
        point = to_numpy(pc.find_substring(text, ".")).astype(np.int64)
        decimals = to_numpy(pc.utf8_length(text)).astype(np.int64) - point - 1
        shown = to_numpy(pc.cast(pc.if_else(array(own), _ZERO, text), pa.float64()))
        with np.errstate(invalid="ignore"):
            own |= (point < 0) | ~(np.abs(shown - values) < 0.49 * 10.0 ** -decimals)
        own |= to_numpy(pc.match_substring(text, "e"))
    if own.any():
        text = pc.replace_with_mask(text, array(own), array(
            [float32_text(v) for v in values[own].tolist()], pa.string()))
    return text


def _values(rows: pa.RecordBatch, type_id: np.ndarray) -> pa.Array:
    """The value as the one-line view shows it (null when there is none)."""
    text = rows.column("value_text")
    value = rows.column("value")
    # a secure authentication message (no IOA): its fields, as they are
    as_is = pc.and_(text.is_valid(), rows.column("ioa").is_null())
    spaced = pc.and_(pc.fill_null(pc.match_substring(text, " "), _FALSE), pc.invert(as_is))
    out = text
    if pc.any(spaced).as_py():
        out = pc.replace_with_mask(out, spaced, _per_distinct(text.filter(spaced), _compact))
    # short floats: the text is repr() of the binary64 value; show the binary32 sent
    floats = pc.and_(pc.and_(pc.invert(spaced), text.is_valid()),
                     pc.and_(array(_FLOAT_MASK[type_id]), value.is_valid()))
    floats = pc.and_(floats, pc.invert(as_is))
    if pc.any(floats).as_py():
        out = pc.replace_with_mask(out, floats, float32_texts(
            to_numpy(value.filter(floats))))
    missing = pc.and_(text.is_null(), value.is_valid())
    if pc.any(missing).as_py():  # a number without text (Parquet from elsewhere)
        out = pc.if_else(missing, array([_number(v) for v in value.to_pylist()],
                                        pa.string()), out)
    return pc.if_else(pc.equal(out, _EMPTY), _NO_TEXT, out)


def _objects(rows: pa.RecordBatch, first: np.ndarray, shown: np.ndarray) -> list[pa.Array]:
    """The parts of one `` IOA ioa=value [flags] @time select Q=n`` text per row of
    ``rows`` (its separator ``'; '`` unless ``first``, the APDU's first object), to be
    joined with nulls as nothing; all null on rows not ``shown``."""
    n = rows.num_rows
    ioa = rows.column("ioa")
    type_id = _numbers(rows.column("type_id")).astype(np.int64)
    type_id[(type_id < 0) | (type_id > 255)] = 256
    values = _values(rows, type_id)
    has_ioa = ioa.is_valid()
    with_ioa = to_numpy(has_ioa)
    separator = _OBJECT_SEPARATORS.take(array(np.where(first, np.where(with_ioa, 1, 2), 0),
                                              mask=~shown))
    if (with_ioa | ~shown).all():
        value_part = [pc.if_else(values.is_valid(), _EQUALS, _NO_TEXT), values]
    else:  # secure authentication messages have no IOA: the value alone
        value_part = [pc.if_else(has_ioa, pc.binary_join_element_wise(_EQUALS, values, _EMPTY),
                                 pc.coalesce(values, scalar("(no value)")))]
    code = np.zeros(n, np.int64)
    for bit, name in enumerate(_FLAGS):
        code |= _numbers(rows.column(name), False).astype(np.int64) << bit
    parts = [separator, ioa.cast(pa.string()), *value_part, _FLAG_TEXTS.take(array(code))]
    tag = rows.column("time_tag")
    if tag.null_count < n:
        parts.append(_tag_times(tag))
    select = rows.column("select")
    if select.null_count < n:
        select_code = _numbers(select, False).astype(np.int64) + to_numpy(select.is_valid())
        parts.append(_SELECT_TEXTS.take(array(select_code)))
    qualifier = rows.column("qualifier")
    if qualifier.null_count < n:
        parts.append(pc.binary_join_element_wise(
            _QUALIFIERS.take(array(type_id)), qualifier.cast(pa.string()), _EMPTY))
    if shown.all():
        return parts
    # a row without object has null cells, so its parts are null already: only a part
    # with a cell on a hidden row is hidden by a copy
    hidden = ~shown
    mask = array(shown)
    return [part if not (to_numpy(part.is_valid()) & hidden).any()
            else pc.if_else(mask, part, _NO_TEXT) for part in parts]


# -- heads -----------------------------------------------------------------------------------

def _per_combination(head: pa.RecordBatch, names: tuple[str, ...],
                     fn: Callable[..., str], rows: np.ndarray | None = None) -> pa.Array:
    """``fn(*cells)`` of the cells of each row in the columns ``names``, computed once per
    distinct combination of them (rows outside ``rows``, if given: null)."""
    cells = head.select(list(names))
    # one int64 key per row for its combination: the cells in mixed radix (made dense
    # first when the radix would pass 2**62), rows outside ``rows`` apart
    key = np.zeros(cells.num_rows, np.int64) if rows is None else rows.astype(np.int64)
    radix = 1 if rows is None else 2
    for column in cells.columns:
        if pa.types.is_string(column.type):
            column = column.dictionary_encode().indices
        elif pa.types.is_boolean(column.type):
            column = column.cast(pa.int8())
        values = _numbers(column).astype(np.int64)
        if column.null_count:
            values = values * 2 + to_numpy(column.is_valid())
        low = int(values.min(initial=0))
        span = int(values.max(initial=0)) - low + 1
        if radix * span > 2**62:
            dense = array(key).dictionary_encode()
            key, radix = to_numpy(dense.indices).astype(np.int64), len(dense.dictionary)
        key = key * span + (values - low)
        radix *= span
    # the distinct keys by hashing (no sort); any row of a key stands for it
    encoded = array(key).dictionary_encode()
    index = to_numpy(encoded.indices)
    first = np.empty(len(encoded.dictionary), np.int64)
    first[index] = np.arange(len(index))
    shown = np.ones(len(first), bool) if rows is None else rows[first]
    texts = [fn(*row.values()) if ok else None for row, ok in zip(
        cells.take(array(first)).to_pylist(), shown.tolist(), strict=True)]
    return array(texts, pa.string()).take(encoded.indices)


def _endpoints_text(src: str | None, sport: int | None, dst: str | None,
                    dport: int | None) -> str:
    """`` src:port -> dst:port`` (:func:`format_endpoint`)."""
    return f" {format_endpoint(src, sport)} -> {format_endpoint(dst, dport)}"


def _asdu_text(type_id: int | None, type_name: str | None, cot: int | None,
               cot_name: str | None, negative: bool | None, test: bool | None,
               oa: int | None, ca: int | None) -> str:
    """`` TYPE CAUSE [NEGATIVE] [TEST] [OA=n] CA=n`` (parts without a value left out)."""
    parts = (type_name if type_name is not None else
             None if type_id is None else f"TYPE_{type_id}",
             cot_name if cot_name is not None else None if cot is None else f"CAUSE_{cot}",
             "NEGATIVE" if negative else None, "TEST" if test else None,
             f"OA={oa}" if oa else None, None if ca is None else f"CA={ca}")
    return "".join(f" {part}" for part in parts if part is not None)


_APCI_NAMES = array(["I", "S", "U"], pa.string())
# by APCI code (I, S, U, none or a field missing): what opens, parts and closes its text
_APCI_OPEN = array([" I(", " S(", " U(", " ?"], pa.string())
_APCI_COMMA = array([",", None, None, None], pa.string())
_APCI_CLOSE = array([")", ")", ")", None], pa.string())


def _apci(head: pa.RecordBatch) -> list[pa.Array]:
    """The parts of `` I(ssn,rsn)``, `` S(rsn)``, `` U(function)`` or `` ?`` (nulls
    join as nothing)."""
    ssn, rsn, u_func = head.column("ssn"), head.column("rsn"), head.column("u_func")
    code = _numbers(pc.index_in(head.column("apci"), value_set=_APCI_NAMES), 3).astype(np.int64)
    ssn_ok, rsn_ok, u_ok = (to_numpy(c.is_valid()) for c in (ssn, rsn, u_func))
    code[~np.select([code == 0, code == 1, code == 2],
                    [ssn_ok & rsn_ok, rsn_ok, u_ok], False)] = 3
    codes = array(code)

    def number(column: pa.Array, shown: np.ndarray) -> pa.Array:
        return array(_numbers(column), mask=~shown).cast(pa.string())

    u = u_func if not (u_ok & (code != 2)).any() else pc.if_else(array(code == 2), u_func,
                                                                  _NO_TEXT)
    return [_APCI_OPEN.take(codes), number(ssn, code == 0), _APCI_COMMA.take(codes),
            number(rsn, code <= 1), u, _APCI_CLOSE.take(codes)]


_KIND_TAGS = {"gap": "[gap]", "event": "[note]", "malformed": "[malformed]"}


def _note_line(where: str, error: str | None, raw: bytes | None, kind: str) -> str:
    """The line of a row without APCI: malformed octets, a gap or an event."""
    extra = f" raw={bytes(raw[:16]).hex(' ')}{'...' if len(raw) > 16 else ''}" if raw else ""
    return f"{where} {_KIND_TAGS[kind]} {error or ''}{extra}"


_HEAD_COLUMNS = ("frame", "time", "src", "sport", "dst", "dport", "apci", "ssn", "rsn",
                 "u_func", "type_id", "type_name", "cot", "cot_name", "negative", "test", "oa",
                 "ca", "error")
COLUMNS = (*_HEAD_COLUMNS, "apdu", "kind", "raw", "obj", "ioa", "value", "value_text",
           *_FLAGS, "time_tag", "select", "qualifier")
"""The columns :func:`batch_text` reads (a batch may have others)."""


def _groups(batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    """Whether each row starts an APDU, and the APDU (line) index of each row."""
    apdu = batch.column("apdu")
    start = np.ones(batch.num_rows, bool)
    if apdu.null_count == len(apdu):
        return start, np.arange(batch.num_rows)
    numbers = _numbers(apdu, -1)
    if apdu.null_count:
        null = to_numpy(apdu.is_null())
        start[1:] = null[1:] | null[:-1] | (numbers[1:] != numbers[:-1])
    else:
        start[1:] = numbers[1:] != numbers[:-1]
    return start, np.cumsum(start) - 1


def batch_text(batch: pa.RecordBatch, time_mode: str = "a", t0: int = 0,
               limit: int | None = None) -> tuple[memoryview, int]:
    """The one-line view of ``batch`` (rows of :data:`iec104.records.schema.SCHEMA`): the
    UTF-8 octets of one line per APDU, each ending in ``\\n``, and the number of lines (at
    most ``limit`` >= 1 when given)."""
    if not batch.num_rows:
        return memoryview(b""), 0
    start, group = _groups(batch)
    heads_at = np.flatnonzero(start)
    if limit is not None and len(heads_at) > limit:
        batch = batch.slice(0, int(heads_at[limit]))
        start, group, heads_at = start[:len(batch)], group[:len(batch)], heads_at[:limit]
    n, lines = batch.num_rows, len(heads_at)
    head = pa.RecordBatch.from_arrays([batch.column(c) for c in _HEAD_COLUMNS], _HEAD_COLUMNS)
    if lines != n:
        head = head.take(array(heads_at))

    # frame, time, endpoints: where the line happened (a note line's start too)
    where = [pc.utf8_lpad(pc.fill_null(head.column("frame").cast(pa.string()), _DASH), 6, " "),
             _SPACE, _times(head.column("time"), time_mode, t0),
             _per_combination(head, ("src", "sport", "dst", "dport"), _endpoints_text)]
    apci = head.column("apci")
    asdu = to_numpy(pc.fill_null(pc.and_(pc.equal(apci, _I), head.column("type_id")
                                         .is_valid()), _FALSE))
    parts = [*where, *_apci(head)]
    if asdu.any():
        parts.append(_per_combination(head, ("type_id", "type_name", "cot", "cot_name",
                                             "negative", "test", "oa", "ca"), _asdu_text,
                                      None if asdu.all() else asdu))
    head_text = pc.binary_join_element_wise(*parts, _EMPTY, null_handling="replace",
                                            null_replacement="")
    notes = np.flatnonzero(to_numpy(apci.is_null()))
    if len(notes):
        index = array(notes)
        at = array(heads_at[notes])
        cols = [head.column("error").take(index).to_pylist(),
                *(batch.column(c).take(at).to_pylist() for c in ("raw", "kind"))]
        head_text = pc.replace_with_mask(
            head_text, array(np.isin(np.arange(lines), notes)),
            array([_note_line(*args) for args in zip(pc.binary_join_element_wise(
                *(p if isinstance(p, pa.Scalar) else p.take(index) for p in where),
                _EMPTY).to_pylist(),
                *cols, strict=True)], pa.string()))
    error = head.column("error")
    error_text = pc.if_else(pc.fill_null(pc.not_equal(error, _EMPTY), _FALSE),
                            pc.binary_join_element_wise(scalar(" !! "), error, _EMPTY),
                            _NO_TEXT)
    if len(notes):
        error_text = pc.if_else(apci.is_null(), _NO_TEXT, error_text)

    # row-aligned parts: head on the first row, objects, error on the last row
    row_parts = [head_text.take(array(group, mask=~start))]
    line_asdu = asdu[group]
    shown = line_asdu & to_numpy(batch.column("obj").is_valid())
    if shown.any():
        previous = np.empty(n, np.int64)  # line of the object row before each row
        obj_rows = np.flatnonzero(shown)
        previous[obj_rows[1:]] = group[obj_rows[:-1]]
        previous[obj_rows[:1]] = -1
        first = shown.copy()
        first[obj_rows] = previous[obj_rows] != group[obj_rows]
        row_parts += _objects(batch, first, shown)  # (joined with the lines' other parts)
    last = np.ones(n, bool)
    last[:-1] = start[1:]
    end = pc.binary_join_element_wise(error_text, _NEWLINE, _EMPTY, null_handling="replace",
                                      null_replacement="") if error_text.null_count < lines \
        else _fixed(np.full((lines, 1), ord("\n"), np.uint8))
    row_parts.append(end.take(array(group, mask=~last)) if not last.all() else end)
    text = pc.binary_join_element_wise(*row_parts, _EMPTY, null_handling="replace",
                                       null_replacement="")
    offsets = np.frombuffer(text.buffers()[1], np.int32, n + 1, text.offset * 4)
    data = text.buffers()[2]
    return memoryview(data)[offsets[0]:offsets[-1]], lines


def batch_lines(batch: pa.RecordBatch, time_mode: str = "a", t0: int = 0) -> list[str]:
    """The lines of :func:`batch_text` as strings."""
    block, _lines = batch_text(batch, time_mode, t0)
    return str(block, "utf-8").split("\n")[:-1]
