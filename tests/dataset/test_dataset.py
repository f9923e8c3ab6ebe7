"""Datasets of many captures (iec104.dataset, ``iec104 convert --dataset``, ``iec104 sql``).

54 real captures (tests/support/captureset.py: a ring buffer of one conversation cut at
packet boundaries across midnight, 28 single-connection captures on several days, two
different files both called capture.pcap) are converted into a dataset, which must hold
exactly the rows of separate single-capture conversions plus ``capture``; reruns, changed
captures, kill -9, a real ``dask scheduler`` + ``dask worker`` pair and a ``file://`` URL
must all give the same dataset.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from iec104.capture.errors import CaptureWarning
from iec104.dataset import Converted, connect, convert_many, load
from iec104.dataset.layout import MANIFEST, capture_name, file_digest
from iec104.dataset.read import _nullable, arrow_dataset
from iec104.dataset.run import COMMIT_SECONDS
from iec104.dataset.store import Store
from iec104.dissector import dissect_table
from tests.support import cli
from tests.support.captureset import write_capture_set

KEY = ["capture", "frame", "apdu", "obj", "direction", "error"]


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_capture_set(tmp_path_factory.mktemp("captures"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, captures: list[Path]) -> Path:
    out = tmp_path_factory.mktemp("reference") / "ds"
    results = convert_many([str(p) for p in captures], str(out), workers=0)
    assert all(isinstance(r, Converted) for r in results), results
    return out


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order, whatever the partition and file order."""
    df = df.drop(columns=[c for c in ("date",) if c in df.columns])
    df = df.assign(capture=df["capture"].astype("string"))
    return df.sort_values(KEY, na_position="first", kind="stable").reset_index(drop=True)


def name_of(path: Path) -> str:
    with open(path, "rb") as fh:
        return capture_name(str(path), file_digest(fh))


def manifest(url: Path | str) -> pd.DataFrame:
    table = Store(str(url)).read_manifest().to_pandas()
    return table.drop(columns=["converted"]).sort_values("capture").reset_index(drop=True)


def test_fifty_captures_give_the_rows_of_single_converts(captures: list[Path],
                                                         reference: Path) -> None:
    assert len(captures) >= 50
    df = load(reference)
    assert isinstance(df["capture"].dtype, pd.CategoricalDtype)
    assert str(df["ssn"].dtype) == "Int32" and str(df["apci"].dtype) == "string"
    for path in captures:
        single = dissect_table(path).to_pandas(types_mapper=_nullable)
        mine = df[df["capture"] == name_of(path)].drop(columns=["capture"])
        key = [c for c in KEY if c != "capture"]
        pd.testing.assert_frame_equal(
            mine.sort_values(key, na_position="first").reset_index(drop=True),
            single.sort_values(key, na_position="first").reset_index(drop=True))
    # the ring buffer crosses midnight: its rows are in two partitions
    days = connect(reference).sql("SELECT DISTINCT date FROM iec104 WHERE capture LIKE "
                                  "'ring_%' ORDER BY 1").fetchall()
    assert [str(d) for (d,) in days] == ["2024-03-01", "2024-03-02"]


def test_single_convert_cli_rows_plus_capture(tmp_path: Path, captures: list[Path],
                                              reference: Path) -> None:
    df = load(reference)
    for path in (captures[0], captures[30], captures[-1]):
        out = tmp_path / f"{path.stem}.parquet"
        assert cli.run("convert", path, "-o", out, "-q").returncode == 0
        single = pq.read_table(out).to_pandas(types_mapper=_nullable)
        mine = df[df["capture"] == name_of(path)].drop(columns=["capture"])
        pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                      single.reset_index(drop=True))


def test_capture_stream_pairs_add_up(captures: list[Path], reference: Path) -> None:
    con = connect(reference)
    (pairs, apdus, rows), = con.sql(
        "SELECT count(DISTINCT (capture, stream)), count(DISTINCT (capture, apdu)), count(*) "
        "FROM iec104").fetchall()
    expected = [dissect_table(p) for p in captures]
    assert pairs == sum(len(set(t.column("stream").to_pylist())) for t in expected)
    assert apdus == sum(len(set(t.column("apdu").drop_null().to_pylist())) for t in expected)
    assert rows == sum(t.num_rows for t in expected)
    (streams, apdus2, rows2, n), = con.sql(
        "SELECT sum(streams), sum(apdus), sum(rows), count(*) FROM captures").fetchall()
    assert (streams, apdus2, rows2, n) == (pairs, apdus, rows, len(captures))
    # the two files called capture.pcap are two captures
    same = con.sql("SELECT capture FROM captures WHERE capture LIKE 'capture.pcap@%'").fetchall()
    assert len(same) == 2


def test_rerun_adds_nothing(tmp_path: Path, captures: list[Path], reference: Path) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(reference, ds)
    before = {p.relative_to(ds): p.read_bytes() for p in ds.rglob("*") if p.is_file()}
    proc = cli.run("convert", *captures, "--dataset", ds, "--workers", "0")
    assert proc.returncode == 0, proc.stderr
    assert f"0 captures converted, {len(captures)} already in the dataset" in proc.stderr
    after = {p.relative_to(ds): p.read_bytes() for p in ds.rglob("*") if p.is_file()}
    assert after == before


def test_changed_capture_is_replaced(tmp_path: Path, captures: list[Path]) -> None:
    mine = [tmp_path / f"c{n}.pcap" for n in range(3)]
    for src, dst in zip(captures[30:33], mine):
        shutil.copy(src, dst)
    ds = tmp_path / "ds"
    convert_many([str(p) for p in mine], str(ds), workers=0)
    old = name_of(mine[1])
    old_files = set(manifest(ds).set_index("capture").loc[old, "files"])
    shutil.copy(captures[40], mine[1])  # the file changed
    results = convert_many([str(p) for p in mine], str(ds), workers=0)
    assert [type(r).__name__ for r in results].count("Converted") == 1
    m = manifest(ds)
    assert len(m) == 3 and old not in set(m["capture"]) and name_of(mine[1]) in set(m["capture"])
    assert not any((ds / f).exists() for f in old_files)
    df = load(ds)
    assert old not in set(df["capture"].astype(str))
    assert len(df[df["capture"] == name_of(mine[1])]) == dissect_table(captures[40]).num_rows


def test_same_content_twice_is_converted_once(tmp_path: Path, captures: list[Path]) -> None:
    copy = tmp_path / "copy.pcap"
    shutil.copy(captures[5], copy)
    results = convert_many([str(captures[5]), str(copy)], str(tmp_path / "ds"), workers=0)
    assert sorted(type(r).__name__ for r in results) == ["Converted", "Skipped"]
    assert len(manifest(tmp_path / "ds")) == 1


def test_manifest_writes_follow_the_clock_and_a_kill_between_them_loses_nothing(
        tmp_path: Path, captures: list[Path]) -> None:
    """The manifest is written when a result arrives and COMMIT_SECONDS have passed since
    the last write (on the clock given), and at the end; the dataset as a kill between two
    writes would leave it shows the captures of the last write, and a rerun completes it."""
    sources = [str(p) for p in captures[:8]]
    ds, killed = tmp_path / "ds", tmp_path / "killed"
    now = 0.0
    committed: list[int] = []  # manifest rows on disk as each result arrives

    def on_result(result: object) -> None:
        nonlocal now
        committed.append(Store(str(ds)).read_manifest().num_rows)
        if len(committed) == 3:  # two captures published, not committed
            shutil.copytree(ds, killed)
        if len(committed) >= 5:
            now += COMMIT_SECONDS

    results = convert_many(sources, str(ds), workers=0, on_result=on_result,
                           clock=lambda: now)
    assert all(isinstance(r, Converted) for r in results), results
    assert committed == [1, 1, 1, 1, 1, 6, 7, 8]
    assert Store(str(ds)).read_manifest().num_rows == 8  # the last write, at the end
    assert len(manifest(killed)) == 1
    listed = {f for files in manifest(killed)["files"] for f in files}
    assert listed < {str(p.relative_to(killed)) for p in killed.glob("date=*/*.parquet")}
    assert len(load(killed)) == manifest(killed)["rows"].sum()  # the orphans are not read
    rerun = convert_many(sources, str(killed), workers=0)
    assert [type(r).__name__ for r in rerun].count("Converted") == 7
    pd.testing.assert_frame_equal(canonical(load(killed)), canonical(load(ds)))
    assert sorted(p.relative_to(killed) for p in killed.glob("date=*/*.parquet")) == \
        sorted(p.relative_to(ds) for p in ds.glob("date=*/*.parquet"))


def test_kill_9_mid_run_then_rerun_gives_the_same_dataset(tmp_path: Path,
                                                          captures: list[Path],
                                                          reference: Path) -> None:
    ds = tmp_path / "ds"
    proc = subprocess.Popen([*cli.command(), "convert", *map(str, captures), "--dataset",
                             str(ds), "--workers", "0", "-q"], env=cli.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (ds / MANIFEST).exists() and Store(str(ds)).read_manifest().num_rows >= 8:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the conversion ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    # readable as it is: only complete files are visible, the committed captures are whole
    committed = manifest(ds)
    assert 8 <= len(committed) < len(captures)
    for path in ds.glob("date=*/*.parquet"):
        pq.read_metadata(path)
    partial = load(ds)
    assert set(partial["capture"].astype(str)) <= set(committed["capture"])
    assert len(partial) == committed["rows"].sum()
    rerun = cli.run("convert", *captures, "--dataset", ds, "--workers", "0")
    assert rerun.returncode == 0, rerun.stderr
    pd.testing.assert_frame_equal(canonical(load(ds)), canonical(load(reference)))
    pd.testing.assert_frame_equal(manifest(ds).drop(columns=["source"]),
                                  manifest(reference).drop(columns=["source"]))
    assert not (ds / "_staging").exists() or not any((ds / "_staging").iterdir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_dask_scheduler_and_workers_give_the_dataset_of_one_worker(
        tmp_path: Path, captures: list[Path], reference: Path) -> None:
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host",
                               "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              env=cli.env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address,
                                       "--nworkers", "2", "--nthreads", "1", "--host",
                                       "127.0.0.1", "--no-dashboard"],
                                      env=cli.env(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        remote = cli.run("convert", *captures, "--dataset", tmp_path / "remote",
                         "--scheduler", address, timeout=300)
        assert remote.returncode == 0, remote.stderr
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    one = cli.run("convert", *captures, "--dataset", tmp_path / "one", "--workers", "1",
                  timeout=300)
    assert one.returncode == 0, one.stderr
    pd.testing.assert_frame_equal(canonical(load(tmp_path / "remote")),
                                  canonical(load(tmp_path / "one")))
    pd.testing.assert_frame_equal(canonical(load(tmp_path / "one")), canonical(load(reference)))
    assert manifest(tmp_path / "remote").drop(columns=["source"]).equals(
        manifest(tmp_path / "one").drop(columns=["source"]))


def test_file_url_gives_the_same_dataset(tmp_path: Path, captures: list[Path],
                                         reference: Path) -> None:
    some = captures[20:26]
    url = (tmp_path / "ds").as_uri()
    proc = cli.run("convert", *some, "--dataset", url, "--workers", "0")
    assert proc.returncode == 0, proc.stderr
    names = {name_of(p) for p in some}
    ref = load(reference)
    ref = ref[ref["capture"].astype(str).isin(names)]
    pd.testing.assert_frame_equal(canonical(load(url)), canonical(ref))
    assert len(load(tmp_path / "ds")) == len(ref)


def test_load_prunes_partitions_and_pushes_the_time_range_down(reference: Path) -> None:
    full = load(reference)
    start, end = "2024-03-02T01:00", "2024-03-02T05:00"
    got = load(reference, start=start, end=end, columns=["capture", "time", "ioa", "value"])
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    want = full[(full["time"] >= lo) & (full["time"] < hi)][["capture", "time", "ioa", "value"]]
    pd.testing.assert_frame_equal(canonical(got.assign(frame=0, apdu=0, obj=0, direction="",
                                                       error=""))[list(want.columns)],
                                  canonical(want.assign(frame=0, apdu=0, obj=0, direction="",
                                                        error=""))[list(want.columns)],
                                  check_categorical=False)
    assert len(got) and len(got) < len(full)
    import datetime as dt

    import pyarrow.dataset as pads

    dataset = arrow_dataset(reference)
    every = list(dataset.get_fragments())
    day = list(dataset.get_fragments(filter=pads.field("date") == dt.date(2024, 3, 2)))
    assert 0 < len(day) < len(every)  # whole files skipped by the partition
    commands = load(reference, filter="type_id == C_SC_NA_1")
    assert set(commands["type_id"].dropna()) == {45}
    assert len(commands) == (full["type_id"] == 45).sum()


def test_old_parquet_files_get_capture_from_their_name(tmp_path: Path,
                                                       captures: list[Path]) -> None:
    out = tmp_path / "substation_7.parquet"
    assert cli.run("convert", captures[0], "-o", out, "-q").returncode == 0
    df = load(out)
    assert set(df["capture"].astype(str)) == {"substation_7"}
    assert len(df) == dissect_table(captures[0]).num_rows


def test_damaged_inputs_are_skipped_and_reported(tmp_path: Path, captures: list[Path]) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all" * 10)
    truncated = tmp_path / "truncated.pcap"
    truncated.write_bytes(captures[31].read_bytes()[:-7])
    proc = cli.run("convert", captures[30], junk, truncated, "--dataset", tmp_path / "ds",
                   "--workers", "0")
    assert proc.returncode == 1
    assert "junk.pcap" in proc.stderr and "skipped" in proc.stderr
    assert "truncated.pcap" in proc.stderr
    m = manifest(tmp_path / "ds")
    assert len(m) == 2 and m["problem"].notna().sum() == 1


@pytest.mark.parametrize("args, message", [
    (["--filter", "type_id == 1"], "--filter"),
    (["--jobs", "2"], "--jobs"),
    (["--workers", "-1"], "--workers"),
])
def test_bad_dataset_options_exit_2(tmp_path: Path, captures: list[Path], args: list[str],
                                    message: str) -> None:
    proc = cli.run("convert", captures[0], "--dataset", tmp_path / "ds", *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "ds").exists()


def test_dataset_dir_must_be_a_dataset(tmp_path: Path, captures: list[Path]) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    proc = cli.run("convert", captures[0], "--dataset", tmp_path / "other")
    assert proc.returncode == 2 and "no dataset" in proc.stderr
    proc = cli.run("convert", captures[0], "--dataset", tmp_path / "other" / "notes.txt")
    assert proc.returncode == 2 and "is a file" in proc.stderr
    proc = cli.run("convert", captures[0], "-o", tmp_path / "x.parquet", "--workers", "2")
    assert proc.returncode == 2 and "--dataset" in proc.stderr


def test_sql(tmp_path: Path, reference: Path) -> None:
    proc = cli.run("sql", reference, "SELECT capture, count(*) AS n FROM iec104 "
                   "WHERE capture LIKE 'station_00%' GROUP BY ALL")
    assert proc.returncode == 0, proc.stderr
    assert "station_00.pcapng@" in proc.stdout and " n" in proc.stdout.splitlines()[0]
    csv = tmp_path / "answer.csv"
    assert cli.run("sql", reference, "SELECT * FROM captures", "-o", csv).returncode == 0
    assert len(pd.read_csv(csv)) == len(manifest(reference))
    parquet = tmp_path / "answer.parquet"
    assert cli.run("sql", reference, "SELECT capture, time FROM iec104 WHERE apci = 'I'",
                   "-o", parquet).returncode == 0
    assert pq.read_metadata(parquet).num_rows == (load(reference)["apci"] == "I").sum()
    bad = cli.run("sql", reference, "SELEC 1")
    assert bad.returncode == 2 and bad.stderr.startswith("iec104: SQL:")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    not_ds = cli.run("sql", tmp_path, "SELECT 1")
    assert not_ds.returncode == 2 and "not a dataset" in not_ds.stderr


def test_read_summary_report_of_a_dataset(tmp_path: Path, reference: Path) -> None:
    read = cli.run("read", reference, "--start", "2024-03-02T03:00", "--end",
                   "2024-03-02T03:00:00.3")
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() and all("2024-03-02 03:00:00" in line
                                       for line in read.stdout.splitlines())
    tree = cli.run("read", reference, "-V", "-c", "1", "-Y", "type_id == C_SC_NA_1")
    assert tree.returncode == 0 and ", capture " in tree.stdout and "@" in tree.stdout
    summary = cli.run("summary", reference)
    assert summary.returncode == 0, summary.stderr
    con = connect(reference)
    (pairs, apdus), = con.sql("SELECT count(DISTINCT (capture, stream)), "
                              "count(DISTINCT (capture, apdu)) FROM iec104").fetchall()
    assert "captures                         54" in summary.stdout
    assert f"APDUs                            {apdus}\n" in summary.stdout
    assert f"connections (capture, stream)    {pairs}" in summary.stdout
    assert f"== Connections ({pairs}) ==" in summary.stdout
    report = cli.run("report", reference, "-o", tmp_path / "r.html", "--start", "2024-03-03")
    assert report.returncode == 0, report.stderr
    assert "<html" in (tmp_path / "r.html").read_text()


def test_rows_without_time_go_to_the_null_partition(tmp_path: Path) -> None:
    from tests.dissect.test_dissect_bad_timestamps import flip_timestamps

    flipped = tmp_path / "flipped.pcapng"
    flip_timestamps(cli.COMMANDS, flipped, [20, 21, 22])
    proc = cli.run("convert", flipped, "--dataset", tmp_path / "ds", "--workers", "0")
    assert proc.returncode == 1 and "flipped.pcapng" in proc.stderr  # damage reported
    assert list((tmp_path / "ds").glob("date=__HIVE_DEFAULT_PARTITION__/*.parquet"))
    df = load(tmp_path / "ds")
    assert df["time"].isna().any() and df["time"].notna().any()
    with pytest.warns(CaptureWarning):
        assert len(df) == dissect_table(flipped).num_rows
    (nulls,), = connect(tmp_path / "ds").sql(
        "SELECT count(*) FROM iec104 WHERE date IS NULL").fetchall()
    assert nulls == df["time"].isna().sum()
    assert manifest(tmp_path / "ds")["problem"].notna().all()


def test_progress_bar_counts_captures_on_a_terminal(tmp_path: Path,
                                                    captures: list[Path]) -> None:
    code, text = cli.stderr_on_a_terminal("convert", *captures[:3], "--dataset",
                                          tmp_path / "ds", "--workers", "0", columns=120)
    assert code == 0
    assert "\r" in text and "/3 [" in text and "capture/s" in text and "APDUs" in text, text


def test_unreachable_scheduler_exits_2_and_writes_nothing(tmp_path: Path,
                                                          captures: list[Path]) -> None:
    env = {**cli.env(), "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    proc = subprocess.run([*cli.command(), "convert", str(captures[0]), "--dataset",
                           str(tmp_path / "ds"), "--scheduler", f"tcp://127.0.0.1:{_free_port()}"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach the Dask scheduler" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "ds").exists()
