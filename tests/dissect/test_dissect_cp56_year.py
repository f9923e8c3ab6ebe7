"""CP56Time2a years as Wireshark reads them, out-of-range years flagged (issue 10, item 8).

tshark reads the 7-bit year field as ``1900 + y`` for ``y >= 70`` and ``2000 + y`` below, so
the year 109 that ITI's 2009 capture sends is 2009 (it used to be 2109 here, and ``summary``
reported a +876,578 h clock drift). The dissector follows tshark
(:func:`iec104.codec.cp56_year`) and flags a year field above the standard's 99 in ``error``
while keeping the date.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from iec104.codec import Cause, Quality, SingleValue, Time, TimeSize, TypeId
from iec104.codec.asdu import InformationObject
from tests.support.cli import run
from tests.support.conversation import Conversation, asdu, to_frame

ITI_2009 = "iti_090813-diverse-hydro-commands.pcap"


def _tagged(years: int) -> pd.Series:
    tag = Time(TimeSize.SEVEN, 8, False, 23, False, 19, 0, 13, 8, years)
    conv = Conversation()
    conv.i("s2c", asdu(TypeId.M_SP_TB_1, Cause.SPONTANEOUS,
                       [InformationObject(1, SingleValue.ON, Quality(), tag)]))
    return to_frame(conv).iloc[0]


@pytest.mark.parametrize(("years", "year", "flagged"), [
    (9, 2009, False), (69, 2069, False), (70, 1970, False), (99, 1999, False),
    (100, 2000, True), (109, 2009, True), (127, 2027, True),
])
def test_year_rule_and_flag(years: int, year: int, flagged: bool) -> None:
    row = _tagged(years)
    assert row["time_tag"] == pd.Timestamp(dt.datetime(year, 8, 13, 19, 23, 0, 8000, dt.UTC))
    if flagged:
        assert row["error"] == (f"time tag: year {years} outside [0, 99], read as {year} "
                                "(as Wireshark)")
    else:
        assert row["error"] is None or pd.isna(row["error"])


def test_iti_2009_capture_reads_2009(public_captures: Path) -> None:
    path = public_captures / ITI_2009
    out = run("read", path)
    assert out.returncode == 0
    tagged = [line for line in out.stdout.splitlines() if " @" in line]
    assert tagged and all(line.split()[1] == "2009-08-13" for line in tagged)
    flagged = [line for line in tagged if "year 109 outside [0, 99]" in line]
    assert len(flagged) == 10  # the 10 of its 33 tags that carry year 109
    verbose = run("read", "-V", path).stdout
    assert "2109" not in verbose and verbose.count("time tag: 2009-08-13") >= 33


def test_summary_drift_is_hours_not_a_century(public_captures: Path) -> None:
    """The device clock runs about 2 h ahead (a time zone): that is the drift reported."""
    text = run("summary", public_captures / ITI_2009, "--max-rows", "100").stdout
    drifts = [float(d) for d in re.findall(r"drift up to ([-+][\d.]+) s", text)]
    assert drifts and max(abs(d) for d in drifts) < 3 * 3600, drifts
    assert "invalid_time_tag 10" in text
