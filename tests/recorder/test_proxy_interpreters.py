"""The proxy on every interpreter of this Python version found on the machine.

Python before 3.11.4 ignores ``transport.pause_reading()`` called from ``connection_made``
(CPython gh-103607), and Debian 12's ``/usr/bin/python3`` is 3.11.2: there the proxy read a
master's first APDU (STARTDT) before its upstream connection was up and lost it, so every
connection through the proxy timed out. The script below runs a real proxy conversation on
127.0.0.1 under each interpreter, with this checkout and the running environment's
site-packages on its path (same minor version, so the same ABI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = """
import asyncio, socket
from iec104.recorder.proxy import Proxy

STARTDT_ACT, STARTDT_CON = bytes.fromhex("680407000000"), bytes.fromhex("68040b000000")

async def main():
    loop = asyncio.get_running_loop()
    upstream = socket.create_server(("127.0.0.1", 0))
    upstream.setblocking(False)
    async with Proxy("127.0.0.1:0", upstream.getsockname()[:2], None) as proxy:
        reader, writer = await asyncio.open_connection(*proxy.address)
        writer.write(STARTDT_ACT)  # at once, while the proxy connects upstream
        outstation, _ = await asyncio.wait_for(loop.sock_accept(upstream), 10)
        got = b""
        while len(got) < 6:
            chunk = await asyncio.wait_for(loop.sock_recv(outstation, 6 - len(got)), 10)
            assert chunk, "the proxy closed the upstream connection"
            got += chunk
        assert got == STARTDT_ACT, got.hex()
        await loop.sock_sendall(outstation, STARTDT_CON)
        assert await asyncio.wait_for(reader.readexactly(6), 10) == STARTDT_CON
        writer.close()
        outstation.close()
    upstream.close()

asyncio.run(main())
print("ok")
"""


def interpreters() -> list[str]:
    """The running Python and the other interpreters of its minor version on this machine."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = {os.path.realpath(sys.executable): sys.executable}
    for candidate in (shutil.which(version), f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if candidate and os.access(candidate, os.X_OK):
            found.setdefault(os.path.realpath(candidate), candidate)
    return sorted(found.values())


@pytest.mark.parametrize("python", interpreters())
def test_master_bytes_sent_before_the_upstream_is_up_are_forwarded(python: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), sysconfig.get_paths()["purelib"],
                                         sysconfig.get_paths()["platlib"]])
    proc = subprocess.run([python, "-c", SCRIPT], env=env, cwd=Path(REPO_ROOT),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
