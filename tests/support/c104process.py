"""A c104 master (:class:`tests.support.c104peer.C104Client`) in a child process of its own.

For long, heavy runs (100,000 data messages beside 1,000 commands through the proxy). Once in
CI, 83 % through the suite, the pytest process died of SIGABRT while this master was inside
``Point.transmit``, and every later test went unreported (pytest's fd capture swallowed
whatever c104 printed). The likely cause: c104 2.2.1 guards its state with
``GilAwareMutex`` (src/module/GilAwareMutex.h), which *throws* when a lock waits more than
100 ms, and a holder can be waiting for the GIL meanwhile (behind a long collector pass over
a big test process's heap, or the test's own Python threads on a loaded machine); thrown
where nothing catches it, that ends the process. In a child process c104 shares its GIL only
with its own callbacks and the cyclic collector is off (the child lives for one test); if
c104 still dies, the test fails with the child's exit status and the run goes on.

Theory of operation: the child builds the client and serves requests from a pipe, one at a
time: ``(operation, args)`` -> ``(True, result)`` or ``(False, error text)``. The parent waits
for the answer while watching the child, so a dead child is reported at once. Everything
crossing the pipe is plain data (point types by name, values as ``plain_value`` gives them,
raw frames as :class:`~tests.support.c104peer.RawFrame`).
"""

from __future__ import annotations

import faulthandler
import gc
import multiprocessing
import multiprocessing.connection
import time
from typing import Any, Self

from tests.support.c104peer import RawFrame

__all__ = ["C104ClientProcess"]


class C104ClientProcess:
    """``C104Client(port, **kwargs)`` run in a spawned child; use as a context manager or
    call :meth:`start` / :meth:`stop`. Every method waits for the child's answer, at most
    ``timeout`` seconds."""

    def __init__(self, port: int, timeout: float = 120.0, **kwargs: Any) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child_conn, port, kwargs),
                                    name="c104-master", daemon=True)
        self._child_conn = child_conn
        self.timeout = timeout

    def start(self) -> None:
        """Start the child and connect (STARTDT act/con done, as ``C104Client.start``)."""
        self._process.start()
        self._child_conn.close()  # the child holds its end: EOF here if it dies
        self._call("start")

    def commands(self, items: list[tuple[int, str, Any]]) -> list[bool]:
        """``C104Client.command(ioa, c104.Type.<type_name>, value)`` for each item in order;
        the confirmations c104 reported."""
        return self._call("commands", items)

    def received_count(self) -> int:
        """How many information objects c104 reported receiving so far."""
        return self._call("received_count")

    def received_values(self) -> list[Any]:
        """The ``plain_value`` of every information object received, in order."""
        return self._call("received_values")

    def raw(self) -> list[RawFrame]:
        """A snapshot of the raw APDUs c104 reported sending and receiving."""
        return self._call("raw")

    def stop(self) -> None:
        """Stop the client and wait for the child to exit (idempotent)."""
        if self._process.is_alive():
            try:
                self._call("stop")
            finally:
                self._process.join(10)
                if self._process.is_alive():
                    self._process.kill()
                    self._process.join()
        self._conn.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, operation: str, *args: Any) -> Any:
        try:
            self._conn.send((operation, args))
        except BrokenPipeError:
            pass  # the child is gone: reported below with its exit status
        deadline = time.monotonic() + self.timeout
        while not self._conn.poll(0.05):
            if not self._process.is_alive():
                raise self._died(operation)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the c104 master process did not answer {operation!r} "
                                   f"within {self.timeout} s")
        try:
            ok, result = self._conn.recv()
        except EOFError:  # the child's end closed: it died
            raise self._died(operation) from None
        if not ok:
            raise AssertionError(f"the c104 master failed in {operation!r}: {result}")
        return result

    def _died(self, operation: str) -> AssertionError:
        self._process.join(5)
        return AssertionError(f"the c104 master process died during {operation!r}: exit "
                              f"status {self._process.exitcode} (its stderr is the test's)")


def _serve(conn: multiprocessing.connection.Connection, port: int,
           kwargs: dict[str, Any]) -> None:
    """The child: one C104Client, requests from ``conn`` until ``stop``."""
    faulthandler.enable()  # a crash inside c104 shows its threads on stderr
    # the child lives for one test and keeps few objects: no collector pause may keep a
    # c104 thread waiting for the GIL while it holds one of c104's timed mutexes
    gc.disable()
    from tests.support.c104peer import C104Client, c104

    client = C104Client(port, **kwargs)

    def commands(items: list[tuple[int, str, Any]]) -> list[bool]:
        return [client.command(ioa, getattr(c104.Type, name), value)
                for ioa, name, value in items]

    operations = {
        "start": client.start,
        "stop": client.stop,
        "commands": commands,
        "received_count": lambda: len(client.received),
        "received_values": lambda: [r.value for r in list(client.received)],
        "raw": client.raw.snapshot,
    }
    while True:
        try:
            operation, args = conn.recv()
        except EOFError:  # the parent went away
            client.stop()
            return
        try:
            answer = (True, operations[operation](*args))
        except Exception as exc:  # noqa: BLE001  # reported to the parent: it fails the test
            answer = (False, f"{type(exc).__name__}: {exc}")
        conn.send(answer)
        if operation == "stop":
            return
