"""Two vantage points compared (analyzer.vantage): ASDUs dropped, injected or rewritten
between them, whatever N(S)/N(R) each hop used. Both sides are scripted conversations,
encoded by the codec and decoded as the dissector does."""

from __future__ import annotations

import pandas as pd

from iec104.analyzer import vantage_diff
from tests.analyzer.test_analyzer import command, spontaneous
from tests.support.conversation import Conversation, to_frame


def side(values: list[float], *, client_port: int = 50001) -> Conversation:
    c = Conversation(client=("10.0.0.1", client_port)).startdt()
    for v in values:
        spontaneous(c, 100, v)
    command(c, 3000, on=False)
    return c


def test_the_same_asdus_on_another_hop_are_no_difference() -> None:
    # another TCP connection, other N(S)/N(R) (one extra frame renumbers everything after)
    a = to_frame(side([1.0, 2.0, 3.0]))
    other = side([1.0, 2.0, 3.0], client_port=60000)
    assert vantage_diff(a, to_frame(other)).empty


def test_dropped_rewritten_and_injected_asdus_are_found() -> None:
    a = to_frame(side([1.0, 2.0, 3.0, 4.0]))
    b = to_frame(side([1.0, 3.0, 4.5, 5.0], client_port=60000))
    diff = vantage_diff(a, b)
    assert diff[["direction", "kind"]].values.tolist() == [
        ["s2c", "dropped"], ["s2c", "rewritten"], ["s2c", "injected"]]
    dropped, rewritten, injected = (diff.iloc[i] for i in range(3))
    assert pd.isna(dropped["time_b"]) and pd.notna(dropped["time_a"])
    assert rewritten["type_name"] == "M_ME_NC_1" and rewritten["ca"] == 1
    assert rewritten["asdu_a"] != rewritten["asdu_b"]
    assert pd.isna(injected["asdu_a"]) and injected["frame_b"] > 0
    # seen from the other side, drops and injections swap
    back = vantage_diff(b, a)
    assert back["kind"].tolist() == ["injected", "rewritten", "dropped"]
