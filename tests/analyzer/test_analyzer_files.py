"""Files rebuilt from captures of real transfers (``iec104.analyzer.files``).

Our client and server talk through a relay on 127.0.0.1 that records the octets of each
direction as they arrive (``tests/support/filetransfer.py``); those octets become a pcap
(``tests/support/pcapwriter.py``), which the dissector converts and the analyzer reads back.
The proxy's own Parquet log of a transfer is read the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from iec104 import analyzer
from iec104.codec import ASDU, TypeId
from iec104.recorder.rules import Rule
from tests.support.filetransfer import expected_files, record_transfers
from tests.support.pcapwriter import write_pcap

pytestmark = pytest.mark.timeout(120)


def as_tuples(table: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [(r.direction, r.ca, r.ioa, r.name, r.bytes, r.checksum_ok, r.status)
            for r in table.itertuples()]


async def test_files_rebuilt_from_a_pcap_of_the_transfer(tmp_path: Path) -> None:
    chunks = await record_transfers()
    pcap = write_pcap(tmp_path / "files.pcap", chunks, segment_size=1400)
    table = analyzer.files(pcap)
    assert as_tuples(table) == expected_files()
    assert (table["size"] == table["bytes"].map(len)).all()
    assert table["first_frame"].notna().all() and table["first_time"].notna().all()
    assert (table["last_frame"] >= table["first_frame"]).all()


async def test_section_damaged_in_transit_rebuilt_as_the_receiver_got_it(
        tmp_path: Path) -> None:
    def flip(asdu: ASDU, direction: str) -> list[ASDU]:
        obj = asdu.objects[0]
        value = obj.value
        bad = bytes([value.data[0] ^ 0x10]) + value.data[1:]  # type: ignore[union-attr]
        return [asdu._replace(objects=(obj._replace(value=value._replace(  # type: ignore[union-attr]
            data=bad)),))]
    rule = Rule(flip, type_id=TypeId.F_SG_NA_1, limit=1)
    chunks = await record_transfers(rules=[rule])
    assert rule.applied == 1
    table = analyzer.files(write_pcap(tmp_path / "damaged.pcap", chunks))
    assert as_tuples(table) == expected_files()


async def test_files_rebuilt_from_the_proxy_log(tmp_path: Path) -> None:
    await record_transfers(log=tmp_path / "log")
    assert as_tuples(analyzer.files(tmp_path / "log")) == expected_files()


def test_no_files() -> None:
    table = analyzer.files(pd.DataFrame({c: pd.Series(dtype="object") for c in (
        "apdu", "apci", "type_id", "raw", "stream", "time", "frame", "direction")}))
    assert table.empty and "bytes" in table.columns
