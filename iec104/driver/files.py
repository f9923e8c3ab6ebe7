"""File transfer over a connection: the client calls and the outstation's file provider.

Theory of operation
-------------------
The dialogue itself (select, call, sections, segments, checksums, acknowledgements,
refusals) is :mod:`iec104.codec.files`; this module only moves its ASDUs and runs timers
and callbacks. Every :class:`~iec104.driver.connection.Connection` owns one
:class:`FileService`, to which it hands every F_* ASDU (type IDs 120-127):

* Client side (:class:`FileClient`, mixed into ``Connection``): ``list_files``,
  ``read_file`` and ``write_file`` run one at a time per connection (a lock). Each waits
  for the peer with an idle timer: ``timeout`` seconds (default: the connection's t1,
  ``response_timeout``) without an ASDU of the transfer end it with
  :class:`~iec104.codec.files.FileTimeoutError`, after telling the peer (deactivate file
  when reading, last section with deactivation when writing).
* Server side: with a :class:`FileProvider` (``file_provider=`` of ``listen`` or
  ``connect``), a call directory, a select file and a file ready (the peer writing) ask
  the provider, whose methods may be plain or coroutine functions. Transfers in progress
  are kept per (CA, IOA, NOF) and forgotten after ``response_timeout`` seconds of silence.
  Without a provider these requests go to ``asdu_cb`` when there is one (an application's
  own file service), else they are mirrored with cause UNKNOWN_TYPE (negative): the
  station has no file service.

An empty directory has no F_DR_TA_1 to send (the standard defines none without an
entry): the call directory is then mirrored with P/N=1 and cause REQUEST, which
``list_files`` returns as ``[]``; a directory the provider refuses (None) is mirrored with
cause UNKNOWN_ASDU_ADDRESS, which it raises as :class:`~iec104.codec.files.FileRefusedError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..codec.asdu import ASDU, DEFAULT_PROFILE, Profile
from ..codec.constants import Cause, TypeId
from ..codec.files import (
    NEGATIVE,
    FileDeletion,
    FileError,
    FileInfo,
    FileReceiver,
    FileRefusedError,
    FileSender,
    FileTimeoutError,
    FileTransferError,
    SelectCall,
    call_directory,
    directory_asdus,
    directory_entries,
    file_ready,
)
from ..codec.values import FileReadyValue

if TYPE_CHECKING:
    from .connection import Connection

mlog = logging.getLogger("iec104.driver")

_UNKNOWN_CAUSES = frozenset((Cause.UNKNOWN_TYPE, Cause.UNKNOWN_CAUSE,
                             Cause.UNKNOWN_ASDU_ADDRESS, Cause.UNKNOWN_IO_ADDRESS))


class FileProvider:
    """The files an outstation offers and accepts. Subclass it and override what the
    station supports; the defaults refuse. Every method may also be a coroutine function.
    A method that raises counts as a refusal (and is logged).
    """

    def list_files(self, connection: Connection, asdu_address: int
                   ) -> list[FileInfo] | None:
        """The directory of ``asdu_address``, or None to refuse the call directory."""
        return None

    def read_file(self, connection: Connection, asdu_address: int, io_address: int,
                  name: int) -> bytes | None:
        """The content of the selected file (at most 16777215 octets), or None to refuse
        it (negative F_FR_NA_1)."""
        return None

    def accept_file(self, connection: Connection, asdu_address: int, io_address: int,
                    name: int, length: int) -> bool:
        """Whether to receive the file of ``length`` octets the peer announces
        (False: negative F_FR_NA_1)."""
        return False

    def write_file(self, connection: Connection, asdu_address: int, io_address: int,
                   name: int, data: bytes) -> bool:
        """Store a file received whole (checksums right); the file acknowledgement is
        positive when this returns True."""
        return False

    def delete_file(self, connection: Connection, asdu_address: int, io_address: int,
                    name: int) -> bool:
        """Delete a file; the confirmation (F_FR_NA_1) is positive when this returns
        True."""
        return False


class MemoryFiles(FileProvider):
    """A :class:`FileProvider` keeping files in memory, by (ASDU address, IOA, name).

    Args:
        files: the initial files.
        writable: accept files written by the peer (stored, replacing an older one).
        max_length: refuse written files announced longer than this.
    """

    def __init__(self, files: dict[tuple[int, int, int], bytes] | None = None, *,
                 writable: bool = True, max_length: int = 1 << 20) -> None:
        self.files = dict(files or {})
        self.writable = writable
        self.max_length = max_length

    def list_files(self, connection: Connection, asdu_address: int
                   ) -> list[FileInfo] | None:
        return [FileInfo(ioa, name, len(data))
                for (ca, ioa, name), data in sorted(self.files.items()) if ca == asdu_address]

    def read_file(self, connection: Connection, asdu_address: int, io_address: int,
                  name: int) -> bytes | None:
        return self.files.get((asdu_address, io_address, name))

    def accept_file(self, connection: Connection, asdu_address: int, io_address: int,
                    name: int, length: int) -> bool:
        return self.writable and length <= self.max_length

    def write_file(self, connection: Connection, asdu_address: int, io_address: int,
                   name: int, data: bytes) -> bool:
        self.files[(asdu_address, io_address, name)] = data
        return True

    def delete_file(self, connection: Connection, asdu_address: int, io_address: int,
                    name: int) -> bool:
        return self.writable and self.files.pop((asdu_address, io_address, name),
                                                None) is not None


class _Waiter:
    """A client operation waiting for the peer: a future plus an idle timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, what: str,
                 on_timeout: Any = None) -> None:
        self.future: asyncio.Future[Any] = loop.create_future()
        self._loop = loop
        self._timeout = timeout
        self._what = what
        self._on_timeout = on_timeout
        self._timer: asyncio.TimerHandle | None = None
        self.progress()

    def progress(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self._timeout, self._expired)

    def _expired(self) -> None:
        if self.future.done():
            return
        if self._on_timeout is not None:
            self._on_timeout()
        self.future.set_exception(FileTimeoutError(
            f"{self._what}: no answer within {self._timeout} s"))

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class _Served:
    """A transfer the server side runs for the peer."""

    __slots__ = ("timer", "transfer")

    def __init__(self, transfer: FileSender | FileReceiver) -> None:
        self.transfer = transfer
        self.timer: asyncio.TimerHandle | None = None


class FileService:
    """The file transfers of one connection (both roles); see the module docstring."""

    def __init__(self, conn: Connection, provider: FileProvider | None,
                 idle_timeout: float, profile: Profile = DEFAULT_PROFILE) -> None:
        self._conn = conn
        self._provider = provider
        self._idle_timeout = idle_timeout
        self.profile = profile  # field sizes: how much of a file fits a segment
        self.lock = asyncio.Lock()
        self._transfer: FileSender | FileReceiver | FileDeletion | None = None  # client
        self._waiter: _Waiter | None = None
        self._directory: tuple[int, list[FileInfo]] | None = None  # CA, entries so far
        self._served: dict[tuple[int, int, int], _Served] = {}

    # -- client side ----------------------------------------------------------------------

    async def run(self, transfer: FileSender | FileReceiver | FileDeletion | None, first: ASDU,
                  timeout: float | None, what: str, on_timeout: Any = None) -> Any:
        """Send ``first`` and wait for the end of ``transfer`` (or of the directory)."""
        waiter = self._waiter = _Waiter(asyncio.get_running_loop(),
                                        self._idle_timeout if timeout is None else timeout,
                                        what, on_timeout)
        self._transfer = transfer
        try:
            self._send(first)
            return await waiter.future
        finally:
            waiter.finish()
            self._waiter = None
            self._transfer = None
            self._directory = None

    def start_directory(self, common_address: int) -> None:
        self._directory = (common_address, [])

    def _client_asdu(self, asdu: ASDU) -> bool:
        """Feed our client operation; False if ``asdu`` is not about it."""
        waiter = self._waiter
        if waiter is None:
            return False
        directory = self._directory
        if directory is not None:
            return self._directory_asdu(asdu, directory, waiter)
        transfer = self._transfer
        if transfer is None or not transfer.matches(asdu) or self._requested_by_peer(asdu):
            return False
        waiter.progress()
        step = transfer.receive(asdu)
        for out in step.send:
            self._send(out)
        if step.data is not None:
            assert isinstance(transfer, FileReceiver)
            self._send(transfer.ack_file(True))
            waiter.finish(step.data)
        elif step.done:
            waiter.finish(None, step.error)
        return True

    @staticmethod
    def _requested_by_peer(asdu: ASDU) -> bool:
        """Requests that open a server-side transfer even while we run a client one."""
        obj = asdu.objects[0]
        return (asdu.type_id is TypeId.F_SC_NA_1 and asdu.cause == Cause.FILE_TRANSFER
                and obj.qualifier in (SelectCall.SELECT_FILE, SelectCall.DELETE_FILE)
                and not asdu.negative)

    def _directory_asdu(self, asdu: ASDU, directory: tuple[int, list[FileInfo]],
                        waiter: _Waiter) -> bool:
        ca, entries = directory
        if asdu.common_address != ca:
            return False
        if asdu.type_id is TypeId.F_DR_TA_1:
            waiter.progress()
            part, last = directory_entries(asdu)
            entries += part
            if last:
                waiter.finish(entries)
            return True
        if asdu.type_id is TypeId.F_SC_NA_1 and asdu.negative:  # our call, mirrored
            if asdu.cause == Cause.REQUEST:
                waiter.finish([])  # an empty directory (see the module docstring)
            else:
                waiter.finish(None, FileRefusedError(
                    f"call directory of CA {ca} refused with cause {_cause(asdu)}"))
            return True
        return False

    # -- server side ----------------------------------------------------------------------

    def on_asdu(self, asdu: ASDU) -> None:
        """An F_* ASDU from the peer."""
        if not asdu.objects or self._client_asdu(asdu):
            return
        obj = asdu.objects[0]
        value = obj.value
        if obj.address is None:  # file types always have an IOA
            return
        key = (asdu.common_address, obj.address, int(getattr(value, "file_name", 0)))
        kind = asdu.type_id
        if kind is TypeId.F_SC_NA_1 and asdu.cause == Cause.REQUEST and not asdu.negative:
            self._request(asdu, "list files", lambda p: p.list_files,
                          (asdu.common_address,), lambda r: self._answer_directory(asdu, r))
        elif kind is TypeId.F_SC_NA_1 and asdu.cause == Cause.FILE_TRANSFER and \
                obj.qualifier == SelectCall.SELECT_FILE and not asdu.negative:
            self._request(asdu, "read file", lambda p: p.read_file, key,
                          lambda r: self._answer_select(asdu, key, r))
        elif kind is TypeId.F_SC_NA_1 and asdu.cause == Cause.FILE_TRANSFER and \
                obj.qualifier == SelectCall.DELETE_FILE and not asdu.negative:
            self._request(asdu, "delete file", lambda p: p.delete_file, key,
                          lambda r: self._send(file_ready(
                              *key, positive=r is True, originator=asdu.originator)))
        elif kind is TypeId.F_FR_NA_1 and asdu.cause == Cause.FILE_TRANSFER and \
                not asdu.negative and not (obj.qualifier or 0) & NEGATIVE and \
                key not in self._served:
            assert isinstance(value, FileReadyValue)
            self._request(asdu, "accept file", lambda p: p.accept_file,
                          (*key, value.length),
                          lambda r: self._answer_ready(asdu, key, value.length, r))
        elif key in self._served:
            self._serve(key, asdu)
        else:  # a request we do not serve (F_SC_NB_1...): asdu_cb's, else refused
            self._conn._on_unhandled(asdu)

    def _request(self, asdu: ASDU, what: str, method: Any, args: tuple[Any, ...],
                 done: Any) -> None:
        if self._provider is None:
            if self._conn._settings.asdu_cb is not None:  # the application's file service
                self._conn._on_unhandled(asdu)
                return
            mlog.info("%s: refusing %s: no file provider", self._conn._log_prefix, what)
            self._send(asdu._replace(cause=Cause.UNKNOWN_TYPE, negative=True))
            return
        def answer(result: Any) -> None:
            if self._conn.is_open:
                done(result)

        self._conn._call(what, method(self._provider), args, answer)

    def _answer_directory(self, request: ASDU, entries: list[FileInfo] | None) -> None:
        try:
            asdus = directory_asdus(request.common_address, entries or (),
                                    originator=request.originator, profile=self.profile) \
                if entries is not None else None
        except (TypeError, ValueError, AttributeError) as exc:
            mlog.warning("%s: list_files returned a bad directory: %s",
                         self._conn._log_prefix, exc)
            asdus = None
        if asdus is None:
            self._send(request._replace(cause=Cause.UNKNOWN_ASDU_ADDRESS, negative=True))
        elif not asdus:
            self._send(request._replace(negative=True))
        for asdu in asdus or ():
            self._send(asdu)

    def _answer_select(self, request: ASDU, key: tuple[int, int, int],
                       data: bytes | None) -> None:
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            mlog.warning("%s: read_file returned %s, not bytes", self._conn._log_prefix,
                         type(data).__name__)
            data = None
        try:
            sender = FileSender(*key, bytes(data), originator=request.originator,
                                profile=self.profile) \
                if data is not None else None
        except ValueError as exc:
            mlog.warning("%s: cannot send file: %s", self._conn._log_prefix, exc)
            sender = None
        if sender is None:
            self._send(file_ready(*key, positive=False, originator=request.originator))
            return
        self._open(key, sender)
        self._send(sender.ready())

    def _answer_ready(self, request: ASDU, key: tuple[int, int, int], length: int,
                      accepted: Any) -> None:
        if accepted is not True:
            self._send(file_ready(*key, positive=False, originator=request.originator))
            return
        receiver = FileReceiver(*key, length=length, originator=request.originator)
        self._open(key, receiver)
        self._send(receiver.call_file())

    def _open(self, key: tuple[int, int, int], transfer: FileSender | FileReceiver) -> None:
        self._close_served(key)
        self._served[key] = _Served(transfer)
        self._touch(key)

    def _touch(self, key: tuple[int, int, int]) -> None:
        served = self._served[key]
        if served.timer is not None:
            served.timer.cancel()
        served.timer = asyncio.get_running_loop().call_later(
            self._idle_timeout, self._idle, key)

    def _idle(self, key: tuple[int, int, int]) -> None:
        mlog.info("%s: file %s at CA %s IOA %s: the peer went silent, transfer dropped",
                  self._conn._log_prefix, key[2], key[0], key[1])
        self._served.pop(key, None)

    def _close_served(self, key: tuple[int, int, int]) -> None:
        served = self._served.pop(key, None)
        if served is not None and served.timer is not None:
            served.timer.cancel()

    def _serve(self, key: tuple[int, int, int], asdu: ASDU) -> None:
        transfer = self._served[key].transfer
        self._touch(key)
        step = transfer.receive(asdu)
        for out in step.send:
            self._send(out)
        if step.data is not None:
            assert isinstance(transfer, FileReceiver)
            def stored(ok: Any) -> None:
                self._send(transfer.ack_file(ok is True, FileError.DEFAULT))

            assert self._provider is not None  # a receiver is opened by the provider only
            self._conn._call("write file", self._provider.write_file, (*key, step.data),
                             stored)
        if step.done:
            if step.error is not None:
                mlog.info("%s: %s", self._conn._log_prefix, step.error)
            self._close_served(key)

    # -- both -----------------------------------------------------------------------------

    def _send(self, asdu: ASDU) -> None:
        if self._conn.is_open:
            self._conn._send_asdu(asdu)

    def close(self, error: BaseException) -> None:
        """The connection closed: fail the client operation, drop served transfers."""
        if self._waiter is not None:
            self._waiter.finish(None, error)
        for key in list(self._served):
            self._close_served(key)


def _cause(asdu: ASDU) -> str:
    cause = asdu.cause
    return cause.name if isinstance(cause, Cause) else str(cause)


class FileClient:
    """The file-transfer calls of a :class:`~iec104.driver.connection.Connection`."""

    _files: FileService

    async def list_files(self, asdu_address: int, io_address: int = 0, *,
                         timeout: float | None = None) -> list[FileInfo]:
        """Call the directory of ``asdu_address`` (F_SC_NA_1, cause REQUEST) and collect
        the F_DR_TA_1 entries until the last one (LFD).

        Args:
            io_address: IOA of the directory (0 for the station's).
            timeout: seconds of silence before giving up (default: t1).

        Raises:
            FileRefusedError: the peer refused (no file service, unknown address).
            FileTimeoutError: the peer stopped answering.
            ConnectionError: the connection closed first.
        """
        async with self._files.lock:
            self._files.start_directory(asdu_address)
            entries: list[FileInfo] = await self._files.run(
                None, call_directory(asdu_address, io_address), timeout,
                f"call directory of CA {asdu_address}")
            return entries

    async def read_file(self, asdu_address: int, io_address: int, name: int, *,
                        timeout: float | None = None, max_length: int = 0xFFFFFF) -> bytes:
        """Read (download) a file: select, call, every section with its checksum, file
        checksum; sections that arrive damaged are asked again up to 3 times.

        Args:
            asdu_address: CA of the station.
            io_address: IOA of the file.
            name: NOF [0, 65535].
            timeout: seconds of silence before giving up (default: t1); the file is then
                deactivated.
            max_length: refuse (deactivate) a file announced longer.

        Returns:
            The file.

        Raises:
            FileRefusedError: the peer refused the file (negative F_FR, unknown address).
            FileChecksumError: a section kept arriving damaged, or the file checksum or
                length is wrong.
            FileAbortedError: the peer deactivated the transfer.
            FileTimeoutError: the peer stopped answering.
            ConnectionError: the connection closed first.
        """
        async with self._files.lock:
            receiver = FileReceiver(asdu_address, io_address, name, max_length=max_length)
            data: bytes = await self._files.run(
                receiver, receiver.select(), timeout,
                f"read file {name} at CA {asdu_address} IOA {io_address}",
                lambda: self._files._send(receiver.deactivate()))
            return data

    async def delete_file(self, asdu_address: int, io_address: int, name: int, *,
                          timeout: float | None = None) -> None:
        """Delete a file at the peer (F_SC_NA_1 delete file); returns once the peer
        confirmed (F_FR_NA_1).

        Raises:
            FileRefusedError: the peer refused (no such file, no file service).
            FileTimeoutError: no confirmation within ``timeout`` seconds (default: t1).
            ConnectionError: the connection closed first.
        """
        async with self._files.lock:
            deletion = FileDeletion(asdu_address, io_address, name, 0)
            await self._files.run(deletion, deletion.request(), timeout,
                                  f"delete file {name} at CA {asdu_address} IOA {io_address}")

    async def write_file(self, asdu_address: int, io_address: int, name: int, data: bytes,
                         *, timeout: float | None = None, section_size: int = 4096) -> None:
        """Write (upload) a file to the peer: file ready, then the sections the peer calls,
        then the file checksum; returns when the peer acknowledged the file positively.

        Args:
            data: the file, at most 16777215 octets.
            section_size: octets per section (grown if more than 255 sections are needed).
            timeout: seconds of silence before giving up (default: t1); the transfer is
                then ended with a last section with deactivation.

        Raises:
            ValueError: the file is too long or ``section_size`` < 1.
            FileRefusedError: the peer refused the file (or has no file service).
            FileChecksumError: the peer kept finding a section damaged, or refused the file
                checksum.
            FileAbortedError: the peer deactivated the transfer.
            FileTimeoutError: the peer stopped answering.
            ConnectionError: the connection closed first.
        """
        sender = FileSender(asdu_address, io_address, name, bytes(data),
                            section_size=section_size, profile=self._files.profile)
        async with self._files.lock:
            await self._files.run(
                sender, sender.ready(), timeout,
                f"write file {name} at CA {asdu_address} IOA {io_address}",
                lambda: self._files._send(sender.abort()))


__all__ = ["FileClient", "FileInfo", "FileProvider", "FileService", "FileTransferError",
           "MemoryFiles"]
