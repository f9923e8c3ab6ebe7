"""``iec104 files``: the transfers of a capture of real file transfers (our client and
server through a recording relay), listed and saved byte for byte; a capture cut in the
middle of a file; bad inputs and outputs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from iec104.codec import Framer, IFrame, TypeId, decode_asdu
from tests.support.cli import run
from tests.support.filetransfer import FILES, WRITTEN, record_transfers
from tests.support.pcapwriter import write_pcap

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def chunks() -> list[tuple[str, bytes]]:
    return asyncio.run(record_transfers())


def test_lists_and_saves_every_transfer(tmp_path: Path, chunks: list[tuple[str, bytes]]) -> None:
    pcap = write_pcap(tmp_path / "files.pcap", chunks)
    proc = run("files", pcap, "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"7 file transfer(s) in {pcap}"
    assert "read    CA 3 IOA 504 NOF 4: 3000 of 3000 octets, complete ->" in lines[4]
    assert lines[7].endswith("read    CA 3 IOA 1 NOF 77: 0 of ? octets, refused")
    saved = sorted((tmp_path / "out").iterdir())
    expected = [*sorted(FILES.items()), *WRITTEN.items()]
    assert [p.name for p in saved] == [f"{i:03d}-ca{ca}-ioa{ioa}-nof{nof}.bin"
                                       for i, ((ca, ioa, nof), _) in enumerate(expected, 1)]
    assert [p.read_bytes() for p in saved] == [data for _, data in expected]


def test_capture_cut_in_a_file_saves_what_arrived(tmp_path: Path,
                                                   chunks: list[tuple[str, bytes]]) -> None:
    """The capture ends after the master acknowledged the (only) section of file 4 and
    before the last-section F_LS: the file is 'incomplete', its section saved."""
    framer = Framer()
    cut = 0
    for i, (direction, data) in enumerate(chunks):
        if direction != "c2s":
            continue
        framer.feed(data)
        for frame in framer:
            asdu = decode_asdu(frame.apdu.asdu) if isinstance(frame.apdu, IFrame) else None
            if asdu is not None and asdu.type_id is TypeId.F_AF_NA_1 and \
                    asdu.objects[0].value.file_name == 4 and asdu.objects[0].qualifier == 3:
                cut = cut or i + 1
    assert cut
    pcap = write_pcap(tmp_path / "cut.pcap", chunks[:cut])
    proc = run("files", pcap, "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "IOA 504 NOF 4: 3000 of 3000 octets, incomplete" in proc.stdout
    (partial,) = (tmp_path / "out").glob("004-*-nof4.incomplete.bin")
    assert partial.read_bytes() == FILES[(3, 504, 4)]


def test_bad_input_and_output(tmp_path: Path, chunks: list[tuple[str, bytes]]) -> None:
    proc = run("files", tmp_path / "missing.pcap")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    pcap = write_pcap(tmp_path / "files.pcap", chunks)
    proc = run("files", pcap, "-o", pcap)
    assert proc.returncode == 2 and "is not a directory" in proc.stderr
