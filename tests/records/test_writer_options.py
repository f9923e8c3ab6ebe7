"""Every Parquet writer of rows writes the columns as :func:`writer_options` says.

The encoding and statistics choices are made once (``iec104/records/sink.py``); here they
are checked in the files themselves: ``iec104 convert`` (a real subprocess), the dataset
writer and a recorder's journal conversion, and that the statistics kept are the ones a
filter can skip row groups by.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from iec104.dataset import convert_many
from iec104.dissector import dissect
from iec104.records.journal import JournaledParquetSink
from iec104.records.partitions import DATASET_SCHEMA
from iec104.records.schema import SCHEMA
from iec104.records.sink import writer_options
from tests.support import cli


def check_columns(path: Path, schema: pa.Schema) -> None:
    """Each column chunk of ``path`` has a dictionary page and statistics exactly where
    :func:`writer_options` asks for them."""
    options = writer_options(schema)
    meta = pq.read_metadata(path)
    assert meta.num_row_groups >= 1
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for c in range(group.num_columns):
            chunk = group.column(c)
            name = chunk.path_in_schema
            assert chunk.has_dictionary_page is (name in options["use_dictionary"]), name
            assert chunk.is_stats_set is (name in options["write_statistics"]), name


def test_the_choices() -> None:
    """Plain pages for values that rarely repeat; statistics wherever a filter may skip by
    them (everything but the APDU octets and the value text)."""
    options = writer_options(SCHEMA)
    assert options["compression"] == "zstd"
    plain = set(SCHEMA.names) - set(options["use_dictionary"])
    booleans = {f.name for f in SCHEMA if pa.types.is_boolean(f.type)}
    assert plain - booleans == {"time", "frame", "apdu", "ssn", "rsn", "value", "value_text",
                                "time_tag", "raw"}
    assert {"ioa", "ca", "type_id", "kind", "src"} <= set(options["use_dictionary"])
    assert set(SCHEMA.names) - set(options["write_statistics"]) == {"raw", "value_text"}
    dataset = writer_options(DATASET_SCHEMA, "none")
    assert dataset["compression"] == "none"
    assert "capture" in dataset["use_dictionary"] and "capture" in dataset["write_statistics"]


def test_convert_writes_them(tmp_path: Path) -> None:
    out = tmp_path / "station.parquet"
    proc = cli.run("convert", cli.STATION, "-o", out, "--batch-rows", "40", "-q")
    assert proc.returncode == 0, proc.stderr
    check_columns(out, SCHEMA)
    # the rows are those of the dissector, whatever the encoding
    assert pq.read_table(out).equals(pa.Table.from_batches(list(dissect(cli.STATION)),
                                                           schema=SCHEMA))


def test_the_dataset_writer_writes_them(tmp_path: Path) -> None:
    convert_many([str(cli.STATION)], str(tmp_path / "ds"), workers=0)
    files = sorted((tmp_path / "ds").glob("date=*/*.parquet"))
    assert files
    for path in files:
        check_columns(path, pq.read_schema(path))
        assert pq.read_schema(path).names == DATASET_SCHEMA.names


def test_the_recorder_journal_writes_them(tmp_path: Path) -> None:
    sink = JournaledParquetSink(tmp_path / "log")
    for batch in dissect(cli.STATION, batch_rows=50):
        sink.append(batch)
    sink.close()
    files = sorted((tmp_path / "log").glob("*.parquet"))
    assert files
    for path in files:
        check_columns(path, SCHEMA)


@pytest.mark.parametrize("expression", ["raw == b'\\x68\\x04\\x43\\x00\\x00\\x00'",
                                        "raw is None", "value_text == 'ON'",
                                        "value_text is not None"])
def test_filters_on_the_columns_without_statistics_read_every_group(tmp_path: Path,
                                                                    expression: str) -> None:
    """Without statistics a row group is never skipped by those columns: the pushed-down
    read gives the rows of a full read."""
    from iec104.records.filter import compile_filter
    from iec104.records.reader import parquet_batches
    from iec104.records.sink import ParquetSink

    out = tmp_path / "small.parquet"
    with ParquetSink(out) as sink:
        for batch in dissect(cli.STATION, batch_rows=8):
            sink.write(batch)
    flt = compile_filter(expression)
    assert flt.prunes

    def read(pushdown: bool) -> pa.Table:
        parts = [flt.apply(b) for b in parquet_batches(out, 8,
                                                       pushdown=flt if pushdown else None)]
        return pa.Table.from_batches(parts, schema=SCHEMA)

    full = read(False)
    assert read(True).equals(full)
    if not expression.endswith("None"):
        assert full.num_rows  # the expression matches something in the capture
