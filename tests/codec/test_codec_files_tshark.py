"""tshark decodes every F_* APDU our driver sends (file transfer, type IDs 120-126 of a
real conversation between our client and server, written to a pcap) as our codec does.

tshark 4.0 has no element decoder for file types: it shows the first IOA and the rest of
the ASDU as raw data, which must be exactly our octets (``compare_asdu`` of
``test_codec_tshark.py``); the header (type, SQ, count, COT, P/N, T, OA, CA) must agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from iec104.codec import ASDU, Framer, TypeId, decode_asdu
from iec104.codec.files import FILE_TYPES
from tests.codec.test_codec_tshark import compare_asdu
from tests.support.filetransfer import record_transfers
from tests.support.pcapwriter import write_pcap
from tests.support.tshark import ensure_tshark, tshark_apdus

pytestmark = pytest.mark.timeout(120)


def in_frame_order(chunks: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Our APDUs in the order the pcap carries them (chunk order, then within a chunk)."""
    framers = {"c2s": Framer(), "s2c": Framer()}
    out: list[tuple[str, bytes]] = []
    for direction, data in chunks:
        framer = framers[direction]
        framer.feed(data)
        out += [(direction, f.raw) for f in framer]
    return out


async def test_tshark_decodes_our_file_apdus_as_we_do(tmp_path: Path) -> None:
    ensure_tshark()
    chunks = await record_transfers()
    pcap = write_pcap(tmp_path / "files.pcap", chunks, segment_size=1400)
    ours = in_frame_order(chunks)
    theirs = tshark_apdus(pcap)
    assert len(theirs) == len(ours)
    problems: list[str] = []
    types_seen: set[int] = set()
    for (direction, raw), apdu in zip(ours, theirs, strict=True):
        if apdu["direction"] != direction:
            problems.append(f"direction {apdu['direction']} for {raw.hex()}")
        if raw[2] & 1:
            continue  # S or U frame
        asdu = decode_asdu(raw[6:])
        assert isinstance(asdu, ASDU)
        if asdu.type_id in FILE_TYPES:
            types_seen.add(int(asdu.type_id))
            problems += [f"{asdu.type_id.name}: {d}" for d in compare_asdu(asdu, raw[6:], apdu)]
    assert not problems, "\n".join(problems)
    # the whole dialogue: file ready, section ready, call/select/delete, last section,
    # acknowledgement, segment, directory
    assert types_seen == set(range(TypeId.F_FR_NA_1, TypeId.F_DR_TA_1 + 1))
