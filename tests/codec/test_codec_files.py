"""The sans-IO file transfer (``iec104.codec.files``): a sender and a receiver wired back to
back (every ASDU encoded and decoded on the way, as on a wire), both directions, refusals,
damaged sections, and the passive reassembler fed the same conversations."""

from __future__ import annotations

import collections
import datetime
import random
from collections.abc import Callable

import pytest

from iec104.codec import (
    ASDU,
    CallFileValue,
    Cause,
    FileReadyValue,
    InformationObject,
    Profile,
    SegmentValue,
    TypeId,
    decode_asdu,
    encode_asdu,
)
from iec104.codec.files import (
    MAX_FILE_SIZE,
    Ack,
    FileAbortedError,
    FileChecksumError,
    FileError,
    FileInfo,
    FileReassembler,
    FileReceiver,
    FileRefusedError,
    FileSender,
    LastSection,
    Step,
    checksum,
    directory_asdus,
    directory_entries,
    max_segment_size,
    split_sections,
)
from iec104.codec.timetag import Time
from tests.support.filetransfer import random_file_asdus

Tamper = Callable[[str, ASDU], ASDU]


def _wire(asdu: ASDU) -> ASDU:
    decoded = decode_asdu(encode_asdu(asdu))
    assert isinstance(decoded, ASDU)
    return decoded


def converse(sender: FileSender, receiver: FileReceiver, first: tuple[str, ASDU],
             tamper: Tamper = lambda src, a: a) -> tuple[list[tuple[str, ASDU]], dict[str, Step]]:
    """Run a transfer to its end; returns every ASDU as the other end got it, and the final
    step of each end."""
    queue = collections.deque([first])
    log: list[tuple[str, ASDU]] = []
    ends: dict[str, Step] = {}
    while queue:
        src, asdu = queue.popleft()
        asdu = tamper(src, _wire(asdu))
        log.append((src, asdu))
        dst, name = (receiver, "receiver") if src == "sender" else (sender, "sender")
        step = dst.receive(asdu)
        queue.extend((name, out) for out in step.send)
        if step.data is not None:  # the application accepts the file
            queue.append((name, receiver.ack_file(True)))
        if step.done and name not in ends:
            ends[name] = step
    return log, ends


def reading(data: bytes, section_size: int = 4096, tamper: Tamper = lambda s, a: a,
            **kwargs: int) -> tuple[list[tuple[str, ASDU]], dict[str, Step]]:
    sender = FileSender(1, 100, 7, data, section_size=section_size, **kwargs)
    receiver = FileReceiver(1, 100, 7, **kwargs)
    return converse(sender, receiver, ("sender", sender.ready()), tamper)


SIZES = [0, 1, 235, 236, 237, 1000, 5000]


def test_sizes() -> None:
    assert checksum(b"\xff\x02") == 1
    assert checksum(b"") == 0
    assert max_segment_size() == 236
    assert max_segment_size(Profile(1, 1, 1)) == 249 - 4 - 1 - 4
    assert split_sections(b"", 10) == [b""]
    assert split_sections(b"abcde", 2) == [b"ab", b"cd", b"e"]
    sections = split_sections(bytes(1000), 1)
    assert len(sections) <= 255 and b"".join(sections) == bytes(1000)
    with pytest.raises(ValueError, match="longer than LOF"):
        split_sections(bytes(MAX_FILE_SIZE + 1), 4096)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("section_size", [300, 4096])
def test_read_direction(size: int, section_size: int) -> None:
    data = random.Random(size).randbytes(size)
    log, ends = reading(data, section_size)
    assert ends["receiver"].data == data and ends["receiver"].error is None
    assert ends["sender"].error is None and ends["sender"].done
    segments = [a for _, a in log if a.type_id is TypeId.F_SG_NA_1]
    assert all(len(a.objects[0].value.data) <= 236 for a in segments)  # type: ignore[union-attr]
    assert len(segments) == sum(-(-len(s) // 236) for s in split_sections(data, section_size))
    assert all(a.cause == Cause.FILE_TRANSFER for _, a in log)


@pytest.mark.parametrize("size", [0, 1, 600])
def test_write_direction_starts_with_the_receivers_call(size: int) -> None:
    data = bytes(range(256)) * 3
    data = data[:size]
    sender = FileSender(3, 9, 2, data, section_size=250)
    ready = _wire(sender.ready())
    receiver = FileReceiver(3, 9, 2, length=ready.objects[0].value.length)  # type: ignore[union-attr]
    _, ends = converse(sender, receiver, ("receiver", receiver.call_file()))
    assert ends["receiver"].data == data
    assert ends["sender"].error is None


def _corrupt_first(times: int) -> Tamper:
    left = [times]

    def tamper(src: str, asdu: ASDU) -> ASDU:
        if asdu.type_id is TypeId.F_SG_NA_1 and left[0]:
            left[0] -= 1
            obj = asdu.objects[0]
            value = obj.value
            assert isinstance(value, SegmentValue)
            bad = bytes([value.data[0] ^ 1]) + value.data[1:]
            return asdu._replace(objects=(obj._replace(value=value._replace(data=bad)),))
        return asdu
    return tamper


def test_damaged_section_is_sent_again() -> None:
    data = bytes(range(200)) * 5
    log, ends = reading(data, 200, _corrupt_first(2))  # one segment per section
    assert ends["receiver"].data == data
    negative = [a for _, a in log if a.type_id is TypeId.F_AF_NA_1
                and a.objects[0].qualifier == Ack.NEGATIVE_SECTION | FileError.CHECKSUM << 4]
    assert len(negative) == 2


def test_damage_beyond_the_retries_fails_both_ends() -> None:
    log, ends = reading(bytes(range(100)), 300, _corrupt_first(99), max_retries=2)
    assert isinstance(ends["receiver"].error, FileChecksumError)
    assert isinstance(ends["sender"].error, FileChecksumError)
    assert "checksum" in str(ends["receiver"].error)
    assert sum(a.type_id is TypeId.F_SR_NA_1 for _, a in log) == 3  # first + 2 retries


def test_wrong_file_checksum_is_refused() -> None:
    def tamper(src: str, asdu: ASDU) -> ASDU:
        obj = asdu.objects[0]
        if asdu.type_id is TypeId.F_LS_NA_1 and obj.qualifier == 1:
            value = obj.value
            return asdu._replace(objects=(obj._replace(
                value=value._replace(checksum=value.checksum ^ 0x55)),))  # type: ignore[union-attr]
        return asdu
    _, ends = reading(b"hello", tamper=tamper)
    assert isinstance(ends["receiver"].error, FileChecksumError)
    assert isinstance(ends["sender"].error, FileChecksumError)


def test_refusals_and_aborts() -> None:
    receiver = FileReceiver(1, 100, 7)
    refused = ASDU(TypeId.F_FR_NA_1, False, Cause.FILE_TRANSFER, False, False, 0, 1,
                   (InformationObject(100, FileReadyValue(7, 0), qualifier=0x80),))
    step = receiver.receive(_wire(refused))
    assert step.done and isinstance(step.error, FileRefusedError)

    receiver = FileReceiver(1, 100, 7)
    mirror = receiver.select()._replace(cause=Cause.UNKNOWN_IO_ADDRESS, negative=True)
    step = receiver.receive(_wire(mirror))
    assert isinstance(step.error, FileRefusedError) and "UNKNOWN_IO_ADDRESS" in str(step.error)

    sender = FileSender(1, 100, 7, b"abc")
    deactivate = FileReceiver(1, 100, 7).deactivate()
    step = sender.receive(_wire(deactivate))
    assert isinstance(step.error, FileAbortedError)

    receiver = FileReceiver(1, 100, 7, length=3)
    step = receiver.receive(_wire(FileSender(1, 100, 7, b"abc").abort()))
    assert isinstance(step.error, FileAbortedError)


def test_out_of_turn_asdus_are_ignored() -> None:
    sender = FileSender(1, 100, 7, b"abc")
    call_section = ASDU(TypeId.F_SC_NA_1, False, Cause.FILE_TRANSFER, False, False, 0, 1,
                        (InformationObject(100, CallFileValue(7, 1), qualifier=6),))
    assert sender.receive(call_section) == Step()  # before the call file
    assert not sender.done


def test_reassembler_rebuilds_what_the_receiver_got() -> None:
    data = random.Random(1).randbytes(3000)
    log, _ = reading(data, 700, _corrupt_first(1))
    other, _ = reading(b"", 700)
    passive = FileReassembler()
    rebuilt = []
    for i, (_, asdu) in enumerate(log + other):
        rebuilt += passive.feed(asdu, i)
    assert passive.close() == []
    assert [(r.data, r.checksum_ok, r.status, r.name) for r in rebuilt] == [
        (data, True, "complete", 7), (b"", True, "complete", 7)]
    assert rebuilt[0].first == 0 and rebuilt[0].last == len(log) - 1  # the file ack
    assert rebuilt[0].length == 3000


def test_reassembler_reports_incomplete_and_refused() -> None:
    data = bytes(1000)
    log, _ = reading(data, 300)
    passive = FileReassembler()
    cut = [a for _, a in log][:-6]
    assert [r for a in cut for r in passive.feed(a)] == []
    (left,) = passive.close()
    assert left.status == "incomplete" and not left.complete and not left.checksum_ok
    assert left.data == data[:len(left.data)] and 0 < len(left.data) < 1000

    refused = ASDU(TypeId.F_FR_NA_1, False, Cause.FILE_TRANSFER, False, False, 0, 1,
                   (InformationObject(5, FileReadyValue(1, 0), qualifier=0x80),))
    (r,) = FileReassembler().feed(refused)
    assert r.status == "refused"


def test_reassembler_sees_a_wrong_file_checksum() -> None:
    def tamper(src: str, asdu: ASDU) -> ASDU:
        obj = asdu.objects[0]
        if asdu.type_id is TypeId.F_LS_NA_1 and obj.qualifier == LastSection.FILE_TRANSFER_WITHOUT_DEACT:
            return asdu._replace(objects=(obj._replace(value=obj.value._replace(  # type: ignore[union-attr]
                checksum=1)),))
        return asdu
    log, _ = reading(b"\x05\x05", tamper=tamper)
    passive = FileReassembler()
    (r,) = [x for _, a in log for x in passive.feed(a)]
    assert (r.status, r.complete, r.checksum_ok, r.data) == ("checksum", True, False, b"\x05\x05")


def test_directory() -> None:
    time = Time.from_datetime(datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC))
    entries = [FileInfo(100 + i, i, i * 10, time, status=i % 32, directory=i == 3,
                        active=i == 4) for i in range(40)]
    asdus = [_wire(a) for a in directory_asdus(1, entries)]
    assert len(asdus) > 1 and all(len(encode_asdu(a)) <= 249 for a in asdus)
    got, lasts = [], []
    for a in asdus:
        part, last = directory_entries(a)
        got += part
        lasts.append(last)
    assert got == entries
    assert lasts == [False] * (len(asdus) - 1) + [True]
    assert directory_asdus(1, []) == []
    with pytest.raises(ValueError, match="status"):
        directory_asdus(1, [FileInfo(1, 1, 1, status=32)])


@pytest.mark.parametrize("seed", range(5))
def test_random_asdus_never_raise(seed: int) -> None:
    """Whatever a peer sends, every end answers with a Step (no exception), and only
    with ASDUs that encode."""
    asdus = random_file_asdus(seed, 400)
    ends = [FileSender(1, 100, 7, bytes(3000), section_size=500),
            FileReceiver(1, 100, 7), FileReceiver(1, 100, 7, length=3000)]
    passive = FileReassembler()
    for asdu in asdus:
        for end in ends:
            if end.matches(asdu):
                for out in end.receive(asdu).send:
                    encode_asdu(out)
        passive.feed(asdu)
    passive.close()
