"""File-transfer helpers shared by the codec, driver and analyzer tests.

* :class:`Relay`: forwards one TCP connection and records the octets of each direction in
  the order they arrive (to write a pcap of a real conversation with ``pcapwriter``).
* :func:`record_transfers`: our client and server doing a fixed set of transfers (directory,
  reads of every size class, writes, a refused read, a delete) through the relay, optionally
  through our proxy too; :func:`expected_files` is what a capture of it must rebuild into.
* :func:`random_file_asdus`: F_* ASDUs with random element octets (seeded), most of them
  addressed to one file, for robustness tests.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any, Self

import pytest

import iec104
from iec104.codec import ASDU, Profile, TypeId, decode_asdu
from iec104.codec.elements import ELEMENTS
from iec104.codec.files import FileRefusedError
from iec104.driver import MemoryFiles
from iec104.recorder import Proxy
from iec104.recorder.rules import Rule

HOST = "127.0.0.1"
CA = 3
FILES = {(CA, 500 + n, n): random.Random(n).randbytes(size)
         for n, size in enumerate((0, 1, 236, 3000), start=1)}
"""What :func:`record_transfers` reads: (CA, IOA, NOF) -> octets (0, 1, 236, 3000 octets)."""
WRITTEN = {(CA, 900 + n, 90 + n): bytes(range(256))[:size] * 2
           for n, size in ((1, 5), (2, 700))}
"""What :func:`record_transfers` writes (then deletes the first one)."""


class Relay:
    """Forwards one TCP connection to ``upstream`` on 127.0.0.1 and records
    ``(direction, octets)`` in the order they arrive ('c2s' from the client)."""

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


async def record_transfers(*, rules: list[Rule] | None = None,
                           log: Path | None = None) -> list[tuple[str, bytes]]:
    """Our client and our server (``MemoryFiles(FILES)``) through the relay (and our proxy
    with ``rules`` / a Parquet ``log`` when given): list, read every file, write
    ``WRITTEN``, a refused read, delete one written file. Returns the recorded octets."""
    server = await iec104.listen(lambda conn: None, iec104.Address(HOST, 0),
                                 file_provider=MemoryFiles(FILES))
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
            for key, data in WRITTEN.items():
                await conn.write_file(*key, data)
            with pytest.raises(FileRefusedError):
                await conn.read_file(CA, 1, 77)
            await conn.delete_file(*min(WRITTEN))  # confirmed by an F_FR: no transfer
            await conn.async_close()
    finally:
        if proxy is not None:
            await proxy.stop()
        await server.async_close()
    return relay.chunks


def expected_files() -> list[tuple[Any, ...]]:
    """(direction, ca, ioa, name, bytes, checksum_ok, status) of the transfers of
    :func:`record_transfers`, in order."""
    read = [("s2c", *key, data, True, "complete") for key, data in sorted(FILES.items())]
    written = [("c2s", *key, data, True, "complete") for key, data in WRITTEN.items()]
    return [*read, *written, ("s2c", CA, 1, 77, b"", False, "refused")]


def random_file_asdus(seed: int, n: int, common_address: int = 1, io_address: int = 100,
                      name: int = 7) -> list[ASDU]:
    """``n`` F_* ASDUs (IEC 104 profile) of random type, cause, flags and element octets;
    80% of them addressed to file ``name`` at (``common_address``, ``io_address``)."""
    rng = random.Random(seed)
    out: list[ASDU] = []
    while len(out) < n:
        type_id = rng.randrange(TypeId.F_FR_NA_1, TypeId.F_SC_NB_1 + 1)
        size = ELEMENTS[type_id].size
        if size is None:  # F_SG_NA_1: NOF, NOS, LOS, then LOS octets
            los = rng.randrange(0, 237)
            element = rng.randbytes(3) + bytes((los,)) + rng.randbytes(los)
        else:
            element = rng.randbytes(size)
        octets = (bytes((type_id, 1, rng.randrange(256), rng.randrange(256)))
                  + rng.randbytes(2) + rng.randbytes(3) + element)
        asdu = decode_asdu(octets, Profile())
        assert isinstance(asdu, ASDU)
        if rng.random() < 0.8:
            obj = asdu.objects[0]
            value = obj.value._replace(file_name=name)  # type: ignore[union-attr]
            asdu = asdu._replace(common_address=common_address,
                                 objects=(obj._replace(address=io_address, value=value),))
        out.append(asdu)
    return out
