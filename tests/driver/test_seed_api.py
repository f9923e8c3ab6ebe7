"""The seed API's module-level names (hat-drivers' ``iec104`` of the seed era, issue 11).

* ``time_from_datetime`` / ``time_to_datetime`` give the same results as the functions of
  the installed hat-drivers (``hat.drivers.iec104``) for the same input, in several local
  zones (POSIX TZ strings, so no tz database is needed), across summer-time changes, and
  they survive a trip through ``notify_data_change``/``receive`` and ``send_command``.
* Every public name of the seed module exists and behaves as the seed's: the names and
  shapes below are those of hat-drivers 0.5.0-dev (2021, ``src_py/hat/drivers/iec104``),
  the last release with the seed API; where the installed hat (a later, message-based API)
  still has the same name, ours is compared with it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import time
import typing
from collections.abc import Callable, Iterator

import pytest
from hat.drivers import iec104 as hat  # type: ignore[import-untyped]

import iec104
from iec104.codec.timetag import decode_time, encode_time
from tests.conftest import find_unused_tcp_port

UTC = dt.UTC
ZONES = [
    "UTC0",
    "CET-1CEST,M3.5.0,M10.5.0/3",                 # Europe/Berlin
    "EST5EDT,M3.2.0,M11.1.0",                     # America/New_York
    "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",       # Australia/Lord_Howe: 30 min summer time
]


@contextlib.contextmanager
def local_zone(tz: str) -> Iterator[None]:
    """Run with ``TZ=tz`` (what ``time.localtime`` and naive ``datetime`` use)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def sample_datetimes() -> list[dt.datetime]:
    """Edge cases (rounding, carries, summer-time changes, years) and random instants."""
    edges = [
        dt.datetime(2024, 6, 15, 12, 34, 56, 789000),              # naive: local time
        dt.datetime(2024, 1, 1, 0, 0, 0, 499),                     # rounds down
        dt.datetime(2024, 1, 1, 0, 0, 0, 500),                     # half to even: 0 ms
        dt.datetime(2024, 1, 1, 0, 0, 0, 1500),                    # half to even: 2 ms
        dt.datetime(2023, 12, 31, 23, 59, 59, 999600, tzinfo=UTC),  # carries into 2024
        dt.datetime(2024, 3, 31, 0, 59, 59, 999000, tzinfo=UTC),   # Berlin: last winter ms
        dt.datetime(2024, 3, 31, 1, 0, tzinfo=UTC),                # Berlin: summer time
        dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC),              # Berlin 02:30 summer
        dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC),              # Berlin 02:30 winter
        dt.datetime(2024, 11, 3, 5, 30, tzinfo=UTC),               # New York 01:30 twice
        dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
        dt.datetime(2024, 4, 6, 14, 45, tzinfo=UTC),               # Lord Howe 01:45 twice
        dt.datetime(2024, 4, 6, 15, 15, tzinfo=UTC),
        dt.datetime(2024, 7, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.datetime(1971, 1, 1, tzinfo=UTC),
        dt.datetime(2068, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ]
    rng = random.Random(11)
    start = dt.datetime(1971, 1, 2, tzinfo=UTC).timestamp()
    stop = dt.datetime(2068, 12, 30, tzinfo=UTC).timestamp()
    drawn = [dt.datetime.fromtimestamp(rng.uniform(start, stop), UTC) for _ in range(300)]
    return edges + drawn + [d.replace(tzinfo=None) for d in drawn[:50]]


DATETIMES = sample_datetimes()


def hat_fields(t: hat.Time) -> tuple:
    return (t.size.value, t.milliseconds, t.invalid, t.minutes, t.summer_time, t.hours,
            t.day_of_week, t.day_of_month, t.months, t.years)


def our_fields(t: iec104.Time) -> tuple:
    return (int(t.size), t.milliseconds, t.invalid, t.minutes, t.summer_time, t.hours,
            t.day_of_week, t.day_of_month, t.months, t.years)


def to_hat(t: iec104.Time) -> hat.Time:
    return hat.Time(hat.TimeSize.SEVEN, t.milliseconds, t.invalid, bool(t.reserved & 1),
                    t.minutes, t.summer_time, t.hours, t.day_of_week, t.day_of_month,
                    t.months, t.years)


def rounded(value: dt.datetime) -> dt.datetime:
    """``value`` at the millisecond hat's ``time_from_datetime`` keeps, aware."""
    value = value.replace(microsecond=0) + dt.timedelta(
        milliseconds=round(value.microsecond / 1000))
    return value.astimezone(UTC)


# -- time_from_datetime / time_to_datetime ----------------------------------------------

@pytest.mark.parametrize("zone", ZONES)
def test_time_from_datetime_equals_hat(zone: str) -> None:
    with local_zone(zone):
        for value in DATETIMES:
            for invalid in (False, True):
                ours = iec104.time_from_datetime(value, invalid)
                assert ours.reserved == 0
                assert our_fields(ours) == hat_fields(hat.time_from_datetime(value, invalid)), \
                    value


@pytest.mark.parametrize("zone", ZONES)
def test_time_to_datetime_equals_hat_and_round_trips(zone: str) -> None:
    with local_zone(zone):
        for value in DATETIMES:
            tag = iec104.time_from_datetime(value)
            back = iec104.time_to_datetime(tag)
            assert back.tzinfo is UTC
            assert back == hat.time_to_datetime(to_hat(tag))
            assert back == rounded(value), (value, tag)  # the SU bit settles repeated hours


def test_summer_time_bit_and_local_fields() -> None:
    with local_zone(ZONES[1]):
        summer = iec104.time_from_datetime(dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC))
        winter = iec104.time_from_datetime(dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC))
        assert (summer.hours, summer.minutes, summer.summer_time) == (2, 30, True)
        assert (winter.hours, winter.minutes, winter.summer_time) == (2, 30, False)
        assert summer.day_of_week == 7  # Sunday
        assert iec104.time_to_datetime(summer) == dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
        assert iec104.time_to_datetime(winter) == dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(("years", "year"), [
    (0, 2000), (24, 2024), (69, 2069), (70, 1970), (99, 1999), (109, 2009), (127, 2027)])
def test_two_digit_years_as_hat_and_tshark(years: int, year: int) -> None:
    assert iec104.codec.cp56_year(years) == year
    tag = iec104.Time(iec104.TimeSize.SEVEN, 1234, False, 5, False, 6, 0, 7, 8, years)
    with local_zone("UTC0"):
        ours = iec104.time_to_datetime(tag)
        assert ours == dt.datetime(year, 8, 7, 6, 5, 1, 234000, tzinfo=UTC)
        assert ours == hat.time_to_datetime(to_hat(tag))


def test_time_to_datetime_refuses_what_has_no_date() -> None:
    with pytest.raises(ValueError, match="CP24Time2a has no date"):
        iec104.time_to_datetime(iec104.Time(iec104.TimeSize.THREE, 100, False, 5))
    bad = iec104.time_from_datetime(dt.datetime(2024, 1, 1))._replace(months=13)
    with pytest.raises(iec104.DecodeError, match="month must be in 1..12"):
        iec104.time_to_datetime(bad)
    with pytest.raises(ValueError):  # hat refuses it too
        hat.time_to_datetime(to_hat(bad))


async def test_helper_times_survive_data_and_commands_over_sockets() -> None:
    commands: list[iec104.Command] = []

    def on_command(conn: iec104.Connection, cmds: list[iec104.Command]) -> bool:
        commands.extend(cmds)
        return True

    accepted: asyncio.Queue[iec104.Connection] = asyncio.Queue()
    srv = await iec104.listen(accepted.put_nowait,
                              iec104.Address("127.0.0.1", find_unused_tcp_port()),
                              command_cb=on_command)
    conn = await iec104.connect(srv.addresses[0])
    peer = await accepted.get()
    try:
        times = [iec104.time_from_datetime(dt.datetime.now()),
                 iec104.time_from_datetime(dt.datetime.now(UTC), invalid=True),
                 iec104.time_from_datetime(dt.datetime(2024, 10, 27, 0, 30, 0, 1500,
                                                       tzinfo=UTC))]
        data = [iec104.Data(iec104.FloatingValue(1.5), iec104.Quality(), t, 1, i,
                            iec104.Cause.SPONTANEOUS, False) for i, t in enumerate(times)]
        peer.notify_data_change(data)
        received: list[iec104.Data] = []
        while len(received) < len(data):
            received.extend(await asyncio.wait_for(conn.receive(), 5))
        assert received == data
        for i, t in enumerate(times):
            command = iec104.Command(iec104.Action.EXECUTE, iec104.SingleValue.ON, 1, 100 + i,
                                     t, 0)
            assert await asyncio.wait_for(conn.send_command(command), 5)
            assert commands[-1] == command
    finally:
        await conn.async_close()
        await srv.async_close()


# -- the seed module's public names ------------------------------------------------------

SEED_CAUSES = {
    "UNDEFINED": 0, "PERIODIC": 1, "BACKGROUND_SCAN": 2, "SPONTANEOUS": 3, "INITIALIZED": 4,
    "REQUEST": 5, "ACTIVATION": 6, "ACTIVATION_CONFIRMATION": 7, "DEACTIVATION": 8,
    "DEACTIVATION_CONFIRMATION": 9, "ACTIVATION_TERMINATION": 10, "REMOTE_COMMAND": 11,
    "LOCAL_COMMAND": 12, "FILE_TRANSFER": 13, "INTERROGATED_STATION": 20,
    **{f"INTERROGATED_GROUP{i:02}": 20 + i for i in range(1, 17)},
    "INTERROGATED_COUNTER": 37,
    **{f"INTERROGATED_COUNTER{i:02}": 37 + i for i in range(1, 5)},
    "UNKNOWN_TYPE": 44, "UNKNOWN_CAUSE": 45, "UNKNOWN_ASDU_ADDRESS": 46,
    "UNKNOWN_IO_ADDRESS": 47,
}

SEED_FIELDS = {
    "Data": ("value", "quality", "time", "asdu_address", "io_address", "cause", "is_test"),
    "Command": ("action", "value", "asdu_address", "io_address", "time", "qualifier"),
    "Quality": ("invalid", "not_topical", "substituted", "blocked", "overflow"),
    "StepPositionValue": ("value", "transient"),
    "BitstringValue": ("value",),
    "NormalizedValue": ("value",),
    "ScaledValue": ("value",),
    "FloatingValue": ("value",),
    "BinaryCounterValue": ("value", "sequence", "overflow", "adjusted", "invalid"),
    "Address": ("host", "port"),
    "ConnectionInfo": ("local_addr", "remote_addr"),
}

SEED_CALLBACK_ARITY = {"InterrogateCb": 2, "CounterInterrogateCb": 3, "CommandCb": 2,
                       "ConnectionCb": 1}


def members(enum_class: type) -> dict[str, object]:
    return {m.name: m.value for m in enum_class}  # type: ignore[attr-defined]


def check_enum_like_hat(name: str) -> None:
    assert members(getattr(iec104, name)) == members(getattr(hat, name))


def check_named_tuple(name: str) -> None:
    assert getattr(iec104, name)._fields == SEED_FIELDS[name]
    # keyword construction as in seed code
    cls = getattr(iec104, name)
    assert cls(**dict.fromkeys(SEED_FIELDS[name], 0))._asdict() == dict.fromkeys(
        SEED_FIELDS[name], 0)


def check_value_union(name: str, seed_members: tuple[type, ...]) -> Callable[[str], None]:
    def check(_: str) -> None:
        assert set(seed_members) <= set(typing.get_args(getattr(iec104, name)))
    return check


def check_callback(name: str) -> None:
    alias = getattr(iec104, name)
    assert typing.get_origin(alias) is typing.get_origin(Callable[[], None])
    assert len(typing.get_args(alias)[0]) == SEED_CALLBACK_ARITY[name]


def check_time(_: str) -> None:
    seed = {"milliseconds": 1234, "invalid": False, "minutes": 5, "summer_time": True,
            "hours": 6, "day_of_week": 3, "day_of_month": 7, "months": 8, "years": 24}
    tag = iec104.Time(**seed)  # seed code builds it by keyword: a CP56Time2a
    assert tag.size == iec104.TimeSize.SEVEN
    assert {k: getattr(tag, k) for k in seed} == seed
    assert decode_time(encode_time(tag, tag.size), 0, tag.size) == tag


def check_time_function(name: str) -> None:
    with local_zone(ZONES[2]):
        now = dt.datetime.now()
        ours = iec104.time_from_datetime(now)
        assert our_fields(ours) == hat_fields(hat.time_from_datetime(now))
        assert iec104.time_to_datetime(ours) == hat.time_to_datetime(to_hat(ours))


def check_cause(_: str) -> None:
    assert members(iec104.Cause) == SEED_CAUSES


def check_action(_: str) -> None:
    assert members(iec104.Action) == {"EXECUTE": "execute", "SELECT": "select",
                                      "CANCEL": "cancel"}


def check_coroutine(name: str) -> None:
    assert asyncio.iscoroutinefunction(getattr(iec104, name))


def check_resource(name: str) -> None:
    cls = getattr(iec104, name)
    for attr in ("async_group", "async_close", "wait_closed", "is_open", "close"):
        assert hasattr(cls, attr), attr


CHECKS: dict[str, Callable[[str], None]] = {
    "time_from_datetime": check_time_function,
    "time_to_datetime": check_time_function,
    "Action": check_action,
    "Cause": check_cause,
    "FreezeCode": check_enum_like_hat,
    "SingleValue": check_enum_like_hat,
    "DoubleValue": check_enum_like_hat,
    "RegulatingValue": check_enum_like_hat,
    "Time": check_time,
    "DataValue": check_value_union("DataValue", (
        iec104.SingleValue, iec104.DoubleValue, iec104.StepPositionValue,
        iec104.BitstringValue, iec104.NormalizedValue, iec104.ScaledValue,
        iec104.FloatingValue, iec104.BinaryCounterValue)),
    "CommandValue": check_value_union("CommandValue", (
        iec104.SingleValue, iec104.DoubleValue, iec104.RegulatingValue,
        iec104.NormalizedValue, iec104.ScaledValue, iec104.FloatingValue)),
    **dict.fromkeys(SEED_FIELDS, check_named_tuple),
    **dict.fromkeys(SEED_CALLBACK_ARITY, check_callback),
    "connect": check_coroutine,
    "listen": check_coroutine,
    "Connection": check_resource,
    "Server": check_resource,
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_seed_name(name: str) -> None:
    assert name in iec104.__all__
    CHECKS[name](name)


def test_every_seed_name_is_checked() -> None:
    """hat-drivers 0.5.0-dev ``__all__`` plus ConnectionInfo of the seed API document."""
    seed_all = {
        "connect", "listen", "InterrogateCb", "CounterInterrogateCb", "CommandCb",
        "ConnectionCb", "Address", "Connection", "Server", "time_from_datetime",
        "time_to_datetime", "Action", "BinaryCounterValue", "BitstringValue", "Cause",
        "Command", "CommandValue", "Data", "DataValue", "DoubleValue", "FloatingValue",
        "FreezeCode", "NormalizedValue", "Quality", "RegulatingValue", "ScaledValue",
        "SingleValue", "StepPositionValue", "Time", "ConnectionInfo",
    }
    assert seed_all == set(CHECKS)
