"""Plots fit their time axis to the data, also for captures that last milliseconds."""

from __future__ import annotations

import pytest

from iec104 import analyzer as an
from tests.conftest import REPO_ROOT

SHORT = REPO_ROOT / "captures" / "commands.pcapng"  # about 0.1 s of traffic


@pytest.mark.parametrize("plot", [an.plot_message_rate, an.plot_value_timeline])
def test_time_axis_spans_the_capture_not_years(plot) -> None:
    df = an.as_frame(SHORT)
    fig = plot(df)
    ax = fig.axes[0]
    low, high = ax.get_xlim()  # matplotlib date units: days
    span_s = (df["time"].max() - df["time"].min()).total_seconds()
    assert 0 < (high - low) * 86400 < 10 * max(span_s, 0.01)
    assert ax.lines, "nothing drawn"


def test_message_rate_bins_below_a_second_for_short_captures() -> None:
    rate = an.message_rate(an.as_frame(SHORT), None)
    assert len(rate) > 10
    assert rate.to_numpy().sum() == len(an.apdus(an.as_frame(SHORT)))
