"""``iec104 convert``: Parquet written in row groups while reading, pandas round trip, schema
version in the metadata, --filter, several inputs, bad inputs and outputs, damaged captures,
the progress bar only on a terminal, constant memory. Real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from iec104.analyzer import SCHEMA, SCHEMA_VERSION, load, schema_version
from iec104.dissector import dissect_table
from tests.support.cli import COMMANDS, STATION, command, env, run, stderr_on_a_terminal


def test_round_trip_through_pandas(tmp_path: Path) -> None:
    out = tmp_path / "station.parquet"
    proc = run("convert", STATION, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    expected = dissect_table(STATION)
    apdus = len(set(expected.column("apdu").drop_null().to_pylist()))
    assert f"iec104 convert: {apdus} APDUs, {expected.num_rows} rows -> {out}" in proc.stderr
    df = pd.read_parquet(out)
    assert list(df.columns) == SCHEMA.names
    assert len(df) == expected.num_rows
    pd.testing.assert_frame_equal(df, expected.to_pandas())
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert df["apci"].dropna().isin(["I", "S", "U"]).all()
    # the analyzer's loader reads it too
    pd.testing.assert_frame_equal(load(out), df)
    assert not list(tmp_path.glob(".*partial"))


def test_schema_version_in_metadata(tmp_path: Path) -> None:
    out = tmp_path / "c.parquet"
    assert run("convert", COMMANDS, "-o", out, "-q").returncode == 0
    meta = pq.read_schema(out).metadata
    assert meta[b"iec104.schema_version"] == SCHEMA_VERSION.encode()
    assert schema_version(out) == SCHEMA_VERSION
    assert pq.read_schema(out).remove_metadata().equals(SCHEMA.remove_metadata())


def test_row_groups_are_written_while_reading(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    assert run("convert", STATION, "-o", out, "-q", "--batch-rows", "10").returncode == 0
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups >= 9
    assert all(meta.row_group(i).num_rows <= 20 for i in range(meta.num_row_groups))
    pd.testing.assert_frame_equal(pd.read_parquet(out), dissect_table(STATION).to_pandas())


def test_filter(tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    proc = run("convert", STATION, "-o", out, "--filter", "type_id == 36 or apci == 'S'")
    assert proc.returncode == 0, proc.stderr
    df = pd.read_parquet(out)
    assert len(df) and set(df["type_name"].dropna()) == {"M_ME_TF_1"}
    assert set(df["apci"]) == {"I", "S"}
    refused = run("convert", STATION, "-o", tmp_path / "x.parquet", "--filter", "exec('1')")
    assert refused.returncode == 2 and "not allowed" in refused.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_several_captures_are_one(tmp_path: Path) -> None:
    out = tmp_path / "both.parquet"
    proc = run("convert", STATION, COMMANDS, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    df = pd.read_parquet(out)
    one, two = dissect_table(STATION).to_pandas(), dissect_table(COMMANDS).to_pandas()
    assert len(df) == len(one) + len(two)
    assert df["apdu"].dropna().is_monotonic_increasing
    assert df["apdu"].dropna().nunique() == one["apdu"].nunique() + two["apdu"].nunique()
    # the second file's frames continue counting after the first file's
    assert df["frame"].iloc[len(one)] > one["frame"].max()
    assert df["stream"].nunique() == one["stream"].nunique() + two["stream"].nunique()


def test_gzip_capture(tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "station.pcap.gz"
    packed.write_bytes(gzip.compress(STATION.read_bytes()))
    out = tmp_path / "z.parquet"
    assert run("convert", packed, "-o", out, "-q").returncode == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), dissect_table(STATION).to_pandas())


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"", "empty file"),
    (b"\x0a\x0d\x0d\x0a\x1c\x00", "truncated pcapng Section Header Block"),
    (b"\x00" * 100, "not a pcap or pcapng capture"),
])
def test_bad_inputs_exit_2_and_write_nothing(tmp_path: Path, content: bytes | None,
                                             message: str) -> None:
    bad = tmp_path / "bad.pcap"
    if content is not None:
        bad.write_bytes(content)
    out = tmp_path / "out.parquet"
    # a bad file anywhere in the list: nothing is decoded, nothing written
    proc = run("convert", STATION, bad, "-o", out)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.startswith(f"iec104: {bad}"), proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_parquet_given_as_capture(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    assert run("convert", STATION, "-o", out, "-q").returncode == 0
    proc = run("convert", out, "-o", tmp_path / "again.parquet")
    assert proc.returncode == 2 and "it is a Parquet file" in proc.stderr


def test_bad_outputs_exit_2(tmp_path: Path) -> None:
    assert "is a directory" in run("convert", STATION, "-o", tmp_path).stderr
    missing = run("convert", STATION, "-o", tmp_path / "no" / "such" / "x.parquet")
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    same = tmp_path / "s.pcap"
    same.write_bytes(STATION.read_bytes())
    overwrite = run("convert", same, "-o", same)
    assert overwrite.returncode == 2 and "overwrite" in overwrite.stderr
    assert same.read_bytes() == STATION.read_bytes()
    usage = run("convert", STATION)
    assert usage.returncode == 2 and "-o" in usage.stderr


def test_truncated_last_record_keeps_every_whole_record(tmp_path: Path) -> None:
    data = COMMANDS.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[:-10])
    out = tmp_path / "cut.parquet"
    proc = run("convert", cut, "-o", out)
    assert proc.returncode == 1
    assert "iec104: warning: " in proc.stderr and "truncated" in proc.stderr
    df = pd.read_parquet(out)
    whole = dissect_table(COMMANDS).to_pandas()
    last = whole["frame"].max()
    # the last block was cut: every APDU of the frames before it is there, unchanged
    before = whole[(whole["frame"] < last) & whole["apdu"].notna()].reset_index(drop=True)
    kept = df[(df["frame"] < last) & df["apdu"].notna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    # not a terminal: no bar, only the closing line
    proc = run("convert", STATION, "-o", tmp_path / "a.parquet")
    assert "\r" not in proc.stderr and "B/s" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    # stderr on a pseudo-terminal: tqdm draws its bar there
    code, text = stderr_on_a_terminal("convert", STATION, "-o", tmp_path / "b.parquet")
    assert code == 0
    assert "iec104 convert:" in text and "\r" in text and "B/s" in text, text


def _generate(path: Path, apdus: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        import dissect as bench
    finally:
        sys.path.pop(0)
    bench.generate(path, apdus)


def test_memory_stays_bounded(tmp_path: Path) -> None:
    """Peak RSS of a convert does not grow with the capture (row groups flushed)."""
    def peak(path: Path) -> float:
        out = tmp_path / f"{path.stem}.parquet"
        proc = subprocess.Popen([*command(), "convert", str(path), "-o", str(out), "-q",
                                 "--batch-rows", "4096"], env=env(), stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        return usage.ru_maxrss / 1024

    small, large = tmp_path / "small.pcap", tmp_path / "large.pcap"
    _generate(small, 5_000)
    _generate(large, 60_000)
    small_mb, large_mb = peak(small), peak(large)
    assert large_mb < small_mb + 40, (small_mb, large_mb)
    table = pq.read_table(tmp_path / "large.parquet", columns=["apdu"])
    assert pa.compute.count_distinct(table.column("apdu")).as_py() >= 60_000


def test_worker_processes_give_the_same_rows(tmp_path: Path) -> None:
    """--jobs N: ASDUs decoded in worker processes; the rows are those of --jobs 0."""
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    assert run("convert", STATION, COMMANDS, "-o", one, "-q").returncode == 0
    proc = run("convert", STATION, COMMANDS, "-o", two, "-q", "--jobs", "2",
               "--batch-rows", "64")
    assert proc.returncode == 0, proc.stderr
    assert pq.read_table(two).equals(pq.read_table(one))
    assert pq.ParquetFile(two).metadata.num_row_groups > 1
    assert run("convert", STATION, "-o", two, "--jobs", "-1").returncode == 2


@pytest.mark.parametrize("rows_per_batch", [1, 7, 65536])
def test_apdu_count_counts_changes(rows_per_batch: int) -> None:
    """The closing line's APDU count (distinct ``apdu`` numbers per batch, counted where
    they change) is a hash count's: batches in order and out of order, with gap and event
    rows (no ``apdu``), with malformed rows (one each), empty, as tables of chunks."""
    import pyarrow.compute as pc

    from iec104.cli.convert import _count_apdus
    from iec104.codec import Malformed
    from iec104.records.builder import Endpoints, RecordBuilder

    ep = Endpoints(0, "c2s", "10.0.0.1", 40000, "10.0.0.2", 2404)
    extra = RecordBuilder(first_apdu=10**6)
    extra.add_gap(None, 1, ep, 10)
    extra.add_malformed(None, 2, ep, Malformed(0, b"\x68\x01", "short"))
    extra.add_event(None, 3, ep, "proxy: event")
    extra.add_malformed(None, 4, ep, Malformed(9, b"\x00", "junk"))
    station = dissect_table(STATION)
    table = pa.concat_tables([station, pa.Table.from_batches([extra.take_batch()]),
                              station.slice(0, 0)])
    batches = table.combine_chunks().to_batches(max_chunksize=rows_per_batch)
    whole = pa.concat_batches(batches)
    reverse = whole.take(pa.array(range(len(whole))[::-1]))
    for batch in [*batches, whole.slice(0, 0), reverse, whole.slice(len(whole) - 3)]:
        expected = pc.count_distinct(batch.column("apdu")).as_py()
        assert _count_apdus(batch) == expected
        assert _count_apdus(pa.Table.from_batches([batch, batch.slice(0, 0)])) == expected
    # (an APDU whose rows two batches share counts in both, as it always did)
    assert _count_apdus(whole) == len(set(station.column("apdu").drop_null().to_pylist())) + 2
