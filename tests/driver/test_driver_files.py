"""File transfer between our client and our server over real sockets on 127.0.0.1: directory,
read and write of files of every size class, refusals, sections damaged in transit (by a rule
of our proxy between the two), a peer that stops answering (fake clock)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import iec104
from iec104.codec import ASDU, Profile, TypeId, decode_asdu, encode_asdu
from iec104.codec.files import (
    FileChecksumError,
    FileInfo,
    FileReassembler,
    FileReceiver,
    FileRefusedError,
    FileTimeoutError,
    LastSection,
    max_segment_size,
)
from iec104.driver import FileProvider, MemoryFiles
from iec104.recorder import Proxy
from iec104.recorder.rules import Rule
from tests.conftest import REPO_ROOT, find_unused_tcp_port
from tests.driver.test_driver_protocol import Raw, iframe, sframe
from tests.support.fakeclock import FakeClockLoop, nothing_to_read, run, settle
from tests.support.filetransfer import random_file_asdus

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"
CA = 7
SIZES = {1: 0, 2: 1, 3: 236, 4: 237, 5: 10_000, 6: 50_000}  # NOF -> size
FILES = {(CA, 1000 + nof, nof): random.Random(nof).randbytes(size)
         for nof, size in SIZES.items()}


@contextlib.asynccontextmanager
async def pair(provider: FileProvider | None, *, via: list[Rule] | None = None,
               **client_kwargs: object) -> AsyncIterator[iec104.Connection]:
    """Our server with ``provider`` and our client connected to it (through our proxy
    applying ``via`` when given)."""
    server = await iec104.listen(lambda conn: None, iec104.Address(HOST, 0),
                                 file_provider=provider,
                                 profile=client_kwargs.get("profile", Profile()))
    port = server.addresses[0].port
    proxy = None
    try:
        if via is not None:
            proxy = Proxy(f"{HOST}:0", (HOST, port), None, rules=via,
                          profile=client_kwargs.get("profile", Profile()))
            await proxy.start()
            port = proxy.address[1]
        conn = await iec104.connect(iec104.Address(HOST, port), **client_kwargs)
        try:
            yield conn
        finally:
            await conn.async_close()
    finally:
        if proxy is not None:
            await proxy.stop()
        await server.async_close()


async def test_directory_read_and_write_every_size() -> None:
    store = MemoryFiles(FILES)
    async with pair(store) as conn:
        listing = await conn.list_files(CA)
        assert listing == [FileInfo(ioa, nof, len(data))
                           for (_, ioa, nof), data in sorted(FILES.items())]
        for (ca, ioa, nof), data in FILES.items():
            assert await conn.read_file(ca, ioa, nof) == data
        written = {(CA, 2000 + n, 100 + n): random.Random(-n).randbytes(size)
                   for n, size in enumerate((0, 1, 236, 9000))}
        for (ca, ioa, nof), data in written.items():
            await conn.write_file(ca, ioa, nof, data, section_size=1000)
        for key, data in written.items():
            assert store.files[key] == data
            assert await conn.read_file(*key) == data
        assert await conn.list_files(99) == []  # empty directory
        await conn.delete_file(CA, 1001, 1)
        assert (CA, 1001, 1) not in store.files
        assert [f.name for f in await conn.list_files(CA)] == [2, 3, 4, 5, 6, 100, 101,
                                                               102, 103]
        with pytest.raises(FileRefusedError, match="refused by the peer"):
            await conn.delete_file(CA, 1001, 1)  # gone


class Refusing(FileProvider):
    """Lists nothing, serves nothing, accepts files but refuses to store them."""

    def accept_file(self, connection, asdu_address, io_address, name, length):
        return True

    async def write_file(self, connection, asdu_address, io_address, name, data):
        return False


async def test_refusals() -> None:
    async with pair(MemoryFiles(FILES, writable=False)) as conn:
        with pytest.raises(FileRefusedError, match="refused by the peer"):
            await conn.read_file(CA, 1001, 99)  # no such file
        with pytest.raises(FileRefusedError, match="refused by the peer"):
            await conn.write_file(CA, 1, 1, b"abc")
        with pytest.raises(FileRefusedError, match="refused by the peer"):
            await conn.delete_file(CA, 1002, 2)  # not writable
        assert await conn.read_file(CA, 1002, 2) == FILES[(CA, 1002, 2)]  # still serving
    async with pair(Refusing()) as conn:
        with pytest.raises(FileRefusedError, match="UNKNOWN_ASDU_ADDRESS"):
            await conn.list_files(CA)
        with pytest.raises(FileRefusedError, match="negative file acknowledgement"):
            await conn.write_file(CA, 1, 1, b"x" * 500)
    async with pair(None) as conn:  # no file service at all
        for call in (conn.list_files(CA), conn.read_file(CA, 1, 1),
                     conn.write_file(CA, 1, 1, b""), conn.delete_file(CA, 1, 1)):
            with pytest.raises(FileRefusedError, match="UNKNOWN_TYPE"):
                await call


def corrupt_segments(times: int | None) -> Rule:
    """A proxy rule flipping one bit of the first octet of segments (``times`` of them)."""
    def flip(asdu: ASDU, direction: str) -> list[ASDU]:
        obj = asdu.objects[0]
        value = obj.value
        bad = bytes([value.data[0] ^ 1]) + value.data[1:]  # type: ignore[union-attr]
        return [asdu._replace(objects=(obj._replace(
            value=value._replace(data=bad)),))]  # type: ignore[union-attr]
    return Rule(flip, type_id=TypeId.F_SG_NA_1, limit=times)


async def test_damaged_section_in_transit_is_sent_again() -> None:
    rule = corrupt_segments(2)
    data = FILES[(CA, 1005, 5)]
    async with pair(MemoryFiles(FILES), via=[rule]) as conn:
        assert await conn.read_file(CA, 1005, 5) == data
        assert rule.applied == 2
        rule.applied, rule.limit = 0, 1
        await conn.write_file(CA, 3000, 1, data)
        assert rule.applied == 1
        assert await conn.read_file(CA, 3000, 1) == data


async def test_damaged_beyond_retries() -> None:
    async with pair(MemoryFiles(FILES), via=[corrupt_segments(None)]) as conn:
        with pytest.raises(FileChecksumError, match="checksum"):
            await conn.read_file(CA, 1003, 3)
        with pytest.raises(FileChecksumError):
            await conn.write_file(CA, 3000, 1, b"abc")
        assert await conn.read_file(CA, 1001, 1) == b""  # no segment to damage


async def test_wrong_file_checksum() -> None:
    def bad_file_checksum(asdu: ASDU, direction: str) -> list[ASDU] | None:
        obj = asdu.objects[0]
        if obj.qualifier != LastSection.FILE_TRANSFER_WITHOUT_DEACT:
            return None
        value = obj.value
        return [asdu._replace(objects=(obj._replace(value=value._replace(  # type: ignore[union-attr]
            checksum=value.checksum ^ 1)),))]  # type: ignore[union-attr]
    rule = Rule(bad_file_checksum, type_id=TypeId.F_LS_NA_1)
    async with pair(MemoryFiles(FILES), via=[rule]) as conn:
        with pytest.raises(FileChecksumError, match="sender's"):
            await conn.read_file(CA, 1002, 2)


@pytest.mark.parametrize("call", ["read", "write", "list", "delete"])
def test_silent_peer_times_out(call: str) -> None:
    async def main(loop: FakeClockLoop) -> None:
        release = asyncio.Event()

        class Slow(MemoryFiles):
            async def read_file(self, connection, asdu_address, io_address, name):
                await release.wait()
                return b"late"

            async def accept_file(self, connection, asdu_address, io_address, name, length):
                await release.wait()
                return True

            async def list_files(self, connection, asdu_address):
                await release.wait()
                return []

            async def delete_file(self, connection, asdu_address, io_address, name):
                await release.wait()
                return True

        calls = {"read": lambda c: c.read_file(CA, 1, 1, timeout=2),
                 "write": lambda c: c.write_file(CA, 1, 1, b"data", timeout=2),
                 "list": lambda c: c.list_files(CA, timeout=2),
                 "delete": lambda c: c.delete_file(CA, 1, 1, timeout=2)}
        async with pair(Slow(), response_timeout=5) as conn:
            task = asyncio.ensure_future(calls[call](conn))
            await settle()
            loop.advance(1.9)
            await settle()
            assert not task.done()
            loop.advance(0.2)
            await settle()
            with pytest.raises(FileTimeoutError, match="no answer within 2"):
                await task
            release.set()  # the late answer finds no transfer: refused or ignored
            await settle()
            assert await conn.read_file(CA, 1, 1) == b"late"  # the connection still works
            assert conn.is_open

    run(main)


async def test_many_sections_and_concurrent_callers() -> None:
    big = random.Random(9).randbytes(300_000)  # more than 255 sections of 1 KiB
    store = MemoryFiles({(CA, 1, 1): big}, max_length=1 << 24)
    async with pair(store) as conn:
        results = await asyncio.gather(conn.read_file(CA, 1, 1), conn.list_files(CA),
                                       conn.write_file(CA, 2, 2, big, section_size=1024))
        assert results == [big, [FileInfo(1, 1, len(big))], None]
        assert store.files[(CA, 2, 2)] == big


async def test_closing_fails_the_transfer() -> None:
    release = asyncio.Event()

    class Slow(MemoryFiles):
        async def read_file(self, connection, asdu_address, io_address, name):
            await release.wait()

    async with pair(Slow()) as conn:
        task = asyncio.ensure_future(conn.read_file(CA, 1, 1))
        await asyncio.sleep(0.05)
        conn.close()
        with pytest.raises(ConnectionError):
            await task




def test_readme_snippet(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
                if "read_file(" in b)
    port = str(find_unused_tcp_port())
    proc = subprocess.run([sys.executable, "-c", code.replace("2404", port)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        ("[FileInfo(io_address=100, name=1, length=18, time=Time(size=<TimeSize.SEVEN: 7>, "
        "milliseconds=0, invalid=True, minutes=0, summer_time=False, hours=0, day_of_week=0, "
        "day_of_month=1, months=1, years=0, reserved=0), status=0, directory=False, "
        "active=False)]"), "b'disturbance record'"]


def test_server_forgets_a_transfer_the_peer_abandons(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "iec104.driver")

    async def main(loop: FakeClockLoop) -> None:
        server = await iec104.listen(lambda conn: None, iec104.Address(HOST, 0),
                                     response_timeout=5, file_provider=MemoryFiles(FILES))
        raw = await Raw.connect(server.addresses[0].port)
        await raw.start()
        receiver = FileReceiver(CA, 1003, 3)
        raw.send(iframe(0, 0, encode_asdu(receiver.select())))
        kind, _, _, asdu = await raw.read()
        assert kind == "I" and decode_asdu(asdu).type_id is TypeId.F_FR_NA_1
        raw.send(sframe(1))
        await settle()
        loop.advance(4.9)
        await settle()
        assert "went silent" not in caplog.text
        loop.advance(0.2)
        await settle()
        assert "file 3 at CA 7 IOA 1003: the peer went silent, transfer dropped" in caplog.text
        raw.send(iframe(1, 1, encode_asdu(receiver.call_file())))  # too late: ignored
        assert await nothing_to_read(raw.reader)
        raw.close()
        await server.async_close()

    run(main)


async def test_rejected_file_seen_by_the_reassembler() -> None:
    """A file the provider refuses to store arrived whole: the passive reassembler of
    that conversation says 'rejected' (checksums right), as the receiver decided."""
    log: list[ASDU] = []

    def spy(asdu: ASDU, direction: str) -> None:
        log.append(asdu)

    async with pair(Refusing(), via=[Rule(spy)]) as conn:
        with pytest.raises(FileRefusedError):
            await conn.write_file(CA, 1, 1, b"abc")
    passive = FileReassembler()
    (rebuilt,) = [r for asdu in log for r in passive.feed(asdu)]
    assert (rebuilt.status, rebuilt.data, rebuilt.checksum_ok) == ("rejected", b"abc", True)


async def test_random_file_asdus_leave_the_server_serving(
        caplog: pytest.LogCaptureFixture) -> None:
    """F_* ASDUs with random fields (most addressed to a served file) sent straight to our
    server: the connection stays open, nothing is logged as an error, a read works."""
    store = MemoryFiles(FILES)
    async with pair(store) as conn:
        for asdu in random_file_asdus(11, 300):
            conn.send_asdu(asdu._replace(common_address=CA) if asdu.common_address == 1
                           else asdu)
        await conn.drain()
        assert conn.is_open
        assert await conn.read_file(CA, 1005, 5, timeout=5) == FILES[(CA, 1005, 5)]
        assert await conn.list_files(CA)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_other_field_sizes_fill_their_segments() -> None:
    """With COT 1, CA 1, IOA 2 octets a segment holds 239 octets (236 with 104's 2/2/3),
    as our proxy (same profile) sees on the wire, and files arrive whole both ways."""
    profile = Profile(1, 1, 2)
    data = random.Random(3).randbytes(5000)
    store = MemoryFiles({(7, 300, 1): data})
    sizes: list[int] = []

    def spy(asdu: ASDU, direction: str) -> None:
        sizes.append(len(asdu.objects[0].value.data))  # type: ignore[union-attr]

    async with pair(store, profile=profile,
                    via=[Rule(spy, type_id=TypeId.F_SG_NA_1)]) as conn:
        assert await conn.read_file(7, 300, 1) == data
        await conn.write_file(7, 301, 2, data)
        assert store.files[(7, 301, 2)] == data
        assert [f.name for f in await conn.list_files(7)] == [1, 2]
    assert max(sizes) == max_segment_size(profile) == 239
