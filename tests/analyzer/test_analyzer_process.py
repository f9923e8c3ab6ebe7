"""Investigations of the process (limits, rates, stale points, command feedback) on scripted
conversations: frames encoded by the codec and decoded as the dissector does, each fault
injected once and found exactly once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from iec104 import analyzer as an
from iec104.analyzer.process import (
    command_feedback,
    learn_limits,
    limit_violations,
    read_point_list,
    stale_points,
)
from iec104.codec import Cause, TypeId
from tests.analyzer.test_analyzer import command, healthy, spontaneous
from tests.support.conversation import Conversation, asdu, single, to_frame

POINTS_CSV = """ca,ioa,point_type,low,high,max_rate,feedback_ioa,name
1,150,M_ME_NC_1,0,100,50,,feeder current
1,2000,,,,,1,breaker 2000
1,3000,,,,,1,breaker 3000
"""


def point_list(tmp_path: Path) -> Path:
    path = tmp_path / "points.csv"
    path.write_text(POINTS_CSV)
    return path


def test_limits_and_rates_from_a_csv_point_list(tmp_path: Path) -> None:
    c = healthy()
    spontaneous(c, 150, 10.0)
    spontaneous(c, 150, 60.0)   # fine: within 0..100, 50 in 1.05 s
    spontaneous(c, 150, 400.0)  # above 100 and 340 in 1.05 s
    spontaneous(c, 150, 399.0, wait=20)  # still above 100
    spontaneous(c, 150, -1.0)  # below 0, 400 in 1.05 s
    found = limit_violations(to_frame(c), point_list(tmp_path))
    assert found[["kind", "value", "limit"]].values.tolist() == [
        ["high", 400.0, 100.0], ["rate", pytest.approx(340.0 / 1.05, rel=0.01), 50.0],
        ["high", 399.0, 100.0], ["low", -1.0, 0.0],
        ["rate", pytest.approx(400.0 / 1.05, rel=0.01), 50.0]]
    assert set(found["name"]) == {"feeder current"} and set(found["ioa"]) == {150}
    assert "above the high limit 100" in found.iloc[0]["detail"]
    assert limit_violations(to_frame(healthy()), point_list(tmp_path)).empty


def test_limits_learned_from_a_baseline() -> None:
    baseline = to_frame(healthy())
    limits = learn_limits(baseline)
    assert limit_violations(baseline, limits).empty
    spike = healthy()
    spontaneous(spike, 100, 5000.0, wait=30)
    found = limit_violations(to_frame(spike), limits)
    assert found["kind"].tolist() == ["high"] and found.iloc[0]["value"] == 5000.0


def test_a_point_that_stops_reporting_is_stale() -> None:
    c = healthy()
    for k in range(6):
        spontaneous(c, 150, float(k))  # every ~1.05 s
    spontaneous(c, 150, 9.0, wait=12)  # then a silence of 12 s
    df = to_frame(c)
    found = stale_points(df)
    stale = found[(found["ioa"] == 150) & (found["kind"] == "stale")]
    assert len(stale) == 1 and stale.iloc[0]["silence"] == pytest.approx(12.0, abs=0.1)
    assert "times its usual" in stale.iloc[0]["detail"]
    later = df["time"].max() + pd.Timedelta(seconds=30)
    at_end = stale_points(df, end=later)
    assert "stale_at_end" in at_end[at_end["ioa"] == 150]["kind"].tolist()


def test_command_feedback_confirmed_wrong_and_missing(tmp_path: Path) -> None:
    df = to_frame(healthy())
    found = command_feedback(df, point_list(tmp_path))
    assert found[["ioa", "value", "feedback_ioa", "status"]].values.tolist() == [
        [2000, 1.0, 1, "confirmed"], [3000, 0.0, 1, "confirmed"]]
    assert (found["delay"] > 0).all() and (found["delay"] < 1).all()
    # without the point list the commands' own IOAs never report: no feedback
    assert set(command_feedback(df)["status"]) == {"no_feedback"}
    # the breaker reports the other state
    c = healthy()
    command(c, 4000, on=True, term=False)
    c.wait(0.2).i("s2c", asdu(TypeId.M_SP_NA_1, Cause.SPONTANEOUS, [single(4000, False)]))
    c.ack("c2s")
    wrong = command_feedback(to_frame(c))
    row = wrong[wrong["ioa"] == 4000].iloc[0]
    assert row["status"] == "wrong" and row["feedback_value"] == 0.0
    assert "not the commanded ON" in row["detail"]


def test_point_list_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ioa,high\n1,2\n")
    with pytest.raises(ValueError, match="no ca column"):
        read_point_list(bad)
    bad.write_text("ca,ioa,high\n1,2,hot\n")
    with pytest.raises(ValueError, match="high"):
        read_point_list(bad)


def test_exported_from_the_analyzer() -> None:
    assert an.limit_violations is limit_violations and an.stale_points is stale_points
    assert an.command_feedback is command_feedback and an.learn_limits is learn_limits
    assert isinstance(Conversation, type)
