"""Requests a controlled station must refuse, sent as raw bytes to our server and to c104's.

Each case sends one ASDU, then a test command (C_TS_TA_1) as a marker, and compares the
I-frames that come back before the marker's confirmation. Both servers get the same bytes;
where c104 (lib60870) answers differently, the table says so:

* an interrogation with a cause other than those the standard permits for it: both mirror
  it with UNKNOWN_CAUSE (45), P/N=1;
* a command ASDU without objects: both confirm negatively; lib60870 adds an
  UNKNOWN_IO_ADDRESS (47) mirror;
* DCS and RCS 0 and 3, "not permitted" by IEC 60870-5-101: we confirm negatively and the
  application never sees them; lib60870 hands them to the application and confirms
  positively (a deactivation even with an ACTIVATION_CONFIRMATION);
* a command with a cause the standard does not permit (spontaneous): we mirror it with
  UNKNOWN_CAUSE; lib60870 hands it to the application and answers nothing.
"""

from __future__ import annotations

import asyncio
import struct

import c104
import pytest

import iec104
from tests.conftest import find_unused_tcp_port
from tests.support.c104peer import C104Server

pytestmark = pytest.mark.timeout(60)

STARTDT_ACT = bytes.fromhex("68 04 07 00 00 00")
# C_TS_TA_1 act, CA 1, TSC 0x1234, 2024-06-15 12:34:56.789
MARKER = bytes.fromhex("6b 01 06 00 01 00 00 00 00 34 12 15 d9 22 0c 06 06 18")
MARKER_CON = MARKER[:2] + b"\x07" + MARKER[3:9]

# (case, request ASDU, our replies, c104's replies, reaches the application: ours, c104)
CASES = [
    ("C_IC_NA_1 cause 0", "64 01 00 00 01 00 00 00 00 14",
     ["64 01 6d 00 01 00 00 00 00 14"], ["64 01 6d 00 01 00 00 00 00 14"], False, False),
    ("C_IC_NA_1 cause 63", "64 01 3f 00 01 00 00 00 00 14",
     ["64 01 6d 00 01 00 00 00 00 14"], ["64 01 6d 00 01 00 00 00 00 14"], False, False),
    ("C_IC_NA_1 spontaneous", "64 01 03 00 01 00 00 00 00 14",
     ["64 01 6d 00 01 00 00 00 00 14"], ["64 01 6d 00 01 00 00 00 00 14"], False, False),
    ("C_SC_NA_1 no object", "2d 00 06 00 01 00",
     ["2d 00 47 00 01 00"], ["2d 00 47 00 01 00", "2d 00 2f 00 01 00"], False, False),
    ("C_DC_NA_1 DCS 0", "2e 01 06 00 01 00 64 00 00 00",
     ["2e 01 47 00 01 00 64 00 00 00"], ["2e 01 07 00 01 00 64 00 00 00"], False, True),
    ("C_DC_NA_1 DCS 3", "2e 01 06 00 01 00 64 00 00 03",
     ["2e 01 47 00 01 00 64 00 00 03"], ["2e 01 07 00 01 00 64 00 00 03"], False, True),
    ("C_DC_NA_1 DCS 3 deactivation", "2e 01 08 00 01 00 64 00 00 03",
     ["2e 01 49 00 01 00 64 00 00 03"], ["2e 01 07 00 01 00 64 00 00 03"], False, True),
    ("C_RC_NA_1 RCS 0", "2f 01 06 00 01 00 65 00 00 00",
     ["2f 01 47 00 01 00 65 00 00 00"], ["2f 01 07 00 01 00 65 00 00 00"], False, True),
    ("C_RC_NA_1 RCS 3", "2f 01 06 00 01 00 65 00 00 03",
     ["2f 01 47 00 01 00 65 00 00 03"], ["2f 01 07 00 01 00 65 00 00 03"], False, True),
    ("C_SC_NA_1 spontaneous", "2d 01 03 00 01 00 66 00 00 01",
     ["2d 01 6d 00 01 00 66 00 00 01"], [], False, True),
    # a permitted value still works (both confirm; we also terminate)
    ("C_DC_NA_1 DCS 1", "2e 01 06 00 01 00 64 00 00 01",
     ["2e 01 07 00 01 00 64 00 00 01", "2e 01 0a 00 01 00 64 00 00 01"],
     ["2e 01 07 00 01 00 64 00 00 01"], True, True),
]
IDS = [case[0] for case in CASES]


async def exchange(port: int, request: str) -> list[str]:
    """STARTDT, the request, the marker; the ASDUs (hex) that precede the marker's ACTCON."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(STARTDT_ACT)
        asdu = bytes.fromhex(request)
        writer.write(struct.pack("<BBHH", 0x68, len(asdu) + 4, 0, 0) + asdu)
        writer.write(struct.pack("<BBHH", 0x68, len(MARKER) + 4, 2, 0) + MARKER)
        replies = []
        while True:
            head = await asyncio.wait_for(reader.readexactly(2), 10)
            body = await reader.readexactly(head[1])
            if body[0] & 1:
                continue  # S- and U-frames
            if body[4:4 + len(MARKER_CON)] == MARKER_CON:
                return replies
            replies.append(body[4:].hex(" "))
    finally:
        writer.close()


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_our_server_refuses(case):
    _, request, ours, _, reaches_app, _ = case
    seen: list[object] = []

    def record(conn, *args):
        seen.append(args)
        return True

    srv = await iec104.listen(lambda conn: None,
                              iec104.Address("127.0.0.1", find_unused_tcp_port()),
                              interrogate_cb=lambda conn, ca: seen.append(ca) or [],
                              command_cb=record)
    try:
        assert await exchange(srv.addresses[0].port, request) == ours
        assert bool(seen) == reaches_app
    finally:
        await srv.async_close()


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_c104_server_in_the_same_cases(case):
    _, request, _, theirs, _, reaches_app = case
    server = C104Server(find_unused_tcp_port())
    for ioa, typ in ((100, c104.Type.C_DC_NA_1), (101, c104.Type.C_RC_NA_1),
                     (102, c104.Type.C_SC_NA_1)):
        server.add_point(ioa, typ)
    await asyncio.to_thread(server.start)
    try:
        assert await exchange(server.port, request) == theirs
        assert bool(server.commands) == reaches_app
    finally:
        await asyncio.to_thread(server.stop)
