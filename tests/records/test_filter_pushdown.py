"""The filter's pushdown: a superset predicate that skips row groups, never rows it needs.

:meth:`Filter.pushdown` must be true for every row :meth:`Filter.mask` matches (checked on
the decoded rows of real captures, for hand-picked and hypothesis-generated expressions of
the fuzz harness), and :func:`iec104.records.reader.row_groups` / ``parquet_batches`` must
give the rows of the unpushed evaluation while reading fewer row groups, also for a file
whose writer cut APDUs over row groups.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iec104.dissector import dissect, dissect_table
from iec104.records.filter import FilterError, compile_filter
from iec104.records.reader import parquet_batches, row_groups
from iec104.records.schema import SCHEMA
from iec104.records.sink import ParquetSink
from tests.support import cli
from tests.support.fuzz import corpus, pushdown_is_superset, random_expression


@pytest.mark.parametrize("expression, prunes", [
    ("ca == 7", True),
    ("type_id == C_SC_NA_1 and ActCon", True),
    ("C_SC_NA_1 or M_ME_NC_1", True),
    ("100 <= ioa < 200", True),
    ("ioa in (1, 2, None)", True),
    ("time >= '2024-03-01 08:00'", True),
    ("error is None", True),
    ("negative", True),
    ("port == 2404", True),
    ("apci == 'U' or ca == 1", True),
    ("not ca == 7", False),
    ("ca != 7", False),
    ("ioa not in (1, 2)", False),
    ("'gap' in error", False),
    ("ssn == rsn", False),
    ("ca == 7 or 'gap' in error", False),
    ("ioa == 1.5", False),
    ("ca == 7 and 'gap' in error", True),
    ("True", False),
])
def test_what_is_pushed_down(expression: str, prunes: bool) -> None:
    flt = compile_filter(expression)
    assert flt.prunes is prunes
    assert pushdown_is_superset(flt, corpus().batch)


def test_false_pushes_down_to_nothing() -> None:
    table = pa.Table.from_batches([corpus().batch])
    assert table.filter(compile_filter("False").pushdown()).num_rows == 0
    assert table.filter(compile_filter("ca == 7 and False").pushdown()).num_rows == 0


def test_a_column_the_file_lacks_is_true() -> None:
    """A version-1 file has no ``kind`` (it is derived when read): not a reason to skip."""
    old = pa.schema([f for f in SCHEMA if f.name != "kind"])
    expr = compile_filter("kind == 'gap' and ca == 7").pushdown(old)
    assert "kind" not in str(expr) and "ca" in str(expr)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_pushdown_is_a_superset_of_random_filters(seed: int) -> None:
    try:
        flt = compile_filter(random_expression(random.Random(seed)))
    except FilterError:
        return
    assert pushdown_is_superset(flt, corpus().batch)


# -- row groups of one Parquet file ------------------------------------------------------


@pytest.fixture(scope="module")
def small_groups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A converted capture whose row groups hold 8 rows each (the bundled station capture,
    converted with small batches: row groups in capture order), written by ParquetSink."""
    out = tmp_path_factory.mktemp("pushdown") / "station.parquet"
    with ParquetSink(out) as sink:  # our writer: its statistics must serve the pushdown
        for batch in dissect(cli.STATION, batch_rows=8):  # whole APDUs
            sink.write(batch)
    return out


def read(path: Path, expression: str, pushdown: bool) -> pa.Table:
    flt = compile_filter(expression)
    parts = [flt.apply(b) for b in parquet_batches(path, 8, pushdown=flt if pushdown else None)]
    return pa.Table.from_batches(parts, schema=SCHEMA)


@pytest.mark.parametrize("expression", ["type_id == C_IC_NA_1", "apci == 'U'",
                                        "frame < 30", "time >= '2000-01-01'", "ioa > 100000"])
def test_parquet_batches_skip_row_groups_and_keep_the_rows(small_groups: Path,
                                                           expression: str) -> None:
    pushed, full = read(small_groups, expression, True), read(small_groups, expression, False)
    assert pushed.equals(full)
    fragment = pads.ParquetFileFormat().make_fragment(str(small_groups),
                                                      filesystem=pafs.LocalFileSystem())
    groups = pq.ParquetFile(small_groups).metadata.num_row_groups
    kept = row_groups(fragment, compile_filter(expression).pushdown())
    assert groups > 5
    if expression.startswith("time"):
        assert len(kept) == groups
    else:
        assert len(kept) < groups


@pytest.mark.parametrize("size", [1, 5])
def test_an_apdu_cut_over_row_groups_is_read_whole(tmp_path: Path, size: int) -> None:
    """A writer that is not ours (row groups of ``size`` rows): the station capture's
    two-object APDU (rows 4 and 5: IOAs 100 and 101) is cut over two row groups, and the
    group holding the rest of a matching APDU is read too."""
    table = dissect_table(cli.STATION)
    assert table.column("apdu")[4] == table.column("apdu")[5]
    assert table.column("ioa")[4:6].to_pylist() == [100, 101]
    path = tmp_path / "cut.parquet"
    pq.write_table(table, path, row_group_size=size)
    for expression in ("ioa == 100", "ioa == 101", "ioa in (101, 300)", "ioa > 100000"):
        assert read(path, expression, True).equals(read(path, expression, False)), expression
    assert read(path, "ioa == 101", True).num_rows == 2
