"""A small, safe filter language over the columns of the Parquet schema.

Theory of operation
-------------------
An expression such as ``type_id == 45 and ca == 1`` or ``cot_name == "ACTIVATION" and not
negative`` is parsed with Python's :mod:`ast` (``mode="eval"``) and *checked node by node*:
only column names, literals, comparisons, ``and``/``or``/``not`` and ``in`` are accepted, so an
expression can never call a function, read an attribute or run code. The checked tree is
compiled into a function over a ``pyarrow.RecordBatch`` built from :mod:`pyarrow.compute`
kernels, so filtering runs at columnar speed on the dissector's batches.

Language (also in README.md, section 'Filter language'):

* **Columns**: every column of :data:`iec104.records.schema.SCHEMA` (``frame``, ``src``,
  ``sport``, ``apci``, ``ssn``, ``rsn``, ``u_func``, ``type_id``, ``type_name``, ``cot``,
  ``cot_name``, ``negative``, ``test``, ``oa``, ``ca``, ``ioa``, ``value``, ``iv`` ...), plus
  two shorthands: ``port`` (``sport`` or ``dport``) and ``host`` (``src`` or ``dst``).
* **Literals**: integers, floats, ``"strings"``, ``True``/``False``/``None``, tuples or lists of
  them after ``in``. Times compare with ISO strings: ``time >= "2024-03-01 08:00"`` (UTC
  unless the string has an offset). A string that a column of known values (``kind``,
  ``direction``, ``apci``, ``u_func``, ``type_name``, ``cot_name``) can never hold is
  refused, naming the values it can.
* **Mnemonics** may stand for codes: type IDs (``type_id == C_SC_NA_1`` or ``type_name ==
  C_SC_NA_1``), causes (``cot == ACTIVATION``, and tshark's ``Act``, ``ActCon``, ``Spont``,
  ``Inrogen`` ...), U functions (``u_func == STARTDT_ACT``) and frame formats (``apci == U``).
  A mnemonic on its own is a condition: ``C_SC_NA_1 and ActCon`` means
  ``type_id == 45 and cot == 7``.
* **Comparisons**: ``== != < <= > >=`` (chains such as ``100 <= ioa < 200`` work), ``in`` /
  ``not in`` a list, ``"text" in column`` (substring, e.g. ``"gap" in error``), ``column is
  None`` / ``is not None``.
* **Logic**: ``and``, ``or``, ``not``, parentheses; ``&&``, ``||`` and ``!`` are accepted too.
* **A column on its own** is a test: a boolean column must be true (``negative``, ``iv``),
  any other column must be present, i.e. not null (``error``, ``time_tag``, ``ioa``), as a bare
  field name in Wireshark.
* **Nulls**: a comparison with a null cell is false (``type_id == 45`` is false for an
  S-frame, and so is ``type_id < 45``); ``!=`` and ``not in`` are the negations of ``==`` and
  ``in``, so ``type_id != 100`` is true for S- and U-frames.

:func:`compile_filter` returns a :class:`Filter`; :meth:`Filter.mask` gives the rows that match,
:meth:`Filter.apdu_mask` widens that to every row of an APDU with at least one matching row
(how ``iec104 read`` and ``iec104 convert`` select APDUs).

Pushdown
--------
The same checked tree also gives :meth:`Filter.pushdown`, a ``pyarrow.dataset.Expression``
that is a *superset* of the filter: true for every row the filter matches, and maybe for
more. Readers use it only to skip row groups and partitions whose statistics prove that no
row matches (:func:`iec104.records.reader.row_groups`), then evaluate the exact mask on the
rows they read. Comparisons with a literal (``== < <= > >=``), ``in`` a list, null tests,
bare boolean columns and mnemonics, combined with ``and``/``or``, are pushed down; what has
no exact statistics counterpart (``not``, ``!=``, ``not in``, substrings, column against
column, a fraction compared with an integer column) becomes "true", and so do columns a file
does not have (e.g. ``kind`` of a version-1 file, derived when read).
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..codec import Cause, Iec104Error, TypeId, UFunction
from .arrays import array, scalar
from .schema import SCHEMA, RowKind

__all__ = ["Filter", "FilterError", "compile_filter"]


class FilterError(Iec104Error, ValueError):
    """The expression is not valid in the filter language.

    Attributes:
        expression: the expression as given.
        offset: 0-based character offset of the problem in ``expression`` (or None).
        reason: the message without position.
    """

    def __init__(self, reason: str, expression: str, offset: int | None = None) -> None:
        self.reason = reason
        self.expression = expression
        self.offset = offset
        super().__init__(reason if offset is None else f"{reason} (at character {offset + 1})")

    def caret(self, width: int = 76) -> str:
        """The expression with a ``^`` under the problem (two lines), or just the expression;
        an expression longer than ``width`` is cut to a window around the problem, and
        characters that are not printable are shown as ``?``."""
        text, offset = self.expression, self.offset
        if len(text) > width:
            start = 0 if offset is None else max(0, min(offset - width // 2, len(text) - width))
            window = text[start:start + width]
            head, tail = ("..." if start else ""), ("..." if start + width < len(text) else "")
            text = f"{head}{window}{tail}"
            offset = None if offset is None else offset - start + len(head)
        # one character each, so the caret stays in place: line breaks and control
        # characters (terminal escapes) never reach the terminal
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
        if offset is None:
            return text
        return f"{text}\n{' ' * offset}^"


# -- names ----------------------------------------------------------------------------------

_TYPES: dict[str, pa.DataType] = {f.name: f.type for f in SCHEMA}
_SHORTHANDS: dict[str, tuple[str, str]] = {"port": ("sport", "dport"), "host": ("src", "dst")}

# tshark's mnemonics for causes of transmission (tshark -G values)
_TSHARK_CAUSES: dict[str, int] = {
    "Back": 2, "Spont": 3, "Init": 4, "Req": 5, "Act": 6, "ActCon": 7, "Deact": 8,
    "DeactCon": 9, "ActTerm": 10, "Retrem": 11, "Retloc": 12, "File": 13, "Inrogen": 20,
    **{f"Inro{i}": 20 + i for i in range(1, 17)}, "Reqcogen": 37,
    **{f"Reqco{i}": 37 + i for i in range(1, 5)}, "UkTypeId": 44, "UkCauseTx": 45,
    "UkComAdrASDU": 46, "UkIOA": 47,
}


@dataclass(frozen=True)
class _Symbol:
    """A mnemonic: which kind of code it is, its number (if any) and its canonical name."""

    kind: str  # 'type', 'cause', 'ufunc' or 'apci'
    number: int | None
    name: str


_SYMBOLS: dict[str, _Symbol] = {}
for _m in TypeId:
    _SYMBOLS[_m.name] = _Symbol("type", int(_m), _m.name)
for _c in Cause:
    _SYMBOLS[_c.name] = _Symbol("cause", int(_c), _c.name)
for _name, _num in _TSHARK_CAUSES.items():
    _SYMBOLS[_name] = _Symbol("cause", _num, Cause(_num).name)
for _u in UFunction:
    _SYMBOLS[_u.name] = _Symbol("ufunc", None, _u.name)
for _a in "ISU":
    _SYMBOLS[_a] = _Symbol("apci", None, _a)

# which column a symbol kind compares with: (numeric column, text column)
_SYMBOL_COLUMNS = {"type": ("type_id", "type_name"), "cause": ("cot", "cot_name"),
                   "ufunc": (None, "u_func"), "apci": (None, "apci")}


@dataclass(frozen=True)
class _Values:
    """The values a text column can hold: ``names``, plus what ``other`` matches (the
    names of codes the standard does not name); ``what`` describes them in errors (None:
    the names are few enough to list)."""

    names: tuple[str, ...]
    other: re.Pattern[str] | None = None
    what: str | None = None


# Text columns with a closed set of values: a string outside it is a typo that would select
# nothing, refused as an unknown mnemonic is (``kind == "objetc"`` as ``kind == objetc``).
_VALUES: dict[str, _Values] = {
    "kind": _Values(tuple(k.value for k in RowKind)),
    "direction": _Values(("c2s", "s2c")),
    "apci": _Values(("I", "S", "U")),
    "u_func": _Values(tuple(u.name for u in UFunction)),
    "type_name": _Values(tuple(t.name for t in TypeId), re.compile(r"TYPE_\d+"),
                         "a type mnemonic such as 'M_ME_NC_1', or 'TYPE_<n>' for a type ID "
                         "the standard does not name"),
    "cot_name": _Values(tuple(c.name for c in Cause), re.compile(r"CAUSE_\d+"),
                        "a cause name such as 'SPONTANEOUS', or 'CAUSE_<n>' for a cause the "
                        "standard does not name"),
}


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return "number"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_timestamp(dtype):
        return "time"
    return "binary"


# -- Wireshark-style operators ---------------------------------------------------------------

_STRING = re.compile(r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')""")


def _normalise(expr: str) -> str:
    """``&&``/``||``/``!`` outside string literals -> ``and``/``or``/``not``.

    Positions in error messages are only given for expressions that needed no rewriting.
    """
    parts = _STRING.split(expr)
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        text = parts[i].replace("&&", " and ").replace("||", " or ")
        parts[i] = re.sub(r"!(?!=)", " not ", text) if "!" in text else text
    return "".join(parts)


# -- compilation ------------------------------------------------------------------------------

Mask = Callable[[pa.RecordBatch], pa.Array]

# The pushdown predicate before it becomes a pyarrow Expression (pyarrow.dataset is imported
# only when a reader asks for it): True (any row may match), False (none does), or
# ("and" | "or", parts), ("cmp", column, op, value), ("in", column, values, with_null),
# ("null", column, present).
Pred = Any
_OPS = {ast.Eq: "==", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@dataclass(frozen=True)
class _Operand:
    """A compiled operand: a column (``column`` set) or a literal/symbol (``value`` set)."""

    node: ast.AST
    column: str | None = None
    value: Any = None
    symbol: _Symbol | None = None
    is_literal: bool = False


class _Compiler:
    def __init__(self, expression: str, source: str) -> None:
        self.expression = expression
        self.source = source
        self.columns: set[str] = set()

    def error(self, reason: str, node: ast.AST | None = None) -> FilterError:
        offset = getattr(node, "col_offset", None) if node is not None else None
        if offset is not None:
            offset -= 1  # the expression was parsed in parentheses
            if (self.source != self.expression or getattr(node, "lineno", 1) != 1
                    or not 0 <= offset < len(self.expression)):
                offset = None  # operators rewritten or several lines: no reliable position
        return FilterError(reason, self.expression, offset)

    # conditions --------------------------------------------------------------------------

    def condition(self, node: ast.AST) -> Mask:
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v) for v in node.values]
            return _fold(pc.and_ if isinstance(node.op, ast.And) else pc.or_, parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.condition(node.operand)
            return lambda batch: pc.invert(inner(batch))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            return self.bare_name(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            value = node.value
            return lambda batch: array(np.full(batch.num_rows, value))
        self.refuse_construct(node)
        raise self.error(f"{self.describe(node)} is not a condition; compare a column, e.g. "
                         "type_id == 45", node)

    def bare_name(self, node: ast.Name) -> Mask:
        name = node.id
        if name in _SYMBOLS:
            sym = _SYMBOLS[name]
            numeric, text = _SYMBOL_COLUMNS[sym.kind]
            column = numeric if numeric is not None else text
            assert column is not None
            self.columns.add(column)
            value = sym.number if numeric is not None else sym.name
            literal = scalar(value)
            return lambda batch: _fill(pc.equal(batch.column(column), literal))
        columns = self.column_names(node)
        masks: list[Mask] = []
        for column in columns:
            if _kind(_TYPES[column]) == "bool":
                masks.append(_on_column(column, _fill))
            else:
                masks.append(_on_column(column, pc.is_valid))
        return _any(masks)

    def column_names(self, node: ast.Name) -> tuple[str, ...]:
        name = node.id
        if name in _SHORTHANDS:
            self.columns.update(_SHORTHANDS[name])
            return _SHORTHANDS[name]
        if name in _TYPES:
            self.columns.add(name)
            return (name,)
        known = [*_TYPES, *_SHORTHANDS]
        close = difflib.get_close_matches(name, known + list(_SYMBOLS), n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; columns are: {', '.join(known)}"
        raise self.error(f"unknown name {name!r}{hint}", node)

    # operands ----------------------------------------------------------------------------

    def refuse_construct(self, node: ast.AST) -> None:
        """A clear error for constructs that are never part of the language."""
        words = {ast.Call: "function calls", ast.Attribute: "attributes",
                 ast.Subscript: "subscripts", ast.Lambda: "lambdas",
                 ast.NamedExpr: "assignments", ast.BinOp: "arithmetic",
                 ast.JoinedStr: "f-strings", ast.IfExp: "conditional expressions",
                 ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
                 ast.DictComp: "comprehensions", ast.GeneratorExp: "comprehensions",
                 ast.Dict: "dicts", ast.Starred: "starred expressions",
                 ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield"}
        for cls, what in words.items():
            if isinstance(node, cls):
                raise self.error(f"{self.describe(node)}: {what} not allowed in a filter "
                                 "(only column names, literals, comparisons, and/or/not, in)",
                                 node)

    def describe(self, node: ast.AST) -> str:
        try:
            return repr(ast.unparse(node))
        except Exception:  # noqa: BLE001  # pragma: no cover - unparse of a checked node does not fail
            return type(node).__name__

    def literal(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(
                node.value, (bool, int, float, str, bytes))):
            return node.value
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
                and isinstance(node.operand, ast.Constant)
                and type(node.operand.value) in (int, float)):
            number = cast(int | float, node.operand.value)
            return -number if isinstance(node.op, ast.USub) else number
        self.refuse_construct(node)
        raise self.error(f"{self.describe(node)} is not allowed here (only column names, "
                         "numbers, strings, True/False/None and lists of them)", node)

    def operand(self, node: ast.AST) -> _Operand:
        if isinstance(node, ast.Name):
            if node.id in _SYMBOLS:
                return _Operand(node, symbol=_SYMBOLS[node.id], is_literal=True)
            self.column_names(node)  # validates
            return _Operand(node, column=node.id)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = []
            for elt in node.elts:
                if isinstance(elt, ast.Name) and elt.id in _SYMBOLS:
                    items.append(_SYMBOLS[elt.id])
                else:
                    items.append(self.literal(elt))
            return _Operand(node, value=tuple(items), is_literal=True)
        return _Operand(node, value=self.literal(node), is_literal=True)

    def coerce(self, column: str, value: Any, node: ast.AST) -> Any:
        """A literal (or symbol) as a value of ``column``'s type; raises on a mismatch."""
        kind = _kind(_TYPES[_SHORTHANDS.get(column, (column,))[0]])
        if isinstance(value, _Symbol):
            numeric, text = _SYMBOL_COLUMNS[value.kind]
            if column == numeric:
                return value.number
            if column == text:
                return value.name
            wanted = " or ".join(c for c in (numeric, text) if c)
            raise self.error(f"{value.name} is a {_KIND_WORDS[value.kind]}; compare it with "
                             f"{wanted}, not {column}", node)
        if value is None:
            return None
        if kind == "bool":
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
        elif kind == "number":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return self.number(column, value, node)
        elif kind == "string":
            if isinstance(value, str):
                try:
                    value.encode()
                except UnicodeEncodeError:  # e.g. undecodable command-line bytes
                    raise self.error(f"{value!r} is not valid UTF-8 text", node) from None
                self.known_value(column, value, node)
                return value
        elif kind == "time":
            if isinstance(value, str):
                try:
                    when = datetime.fromisoformat(value.strip())
                except ValueError:
                    raise self.error(f"{value!r} is not an ISO date/time such as "
                                     "'2024-03-01 08:00:00'", node) from None
                when = when if when.tzinfo else when.replace(tzinfo=UTC)
                if not _TIME_RANGE[0] <= when <= _TIME_RANGE[1]:
                    raise self.error(f"{value!r} is outside the years 1677-2262 that time "
                                     "columns hold", node)
                return when
        elif kind == "binary" and isinstance(value, bytes):
            return value
        words = {"bool": "True or False", "number": "a number", "string": "a \"string\"",
                 "time": "a date/time string", "binary": "bytes (b'...')"}
        raise self.error(f"{column} takes {words[kind]}, not {value!r}", node)

    def known_value(self, column: str, value: str, node: ast.AST) -> None:
        """Refuse a string that ``column`` can never hold (see :data:`_VALUES`)."""
        values = _VALUES.get(column)
        if values is None or value in values.names or (
                values.other is not None and values.other.fullmatch(value)):
            return
        symbol = _SYMBOLS.get(value)
        if symbol is not None and _SYMBOL_COLUMNS[symbol.kind][1] == column:
            close = [symbol.name]  # tshark's "ActCon" for ACTIVATION_CONFIRMATION
        else:
            close = difflib.get_close_matches(value, values.names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = values.what or f"one of {', '.join(map(repr, values.names))}"
        raise self.error(f"{_short(value)} is never a value of {column} ({listing}){hint}",
                         node)

    def number(self, column: str, value: float, node: ast.AST) -> float:
        """A number checked against ``column``'s type: an integer column takes finite
        values within its Arrow type's range (a non-integral float stays a float), a float
        column any float (an int too large for a float is refused)."""
        dtype = _TYPES[_SHORTHANDS.get(column, (column,))[0]]
        if pa.types.is_integer(dtype):
            if isinstance(value, float) and not math.isfinite(value):
                raise self.error(f"{column} holds integers; {value!r} is not a finite number",
                                 node)
            low, high = _INT_RANGES[dtype.bit_width]
            if not low <= value <= high:
                raise self.error(f"{_short(value)} is out of range for {column} ({dtype}: "
                                 f"{low} to {high})", node)
            return int(value) if isinstance(value, float) and value.is_integer() else value
        try:
            return float(value)
        except OverflowError:
            raise self.error(f"{_short(value)} is too large for {column} (a float column)",
                             node) from None

    # comparisons ---------------------------------------------------------------------------

    def compare(self, node: ast.Compare) -> Mask:
        masks: list[Mask] = []
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            masks.append(self.compare_one(left, op, right, node))
            left = right
        return _fold(pc.and_, masks)  # a < b < c is a < b and b < c

    def compare_one(self, left_node: ast.AST, op: ast.cmpop, right_node: ast.AST,
                    where: ast.AST) -> Mask:
        left = self.operand(left_node)
        right = self.operand(right_node)
        if isinstance(op, (ast.Is, ast.IsNot)):
            if left.column is None or not (right.is_literal and right.value is None
                                           and right.symbol is None):
                raise self.error("'is' only tests for null: column is None / is not None",
                                 where)
            return self.null_test(left.column, isinstance(op, ast.IsNot))
        if isinstance(op, (ast.In, ast.NotIn)):
            mask = self.membership(left, right, where)
            return (lambda batch: pc.invert(mask(batch))) if isinstance(op, ast.NotIn) else mask
        if left.column is None and right.column is None:
            raise self.error("a comparison needs a column on one side", where)
        if left.column is None:  # literal OP column -> column OP' literal
            left, right = right, left
            op = _SWAPPED[type(op)]()
        assert left.column is not None
        negate = isinstance(op, ast.NotEq)
        if negate:
            op = ast.Eq()
        kernel = _KERNELS[type(op)]
        if right.column is not None:
            lcols = self.column_names(left.node)  # type: ignore[arg-type]
            rcols = self.column_names(right.node)  # type: ignore[arg-type]
            if {_kind(_TYPES[c]) for c in lcols} != {_kind(_TYPES[c]) for c in rcols}:
                raise self.error(f"{left.column} and {right.column} have different types",
                                 where)
            masks = [lambda b, x=x, y=y: _fill(kernel(b.column(x), b.column(y)))
                     for x in lcols for y in rcols]
            mask = _any(masks)
        else:
            value = right.symbol if right.symbol is not None else right.value
            if isinstance(value, tuple):
                raise self.error("a list needs 'in': ioa in (1, 2, 3)", where)
            columns = self.column_names(left.node)  # type: ignore[arg-type]
            coerced = [self.coerce(c, value, right.node) for c in columns]
            if coerced[0] is None:
                if not isinstance(op, ast.Eq):
                    raise self.error("only == and != compare with None", where)
                return self.null_test(left.column, negate)
            if isinstance(coerced[0], bool) and not isinstance(op, ast.Eq):
                raise self.error("True/False compare only with == and !=", where)
            mask = _any([_on_column(c, _against(kernel, _scalar(v, _TYPES[c])))
                         for c, v in zip(columns, coerced)])
        if negate:
            return lambda batch: pc.invert(mask(batch))
        return mask

    def null_test(self, column: str, present: bool) -> Mask:
        columns = _SHORTHANDS.get(column, (column,))
        self.columns.update(columns)
        test = pc.is_valid if present else pc.is_null
        return _any([_on_column(c, test) for c in columns])

    def membership(self, left: _Operand, right: _Operand, where: ast.AST) -> Mask:
        # "text" in column: substring
        if (left.is_literal and isinstance(left.value, str) and left.symbol is None
                and right.column is not None):
            columns = self.column_names(right.node)  # type: ignore[arg-type]
            for c in columns:
                if _kind(_TYPES[c]) != "string":
                    raise self.error(f"'text' in {c}: {c} is not a text column", where)
            text = left.value
            return _any([_on_column(c, lambda col: _fill(pc.match_substring(col, text)))
                         for c in columns])
        if left.column is None or not isinstance(right.value, tuple) or right.column:
            raise self.error("use 'column in (a, b, c)' or '\"text\" in column'", where)
        columns = self.column_names(left.node)  # type: ignore[arg-type]
        masks = []
        for c in columns:
            values = [self.coerce(c, v, right.node) for v in right.value]
            if pa.types.is_integer(_TYPES[c]):
                # 1.5 equals no integer (and pa.array would truncate it to 1)
                values = [v for v in values if not isinstance(v, float)]
            non_null = [v for v in values if v is not None]
            value_set = array(non_null, _TYPES[c]) if non_null else None
            has_null = len(non_null) != len(values)

            def member(b: pa.RecordBatch, c: str = c, value_set: Any = value_set,
                       has_null: bool = has_null) -> pa.Array:
                col = b.column(c)
                result = (_fill(pc.is_in(col, value_set=value_set)) if value_set is not None
                          else array(np.zeros(b.num_rows, bool)))
                return pc.or_(result, pc.is_null(col)) if has_null else result
            masks.append(member)
        return _any(masks)


    # the pushdown superset (see 'Pushdown' in the module docstring) ---------------------
    # Called on a tree that condition() has checked, so every operand is valid here.

    def superset(self, node: ast.AST) -> Pred:
        if isinstance(node, ast.BoolOp):
            parts = [self.superset(v) for v in node.values]
            return _both(parts) if isinstance(node.op, ast.And) else _either(parts)
        if isinstance(node, ast.Compare):
            parts, left = [], node.left
            for op, right in zip(node.ops, node.comparators):
                parts.append(self.superset_one(left, op, right))
                left = right
            return _both(parts)
        if isinstance(node, ast.Name):
            if node.id in _SYMBOLS:
                sym = _SYMBOLS[node.id]
                numeric, text = _SYMBOL_COLUMNS[sym.kind]
                if numeric is not None:
                    return ("cmp", numeric, "==", sym.number)
                return ("cmp", text, "==", sym.name)
            return _either([("cmp", c, "==", True) if _kind(_TYPES[c]) == "bool"
                            else ("null", c, True) for c in self.column_names(node)])
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value
        return True  # not: the negation of a superset is no superset

    def superset_one(self, left_node: ast.AST, op: ast.cmpop, right_node: ast.AST) -> Pred:
        left, right = self.operand(left_node), self.operand(right_node)
        if isinstance(op, (ast.Is, ast.IsNot)):
            assert left.column is not None
            return _either([("null", c, isinstance(op, ast.IsNot))
                            for c in _SHORTHANDS.get(left.column, (left.column,))])
        if isinstance(op, ast.In):
            if left.column is None or right.column is not None:
                return True  # "text" in column
            out = []
            for c in self.column_names(left.node):  # type: ignore[arg-type]
                values = [self.coerce(c, v, right.node) for v in right.value]
                if pa.types.is_integer(_TYPES[c]):
                    values = [v for v in values if not isinstance(v, float)]
                out.append(("in", c, tuple(v for v in values if v is not None),
                            None in values))
            return _either(out)
        if type(op) not in _OPS and not isinstance(op, ast.NotEq):
            return True  # not in
        if left.column is None:
            left, right = right, left
            op = _SWAPPED[type(op)]()
        if right.column is not None:
            return True  # column against column
        value = right.symbol if right.symbol is not None else right.value
        columns = self.column_names(left.node)  # type: ignore[arg-type]
        coerced = [self.coerce(c, value, right.node) for c in columns]
        if coerced[0] is None:  # == None / != None
            return _either([("null", c, isinstance(op, ast.NotEq)) for c in columns])
        if isinstance(op, ast.NotEq):
            return True
        if any(pa.types.is_integer(_TYPES[c]) and isinstance(v, float)
               for c, v in zip(columns, coerced)):
            return True  # a fraction against integers: the mask compares as floats
        return _either([("cmp", c, _OPS[type(op)], v) for c, v in zip(columns, coerced)])


def _both(parts: Sequence[Pred]) -> Pred:
    """The conjunction of superset predicates (True parts drop out, a False part wins)."""
    if any(p is False for p in parts):
        return False
    kept = [p for p in parts if p is not True]
    return True if not kept else kept[0] if len(kept) == 1 else ("and", tuple(kept))


def _either(parts: Sequence[Pred]) -> Pred:
    """The disjunction of superset predicates (False parts drop out, a True part wins)."""
    if any(p is True for p in parts):
        return True
    kept = [p for p in parts if p is not False]
    return False if not kept else kept[0] if len(kept) == 1 else ("or", tuple(kept))


def _expression(pred: Pred, schema: pa.Schema) -> Any:
    """A superset predicate as a ``pyarrow.dataset.Expression`` over files of ``schema``:
    a column the schema lacks, or a literal its column type cannot hold, is "true"."""
    import pyarrow.dataset as pads

    if pred is True or pred is False:
        return pads.scalar(pred)
    if pred[0] in ("and", "or"):
        parts = [_expression(p, schema) for p in pred[1]]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if pred[0] == "and" else (out | part)
        return out
    column = pred[1]
    if column not in schema.names:
        return pads.scalar(True)
    field, dtype = pads.field(column), schema.field(column).type
    if pred[0] == "null":
        return field.is_valid() if pred[2] else field.is_null()
    try:
        if pred[0] == "in":
            values, with_null = pred[2], pred[3]
            out = field.isin(array(values, dtype)) if values else pads.scalar(False)
            return (out | field.is_null()) if with_null else out
        literal = pads.scalar(scalar(pred[3], dtype))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pads.scalar(True)  # e.g. a value outside an older file's narrower type
    return {"==": field == literal, "<": field < literal, "<=": field <= literal,
            ">": field > literal, ">=": field >= literal}[pred[2]]


def _short(value: object, limit: int = 30) -> str:
    """``repr(value)``, cut in the middle if long (a 400-digit literal in a message)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:12]}...{text[-12:]} ({len(text)} characters)"


_INT_RANGES = {bits: (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) for bits in (8, 16, 32, 64)}
# what timestamp[ns] holds (pandas keeps -2**63 for NaT)
_TIME_RANGE = (datetime(1677, 9, 21, 0, 12, 44, tzinfo=UTC),
               datetime(2262, 4, 11, 23, 47, 16, tzinfo=UTC))
_KIND_WORDS = {"type": "type ID", "cause": "cause of transmission", "ufunc": "U function",
               "apci": "frame format"}
_KERNELS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: pc.equal, ast.Lt: pc.less, ast.LtE: pc.less_equal, ast.Gt: pc.greater,
    ast.GtE: pc.greater_equal,
}
_SWAPPED: dict[type, type] = {ast.Eq: ast.Eq, ast.NotEq: ast.NotEq, ast.Lt: ast.Gt,
                              ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}


def _scalar(value: Any, dtype: pa.DataType) -> pa.Scalar:
    if pa.types.is_timestamp(dtype):
        return scalar(value, dtype)
    if pa.types.is_integer(dtype) and isinstance(value, float) and not value.is_integer():
        return scalar(value, pa.float64())
    if pa.types.is_integer(dtype) and isinstance(value, (int, float)):
        return scalar(int(value), pa.int64())
    return scalar(value)


def _on_column(column: str, func: Callable[[Any], Any]) -> Mask:
    """The mask ``func(batch.column(column))``."""
    def mask(batch: pa.RecordBatch) -> pa.Array:
        return func(batch.column(column))
    return mask


def _against(kernel: Callable[[Any, Any], Any], scalar: pa.Scalar) -> Callable[[Any], Any]:
    """``column -> kernel(column, scalar)`` with nulls counted as false."""
    def compare(column: Any) -> Any:
        return _fill(kernel(column, scalar))
    return compare


# Literals and masks go through .arrays, not pa.scalar/pa.array or Python values given to
# compute functions: pyarrow would import pandas (0.3 s of every start-up) to check them.
_FALSE = scalar(False)


def _fill(mask: Any) -> pa.Array:
    """Null (a comparison with a null cell) counts as false."""
    return pc.fill_null(mask, _FALSE)


def _fold(kernel: Callable[[Any, Any], pa.Array], masks: Sequence[Mask]) -> Mask:
    """One mask combining ``masks`` left to right with ``kernel`` (``pc.and_``/``pc.or_``)."""
    if len(masks) == 1:
        return masks[0]

    def folded(batch: pa.RecordBatch) -> pa.Array:
        result = masks[0](batch)
        for m in masks[1:]:
            result = kernel(result, m(batch))
        return result
    return folded


def _any(masks: Sequence[Mask]) -> Mask:
    return _fold(pc.or_, masks)


@dataclass(frozen=True)
class Filter:
    """A compiled filter expression (see the module docstring).

    Attributes:
        expression: the expression as given.
        columns: the schema columns it reads.
    """

    expression: str
    columns: frozenset[str]
    _mask: Mask
    _superset: Pred = True

    def pushdown(self, schema: pa.Schema = SCHEMA) -> Any:
        """A ``pyarrow.dataset.Expression`` true for every row that may match (a superset:
        see 'Pushdown' in the module docstring) over files of ``schema``; for skipping row
        groups and partitions by their statistics, never for selecting rows."""
        return _expression(self._superset, schema)

    @property
    def prunes(self) -> bool:
        """Whether :meth:`pushdown` can skip anything (it is not just "true")."""
        return self._superset is not True

    def mask(self, batch: pa.RecordBatch | pa.Table) -> pa.Array:
        """Boolean array: which rows match (never null)."""
        if isinstance(batch, pa.Table):
            batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else \
                pa.RecordBatch.from_arrays([array([], f.type) for f in batch.schema],
                                           schema=batch.schema)
        return _fill(self._mask(batch))

    def apdu_mask(self, batch: pa.RecordBatch) -> pa.Array:
        """Rows of every APDU that has at least one matching row (and matching rows that
        belong to no APDU, such as gaps). The rows of one APDU are always in one batch."""
        rows = self.mask(batch)
        apdu = batch.column("apdu")
        hit = pc.unique(pc.filter(apdu, rows))
        return pc.or_(_fill(pc.is_in(apdu, value_set=hit)), pc.and_(rows, pc.is_null(apdu)))

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with only the rows of matching APDUs (see :meth:`apdu_mask`)."""
        return batch.filter(self.apdu_mask(batch))


MAX_DEPTH = 100
"""Deepest nesting of ``not``, parentheses and operands an expression may have. Python's
parser and the compiled mask both recurse once per level; this bound keeps both far from
the interpreter's recursion limit, whatever the input (5,000 nested ``not`` are refused)."""


def _check_depth(tree: ast.AST, expression: str) -> None:
    """Refuse a tree whose expressions nest deeper than :data:`MAX_DEPTH` (walked without
    recursion)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FilterError(f"expression nested too deeply (more than {MAX_DEPTH} levels of "
                              "not, parentheses or signs)", expression)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                     if isinstance(child, ast.expr))  # not Load contexts or operators


def compile_filter(expression: str) -> Filter:
    """Parse and check ``expression``; see the module docstring for the language.

    Raises:
        FilterError: a syntax error, an unknown column, a disallowed construct (function
            calls, attributes, arithmetic, ...), a literal of the wrong type or out of its
            column's range, or nesting deeper than :data:`MAX_DEPTH`.
    """
    if not expression.strip():
        raise FilterError("empty filter expression", expression)
    source = _normalise(expression)
    try:
        # parenthesised: leading blanks and line breaks are fine; offsets shift by one.
        # Python's own SyntaxWarnings (e.g. '1and', '"\d"') would reach stderr raw
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(f"({source})", mode="eval")
    except SyntaxError as exc:
        offset = (exc.offset - 2) if exc.offset and exc.lineno == 1 else None
        if offset is not None and not 0 <= offset < len(expression):
            offset = None
        raise FilterError(f"syntax error: {exc.msg}", expression,
                          offset if source == expression else None) from None
    except UnicodeEncodeError:  # undecodable command-line bytes arrive as surrogates
        raise FilterError("the expression is not valid UTF-8 text", expression) from None
    except (RecursionError, MemoryError):
        # the parser itself recurses per level of e.g. 'not not not ...'
        raise FilterError(f"expression nested too deeply (more than {MAX_DEPTH} levels of "
                          "not, parentheses or signs)", expression) from None
    _check_depth(tree.body, expression)
    compiler = _Compiler(expression, source)
    mask = compiler.condition(tree.body)
    return Filter(expression, frozenset(compiler.columns), mask, compiler.superset(tree.body))
