"""A timestamp that int64 nanoseconds cannot hold never loses a capture (issue 10, item 1).

The capture reader is where file timestamps become nanoseconds; a pcapng timestamp past 2262
(one flipped bit, an ``if_tsresol`` of 0 or 0x80 taken as seconds, a huge ``if_tsoffset``) used
to reach ``pa.array(..., int64)`` in the row builder and kill ``convert``, ``read`` and
``summary`` with an ``OverflowError`` before anything was written. Now the packet is kept with
a null ``time``, a warning names the frame, every APDU is in the output and the exit code is 1,
in every command and with ``--jobs 2``.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from iec104.capture.errors import CaptureWarning
from iec104.capture.reader import CaptureReader
from iec104.dissector import dissect_table
from tests.capture.test_dissect_capture import epb, idb, shb
from tests.support.cli import COMMANDS, STATION, run

MAX_TIME_NS = (1 << 63) - 1  # the last nanosecond int64 holds: 2262-04-11T23:47:16.854775807


def _epb_offsets(data: bytes) -> list[int]:
    """Offsets of the Enhanced Packet Blocks of a little-endian pcapng file."""
    pos, out = 0, []
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 6:
            out.append(pos)
        pos += blen
    return out


def flip_timestamps(path: Path, out: Path, which: list[int]) -> list[int]:
    """``path`` with the top bit of the timestamp of the EPBs at indexes ``which`` flipped
    (microsecond resolution: ~2**63 us, far past 2262); returns their frame numbers."""
    data = bytearray(path.read_bytes())
    offsets = _epb_offsets(bytes(data))
    for i in which:
        data[offsets[i] + 12 + 3] ^= 0x80  # high timestamp word, little endian, top bit
    out.write_bytes(data)
    return [i + 1 for i in which]  # every block of COMMANDS after the IDB is an EPB


def with_interface(out: Path, *, tsresol: int | None = None, tsoffset: int | None = None,
                   source: Path = STATION) -> int:
    """The packets of ``source`` rewritten as pcapng with one interface of the given options
    (timestamps stay the original microsecond counts); returns the packet count."""
    with CaptureReader(source) as reader:
        packets = list(reader)
    blob = shb("<") + idb("<", tsresol=tsresol, tsoffset=tsoffset)
    for p in packets:
        assert p.time_ns is not None
        blob += epb("<", 0, p.time_ns // 1000, p.data)
    out.write_bytes(blob)
    return len(packets)


def apdu_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The APDU rows without the time column, for comparing with an undamaged capture."""
    return df[df["apdu"].notna()].drop(columns=["time"]).reset_index(drop=True)


# -- the reader ------------------------------------------------------------------------------


def test_reader_keeps_the_packet_without_a_time(tmp_path: Path) -> None:
    flipped = tmp_path / "flipped.pcapng"
    bad = flip_timestamps(COMMANDS, flipped, [5, 19, 40])
    with CaptureReader(COMMANDS) as reader:
        good = list(reader)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with CaptureReader(flipped) as reader:
            packets = list(reader)
    assert [p.data for p in packets] == [p.data for p in good]
    assert [p.frame for p in packets if p.time_ns is None] == bad
    assert all(p.time_ns == g.time_ns for p, g in zip(packets, good) if p.time_ns is not None)
    assert reader.problem is None and reader.bad_times == 3 and reader.bad_time_frames == bad
    assert reader.time_problem is not None and "frames 6, 20, 41" in reader.time_problem
    messages = [str(w.message) for w in caught if issubclass(w.category, CaptureWarning)]
    assert len(messages) == 1 and "frame 6: timestamp after 2262" in messages[0]


@pytest.mark.parametrize(("tsresol", "tsoffset"), [
    (0, None),  # 10**-0: seconds
    (0x80, None),  # 2**-0: seconds
    (None, 1 << 62),  # 2**62 s added to every timestamp
    (None, -(1 << 62)),  # ... or taken off
])
def test_extreme_interface_options(tmp_path: Path, tsresol: int | None,
                                   tsoffset: int | None) -> None:
    path = tmp_path / "extreme.pcapng"
    count = with_interface(path, tsresol=tsresol, tsoffset=tsoffset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with CaptureReader(path) as reader:
            packets = list(reader)
    assert len(packets) == count and all(p.time_ns is None for p in packets)
    assert reader.bad_times == count and len(reader.bad_time_frames) == 10
    assert f"and {count - 10} more" in (reader.time_problem or "")
    assert reader.time_problem is not None


def test_the_edge_of_the_range_is_kept(tmp_path: Path) -> None:
    """2262-04-11T23:47:16.854775807 is the last storable instant; one ns later is not."""
    path = tmp_path / "edge.pcapng"
    data = bytes(60)
    path.write_bytes(shb("<") + idb("<", tsresol=9) + epb("<", 0, MAX_TIME_NS, data)
                     + epb("<", 0, MAX_TIME_NS + 1, data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with CaptureReader(path) as reader:
            assert [p.time_ns for p in reader] == [MAX_TIME_NS, None]


def test_dissect_keeps_every_apdu(tmp_path: Path) -> None:
    flipped = tmp_path / "flipped.pcapng"
    bad = flip_timestamps(COMMANDS, flipped, [19, 25])
    whole = dissect_table(COMMANDS).to_pandas()
    with pytest.warns(CaptureWarning, match="frame 20"):
        df = dissect_table(flipped).to_pandas()
    pd.testing.assert_frame_equal(apdu_rows(df), apdu_rows(whole))
    assert set(df.loc[df["time"].isna(), "frame"]) == set(bad) & set(whole["frame"])
    assert df["time"].notna().sum() == len(df) - df["frame"].isin(bad).sum()


# -- the commands ------------------------------------------------------------------------------


def test_convert_read_and_summary_keep_the_capture(tmp_path: Path) -> None:
    flipped = tmp_path / "flipped.pcapng"
    flip_timestamps(COMMANDS, flipped, [19, 41])  # 41: the last packet
    whole = dissect_table(COMMANDS).to_pandas()
    for jobs in ("0", "2"):
        out = tmp_path / f"out{jobs}.parquet"
        proc = run("convert", flipped, "-o", out, "--jobs", jobs)
        assert proc.returncode == 1, proc.stderr
        assert "iec104: warning: " in proc.stderr and "frames 20, 42" in proc.stderr
        assert "kept without a time" in proc.stderr
        df = pq.read_table(out).to_pandas()
        pd.testing.assert_frame_equal(apdu_rows(df), apdu_rows(whole))
        assert df.loc[df["frame"] == 20, "time"].isna().all()
    read = run("read", flipped)
    assert read.returncode == 1 and "frames 20, 42" in read.stderr
    good = run("read", COMMANDS).stdout.splitlines()
    lines = read.stdout.splitlines()
    assert len(lines) == len(good)
    assert [line.split()[0] for line in lines] == [line.split()[0] for line in good]
    assert all(" - 127.0.0.1" in line for line in lines if line.split()[0] == "20")
    summary = run("summary", flipped)
    assert summary.returncode == 1 and "frames 20, 42" in summary.stderr
    assert f"APDUs {whole['apdu'].nunique()}" in " ".join(summary.stdout.split())


def test_extreme_resolution_in_every_command(tmp_path: Path) -> None:
    path = tmp_path / "seconds.pcapng"
    with_interface(path, tsresol=0)
    whole = dissect_table(STATION).to_pandas()
    out = tmp_path / "out.parquet"
    proc = run("convert", path, "-o", out, "-q")
    assert proc.returncode == 1 and "timestamp outside" in proc.stderr
    df = pq.read_table(out).to_pandas()
    assert df["time"].isna().all()
    # a CP24 tag takes its hour and date from the capture time: without one it has no date
    cp24 = whole["time_tag"].notna() & whole["type_id"].isin([2, 4, 6, 8, 10, 12, 14, 16])
    assert cp24.any()
    assert (df.loc[cp24, "error"] == "time tag: CP24 time tag without a capture time to "
            "complete it").all() and df.loc[cp24, "time_tag"].isna().all()
    kept = ["time_tag", "error"]
    pd.testing.assert_frame_equal(apdu_rows(df[~cp24]).drop(columns=kept),
                                  apdu_rows(whole[~cp24]).drop(columns=kept))
    pd.testing.assert_frame_equal(apdu_rows(df[~cp24]), apdu_rows(whole[~cp24]))
    for args in (("read", path), ("read", "-t", "r", path), ("summary", path),
                 ("read", out), ("summary", out)):
        proc = run(*args)
        assert proc.returncode == (1 if args[-1] == path else 0), (args, proc.stderr)
        assert proc.stdout
