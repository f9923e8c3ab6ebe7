"""Secure authentication messages through the dissector, the analyzer and ``iec104 summary``.

A pcap written with our codec holds one IEC 62351-5 exchange: a command challenged by the
outstation and answered, a failed answer (S_ER_NA_1), an aggressive-mode command, a session
key status that reports a failure and a security statistic (S_IT_TC_1).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from iec104 import analyzer
from iec104.codec import (
    ASDU,
    AggressiveModeRequest,
    AuthenticationChallenge,
    AuthenticationErrorValue,
    AuthenticationReply,
    BinaryCounterValue,
    Cause,
    IFrame,
    InformationObject,
    KeyStatus,
    SecurityStatisticValue,
    SingleValue,
    Time,
    TimeSize,
    TypeId,
    encode_apdu,
    encode_asdu,
)
from iec104.dissector import dissect_table
from tests.support.pcapwriter import write_pcap

T = TypeId
ETM = Time(TimeSize.SEVEN, 1234, False, 20, False, 22, 2, 14, 11, 23)
COMMAND = ASDU(T.C_SC_NA_1, False, Cause.ACTIVATION, False, False, 0, 1,
               (InformationObject(5, SingleValue.ON, select=False, qualifier=0),))


def _secure(type_id: TypeId, value: object, time: Time | None = None,
            cause: Cause = Cause.SPONTANEOUS) -> ASDU:
    return ASDU(type_id, False, cause, False, False, 0, 1,
                (InformationObject(None, value, None, time, None, 0xC0),))  # type: ignore[arg-type]


EXCHANGE: list[tuple[str, ASDU]] = [
    ("c2s", COMMAND),
    ("s2c", _secure(T.S_CH_NA_1, AuthenticationChallenge(1, 1, 4, 1, bytes(range(16))))),
    ("c2s", _secure(T.S_RP_NA_1, AuthenticationReply(1, 1, b"\x11" * 16))),
    ("c2s", COMMAND),
    ("s2c", _secure(T.S_CH_NA_1, AuthenticationChallenge(2, 1, 4, 1, bytes(16)))),
    ("c2s", _secure(T.S_RP_NA_1, AuthenticationReply(2, 1, b"\x22" * 16))),
    ("s2c", _secure(T.S_ER_NA_1, AuthenticationErrorValue(2, 1, 0, 1, "MAC mismatch"), ETM)),
    ("c2s", _secure(T.S_AR_NA_1, AggressiveModeRequest(encode_asdu(COMMAND), 3, 1,
                                                       b"\x33" * 16))),
    ("s2c", _secure(T.S_KS_NA_1, KeyStatus(7, 1, 2, 4, 4, bytes(4), b""))),
    ("s2c", ASDU(T.S_IT_TC_1, False, Cause.SPONTANEOUS, False, False, 0, 1, (
        InformationObject(3, SecurityStatisticValue(
            0, BinaryCounterValue(5, 1, False, False, False)), None, ETM),))),
]


@pytest.fixture(scope="module")
def pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ssn = {"c2s": 0, "s2c": 0}
    messages = []
    for direction, asdu in EXCHANGE:
        messages.append((direction, encode_apdu(IFrame(ssn[direction], 0, encode_asdu(asdu)))))
        ssn[direction] += 1
    return write_pcap(tmp_path_factory.mktemp("sec") / "secure.pcap", messages, seed=7)


def test_rows_without_errors(pcap: Path) -> None:
    df = dissect_table(pcap).to_pandas()
    rows = df[df["apci"] == "I"]
    assert len(rows) == len(EXCHANGE)
    assert rows["error"].isna().all()
    secure = rows[rows["type_id"].between(81, 95)]
    assert secure["ioa"].isna().all() and (secure["obj"] == 0).all()
    assert list(secure["type_name"]) == ["S_CH_NA_1", "S_RP_NA_1", "S_CH_NA_1", "S_RP_NA_1",
                                         "S_ER_NA_1", "S_AR_NA_1", "S_KS_NA_1"]
    text = dict(zip(secure["type_name"], secure["value_text"]))
    assert text["S_ER_NA_1"] == ("error=AUTHENTICATION_FAILED csq=2 user=1 aid=0 "
                                 "text='MAC mismatch'")
    assert text["S_RP_NA_1"] == "csq=2 user=1 mac=" + "22" * 16
    assert text["S_AR_NA_1"].startswith("asdu=C_SC_NA_1:2d01")
    error = secure[secure["type_name"] == "S_ER_NA_1"].iloc[0]
    assert error["value"] == 1 and error["qualifier"] == 0xC0
    assert str(error["time_tag"]) == "2023-11-14 22:20:01.234000+00:00"
    stat = rows[rows["type_name"] == "S_IT_TC_1"].iloc[0]
    assert (stat["ioa"], stat["value"], stat["value_text"]) == (3, 5, "5 seq=1 aid=0")


def test_authentication_counts_per_session(pcap: Path) -> None:
    table = analyzer.authentication(pcap)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["client"].startswith("127.0.0.1:")
    assert row["server"] == "127.0.0.1:2404"
    counts = {k: int(row[k]) for k in ("challenges", "replies", "aggressive", "key_statuses",
                                       "errors", "key_failures", "failures")}
    assert counts == {"challenges": 2, "replies": 2, "aggressive": 1, "key_statuses": 1,
                      "errors": 1, "key_failures": 1, "failures": 2}
    assert row["error_codes"] == "AUTHENTICATION_FAILED 1"


def test_no_secure_messages_no_rows(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "plain.pcap",
                      [("c2s", encode_apdu(IFrame(0, 0, encode_asdu(COMMAND))))], seed=1)
    table = analyzer.authentication(path)
    assert len(table) == 0 and list(table.columns) == analyzer.security.COLUMNS


def test_summary_and_read_show_them(pcap: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "iec104.cli", "summary", str(pcap)],
                         capture_output=True, text=True, check=True).stdout
    assert "== Secure authentication: 2 challenges, 2 replies, 2 failures ==" in out
    assert "AUTHENTICATION_FAILED 1" in out
    out = subprocess.run([sys.executable, "-m", "iec104.cli", "read", str(pcap)],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if "S_ER_NA_1" in x)
    assert "IOA" not in line
    assert "error=AUTHENTICATION_FAILED csq=2 user=1 aid=0 text='MAC mismatch'" in line


def test_verify_counts_them_as_a_documented_difference(pcap: Path) -> None:
    """``iec104 verify``: tshark 4.0's 'IOA' + raw view of the messages is our octets."""
    from iec104.verify import verify
    from tests.support.tshark import ensure_tshark

    ensure_tshark()
    result = verify(pcap)
    assert not result.disagreements, result.disagreements
    assert result.known["secure authentication"] == 7
