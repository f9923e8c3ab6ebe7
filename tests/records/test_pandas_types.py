"""pandas types of every loader (nullable integers and booleans, UTC timestamps that DuckDB
subtracts without casts) and short floats shown as the device sent them."""

from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

import iec104
import iec104.analyzer as an
from iec104.records.schema import SCHEMA
from iec104.codec import (
    ASDU,
    FLOAT32_TYPE_IDS,
    Cause,
    FloatingValue,
    IFrame,
    InformationObject,
    Quality,
    TypeId,
    encode_apdu,
    encode_asdu,
    float32_text,
)
from tests.support.cli import STATION, run
from tests.support.pcapwriter import write_pcap

INTS = [f.name for f in SCHEMA if str(f.type).startswith("int")]
BOOLS = [f.name for f in SCHEMA if str(f.type) == "bool"]


def check_types(df: pd.DataFrame) -> None:
    for name in INTS:
        assert str(df[name].dtype).startswith("Int"), (name, df[name].dtype)
    for name in BOOLS:
        assert str(df[name].dtype) == "boolean", (name, df[name].dtype)
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert str(df["time_tag"].dtype) == "datetime64[ns, UTC]"


def test_every_loader_returns_nullable_dtypes(tmp_path: Path) -> None:
    out = tmp_path / "station.parquet"
    assert run("convert", STATION, "-o", out, "-q").returncode == 0
    frames = {
        "pd.read_parquet": pd.read_parquet(out),
        "iec104.load": iec104.load(out),
        "an.as_frame(parquet)": an.as_frame(out),
        "an.as_frame(capture)": an.as_frame(STATION),
    }
    for name, df in frames.items():
        check_types(df)
        ioa = df["ioa"].dropna()
        assert str(ioa.iloc[0]) == "0" and "114" in ioa.astype(str).tolist(), name
        assert df["sq"].isna().any() and df["sq"].dropna().isin([True, False]).all(), name
    # the README's recipe prints the IOA as 114, not 114.0
    text = frames["pd.read_parquet"].query("type_name == 'M_ME_TF_1'").groupby(
        "ioa")["value"].count().to_string()
    assert "114 " in text and "114.0" not in text


def test_duckdb_subtracts_timestamps_without_casts(tmp_path: Path) -> None:
    df = iec104.load(_converted(tmp_path))
    (span,) = duckdb.sql("SELECT max(time) - min(time) AS span, "
                         "count(*) FILTER (WHERE ioa = 114) AS n FROM df").fetchall()
    assert span[0] == (df["time"].max() - df["time"].min()).to_pytimedelta()
    assert span[1] == (df["ioa"] == 114).sum()


def _converted(tmp_path: Path) -> Path:
    out = tmp_path / "s.parquet"
    assert run("convert", STATION, "-o", out, "-q").returncode == 0
    return out


def _digits(text: str) -> int:
    return len(Decimal(text).normalize().as_tuple().digits)


@given(st.integers(0, 2**32 - 1))
def test_float32_text_is_the_shortest_text_of_the_same_binary32(bits: int) -> None:
    wire = bits.to_bytes(4, "little")
    value = struct.unpack("<f", wire)[0]
    text = float32_text(value)
    if value != value or value in (float("inf"), float("-inf")):
        assert text == repr(value)
        return
    assert struct.pack("<f", float(text)) == wire  # reads back as what was sent
    # as short as numpy's shortest unique binary32 text (Dragon4)
    shortest = np.format_float_scientific(np.float32(value), unique=True)
    assert _digits(text) <= _digits(shortest)


def test_float32_text_examples() -> None:
    assert float32_text(struct.unpack("<f", struct.pack("<f", 3.14))[0]) == "3.14"
    assert float32_text(50.0) == "50.0" and float32_text(-0.0) == "-0.0"
    assert float32_text(1e300) == "1e+300"  # no binary32: as it is
    assert TypeId.M_ME_NC_1 in FLOAT32_TYPE_IDS and TypeId.M_ME_NB_1 not in FLOAT32_TYPE_IDS


def test_read_and_report_show_short_floats_as_sent(tmp_path: Path) -> None:
    asdu = ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, 1,
                (InformationObject(114, FloatingValue(3.14), Quality()),))
    capture = write_pcap(tmp_path / "f.pcap", [("s2c", encode_apdu(IFrame(0, 0,
                                                                           encode_asdu(asdu))))],
                         seed=3)
    tree = run("read", "-V", capture)
    assert "IOA 114: 3.14\n" in tree.stdout and "3.140000104904175" not in tree.stdout
    line = run("read", capture)
    assert "IOA 114=3.14" in line.stdout
    html_out = tmp_path / "r.html"
    assert run("report", capture, "-o", html_out).returncode == 0
    page = html_out.read_text()
    assert "<td>3.14</td>" in page and "3.140000" not in page


def test_summary_labels_the_common_addresses_as_a_list() -> None:
    out = run("summary", STATION).stdout
    assert "common addresses (list)          1\n" in out
