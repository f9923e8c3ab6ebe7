"""A server process that notifies data at a fixed rate, for memory tests of the send queue.

``python -m tests.support.notifier --port P [--rate 1000] [--points 1000] [--seconds 30]``
listens on 127.0.0.1:P, accepts one client, and for ``--seconds`` calls
``notify_data_change`` ``--rate`` times a second with one item each (the seed API's
pattern, no ``drain()``), cycling over ``--points`` IOAs with the values 0, 1, 2, ...
(``FloatingValue``, exact). It prints JSON lines on stdout: ``{"listening": port}``, then
``{"t": seconds, "rss": octets}`` every second, ``{"notified": n}`` when it stops
notifying, and after ``drain()`` ``{"last": {ioa: value}, "open": bool, "reason": str}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

import iec104


def rss() -> int:
    """Resident set size of this process in octets (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def serve(port: int, rate: int, points: int, seconds: float,
                send_queue_size: int | None) -> None:
    accepted: asyncio.Queue[iec104.Connection] = asyncio.Queue()
    kwargs = {} if send_queue_size is None else {"send_queue_size": send_queue_size}
    srv = await iec104.listen(accepted.put_nowait, iec104.Address("127.0.0.1", port), **kwargs)
    emit(listening=port)
    conn = await accepted.get()
    loop = asyncio.get_running_loop()
    quality = iec104.Quality()
    last: dict[int, float] = {}
    start = next_report = loop.time()
    sent = 0
    try:
        while (elapsed := loop.time() - start) < seconds and conn.is_open:
            for _ in range(int(elapsed * rate) - sent):
                ioa = sent % points
                conn.notify_data_change([iec104.Data(
                    iec104.FloatingValue(float(sent)), quality, None, 1, ioa,
                    iec104.Cause.SPONTANEOUS, False)])
                last[ioa] = float(sent)
                sent += 1
            if loop.time() >= next_report:
                emit(t=round(elapsed, 1), rss=rss())
                next_report += 1
            await asyncio.sleep(0.01)
        emit(notified=sent, rss=rss())
        if conn.is_open:
            await conn.drain()
        emit(last=last, open=conn.is_open, reason=conn.close_reason)
    finally:
        await conn.async_close()
        await srv.async_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--send-queue-size", type=int)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.rate, args.points, args.seconds, args.send_queue_size))


if __name__ == "__main__":
    main()
