"""The example of the seed API document, verbatim apart from the port helper."""

from __future__ import annotations

import asyncio

import iec104
from tests.conftest import find_unused_tcp_port


class util:
    get_unused_tcp_port = staticmethod(find_unused_tcp_port)


async def test_seed_example():
    addr = iec104.Address('127.0.0.1', util.get_unused_tcp_port())
    conn2_future = asyncio.Future()
    srv = await iec104.listen(conn2_future.set_result, addr)
    conn1 = await iec104.connect(addr)
    conn2 = await conn2_future

    data = iec104.Data(value=iec104.SingleValue.ON,
                       quality=iec104.Quality(invalid=False,
                                              not_topical=False,
                                              substituted=False,
                                              blocked=False,
                                              overflow=False),
                       time=None,
                       asdu_address=123,
                       io_address=321,
                       cause=iec104.Cause.SPONTANEOUS,
                       is_test=False)

    # send data from conn1 to conn2
    conn1.notify_data_change([data])
    result = await conn2.receive()
    assert result == [data]

    # send data from conn2 to conn1
    conn2.notify_data_change([data])
    result = await conn1.receive()
    assert result == [data]

    await conn1.async_close()
    await conn2.async_close()
    await srv.async_close()


def test_seed_names_exported():
    names = [
        "Address", "ConnectionInfo", "connect", "listen", "Server", "Connection", "Data",
        "Command", "Action", "Quality", "Cause", "FreezeCode", "Time", "TimeSize", "SingleValue",
        "DoubleValue", "RegulatingValue", "StepPositionValue", "BitstringValue",
        "NormalizedValue", "ScaledValue", "FloatingValue", "BinaryCounterValue",
        "ProtectionValue", "ProtectionStartValue", "ProtectionCommandValue", "StatusChangeValue",
        "ProtectionQuality", "InitializationValue", "DecodeError", "EncodeError", "Iec104Error",
    ]
    for name in names:
        assert getattr(iec104, name) is not None, name
        assert name in iec104.__all__, name
