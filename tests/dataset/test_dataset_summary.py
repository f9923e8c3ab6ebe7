"""``iec104 summary DIR``: the investigations run per (capture, stream), in bounded memory.

One capture of many interleaved connections, some of whose findings depend on the other
connections (a host commanding after another ran the general interrogation, a select on one
connection and an execute without one on another, commands to a common address that reports
on another connection, an outstation that terminates commands elsewhere, a command burst
spread over two connections): the per-connection findings must equal the analyzer's on the
whole capture. A bigger one, summarized as a real subprocess, must stay far below the memory
that loading the capture takes (peak RSS of the child processes, not time).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from iec104.analyzer import anomalies, interrogations, summary
from iec104.codec import Cause, InformationObject, TypeId
from iec104.dataset import Converted, convert_many, load
from iec104.dataset.summary import findings, summary_text
from tests.analyzer.test_analyzer import command, gi
from tests.support import cli
from tests.support.conversation import START, Conversation, asdu, floating, single, write_pcap

OUTSTATION = ("10.0.0.2", 2404)


def _connection(convs: list[Conversation], host: str, offset: float) -> Conversation:
    conv = Conversation(client=(host, 40000 + len(convs)), server=OUTSTATION,
                        start=START + dt.timedelta(seconds=offset))
    convs.append(conv)
    return conv.startdt()


def station(fillers: int = 24) -> list[Conversation]:
    """The connections of one capture (see the module docstring), interleaved in time."""
    convs: list[Conversation] = []
    gi(_connection(convs, "10.0.0.1", 0.0), ca=1)  # the master ran a GI
    command(_connection(convs, "10.0.0.9", 0.3), 3000)  # another host commands
    command(_connection(convs, "10.0.0.1", 0.6), 3001, ca=2, term=False)  # CA 2 reports ...
    _connection(convs, "10.0.0.1", 0.9).wait(1).i(  # ... on this connection only
        "s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS, [floating(100, 1.5)], ca=2))
    command(_connection(convs, "10.0.0.1", 1.2), 4000, select=True)  # a select here ...
    command(_connection(convs, "10.0.0.1", 1.5), 4000)  # ... an execute without one there
    command(_connection(convs, "10.0.0.1", 1.8), 3002, term=False)  # never terminated
    burst = [_connection(convs, "10.0.0.7", 2.0), _connection(convs, "10.0.0.7", 2.05)]
    for k in range(6):  # 12 commands within a second, 6 on each connection
        for n, conv in enumerate(burst):
            command(conv, 5000 + 100 * n + k, wait=0.01, term=False)
    for n in range(fillers):
        conv = _connection(convs, f"10.0.1.{n}", 0.1 * n)
        for k in range(3):
            conv.wait(0.5).i("s2c", asdu(TypeId.M_ME_NC_1, Cause.SPONTANEOUS,
                                         [floating(100 + k, 10.0 * n + k)]))
        conv.ack("c2s").testfr()
    return convs


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many")
    capture = write_pcap(root / "station.pcap", station())
    results = convert_many([str(capture)], str(root / "ds"), workers=0)
    assert all(isinstance(r, Converted) for r in results), results
    return root / "ds"


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    table = table.drop(columns=[c for c in ("capture",) if c in table.columns])
    return table.astype(object).where(table.notna(), None).reset_index(drop=True)


def test_one_capture_of_many_connections_gives_the_findings_of_the_whole(many: Path) -> None:
    found = findings(many)
    whole = summary(load(many).drop(columns=["capture"]))
    assert len(found.sessions) == len(whole["sessions"]) == 33
    pd.testing.assert_frame_equal(_comparable(found.sessions), _comparable(whole["sessions"]))
    pd.testing.assert_frame_equal(_comparable(found.anomalies),
                                  _comparable(whole["anomalies"]))
    for key, column in (("link", "kind"), ("commands", "status"),
                        ("interrogations", "status"), ("anomalies", "kind")):
        assert found.counts[key] == Counter(whole[key][column].astype(str)), key
    cmds = whole["commands"]
    assert found.sbo_violations == int((cmds["sbo_violation"].astype(str) != "").sum()) == 1
    # the findings that need the other connections are there, each once
    kinds = Counter(found.anomalies["kind"])
    assert kinds["command_burst"] == 1
    sources = found.anomalies[found.anomalies["kind"] == "unexpected_command_source"]
    assert set(sources["src"].str.split(":").str[0]) == {"10.0.0.9", "10.0.0.7"}
    assert "unknown_ca" not in kinds  # CA 2 reports (elsewhere), CA 1 too
    assert found.counts["commands"]["no_actterm"] == 2 + 12


def test_the_analyzer_scoped_to_connections_gives_their_findings_of_the_whole(
        many: Path) -> None:
    """``streams=``: the findings of those connections, the rest read as context only."""
    df = load(many).drop(columns=["capture"])
    whole = {"anomalies": anomalies(df), "interrogations": interrogations(df)}
    assert len(whole["interrogations"]) and len(whole["anomalies"])
    scoped: dict[str, list[pd.DataFrame]] = {name: [] for name in whole}
    for stream in sorted(df["stream"].dropna().unique()):
        for name, table in (("anomalies", anomalies(df, streams=[stream])),
                            ("interrogations", interrogations(df, streams=[stream]))):
            scoped[name].append(table[table["stream"].eq(stream).fillna(False).astype(bool)])
    for name, table in whole.items():
        mine = pd.concat(scoped[name])
        order = ["time", "kind"] if name == "anomalies" else ["time"]
        pd.testing.assert_frame_equal(
            _comparable(mine.sort_values(order, kind="stable")),
            _comparable(table.sort_values(order, kind="stable")), obj=name)


def test_the_summary_text_of_many_connections(many: Path) -> None:
    proc = cli.run("summary", many, "--max-rows", "50")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"Source: {many}\n" + summary_text(many, max_rows=50)
    assert "connections (capture, stream)    33" in proc.stdout
    assert "== Select-before-operate violations: 1 ==" in proc.stdout
    filtered = cli.run("summary", many, "-Y", "type_id == C_SC_NA_1")
    assert filtered.returncode == 0, filtered.stderr
    streams = load(many, filter="type_id == C_SC_NA_1")["stream"].nunique()
    assert streams == 7  # the connections with commands
    assert f"== Connections ({streams}) ==" in filtered.stdout


# -- memory ----------------------------------------------------------------------------------

_PEAK = ("import resource, subprocess, sys; "
         "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_mib(*command: str | Path) -> float:
    """Peak RSS (MiB) of ``command`` run as a child of a fresh process (so no other child of
    the test run counts)."""
    out = subprocess.run([sys.executable, "-c", _PEAK, *map(str, command)], check=True,
                         capture_output=True, text=True, env=cli.env()).stdout
    return int(out.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def interrogated(connections: int, asdus: int, objects: int) -> list[Conversation]:
    """Connections answering a general interrogation with ``asdus`` ASDUs of ``objects``
    single points each (one row per object, at most 127 per ASDU), interleaved in time."""
    convs = []
    for n in range(connections):
        conv = Conversation(client=(f"10.0.{n // 200}.{n % 200 + 1}", 40000 + n),
                            server=OUTSTATION, start=START + dt.timedelta(seconds=0.05 * n))
        convs.append(conv.startdt())
        gi_obj = [InformationObject(0, qualifier=20)]
        conv.wait(1).i("c2s", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION, gi_obj, ca=n + 1))
        conv.wait(0.02).i("s2c", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION_CONFIRMATION, gi_obj,
                                      ca=n + 1))
        for a in range(asdus):
            points = [single(1000 + a * objects + k, k % 3 == 0) for k in range(objects)]
            conv.wait(0.01).i("s2c", asdu(TypeId.M_SP_NA_1, Cause.INTERROGATED_STATION, points,
                                          ca=n + 1, sequence=True))
            if a % 8 == 7:
                conv.ack("c2s", 0.001)
        conv.wait(0.02).i("s2c", asdu(TypeId.C_IC_NA_1, Cause.ACTIVATION_TERMINATION, gi_obj,
                                      ca=n + 1))
        conv.ack("c2s")
    return convs


@pytest.mark.slow
def test_summary_of_a_big_capture_stays_in_bounded_memory(tmp_path: Path) -> None:
    """70 connections answering interrogations: 250k rows in one capture. The investigations
    on the whole capture loaded (what a summary per capture did) need far more memory than
    the summary per connection with DuckDB held to 64 MB (measured: about 540 against
    277 MB above the interpreter with its imports, which takes 130 MB; the investigations
    on the whole took 710 before the commands and interrogations stopped turning every
    column into Python values)."""
    capture = write_pcap(tmp_path / "big.pcap", interrogated(70, 30, 120))
    ds = tmp_path / "ds"
    assert cli.run("convert", capture, "--dataset", ds, "--workers", "0", "-q",
                   timeout=600).returncode == 0
    rows = len(load(ds, columns=["apdu"]))
    assert rows > 240_000
    imports = "import duckdb, pandas, iec104.analyzer, iec104.dataset.summary"
    base = peak_mib(sys.executable, "-c", imports)
    per_connection = peak_mib(sys.executable, "-m", "iec104.cli", "summary", ds,
                              "--memory-limit", "64MB")
    whole = peak_mib(sys.executable, "-c", f"{imports}\n"
                     "from iec104.analyzer import summary\n"
                     f"summary(iec104.dataset.load({str(ds)!r}).drop(columns=['capture']))")
    assert per_connection - base < 0.6 * (whole - base), (base, per_connection, whole)
