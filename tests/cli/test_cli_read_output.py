"""``iec104 read -T json|jsonl|fields``: tshark's output modes over our records. JSON is
validated against the JSON Schema generated from the Parquet schema (jsonschema from PyPI);
``-T fields`` is checked against ``iec104 convert``'s rows of the same capture."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from iec104.codec import FLOAT32_TYPE_IDS, float32_text
from iec104.records.output import APDU_COLUMNS, OBJECT_COLUMNS, json_schema
from tests.conftest import public_capture
from tests.support.cli import COMMANDS, STATION, run

SEQ_GAPS = "emre_iec104-baselines-seq-gaps.pcap"
MALFORMED = "iti_test-dissect-iec104-malformed.pcap"


def convert_rows(tmp_path: Path, capture: Path) -> pd.DataFrame:
    out = tmp_path / "rows.parquet"
    assert run("convert", capture, "-o", out, "-q").returncode == 0
    return pd.read_parquet(out)


def read_json(*args: object) -> list[dict]:
    proc = run("read", "-T", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("capture", [STATION, COMMANDS, SEQ_GAPS, MALFORMED])
def test_json_is_valid_against_the_schema_and_nests_the_objects(tmp_path: Path,
                                                                capture: Path | str) -> None:
    path = public_capture(capture) if isinstance(capture, str) else capture
    apdus = read_json(path)
    validator = jsonschema.Draft202012Validator(json_schema(),
                                                format_checker=jsonschema.FormatChecker())
    for apdu in apdus:
        validator.validate(apdu)
    rows = convert_rows(tmp_path, path)
    units = rows.groupby(rows["apdu"].fillna(-1 - pd.Series(range(len(rows)))).values,
                         sort=False)
    assert len(apdus) == units.ngroups
    with_objects = rows[rows["obj"].notna()]
    assert sum(len(a["objects"]) for a in apdus) == len(with_objects)
    # the same objects, in order, with the schema's names
    flat = [(a["apdu"], o["ioa"], o["obj"]) for a in apdus for o in a["objects"]]
    assert flat == list(zip(with_objects["apdu"], with_objects["ioa"], with_objects["obj"]))
    assert list(apdus[0]) == [*APDU_COLUMNS, "objects"]


def test_the_schema_is_not_vacuous() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    apdu = read_json(STATION, "-c", "3")[2]
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(apdu)
    for bad in ({**apdu, "ioa": 1}, {**apdu, "ssn": "0"}, {**apdu, "time": "yesterday"},
                {k: v for k, v in apdu.items() if k != "ca"},
                {**apdu, "objects": [{**apdu["objects"][0], "iv": "no"}]}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(bad)
    assert set(schema["properties"]["objects"]["items"]["required"]) == set(OBJECT_COLUMNS)


def test_jsonl_is_one_json_object_per_apdu() -> None:
    proc = run("read", "-T", "jsonl", STATION)
    lines = proc.stdout.splitlines()
    assert [json.loads(line) for line in lines] == read_json(STATION)
    assert all(line.startswith("{") and line.endswith("}") for line in lines)


def test_json_counts_and_empty_results_stay_valid() -> None:
    assert len(read_json(STATION, "-c", "5")) == 5
    assert read_json(STATION, "-Y", "ioa == 99999") == []


def test_short_floats_are_the_numbers_the_device_sent() -> None:
    values = [(a["type_id"], o["value"]) for a in read_json(STATION) for o in a["objects"]
              if a["type_id"] in FLOAT32_TYPE_IDS]
    assert values and all(repr(v) == float32_text(v) for _, v in values)
    assert any(v == 50.016 for _, v in values)


def test_fields_match_converts_rows(tmp_path: Path) -> None:
    columns = ["frame", "apdu", "apci", "ssn", "type_name", "cot", "ioa", "value", "iv",
               "time_tag"]
    proc = run("read", "-T", "fields", *[x for c in columns for x in ("-e", c)],
               "-E", "separator=,", "-E", "header=y", "-E", "aggregator=|", COMMANDS)
    assert proc.returncode == 0, proc.stderr
    table = list(csv.reader(io.StringIO(proc.stdout)))
    assert table[0] == columns
    rows = convert_rows(tmp_path, COMMANDS)
    rows = rows[rows["apdu"].notna()]
    assert len(table) - 1 == rows["apdu"].nunique()
    for line in table[1:]:
        cells = dict(zip(columns, line, strict=True))
        mine = rows[rows["apdu"] == int(cells["apdu"])]
        head = mine.iloc[0]
        assert int(cells["frame"]) == head["frame"] and cells["apci"] == head["apci"]
        assert cells["ssn"] == ("" if pd.isna(head["ssn"]) else str(head["ssn"]))
        assert cells["type_name"] == ("" if pd.isna(head["type_name"]) else head["type_name"])
        objects = mine[mine["obj"].notna()]
        if len(objects):
            assert cells["ioa"].split("|") == [str(i) for i in objects["ioa"]]
            assert cells["iv"].split("|") == ["" if pd.isna(v) else str(int(v))
                                              for v in objects["iv"]]
            values = ["" if pd.isna(v) else float(v) for v in objects["value"]]
            assert [float(v) if v else "" for v in cells["value"].split("|")] == \
                pytest.approx(values) if any(v != "" for v in values) else True
        else:
            assert cells["ioa"] == ""


def test_fields_options_quote_occurrence_and_defaults() -> None:
    quoted = run("read", "-T", "fields", "-e", "apci", "-e", "ioa", "-E", "quote=d",
                 "-E", "occurrence=f", "-c", "5", STATION)
    lines = quoted.stdout.splitlines()
    assert lines[0] == '"U"\t""' and lines[4] == '"I"\t"100"'
    last = run("read", "-T", "fields", "-e", "ioa", "-E", "occurrence=l", "-c", "5", STATION)
    assert last.stdout.splitlines()[4] == "101"  # M_SP_NA_1 with IOA 100 and 101
    tabbed = run("read", "-T", "fields", "-e", "apci", "-e", "sq", "-c", "3", STATION)
    assert tabbed.stdout.splitlines() == ["U\t", "U\t", "I\t0"]  # booleans as tshark: 1/0
    empty = run("read", "-T", "fields", "-e", "ioa", "-E", "header=y", "-Y", "ioa == 99999",
                STATION)
    assert empty.stdout == "ioa\n"


@pytest.mark.parametrize(("args", "message"), [
    (["-T", "fields"], "needs at least one -e"),
    (["-T", "fields", "-e", "nosuch"], "-e nosuch: no such column"),
    (["-T", "json", "-V"], "does not combine"),
    (["-e", "ioa"], "-e and -E apply to -T fields"),
    (["-T", "fields", "-e", "ioa", "-E", "colour=red"], "-E colour: unknown option"),
    (["-T", "fields", "-e", "ioa", "-E", "header=maybe"], "expected y or n"),
    (["-T", "xml"], "invalid choice"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    proc = run("read", *args, STATION)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""
