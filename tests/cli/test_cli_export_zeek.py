"""``iec104 export --zeek DIR [--json]``: spicy-iec104's logs, read back with a Zeek log reader
from PyPI (parsezeeklogs, TSV and JSON) and with pandas through the ``#fields`` header, and
checked against ``iec104 convert``'s rows of the same capture. Real subprocesses."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from parsezeeklogs import read_zeek

from iec104.codec import (
    ASDU,
    Cause,
    FloatingValue,
    IFrame,
    InformationObject,
    TypeId,
    UFrame,
    UFunction,
    encode_apdu,
    encode_asdu,
)
from iec104.records.zeek import IO_FIELDS
from tests.conftest import public_capture
from tests.support.cli import COMMANDS, STATION, run
from tests.support.pcapwriter import write_pcap

CONN = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "is_orig", "apdu"]


def export(tmp_path: Path, source: Path, *extra: str) -> Path:
    out = tmp_path / ("zeek-json" if "--json" in extra else "zeek")
    proc = run("export", "--zeek", out, source, *extra)
    assert proc.returncode == 0, proc.stderr
    return out


def logs(directory: Path) -> dict[str, list[dict[str, Any]]]:
    return {p.name.removesuffix(".log"): list(read_zeek(p))
            for p in sorted(directory.glob("*.log"))}


def rows(tmp_path: Path, source: Path) -> pd.DataFrame:
    parquet = tmp_path / "rows.parquet"
    assert run("convert", source, "-o", parquet, "-q").returncode == 0
    return pd.read_parquet(parquet)


def pandas_tsv(path: Path) -> pd.DataFrame:
    """A Zeek TSV log read by pandas alone: names from ``#fields``, '-' as unset."""
    lines = path.read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields\t")).split("\t")[1:]
    return pd.read_csv(path, sep="\t", comment="#", names=fields, na_values=["-"],
                       keep_default_na=False)


@pytest.mark.parametrize("capture", [STATION, COMMANDS])
def test_tsv_logs_hold_every_apdu_and_object_of_convert(tmp_path: Path, capture: Path) -> None:
    out = export(tmp_path, capture)
    got = logs(out)
    df = rows(tmp_path, capture)
    apdus = df[df["apci"].notna()].drop_duplicates("apdu")
    assert {k: len(v) for k, v in got.items() if k.startswith("iec104-apci_")} == {
        f"iec104-apci_{k.lower()}": n for k, n in Counter(apdus["apci"]).items()}
    assert len(got["iec104-asdu-ident"]) == (apdus["apci"] == "I").sum()
    objects = df[df["obj"].notna()]
    for type_id, n in Counter(objects["type_id"]).items():
        name = TypeId(type_id).name
        log = got[f"iec104-{name}"]
        assert len(log) == n, name
        assert {r["type_id"] for r in log} == {name} and {r["type_id_code"] for r in log} == {
            type_id}
        assert sorted(r["io.obj_addr"] for r in log) == sorted(
            objects[objects["type_id"] == type_id]["ioa"])
    # one uid per TCP connection, the client is the originator, APDUs counted from 1 in each
    every = [r for log in got.values() for r in log]
    assert len({r["uid"] for r in every}) == apdus["stream"].nunique()
    clients = {(c["src"], c["sport"], c["dport"])
                for _, c in apdus[apdus["direction"] == "c2s"].iterrows()}
    assert {(r["id.orig_h"], r["id.orig_p"], r["id.resp_p"]) for r in every} == clients
    apci = [r for k, log in got.items() if k.startswith("iec104-apci_") for r in log]
    for uid in {r["uid"] for r in apci}:
        counters = sorted(r["apdu"] for r in apci if r["uid"] == uid)
        assert counters == list(range(1, len(counters) + 1))
    assert sum(r["is_orig"] for r in apci) == (apdus["direction"] == "c2s").sum()
    assert all(k.startswith("iec104-") for k in got) and "iec104-unk" not in got
    assert not list(out.glob(".*"))  # no partial file left


def test_fields_and_values_are_spicy_iec104s(tmp_path: Path) -> None:
    out = export(tmp_path, STATION)
    got = logs(out)
    i = got["iec104-apci_i"][0]
    assert list(i) == [*CONN, "ssn", "rsn"]
    assert list(got["iec104-apci_s"][0]) == [*CONN, "rsn"]
    assert list(got["iec104-apci_u"][0]) == [*CONN, "startdt", "stopdt", "testfr"]
    u = got["iec104-apci_u"]
    assert (u[0]["startdt"], u[1]["startdt"]) == (1, 2)  # act, con: the 2-bit field
    assert list(got["iec104-asdu-ident"][0])[8:] == [
        "ident.type_id", "ident.nobj", "ident.sq", "ident.cot", "ident.pn", "ident.test",
        "ident.originator_address", "ident.common_address"]
    assert {r["ident.cot"] for r in got["iec104-asdu-ident"]} >= {"Act", "Actcon", "Spont"}
    sp = got["iec104-M_SP_NA_1"][0]
    assert list(sp)[8:] == ["type_id", "type_id_code", "io.obj_addr", "io.siq.spi",
                            "io.siq.bl", "io.siq.sb", "io.siq.nt", "io.siq.iv"]
    tf = got["iec104-M_ME_TF_1"][0]
    assert [k for k in tf if k.startswith("io.tt.")] == [
        "io.tt.ms", "io.tt.minute", "io.tt.iv", "io.tt.hour", "io.tt.su", "io.tt.day",
        "io.tt.dow", "io.tt.month", "io.tt.year"]
    df = rows(tmp_path, STATION)
    value = df[(df["type_id"] == TypeId.M_ME_TF_1)]["value"].iloc[0]
    assert tf["io.r32"] == float(f"{value:.9g}") or struct.pack("<f", tf["io.r32"]) == \
        struct.pack("<f", value)
    tag = df[(df["type_id"] == TypeId.M_ME_TF_1)]["time_tag"].iloc[0]
    assert (tf["io.tt.hour"], tf["io.tt.minute"], tf["io.tt.day"], tf["io.tt.month"],
            tf["io.tt.year"]) == (tag.hour, tag.minute, tag.day, tag.month, tag.year % 100)
    assert tf["io.tt.ms"] == tag.second * 1000 + tag.microsecond // 1000
    # a command's qualifier and S/E bit
    sc = got["iec104-C_SC_NA_1"][0]
    assert {"io.sco.scs", "io.sco.qu", "io.sco.se"} <= set(sc)
    # pandas alone, through the #fields header
    frame = pandas_tsv(out / "iec104-M_ME_TF_1.log")
    assert list(frame.columns) == list(tf) and len(frame) == len(got["iec104-M_ME_TF_1"])
    assert frame["io.obj_addr"].tolist() == [r["io.obj_addr"] for r in got["iec104-M_ME_TF_1"]]
    lines = (out / "iec104-apci_i.log").read_text().splitlines()
    assert lines[0] == "#separator \\x09" and lines[4] == "#path\tiec104-apci_i"
    assert lines[-1].startswith("#close\t")


def test_json_logs_are_the_same_records(tmp_path: Path) -> None:
    tsv = logs(export(tmp_path, STATION))
    js = logs(export(tmp_path, STATION, "--json"))
    assert tsv.keys() == js.keys()
    for name, records in tsv.items():
        assert len(records) == len(js[name])
        for a, b in zip(records, js[name], strict=True):
            assert b["ts"].endswith("Z")  # ISO 8601, spicy-iec104's JSON setting
            assert pd.Timestamp(b["ts"]).timestamp() == pytest.approx(a["ts"], abs=1e-6)
            assert {k: v for k, v in a.items() if k != "ts" and v is not None} == \
                {k: v for k, v in b.items() if k != "ts"}


def test_a_proxy_log_directory_exports_like_the_capture(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    folder.mkdir()
    assert run("convert", STATION, "-o", folder / "part.parquet", "-q").returncode == 0
    from_capture = logs(export(tmp_path, STATION))
    out = tmp_path / "from-dir"
    assert run("export", "--zeek", out, folder).returncode == 0
    assert logs(out) == from_capture


def test_types_spicy_iec104_does_not_log_go_to_unk_and_gaps_are_counted(
        tmp_path: Path) -> None:
    quality = None
    p_me_nc = ASDU(TypeId.P_ME_NC_1, False, Cause.ACTIVATION, False, False, 0, 3,
                   (InformationObject(700, FloatingValue(1.5), quality, qualifier=1),))
    capture = write_pcap(tmp_path / "p.pcap", [
        ("c2s", encode_apdu(UFrame(UFunction.STARTDT_ACT))),
        ("c2s", encode_apdu(IFrame(0, 0, encode_asdu(p_me_nc)))),
        ("c2s", b"\x00\x01junk")], seed=2)
    out = tmp_path / "z"
    proc = run("export", "--zeek", out, capture)
    assert proc.returncode == 0, proc.stderr
    got = logs(out)
    (unk,) = got["iec104-unk"]
    assert unk["type_id"] == "P_ME_NC_1" and unk["type_id_code"] == 112
    assert unk["data"] == encode_asdu(p_me_nc)[6:].hex()  # the objects after the identifier
    assert "1 rows that are no APDU" in proc.stderr
    assert TypeId.P_ME_NC_1 not in IO_FIELDS


def test_public_capture_exports_and_parses(tmp_path: Path) -> None:
    out = export(tmp_path, public_capture("iti_090813-diverse-hydro-commands.pcap"))
    got = logs(out)
    assert sum(len(v) for v in got.values()) > 50
    for path in out.glob("*.log"):
        assert len(pandas_tsv(path)) == len(got[path.stem])


def test_usage_errors(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = run("export", "--zeek", afile, STATION)
    assert bad.returncode == 2 and "is not a directory" in bad.stderr
    missing = run("export", "--zeek", tmp_path / "z", tmp_path / "nope.pcap")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert run("export", STATION).returncode == 2  # --zeek is required
    assert not (tmp_path / "z").exists()
