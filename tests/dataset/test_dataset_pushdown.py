"""Filter pushdown on a dataset: selective filters read fewer row groups, same rows.

The dataset holds two captures of sequential connections (one per stream, each with its own
common address, some with commands), converted with small row groups, so row groups are
stream- and time-ordered as in a real ring buffer. Row groups and bytes read are counted by
:func:`iec104.dataset.read.scan_plan` from pyarrow's fragments and row-group metadata; the
rows must equal the unpushed evaluation (the filter applied to every row, capture by
capture), also for hypothesis-generated filters of the fuzz harness.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iec104.codec import Cause, TypeId
from iec104.dataset import Converted, Options, batches, convert_many, load
from iec104.dataset.read import committed_files, scan_plan
from iec104.dataset.store import Store
from iec104.records.filter import FilterError, compile_filter
from iec104.records.journal import _row_groups
from tests.analyzer.test_analyzer import command
from tests.support import cli
from tests.support.conversation import START, Conversation, asdu, floating, write_pcap
from tests.support.fuzz import random_expression

KEY = ["capture", "frame", "apdu", "obj"]


def sequential(day: int, connections: int = 8) -> list[Conversation]:
    """Connections one after the other (stream n has CA 10 + n; odd ones send commands)."""
    convs = []
    for n in range(connections):
        start = START + dt.timedelta(days=day, seconds=60 * n)
        conv = Conversation(client=("10.0.0.1", 41000 + n), start=start).startdt()
        for k in range(30):
            conv.wait(0.2).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS,
                                         [floating(100 + k % 5, float(k))], ca=10 + n))
            if k % 8 == 7:
                conv.ack("c2s")
        if n % 2:
            command(conv, 3000 + n, ca=10 + n)
        convs.append(conv.ack("c2s").testfr())
    return convs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pushdown")
    captures = [str(write_pcap(root / f"ring_{d}.pcap", sequential(d))) for d in (0, 1)]
    results = convert_many(captures, str(root / "ds"), workers=0,
                           options=Options(batch_rows=12))
    assert all(isinstance(r, Converted) for r in results), results
    return root / "ds"


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(capture=df["capture"].astype("string"))
    return df.sort_values(KEY, na_position="first", kind="stable").reset_index(drop=True)


def unpushed(url: Path, expression: str) -> pd.DataFrame:
    """The filter applied to every row of each capture (nothing skipped)."""
    flt = compile_filter(expression)
    table = pa.Table.from_batches(list(batches(url)))
    names = pc.unique(table.column("capture").cast(pa.string())).to_pylist()
    parts = []
    for name in names:
        rows = table.filter(pc.equal(table.column("capture").cast(pa.string()), name))
        parts.append(pa.Table.from_batches([flt.apply(b) for b in
                                            rows.combine_chunks().to_batches()],
                                           schema=rows.schema))
    return load_like(pa.concat_tables(parts))


def load_like(table: pa.Table) -> pd.DataFrame:
    from iec104.dataset.read import _nullable

    return table.to_pandas(types_mapper=_nullable)


@pytest.mark.parametrize("expression", ["stream == 3", "ca == 12", "type_id == 45",
                                        "C_SC_NA_1 and ActCon", "ca in (11, 15)",
                                        "stream == 5 or ca == 10"])
def test_selective_filters_read_fewer_row_groups(dataset: Path, expression: str) -> None:
    full, plan = scan_plan(dataset), scan_plan(dataset, filter=expression)
    assert full.row_groups == full.total_row_groups > 40
    assert plan.files == full.files  # no time range: every footer is read ...
    assert plan.row_groups < full.row_groups / 2  # ... but few row groups
    assert plan.bytes < full.bytes / 2
    got = load(dataset, filter=expression)
    assert len(got)
    pd.testing.assert_frame_equal(canonical(got), canonical(unpushed(dataset, expression)))


def test_time_range_and_filter_prune_together(dataset: Path) -> None:
    day1 = (START + dt.timedelta(days=1)).isoformat()
    plan = scan_plan(dataset, start=day1, filter="stream == 2")
    every = scan_plan(dataset)
    assert plan.files < every.files  # the first day's partition is not opened
    got = load(dataset, start=day1, filter="stream == 2")
    assert set(got["stream"]) == {2} and got["time"].min() >= pd.Timestamp(day1)


def test_unselective_filters_read_everything(dataset: Path) -> None:
    full = scan_plan(dataset)
    for expression in ("not ca == 12", "'x' in value_text", "ca != 12", "ssn == rsn"):
        assert scan_plan(dataset, filter=expression).row_groups == full.row_groups


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_random_filters_give_the_unpushed_rows(dataset: Path, seed: int) -> None:
    expression = random_expression(random.Random(seed))
    try:
        compile_filter(expression)
    except FilterError:
        return
    pd.testing.assert_frame_equal(canonical(load(dataset, filter=expression)),
                                  canonical(unpushed(dataset, expression)))


def test_no_apdu_spans_two_row_groups(dataset: Path) -> None:
    store = Store(str(dataset))
    for path in committed_files(store):
        pf = pq.ParquetFile(path)
        ends = []
        for group in range(pf.metadata.num_row_groups):
            apdu = pf.read_row_group(group, columns=["apdu"]).column("apdu").drop_null()
            ends.append((apdu[0].as_py(), apdu[-1].as_py()) if len(apdu) else None)
        spans = [e for e in ends if e is not None]
        assert all(a[1] != b[0] for a, b in itertools.pairwise(spans)), path


def test_recorder_row_groups_end_at_apdu_boundaries() -> None:
    """The recorders regroup their flush batches into row groups of about 128k rows: cut
    where an APDU ends (three rows each here, 131072 is no multiple of 3)."""
    apdu = pa.array([i // 3 for i in range(300_000)], pa.int64())
    flushes = [pa.RecordBatch.from_arrays([apdu.slice(i, 1000)], ["apdu"])
               for i in range(0, 300_000, 1000)]
    groups = list(_row_groups(flushes))
    assert len(groups) == 3 and sum(g.num_rows for g in groups) == 300_000
    assert all(g.num_rows % 3 == 0 for g in groups)


def test_read_dir_with_a_filter(dataset: Path) -> None:
    proc = cli.run("read", dataset, "-Y", "stream == 3", "-T", "fields", "-e", "stream",
                   "-e", "apdu")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    want = unpushed(dataset, "stream == 3").drop_duplicates(["capture", "apdu"])
    assert len(lines) == len(want) and all(line.startswith("3\t") for line in lines)
