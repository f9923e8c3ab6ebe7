"""Damaged captures through ``iec104 convert`` and ``iec104 read``: truncated at any point,
corrupted by seeded random byte flips, random bytes with and without a valid file header,
and random TCP payloads on port 2404.

What must hold every time: no exception escapes (no traceback), the exit code says what
happened (0 clean, 1 damaged part-way with a warning on stderr, 2 not a capture at all), and
nothing valid before the damage is lost: every APDU the undamaged capture yields in the
frames before the first damaged record is in the output, with the same values.

Most runs call :func:`iec104.cli.main` in this process (fast); a few run the real
subprocess to check stderr for tracebacks.
"""

from __future__ import annotations

import io
import random
import struct
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from iec104.cli import main
from iec104.dissector import dissect_table
from tests.conftest import PUBLIC_CAPTURES_DIR
from tests.support.cli import COMMANDS, STATION, run

WIKI = PUBLIC_CAPTURES_DIR / "wireshark-wiki_iec104.pcap"
SOURCES = [STATION, COMMANDS, WIKI]


def source_ids() -> list[str]:
    return [p.name for p in SOURCES]


def _source(path: Path) -> Path:
    if not path.exists():
        from tests.conftest import public_captures_dir

        public_captures_dir()  # skips outside CI, fails in CI
    return path


def cli(*args: object) -> tuple[int, str, str]:
    """``iec104 ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def records(data: bytes) -> tuple[int, list[tuple[int, bool]]]:
    """(file header size, [(end offset, is a frame)] per record) of a pcap/pcapng file."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        out = []
        pos = 0
        while pos + 8 <= len(data):
            btype, blen = struct.unpack_from("<II", data, pos)
            out.append((pos + blen, btype in (2, 3, 6)))
            pos += blen
        return out[0][0], out[1:]
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos, out = 24, []
    while pos + 16 <= len(data):
        incl = struct.unpack_from(order + "I", data, pos + 8)[0]
        pos += 16 + incl
        out.append((pos, True))
    return 24, out


def frames_before(recs: list[tuple[int, bool]], offset: int) -> int:
    """Frames whose record ends at or before ``offset``."""
    return sum(1 for end, is_frame in recs if is_frame and end <= offset)


def apdu_rows(table_rows: list[dict], last_frame: int) -> list[dict]:
    """Rows of well-formed APDUs in frames <= last_frame (without the profile detection's
    confidence, which grows with the I-frames a capture has: a cut one has fewer)."""
    return [{k: v for k, v in r.items() if k != "profile_confidence"} for r in table_rows
            if r["apci"] is not None and r["frame"] <= last_frame]


_reference: dict[Path, list[dict]] = {}


def reference(path: Path) -> list[dict]:
    if path not in _reference:
        _reference[path] = dissect_table(path).to_pylist()
    return _reference[path]


def check_damaged(path: Path, damaged: Path, intact_frames: int, tmp_path: Path,
                  truncated_only: bool = False) -> int:
    """Convert and read ``damaged``; check exit codes and that nothing before the damage is
    lost. Returns the convert exit code."""
    out = tmp_path / "out.parquet"
    out.unlink(missing_ok=True)
    code, _, stderr = cli("convert", damaged, "-o", out, "-q")
    assert code in (0, 1, 2), (code, stderr)
    if code == 2:
        assert stderr.startswith("iec104: ") and not out.exists(), stderr
        assert intact_frames == 0, stderr
        return code
    if code == 1:
        assert "iec104: warning: " in stderr and ("every whole record before it was decoded"
                                                  in stderr or "kept without a time" in stderr), \
            stderr
    else:  # notes (e.g. a flipped IP flag made a packet an incomplete fragment) keep exit 0
        assert all(line.startswith("iec104: note: ") for line in stderr.splitlines()), stderr
    got = pq.read_table(out).to_pylist()
    want = apdu_rows(reference(path), intact_frames)
    kept = apdu_rows(got, intact_frames)
    if truncated_only:
        assert kept == want
    else:  # later damage may add rows (e.g. a flipped byte makes a frame look like IEC 104)
        assert kept[:len(want)] == want
    # read agrees with convert on the exit code and prints something for every APDU
    rcode, lines, rerr = cli("read", damaged)
    assert rcode == code, rerr
    assert len(lines.splitlines()) >= len({r["apdu"] for r in kept})
    return code


@pytest.mark.parametrize("path", SOURCES, ids=source_ids())
def test_truncated_anywhere(path: Path, tmp_path: Path) -> None:
    data = _source(path).read_bytes()
    header, recs = records(data)
    rng = random.Random(f"truncate {path.name}")
    cuts = {0, 3, header - 1, header, recs[0][0], recs[-1][0] - 1, len(data) - 1}
    cuts |= {rng.randrange(header, len(data)) for _ in range(6)}
    codes = set()
    for cut in sorted(cuts):
        damaged = tmp_path / f"cut{path.suffix}"
        damaged.write_bytes(data[:cut])
        intact = frames_before(recs, cut)
        code = check_damaged(path, damaged, intact, tmp_path, truncated_only=True)
        at_boundary = cut == header or any(end == cut for end, _ in recs)
        expected = 2 if cut < header else 0 if at_boundary else 1
        assert code == expected, (cut, code)
        codes.add(code)
    assert codes == {0, 1, 2}


@pytest.mark.parametrize("path", SOURCES, ids=source_ids())
def test_random_byte_flips(path: Path, tmp_path: Path) -> None:
    data = _source(path).read_bytes()
    header, recs = records(data)
    rng = random.Random(f"flip {path.name}")
    for trial in range(8):
        first = rng.randrange(len(recs))
        start = recs[first - 1][0] if first else header
        damaged_bytes = bytearray(data)
        for _ in range(rng.choice((1, 3, 20))):
            pos = rng.randrange(start, len(data))
            damaged_bytes[pos] ^= 1 << rng.randrange(8)
        damaged = tmp_path / f"flip{trial}{path.suffix}"
        damaged.write_bytes(bytes(damaged_bytes))
        intact = sum(1 for _, is_frame in recs[:first] if is_frame)
        check_damaged(path, damaged, intact, tmp_path)


def test_random_bytes(tmp_path: Path) -> None:
    rng = random.Random(104)
    pcap_header = STATION.read_bytes()[:24]
    pcapng_header = COMMANDS.read_bytes()[:records(COMMANDS.read_bytes())[0]]
    cases = {
        "noise": rng.randbytes(5000),
        "pcap header + noise": pcap_header + rng.randbytes(5000),
        "pcapng header + noise": pcapng_header + rng.randbytes(5000),
        "gzip magic + noise": b"\x1f\x8b" + rng.randbytes(3000),
    }
    for i, (name, content) in enumerate(cases.items()):
        path = tmp_path / f"random{i}.pcap"
        path.write_bytes(content)
        out = tmp_path / f"random{i}.parquet"
        code, _, stderr = cli("convert", path, "-o", out, "-q")
        assert code in (1, 2), (name, code, stderr)
        assert stderr.startswith("iec104: "), (name, stderr)
        if name in ("noise", "gzip magic + noise"):
            assert code == 2 and not out.exists(), name
        rcode, _, rerr = cli("read", path)
        assert rcode == code, (name, rerr)


def _segment(src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int,
             payload: bytes, t: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src,
                     dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
    frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload
    return struct.pack("<IIII", t, 0, len(frame), len(frame)) + frame


def test_random_tcp_payloads_on_2404(tmp_path: Path) -> None:
    """A well-formed capture whose IEC 104 connection carries random octets (some APDU-like)."""
    rng = random.Random(2404)
    client, server = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))
    out = bytearray(STATION.read_bytes()[:24])
    seqs = [1000, 5000]
    out += _segment(client, 50000, server, 2404, 999, 0, 0x02, b"", 1)
    out += _segment(server, 2404, client, 50000, 4999, 1000, 0x12, b"", 1)
    for i in range(400):
        d = rng.randrange(2)
        if rng.random() < 0.5:
            size = rng.randrange(4, 40)
            payload = bytes((0x68, size)) + rng.randbytes(size)  # APDU-shaped
        else:
            payload = rng.randbytes(rng.randrange(1, 60))
        src, dst, sport, dport = ((client, server, 50000, 2404) if d == 0
                                  else (server, client, 2404, 50000))
        out += _segment(src, sport, dst, dport, seqs[d], seqs[1 - d], 0x18, payload, 2 + i)
        seqs[d] += len(payload)
    path = tmp_path / "noise2404.pcap"
    path.write_bytes(bytes(out))
    code, _, stderr = cli("convert", path, "-o", tmp_path / "n.parquet", "-q")
    assert code == 0, stderr
    table = pq.read_table(tmp_path / "n.parquet")
    errors = [e for e in table.column("error").to_pylist() if e]
    assert table.num_rows > 100 and errors
    code, lines, _ = cli("read", path)
    assert code == 0 and "[malformed]" in lines
    code, lines, _ = cli("read", "-V", path, "--filter", "error is not None")
    assert code == 0 and lines


def test_subprocess_never_prints_a_traceback(tmp_path: Path) -> None:
    rng = random.Random(7)
    data = bytearray(STATION.read_bytes())
    for _ in range(30):
        pos = rng.randrange(24, len(data))
        data[pos] = rng.randrange(256)
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(bytes(data[:-5]))
    for args in (("convert", damaged, "-o", tmp_path / "d.parquet"), ("read", damaged),
                 ("read", "-V", damaged), ("summary", damaged)):
        proc = run(*args)  # asserts: no traceback on stderr
        assert proc.returncode in (0, 1), proc.stderr
    noise = tmp_path / "noise.pcap"
    noise.write_bytes(rng.randbytes(2000))
    for args in (("convert", noise, "-o", tmp_path / "x.parquet"), ("read", noise),
                 ("summary", noise)):
        proc = run(*args)
        assert proc.returncode == 2 and proc.stderr.startswith("iec104: "), proc.stderr
