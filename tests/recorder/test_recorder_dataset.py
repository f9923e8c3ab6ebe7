"""The recorders write the dataset layout (issue 13): one dataset spans captures and logs.

A dataset directory first gets a converted capture (``iec104 convert --dataset``); then a real
``iec104 proxy -o DIR`` process (between raw sockets) and a real ``iec104 capture -o DIR``
(dumpcap on ``lo``, root only) log into the same directory. ``iec104 sql DIR`` (a real
process) and :func:`iec104.load` must see every source with its own ``capture`` value, a
rerun of ``convert --dataset`` must add nothing and remove no log file, and a proxy killed
with SIGKILL leaves a readable dataset that :func:`iec104.recorder.recover` completes.
Flat log directories of older recorders stay readable.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import iec104
from iec104.codec import TypeId
from iec104.recorder import LogWriter, read_journal, recover
from tests.conftest import REPO_ROOT, in_ci
from tests.recorder.test_proxy_process import (
    Streamer,
    log_apdus,
    start_proxy,
    stop_proxy,
    streamer,  # noqa: F401 -- the fixture
)

pytestmark = pytest.mark.timeout(240)

CAPTURE = REPO_ROOT / "captures" / "station.pcap"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iec104.cli", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset holding one converted capture (copied by each test)."""
    out = tmp_path_factory.mktemp("converted") / "ds"
    res = cli("convert", str(CAPTURE), "--dataset", str(out), "--workers", "1", "-q")
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture
def dataset(converted: Path, tmp_path: Path) -> Path:
    shutil.copytree(converted, tmp_path / "ds")
    return tmp_path / "ds"


def sql(directory: Path, query: str) -> list[dict[str, str]]:
    """The answer of ``iec104 sql DIR QUERY`` (a real process, through its CSV output)."""
    out = directory.parent / f"answer-{time.monotonic_ns()}.csv"
    res = cli("sql", str(directory), query, "-o", str(out))
    assert res.returncode == 0, res.stderr
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


def rows_per_capture(directory: Path) -> dict[str, int]:
    return {r["capture"]: int(r["n"]) for r in sql(
        directory, "SELECT capture, count(*) AS n FROM iec104 GROUP BY ALL")}


def log_files(directory: Path) -> list[Path]:
    """The recorders' files: everything in the partitions not named by the converter."""
    from iec104.dataset.layout import is_capture_file

    return sorted(p for p in directory.glob("date=*/*.parquet") if not is_capture_file(p.name))


def journal_ready_for_kill(dataset: Path, streamer: Streamer) -> bool:
    """Pause the outstation once enough went through; True when, with nothing more in
    flight, the logger wrote a complete file and holds rows in its open journal."""
    if len(streamer.received) < 2_000_000 or not log_files(dataset):
        return False
    streamer.pause()
    sent = streamer.sent * len(Streamer.frame(0))
    settle = time.monotonic() + 10
    while len(streamer.received) < sent:  # the proxy forwards what was in flight
        assert time.monotonic() < settle, "the proxy stopped forwarding"
        time.sleep(0.01)
    # the logger idles once it flushed (--flush-seconds 0.2): the same files twice in a row
    state = None
    while state != (state := journal_state(dataset)):
        time.sleep(0.5)
    return any(rows for _, rows in state)


def journal_state(dataset: Path) -> list[tuple[str, int]]:
    files = [(p.name, 0) for p in log_files(dataset)]
    journals = [(j.name, sum(b.num_rows for b in read_journal(j)[0]))
                for j in dataset.glob(".*.arrows")]
    return sorted(files + journals)


def assert_convert_rerun_adds_and_removes_nothing(directory: Path) -> None:
    before = sorted(p.relative_to(directory) for p in directory.glob("date=*/*.parquet"))
    res = cli("convert", str(CAPTURE), "--dataset", str(directory), "--workers", "1", "-q")
    assert res.returncode == 0, res.stderr
    assert sorted(p.relative_to(directory) for p in directory.glob("date=*/*.parquet")) == before


def test_proxy_logs_into_a_dataset_beside_a_converted_capture(
        dataset: Path, streamer: Streamer) -> None:
    converted_rows = rows_per_capture(dataset)
    assert list(converted_rows) == [f"station.pcap@{_digest()}"]
    proc, port = start_proxy(streamer.port, dataset, "--flush-seconds", "0.2",
                             "--rotate-size", "256k")
    streamer.start(port)
    deadline = time.monotonic() + 60
    while len(streamer.received) < 500_000:
        assert time.monotonic() < deadline, "the proxy did not forward"
        time.sleep(0.05)
    code, err = stop_proxy(proc)
    assert code == 0, err

    # the proxy's files are day partitions of the dataset, nothing left open
    assert len(log_files(dataset)) > 1  # rotated along the way
    assert not list(dataset.rglob(".*"))
    counts = rows_per_capture(dataset)
    (session,) = set(counts) - set(converted_rows)
    assert session.startswith("iec104-proxy@")
    assert {k: v for k, v in counts.items() if k != session} == converted_rows
    df = iec104.load(dataset)
    assert df["capture"].value_counts().to_dict() == counts
    logged = log_apdus(df[df["capture"] == session], "s2c")
    received = streamer.apdus()
    assert logged[:len(received)] == received and len(received) > 10_000
    # (capture, stream) is one TCP connection: the proxy's stream 0 is not the capture's
    streams = sql(dataset, "SELECT count(*) AS n FROM (SELECT DISTINCT capture, stream "
                           "FROM iec104 WHERE stream IS NOT NULL)")
    assert int(streams[0]["n"]) == df.dropna(subset=["stream"])[
        ["capture", "stream"]].drop_duplicates().shape[0] >= 2
    # time-range pushdown on the partition works over the log's rows too
    day = df.loc[df["capture"] == session, "time"].min()
    assert len(iec104.load(dataset, start=day.floor("D"), end=day.floor("D") +
                           pd.Timedelta(days=1), columns=["capture"])
               .query("capture == @session")) > 0
    assert_convert_rerun_adds_and_removes_nothing(dataset)
    assert rows_per_capture(dataset) == counts
    # summary runs its investigations per connection (capture, stream): the log session is
    # one of the captures
    res = cli("summary", str(dataset))
    assert res.returncode == 0, res.stderr
    assert session in res.stdout and f"station.pcap@{_digest()}" in res.stdout


def test_sigkill_of_the_proxy_then_recover_keeps_the_dataset_readable(
        dataset: Path, streamer: Streamer) -> None:
    converted_rows = rows_per_capture(dataset)
    proc, port = start_proxy(streamer.port, dataset, "--flush-seconds", "0.2",
                             "--rotate-size", "1M")
    streamer.start(port)
    deadline = time.monotonic() + 60
    # kill while the open journal holds rows and a rotated file is complete: the outstation
    # pauses first, since a rotation between the check and the kill could close the journal
    while not journal_ready_for_kill(dataset, streamer):
        assert time.monotonic() < deadline, "nothing reached the log"
        streamer.resume()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.stderr is not None
    proc.stderr.close()

    # right after the kill: complete files only, every engine reads the dataset
    before = rows_per_capture(dataset)
    assert len(before) == 2 and len(iec104.load(dataset)) == sum(before.values())
    journals = list(dataset.glob(".*.arrows"))
    assert len(journals) == 1
    recovered = recover(dataset)
    assert recovered and all(p.parent.name.startswith("date=") for p in recovered)
    assert not list(dataset.rglob(".*"))
    after = rows_per_capture(dataset)
    (session,) = set(after) - set(converted_rows)
    assert after[session] > before[session]
    df = iec104.load(dataset)
    logged = log_apdus(df[df["capture"] == session], "s2c")
    received = streamer.apdus()
    assert logged == received[:len(logged)]  # a prefix: nothing wrong, nothing twice
    assert_convert_rerun_adds_and_removes_nothing(dataset)
    assert rows_per_capture(dataset) == after


def test_live_capture_logs_into_a_dataset_beside_a_converted_capture(dataset: Path) -> None:
    from tests.recorder.test_capture_live import run_capture_cli

    if shutil.which("dumpcap") is None or os.geteuid() != 0:  # as test_capture_live.py
        message = "live capture needs dumpcap and root"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    converted_rows = rows_per_capture(dataset)
    run_capture_cli(dataset)
    counts = rows_per_capture(dataset)
    (session,) = set(counts) - set(converted_rows)
    assert session.startswith("iec104-capture@")
    df = iec104.load(dataset)
    assert df["capture"].value_counts().to_dict() == counts
    mine = df[df["capture"] == session]
    assert (mine["type_id"] == TypeId.M_ME_NC_1).sum() == 500
    assert_convert_rerun_adds_and_removes_nothing(dataset)


def test_a_flat_log_directory_of_an_older_recorder_stays_readable(tmp_path: Path) -> None:
    from iec104.records.builder import Endpoints

    writer = LogWriter(tmp_path / "flat", origin="proxy")  # no session: the flat layout
    ep = Endpoints(0, "c2s", "10.0.0.1", 40000, "10.0.0.2", 2404)
    for i in range(3):
        writer.event(1_700_000_000_000_000_000 + i, ep, f"proxy: event {i}")
    (path,) = writer.close()
    assert path.parent == tmp_path / "flat"
    df = iec104.load(tmp_path / "flat")
    assert df["error"].tolist() == [f"proxy: event {i}" for i in range(3)]
    assert set(df["capture"]) == {path.stem}
    res = cli("read", str(path))  # (read takes the files of a flat directory)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("proxy: event") == 3


def _digest() -> str:
    import hashlib

    return hashlib.sha256(CAPTURE.read_bytes()).hexdigest()[:12]
