"""Our file transfer client against lib60870-C's file service (the C library c104 wraps),
built from c104's sdist (``tests/support/lib60870.py``) and run as a subprocess
outstation on 127.0.0.1: reading files of every size class from it, writing files to it,
and its refusals.

lib60870-C (2.x) has no directory service (its call directory handler is empty), so
``list_files`` is checked against our own server only (``test_driver_files.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import iec104
from iec104 import analyzer
from iec104.codec.files import FileRefusedError
from tests.conftest import find_unused_tcp_port
from tests.support.filetransfer import Relay
from tests.support.lib60870 import file_server
from tests.support.pcapwriter import write_pcap

pytestmark = pytest.mark.timeout(900)  # the first run builds lib60870-C

CA, IOA, NOF = 1, 100, 5


@pytest.fixture(scope="module")
def server_exe() -> Path:
    return file_server()


@contextlib.asynccontextmanager
async def outstation(exe: Path, tmp: Path, served: bytes
                     ) -> AsyncIterator[tuple[int, asyncio.StreamReader]]:
    """lib60870's outstation serving ``served`` as (CA, IOA, NOF); yields its port and
    its stdout."""
    (tmp / "received").mkdir(exist_ok=True)
    (tmp / "served").write_bytes(served)
    port = find_unused_tcp_port()
    proc = await asyncio.create_subprocess_exec(
        str(exe), str(port), str(CA), str(IOA), str(NOF), str(tmp / "served"),
        str(tmp / "received"), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"listening\n"
        yield port, proc.stdout
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)


@contextlib.asynccontextmanager
async def lib60870(exe: Path, tmp: Path, served: bytes
                   ) -> AsyncIterator[tuple[iec104.Connection, asyncio.StreamReader]]:
    """:func:`outstation` and our client connected to it."""
    async with outstation(exe, tmp, served) as (port, out):
        conn = await iec104.connect(iec104.Address("127.0.0.1", port))
        try:
            yield conn, out
        finally:
            await conn.async_close()


@pytest.mark.parametrize("size", [1, 236, 237, 2500])  # one segment, two, three sections
async def test_read_from_lib60870(server_exe: Path, tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    async with lib60870(server_exe, tmp_path, data) as (conn, out):
        assert await conn.read_file(CA, IOA, NOF, timeout=10) == data
        assert await asyncio.wait_for(out.readline(), 10) == b"sent ok\n"
        with pytest.raises(FileRefusedError, match="refused by the peer"):
            await conn.read_file(CA, IOA, NOF + 1, timeout=10)


async def test_lib60870_cannot_send_an_empty_file(server_exe: Path, tmp_path: Path) -> None:
    """lib60870 announces an empty section for an empty file, then refuses the call of
    that section (a negative F_SC_NA_1): a clear refusal, not a hang."""
    async with lib60870(server_exe, tmp_path, b"") as (conn, _):
        with pytest.raises(FileRefusedError, match="request_section .section 1. refused"):
            await conn.read_file(CA, IOA, NOF, timeout=10)


async def test_write_to_lib60870(server_exe: Path, tmp_path: Path) -> None:
    async with lib60870(server_exe, tmp_path, b"x") as (conn, out):
        for n, size in enumerate((0, 1, 237, 2500), start=1):
            data = random.Random(-size).randbytes(size)
            await conn.write_file(CA, 200 + n, n, data, section_size=1000, timeout=10)
            line = await asyncio.wait_for(out.readline(), 10)
            assert line == f"received {CA} {200 + n} {n} {size}\n".encode()
            assert (tmp_path / "received" / f"{CA}-{200 + n}-{n}").read_bytes() == data
        with pytest.raises(FileRefusedError, match="refused by the peer"):
            await conn.write_file(CA, 300, 99, b"refused", timeout=10)


async def test_analyzer_rebuilds_what_lib60870_sent(server_exe: Path, tmp_path: Path) -> None:
    """A capture of lib60870 sending a file (and receiving one): the analyzer rebuilds
    both byte for byte from lib60870's own segments and checksums."""
    data = random.Random(7).randbytes(2500)
    written = bytes(range(256)) * 5
    async with outstation(server_exe, tmp_path, data) as (port, _), Relay(port) as relay:
        conn = await iec104.connect(iec104.Address("127.0.0.1", relay.port))
        assert await conn.read_file(CA, IOA, NOF, timeout=10) == data
        await conn.write_file(CA, 300, 3, written, section_size=1000, timeout=10)
        await conn.async_close()
    table = analyzer.files(write_pcap(tmp_path / "lib60870.pcap", relay.chunks))
    assert [(r.direction, r.ca, r.ioa, r.name, r.bytes, r.status) for r in table.itertuples()] \
        == [("s2c", CA, IOA, NOF, data, "complete"), ("c2s", CA, 300, 3, written, "complete")]
