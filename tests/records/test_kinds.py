"""Row kinds (schema version 2): the builder sets ``kind`` on every row, and files of schema
version 1, which had no ``kind``, are read with the same kinds derived."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from iec104.codec import (
    ASDU,
    Cause,
    FloatingValue,
    IFrame,
    InformationObject,
    SFrame,
    SingleValue,
    Time,
    TypeId,
    UFrame,
    UFunction,
    encode_apdu,
    encode_asdu,
)
from iec104.records.builder import Endpoints, RecordBuilder
from iec104.records.decoder import DirectionDecoder
from iec104.records.journal import read_journal
from iec104.records.reader import load, parquet_batches, schema_version
from iec104.records.schema import METADATA_KEY, SCHEMA, SCHEMA_VERSION, RowKind
from iec104.records.sink import ParquetSink
from tests.support.apdus import GOOD, measurement

EP = Endpoints(0, "s2c", "10.0.0.2", 2404, "10.0.0.1", 50000)
T0 = 1_700_000_000 * 10**9


def _bad_time_asdu() -> bytes:
    """M_SP_TB_1 whose CP56 time tag says day 31 of February: decoded, but no date."""
    tag = Time.from_datetime(dt.datetime(2024, 1, 31, tzinfo=dt.UTC))._replace(months=2)
    return encode_asdu(ASDU(TypeId.M_SP_TB_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
                            (InformationObject(7, SingleValue.ON, GOOD, tag),)))


def rows_of_every_kind() -> tuple[pa.Table, list[str]]:
    """One conversation with every kind of row, and the kinds expected, row by row."""
    builder = RecordBuilder()
    d = DirectionDecoder(EP, builder)
    d.feed(T0, 1, encode_apdu(UFrame(UFunction.STARTDT_CON)))           # apdu
    d.feed(T0, 2, encode_apdu(IFrame(0, 0, measurement(100))))           # object
    two = encode_asdu(ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
                           (InformationObject(1, FloatingValue(1.0), GOOD),
                            InformationObject(2, FloatingValue(2.0), GOOD))))
    d.feed(T0, 3, encode_apdu(IFrame(1, 0, two)))                        # object, object
    d.feed(T0, 4, encode_apdu(SFrame(5)))                                # apdu
    d.feed(T0, 5, b"\x01\x02\x03")                                       # malformed (APCI)
    d.feed(T0, 6, encode_apdu(IFrame(2, 0, b"\x0d\x01\x03")))            # malformed (ASDU)
    d.feed(T0, 7, encode_apdu(IFrame(3, 0, _bad_time_asdu())))           # object with error
    d.gap(T0, 8, 10)                                                     # gap
    builder.add_event(T0, None, EP, "proxy: upstream closed")            # event
    expected = ["apdu", "object", "object", "object", "apdu", "malformed", "malformed",
                "object", "gap", "event"]
    return pa.Table.from_batches([builder.take_batch()], schema=SCHEMA), expected


def test_the_builder_sets_a_kind_on_every_row() -> None:
    table, expected = rows_of_every_kind()
    assert table.column("kind").to_pylist() == expected
    assert set(expected) == {k.value for k in RowKind}
    errors = dict(zip(table.column("kind").to_pylist(), table.column("error").to_pylist()))
    assert errors["gap"].startswith("gap: ") and errors["event"].startswith("proxy: ")
    # the text is only text: an object row may carry one (its time tag), kind stays object
    assert table.column("error")[7].as_py().startswith("time tag: ")


def _as_version_1(table: pa.Table) -> pa.Table:
    """``table`` as schema version 1 wrote it: no kind column, version "1" in the metadata."""
    v1 = table.drop_columns(["kind"])
    return v1.replace_schema_metadata({METADATA_KEY: b"1"})


@pytest.mark.parametrize("how", ["load", "parquet_batches"])
def test_version_1_files_read_with_their_kinds_derived(tmp_path: Path, how: str) -> None:
    table, expected = rows_of_every_kind()
    path = tmp_path / "v1.parquet"
    pq.write_table(_as_version_1(table), path)
    assert schema_version(path) == "1"
    if how == "load":
        df = load(path)
        assert df["kind"].tolist() == expected
        assert list(df.columns) == SCHEMA.names  # kind in its place
    else:
        batches = list(parquet_batches(path))
        kinds = [k for b in batches for k in b.column("kind").to_pylist()]
        assert kinds == expected
        assert all(b.schema.names == SCHEMA.names for b in batches)


def test_a_column_selection_of_a_version_1_file_may_ask_for_kind(tmp_path: Path) -> None:
    table, expected = rows_of_every_kind()
    path = tmp_path / "v1.parquet"
    pq.write_table(_as_version_1(table), path)
    df = load(path, columns=["frame", "kind"])
    assert list(df.columns) == ["frame", "kind"] and df["kind"].tolist() == expected


@pytest.mark.parametrize("version", ["1", "2"])
def test_parquet_batches_read_only_the_columns_asked(tmp_path: Path, version: str) -> None:
    """(``iec104 read`` asks for the columns it prints) ``apdu`` always comes along: the
    batches are cut at APDUs; a version-1 file's kind is still derived."""
    table, expected = rows_of_every_kind()
    path = tmp_path / "rows.parquet"
    pq.write_table(_as_version_1(table) if version == "1" else table, path)
    batches = list(parquet_batches(path, columns=["kind", "frame"]))
    assert all(b.schema.names == ["frame", "apdu", "kind"] for b in batches)
    assert [k for b in batches for k in b.column("kind").to_pylist()] == expected
    assert pa.Table.from_batches(batches).column("frame") == table.column("frame")


def test_version_2_files_say_so_and_keep_their_kinds(tmp_path: Path) -> None:
    table, expected = rows_of_every_kind()
    path = tmp_path / "v2.parquet"
    with ParquetSink(path) as sink:
        sink.write(table.to_batches()[0])
    assert SCHEMA_VERSION == "2" and schema_version(path) == "2"
    assert load(path)["kind"].tolist() == expected


def test_a_version_1_journal_is_recovered_in_the_current_schema(tmp_path: Path) -> None:
    table, expected = rows_of_every_kind()
    journal = tmp_path / ".old.arrows"
    v1 = _as_version_1(table)
    with open(journal, "wb") as f, pa.ipc.new_stream(f, v1.schema) as w:
        w.write_table(v1)
    batches, problem = read_journal(journal)
    assert problem is None
    assert [b.schema.names for b in batches] == [SCHEMA.names]
    assert batches[0].column("kind").to_pylist() == expected
