"""Points are keyed by (CA, IOA, point type): a single point and a measured value sharing an
IOA are two points in the timeline and latest values (its time-tagged variant is the same
point), and the value timeline draws states on their own axis (a single point is never
drawn at 456 next to an M_ME of 456)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from iec104 import analyzer as an  # noqa: E402
from iec104.codec import Cause, TypeId  # noqa: E402
from tests.support.conversation import Conversation, asdu, floating, single, to_frame  # noqa: E402


def shared_ioa() -> Conversation:
    c = Conversation().startdt()
    for on, value in [(True, 456.0), (False, 457.5), (True, 455.0)]:
        c.wait(1).i("s2c", asdu(TypeId.M_SP_NA_1, Cause.SPONTANEOUS, [single(456, on)]))
        c.wait(0.5).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS,
                                  [floating(456, value)]))
    return c.ack("c2s")


def test_latest_values_and_changes_keep_the_types_apart() -> None:
    df = to_frame(shared_ioa())
    latest = an.latest_values(df)
    assert latest[["ca", "ioa", "point_type"]].values.tolist() == [
        [1, 456, "M_ME_NC_1"], [1, 456, "M_SP_NA_1"]]
    assert latest.set_index("point_type").loc["M_SP_NA_1", "value"] == 1.0
    assert latest.set_index("point_type").loc["M_ME_NC_1", "value"] == 455.0
    assert latest["reports"].tolist() == [3, 3] and latest["changes"].tolist() == [2, 2]
    changes = an.value_changes(df)
    sp = changes[changes["point_type"] == "M_SP_NA_1"]
    assert sp["prev_value"].dropna().tolist() == [1.0, 0.0]  # never the M_ME's 456


def test_the_value_timeline_draws_states_on_their_own_axis() -> None:
    df = to_frame(shared_ioa())
    fig = an.plot_value_timeline(df, [(1, 456)])
    values, states = fig.axes
    assert [line.get_label() for line in values.get_lines() if "IOA" in line.get_label()] == [
        "CA 1 IOA 456 (M_ME_NC_1)"]
    assert [line.get_label() for line in states.get_lines() if "IOA" in line.get_label()] == [
        "CA 1 IOA 456 (M_SP_NA_1) [state, right axis]"]
    assert max(states.get_lines()[0].get_ydata()) == 1.0
    assert min(values.get_lines()[0].get_ydata()) == 455.0
    only_me = an.plot_value_timeline(df, [(1, 456, "M_ME_NC_1")])
    assert len(only_me.axes) == 1
    from iec104.analyzer.plots import top_points

    assert sorted(top_points(df)) == [(1, 456, "M_ME_NC_1"), (1, 456, "M_SP_NA_1")]
