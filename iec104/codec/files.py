"""File transfer (IEC 60870-5-101 §7.4.11, used unchanged by IEC 104), sans-IO.

Theory of operation
-------------------
A file (name NOF [0, 65535], at an information object address, of LOF octets) travels in
*sections* (NOS [1, 255]), each cut into *segments* (F_SG_NA_1) that fill one ASDU. Every
section ends with F_LS_NA_1 carrying its checksum, the file with F_LS_NA_1 carrying the
file checksum; a checksum is the sum of the octets modulo 256 (so the file checksum is
also the sum of the section checksums). Both directions use the same dialogue, only who
starts differs::

    reading (monitor direction)            writing (control direction)
    master               outstation        master               outstation
    F_SC select file  ->                   F_FR file ready   ->
                      <- F_FR file ready                     <- F_SC call file
    F_SC call file    ->                   F_SR section ready ->
                      <- F_SR section ready                  <- F_SC call section
    F_SC call section ->                   F_SG segments, F_LS last segment ->
                      <- F_SG ..., F_LS                      <- F_AF section ack
    F_AF section ack  ->                   ... next section, or F_LS last section ->
                      <- F_SR next / F_LS                    <- F_AF file ack
    F_AF file ack     ->

So one :class:`FileSender` and one :class:`FileReceiver` serve both roles: each is fed the
peer's ASDUs (``receive``) and answers with a :class:`Step` (ASDUs to send, whether the
transfer ended, the file, the error). A negative section acknowledgement makes the sender
repeat the section (up to ``max_retries`` times). A negative F_FR (FRQ bit 8) or a request
mirrored with an "unknown" cause refuses the file; F_LS with deactivation or F_SC
deactivate aborts it. Timers are the caller's: these objects only react to ASDUs.

A file of zero octets is one empty section (its F_SR has length 0 and its F_LS checksum
0): the standard's dialogue stays the same for every length.

The passive :class:`FileReassembler` is the receiver's logic fed every ASDU of one
connection (both directions, in order) and deaf to what it would send: what a capture
shows being transferred is rebuilt with exactly the rules the driver applies.

A directory (F_DR_TA_1) lists :class:`FileInfo` entries, the last one with the LFD bit;
it answers a call directory (F_SC_NA_1 with cause REQUEST) or is sent spontaneously.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from .apci import MAX_ASDU_SIZE
from .asdu import ASDU, DEFAULT_PROFILE, InformationObject, Profile
from .constants import Cause, TypeId, cause_name, type_name
from .errors import Iec104Error
from .timetag import Time, TimeSize
from .values import (
    AckFileValue,
    CallFileValue,
    DirectoryValue,
    FileReadyValue,
    LastSectionValue,
    SectionReadyValue,
    SegmentValue,
)

FILE_TYPES = frozenset(range(TypeId.F_FR_NA_1, TypeId.F_SC_NB_1 + 1))
"""Type IDs 120-127."""

MAX_FILE_SIZE = 0xFFFFFF
"""LOF is 3 octets: files of at most 16777215 octets."""

MAX_SECTIONS = 255
"""NOS is 1 octet and section 0 is not used."""

NEGATIVE = 0x80
"""FRQ/SRQ bit 8 (BS1): negative confirm of select/request / section not ready."""

_UNKNOWN_CAUSES = frozenset((Cause.UNKNOWN_TYPE, Cause.UNKNOWN_CAUSE,
                             Cause.UNKNOWN_ASDU_ADDRESS, Cause.UNKNOWN_IO_ADDRESS))


class SelectCall(enum.IntEnum):
    """SCQ bits 1-4 of F_SC_NA_1 (the high nibble is a :class:`FileError`)."""

    DEFAULT = 0
    SELECT_FILE = 1
    REQUEST_FILE = 2
    DEACTIVATE_FILE = 3
    DELETE_FILE = 4
    SELECT_SECTION = 5
    REQUEST_SECTION = 6
    DEACTIVATE_SECTION = 7


class FileError(enum.IntEnum):
    """Bits 5-8 of SCQ and AFQ: why a call or acknowledgement is negative."""

    DEFAULT = 0
    NO_MEMORY = 1
    CHECKSUM = 2
    UNEXPECTED_SERVICE = 3
    UNEXPECTED_FILE = 4
    UNEXPECTED_SECTION = 5


class LastSection(enum.IntEnum):
    """LSQ of F_LS_NA_1."""

    FILE_TRANSFER_WITHOUT_DEACT = 1
    FILE_TRANSFER_WITH_DEACT = 2
    SECTION_TRANSFER_WITHOUT_DEACT = 3
    SECTION_TRANSFER_WITH_DEACT = 4


class Ack(enum.IntEnum):
    """AFQ bits 1-4 of F_AF_NA_1 (the high nibble is a :class:`FileError`)."""

    POSITIVE_FILE = 1
    NEGATIVE_FILE = 2
    POSITIVE_SECTION = 3
    NEGATIVE_SECTION = 4


def _low(qualifier: int | None) -> int:
    return (qualifier or 0) & 0x0F


def _call_name(qualifier: int | None) -> str:
    low = _low(qualifier)
    return SelectCall(low).name.lower() if low in SelectCall._value2member_map_ \
        else f"SCQ {low}"


def _error(qualifier: int | None) -> FileError | int:
    code = (qualifier or 0) >> 4 & 0x0F
    try:
        return FileError(code)
    except ValueError:
        return code


# -- errors -------------------------------------------------------------------------------

class FileTransferError(Iec104Error):
    """A file transfer failed; ``reason`` says at which step and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileRefusedError(FileTransferError):
    """The peer refused the file, the directory or the file service."""


class FileChecksumError(FileTransferError):
    """A section or the file arrived with a wrong checksum or length (after retries)."""


class FileAbortedError(FileTransferError):
    """The peer deactivated (aborted) the transfer."""


class FileTimeoutError(FileTransferError, TimeoutError):
    """The peer did not answer a step in time."""


# -- sizes and checksums ------------------------------------------------------------------

def checksum(data: bytes | bytearray | memoryview) -> int:
    """Section/file checksum: the sum of the octets modulo 256, in [0, 255]."""
    return sum(data) & 0xFF


def max_segment_size(profile: Profile = DEFAULT_PROFILE) -> int:
    """Octets of file data that fit one F_SG_NA_1 ASDU of ``profile`` (236 for IEC 104):
    the largest ASDU minus the data unit identifier, the IOA and NOF, NOS, LOS."""
    header = 2 + profile.cot_size + profile.ca_size
    return min(255, MAX_ASDU_SIZE - header - profile.ioa_size - 4)


def split_sections(data: bytes, section_size: int) -> list[bytes]:
    """Cut a file into sections of ``section_size`` octets (the last may be shorter),
    grown so that at most 255 sections are needed; an empty file is one empty section.

    Raises:
        ValueError: ``section_size`` < 1, or the file is longer than 16777215 octets.
    """
    if section_size < 1:
        raise ValueError(f"section_size {section_size} < 1")
    if len(data) > MAX_FILE_SIZE:
        raise ValueError(f"file of {len(data)} octets is longer than LOF allows "
                         f"({MAX_FILE_SIZE})")
    size = max(section_size, -(-len(data) // MAX_SECTIONS))
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def segments(section: bytes, size: int) -> Iterator[bytes]:
    """The segments of one section, at most ``size`` octets each (none for an empty one)."""
    for i in range(0, len(section), size):
        yield section[i:i + size]


# -- directory ----------------------------------------------------------------------------

UNKNOWN_TIME = Time(TimeSize.SEVEN, 0, True, 0, False, 0, 0, 1, 1, 0)
"""CP56Time2a with IV set, for a directory entry whose creation time is not known."""

_STATUS, _LFD, _FOR, _FA = 0x1F, 0x20, 0x40, 0x80


class FileInfo(NamedTuple):
    """One directory entry (F_DR_TA_1).

    Attributes:
        io_address: IOA of the file [0, 16777215].
        name: NOF [0, 65535] (0: default name).
        length: LOF, octets [0, 16777215].
        time: creation time (CP56Time2a); ``UNKNOWN_TIME`` (IV set) when not known.
        status: STATUS bits of SOF [0, 31] (their meaning is the application's).
        directory: FOR bit: the name is a subdirectory.
        active: FA bit: the file is being transferred.
    """

    io_address: int
    name: int
    length: int
    time: Time = UNKNOWN_TIME
    status: int = 0
    directory: bool = False
    active: bool = False


def directory_asdus(common_address: int, entries: Iterable[FileInfo], *,
                    cause: Cause = Cause.REQUEST, originator: int = 0,
                    profile: Profile = DEFAULT_PROFILE) -> list[ASDU]:
    """F_DR_TA_1 ASDUs listing ``entries`` (as many per ASDU as fit; LFD set on the last
    entry). No entries give no ASDU.

    Raises:
        ValueError: a status outside [0, 31].
    """
    objects = []
    entries = list(entries)
    for i, e in enumerate(entries):
        if not 0 <= e.status <= _STATUS:
            raise ValueError(f"directory entry status {e.status} outside [0, 31]")
        sof = (e.status | (_LFD if i == len(entries) - 1 else 0)
               | (_FOR if e.directory else 0) | (_FA if e.active else 0))
        objects.append(InformationObject(e.io_address, DirectoryValue(e.name, e.length, sof),
                                         time=e.time))
    header = 2 + profile.cot_size + profile.ca_size
    per_asdu = (MAX_ASDU_SIZE - header) // (profile.ioa_size + 13)
    return [ASDU(TypeId.F_DR_TA_1, False, cause, False, False, originator, common_address,
                 tuple(objects[i:i + per_asdu])) for i in range(0, len(objects), per_asdu)]


def directory_entries(asdu: ASDU) -> tuple[list[FileInfo], bool]:
    """The entries of an F_DR_TA_1 ASDU and whether the last entry of the directory
    (LFD) is among them."""
    out, last = [], False
    for obj in asdu.objects:
        v = obj.value
        if not isinstance(v, DirectoryValue) or obj.address is None:
            continue
        out.append(FileInfo(obj.address, v.file_name, v.length, obj.time or UNKNOWN_TIME,
                            v.status & _STATUS, bool(v.status & _FOR), bool(v.status & _FA)))
        last = last or bool(v.status & _LFD)
    return out, last


def call_directory(common_address: int, io_address: int = 0, *,
                   originator: int = 0) -> ASDU:
    """The call directory request: F_SC_NA_1, cause REQUEST, NOF 0, SCQ 0."""
    return ASDU(TypeId.F_SC_NA_1, False, Cause.REQUEST, False, False, originator,
                common_address, (InformationObject(io_address, CallFileValue(0, 0),
                                                   qualifier=SelectCall.DEFAULT),))


# -- one transfer -------------------------------------------------------------------------

class Step(NamedTuple):
    """What one received ASDU (or a start) means for a transfer.

    Attributes:
        send: ASDUs to send to the peer, in order.
        done: the transfer ended (successfully if ``error`` is None).
        data: the received file, when a :class:`FileReceiver` completes it.
        error: why the transfer failed.
    """

    send: tuple[ASDU, ...] = ()
    done: bool = False
    data: bytes | None = None
    error: FileTransferError | None = None


class _Transfer(abc.ABC):
    """What the sender and the receiver share: the addressing of one file."""

    def __init__(self, common_address: int, io_address: int, name: int,
                 originator: int) -> None:
        self.common_address = common_address
        self.io_address = io_address
        self.name = name
        self.originator = originator
        self.done = False

    def _label(self) -> str:
        return f"file {self.name} at CA {self.common_address} IOA {self.io_address}"

    def _asdu(self, type_id: TypeId, value: object, qualifier: int | None = None) -> ASDU:
        return ASDU(type_id, False, Cause.FILE_TRANSFER, False, False, self.originator,
                    self.common_address,
                    (InformationObject(self.io_address, value,  # type: ignore[arg-type]
                                       qualifier=qualifier),))

    def matches(self, asdu: ASDU) -> bool:
        """Whether ``asdu`` is about this file (CA, IOA and, where it has one, NOF)."""
        if asdu.common_address != self.common_address or not asdu.objects:
            return False
        obj = asdu.objects[0]
        name = getattr(obj.value, "file_name", None)
        return obj.address == self.io_address and (name is None or name == self.name)

    def receive(self, asdu: ASDU) -> Step:
        """React to the peer's ASDU about this file (see :meth:`matches`); ASDUs out of
        turn are ignored (an empty step), as the standard's stations do."""
        if self.done:
            return Step(done=True)
        common = self._common(asdu)
        return common if common is not None else self._receive(asdu)

    @abc.abstractmethod
    def _receive(self, asdu: ASDU) -> Step:
        """The step for an ASDU of this transfer that is no refusal or abort."""

    def _end(self, error: FileTransferError | None = None, send: tuple[ASDU, ...] = (),
             data: bytes | None = None) -> Step:
        self.done = True
        return Step(send, True, data, error)

    def _common(self, asdu: ASDU) -> Step | None:
        """Refusals and aborts every state understands; None if ``asdu`` is none."""
        if asdu.cause in _UNKNOWN_CAUSES:
            return self._end(FileRefusedError(
                f"{self._label()}: {type_name(asdu.type_id)} refused with cause "
                f"{cause_name(asdu.cause)}"))
        obj = asdu.objects[0]
        if asdu.type_id is TypeId.F_FR_NA_1 and (obj.qualifier or 0) & NEGATIVE:
            return self._end(FileRefusedError(f"{self._label()}: refused by the peer"))
        if asdu.type_id is TypeId.F_SC_NA_1 and asdu.negative:
            return self._end(FileRefusedError(
                f"{self._label()}: {_call_name(obj.qualifier)} "
                f"(section {getattr(obj.value, 'section', 0)}) refused by the peer"))
        if asdu.type_id is TypeId.F_SC_NA_1 and _low(obj.qualifier) in (
                SelectCall.DEACTIVATE_FILE, SelectCall.DEACTIVATE_SECTION):
            return self._end(FileAbortedError(f"{self._label()}: deactivated by the peer"))
        if asdu.type_id is TypeId.F_LS_NA_1 and obj.qualifier in (
                LastSection.FILE_TRANSFER_WITH_DEACT, LastSection.SECTION_TRANSFER_WITH_DEACT):
            return self._end(FileAbortedError(f"{self._label()}: aborted by the sender"))
        return None


class FileSender(_Transfer):
    """The sending end of one file: an outstation answering a select, or a master
    writing a file. Start with :meth:`ready`, then feed the peer's ASDUs to
    :meth:`receive`.

    Args:
        data: the file, at most 16777215 octets.
        section_size: octets per section (grown if the file needs more than 255).
        max_retries: how often a section refused for its checksum is sent again.
        profile: field sizes (segment size).
    """

    def __init__(self, common_address: int, io_address: int, name: int, data: bytes, *,
                 section_size: int = 4096, max_retries: int = 3, originator: int = 0,
                 profile: Profile = DEFAULT_PROFILE) -> None:
        super().__init__(common_address, io_address, name, originator)
        self.data = bytes(data)
        self.sections = split_sections(self.data, section_size)
        self.segment_size = max_segment_size(profile)
        self.max_retries = max_retries
        self._section = 0  # index into sections of the section in transfer
        self._retries = 0
        self._state = "ready"

    def ready(self) -> ASDU:
        """F_FR_NA_1, file ready (positive)."""
        return file_ready(self.common_address, self.io_address, self.name, positive=True,
                          length=len(self.data), originator=self.originator)

    def abort(self) -> ASDU:
        """F_LS_NA_1 with deactivation: the sender gives up (ends the transfer)."""
        self.done = True
        return self._asdu(TypeId.F_LS_NA_1, LastSectionValue(
            self.name, self._section + 1, 0), LastSection.FILE_TRANSFER_WITH_DEACT)

    def _section_ready(self) -> ASDU:
        return self._asdu(TypeId.F_SR_NA_1, SectionReadyValue(
            self.name, self._section + 1, len(self.sections[self._section])), 0)

    def _send_section(self) -> tuple[ASDU, ...]:
        nos = self._section + 1
        section = self.sections[self._section]
        out = [self._asdu(TypeId.F_SG_NA_1, SegmentValue(self.name, nos, seg))
               for seg in segments(section, self.segment_size)]
        out.append(self._asdu(TypeId.F_LS_NA_1, LastSectionValue(
            self.name, nos, checksum(section)), LastSection.SECTION_TRANSFER_WITHOUT_DEACT))
        return tuple(out)

    def _receive(self, asdu: ASDU) -> Step:
        obj = asdu.objects[0]
        kind, state = asdu.type_id, self._state
        if kind is TypeId.F_SC_NA_1:
            call = _low(obj.qualifier)
            if call == SelectCall.REQUEST_FILE and state == "ready":
                self._state = "section ready"
                return Step((self._section_ready(),))
            if call == SelectCall.REQUEST_SECTION and state == "section ready" and \
                    getattr(obj.value, "section", None) == self._section + 1:
                self._state = "section sent"
                return Step(self._send_section())
        elif kind is TypeId.F_AF_NA_1:
            return self._on_ack(_low(obj.qualifier), _error(obj.qualifier))
        return Step()  # out of turn: ignored, as the standard's receiver ignores

    def _on_ack(self, ack: int, error: FileError | int) -> Step:
        state = self._state
        if ack == Ack.POSITIVE_SECTION and state == "section sent":
            self._section += 1
            self._retries = 0
            if self._section < len(self.sections):
                self._state = "section ready"
                return Step((self._section_ready(),))
            self._section -= 1  # NOS of the last section goes with the file checksum
            self._state = "file sent"
            return Step((self._asdu(TypeId.F_LS_NA_1, LastSectionValue(
                self.name, self._section + 1, checksum(self.data)),
                LastSection.FILE_TRANSFER_WITHOUT_DEACT),))
        if ack == Ack.NEGATIVE_SECTION and state == "section sent":
            self._retries += 1
            if self._retries > self.max_retries:
                return self._end(FileChecksumError(
                    f"{self._label()}: section {self._section + 1} refused "
                    f"{self._retries} times ({_name(error)})"), (self.abort(),))
            self._state = "section ready"
            return Step((self._section_ready(),))
        if ack == Ack.POSITIVE_FILE and state == "file sent":
            return self._end()
        if ack == Ack.NEGATIVE_FILE:
            cls = FileChecksumError if error == FileError.CHECKSUM else FileRefusedError
            return self._end(cls(f"{self._label()}: negative file acknowledgement "
                                 f"({_name(error)})"))
        return Step()


def _name(code: int) -> str:
    return code.name if isinstance(code, FileError) else f"error {code}"


class FileReceiver(_Transfer):
    """The receiving end of one file: a master reading (start with :meth:`select`) or
    an outstation accepting a written file (start with :meth:`call_file` after the
    peer's F_FR_NA_1). Feed the peer's ASDUs to :meth:`receive`; when the file is
    complete and its checksum right, the step has ``data`` and the caller answers with
    :meth:`ack_file`.

    Args:
        length: LOF announced by the sender's F_FR (None until known).
        max_retries: sections with a wrong checksum asked again before giving up.
        max_length: refuse a file announced longer than this.
    """

    def __init__(self, common_address: int, io_address: int, name: int, *,
                 length: int | None = None, max_retries: int = 3, originator: int = 0,
                 max_length: int = MAX_FILE_SIZE) -> None:
        super().__init__(common_address, io_address, name, originator)
        self.length = length
        self.max_retries = max_retries
        self.max_length = max_length
        self.sections: list[bytes] = []
        self.section_checksums_ok = True  # False once any section arrived damaged
        self._buffer = bytearray()
        self._section: int | None = None
        self._section_length = 0
        self._retries = 0
        self._state = "selected" if length is None else "ready"

    @property
    def received(self) -> bytes:
        """The octets of the sections received whole so far."""
        return b"".join(self.sections)

    def select(self) -> ASDU:
        """F_SC_NA_1 select file."""
        return self._asdu(TypeId.F_SC_NA_1, CallFileValue(self.name, 0),
                          SelectCall.SELECT_FILE)

    def call_file(self) -> ASDU:
        """F_SC_NA_1 call (request) file."""
        return self._asdu(TypeId.F_SC_NA_1, CallFileValue(self.name, 0),
                          SelectCall.REQUEST_FILE)

    def deactivate(self) -> ASDU:
        """F_SC_NA_1 deactivate file: the receiver gives up (ends the transfer)."""
        self.done = True
        return self._asdu(TypeId.F_SC_NA_1, CallFileValue(self.name, 0),
                          SelectCall.DEACTIVATE_FILE)

    def ack_file(self, positive: bool, error: FileError = FileError.DEFAULT) -> ASDU:
        """F_AF_NA_1 acknowledging the whole file."""
        self.done = True
        return self._ack(Ack.POSITIVE_FILE if positive else Ack.NEGATIVE_FILE, error,
                         self._last_nos())

    def _last_nos(self) -> int:
        return self._section if self._section is not None else 0

    def _ack(self, ack: Ack, error: FileError, nos: int) -> ASDU:
        return self._asdu(TypeId.F_AF_NA_1, AckFileValue(self.name, nos), ack | error << 4)

    def _receive(self, asdu: ASDU) -> Step:
        obj, kind, state = asdu.objects[0], asdu.type_id, self._state
        value = obj.value
        if kind is TypeId.F_FR_NA_1 and state == "selected":
            assert isinstance(value, FileReadyValue)
            if value.length > self.max_length:
                return self._end(FileRefusedError(
                    f"{self._label()}: {value.length} octets exceed {self.max_length}"),
                    (self.deactivate(),))
            self.length = value.length
            self._state = "ready"
            return Step((self.call_file(),))
        if kind is TypeId.F_SR_NA_1 and state == "ready":
            assert isinstance(value, SectionReadyValue)
            if (obj.qualifier or 0) & NEGATIVE:
                return self._end(FileAbortedError(
                    f"{self._label()}: section {value.section} not ready"), (self.deactivate(),))
            self._section, self._section_length = value.section, value.length
            self._buffer.clear()
            self._state = "receiving"
            return Step((self._asdu(TypeId.F_SC_NA_1, CallFileValue(self.name, value.section),
                                    SelectCall.REQUEST_SECTION),))
        if kind is TypeId.F_SG_NA_1 and state == "receiving":
            assert isinstance(value, SegmentValue)
            if value.section == self._section:
                self._buffer += value.data
            return Step()
        if kind is TypeId.F_LS_NA_1:
            assert isinstance(value, LastSectionValue)
            if obj.qualifier == LastSection.SECTION_TRANSFER_WITHOUT_DEACT and \
                    state == "receiving" and value.section == self._section:
                return self._section_end(value.checksum)
            if obj.qualifier == LastSection.FILE_TRANSFER_WITHOUT_DEACT and state == "ready":
                return self._file_end(value.checksum)
        return Step()

    def _section_end(self, chs: int) -> Step:
        nos = self._last_nos()
        self._state = "ready"
        if checksum(self._buffer) == chs and len(self._buffer) == self._section_length:
            self.sections.append(bytes(self._buffer))
            self._retries = 0
            return Step((self._ack(Ack.POSITIVE_SECTION, FileError.DEFAULT, nos),))
        self.section_checksums_ok = False
        self._retries += 1
        what = (f"section {nos}: {len(self._buffer)} of {self._section_length} octets, "
                f"checksum {checksum(self._buffer)} (sender's {chs})")
        if self._retries > self.max_retries:
            return self._end(FileChecksumError(f"{self._label()}: {what}, "
                                               f"{self._retries} times"),
                             (self.ack_file(False, FileError.CHECKSUM),))
        return Step((self._ack(Ack.NEGATIVE_SECTION, FileError.CHECKSUM, nos),))

    def _file_end(self, chs: int) -> Step:
        data = self.received
        if checksum(data) == chs and (self.length is None or len(data) == self.length):
            self.done = True
            return Step(done=True, data=data)
        return self._end(FileChecksumError(
            f"{self._label()}: {len(data)} octets (announced {self.length}), checksum "
            f"{checksum(data)} (sender's {chs})"), (self.ack_file(False, FileError.CHECKSUM),))


class FileDeletion(_Transfer):
    """Deleting a file at the peer: :meth:`request` (F_SC_NA_1, delete file), answered
    by F_FR_NA_1 confirming (FRQ bit 8 clear) or refusing."""

    def request(self) -> ASDU:
        return self._asdu(TypeId.F_SC_NA_1, CallFileValue(self.name, 0),
                          SelectCall.DELETE_FILE)

    def _receive(self, asdu: ASDU) -> Step:
        if asdu.type_id is TypeId.F_FR_NA_1:  # a negative one is a refusal (_common)
            return self._end()
        return Step()


def file_ready(common_address: int, io_address: int, name: int, *, positive: bool,
               length: int = 0, originator: int = 0) -> ASDU:
    """F_FR_NA_1 as a confirmation: of a select (with the file's ``length``), of a delete,
    or (``positive`` False, FRQ bit 8 set) refusing either, or refusing a file offered."""
    return ASDU(TypeId.F_FR_NA_1, False, Cause.FILE_TRANSFER, False, False, originator,
                common_address, (InformationObject(io_address, FileReadyValue(name, length),
                                                   qualifier=0 if positive else NEGATIVE),))


# -- passive reassembly -------------------------------------------------------------------

class RebuiltFile(NamedTuple):
    """A file transfer seen in traffic.

    Attributes:
        common_address: CA of the transfer.
        io_address: IOA of the file.
        name: NOF.
        data: the octets of the sections that arrived whole (the file when complete).
        length: LOF announced by F_FR_NA_1.
        complete: the last section (F_LS with the file checksum) was seen.
        checksum_ok: complete, and length and file checksum agree with ``data``.
        status: 'complete'; 'rejected' (arrived whole, the receiver's file acknowledgement
            was negative); 'checksum' (the file checksum or length is wrong); 'refused'
            (F_FR negative or a mirrored "unknown" cause); 'aborted' (deactivated);
            'incomplete' (the traffic ended first).
        first, last: positions (as given to :meth:`FileReassembler.feed`) of the F_FR
            that started the transfer and of the last ASDU of it.
    """

    common_address: int
    io_address: int
    name: int
    data: bytes
    length: int | None
    complete: bool
    checksum_ok: bool
    status: str
    first: object
    last: object


class FileReassembler:
    """Rebuilds the files transferred on one connection from its ASDUs (both directions,
    in order), with the receiver's rules (:class:`FileReceiver`) and no replies.

    A file whose last section arrived whole ends with the receiver's file acknowledgement
    (F_AF_NA_1): negative means the receiver rejected it (status 'rejected'). :meth:`feed`
    returns the transfers that ended with this ASDU; :meth:`close` those still open.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[int, int, int], _Seen] = {}
        self._deleting: set[tuple[int, int, int]] = set()  # F_FR then confirms a delete

    def feed(self, asdu: ASDU, position: object = None) -> list[RebuiltFile]:
        """Feed one decoded ASDU (others than F_* are ignored); ``position`` is echoed
        in the result (a frame number, a row index...)."""
        if asdu.type_id not in FILE_TYPES or not asdu.objects:
            return []
        out: list[RebuiltFile] = []
        obj = asdu.objects[0]
        if obj.address is None:  # file types always have an IOA
            return out
        name = getattr(obj.value, "file_name", None)
        key = (asdu.common_address, obj.address, name if isinstance(name, int) else -1)
        if asdu.type_id is TypeId.F_SC_NA_1 and obj.qualifier == SelectCall.DELETE_FILE:
            self._deleting.add(key)
        elif asdu.type_id is TypeId.F_FR_NA_1 and key in self._deleting:
            self._deleting.discard(key)
            return out
        elif asdu.type_id is TypeId.F_FR_NA_1 and not asdu.negative and \
                asdu.cause == Cause.FILE_TRANSFER:
            seen = self._open.get(key)
            if seen is not None and seen.data is not None:  # a new transfer of the file
                out.append(seen.result("complete", seen.last))
                seen = None
            if seen is None:
                self._open[key] = _Seen(FileReceiver(*key, max_retries=1 << 30), position)
        for key, seen in list(self._open.items()):
            receiver = seen.receiver
            if not receiver.matches(asdu):
                continue
            seen.last = position
            if seen.data is not None:  # waiting for the receiver's file acknowledgement
                if asdu.type_id is TypeId.F_AF_NA_1 and _low(obj.qualifier) in (
                        Ack.POSITIVE_FILE, Ack.NEGATIVE_FILE):
                    del self._open[key]
                    out.append(seen.result("complete" if _low(obj.qualifier)
                                           == Ack.POSITIVE_FILE else "rejected", position))
                continue
            step = receiver.receive(asdu)
            if step.data is not None:
                seen.data = step.data
            elif step.done:
                del self._open[key]
                out.append(seen.result(_status(step.error), position))
        return out

    def close(self) -> list[RebuiltFile]:
        """The transfers still open: 'complete' when only the receiver's file
        acknowledgement is missing, else 'incomplete'."""
        out = [seen.result("complete" if seen.data is not None else "incomplete", seen.last)
               for seen in self._open.values()]
        self._open.clear()
        return out


class _Seen:
    """One transfer the reassembler follows."""

    __slots__ = ("data", "first", "last", "receiver")

    def __init__(self, receiver: FileReceiver, first: object) -> None:
        self.receiver = receiver
        self.first = self.last = first
        self.data: bytes | None = None  # the file, once its last section arrived whole

    def result(self, status: str, last: object) -> RebuiltFile:
        r = self.receiver
        data = self.data if self.data is not None else r.received
        complete = status in ("complete", "checksum", "rejected")
        return RebuiltFile(r.common_address, r.io_address, r.name, data, r.length, complete,
                           status in ("complete", "rejected"), status, self.first, last)


def _status(error: FileTransferError | None) -> str:
    if isinstance(error, FileChecksumError):
        return "checksum"
    if isinstance(error, FileRefusedError):
        return "refused"
    if isinstance(error, FileAbortedError):
        return "aborted"
    return "incomplete"
