"""Field-size profiles detected per connection direction (``iec104.codec.detect``,
``iec104.records.profiles``).

One pcap mixes four outstations: a standard 2/2/3 one, a 1/1/2 one, a 2/2/2 one (written
with our codec's encoder and ``tests/support/pcapwriter.py``, interleaved in time) and one
that sends a single I-frame each way (too little to detect: 2/2/3 is assumed, and said).
Decoded without options, every stream must come out as it was encoded, rows in capture
order; ``--profile HOST[:PORT]=...`` overrides one device; tshark, given each device's sizes
as IEC 101 preferences (its 104 dissector has none: the same ASDUs go in FT1.2 frames),
reads the same objects.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iec104.codec import (
    ASDU,
    DEFAULT_PROFILE,
    Cause,
    FloatingValue,
    IFrame,
    InformationObject,
    Profile,
    Quality,
    ScaledValue,
    SFrame,
    SingleValue,
    TypeId,
    UFrame,
    UFunction,
    decode_asdu,
    detect_profile,
    encode_apdu,
    encode_asdu,
)
from iec104.dissector import dissect_table
from iec104.records.profiles import DetectingBuilder, ProfileOverrides
from tests.support.pcapwriter import build_conversation, write_packets, write_pcap
from tests.support.tshark import ensure_tshark, tshark_apdus

T = TypeId
DEVICES = {  # server IP -> its profile
    "10.0.0.1": Profile(2, 2, 3), "10.0.0.2": Profile(1, 1, 2), "10.0.0.3": Profile(2, 2, 2)}
SHORT = "10.0.0.4"  # one I-frame each way


def _asdus(rng: random.Random, ca: int) -> list[tuple[str, ASDU]]:
    """An interrogation, then spontaneous data of several types and object counts."""
    act = ASDU(T.C_IC_NA_1, False, Cause.ACTIVATION, False, False, 0, ca,
               (InformationObject(0, qualifier=20),))
    out = [("c2s", act), ("s2c", act._replace(cause=Cause.ACTIVATION_CONFIRMATION))]
    for i in range(14):
        count = rng.choice((1, 2, 3))
        base = rng.randrange(100, 250)
        kind = i % 3
        if kind == 0:
            objects = tuple(InformationObject(base + k, FloatingValue(rng.uniform(-100, 100)),
                                              Quality()) for k in range(count))
            out.append(("s2c", ASDU(T.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0,
                                    ca, objects)))
        elif kind == 1:
            objects = tuple(InformationObject(base + k, ScaledValue(rng.randrange(-999, 999)),
                                              Quality()) for k in range(count))
            out.append(("s2c", ASDU(T.M_ME_NB_1, True, Cause.INTERROGATED_STATION, False,
                                    False, 0, ca, objects)))
        else:
            objects = tuple(InformationObject(base + 2 * k, SingleValue(rng.randrange(2)),
                                              Quality()) for k in range(count))
            out.append(("s2c", ASDU(T.M_SP_NA_1, False, Cause.SPONTANEOUS, False, False, 0,
                                    ca, objects)))
    out.append(("c2s", ASDU(T.C_SC_NA_1, False, Cause.ACTIVATION, False, False, 0, ca,
                            (InformationObject(77, SingleValue.ON, select=False,
                                               qualifier=0),))))
    out.append(("c2s", act._replace(cause=Cause.DEACTIVATION)))
    out.append(("s2c", act._replace(cause=Cause.ACTIVATION_TERMINATION)))
    return out


def _messages(items: list[tuple[str, ASDU]], profile: Profile) -> list[tuple[str, bytes]]:
    ssn = {"c2s": 0, "s2c": 0}
    out = [("c2s", encode_apdu(UFrame(UFunction.STARTDT_ACT))),
           ("s2c", encode_apdu(UFrame(UFunction.STARTDT_CON)))]
    for direction, asdu in items:
        out.append((direction, encode_apdu(IFrame(ssn[direction], 0,
                                                  encode_asdu(asdu, profile)))))
        ssn[direction] += 1
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    rng = random.Random(16)
    packets: list[Any] = []
    expected: dict[str, Any] = {}
    for n, (server, profile) in enumerate(DEVICES.items()):
        items = _asdus(rng, ca=n + 3)
        expected[server] = (profile, items)
        packets += build_conversation(_messages(items, profile), client_ip="10.0.0.100",
                                      server_ip=server, client_port=50000 + n,
                                      start_time=1_700_000_000 + n * 0.0003, step=0.001)
    short = [("c2s", ASDU(T.C_IC_NA_1, False, Cause.ACTIVATION, False, False, 0, 9,
                          (InformationObject(0, qualifier=20),)))]
    short.append(("s2c", short[0][1]._replace(cause=Cause.ACTIVATION_CONFIRMATION)))
    expected[SHORT] = (DEFAULT_PROFILE, short)
    packets += build_conversation(_messages(short, DEFAULT_PROFILE), client_ip="10.0.0.100",
                                  server_ip=SHORT, client_port=50009,
                                  start_time=1_700_000_000.0005, step=0.001)
    packets.sort(key=lambda p: float(p.time))  # the devices talk at the same time
    path = write_packets(tmp_path_factory.mktemp("profiles") / "mixed.pcap", packets)
    return path, expected


def _objects(items: list[tuple[str, ASDU]]) -> list[tuple[Any, ...]]:
    return [(d, int(a.type_id), o.address) for d, a in items for o in a.objects]


def test_every_stream_decodes_right_without_options(capture: tuple[Path, Any]) -> None:
    path, expected = capture
    df = dissect_table(path).to_pandas()
    assert df["error"].isna().all(), df[df["error"].notna()]["error"].tolist()
    assert df["frame"].is_monotonic_increasing  # rows stay in capture order
    assert (df["apdu"].diff().dropna() >= 0).all()
    for server, (profile, items) in expected.items():
        rows = df[((df["src"] == server) | (df["dst"] == server)) & (df["apci"] == "I")]
        got = list(zip(rows["direction"], rows["type_id"], rows["ioa"]))
        assert got == _objects(items), server
        assert set(rows["profile"]) == {"/".join(map(str, profile))}, server
        values = [o.value for _, a in items for o in a.objects]
        for value, number in zip(values, rows["value"]):
            if isinstance(value, FloatingValue):
                assert number == pytest.approx(value.value, rel=1e-6)
            elif isinstance(value, ScaledValue):
                assert number == value.value
    short = df[(df["dst"] == SHORT) | (df["src"] == SHORT)]
    short = short[short["apci"] == "I"]
    assert (short["profile_confidence"] == 0).all()
    confident = df[df["apci"].eq("I") & ~df["dst"].eq(SHORT) & ~df["src"].eq(SHORT)
                   & df["direction"].eq("s2c")]
    assert (confident["profile_confidence"] >= 0.5).all()


def test_summary_says_which_profile_and_how_sure(capture: tuple[Path, Any]) -> None:
    path, _ = capture
    out = subprocess.run([sys.executable, "-m", "iec104.cli", "summary", str(path)],
                         capture_output=True, text=True, check=True).stdout
    section = out.split("== Field-size profiles (COT/CA/IOA octets) (8) ==")[1]
    lines = section.split("\n\n")[0].splitlines()
    by_server = {}
    for line in lines[1:]:
        _stream, direction, src, _dst, profile, *rest = line.split()
        if direction == "s2c":
            by_server[src.split(":")[0]] = (profile, " ".join(rest))
    assert by_server["10.0.0.2"][0] == "1/1/2" and "detected" in by_server["10.0.0.2"][1]
    assert by_server["10.0.0.3"][0] == "2/2/2"
    assert by_server["10.0.0.1"][0] == "2/2/3"
    assert by_server[SHORT] == ("2/2/3", "0.0 assumed: too few I-frames to detect 1")


def test_profile_override_per_endpoint(capture: tuple[Path, Any]) -> None:
    """Forcing the wrong sizes on one device makes only its frames fail; 'given' shows."""
    path, _ = capture
    overrides = ProfileOverrides(endpoints=(("10.0.0.2", 2404, Profile(2, 2, 3)),))
    df = dissect_table(path, profile=overrides).to_pandas()
    bad = df[df["error"].notna()]
    assert len(bad) and set(bad["src"]) | set(bad["dst"]) <= {"10.0.0.2", "10.0.0.100"}
    forced = df[(df["src"] == "10.0.0.2") & (df["apci"] == "I")]
    assert set(forced["profile"]) == {"2/2/3"} and forced["profile_confidence"].isna().all()
    other = df[(df["src"] == "10.0.0.3") & (df["apci"] == "I")]
    assert other["error"].isna().all() and set(other["profile"]) == {"2/2/2"}
    out = subprocess.run([sys.executable, "-m", "iec104.cli", "read", str(path),
                          "--profile", "10.0.0.2=1,1,2", "--profile", "2,2,2", "-c", "400"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():  # 2,2,2 for all but 10.0.0.2: the 2/2/3 devices fail
        if " I(" in line:
            failed = "!! ASDU:" in line
            assert failed == any(f"{h}:2404" in line for h in ("10.0.0.1", SHORT)), line
    err = subprocess.run([sys.executable, "-m", "iec104.cli", "read", str(path),
                          "--profile", "10.0.0.2:x=1,1,2"], capture_output=True, text=True,
                         check=False)
    assert err.returncode == 2 and "HOST[:PORT]=COT,CA,IOA" in err.stderr


def test_tshark_with_each_devices_preferences_agrees(capture: tuple[Path, Any],
                                                      tmp_path: Path) -> None:
    ensure_tshark()
    path, expected = capture
    ours = dissect_table(path).to_pandas()
    for server, (profile, items) in expected.items():
        # the device's ASDUs, as our dissector cut them out of the mixed capture, in FT1.2
        rows = ours[((ours["src"] == server) | (ours["dst"] == server)) & (ours["apci"] == "I")]
        raws = [bytes(r)[6:] for r in rows.drop_duplicates("apdu")["raw"]]
        frames = [(d, _ft12(raw)) for d, raw in zip(rows.drop_duplicates("apdu")["direction"],
                                                    raws)]
        one = write_pcap(tmp_path / f"{server}.pcap", frames, seed=1)
        prefs = ["-d", "tcp.port==2404,iec60870_101", "-o", "iec60870_101.linkaddr_len:1 octet",
                 "-o", f"iec60870_101.cot_len:{profile.cot_size} octet",
                 "-o", f"iec60870_101.asdu_addr_len:{profile.ca_size} octet",
                 "-o", f"iec60870_101.asdu_ioa_len:{profile.ioa_size} octet"]
        theirs = tshark_apdus(one, extra_opts=prefs, display_filter="iec60870_asdu")
        assert len(theirs) == len(raws), server
        got = [(a["type_id"], a["ca"], a["cot"], o["ioa"]) for a in theirs for o in a["objects"]]
        want = list(zip(rows["type_id"], rows["ca"], rows["cot"], rows["ioa"]))
        assert got == want, server
        assert not any(a["malformed"] for a in theirs), server


def _ft12(asdu: bytes) -> bytes:
    """An IEC 101 variable-length frame (FT1.2): control 0x08 (user data), link address 1."""
    body = bytes((0x08, 1)) + asdu
    return bytes((0x68, len(body), len(body), 0x68)) + body + bytes((sum(body) & 0xFF, 0x16))


# -- the detection itself --------------------------------------------------------------------

@pytest.mark.parametrize("profile", [Profile(c, a, i) for c in (1, 2) for a in (1, 2)
                                     for i in (1, 2, 3)], ids=lambda p: "/".join(map(str, p)))
def test_each_profile_is_detected_from_its_asdus(profile: Profile) -> None:
    items = _asdus(random.Random(1), ca=5)
    detection = detect_profile(encode_asdu(a, profile) for d, a in items if d == "s2c")
    assert detection.profile == profile
    assert detection.confidence >= 0.5 and not detection.fallback
    assert detection.candidates[0].profile == profile and detection.candidates[0].fit == 1.0


def test_too_few_or_unknown_asdus_fall_back() -> None:
    items = _asdus(random.Random(2), ca=5)
    two = [encode_asdu(a, Profile(1, 1, 2)) for _, a in items[:2]]
    assert detect_profile(two) == detect_profile(two)._replace(profile=DEFAULT_PROFILE,
                                                                confidence=0.0)
    assert detect_profile([b"\xc8\x01\x03\x00\x01\x00\x01\x02"] * 10).fallback  # private type
    assert detect_profile([b"\x0d"] * 10).fallback  # too short to be evidence
    assert detect_profile([]).asdus == 0


def test_a_few_garbled_asdus_do_not_leave_2_2_3() -> None:
    """Two ASDUs fitting another profile are no reason to leave the standard one."""
    items = _asdus(random.Random(3), ca=5)
    good = [encode_asdu(a) for _, a in items]
    odd = [encode_asdu(a, Profile(1, 1, 1)) for _, a in items[2:4]]
    assert detect_profile(good + odd).profile == DEFAULT_PROFILE


def test_every_decision_decodes_what_it_detected() -> None:
    """The builder front hands each direction's decision to the target, in order."""
    calls: list[tuple[Any, ...]] = []

    class Target:
        rows = errors = gaps = 0

        def add_frame(self, *args: Any) -> None:
            calls.append(args)

    from iec104.codec import Frame, decode_apdu
    from iec104.records.builder import Endpoints

    b = DetectingBuilder(Target(), sample=4)
    ep = Endpoints(0, "s2c", "10.0.0.2", 2404, "10.0.0.100", 50000)
    items = [a for d, a in _asdus(random.Random(4), ca=5) if d == "s2c"]
    for i, asdu in enumerate(items[:6]):
        raw = encode_apdu(IFrame(i, 0, encode_asdu(asdu, Profile(1, 1, 2))))
        b.add_frame(None, i + 1, ep, Frame(0, raw, decode_apdu(raw)))
        assert len(calls) == (0 if i < 3 else i + 1)  # held until the 4th I-frame
    assert [c[1] for c in calls] == [1, 2, 3, 4, 5, 6]
    assert {c[4] for c in calls} == {Profile(1, 1, 2)}
    for c in calls:
        decode_asdu(c[3].apdu.asdu, c[4])


@pytest.mark.parametrize(("text", "want"), [
    ("1,1,2", (None, None, Profile(1, 1, 2))),
    ("10.0.0.5=2,2,2", ("10.0.0.5", None, Profile(2, 2, 2))),
    ("10.0.0.5:2405=1,2,3", ("10.0.0.5", 2405, Profile(1, 2, 3))),
    ("[fe80::1]=1,1,1", ("fe80::1", None, Profile(1, 1, 1))),
    ("[fe80::1]:2404=1,1,1", ("fe80::1", 2404, Profile(1, 1, 1))),
    ("fe80::1=1,1,1", ("fe80::1", None, Profile(1, 1, 1))),
])
def test_profile_option_values(text: str, want: tuple[Any, ...]) -> None:
    from iec104.cli.common import parse_profile_entry

    assert parse_profile_entry(text) == want


@pytest.mark.parametrize("text", ["=1,1,2", "h:0=1,1,2", "h:70000=1,1,2", "[::1]x=1,1,2",
                                  "h=3,1,2", "h=1,1"])
def test_bad_profile_option_values(text: str) -> None:
    import argparse

    from iec104.cli.common import parse_profile_entry

    with pytest.raises(argparse.ArgumentTypeError):
        parse_profile_entry(text)


def test_verbose_read_shows_the_field_sizes(capture: tuple[Path, Any]) -> None:
    path, _ = capture
    out = subprocess.run([sys.executable, "-m", "iec104.cli", "read", "-V", str(path),
                          "--filter", 'src == "10.0.0.2" and apci == "I"', "-c", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert "  Field sizes (COT/CA/IOA): 1/1/2, detected, confidence " in out


def test_the_master_direction_does_not_hold_rows_back() -> None:
    """A master's lone interrogation is decided with the outstation's sizes as soon as the
    outstation's direction is decided, not at the end of the connection."""
    calls: list[tuple[Any, ...]] = []

    class Target:
        rows = errors = gaps = 0

        def add_frame(self, *args: Any) -> None:
            calls.append(args)

    from iec104.codec import Frame, decode_apdu
    from iec104.records.builder import Endpoints

    b = DetectingBuilder(Target(), sample=4)
    down = Endpoints(0, "c2s", "10.0.0.100", 50000, "10.0.0.2", 2404)
    up = Endpoints(0, "s2c", "10.0.0.2", 2404, "10.0.0.100", 50000)
    items = _asdus(random.Random(5), ca=5)
    frame = 0
    for direction, asdu in items[:7]:
        frame += 1
        raw = encode_apdu(IFrame(frame, 0, encode_asdu(asdu, Profile(1, 1, 2))))
        b.add_frame(None, frame, down if direction == "c2s" else up,
                    Frame(0, raw, decode_apdu(raw)))
        s_frame = encode_apdu(SFrame(frame))
        frame += 1
        b.add_frame(None, frame, down, Frame(0, s_frame, decode_apdu(s_frame)))
    assert [c[1] for c in calls] == list(range(1, frame + 1))  # all out, in order
    master = [c for c in calls if c[2] is down and len(c) > 4]
    assert master and {c[4] for c in master} == {Profile(1, 1, 2)}
    assert b.decisions[(0, "c2s")].confidence == pytest.approx(
        b.decisions[(0, "s2c")].confidence / 2, abs=0.001)


def test_worker_processes_decode_with_the_same_profiles(capture: tuple[Path, Any]) -> None:
    path, _ = capture
    one = dissect_table(path)
    assert dissect_table(path, workers=1).equals(one)
    given = ProfileOverrides(default=Profile(1, 1, 2))
    assert dissect_table(path, workers=1, profile=given).equals(
        dissect_table(path, profile=Profile(1, 1, 2)))


@pytest.mark.parametrize("batch_rows", [9, 65536])
def test_columnar_and_scalar_builders_agree_per_direction(capture: tuple[Path, Any],
                                                           batch_rows: int) -> None:
    """The dissector's default (DetectingBuilder in front of ColumnarBuilder) gives the rows
    of the scalar RecordBuilder behind the same detection, profile cells included."""
    from iec104.records.builder import RecordBuilder
    from iec104.records.columnar import ColumnarBuilder
    from tests.records.test_columnar import assert_same_batches, dissect_with

    path, expected = capture
    scalar = dissect_with(path, lambda: DetectingBuilder(RecordBuilder()), batch_rows)
    assert_same_batches(scalar, dissect_with(path, lambda: DetectingBuilder(ColumnarBuilder()),
                                             batch_rows))
    profiles = {p for b in scalar for p in b.column("profile").to_pylist() if p}
    assert profiles == {"/".join(map(str, p)) for p, _items in expected.values()}
