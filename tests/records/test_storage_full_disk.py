"""A full disk under the Parquet writers: nothing written is lost, no file is left broken.

The disk fills up in a child process through ``RLIMIT_FSIZE`` (files may not grow past a
size; CPython ignores SIGXFSZ, so ``write(2)`` fails with EFBIG, as it fails with ENOSPC on
a full disk); the child lifts the limit again to let "space return". As root, a real
``iec104 proxy`` process also logs into a small tmpfs between real peers (that test must
run in CI, which runs as root).

Checked throughout: the directory is readable by ``pandas.read_parquet`` at every step, a
Parquet file appears under its final name only when complete, :func:`recover` deletes a
journal only when a complete file holds all its rows, and logging resumes after the outage.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from iec104.recorder import JournaledParquetSink, recover
from iec104.records.schema import SCHEMA
from tests.conftest import in_ci
from tests.support.cli import COMMANDS, STATION, command, env

pytestmark = pytest.mark.timeout(120)

PRELUDE = """
import json, os, resource, sys, time
from pathlib import Path
import pandas as pd
import pyarrow as pa
from iec104.records.schema import SCHEMA

def limit(size):
    # files may not grow past `size` octets: writes fail with EFBIG (SIGXFSZ is ignored)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

def unlimited():
    limit(resource.RLIM_INFINITY)

def rows(n, start):
    return pa.RecordBatch.from_pylist(
        [{"stream": 0, "apdu": start + i, "raw": os.urandom(16)} for i in range(n)],
        schema=SCHEMA)

def visible_rows(directory):
    # what any reader of the directory sees now; raises if a visible file is broken
    return len(pd.read_parquet(directory)) if any(Path(directory).glob("*.parquet")) else 0

result = {}
"""


def run_child(code: str, *args: object) -> dict:
    """Run ``PRELUDE + code`` in a child process; returns its ``result`` dict."""
    script = PRELUDE + textwrap.dedent(code) + "\nunlimited()\nprint(json.dumps(result))\n"
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env(),
                          capture_output=True, text=True, timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("salvage", [True, False])
def test_parquet_sink_never_names_an_incomplete_file(tmp_path: Path, salvage: bool) -> None:
    result = run_child("""
        from iec104.records.sink import ParquetSink, StorageError
        directory = Path(sys.argv[1])
        limit(300_000)
        sink = ParquetSink(directory / "out.parquet", salvage=sys.argv[2] == "True")
        seen = []
        try:
            for k in range(200):
                sink.write(rows(2000, k * 2000))
                seen.append(visible_rows(directory))  # the open file is hidden
            sink.close()
        except StorageError as exc:
            result.update(kept=exc.rows_kept, message=str(exc), errno=exc.errno)
        result["seen"] = sorted(set(seen))
        """, tmp_path, salvage)
    assert result["seen"] == [0]
    assert result["errno"] == 27 and "File too large" in result["message"]
    assert hidden(tmp_path) == []
    if salvage:
        # every row group completely on disk before the failure is kept, in order
        assert result["kept"] > 0 and result["kept"] % 2000 == 0
        assert pd.read_parquet(tmp_path)["apdu"].tolist() == list(range(result["kept"]))
        assert f"the first {result['kept']} rows are kept" in result["message"]
    else:
        assert result["kept"] is None and list(tmp_path.iterdir()) == []


def convert_limited(out: Path, size: int) -> subprocess.CompletedProcess[str]:
    """``iec104 convert`` of the bundled captures into ``out``, files limited to ``size``."""
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

    return subprocess.run([*command(), "convert", str(STATION), str(COMMANDS), "-o", str(out),
                           "--batch-rows", "16", "-q"], env=env(), capture_output=True,
                          text=True, timeout=100, check=False, preexec_fn=preexec)


def test_convert_to_a_full_disk_keeps_the_rows_written_before(tmp_path: Path) -> None:
    full = tmp_path / "full.parquet"
    assert convert_limited(full, resource.RLIM_INFINITY).returncode == 0
    out = tmp_path / "out" / "part.parquet"
    out.parent.mkdir()
    proc = convert_limited(out, 20_000)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("iec104: "), proc.stderr
    assert "File too large" in proc.stderr and "rows are kept" in proc.stderr
    kept = pq.read_table(out)  # a complete file: footer readable
    assert 0 < kept.num_rows < pq.read_metadata(full).num_rows
    assert kept.equals(pq.read_table(full).slice(0, kept.num_rows))
    assert hidden(out.parent) == []
    # not even an empty Parquet file fits: exit 2, nothing is left under a new name, and
    # an existing output is left as it was
    before = out.read_bytes()
    for name in (out, out.with_name("new.parquet")):
        proc = convert_limited(name, 1_000)
        assert proc.returncode == 2 and proc.stderr.startswith("iec104: "), proc.stderr
        assert "File too large" in proc.stderr
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    assert out.read_bytes() == before


def test_a_partial_file_left_by_a_killed_convert_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    (tmp_path / ".out.parquet.partial").write_bytes(b"PAR1 cut by SIGKILL")
    assert convert_limited(out, resource.RLIM_INFINITY).returncode == 0
    assert pq.read_metadata(out).num_rows > 0 and hidden(tmp_path) == []


LOGWRITER = """
from iec104.codec import (ASDU, Cause, FloatingValue, IFrame, InformationObject, Quality,
                          TypeId, encode_apdu, encode_asdu)
from iec104.records.builder import Endpoints
from iec104.recorder import LogWriter, LogWriterError, recover

directory = Path(sys.argv[1])
EP = Endpoints(0, "s2c", "10.0.0.2", 2404, "10.0.0.1", 40000)
GOOD = Quality(False, False, False, False, False)
frames = [encode_apdu(IFrame(i % 32768, 0, encode_asdu(ASDU(
    TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
    (InformationObject(i, FloatingValue(float(i)), GOOD),))))) for i in range(1000)]
seen = []

def feed(writer, dec, lo, hi):
    for i in range(lo, hi):
        dec.feed(time.time_ns(), None, frames[i])
        if i % 20 == 0:
            writer.flush()
            writer.sync()
            seen.append(visible_rows(directory))
    writer.sync()
    seen.append(visible_rows(directory))
"""


def test_logwriter_holds_rows_while_the_disk_is_full_and_resumes(tmp_path: Path) -> None:
    result = run_child(LOGWRITER + textwrap.dedent("""
        writer = LogWriter(directory, flush_rows=20, max_bytes=8 << 10, retry_seconds=3600)
        dec = writer.decoder(EP)
        feed(writer, dec, 0, 300)  # several complete files
        files = len(writer.files)
        limit(1)  # the disk is full
        feed(writer, dec, 300, 600)
        result["suspended"] = writer.suspended
        result["files_while_full"] = len(writer.files) - files
        result["held"] = writer.stats["rows_held"]
        result["recovered_while_full"] = len(recover(directory))  # ours: locked, left alone
        unlimited()  # space returns
        writer.sync()  # tries again now (else every retry_seconds)
        result["resumed"] = not writer.suspended
        feed(writer, dec, 600, 700)
        writer.release(dec)
        writer.close()
        result["seen"] = seen
        """), tmp_path)
    assert result["suspended"] and result["held"] > 250 and result["files_while_full"] == 0
    assert result["recovered_while_full"] == 0 and result["resumed"]
    assert result["seen"] == sorted(result["seen"]) and result["seen"][-1] > 0
    df = pd.read_parquet(tmp_path)
    assert hidden(tmp_path) == []
    assert sorted(df["ioa"].dropna().astype(int)) == list(range(700))  # nothing lost
    assert df["apdu"].dropna().is_unique
    events = df[df["apci"].isna()]["error"].tolist()
    assert len(events) == 2
    assert events[0].startswith("proxy: writing the log failed ([Errno 27] File too large)")
    assert events[1].startswith("proxy: writing the log resumed after ")
    assert events[1].endswith("; 0 rows were lost")
    assert df[df["apci"].isna()]["stream"].isna().all()  # about the log, not a connection


def test_rows_beyond_the_hold_are_counted_as_lost(tmp_path: Path) -> None:
    result = run_child(LOGWRITER + textwrap.dedent("""
        writer = LogWriter(directory, flush_rows=20, hold_bytes=1, retry_seconds=3600)
        dec = writer.decoder(EP)
        feed(writer, dec, 0, 100)
        limit(1)
        feed(writer, dec, 100, 200)
        unlimited()
        feed(writer, dec, 200, 300)
        writer.release(dec)
        writer.close()
        result["lost"] = writer.rows_lost
        """), tmp_path)
    df = pd.read_parquet(tmp_path)
    ioas = sorted(df["ioa"].dropna().astype(int))
    assert len(ioas) == len(set(ioas)) == 300 - result["lost"]
    lost = sorted(set(range(300)) - set(ioas))  # from the failure to the next try, in one
    assert lost == list(range(100, 100 + result["lost"])) and result["lost"] >= 100
    assert df["error"].dropna().iloc[-1].endswith(f"; {result['lost']} rows were lost")


def test_closing_on_a_full_disk_leaves_journals_that_recover_converts_later(
        tmp_path: Path) -> None:
    result = run_child(LOGWRITER + textwrap.dedent("""
        writer = LogWriter(directory, flush_rows=20, max_bytes=1 << 20)
        dec = writer.decoder(EP)
        feed(writer, dec, 0, 200)  # all in the open journal
        limit(1)
        feed(writer, dec, 200, 220)  # held in memory
        writer.release(dec)
        try:
            writer.close()
        except LogWriterError as exc:
            result["error"] = str(exc)
        result["journals"] = sorted(p.name for p in directory.glob(".*.arrows"))
        result["recovered_while_full"] = len(recover(directory))
        result["journals_after"] = sorted(p.name for p in directory.glob(".*.arrows"))
        result["seen_while_full"] = visible_rows(directory)
        unlimited()
        result["recovered"] = len(recover(directory))
        """), tmp_path)
    assert "File too large" in result["error"] and "recover()" in result["error"]
    assert len(result["journals"]) == 1
    assert result["recovered_while_full"] == 0
    assert result["journals_after"] == result["journals"]  # kept: the disk is still full
    assert result["seen_while_full"] == 0 and result["recovered"] == 1
    assert sorted(pd.read_parquet(tmp_path)["ioa"].astype(int)) == list(range(200))
    assert hidden(tmp_path) == []


def test_closing_on_a_full_disk_after_a_rotation_says_no_journal_is_left(
        tmp_path: Path) -> None:
    """The outage begins on the first write of a fresh segment (every batch rotates here):
    that segment is discarded, so no journal is left and the message must not send the user
    to recover(); every row written before the outage is in Parquet files."""
    result = run_child(LOGWRITER + textwrap.dedent("""
        writer = LogWriter(directory, flush_rows=20, max_bytes=1)
        dec = writer.decoder(EP)
        feed(writer, dec, 0, 200)  # each batch rotates into its own Parquet file
        limit(1)
        feed(writer, dec, 200, 220)  # held in memory: the next journal cannot be started
        writer.release(dec)
        try:
            writer.close()
        except LogWriterError as exc:
            result["error"] = str(exc)
        result["journals"] = sorted(p.name for p in directory.glob(".*.arrows"))
        """), tmp_path)
    assert result["journals"] == []
    assert "File too large" in result["error"], result["error"]
    assert "rows held in memory could not be written (lost)" in result["error"]
    assert "every row written before is in the directory's Parquet files" in result["error"]
    assert "recover()" not in result["error"]
    assert sorted(pd.read_parquet(tmp_path)["ioa"].astype(int)) == list(range(200))
    assert hidden(tmp_path) == []


def make_journal(directory: Path, name: str, rows: int) -> tuple[Path, Path, bytes]:
    """A dead writer's journal of ``rows`` rows; returns (journal, final path, the bytes of
    the complete Parquet file made from it)."""
    import pyarrow as pa

    work = directory.parent / f"work-{name}"
    sink = JournaledParquetSink(work, max_bytes=1 << 30, prefix=name)
    sink.write(pa.RecordBatch.from_pylist(
        [{"stream": 0, "apdu": i, "raw": b"\x68\x04\x01\x00\x00\x00"} for i in range(rows)],
        schema=SCHEMA))
    assert sink.journal is not None
    journal = directory / sink.journal.name
    journal.write_bytes(sink.journal.read_bytes())
    sink.close()
    final = directory / sink.files[0].name
    return journal, final, sink.files[0].read_bytes()


def test_recover_deletes_a_journal_only_when_its_file_holds_every_row(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    directory.mkdir()
    # a file without footer (written by an older version on a full disk)
    cut_journal, cut_final, good = make_journal(directory, "cut", 10)
    cut_final.write_bytes(good[:len(good) // 2])
    # a file with fewer rows than its journal
    short_journal, short_final, _ = make_journal(directory, "short", 10)
    _, _, fewer = make_journal(tmp_path, "short", 4)
    short_final.write_bytes(fewer)
    # and one complete: its journal just was not deleted yet
    done_journal, done_final, good = make_journal(directory, "done", 10)
    done_final.write_bytes(good)

    written = recover(directory)
    assert sorted(p.name for p in written) == sorted([cut_final.name, short_final.name])
    assert hidden(directory) == []
    for final in (cut_final, short_final, done_final):
        assert pd.read_parquet(final)["apdu"].tolist() == list(range(10))
    assert not cut_journal.exists() and not short_journal.exists()
    assert not done_journal.exists()


def test_recover_on_a_full_disk_keeps_the_journal_and_the_directory_readable(
        tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    journal, final, good = make_journal(tmp_path / "log", "cut", 50)
    final.write_bytes(good[:-20])  # no footer
    result = run_child("""
        from iec104.recorder import recover
        directory = Path(sys.argv[1])
        limit(1)
        result["written"] = len(recover(directory))
        result["journals"] = [p.name for p in directory.glob(".*.arrows")]
        result["visible"] = visible_rows(directory)
        """, tmp_path / "log")
    # the footer-less file (whose rows the journal holds) is gone, the journal stays
    assert result == {"written": 0, "journals": [journal.name], "visible": 0}
    assert [p.name for p in recover(tmp_path / "log")] == [final.name]
    assert pd.read_parquet(tmp_path / "log")["apdu"].tolist() == list(range(50))


# -- as root: a real proxy process logging into a small tmpfs, between real peers ---------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs (root only; required in CI, which runs as root)."""
    def unavailable(why: str) -> None:
        if in_ci():
            pytest.fail(f"{why} -- this test must run in CI", pytrace=False)
        pytest.skip(why)

    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {res.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the file system is full (ENOSPC); returns it."""
    filler = disk / "filler"
    chunk = b"\0" * (64 << 10)
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def wait_until(what: str, check: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


@pytest.mark.timeout(300)
def test_proxy_on_a_full_tmpfs_forwards_on_keeps_its_log_readable_and_resumes(
        small_disk: Path) -> None:
    from tests.recorder.test_proxy_process import Streamer, log_apdus, start_proxy

    log_dir = small_disk / "log"
    streamer = Streamer()
    proc, port = start_proxy(streamer.port, log_dir, "--flush-seconds", "0.2",
                             "--rotate-size", "256k", "--rotate-seconds", "1")
    stderr: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        stderr.extend(iter(proc.stderr.readline, ""))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()

    def said(text: str, times: int = 1) -> bool:
        return sum(text in line for line in stderr) >= times

    def readable() -> int:  # what any reader sees: must never fail
        return len(pd.read_parquet(log_dir)) if any(log_dir.glob("date=*/*.parquet")) else 0

    try:
        streamer.start(port)
        wait_until("a file is complete", lambda: any(log_dir.glob("date=*/*.parquet")))
        for outage in (1, 2):
            filler = fill(small_disk)
            wait_until("the proxy notices", lambda n=outage: said(" failed (", n))
            got = len(streamer.received)
            seen = readable()
            wait_until("forwarding went on", lambda g=got: len(streamer.received) > g + 500_000)
            assert readable() >= seen
            if outage == 1:
                filler.unlink()  # space returns
                wait_until("logging resumes", lambda: said("resumed after"))
                wait_until("the resumption is in a complete file", lambda: (
                    pd.read_parquet(log_dir)["error"].dropna().str.contains("resumed").any()))
        proc.send_signal(signal.SIGTERM)  # on a full disk
        proc.wait(60)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        streamer.stop()
    assert proc.returncode == 1, "".join(stderr)
    last = stderr[-1]
    assert last.startswith("iec104: writing the log into "), last
    assert "rows held in memory could not be written (lost)" in last, last
    assert "Traceback" not in "".join(stderr)

    # Both states are legitimate and the last line must describe the one at hand: the
    # second outage began either in a segment holding rows (its journal cannot be converted
    # on the full disk, so it stays for recover()) or on the first write of a fresh segment
    # just after a rotation (discarded: every row written so far is in Parquet files).
    journals = sorted(log_dir.glob(".*.arrows"))
    if journals:
        assert f"in {len(journals)} hidden journal(s)" in last and "recover()" in last, last
    else:
        assert "every row written before is in the directory's Parquet files" in last, last
    assert readable() > 0
    assert recover(log_dir) == [] and sorted(log_dir.glob(".*.arrows")) == journals
    filler.unlink()
    assert len(recover(log_dir)) == len(journals)
    assert hidden(log_dir) == [] and not list(log_dir.rglob(".*"))  # (a dataset: date=*/)
    df = pd.read_parquet(log_dir)
    logged = log_apdus(df, "s2c")
    # nothing twice, nothing out of order, nothing lost but the rows held at the final stop
    assert logged == [Streamer.frame(i) for i in range(len(logged))]
    assert len(logged) > 10_000
    events = df[df["stream"].isna()]["error"].tolist()
    assert len(events) == 2 and "No space left on device" in events[0], events
    assert events[1].endswith("; 0 rows were lost")
