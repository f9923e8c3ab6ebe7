"""One error hierarchy: every exception class of the package derives from Iec104Error, and a
DecodeError says what is wrong in a code that programs can branch on."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import iec104
from iec104.codec import DecodeError, DecodeReason, Iec104Error, decode_apdu, decode_asdu


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(iec104.__path__, "iec104."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (issubclass(obj, BaseException) and not issubclass(obj, Warning)
                    and obj.__module__.startswith("iec104.")):
                found.append(obj)
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


CLASSES = _exception_classes()


def test_the_search_finds_the_known_errors() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"CaptureError", "FilterError", "RuleError", "LogWriterError", "LiveCaptureError",
            "CliError", "StorageError", "SchemaError", "DecodeError"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_exception_is_an_iec104_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, Iec104Error)


@pytest.mark.parametrize(("octets", "code"), [
    (b"\x68\x04\x07\x00", DecodeReason.TRUNCATED),
    (b"\x05\x04\x07\x00\x00\x00", DecodeReason.START_BYTE),
    (b"\x68\x02\x07\x00\x00\x00", DecodeReason.APDU_LENGTH),
    (b"\x68\x04\x07\x00\x00\x00\x00", DecodeReason.APDU_LENGTH),
    (b"\x68\x04\x0f\x00\x00\x00", DecodeReason.CONTROL_FIELD),
    (b"\x68\x04\x01\x00\x01\x00", DecodeReason.CONTROL_FIELD),
])
def test_apci_decode_errors_carry_a_reason_code(octets: bytes, code: DecodeReason) -> None:
    with pytest.raises(DecodeError) as info:
        decode_apdu(octets)
    assert info.value.code is code
    assert info.value.shifted(6).code is code


@pytest.mark.parametrize(("asdu", "code"), [
    (b"\x0d\x01\x03", DecodeReason.TRUNCATED),  # M_ME_NC_1 header cut short
    # M_SP_NA_1, one object, then two octets too many
    (b"\x01\x01\x03\x00\x01\x00\x01\x00\x00\x01\xaa\xbb", DecodeReason.TRAILING_OCTETS),
])
def test_asdu_decode_errors_carry_a_reason_code(asdu: bytes, code: DecodeReason) -> None:
    with pytest.raises(DecodeError) as info:
        decode_asdu(asdu)
    assert info.value.code is code
