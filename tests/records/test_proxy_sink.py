"""The recorders' crash-safe Parquet directory: journal, rotation, recovery, LogWriter."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from iec104.analyzer import load
from iec104.codec import (
    ASDU,
    Cause,
    FloatingValue,
    IFrame,
    InformationObject,
    Quality,
    TypeId,
    encode_apdu,
    encode_asdu,
)
from iec104.recorder import JournaledParquetSink, LogWriter, read_journal, recover
from iec104.records.builder import Endpoints
from iec104.records.schema import SCHEMA

pytestmark = pytest.mark.timeout(60)

EP = Endpoints(0, "c2s", "10.0.0.1", 40000, "10.0.0.2", 2404)
GOOD = Quality(False, False, False, False, False)


def rows(n: int, start: int = 0) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [{"stream": 0, "apdu": start + i, "raw": b"\x68\x04\x01\x00\x00\x00"} for i in range(n)],
        schema=SCHEMA)


def apdus(n: int) -> bytes:
    out = bytearray()
    for i in range(n):
        asdu = encode_asdu(ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
                                (InformationObject(i, FloatingValue(float(i)), GOOD),)))
        out += encode_apdu(IFrame(i % 32768, 0, asdu))
    return bytes(out)


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def visible(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_open_segment_is_hidden_and_directory_always_readable(tmp_path: Path) -> None:
    sink = JournaledParquetSink(tmp_path, max_bytes=1 << 30)
    sink.write(rows(3))
    assert visible(tmp_path) == []
    assert sink.journal is not None and sink.journal.name.startswith(".")
    # pyarrow/pandas skip the hidden journal: an empty dataset is no error here
    sink.write(rows(2, 3))
    first = sink.rotate()
    assert first is not None and visible(tmp_path) == [first.name]
    sink.write(rows(4, 5))  # a new open segment beside a complete file
    assert pd.read_parquet(tmp_path)["apdu"].tolist() == list(range(5))
    assert load(tmp_path)["apdu"].tolist() == list(range(5))
    assert sink.read()["apdu"].tolist() == list(range(9))  # includes the open journal
    sink.close()
    assert sorted(pd.read_parquet(tmp_path)["apdu"]) == list(range(9))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_rotation_by_size_and_by_age(tmp_path: Path) -> None:
    sink = JournaledParquetSink(tmp_path / "size", max_bytes=20_000)
    for i in range(40):
        sink.write(rows(50, i * 50))
    sink.close()
    assert len(sink.files) > 2
    assert sorted(pd.read_parquet(tmp_path / "size")["apdu"]) == list(range(2000))

    clock = FakeClock()
    sink = JournaledParquetSink(tmp_path / "age", max_seconds=0.2, clock=clock)
    sink.write(rows(1))
    clock.now += 0.19
    assert sink.tick() is None
    assert sink.seconds_to_rotation() == pytest.approx(0.01)
    clock.now += 0.01
    done = sink.tick()  # what the writer thread calls when idle
    assert done is not None and sink.journal is None
    sink.write(rows(1, 1))
    sink.close()
    assert len(sink.files) == 2


def test_journal_cut_anywhere_yields_the_batches_before_the_cut(tmp_path: Path) -> None:
    sink = JournaledParquetSink(tmp_path, max_bytes=1 << 30)
    sizes = []
    for i in range(3):
        sink.write(rows(10, i * 10))
        assert sink.journal is not None
        sizes.append(sink.journal.stat().st_size)
    assert sink.journal is not None
    data = sink.journal.read_bytes()
    cut_file = tmp_path / "cut.arrows"
    for cut in range(0, len(data), 7):
        cut_file.write_bytes(data[:cut])
        batches, problem = read_journal(cut_file)
        complete = sum(1 for s in sizes if s <= cut)
        assert len(batches) == complete, cut
        assert (problem is None) == (cut in (0, *sizes)) or cut == 0
    sink.close()


def test_recover_converts_dead_journals_and_leaves_live_ones(tmp_path: Path) -> None:
    live = JournaledParquetSink(tmp_path, max_bytes=1 << 30, prefix="live")
    live.write(rows(5))
    assert live.journal is not None
    # a journal left by a killed writer: cut in the middle of its third batch
    dead = JournaledParquetSink(tmp_path / "tmp", max_bytes=1 << 30, prefix="dead")
    for i in range(3):
        dead.write(rows(10, 100 + i * 10))
    assert dead.journal is not None
    data = dead.journal.read_bytes()
    killed = tmp_path / ".dead-20000101T000000Z-abcdef-00000.arrows"
    killed.write_bytes(data[:-50])
    dead.close()
    # and one whose Parquet file was completed just before the crash
    done = tmp_path / ".done-20000101T000000Z-abcdef-00000.arrows"
    done.write_bytes(data)
    (tmp_path / "done-20000101T000000Z-abcdef-00000.parquet").write_bytes(
        next(iter(dead.files)).read_bytes())

    written = recover(tmp_path)
    assert [p.name for p in written] == ["dead-20000101T000000Z-abcdef-00000.parquet"]
    assert pd.read_parquet(written[0])["apdu"].tolist() == list(range(100, 120))
    assert not killed.exists() and not done.exists()
    assert live.journal.exists()  # held by a live writer (flock)
    live.close()


def test_a_new_sink_recovers_what_a_dead_one_left(tmp_path: Path) -> None:
    journal = tmp_path / ".x-20000101T000000Z-abcdef-00000.arrows"
    with open(journal, "wb") as f, pa.ipc.new_stream(f, SCHEMA) as w:
        w.write_batch(rows(7))
    fd = os.open(journal, os.O_RDONLY)
    try:  # while someone holds it, it is not touched
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert JournaledParquetSink(tmp_path).recovered == []
    finally:
        os.close(fd)
    sink = JournaledParquetSink(tmp_path)
    assert [p.name for p in sink.recovered] == ["x-20000101T000000Z-abcdef-00000.parquet"]
    assert len(pd.read_parquet(tmp_path)) == 7


def test_logwriter_flushes_by_rows_and_time_and_numbers_apdus_across_flushes(
        tmp_path: Path) -> None:
    clock = FakeClock()
    writer = LogWriter(tmp_path, flush_rows=100, flush_seconds=0.2, clock=clock)
    dec = writer.decoder(EP)
    data = apdus(250)
    for i in range(0, len(data), 1000):  # arbitrary chunks, as TCP delivers them
        dec.feed(time.time_ns(), None, data[i:i + 1000])
        writer.maybe_flush()
    assert writer.builder.rows < 100  # two flushes by row count happened
    writer.sync()
    assert writer.stats["rows_written"] >= 200
    clock.now += 0.19
    assert not writer.maybe_flush()
    clock.now += 0.01
    assert writer.maybe_flush()  # by age
    df = writer.dataframe()
    assert df["apdu"].tolist() == list(range(250))
    assert df["ioa"].tolist() == list(range(250))
    writer.release(dec)
    files = writer.close()
    assert len(files) == 1 and pd.read_parquet(tmp_path)["apdu"].tolist() == list(range(250))
    assert writer.dataframe()["apdu"].tolist() == list(range(250))  # after close: from files


def test_logwriter_event_rows(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    writer.event(123, EP, "proxy: upstream 10.0.0.2:2404 unreachable", b"\x01")
    writer.close()
    df = pd.read_parquet(tmp_path)
    assert df.loc[0, "error"] == "proxy: upstream 10.0.0.2:2404 unreachable"
    assert df.loc[0, "raw"] == b"\x01" and pd.isna(df.loc[0, "apdu"])
    assert df.loc[0, "direction"] == "c2s" and df.loc[0, "dport"] == 2404


def test_logwriter_reports_an_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        LogWriter(blocker / "log")


def test_logwriter_keeping_its_builder_for_stream_decoder(tmp_path: Path) -> None:
    from iec104.records.decoder import DirectionDecoder

    writer = LogWriter(tmp_path, flush_rows=50, swap_builders=False)
    builder = writer.builder
    dec = DirectionDecoder(EP, builder)  # a producer holding the builder itself
    data = apdus(120) + b"\x00\x01"
    for i in range(0, len(data), 500):
        dec.feed(time.time_ns(), 7, data[i:i + 500])
        writer.maybe_flush()
    dec.close(time.time_ns(), 8)
    assert writer.builder is builder
    writer.close()
    df = pd.read_parquet(tmp_path)
    assert df["apdu"].tolist() == list(range(121))
    assert writer.errors == 1 and df["error"].notna().sum() == 1
    assert set(df["frame"]) == {7}  # the garbage was reported when fed, not at close


def test_logwriter_detecting_field_sizes_holds_rows_back_at_most_detect_seconds(
        tmp_path: Path) -> None:
    from iec104.records.profiles import DetectingBuilder

    clock = FakeClock()
    writer = LogWriter(tmp_path, profile=None, swap_builders=False, clock=clock,
                       detect_seconds=10.0)
    assert type(writer.front) is DetectingBuilder and writer.front.target is writer.builder
    dec = writer.decoder(EP)
    dec.feed(time.time_ns(), None, apdus(5))  # fewer I-frames than detection samples
    writer.event(1, EP, "proxy: an event after them")  # waits its turn behind them
    for after in (0.0, 4.9, 9.9):  # seconds since the first maybe_flush that saw them
        clock.now = 1000.0 + after
        writer.maybe_flush()
        assert writer.builder.rows == 0 and writer.front.queued
    clock.now = 1010.0
    writer.maybe_flush()  # 10 s: decided with the 5 I-frames it has
    assert not writer.front.queued
    writer.close()
    df = pd.read_parquet(tmp_path)
    assert df["ioa"].tolist()[:5] == list(range(5)) and df["error"].tolist()[-1] == (
        "proxy: an event after them")
    assert set(df["profile"].dropna()) == {"2/2/3"} and df["profile_confidence"].notna().any()


def test_logwriter_detecting_field_sizes_needs_a_kept_builder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="swap_builders=False"):
        LogWriter(tmp_path, profile=None)
