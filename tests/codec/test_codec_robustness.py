"""Robustness: random and mutated octets raise only ``DecodeError``.

A seeded ``random.Random`` loop (deterministic, fast) runs well over 100,000 cases through
``decode_apdu``, the ``Framer`` and ``decode_asdu`` under all twelve profiles. For every
input that *does* decode, the result must also be usable: it re-encodes without error,
the octets decode again to the same thing (a canonical form: decode o encode o decode ==
decode), and its time tags convert to ``datetime`` or raise ``DecodeError``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iec104.codec import (
    ASDU,
    DecodeError,
    Frame,
    IFrame,
    Profile,
    RawASDU,
    Time,
    TimeSize,
    decode_apdu,
    decode_asdu,
    decode_header,
    encode_apdu,
    encode_asdu,
)
from tests.codec.test_codec_asdu import CODEC_SETTINGS, PROFILES, random_asdu_octets
from tests.support.fuzz import frame_in_chunks, mutate

SEED = 60870
REFERENCE = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)


class Counter:
    cases = 0


def valid_asdu(rng: random.Random, profile: Profile) -> bytes:
    return random_asdu_octets(rng, profile)


def guarded(what: str, data: bytes, call: Callable[[], object]) -> object | None:
    """Run ``call``; DecodeError -> None; anything else fails naming the input."""
    try:
        return call()
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data), (what, data.hex(), exc)
        return None
    except Exception as exc:  # noqa: BLE001 - the point is to catch everything else
        pytest.fail(f"{what}({data.hex()}) raised {type(exc).__name__}: {exc}")


def check_asdu(data: bytes, profile: Profile) -> None:
    Counter.cases += 1
    decoded = guarded(f"decode_asdu[{profile}]", data, lambda: decode_asdu(data, profile))
    header = guarded("decode_header", data, lambda: decode_header(data, profile))
    if decoded is None:
        return
    assert header is not None  # a decodable ASDU has a decodable header
    assert isinstance(decoded, (ASDU, RawASDU))
    try:
        canonical = encode_asdu(decoded, profile)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"decoded {data.hex()} under {profile} but cannot re-encode it: {exc!r}")
    assert len(canonical) == len(data)
    again = decode_asdu(canonical, profile)
    assert encode_asdu(again, profile) == canonical  # compare octets: NaN != NaN
    if isinstance(decoded, ASDU):
        for obj in decoded.objects:
            for time in (obj.time, getattr(obj.value, "start", None),
                         getattr(obj.value, "stop", None)):
                if isinstance(time, Time):
                    ref = REFERENCE if time.size == TimeSize.THREE else None
                    guarded("to_datetime", data, lambda t=time, r=ref: t.to_datetime(reference=r))


def test_random_and_mutated_asdus() -> None:
    rng = random.Random(SEED)
    start = Counter.cases
    for _ in range(4000):
        junk = rng.randbytes(rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 20, 40)))
        for profile in PROFILES:
            check_asdu(junk, profile)
    for _ in range(3000):
        profile = rng.choice(PROFILES)
        valid = valid_asdu(rng, profile)
        check_asdu(valid, profile)
        for _ in range(5):
            check_asdu(mutate(rng, valid), profile)
        check_asdu(mutate(rng, valid), rng.choice(PROFILES))  # decoded with the wrong profile
    assert Counter.cases - start == 4000 * 12 + 3000 * 7


def check_apdu(data: bytes) -> None:
    Counter.cases += 1
    apdu = guarded("decode_apdu", data, lambda: decode_apdu(data))
    if apdu is not None:  # every bit of a valid APCI is significant
        assert encode_apdu(apdu) == data  # type: ignore[arg-type]


def test_random_and_mutated_apdus() -> None:
    rng = random.Random(SEED + 1)
    start = Counter.cases
    for _ in range(8000):
        check_apdu(rng.randbytes(rng.randint(0, 12)))
        check_apdu(b"\x68" + bytes((rng.randint(0, 255),)) + rng.randbytes(rng.randint(0, 10)))
        asdu = valid_asdu(rng, PROFILES[-1])[:249] or b"\x01"
        valid = encode_apdu(IFrame(rng.randrange(32768), rng.randrange(32768), asdu))
        check_apdu(mutate(rng, valid))
    assert Counter.cases - start == 24000


def test_framer_on_random_streams() -> None:
    """Streams of valid, mutated and random APDUs in random chunks: events tile the input,
    frames decode, and the ASDUs inside decode or raise DecodeError under every profile."""
    rng = random.Random(SEED + 2)
    start = Counter.cases
    for _ in range(200):
        pieces = []
        for _ in range(rng.randint(1, 30)):
            profile = rng.choice(PROFILES)
            valid = encode_apdu(IFrame(rng.randrange(32768), 0,
                                       valid_asdu(rng, profile)[:249] or b"\x01"))
            pieces.append(rng.choice((valid, valid, mutate(rng, valid), rng.randbytes(7),
                                      bytes.fromhex("680401000000"))))
        data = b"".join(pieces)
        try:
            events, framer, chunks = frame_in_chunks(rng, data)
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"Framer raised {exc!r} on stream {data.hex()}")
        Counter.cases += chunks
        assert framer.pending < 256
        for event in events:
            if isinstance(event, Frame) and isinstance(event.apdu, IFrame):
                for profile in PROFILES:
                    check_asdu(event.apdu.asdu, profile)
    assert Counter.cases - start > 10_000


def test_at_least_100k_cases() -> None:
    """The seeded loops above decode more than 100,000 inputs (input x profile)."""
    if Counter.cases == 0:
        pytest.skip("run with the loops above (whole module)")
    assert Counter.cases >= 100_000, Counter.cases
    print(f"{Counter.cases} robustness cases")


@settings(CODEC_SETTINGS, max_examples=300)
@given(st.binary(max_size=64), st.sampled_from(PROFILES))
def test_hypothesis_binary(data: bytes, profile: Profile) -> None:
    check_asdu(data, profile)
    check_apdu(data)
