"""Analyzer investigations on scripted conversations with known faults.

Each test starts from a healthy conversation (STARTDT, general interrogation, spontaneous
data, a select-before-operate command and a direct command, TESTFR on idle), checks that the
analyzer finds nothing wrong in it, then injects exactly one fault and checks that exactly
that fault is found. Frames are encoded with the codec and decoded by the dissector's
DirectionDecoder/RecordBuilder (``tests/support/conversation.py``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from iec104 import analyzer as an
from iec104.codec import (
    Cause,
    InformationObject,
    Quality,
    SingleValue,
    Time,
    TimeSize,
    TypeId,
    UFunction,
)
from tests.support.conversation import Conversation, asdu, cp56, floating, single, to_frame

MASTER = "10.0.0.1:50001"
OUTSTATION = "10.0.0.2:2404"


# -- building blocks ----------------------------------------------------------------------


def gi(c: Conversation, *, actterm: bool = True, skip: tuple[int, ...] = (),
       qoi: int = 20, ca: int = 1) -> Conversation:
    obj = [InformationObject(0, qualifier=qoi)]
    c.wait(1).i("c2s", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION, obj, ca=ca))
    c.wait(0.02).i("s2c", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION_CONFIRMATION, obj, ca=ca))
    cause = Cause.INTERROGATED_STATION if qoi == 20 else qoi
    sp = [single(i, i == 1) for i in (1, 2) if i not in skip]
    if sp:
        c.wait(0.02).i("s2c", asdu(TypeId.M_SP_NA_1, cause, sp, ca=ca))
    me = [floating(i, 10.0 * i) for i in (100, 101) if i not in skip]
    if me:
        c.wait(0.02).i("s2c", asdu(TypeId.M_ME_NC_1, cause, me, ca=ca))
    if actterm:
        c.wait(0.02).i("s2c", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION_TERMINATION, obj, ca=ca))
    return c.ack("c2s", 0.05)


def command(c: Conversation, ioa: int, on: bool = True, *, select: bool | None = None,
            con: bool = True, negative: bool = False, term: bool = True,
            refuse: Cause | None = None, ca: int = 1, wait: float = 1.0,
            sender: str = "c2s") -> Conversation:
    """A C_SC_NA_1 (``select`` None: direct execute) and the outstation's answers."""
    obj = [InformationObject(ioa, SingleValue.ON if on else SingleValue.OFF,
                             select=bool(select), qualifier=0)]
    answer = "s2c" if sender == "c2s" else "c2s"
    c.wait(wait).i(sender, asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION, obj, ca=ca))
    if refuse is not None:
        c.wait(0.05).i(answer, asdu(TypeId.C_SC_NA_1, refuse, obj, ca=ca, negative=True))
    elif con:
        c.wait(0.05).i(answer, asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_CONFIRMATION, obj, ca=ca,
                                    negative=negative))
    else:
        c.wait(0.05).s(answer)  # the link acknowledges, the application never answers
    if term and con and not negative and refuse is None and not select:
        c.wait(0.05).i(answer, asdu(TypeId.M_SP_NA_1, Cause.REMOTE_COMMAND, [single(1, on)],
                                    ca=ca))
        c.wait(0.05).i(answer, asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_TERMINATION, obj, ca=ca))
    return c.ack(sender, 0.05)


def spontaneous(c: Conversation, ioa: int = 100, value: float = 12.5, *,
                quality: Quality = Quality(), wait: float = 1.0) -> Conversation:
    c.wait(wait).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS,
                               [floating(ioa, value, quality=quality)]))
    return c.ack("c2s", 0.05)


def event(c: Conversation, ioa: int = 2, *, tag: Time | None = None) -> Conversation:
    tag = tag if tag is not None else cp56(c.now)
    c.wait(1).i("s2c", asdu(TypeId.M_SP_TB_1, Cause.SPONTANEOUS,
                            [InformationObject(ioa, SingleValue.ON, Quality(), tag)]))
    return c.ack("c2s", 0.05)


def healthy(c: Conversation | None = None) -> Conversation:
    c = c or Conversation()
    c.startdt()
    gi(c)
    spontaneous(c)
    event(c)
    command(c, 2000, select=True)
    command(c, 2000, select=False)
    command(c, 3000, on=False)
    c.wait(19)
    return c.testfr()


def kinds(table: pd.DataFrame) -> list[str]:
    return table["kind"].tolist()


# -- the healthy baseline -----------------------------------------------------------------


def test_healthy_conversation_has_no_findings() -> None:
    df = to_frame(healthy())
    assert an.link_findings(df).empty
    assert an.anomalies(df).empty
    cmds = an.commands(df)
    assert cmds["status"].tolist() == ["ok", "ok", "ok"]
    assert cmds["sbo_violation"].tolist() == ["", "", ""]
    assert cmds["select"].tolist() == [True, False, False]
    assert cmds["rtt_con"].round(3).tolist() == [0.05, 0.05, 0.05]
    assert cmds["rtt_term"].round(3).tolist()[1:] == [0.15, 0.15]
    ics = an.interrogations(df)
    assert ics["status"].tolist() == ["complete"]
    assert ics.loc[0, "points"] == [1, 2, 100, 101]
    assert ics.loc[0, "missing_points"] == []
    assert ics.loc[0, "objects"] == 4
    s = an.sessions(df)
    assert len(s) == 1
    row = s.iloc[0]
    assert (row["client"], row["server"], row["master"], row["master_by"]) == (
        MASTER, OUTSTATION, MASTER, "STARTDT_ACT")
    assert row["startdt_act"] == row["startdt_con"] == row["testfr_act"] == 1
    assert row["complete"] and row["errors"] == 0 and row["capture_gaps"] == 0
    assert row["duration"] == pytest.approx((df["time"].max() - df["time"].min())
                                            .total_seconds())


# -- the five faults of the issue -----------------------------------------------------------


def test_missing_actterm_is_the_only_command_finding() -> None:
    c = healthy()
    command(c, 3001, term=False)
    cmds = an.commands(to_frame(c))
    assert cmds["status"].tolist() == ["ok", "ok", "ok", "no_actterm"]
    bad = cmds.iloc[3]
    assert (bad["ioa"], bad["type_name"], bad["con_cot"]) == (3001, "C_SC_NA_1",
                                                               "ACTIVATION_CONFIRMATION")
    assert pd.isna(bad["term_time"]) and bad["rtt_con"] == pytest.approx(0.05)
    assert an.link_findings(to_frame(c)).empty


def test_actterm_not_expected_from_an_outstation_that_never_terminates() -> None:
    c = Conversation()
    c.startdt()
    gi(c)
    command(c, 3000, term=False)
    cmds = an.commands(to_frame(c))
    assert cmds["status"].tolist() == ["ok"]
    assert an.commands(to_frame(c), expect_actterm=True)["status"].tolist() == ["no_actterm"]


def test_sequence_gap_is_found_exactly() -> None:
    c = healthy()
    c.wait(1).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS, [floating(100, 1.0)]),
                ssn=c.vs["s2c"] + 3)
    c.ack("c2s", 0.05)
    df = to_frame(c)
    seq = an.sequence_analysis(df)
    assert kinds(seq) == ["gap"]
    gap = seq.iloc[0]
    assert (gap["direction"], gap["actor"], gap["got"] - gap["expected"]) == ("s2c", OUTSTATION,
                                                                               3)
    assert "3 I-frame(s) missing" in gap["detail"]
    assert an.timeouts(df).empty


def test_t1_violation_is_found_exactly() -> None:
    c = healthy()
    # the master's command is neither confirmed nor acknowledged for 16.5 s
    obj = [InformationObject(4000, SingleValue.ON, select=False, qualifier=0)]
    c.wait(1).i("c2s", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION, obj))
    sent = c.now
    c.wait(16.5).i("s2c", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_CONFIRMATION, obj))
    c.wait(0.05).i("s2c", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_TERMINATION, obj))
    c.ack("c2s", 0.05)
    df = to_frame(c)
    t = an.timeouts(df)
    assert kinds(t) == ["t1_expired"]
    row = t.iloc[0]
    assert row["actor"] == MASTER  # the master's frame went unacknowledged: its t1 expired
    assert row["delay"] == pytest.approx(16.5)
    assert row["time"] == pd.Timestamp(sent) + pd.Timedelta(seconds=16.5)
    # the same frame was acknowledged later than t2: the outstation's fault
    seq = an.sequence_analysis(df)
    assert kinds(seq) == ["late_ack"] and seq.iloc[0]["actor"] == OUTSTATION
    assert an.commands(df)["status"].tolist() == ["ok", "ok", "ok", "ok"]


def test_unconfirmed_testfr_is_a_t1_violation() -> None:
    c = healthy()
    c.wait(5).u("c2s", UFunction.TESTFR_ACT)
    for _ in range(2):
        spontaneous(c, wait=9)
    t = an.timeouts(to_frame(c))
    assert kinds(t) == ["t1_expired"]
    assert "TESTFR_ACT" in t.iloc[0]["detail"] and "never confirmed" in t.iloc[0]["detail"]


def test_t1_not_reported_when_the_capture_ends_first() -> None:
    c = healthy()
    c.wait(1).i("c2s", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION,
                            [InformationObject(4000, SingleValue.ON, select=False,
                                               qualifier=0)]))
    assert an.timeouts(to_frame(c)).empty


def test_unanswered_command_is_found_exactly() -> None:
    c = healthy()
    command(c, 3002, con=False)
    df = to_frame(c)
    cmds = an.commands(df)
    assert cmds["status"].tolist() == ["ok", "ok", "ok", "unanswered"]
    assert cmds.iloc[3]["ioa"] == 3002 and pd.isna(cmds.iloc[3]["con_time"])
    assert an.link_findings(df).empty  # the link layer acknowledged it in time


def test_out_of_range_time_tag_is_found_exactly() -> None:
    c = healthy()
    event(c, 1, tag=cp56(c.now + dt.timedelta(days=2)))
    df = to_frame(c)
    a = an.anomalies(df)
    assert kinds(a) == ["time_tag_drift"]
    row = a.iloc[0]
    assert (row["ca"], row["ioa"], row["count"]) == (1, 1, 1)
    drift = an.time_drift(df)
    assert drift["drift"].abs().max() == pytest.approx(2 * 86400, abs=1)


def test_time_tag_that_is_no_calendar_date_is_found() -> None:
    c = healthy()
    bad = Time(TimeSize.SEVEN, 1000, False, 5, False, 8, 1, 1, 13, 24)  # month 13
    event(c, 1, tag=bad)
    a = an.anomalies(to_frame(c))
    assert kinds(a) == ["invalid_time_tag"]
    assert "out of range" in a.iloc[0]["detail"]
    assert an.sessions(to_frame(c)).iloc[0]["errors"] == 0  # the APDU itself is fine


# -- more sequence-number faults ----------------------------------------------------------


def test_duplicate_frame() -> None:
    c = healthy()
    spontaneous(c)
    c.wait(1).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS, [floating(100, 1.0)]),
                ssn=c.vs["s2c"] - 1)
    c.vs["s2c"] -= 0  # a duplicate does not advance the sender
    c.ack("c2s", 0.05)
    seq = an.sequence_analysis(to_frame(c))
    assert kinds(seq) == ["duplicate"]


def test_reset_of_send_sequence() -> None:
    c = healthy()
    c.vs["s2c"] = 0
    spontaneous(c)
    assert kinds(an.link_findings(to_frame(c))) == ["reset"]


def test_ack_of_frames_never_sent() -> None:
    c = healthy()
    c.wait(1).s("c2s", rsn=c.vr["c2s"] + 5)
    assert kinds(an.link_findings(to_frame(c))) == ["bad_ack"]


def test_ack_going_backwards() -> None:
    c = healthy()
    c.wait(1).s("c2s", rsn=c.vr["c2s"] - 2)
    assert kinds(an.link_findings(to_frame(c))) == ["ack_backwards"]


def test_window_k_exceeded_and_w() -> None:
    c = healthy()
    for n in range(13):
        c.wait(0.01).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS, [floating(100, n)]))
    c.ack("c2s", 0.05)
    df = to_frame(c)
    f = an.link_findings(df)
    assert kinds(f) == ["k_exceeded"]
    assert (f.iloc[0]["expected"], f.iloc[0]["got"], f.iloc[0]["actor"]) == (12, 13, OUTSTATION)
    w = an.sequence_analysis(df, w=8)
    assert kinds(w) == ["w_exceeded", "k_exceeded"]
    assert w.iloc[0]["actor"] == MASTER


def test_idle_link_without_testfr_flags_both_sides() -> None:
    c = healthy()
    spontaneous(c, wait=30)
    t = an.timeouts(to_frame(c))
    assert kinds(t) == ["t3_no_testfr", "t3_no_testfr"]
    assert set(t["actor"]) == {MASTER, OUTSTATION}
    assert an.timeouts(to_frame(c), t3=40).empty


def test_late_testfr() -> None:
    c = healthy()
    c.wait(30).testfr()
    t = an.timeouts(to_frame(c))
    # the master tested only after 30 s; the outstation never did
    assert sorted(t["detail"].str.contains("only after").tolist()) == [False, True]


def test_unsolicited_confirmation_and_data_while_stopped() -> None:
    c = Conversation()
    c.u("c2s", UFunction.STARTDT_ACT)
    c.wait(0.01).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS, [floating(100, 1.0)]))
    c.wait(0.01).u("s2c", UFunction.STARTDT_CON)
    c.wait(0.01).u("s2c", UFunction.TESTFR_CON)
    c.ack("c2s")
    assert kinds(an.link_findings(to_frame(c))) == ["data_while_stopped", "unsolicited_con"]


def test_capture_gap_resynchronises_instead_of_reporting() -> None:
    c = healthy()
    c.wait(1).capture_gap("s2c", 40)
    c.vs["s2c"] += 2  # two I-frames were in the lost bytes
    spontaneous(c)
    df = to_frame(c)
    assert an.link_findings(df).empty
    assert an.sessions(df).iloc[0]["capture_gaps"] == 1


# -- select before operate, confirmations ---------------------------------------------------


@pytest.mark.parametrize(("steps", "violation"), [
    ([("exec", 0.0)], "execute without select"),
    ([("select_negative", 0.0), ("exec", 1.0)], "execute after negative select"),
    ([("select", 0.0), ("exec", 45.0)], "select expired"),
    ([("select", 0.0), ("exec_off", 1.0)], "execute differs from select"),
])
def test_select_before_operate_violations(steps: list[tuple[str, float]],
                                          violation: str) -> None:
    c = healthy()  # point 2000 is operated with select-before-operate there
    for step, wait in steps:
        if step == "select":
            command(c, 2000, select=True, wait=wait)
        elif step == "select_negative":
            command(c, 2000, select=True, negative=True, wait=wait)
        else:
            command(c, 2000, on=step == "exec", select=False, wait=wait)
    cmds = an.commands(to_frame(c))
    assert cmds["sbo_violation"].tolist()[:3] == ["", "", ""]
    new = cmds.iloc[3:]
    assert new["sbo_violation"].tolist()[-1] == violation
    assert (new["sbo_violation"] != "").sum() == 1


def test_execute_before_select_confirmed() -> None:
    c = healthy()
    obj = [InformationObject(2000, SingleValue.ON, select=True, qualifier=0)]
    exe = [InformationObject(2000, SingleValue.ON, select=False, qualifier=0)]
    c.wait(1).i("c2s", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION, obj))
    c.wait(0.01).i("c2s", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION, exe))
    c.wait(0.05).i("s2c", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_CONFIRMATION, obj))
    c.wait(0.05).i("s2c", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_CONFIRMATION, exe))
    c.wait(0.05).i("s2c", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_TERMINATION, exe))
    c.ack("c2s")
    cmds = an.commands(to_frame(c))
    assert cmds["sbo_violation"].tolist()[3:] == ["", "execute before select confirmed"]
    assert cmds["status"].tolist()[3:] == ["ok", "ok"]


def test_negative_confirmation_and_refusal() -> None:
    c = healthy()
    command(c, 3003, negative=True)
    command(c, 3004, refuse=Cause.UNKNOWN_IO_ADDRESS)
    df = to_frame(c)
    cmds = an.commands(df)
    assert cmds["status"].tolist()[3:] == ["negative", "negative"]
    assert cmds["con_cot"].tolist()[3:] == ["ACTIVATION_CONFIRMATION", "UNKNOWN_IO_ADDRESS"]
    a = an.anomalies(df)
    assert kinds(a) == ["unknown_ioa"] and a.iloc[0]["ioa"] == 3004


def test_unmatched_response() -> None:
    c = healthy()
    obj = [InformationObject(2000, SingleValue.ON, select=False, qualifier=0)]
    c.wait(1).i("s2c", asdu(TypeId.C_SC_NA_1, Cause.ACTIVATION_CONFIRMATION, obj))
    c.ack("c2s")
    cmds = an.commands(to_frame(c))
    assert cmds["status"].tolist() == ["ok", "ok", "ok", "unmatched_response"]


# -- interrogations -------------------------------------------------------------------------


def test_interrogation_without_actterm_and_with_missing_points() -> None:
    c = healthy()
    gi(c, actterm=False, skip=(2, 101))
    ics = an.interrogations(to_frame(c))
    assert ics["status"].tolist() == ["complete", "no_actterm"]
    assert ics.loc[1, "points"] == [1, 100]
    assert ics.loc[1, "missing_points"] == [2, 101]


def test_group_interrogation_is_matched_by_its_cause() -> None:
    c = healthy()
    gi(c, qoi=21)
    ics = an.interrogations(to_frame(c))
    assert ics["group"].tolist() == ["station", "group 1"]
    assert ics.loc[1, "points"] == [1, 2, 100, 101] and ics.loc[1, "status"] == "complete"
    assert ics.loc[1, "missing_points"] == []  # only station interrogations are compared


# -- anomalies ------------------------------------------------------------------------------


def test_command_from_unexpected_host() -> None:
    legit = healthy()
    rogue = Conversation(client=("10.0.0.66", 40000), start=legit.start
                         + dt.timedelta(seconds=10))
    rogue.startdt()
    command(rogue, 3000)
    df = to_frame([legit, rogue])
    a = an.anomalies(df)
    assert kinds(a) == ["unexpected_command_source"]
    assert (a.iloc[0]["src"], a.iloc[0]["stream"], a.iloc[0]["count"]) == (
        "10.0.0.66:40000", 1, 1)
    assert an.anomalies(df, masters=["10.0.0.1", "10.0.0.66"]).empty
    s = an.sessions(df)
    assert s["master"].tolist() == [MASTER, "10.0.0.66:40000"]


def test_command_from_outstation_side() -> None:
    c = healthy()
    command(c, 3000, sender="s2c")
    a = an.anomalies(to_frame(c))
    assert kinds(a) == ["unexpected_command_source"]
    assert a.iloc[0]["src"] == OUTSTATION


def test_unknown_common_address() -> None:
    c = healthy()
    command(c, 3000, ca=7, refuse=Cause.UNKNOWN_ASDU_ADDRESS)
    a = an.anomalies(to_frame(c))
    assert sorted(kinds(a)) == ["unknown_ca", "unknown_ca"]  # refused, and never reports
    assert set(a["ca"]) == {7}
    d = healthy()
    command(d, 3000, ca=7)
    assert kinds(an.anomalies(to_frame(d), known_cas=[1])) == ["unknown_ca"]
    assert an.anomalies(to_frame(d), known_cas=[1, 7]).empty


def test_unknown_point_against_baseline() -> None:
    base = to_frame(healthy())
    c = healthy()
    spontaneous(c, ioa=555)
    a = an.anomalies(to_frame(c), baseline=base)
    assert kinds(a) == ["unknown_ioa"] and a.iloc[0]["ioa"] == 555


def test_bursts() -> None:
    c = healthy()
    for n in range(120):
        c.wait(0.005).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS, [floating(100, n)]))
        if n % 8 == 7:
            c.s("c2s")
    c.ack("c2s")
    for _ in range(12):  # one command every 0.11 s: 10 within one second
        command(c, 3000, wait=0.01, term=False)
    a = an.anomalies(to_frame(c), command_burst=8)
    assert sorted(kinds(a)) == ["burst", "command_burst"]
    assert a[a["kind"] == "command_burst"].iloc[0]["count"] == 12
    assert a[a["kind"] == "burst"].iloc[0]["count"] >= 120
    assert kinds(an.anomalies(to_frame(c), command_burst=11)) == ["burst"]


def test_broadcast_common_address() -> None:
    c = healthy()
    obj = [InformationObject(0, qualifier=20)]
    c.wait(1).i("c2s", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION, obj, ca=0xFFFF))
    c.wait(0.02).i("s2c", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION_CONFIRMATION, obj, ca=1))
    c.wait(0.02).i("s2c", asdu(TypeId.M_SP_NA_1, Cause.INTERROGATED_STATION, [single(1, True)]))
    c.wait(0.02).i("s2c", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION_TERMINATION, obj, ca=1))
    c.ack("c2s")
    command(c, 3000, ca=0xFFFF, term=False)
    df = to_frame(c)
    ics = an.interrogations(df)
    assert ics.iloc[-1]["status"] == "complete" and ics.iloc[-1]["points"] == [1]
    a = an.anomalies(df)
    flags = a[a["kind"] == "broadcast_ca"]
    # the command, and the outstation's answers mirroring the global address
    assert flags[["type_name", "severity"]].values.tolist() == [["C_IC_NA_1", "low"],
                                                                 ["C_SC_NA_1", "high"],
                                                                 ["C_SC_NA_1", "high"]]
    assert flags["count"].tolist() == [1, 1, 1]


# -- points and statistics ------------------------------------------------------------------


def test_point_views() -> None:
    c = healthy()
    spontaneous(c, value=12.5)  # same value: no change
    spontaneous(c, value=13.0, quality=Quality(invalid=True))
    spontaneous(c, value=14.0)
    df = to_frame(c)
    latest = an.latest_values(df).set_index("ioa")
    assert latest.loc[100, "value"] == 14.0 and latest.loc[100, "quality"] == ""
    assert latest.loc[100, "reports"] == 5  # GI, 12.5, 12.5, 13.0, 14.0
    assert latest.loc[100, "changes"] == 3
    assert latest.loc[2, "value_text"] == "ON"  # the M_SP_TB_1 event after GI OFF
    ch = an.value_changes(df)
    assert ch[ch["ioa"] == 100]["value"].tolist() == [1000.0, 12.5, 13.0, 14.0]
    q = an.quality_transitions(df)
    assert q[["ioa", "prev_quality", "quality"]].values.tolist() == [[100, "", "IV"],
                                                                      [100, "IV", ""]]
    assert len(an.point_timeline(df, ca=1, ioa=100)) == 5


def test_statistics() -> None:
    df = to_frame(healthy())
    types = an.type_counts(df)
    row = types[(types["type_name"] == "C_SC_NA_1") & (types["direction"] == "c2s")].iloc[0]
    assert (row["asdus"], row["objects"]) == (3, 3)
    causes = an.cause_counts(df)
    assert causes[causes["cot_name"] == "INTERROGATED_STATION"]["objects"].sum() == 4
    m = an.type_cause_matrix(df)
    assert m.loc["C_SC_NA_1", "ACTIVATION_TERMINATION"] == 2
    apci = an.apci_counts(df)
    assert apci.loc["U STARTDT_ACT", "c2s"] == 1
    rate = an.message_rate(df, "10s")
    assert rate.to_numpy().sum() == len(an.apdus(df))


def test_investigations_accept_parquet_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    c = healthy()
    command(c, 3002, con=False)
    path = tmp_path / "x.parquet"
    with an.ParquetSink(path) as sink:
        sink.write(pa.RecordBatch.from_pandas(to_frame(c), schema=an.SCHEMA,
                                              preserve_index=False))
    assert an.commands(path)["status"].tolist()[-1] == "unanswered"
    assert an.commands(tmp_path)["status"].tolist()[-1] == "unanswered"


def test_empty_input() -> None:
    df = an.SCHEMA.empty_table().to_pandas()
    for fn in (an.sessions, an.link_findings, an.commands, an.interrogations, an.anomalies,
               an.latest_values, an.value_changes, an.quality_transitions):
        assert fn(df).empty, fn.__name__
    assert "rows" in an.summary_text(df)


def test_interrogation_answered_within_one_segment() -> None:
    # ACTCON, data and ACTTERM with one timestamp (one TCP segment): file order decides
    c = Conversation()
    c.startdt()
    obj = [InformationObject(0, qualifier=20)]
    c.wait(1).i("c2s", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION, obj))
    c.wait(0.01).i("s2c", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION_CONFIRMATION, obj))
    c.i("s2c", asdu(TypeId.M_SP_NA_1, Cause.INTERROGATED_STATION, [single(1, True)]))
    c.i("s2c", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION_TERMINATION, obj))
    c.ack("c2s")
    ics = an.interrogations(to_frame(c))
    assert ics["status"].tolist() == ["complete"] and ics.loc[0, "points"] == [1]
