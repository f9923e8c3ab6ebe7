"""The proxy's logger process decodes as the dissector's event path does.

The logger (:mod:`iec104.recorder.logprocess`, a real process fed through its real pipe)
records the data messages of each pipe read through the dissector's fast lane
(``Framer.scan``, ``ColumnarBuilder.admit``/``add_admitted``, a ``DetectingBuilder`` in
front when no profile is given). The oracle is the per-APDU event path: a
:class:`~iec104.dissector.StreamDecoder` whose direction decoders are fed the same chunks
one by one. The chunks are the TCP payloads of the bundled captures (as the reassembler
delivers them) and synthetic connections with 1-octet COT and CA, 2-octet IOAs, cut at
random, with malformed octets and event rows between them.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from iec104 import codec
from iec104.capture.packet import tcp_segments
from iec104.capture.reader import CaptureReader
from iec104.capture.reassembly import Reassembler, StreamData, StreamEnd, StreamStart
from iec104.codec import Profile
from iec104.dissector import StreamDecoder
from iec104.recorder.logprocess import LogProcess
from iec104.records.builder import Endpoints
from iec104.records.reader import load
from iec104.records.schema import SCHEMA
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(120)

DIRECTIONS = ("c2s", "s2c")
Op = tuple[Any, ...]  # ("open", stream, endpoints) | ("data", stream, back, time_ns, octets)
#                       | ("event", stream, direction, time_ns, text) | ("end", stream)


def capture_ops(path: Path, first_stream: int) -> list[Op]:
    """A capture's connections as the proxy would hand them over: open, in-order
    payloads per direction, end (streams numbered from ``first_stream``)."""
    ops: list[Op] = []
    r = Reassembler(None, heuristic=True)
    with CaptureReader(path) as reader:
        events = [ev for seg in tcp_segments(reader) for ev in r.feed(seg)]
    for ev in [*events, *r.close()]:
        if type(ev) is StreamStart:
            c = ev.connection
            ends = ((c.src, c.sport), (c.dst, c.dport))
            s = first_stream + c.stream
            ops.append(("open", s, {DIRECTIONS[d]: Endpoints(s, DIRECTIONS[d], *ends[d],
                                                             *ends[1 - d])
                                    for d in (0, 1)}))
        elif type(ev) is StreamData:
            ops.append(("data", first_stream + ev.stream, ev.direction, ev.time_ns, ev.data))
        elif type(ev) is StreamEnd:
            ops.append(("end", first_stream + ev.stream))
    return ops


def synthetic_ops(rng: random.Random, stream: int, profile: Profile, n: int) -> list[Op]:
    """One connection of ``profile``: measurements out, S-frames back, cut at random,
    with garbage octets and an event row now and then."""
    endpoints = {"c2s": Endpoints(stream, "c2s", "10.0.0.1", 50000 + stream, "10.0.0.2", 2404),
                 "s2c": Endpoints(stream, "s2c", "10.0.0.2", 2404, "10.0.0.1", 50000 + stream)}
    ops: list[Op] = [("open", stream, endpoints)]
    good = codec.Quality(False, False, False, False, False)
    octets: list[bytearray] = [bytearray(), bytearray()]
    for i in range(n):
        value = codec.InformationObject(100 + i % 50, codec.FloatingValue(i / 4), good)
        asdu = codec.encode_asdu(codec.ASDU(codec.TypeId.M_ME_NC_1, False,
                                            codec.Cause.SPONTANEOUS, False, False, 0, 7,
                                            (value,)), profile)
        octets[1] += codec.encode_apdu(codec.IFrame(i % 32768, 0, asdu))
        if i % 8 == 7:
            octets[0] += codec.encode_apdu(codec.SFrame(i + 1))
        if rng.random() < 0.02:
            octets[1] += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    pos = [0, 0]
    t = 1_700_000_000_000_000_000 + stream * 10**12
    while pos[0] < len(octets[0]) or pos[1] < len(octets[1]):
        back = rng.randrange(2)
        if pos[back] >= len(octets[back]):
            back = 1 - back
        size = rng.choice((1, 5, 20, 37, 200, 1500))
        ops.append(("data", stream, back, t, bytes(octets[back][pos[back]:pos[back] + size])))
        pos[back] += size
        t += rng.randrange(1, 10**6)
        if rng.random() < 0.01:
            ops.append(("event", stream, DIRECTIONS[back], t, f"proxy: event {len(ops)}"))
    ops.append(("end", stream))
    return ops


def merge(rng: random.Random, runs: list[list[Op]]) -> list[Op]:
    """The connections' ops merged at random, each connection's kept in order."""
    queues = [list(reversed(r)) for r in runs if r]
    out: list[Op] = []
    while queues:
        q = rng.choice(queues)
        for _ in range(rng.randrange(1, 40)):
            if not q:
                break
            out.append(q.pop())
        queues = [q for q in queues if q]
    return out


def reference(ops: list[Op], profile: Profile | None) -> pa.Table:
    """The event path: each chunk fed to its direction decoder, one call per chunk."""
    streams = StreamDecoder(profile=profile)
    front = streams.builder
    endpoints: dict[int, dict[str, Endpoints]] = {}
    for op in ops:
        if op[0] == "open":
            endpoints[op[1]] = op[2]
            streams.open(op[1], [op[2][d] for d in DIRECTIONS])
        elif op[0] == "data":
            dec = streams.decoder(op[1], op[2])
            assert dec is not None
            dec.feed(op[3], None, op[4])
        elif op[0] == "event":
            front.add_event(op[3], None, endpoints[op[1]][op[2]], op[4], None)
        else:
            streams.end(op[1], None, None)
    streams.close()
    return pa.Table.from_batches([front.take_batch()], schema=SCHEMA)


def logged(ops: list[Op], profile: Profile | None, directory: Path,
           bulk_octets: int = 0, stats: dict[str, int] | None = None,
           **kwargs: Any) -> pd.DataFrame:
    """The same ops through a real logger process (its pipe; with ``bulk_octets=0`` every
    read through its fast lane, with a huge one APDU by APDU); its last counters into
    ``stats``."""
    writer = LogProcess.spawn(directory, {"profile": profile, "flush_rows": 700},
                              bulk_octets=bulk_octets, **kwargs)
    writer.wait_ready()
    for op in ops:
        if op[0] == "open":
            writer.open(op[1], op[2])
        elif op[0] == "data":
            writer.data(op[1], DIRECTIONS[op[2]], op[3], op[4])
        elif op[0] == "event":
            writer.event(op[1], op[2], op[3], op[4])
        else:
            writer.end(op[1])
    files = writer.close()
    if stats is not None:
        stats.update(writer.stats)
    return load(files)


def assert_same_rows(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    # octets left at a stream's end: the logger stamps that row with its own clock
    ended = expected["error"].fillna("").str.startswith("stream ended inside").to_numpy()
    assert got["error"].fillna("").str.startswith("stream ended inside").to_numpy().tolist() \
        == ended.tolist()
    got = got.copy()
    got.loc[ended, "time"] = expected.loc[ended, "time"].to_numpy()
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))


@pytest.mark.parametrize(("seed", "bulk_octets"), [(1, 0), (2, 0), (3, 1 << 40)])
def test_the_logger_records_as_the_event_path(tmp_path: Path, seed: int,
                                              bulk_octets: int) -> None:
    rng = random.Random(seed)
    runs = [capture_ops(path, 100 * i)
            for i, path in enumerate(sorted((REPO_ROOT / "captures").glob("*.pcap*")))]
    assert runs and all(any(op[0] == "data" for op in run) for run in runs)
    runs += [synthetic_ops(rng, 1000 + k, profile, 300)
             for k, profile in enumerate([Profile(1, 1, 2), Profile(2, 2, 3),
                                          Profile(1, 2, 3)])]
    ops = merge(rng, runs)
    expected = reference(ops, None).to_pandas()
    assert set(expected["profile"].dropna()) >= {"1/1/2", "2/2/3", "1/2/3"}
    assert (expected["kind"] == "malformed").any() and (expected["kind"] == "event").any()
    assert_same_rows(expected, logged(ops, None, tmp_path / "log", bulk_octets))


@pytest.mark.parametrize("bulk_octets", [0, 1 << 40])
def test_the_logger_in_the_shortest_slices_records_everything(tmp_path: Path,
                                                              bulk_octets: int) -> None:
    """``slice_octets=1``: it gives the CPU back after every data message (APDU by APDU)
    or every batch (the fast lane), and logs the same rows."""
    rng = random.Random(5)
    ops = merge(rng, [synthetic_ops(rng, k, profile, 400)
                      for k, profile in enumerate([Profile(1, 1, 2), Profile(2, 2, 3)])])
    expected = reference(ops, None).to_pandas()
    stats: dict[str, int] = {}
    assert_same_rows(expected, logged(ops, None, tmp_path / "log", bulk_octets, stats,
                                      slice_octets=1))
    if bulk_octets:  # APDU by APDU: one yield per data message
        assert stats["logger_yields"] >= sum(op[0] == "data" for op in ops)
    else:  # the fast lane: one per batch of flush_rows (700)
        assert stats["logger_yields"] >= len(expected) // 700 >= 1
    with pytest.raises(ValueError, match="slice_octets"):
        LogProcess(tmp_path / "log", {}, slice_octets=0)


def test_a_given_profile_is_not_detected(tmp_path: Path) -> None:
    ops = synthetic_ops(random.Random(3), 0, Profile(1, 1, 2), 200)
    expected = reference(ops, Profile(1, 1, 2)).to_pandas()
    assert set(expected["profile"].dropna()) == {"1/1/2"}
    assert expected["profile_confidence"].isna().all()
    assert_same_rows(expected, logged(ops, Profile(1, 1, 2), tmp_path / "log"))
    assert_same_rows(expected, logged(ops, Profile(1, 1, 2), tmp_path / "log2", 1 << 40))


@pytest.mark.parametrize(("args", "profile"), [
    ([], None),  # detected, as convert does
    (["--cot-size", "1"], Profile(1, 2, 3)),
    (["--cot-size", "1", "--ca-size", "1", "--ioa-size", "2"], Profile(1, 1, 2)),
])
def test_the_recorders_field_size_options(args: list[str], profile: Profile | None) -> None:
    import argparse

    from iec104.cli.common import add_log_options, log_kwargs

    parser = argparse.ArgumentParser()
    add_log_options(parser)
    assert log_kwargs(parser.parse_args(args))["profile"] == profile
