"""An asyncio event loop with a fake clock, for timer tests over real sockets.

The driver runs every timer (t1, t2, t3, close timeouts) on the event loop's clock
(``loop.time()`` and ``loop.call_at``), and its ``codec.Session`` reads the same clock. So a
loop whose ``time()`` moves only when the test says so makes timer tests exact and immune to
machine load, while the sockets, the selector and the peers stay real::

    def test_t1():
        async def main(loop: FakeClockLoop) -> None:
            ...                        # real sockets, real driver
            loop.advance(0.49)
            await settle()             # due timers run, what they wrote is read
            ...
        run(main)

Everything that waits on the loop's clock waits on the fake one: ``asyncio.sleep(0.1)`` and
``asyncio.wait_for(..., 2)`` never end by themselves (a hung test ends by pytest-timeout);
wait for events instead, and use :func:`nothing_to_read` for "nothing was sent".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class FakeClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock starts at 1000.0 and moves only by :meth:`advance`."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 1000.0

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (timers due by then run on the next turns)."""
        if seconds < 0:
            raise ValueError("the clock never goes back")
        self._now += seconds


async def settle(turns: int = 10) -> None:
    """Let the loop turn ``turns`` times: due timers run, and what they wrote to a socket
    on 127.0.0.1 is read by the other end in the same process."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def nothing_to_read(reader: asyncio.StreamReader) -> bool:
    """True if nothing arrives at ``reader`` while the loop settles (no waiting on
    the clock); raises ``AssertionError`` with what arrived otherwise."""
    task = asyncio.ensure_future(reader.read(1))
    await settle()
    if task.done():
        raise AssertionError(f"unexpected data {task.result()!r}")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return True


def run(main: Callable[[FakeClockLoop], Awaitable[None]]) -> None:
    """Run ``main(loop)`` to completion on a fresh :class:`FakeClockLoop`."""
    loop = FakeClockLoop()
    try:
        loop.run_until_complete(main(loop))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
