"""Files rebuilt from captures of real transfers (``iec104.analyzer.files``), and tshark's
view of every F_* APDU our driver sends.

Our client and server talk through a relay on 127.0.0.1 that records the octets of each
direction as they arrive; those octets become a pcap (``tests/support/pcapwriter.py``), which
the dissector converts and the analyzer reads back. The proxy's own Parquet log of a transfer
is read the same way.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any, Self

import pandas as pd
import pytest
from test_codec_tshark import compare_asdu

import iec104
from iec104 import analyzer
from iec104.codec import ASDU, Framer, TypeId, decode_asdu
from iec104.codec.files import FILE_TYPES
from iec104.driver import MemoryFiles
from iec104.proxy import Proxy
from iec104.proxy.rules import Rule
from tests.support.pcapwriter import write_pcap
from tests.support.tshark import ensure_tshark, tshark_apdus

pytestmark = pytest.mark.timeout(120)

HOST = "127.0.0.1"
CA = 3
FILES = {(CA, 500 + n, n): random.Random(n).randbytes(size)
         for n, size in enumerate((0, 1, 236, 3000), start=1)}


class Relay:
    """Forwards one TCP connection to ``upstream`` and records ``(direction, octets)`` in
    the order they arrive."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.chunks: list[tuple[str, bytes]] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await asyncio.gather(*self._tasks)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream)
        self._tasks += [asyncio.ensure_future(self._pump(reader, up_writer, "c2s")),
                        asyncio.ensure_future(self._pump(up_reader, writer, "s2c"))]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: str) -> None:
        while data := await reader.read(65536):
            self.chunks.append((direction, data))
            writer.write(data)
            await writer.drain()
        writer.close()


async def transfers(provider: MemoryFiles, *, rules: list[Rule] | None = None,
                    log: Path | None = None) -> list[tuple[str, bytes]]:
    """Read every file of ``provider`` and write two, through the relay (and our proxy
    when ``rules`` or ``log`` are given); returns the recorded octets."""
    server = await iec104.listen(lambda conn: None, iec104.Address(HOST, 0),
                                 file_provider=provider)
    port = server.addresses[0].port
    proxy = None
    if rules is not None or log is not None:
        proxy = Proxy(f"{HOST}:0", (HOST, port), log, rules=rules or ())
        await proxy.start()
        port = proxy.address[1]
    try:
        async with Relay(port) as relay:
            conn = await iec104.connect(iec104.Address(HOST, relay.port))
            await conn.list_files(CA)
            for key, data in sorted(FILES.items()):
                assert await conn.read_file(*key) == data
            for n, size in ((1, 5), (2, 700)):
                await conn.write_file(CA, 900 + n, 90 + n, bytes(range(256))[:size] * 2)
            with pytest.raises(iec104.codec.files.FileRefusedError):
                await conn.read_file(CA, 1, 77)
            await conn.delete_file(CA, 901, 91)  # confirmed by an F_FR: no transfer
            await conn.async_close()
    finally:
        if proxy is not None:
            await proxy.stop()
        await server.async_close()
    return relay.chunks


def expected_rows() -> list[tuple[Any, ...]]:
    read = [("s2c", ca, ioa, nof, data, True, "complete")
            for (ca, ioa, nof), data in sorted(FILES.items())]
    written = [("c2s", CA, 900 + n, 90 + n, bytes(range(256))[:size] * 2, True, "complete")
               for n, size in ((1, 5), (2, 700))]
    return [*read, *written, ("s2c", CA, 1, 77, b"", False, "refused")]


def as_tuples(table: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [(r.direction, r.ca, r.ioa, r.name, r.bytes, r.checksum_ok, r.status)
            for r in table.itertuples()]


async def test_files_rebuilt_from_a_pcap_of_the_transfer(tmp_path: Path) -> None:
    chunks = await transfers(MemoryFiles(FILES))
    pcap = write_pcap(tmp_path / "files.pcap", chunks, segment_size=1400)
    table = analyzer.files(pcap)
    assert as_tuples(table) == expected_rows()
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
    chunks = await transfers(MemoryFiles(FILES), rules=[rule])
    assert rule.applied == 1
    table = analyzer.files(write_pcap(tmp_path / "damaged.pcap", chunks))
    assert as_tuples(table) == expected_rows()


async def test_files_rebuilt_from_the_proxy_log(tmp_path: Path) -> None:
    await transfers(MemoryFiles(FILES), log=tmp_path / "log")
    assert as_tuples(analyzer.files(tmp_path / "log")) == expected_rows()


def test_no_files() -> None:
    table = analyzer.files(pd.DataFrame({c: pd.Series(dtype="object") for c in (
        "apdu", "apci", "type_id", "raw", "stream", "time", "frame", "direction")}))
    assert table.empty and "bytes" in table.columns


async def test_tshark_decodes_our_file_apdus_as_we_do(tmp_path: Path) -> None:
    ensure_tshark()
    chunks = await transfers(MemoryFiles(FILES))
    pcap = write_pcap(tmp_path / "files.pcap", chunks, segment_size=1400)
    ours = _in_frame_order(chunks)
    theirs = tshark_apdus(pcap)
    problems: list[str] = []
    file_apdus = 0
    types_seen: set[int] = set()
    assert len(theirs) == len(ours)
    for (direction, raw), apdu in zip(ours, theirs, strict=True):
        if apdu["direction"] != direction:
            problems.append(f"direction {apdu['direction']} for {raw.hex()}")
        if raw[2] & 1:
            continue  # S or U frame
        asdu = decode_asdu(raw[6:])
        assert isinstance(asdu, ASDU)
        if asdu.type_id not in FILE_TYPES:
            continue
        file_apdus += 1
        types_seen.add(int(asdu.type_id))
        problems += [f"{asdu.type_id.name}: {d}" for d in compare_asdu(asdu, raw[6:], apdu)]
    assert not problems, "\n".join(problems)
    # every type of the dialogue: file ready, section ready, call, last section, ack,
    # segment, directory
    assert types_seen == set(range(TypeId.F_FR_NA_1, TypeId.F_DR_TA_1 + 1))
    assert file_apdus > 30


def _in_frame_order(chunks: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Our APDUs in the order the pcap carries them (chunk order, then within a chunk)."""
    framers = {"c2s": Framer(), "s2c": Framer()}
    out: list[tuple[str, bytes]] = []
    for direction, data in chunks:
        framer = framers[direction]
        framer.feed(data)
        out += [(direction, f.raw) for f in framer]  # type: ignore[union-attr]
    return out
