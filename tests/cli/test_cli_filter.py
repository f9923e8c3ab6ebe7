"""The filter language of ``--filter`` (:mod:`iec104.records.filter`): what it accepts,
what it means on real rows, and what it refuses (safely, with a position)."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from iec104.dissector import dissect_table
from iec104.records.filter import FilterError, compile_filter
from tests.support.cli import STATION


@pytest.fixture(scope="module")
def batch() -> pa.RecordBatch:
    return dissect_table(STATION).combine_chunks().to_batches()[0]


@pytest.fixture(scope="module")
def rows(batch: pa.RecordBatch) -> list[dict]:
    return batch.to_pylist()


def matching(batch: pa.RecordBatch, expr: str) -> list[int]:
    mask = compile_filter(expr).mask(batch)
    assert mask.null_count == 0
    return [i for i, hit in enumerate(mask.to_pylist()) if hit]


# expression -> the same selection written in Python over the row dicts
CASES: dict[str, object] = {
    "type_id == 45 and ca == 1": lambda r: r["type_id"] == 45 and r["ca"] == 1,
    'apci == "U"': lambda r: r["apci"] == "U",
    "apci == U": lambda r: r["apci"] == "U",
    'cot_name == "ACTIVATION" and not negative':
        lambda r: r["cot_name"] == "ACTIVATION" and not r["negative"],
    "ioa in (1, 2, 3)": lambda r: r["ioa"] in (1, 2, 3),
    "ioa in [100, 101, 200]": lambda r: r["ioa"] in (100, 101, 200),
    "ioa not in (100,)": lambda r: r["ioa"] not in (100,),
    "100 <= ioa < 110": lambda r: r["ioa"] is not None and 100 <= r["ioa"] < 110,
    "type_id != 100": lambda r: r["type_id"] != 100,
    "type_id < 45": lambda r: r["type_id"] is not None and r["type_id"] < 45,
    "45 < type_id": lambda r: r["type_id"] is not None and r["type_id"] > 45,
    "C_SC_NA_1 and ActCon": lambda r: r["type_id"] == 45 and r["cot"] == 7,
    "type_name == C_SC_NA_1": lambda r: r["type_name"] == "C_SC_NA_1",
    "cot == SPONTANEOUS": lambda r: r["cot"] == 3,
    "u_func == STARTDT_ACT": lambda r: r["u_func"] == "STARTDT_ACT",
    "negative": lambda r: bool(r["negative"]),
    "not negative": lambda r: not r["negative"],
    "time_tag": lambda r: r["time_tag"] is not None,
    "time_tag is None": lambda r: r["time_tag"] is None,
    "error is not None": lambda r: r["error"] is not None,
    '"ON" in value_text': lambda r: "ON" in (r["value_text"] or ""),
    "value > 100.5": lambda r: r["value"] is not None and r["value"] > 100.5,
    "value == -0.5": lambda r: r["value"] == -0.5,
    "port == 2404": lambda r: 2404 in (r["sport"], r["dport"]),
    'host == "127.0.0.1" and direction == "s2c"':
        lambda r: r["direction"] == "s2c",
    "apci == S || (apci == I && ssn == 0)":
        lambda r: r["apci"] == "S" or (r["apci"] == "I" and r["ssn"] == 0),
    "!test": lambda r: not r["test"],
    "ssn == rsn": lambda r: r["ssn"] is not None and r["ssn"] == r["rsn"],
    "iv == True or bl": lambda r: bool(r["iv"]) or bool(r["bl"]),
    "select == False": lambda r: r["select"] is False,
    "qualifier == 20": lambda r: r["qualifier"] == 20,
    # a non-integral float equals no integer (pa.array would have truncated 100.5 to 100)
    "ioa in (100.5, 101)": lambda r: r["ioa"] == 101,
    "ioa in (100.0,)": lambda r: r["ioa"] == 100,
    "ioa == 100.5": lambda r: False,
    "value < 99999999999999999999999": lambda r: r["value"] is not None,
    "value > -1e400": lambda r: r["value"] is not None,
    "frame < 9223372036854775807": lambda r: r["frame"] is not None,
    "not " * 100 + "negative": lambda r: bool(r["negative"]),  # an even number of nots
    "(" * 90 + "iv or nt" + ")" * 90: lambda r: bool(r["iv"]) or bool(r["nt"]),
    " and ".join(["not negative"] * 5000): lambda r: not r["negative"],
    " or ".join(f"ioa == {i}" for i in range(2000)): lambda r: (r["ioa"] is not None
                                                               and r["ioa"] < 2000),
    "ioa in (" + ", ".join(map(str, range(100_000))) + ")":
        lambda r: r["ioa"] is not None and r["ioa"] < 100_000,
    # every value a column of known values can hold is accepted as a string
    'kind == "object"': lambda r: r["kind"] == "object",
    "kind in ('apdu', 'malformed', 'gap', 'event')": lambda r: r["kind"] != "object",
    "u_func == 'STARTDT_ACT'": lambda r: r["u_func"] == "STARTDT_ACT",
    "type_name in ('C_SC_NA_1', 'TYPE_200')": lambda r: r["type_name"] == "C_SC_NA_1",
    "cot_name != 'CAUSE_63'": lambda r: r["cot_name"] is None or r["cot_name"] != "CAUSE_63",
}


@pytest.mark.parametrize("expr", list(CASES))
def test_meaning(batch: pa.RecordBatch, rows: list[dict], expr: str) -> None:
    want = [i for i, r in enumerate(rows) if CASES[expr](r)]  # type: ignore[operator]
    assert matching(batch, expr) == want


def test_non_trivial_selections(batch: pa.RecordBatch) -> None:
    assert matching(batch, "negative")
    assert matching(batch, "time_tag")
    assert matching(batch, "C_SC_NA_1 and ActCon")
    assert not matching(batch, "ioa in (1, 2, 3)")


def test_time_literals(batch: pa.RecordBatch, rows: list[dict]) -> None:
    middle = rows[len(rows) // 2]["time"]
    iso = middle.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert matching(batch, f'time >= "{iso}"') == [i for i, r in enumerate(rows)
                                                   if r["time"] >= middle]
    assert matching(batch, f'time >= "{middle.isoformat()}"') == matching(
        batch, f'time >= "{iso}"')


def test_apdu_mask_takes_whole_apdus(batch: pa.RecordBatch, rows: list[dict]) -> None:
    flt = compile_filter("ioa == 101")
    picked = flt.apply(batch).to_pylist()
    apdu = next(r["apdu"] for r in rows if r["ioa"] == 101)
    assert [r["ioa"] for r in picked] == [r["ioa"] for r in rows if r["apdu"] == apdu]
    assert len(picked) == 2
    assert compile_filter("type_id == 36").columns == frozenset({"type_id"})
    assert compile_filter("port == 1").columns == frozenset({"sport", "dport"})


REFUSED = {
    "__import__('os')": "function calls not allowed",
    "__import__('os').system('id')": "function calls not allowed",
    "eval('1')": "function calls not allowed",
    "type_id.__class__": "attributes not allowed",
    "ca == ca.real": "attributes not allowed",
    "raw[0] == 104": "subscripts not allowed",
    "ioa + 1 == 2": "arithmetic not allowed",
    "(ca := 1)": "assignments not allowed",
    "lambda: 1": "lambdas not allowed",
    "[c for c in ()]": "comprehensions not allowed",
    "f'{ca}' == '1'": "f-strings not allowed",
    "{'a': 1}": "dicts not allowed",
    "type_id if ca else ioa": "conditional expressions not allowed",
    "typo_id == 45": "unknown name 'typo_id'; did you mean type_id?",
    "__builtins__": "unknown name '__builtins__'",
    "type_id == 'x'": "type_id takes a number",
    "apci == 1": "apci takes a \"string\"",
    "negative < True": "True/False compare only with == and !=",
    "1 == 1": "a comparison needs a column on one side",
    "ioa == (1, 2)": "a list needs 'in'",
    "ioa in ioa": "use 'column in (a, b, c)'",
    "type_id == ACTIVATION": "ACTIVATION is a cause of transmission; compare it with cot or "
                             "cot_name",
    "time > 'yesterday'": "is not an ISO date/time",
    "ioa is 5": "'is' only tests for null",
    "type_id ==": "syntax error",
    "apci == 'U'; import os": "syntax error",
    "   ": "empty filter expression",
    # overflow and recursion: refused like any other bad filter (issue 10, item 4)
    "not " * 5000 + "iv": "expression nested too deeply",
    "not " * 101 + "iv": "expression nested too deeply",
    "!" * 5000 + "iv": "expression nested too deeply",
    "ioa == " + "-" * 5000 + "1": "expression nested too deeply",
    "(" * 5000 + "iv" + ")" * 5000: "too many nested parentheses",
    "ioa in " + "(" * 500 + "1" + ")" * 500: "too many nested parentheses",
    "ioa == 99999999999999999999999": "99999999999999999999999 is out of range for ioa "
                                      "(int32: -2147483648 to 2147483647)",
    "ioa == -99999999999999999999999": "out of range for ioa",
    "frame == 9223372036854775808": "out of range for frame (int64",
    "oa in (1, 99999999999999999999999)": "out of range for oa (int16",
    "ioa == 1e300": "1e+300 is out of range for ioa",
    "ioa < 1e400": "ioa holds integers; inf is not a finite number",
    "frame in (1e400, -1e400)": "not a finite number",
    "value == 9" + "9" * 400: "is too large for value (a float column)",
    "time >= '9999-12-31'": "outside the years 1677-2262",
    "time < '0001-01-01 00:00'": "outside the years 1677-2262",
    "src == '\udcff'": "the expression is not valid UTF-8 text",
    "src == '\\udcff'": "'\\udcff' is not valid UTF-8 text",
    "iv\x00": "syntax error",
    # a string a column of known values never holds: a typo, not a filter matching nothing
    'kind == "objetc"': "'objetc' is never a value of kind (one of 'object', 'apdu', "
                        "'malformed', 'gap', 'event'); did you mean 'object'?",
    "kind in ('gap', 'event', 'evnet')": "'evnet' is never a value of kind",
    "kind != 'Object'": "did you mean 'object'?",
    "direction == 'c2s' or direction == 'sc2'": "'sc2' is never a value of direction (one of "
                                                "'c2s', 's2c')",
    "apci == 'X'": "'X' is never a value of apci (one of 'I', 'S', 'U')",
    "u_func == 'TESTFR_AKT'": "did you mean 'TESTFR_ACT'?",
    "type_name == 'M_ME_NC_2'": "is never a value of type_name (a type mnemonic such as "
                                "'M_ME_NC_1', or 'TYPE_<n>'",
    "cot_name == 'ActCon'": "did you mean 'ACTIVATION_CONFIRMATION'?",
    "cot_name in ('SPONTANEOUS', 'CAUSE_x')": "'CAUSE_x' is never a value of cot_name",
}


@pytest.mark.parametrize("expr", list(REFUSED))
def test_refused(expr: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(expr)
    assert REFUSED[expr] in str(info.value)
    assert info.value.expression == expr


def test_long_expression_is_shown_as_a_window() -> None:
    """The caret line of a 20,000-character expression stays short and points right."""
    expr = "ioa in (" + ", ".join(map(str, range(4000))) + ") and typo == 1"
    with pytest.raises(FilterError) as info:
        compile_filter(expr)
    first, caret = info.value.caret().split("\n")
    assert len(first) <= 82 and first.startswith("...") and "typo" in first
    assert first[caret.index("^"):].startswith("typo")
    deep = "not " * 5000 + "iv"
    with pytest.raises(FilterError) as info:
        compile_filter(deep)
    assert info.value.caret() == deep[:76] + "..."


def test_control_characters_never_reach_the_terminal() -> None:
    with pytest.raises(FilterError) as info:
        compile_filter("typo == '\x1b[31m\x1c\r\u2028'")
    # (the line break inside the literal makes it unterminated: the caret is on its quote)
    assert info.value.caret() == "typo == '?[31m???'\n" + " " * 8 + "^"


def test_error_position() -> None:
    with pytest.raises(FilterError) as info:
        compile_filter("type_id == 45 and typo == 1")
    assert info.value.offset == 18
    assert info.value.caret() == "type_id == 45 and typo == 1\n" + " " * 18 + "^"


def test_never_evaluates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser only builds a tree: no expression, accepted or refused, runs code."""
    monkeypatch.chdir(tmp_path)
    for expr in ("__import__('pathlib').Path('pwned').touch()",
                 "open('pwned', 'w')", "type_id == 1 or __import__('os').mkdir('pwned')"):
        with pytest.raises(FilterError):
            compile_filter(expr)
    assert not (tmp_path / "pwned").exists()
    # and the module never calls eval/exec/compile on the text
    import iec104.records.filter as module

    tree = ast.parse(Path(module.__file__).read_text())
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_empty_batch(batch: pa.RecordBatch) -> None:
    empty = batch.slice(0, 0)
    assert compile_filter("type_id == 1").apply(empty).num_rows == 0
    assert pc.sum(compile_filter("True").mask(batch)).as_py() == batch.num_rows
