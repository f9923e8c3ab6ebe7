"""Issue 15 against c104 2.2.1 (lib60870-C) over real sockets on 127.0.0.1: read in both
roles, select before operate, reset/delay/parameters, and c104's TLS client.

What c104 2.2.1 can do here (found by these tests, see also README "Driver"):

* its client has ``Point.read()`` and SELECT_AND_EXECUTE commands, but no API to send
  reset process, delay acquisition or parameters, so those run our client -> c104 server
  only;
* its server answers a read with a C_RD_NA_1 ACTCON before the data (not in the standard;
  our client skips it), refuses C_RP_NA_1, P_ME_* and P_AC_NA_1 with a negative ACTCON
  ("Unsupported type") and does not answer C_CD_NA_1 at all;
* its TLS client cannot complete any handshake: the mbed TLS it bundles (3.6.3 or later)
  refuses to verify a server certificate unless a hostname was set
  (MBEDTLS_ERR_SSL_CERTIFICATE_VERIFICATION_WITHOUT_HOSTNAME, -0x5D80), and lib60870 in
  c104 2.2.1 never sets one. :func:`test_c104_tls_client` shows it fails the same way
  against c104's own TLS server, while our TLS client talks to that server with the same
  certificates, set up as c104's documentation does (examples/tls_*.py, bin/gen-certs.sh).
"""
# No ``from __future__ import annotations``: c104 checks callback annotations at runtime.

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

import iec104
from tests.conftest import find_unused_tcp_port
from tests.support.c104peer import C104Client, C104Server, c104, wait_for

pytestmark = pytest.mark.timeout(60)

CA = 1
CT = c104.Type


@pytest.fixture
async def c104_server():
    servers = []

    async def make(**kwargs):
        srv = C104Server(find_unused_tcp_port(), common_address=CA)
        # c104 acknowledges within t2: 1 s here, so an unanswered request ends at our t1
        srv.server.protocol_parameters.confirm_interval = 1  # seconds
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        await asyncio.to_thread(srv.stop)


async def test_our_client_reads_from_c104(c104_server):
    srv = await c104_server()
    reads = []
    point = srv.add_point(100, CT.M_ME_NC_1, info=c104.ShortInfo(actual=1.0))

    def on_before_read(point: c104.Point) -> None:
        reads.append(point.io_address)
        point.value = 42.5

    point.on_before_read(callable=on_before_read)
    srv.add_point(101, CT.M_SP_NA_1, info=c104.SingleInfo(on=True))
    await asyncio.to_thread(srv.start)
    conn = await iec104.connect(iec104.Address("127.0.0.1", srv.port))
    try:
        assert await conn.read(100, asdu_address=CA) == iec104.Data(
            iec104.FloatingValue(42.5), iec104.Quality(), None, CA, 100,
            iec104.Cause.REQUEST, False)
        assert reads == [100]
        assert (await conn.read(101, CA)).value == iec104.SingleValue.ON
        with pytest.raises(iec104.NegativeResponse):
            await conn.read(999, CA)
        assert conn.is_open
    finally:
        await conn.async_close()


async def test_c104_refuses_reset_parameters_and_ignores_delay(c104_server):
    srv = await c104_server()
    srv.add_point(100, CT.M_ME_NC_1, info=c104.ShortInfo(actual=1.0))
    await asyncio.to_thread(srv.start)
    conn = await iec104.connect(iec104.Address("127.0.0.1", srv.port), response_timeout=3)
    try:
        assert await conn.reset_process(CA) is False
        assert await conn.set_parameter(
            iec104.Parameter(iec104.FloatingValue(5.0), CA, 100)) is False
        assert await conn.activate_parameter(iec104.ParameterActivation(CA, 100)) is False
        with pytest.raises(iec104.ResponseTimeout):
            await conn.acquire_delay(CA)
        assert conn.is_open  # c104 acknowledged the request: only the answer is missing
    finally:
        await conn.async_close()


@pytest.fixture
async def c104_client():
    started = []

    async def make(**kwargs):
        queue: asyncio.Queue = asyncio.Queue()
        port = find_unused_tcp_port()
        srv = await iec104.listen(queue.put_nowait, iec104.Address("127.0.0.1", port),
                                  **kwargs)
        client = C104Client(port, common_address=CA)
        started.append((client, srv))
        return client, srv, queue

    yield make
    for client, srv in started:
        await asyncio.to_thread(client.stop)
        await srv.async_close()


async def test_c104_client_reads_from_our_server(c104_client):
    asked = []

    def read_cb(conn, asdu_address, io_address):
        asked.append((asdu_address, io_address))
        if io_address != 100:
            return None
        return iec104.Data(iec104.FloatingValue(7.25), iec104.Quality(), None, CA, 100,
                           iec104.Cause.SPONTANEOUS, False)

    client, _, _ = await c104_client(read_cb=read_cb)
    point = client.add_point(100, CT.M_ME_NC_1)
    unknown = client.add_point(101, CT.M_ME_NC_1)
    await asyncio.to_thread(client.start)
    assert await asyncio.to_thread(point.read) is True
    assert await asyncio.to_thread(wait_for, lambda: point.value == 7.25)
    assert client.received[-1].cot == c104.Cot.REQUEST
    assert await asyncio.to_thread(unknown.read) is False
    assert asked == [(CA, 100), (CA, 101)]
    negative = client.answers(101, int(CT.C_RD_NA_1))
    assert negative == [(int(iec104.Cause.UNKNOWN_IO_ADDRESS), True)]


async def test_c104_select_before_operate_against_our_server(c104_client):
    commands = []

    def command_cb(conn, cmds):
        commands.extend(cmds)
        return True

    client, _, _ = await c104_client(command_cb=command_cb, select_timeout=5)
    direct = client.add_point(20, CT.C_SC_NA_1)
    direct.command_mode = c104.CommandMode.DIRECT
    sbo = client.add_point(21, CT.C_SC_NA_1)
    sbo.command_mode = c104.CommandMode.SELECT_AND_EXECUTE
    direct.value = True
    sbo.value = True
    await asyncio.to_thread(client.start)
    # execute without select: negative ACTCON, command_cb never sees it
    assert await asyncio.to_thread(client.transmit, 20) is False
    assert client.answers(20, int(CT.C_SC_NA_1)) == [(7, True)]
    assert commands == []
    # select then execute: both positive, both reach command_cb
    assert await asyncio.to_thread(client.transmit, 21) is True
    assert [(c.action, c.io_address) for c in commands] == [
        (iec104.Action.SELECT, 21), (iec104.Action.EXECUTE, 21)]


# --- TLS ----------------------------------------------------------------------------------

def _certificates(tmp: Path) -> Path:
    """CA, server1 and client1 certificates made as c104's bin/gen-certs.sh makes them."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    run("genrsa", "-out", "ca.key", "2048")
    run("req", "-x509", "-new", "-nodes", "-key", "ca.key", "-sha256", "-subj",
        "/CN=Local Test Certificate Authority", "-days", "2", "-out", "ca.crt")
    for name in ("server1", "client1"):
        run("genrsa", "-out", f"{name}.key", "2048")
        run("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj",
            f"/CN=Local Test {name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-sha256", "-days", "2")
    return tmp


def _c104_tls(certs: Path, own: str, peer: str) -> c104.TransportSecurity:
    """c104's documented set-up (examples/tls_client.py): validate, known peers only."""
    tls = c104.TransportSecurity(validate=True, only_known=True)
    tls.set_certificate(cert=str(certs / f"{own}.crt"), key=str(certs / f"{own}.key"))
    tls.set_ca_certificate(cert=str(certs / "ca.crt"))
    tls.add_allowed_remote_certificate(cert=str(certs / f"{peer}.crt"))
    tls.set_version(min=c104.TlsVersion.TLS_1_2, max=c104.TlsVersion.TLS_1_3)
    return tls


def _c104_tls_client_connects(certs: Path, port: int) -> bool:
    client = c104.Client(tick_rate_ms=50, transport_security=_c104_tls(certs, "client1",
                                                                        "server1"))
    connection = client.add_connection(ip="127.0.0.1", port=port, init=c104.Init.NONE)
    connection.add_station(common_address=CA)
    client.start()
    try:
        return wait_for(lambda: connection.state == c104.ConnectionState.OPEN, 3)
    finally:
        client.stop()


async def test_c104_tls_client(tmp_path, capfd):
    certs = _certificates(tmp_path)
    # c104's own TLS server, set up as documented
    port = find_unused_tcp_port()
    server = c104.Server(ip="127.0.0.1", port=port, tick_rate_ms=50,
                         transport_security=_c104_tls(certs, "server1", "client1"))
    station = server.add_station(common_address=CA)
    station.add_point(io_address=5, type=CT.M_ME_NC_1).value = 1.5
    server.start()
    try:
        # control: our TLS client with the same certificates talks to c104's TLS server
        ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        ctx.check_hostname = False  # c104's documented certificates carry no host names
        ctx.load_cert_chain(certs / "client1.crt", certs / "client1.key")
        conn = await iec104.connect(iec104.Address("127.0.0.1", port), ssl_context=ctx)
        assert conn.ssl_object is not None
        assert (await conn.read(5, CA)).value == iec104.FloatingValue(1.5)
        await conn.async_close()
        own = await asyncio.to_thread(_c104_tls_client_connects, certs, port)
    finally:
        await asyncio.to_thread(server.stop)
    # our TLS server, requiring a client certificate of the same CA (IEC 62351-3)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "server1.crt", certs / "server1.key")
    ctx.load_verify_locations(certs / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    accepted: asyncio.Queue = asyncio.Queue()
    port = find_unused_tcp_port()
    srv = await iec104.listen(accepted.put_nowait, iec104.Address("127.0.0.1", port),
                              ssl_context=ctx)
    try:
        ours = await asyncio.to_thread(_c104_tls_client_connects, certs, port)
        if ours:  # a c104 that sets the hostname: then it must really work with us
            conn = await asyncio.wait_for(accepted.get(), 5)
            assert conn.ssl_object is not None
    finally:
        await srv.async_close()
    out = capfd.readouterr()
    if not own:
        # the conclusive cause, printed by lib60870 for every attempt, with either server
        assert "mbedtls_ssl_handshake returned -0x5d80" in out.out + out.err
        assert not ours
    else:
        assert ours, "c104's TLS client reaches c104's TLS server but not ours"
