"""A small lifetime helper: a group of tasks that closes once, and resources built on it.

The seed API (hat-drivers) exposes ``async_group`` on servers and connections; this module
gives the same shape without a runtime dependency:

* :class:`Group` -- ``spawn`` tasks into it; ``close()`` cancels them all, runs the
  registered cleanup coroutines and then marks the group closed. ``wait_closing()`` /
  ``wait_closed()`` wait for the two steps. Closing is idempotent and never raises.
* :class:`Resource` -- an object whose lifetime is a ``Group``: ``is_open``, ``close()``,
  ``async_close()``, ``wait_closing()``, ``wait_closed()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

mlog = logging.getLogger(__name__)

T = TypeVar("T")


class Group:
    """Tasks sharing one lifetime (create inside a running event loop)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        self._children: set[Group] = set()
        self._closing = self._loop.create_future()
        self._closed = self._loop.create_future()

    @property
    def is_open(self) -> bool:
        """Neither closing nor closed."""
        return not self._closing.done()

    @property
    def is_closing(self) -> bool:
        """``close()`` was called (also true once closed)."""
        return self._closing.done()

    @property
    def is_closed(self) -> bool:
        """Every task and cleanup has finished."""
        return self._closed.done()

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> asyncio.Task[T]:
        """Run ``fn(*args)`` as a task of this group.

        Raises:
            RuntimeError: the group is closing.
        """
        if not self.is_open:
            raise RuntimeError("group is closing")
        task = self._loop.create_task(fn(*args))
        self._tasks.add(task)
        task.add_done_callback(self._on_task_done)
        return task

    def on_close(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Await ``cleanup()`` when the group closes (after its tasks are cancelled)."""
        self._cleanups.append(cleanup)

    def create_subgroup(self) -> Group:
        """A group that closes when this one does (and may close earlier on its own)."""
        child = Group()
        if not self.is_open:
            child.close()
        else:
            self._children.add(child)
            child._closed.add_done_callback(lambda _: self._children.discard(child))
        return child

    def close(self) -> None:
        """Start closing: cancel the tasks, then run the cleanups (idempotent)."""
        if self._closing.done():
            return
        self._closing.set_result(None)
        for task in self._tasks:
            task.cancel()
        self._loop.create_task(self._finish())

    async def async_close(self) -> None:
        """Close and wait until closed."""
        self.close()
        await self.wait_closed()

    async def wait_closing(self) -> None:
        """Wait until ``close()`` is called."""
        await asyncio.shield(self._closing)

    async def wait_closed(self) -> None:
        """Wait until closed."""
        await asyncio.shield(self._closed)

    def _on_task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            mlog.error("unhandled error in task %r: %s", task.get_name(), exc, exc_info=exc)

    async def _finish(self) -> None:
        try:
            children = list(self._children)
            for child in children:
                child.close()
            if self._tasks:
                await asyncio.wait(list(self._tasks))
            for child in children:
                await child.wait_closed()
            for cleanup in self._cleanups:
                try:
                    await cleanup()
                except Exception as exc:  # noqa: BLE001 -- one cleanup must not stop the others
                    mlog.error("error while closing: %s", exc, exc_info=exc)
        finally:
            self._closed.set_result(None)


class Resource:
    """Something whose lifetime is ``async_group``."""

    @property
    def async_group(self) -> Group:
        """The group that owns this resource's tasks."""
        raise NotImplementedError

    @property
    def is_open(self) -> bool:
        """Not closing or closed."""
        return self.async_group.is_open

    @property
    def is_closing(self) -> bool:
        """Closing or closed."""
        return self.async_group.is_closing

    @property
    def is_closed(self) -> bool:
        """Closed."""
        return self.async_group.is_closed

    def close(self) -> None:
        """Start closing."""
        self.async_group.close()

    async def async_close(self) -> None:
        """Close and wait until closed."""
        await self.async_group.async_close()

    async def wait_closing(self) -> None:
        """Wait until closing starts."""
        await self.async_group.wait_closing()

    async def wait_closed(self) -> None:
        """Wait until closed."""
        await self.async_group.wait_closed()
