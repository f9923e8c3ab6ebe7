"""Dissector benchmark: ``iec104 convert`` vs tshark vs scapy on one large capture.

1. Generates a pcap of at least ``--apdus`` APDUs (default 1,000,000) in ``bench/_work/``
   (gitignored; reused when it exists with the same parameters): ``--connections`` TCP
   connections (default 4) with handshake, STARTDT, then the outstation sending spontaneous
   data with 1 to 6 APDUs per TCP segment (55 % M_ME_TF_1 float with CP56Time2a and 1-3
   objects, 25 % M_SP_NA_1 with 1-4 singles, 10 % M_SP_TB_1 single with CP56Time2a, 10 %
   M_ME_NC_1), the master acknowledging every 8 I-frames with an S-frame and the other
   segments with pure TCP ACKs, a TESTFR exchange every 20,000 APDUs per connection, and
   FIN at the end. The APDUs are encoded by our codec (``encode_asdu``/``encode_apdu``) and
   the Ethernet/IPv4/TCP headers and pcap records are written with ``struct`` (scapy would
   take minutes for this size).
2. Runs, each as a fresh process started by a small launcher that reports its ``wait4()``
   rusage as ``/usr/bin/time`` does (wall time, CPU time = user + system of the process and
   the worker processes it waited for, peak RSS; for ``--jobs`` also the sampled sum of the
   RSS of the process and its workers):

   * ``iec104 convert CAPTURE -o OUT.parquet`` (``python -m iec104.cli``), in one process and
     with ``--jobs N`` (default 2);
   * ``tshark -r CAPTURE -T fields`` with the IEC 104 APCI, ASDU and object fields
     (``-E occurrence=a``: every APDU of a frame), output to a file;
   * scapy's contrib IEC 104 layer (``load_contrib('scada.iec104')``) over the first
     ``--scapy-apdus`` APDUs of the capture (a slice written with the same generator),
     reading every packet with ``PcapReader`` and touching each APDU's fields; its times are
     scaled to the full APDU count in the table (stated as such);
   * ``iec104 read CAPTURE`` (one line per APDU) against ``tshark -r CAPTURE -Y
     iec60870_104`` (tshark's default one-line output), both into a file.

3. Prints two tables (convert vs the others; read vs tshark's one-line output): APDUs, wall
   and CPU seconds, APDUs per CPU-second, peak RSS, and our ratio in CPU and in wall time.
   Each tool runs ``--repeat`` times, alternating; the run with the least CPU time is shown.

Usage::

    python bench/dissect.py                    # 1M APDUs, every tool
    python bench/dissect.py --apdus 600000 --skip scapy,jobs
    python bench/dissect.py --apdus 10000000   # ~1 GB (RSS check); --skip tshark,scapy,read
    python bench/dissect.py --capture X.pcap --skip ours,jobs,tshark   # read vs tshark on X
    python bench/dissect.py --json
    python bench/dissect.py --capture ring.pcap --skip jobs,read   # a capture of your own

Only the capture file is large; everything runs on 127.0.0.1-free files (no network).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from iec104 import codec
from iec104.codec import (
    ASDU,
    Cause,
    FloatingValue,
    InformationObject,
    Quality,
    SingleValue,
    Time,
    TimeSize,
    TypeId,
)
from iec104.codec.timetag import civil_from_days

WORK = REPO / "bench" / "_work"
START_NS = 1_764_000_000 * 1_000_000_000  # 2025-11-24T16:00:00Z
SERVER_PORT = 2404

# -- capture generation -----------------------------------------------------------------------

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)  # ns, Ethernet
_REC = struct.Struct("<IIII")
_ETH_IP = struct.Struct("!6s6sHBBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_ACK, _PSH, _SYN, _FIN = 0x10, 0x08, 0x02, 0x01
_GOOD = Quality()


@dataclass
class _Side:
    mac: bytes
    ip: bytes
    port: int
    seq: int


class _Conn:
    def __init__(self, index: int, rng: random.Random) -> None:
        self.client = _Side(bytes((2, 0, 0, 0, 1, index)), bytes((192, 0, 2, 100 + index)),
                            40000 + index, rng.randrange(1 << 32))
        self.server = _Side(bytes((2, 0, 0, 0, 2, index)), bytes((192, 0, 2, 1 + index)),
                            SERVER_PORT, rng.randrange(1 << 32))
        self.ca = 1 + index
        self.ssn = 0  # server's N(S)
        self.csn = 0  # client's N(S)
        self.unacked = 0
        self.apdus = 0
        self.ioa_base = 1000 * (index + 1)


class CaptureWriter:
    """Writes pcap records (Ethernet/IPv4/TCP) with struct into a buffered file."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.fh.write(_PCAP_HEADER)
        self.buf = bytearray()
        self.frames = 0
        self.ip_id = 0

    def segment(self, t_ns: int, src: _Side, dst: _Side, flags: int, payload: bytes = b"",
                syn_fin: int = 0) -> None:
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        tlen = 40 + len(payload)
        head = _ETH_IP.pack(dst.mac, src.mac, 0x0800, 0x45, 0, tlen, self.ip_id, 0x4000, 64,
                            6, 0, src.ip, dst.ip)
        tcp = _TCP.pack(src.port, dst.port, src.seq & 0xFFFFFFFF, dst.seq & 0xFFFFFFFF,
                        0x50, flags, 65535, 0, 0)
        n = 54 + len(payload)
        self.buf += _REC.pack(t_ns // 1_000_000_000, t_ns % 1_000_000_000, n, n)
        self.buf += head
        self.buf += tcp
        self.buf += payload
        src.seq += len(payload) + syn_fin
        self.frames += 1
        if len(self.buf) >= 1 << 22:
            self.fh.write(self.buf)
            self.buf.clear()

    def close(self) -> None:
        self.fh.write(self.buf)
        self.fh.close()


def _cp56(t_ns: int) -> Time:
    s, ns = divmod(t_ns, 1_000_000_000)
    days, sod = divmod(s, 86400)
    year, month, day = civil_from_days(days)
    return Time(TimeSize.SEVEN, (sod % 60) * 1000 + ns // 1_000_000, False, (sod // 60) % 60,
                False, sod // 3600, (days + 3) % 7 + 1, day, month, year - 2000, 0)


def _asdu(conn: _Conn, rng: random.Random, t_ns: int) -> bytes:
    r = rng.random()
    base = conn.ioa_base
    if r < 0.55:
        tag = _cp56(t_ns - rng.randrange(50_000_000))
        objects = tuple(InformationObject(base + rng.randrange(200),
                                          FloatingValue(round(rng.uniform(-500, 500), 2)),
                                          _GOOD, tag) for _ in range(rng.randint(1, 3)))
        asdu = ASDU(TypeId.M_ME_TF_1, False, Cause.SPONTANEOUS, False, False, 0, conn.ca,
                    objects)
    elif r < 0.80:
        objects = tuple(InformationObject(base + 500 + rng.randrange(100),
                                          SingleValue(rng.random() < 0.5), _GOOD)
                        for _ in range(rng.randint(1, 4)))
        asdu = ASDU(TypeId.M_SP_NA_1, False, Cause.SPONTANEOUS, False, False, 0, conn.ca,
                    objects)
    elif r < 0.90:
        objects = (InformationObject(base + 600 + rng.randrange(50),
                                     SingleValue(rng.random() < 0.5), _GOOD,
                                     _cp56(t_ns - rng.randrange(20_000_000))),)
        asdu = ASDU(TypeId.M_SP_TB_1, False, Cause.SPONTANEOUS, False, False, 0, conn.ca,
                    objects)
    else:
        objects = (InformationObject(base + 700 + rng.randrange(50),
                                     FloatingValue(round(rng.uniform(0, 100), 3)), _GOOD),)
        asdu = ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, conn.ca,
                    objects)
    return codec.encode_asdu(asdu)


def _u(function: codec.UFunction) -> bytes:
    return codec.encode_apdu(codec.UFrame(function))


def generate(path: Path, apdus: int, connections: int = 4, seed: int = 104) -> dict[str, int]:
    """Write the benchmark capture; returns ``{'apdus': n, 'frames': n, 'bytes': n}``."""
    rng = random.Random(seed)
    w = CaptureWriter(path)
    conns = [_Conn(i, rng) for i in range(connections)]
    t = START_NS
    total = 0
    for c in conns:  # handshake and STARTDT
        cl, sv = c.client, c.server
        w.segment(t, cl, sv, _SYN, syn_fin=1)
        w.segment(t + 50_000, sv, cl, _SYN | _ACK, syn_fin=1)
        w.segment(t + 90_000, cl, sv, _ACK)
        w.segment(t + 200_000, cl, sv, _PSH | _ACK, _u(codec.UFunction.STARTDT_ACT))
        w.segment(t + 300_000, sv, cl, _PSH | _ACK, _u(codec.UFunction.STARTDT_CON))
        total += 2
        t += 1_000_000
    sizes = (1, 1, 1, 2, 2, 3, 4, 6)
    encode_apdu = codec.encode_apdu
    IFrame, SFrame = codec.IFrame, codec.SFrame
    while total < apdus:
        c = conns[rng.randrange(connections)]
        cl, sv = c.client, c.server
        t += rng.randrange(100_000, 8_000_000)
        parts = []
        for _ in range(min(sizes[rng.randrange(len(sizes))], 12 - c.unacked)):  # k = 12
            parts.append(encode_apdu(IFrame(c.ssn, c.csn, _asdu(c, rng, t))))
            c.ssn = (c.ssn + 1) & 0x7FFF
            c.unacked += 1
        w.segment(t, sv, cl, _PSH | _ACK, b"".join(parts))
        total += len(parts)
        c.apdus += len(parts)
        t += rng.randrange(5_000, 40_000)
        if c.unacked >= 8:
            w.segment(t, cl, sv, _PSH | _ACK, encode_apdu(SFrame(c.ssn)))
            c.unacked = 0
            total += 1
        else:
            w.segment(t, cl, sv, _ACK)
        if c.apdus >= 20_000:
            c.apdus = 0
            t += 1_000_000
            w.segment(t, cl, sv, _PSH | _ACK, _u(codec.UFunction.TESTFR_ACT))
            w.segment(t + 80_000, sv, cl, _PSH | _ACK, _u(codec.UFunction.TESTFR_CON))
            total += 2
    for c in conns:  # close
        cl, sv = c.client, c.server
        t += 1_000_000
        w.segment(t, cl, sv, _FIN | _ACK, syn_fin=1)
        w.segment(t + 50_000, sv, cl, _FIN | _ACK, syn_fin=1)
        w.segment(t + 90_000, cl, sv, _ACK)
    w.close()
    return {"apdus": total, "frames": w.frames, "bytes": path.stat().st_size}


def given_capture(path: Path) -> tuple[Path, dict[str, Any]]:
    """A capture given with ``--capture`` and its APDUs, frames and size (counted once by
    our dissector, then reused)."""
    import pyarrow.compute as pc

    from iec104 import dissect_table
    from iec104.capture.reader import read_packets

    meta = WORK / f"given-{path.name}-{path.stat().st_size}.json"
    if meta.exists():
        return path, json.loads(meta.read_text())
    WORK.mkdir(parents=True, exist_ok=True)
    info = {"bytes": path.stat().st_size, "frames": sum(1 for _ in read_packets(path)),
            "apdus": pc.count_distinct(dissect_table(path).column("apdu")).as_py()}
    meta.write_text(json.dumps(info))
    return path, info


def capture(apdus: int, connections: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The benchmark capture for these parameters (generated once, then reused)."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"bench-{apdus}-{connections}-{seed}.pcap"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    started = time.perf_counter()
    info: dict[str, Any] = dict(generate(path.with_suffix(".tmp"), apdus, connections, seed))
    path.with_suffix(".tmp").replace(path)
    info["seconds"] = round(time.perf_counter() - started, 1)
    meta.write_text(json.dumps(info))
    return path, info


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Run:
    tool: str
    apdus: int
    seconds: float  # wall
    rss_mb: float
    note: str = ""
    scale: float = 1.0  # seconds were measured on 1/scale of the APDUs
    cpu: float = 0.0  # user + system seconds of the process and its children

    @property
    def rate(self) -> float:
        return self.apdus / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.apdus / self.cpu if self.cpu else 0.0


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS of the descendants of ``root`` (Linux /proc), in KiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


# The launcher: a fresh, small interpreter that forks and execs the measured command and
# reports the child's wait4() rusage, as /usr/bin/time does. Measuring a child forked by this
# (large) process directly would not do: Linux records the forked copy's RSS (this process's)
# as the child's ru_maxrss high-water mark at exec.
_LAUNCHER = r"""
import json, os, sys, time
out = int(sys.argv[1])
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(out, json.dumps({"wall": time.perf_counter() - started,
                          "cpu": usage.ru_utime + usage.ru_stime,
                          "maxrss_kb": usage.ru_maxrss,
                          "code": os.waitstatus_to_exitcode(status)}).encode())
"""


def measure(cmd: list[str], stdout: Any = subprocess.DEVNULL) -> tuple[float, float, float, bytes]:
    """Run ``cmd``; (wall seconds, CPU seconds, peak RSS in MiB, stderr).

    Wall and CPU time (user + system of the command and of the worker processes it waited
    for) and the command's own peak RSS come from ``wait4()`` in a small launcher process
    (see ``_LAUNCHER``). Commands with worker processes (``--jobs``) are also sampled every
    50 ms for the summed RSS of the command and its workers; the larger peak is reported.
    """
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(write_fd), *cmd],
                                stdout=stdout, stderr=err, pass_fds=(write_fd,))
        os.close(write_fd)
        peak_tree = 0
        while proc.poll() is None:
            peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
            time.sleep(0.05)
        with os.fdopen(read_fd, "rb") as fh:
            report = json.loads(fh.read() or b"{}")
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0 or report.get("code") != 0:
        raise RuntimeError(f"{cmd[0]} failed ({report.get('code')}): {stderr.decode()[-2000:]}")
    return (report["wall"], report["cpu"], max(report["maxrss_kb"], peak_tree) / 1024, stderr)


def run_ours(path: Path, jobs: int = 0) -> Run:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out = WORK / "bench-out.parquet"
    seconds, cpu, rss, _ = measure([sys.executable, "-m", "iec104.cli", "convert", str(path),
                                    "-o", str(out), "-q", "--jobs", str(jobs)])
    apdus = pc.count_distinct(pq.read_table(out, columns=["apdu"]).column("apdu")).as_py()
    out.unlink()
    name = "iec104 convert" + (f" --jobs {jobs}" if jobs else "")
    note = "-> Parquet (zstd), all columns" + (f"; {jobs} worker processes" if jobs else "")
    return Run(name, apdus, seconds, rss, note, cpu=cpu)


def best(runs: list[Run]) -> Run:
    """The run with the least CPU time of repeated runs (the machine is shared: the others
    measure the load)."""
    return min(runs, key=lambda r: r.cpu or r.seconds)


TSHARK_FIELDS = [
    "frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
    "iec60870_104.apdulen", "iec60870_104.type", "iec60870_104.tx", "iec60870_104.rx",
    "iec60870_104.utype", "iec60870_asdu.typeid", "iec60870_asdu.sq", "iec60870_asdu.numix",
    "iec60870_asdu.causetx", "iec60870_asdu.nega", "iec60870_asdu.test", "iec60870_asdu.oa",
    "iec60870_asdu.addr", "iec60870_asdu.ioa", "iec60870_asdu.float", "iec60870_asdu.siq.spi",
    "iec60870_asdu.qds.iv", "iec60870_asdu.cp56time",
]


def run_tshark(path: Path) -> Run:
    out = WORK / "bench-tshark.tsv"
    cmd = ["tshark", "-n", "-r", str(path), "-Y", "iec60870_104", "-T", "fields",
           "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    with open(out, "wb") as fh:
        seconds, cpu, rss, _ = measure(cmd, stdout=fh)
    apdus = 0
    col = TSHARK_FIELDS.index("iec60870_104.type")
    with open(out, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            cell = line.split("\t")[col]
            if cell:
                apdus += cell.count("|") + 1
    out.unlink()
    return Run("tshark -T fields", apdus, seconds, rss, "IEC 104 fields to TSV (-E occurrence=a)",
               cpu=cpu)


_SCAPY_CHILD = r"""
import sys, time
from scapy.all import load_contrib, PcapReader
from scapy.layers.inet import TCP
load_contrib("scada.iec104")
from scapy.contrib.scada import iec104 as m
APDU = (m.IEC104_I_Message, m.IEC104_S_Message, m.IEC104_U_Message)

def touch(layer):
    for f in layer.fields_desc:
        value = layer.getfieldval(f.name)
        if isinstance(value, list):
            for item in value:
                if hasattr(item, "fields_desc"):
                    touch(item)

apdus = 0
started = time.perf_counter()
cpu_started = time.process_time()
with PcapReader(sys.argv[1]) as reader:
    for pkt in reader:
        layer = pkt.getlayer(TCP)
        layer = layer.payload if layer is not None else None
        while layer is not None and isinstance(layer, APDU):
            apdus += 1
            touch(layer)
            layer = layer.payload
print(apdus, time.perf_counter() - started, time.process_time() - cpu_started)
"""


def run_scapy(apdus_slice: int, connections: int, seed: int, full_apdus: int) -> Run:
    path, info = capture(apdus_slice, connections, seed)
    with tempfile.TemporaryFile() as fh:
        _, _, rss, _ = measure([sys.executable, "-c", _SCAPY_CHILD, str(path)], stdout=fh)
        fh.seek(0)
        counted, seconds, cpu = fh.read().split()
    n = int(counted)
    scale = full_apdus / n if n else 1.0
    return Run("scapy contrib iec104", n, float(seconds), rss,
               f"first {n:,} APDUs only ({info['bytes'] / 1e6:.1f} MB slice), parse time "
               f"without imports; x{scale:.0f} = time for the full capture", scale,
               cpu=float(cpu))


def run_read(path: Path) -> Run:
    """``iec104 read CAPTURE`` (one line per APDU) into a file."""
    out = WORK / "bench-read.txt"
    with open(out, "wb") as fh:
        seconds, cpu, rss, _ = measure([sys.executable, "-m", "iec104.cli", "read", str(path)],
                                       stdout=fh)
    with open(out, "rb") as fh:
        lines = sum(1 for _ in fh)
    out.unlink()
    return Run("iec104 read", lines, seconds, rss, "one line per APDU, to a file", cpu=cpu)


def run_tshark_lines(path: Path, apdus: int) -> Run:
    """``tshark -r CAPTURE -Y iec60870_104`` (default one-line output) into a file."""
    out = WORK / "bench-tshark-lines.txt"
    with open(out, "wb") as fh:
        seconds, cpu, rss, _ = measure(["tshark", "-n", "-r", str(path), "-Y", "iec60870_104"],
                                       stdout=fh)
    out.unlink()
    return Run("tshark -r (one line)", apdus, seconds, rss,
               "one line per frame (all its APDUs), to a file", cpu=cpu)


# -- report -----------------------------------------------------------------------------------


def table(runs: list[Run]) -> str:
    """Markdown table; the ratios compare the first row with each other row (same run)."""
    if not runs:
        return "(every tool skipped: only the capture was generated)"
    ours = runs[0]
    lines = [f"| tool | APDUs | wall s | CPU s | APDUs per CPU-s | peak RSS MB | "
             f"{ours.tool} faster by (CPU) | (wall) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        wall = f"{r.seconds:.1f}" + (f" (x{r.scale:.0f} = {r.seconds * r.scale:,.0f})"
                                     if r.scale != 1 else "")
        cpu = f"{r.cpu:.1f}" + (f" (x{r.scale:.0f} = {r.cpu * r.scale:,.0f})"
                                if r.scale != 1 else "")
        cpu_ratio = "-" if r is ours else f"{ours.cpu_rate / r.cpu_rate:.2f}x"
        wall_ratio = "-" if r is ours else f"{ours.rate / r.rate:.2f}x"
        lines.append(f"| {r.tool} | {r.apdus:,} | {wall} | {cpu} | {r.cpu_rate:,.0f} | "
                     f"{r.rss_mb:,.0f} | {cpu_ratio} | {wall_ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--apdus", type=int, default=1_000_000)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--seed", type=int, default=104)
    p.add_argument("--scapy-apdus", type=int, default=20_000)
    p.add_argument("--jobs", type=int, default=2,
                   help="also run iec104 convert --jobs N (0: skip that row)")
    p.add_argument("--repeat", type=int, default=2,
                   help="runs per tool, alternating; the best is shown (scapy runs once)")
    p.add_argument("--skip", default="",
                   help="comma-separated: ours,jobs,tshark,scapy,read (read: the one-line table)")
    p.add_argument("--capture", type=Path, metavar="PCAP",
                   help="measure this capture instead of a generated one (scapy still "
                        "reads a generated slice, scaled to this capture's APDUs)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if args.capture is not None:
        path, info = given_capture(args.capture)
    else:
        path, info = capture(args.apdus, args.connections, args.seed)
    print(f"capture: {path} ({info['bytes'] / 1e6:,.1f} MB, {info['frames']:,} frames, "
          f"{info['apdus']:,} APDUs; generated in {info.get('seconds', '?')} s)",
          file=sys.stderr)
    tools = (("ours", lambda: run_ours(path)),
             ("jobs", lambda: run_ours(path, args.jobs)),
             ("tshark", lambda: run_tshark(path)),
             ("scapy", lambda: run_scapy(args.scapy_apdus, args.connections, args.seed,
                                         info["apdus"])),
             ("read", lambda: run_read(path)),
             ("tshark-lines", lambda: run_tshark_lines(path, info["apdus"])))
    measured: dict[str, list[Run]] = {}
    for i in range(args.repeat):  # alternate the tools, keep each one's best run
        for key, fn in tools:
            if (key in skip or (key == "jobs" and not args.jobs) or (key == "scapy" and i)
                    or (key == "tshark-lines" and "read" in skip)):
                continue
            run = fn()
            print(f"  {run.tool}: {run.seconds:.1f} s wall, {run.cpu:.1f} s CPU, "
                  f"{run.rss_mb:.0f} MB", file=sys.stderr)
            measured.setdefault(key, []).append(run)
    best_runs = {key: best(v) for key, v in measured.items()}
    convert = [r for k, r in best_runs.items() if k not in ("read", "tshark-lines")]
    lines = [r for k, r in best_runs.items() if k in ("read", "tshark-lines")]
    if args.json:
        print(json.dumps({"capture": info, "runs": [
            asdict(r) | {"rate": r.rate, "cpu_rate": r.cpu_rate} for r in best_runs.values()]},
            indent=2))
    else:
        print(f"{platform.python_implementation()} {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; capture "
              f"{info['bytes'] / 1e6:,.1f} MB, {info['frames']:,} frames, "
              f"{info['apdus']:,} APDUs; least CPU of {args.repeat} runs per tool")
        # the convert table, then read's beside tshark's one-line output (either may be
        # skipped; table([]) says when both are)
        print("\n\n".join([table(runs) for runs in (convert, lines) if runs] or [table([])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
