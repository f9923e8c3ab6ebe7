"""Would a block walk speed up the fast lane? pcap walk + header decode, per packet vs per block.

A measurement of a design option, not a product path. The fast lane of the dissector
(``dissect_packets``) walks a classic pcap record by record (``CaptureReader``) and decodes
each packet's headers with one ``struct`` call (``decode_plain_tcp``); then, per packet, the
reassembler's ``in_order`` and the lane append. The block form measured here collects the
record offsets of the whole file in one tight loop, decodes the Ethernet/IPv4/TCP headers of
every record with numpy gathers (EtherType, version/IHL, protocol, fragment field, total
length, ports, seq, ack, data offset, flags), decides "plain" per packet vectorised, and then
still produces, per packet, what ``decode_plain_tcp`` returns (the 4-tuple key and the payload
``bytes``), because ``in_order`` and the lanes take those one packet at a time.

Before timing, the block form's result is compared with ``decode_plain_tcp`` on every packet
(the script exits 1 on a difference). Only untagged Ethernet + IPv4 is decoded by block here;
any other packet takes ``decode_plain_tcp`` in the per-packet loop, as a real block form would
for its rare packets. Classic little-endian pcap only (the benchmark's capture).

Usage::

    python bench/blockwalk.py                 # bench/dissect.py's 600k-APDU capture
    python bench/blockwalk.py --capture X.pcap --repeat 5

Prints CPU seconds (``time.process_time``) per stage, least of ``--repeat`` alternating runs,
and the same run's ``dissect`` (fast lane) CPU seconds for scale.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from iec104.capture.packet import decode_plain_tcp
from iec104.capture.reader import CaptureReader
from iec104.dissector import dissect

_PCAP_LE = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")  # microsecond, nanosecond
_INCL = struct.Struct("<I").unpack_from


def _drop(_fields: Any) -> None:
    """Where the timed runs put each packet's result (the same call on both sides)."""


def scalar(path: Path, keep: bool = False) -> list[Any]:
    """Today's fast lane front: CaptureReader records, then decode_plain_tcp each."""
    out: list[Any] = []
    add = out.append if keep else _drop
    plain = decode_plain_tcp
    for _f, _t, linktype, data, _o, _i in CaptureReader(path):
        add(plain(linktype, data))
    return out


def block(path: Path, times: dict[str, float], keep: bool = False) -> list[Any]:
    """The block form: offsets in one loop, headers by numpy gathers, then per packet the
    key and the payload (what in_order and the lanes take)."""
    t0 = time.process_time()
    buf = path.read_bytes()
    if buf[:4] not in _PCAP_LE or _INCL(buf, 20)[0] != 1:
        sys.exit("blockwalk: only little-endian pcap of Ethernet (link type 1)")
    offsets = []
    add = offsets.append
    pos, n, incl = 24, len(buf), _INCL
    while pos + 16 <= n:
        add(pos)
        pos += 16 + incl(buf, pos + 8)[0]
    t1 = time.process_time()

    a = np.frombuffer(buf, np.uint8)
    rec = np.asarray(offsets, np.int64)
    if pos > n:  # a last record cut short is not a packet
        rec = rec[:-1]
    caplen = a[rec + 8].astype(np.int64)  # little-endian captured length
    for i in (1, 2, 3):
        caplen |= a[rec + 8 + i].astype(np.int64) << (8 * i)
    eth = rec + 16
    ip = eth + 14
    tcp = ip + 20
    room = caplen >= 54  # Ethernet + IPv4 + TCP without options
    at = np.where(room, eth, 0)  # gathers stay inside the buffer for short records

    def be(off: np.ndarray, width: int) -> np.ndarray:  # big-endian, 1-D gathers
        value = a[off].astype(np.int64)
        for i in range(1, width):
            value = (value << 8) | a[off + i]
        return value

    etype = be(at + 12, 2)
    ip_at, tcp_at = at + 14, at + 34
    tlen = be(ip_at + 2, 2)
    doff = a[tcp_at + 12].astype(np.int64)
    ok = (room & (etype == 0x0800) & (a[ip_at] == 0x45) & (a[ip_at + 9] == 6)
          & ((be(ip_at + 6, 2) & 0x3FFF) == 0) & (tlen >= 40) & (tlen <= caplen - 14)
          & (doff >= 0x50))
    start = tcp + ((doff >> 4) << 2)
    end = ip + tlen
    ok &= start <= end
    ipv4 = room & (etype == 0x0800)  # decided here; anything else: the scalar decoder
    src, dst = be(ip_at + 12, 4), be(ip_at + 16, 4)
    columns = (ok, ipv4, src, be(tcp_at, 2), dst, be(tcp_at + 2, 2), be(tcp_at + 4, 4),
               be(tcp_at + 8, 4), a[tcp_at + 13], start, end, eth, caplen)
    t2 = time.process_time()
    cols = [c.tolist() for c in columns]  # the Python objects in_order takes per packet
    t2b = time.process_time()

    out: list[Any] = []
    add = out.append if keep else _drop
    pack = struct.Struct("!I").pack
    plain = decode_plain_tcp
    for good, decided, s, sp, d, dp, seq, ack, flags, st, en, e, cl in zip(*cols):
        if good:
            add(((pack(s), sp, pack(d), dp), seq, ack, flags, buf[st:en]))
        elif decided:
            add(None)
        else:
            add(plain(1, buf[e:e + cl]))
    t3 = time.process_time()
    for key, value in (("read + offsets", t1 - t0), ("numpy", t2 - t1), ("tolist", t2b - t2),
                       ("per packet", t3 - t2b)):
        times[key] = min(times.get(key, value), value)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--capture", type=Path, metavar="PCAP")
    p.add_argument("--apdus", type=int, default=600_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    if args.capture is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from dissect import capture  # the benchmark capture, generated once

        path = capture(args.apdus, 4, 104)[0]
    else:
        path = args.capture

    split: dict[str, float] = {}
    expected = scalar(path, keep=True)
    got = block(path, split, keep=True)
    if got != expected:
        bad = next(i for i, (x, y) in enumerate(zip(got, expected)) if x != y)
        print(f"blockwalk: frame {bad + 1}: block form {got[bad]!r} != {expected[bad]!r}")
        return 1
    packets, plain = len(expected), sum(x is not None for x in expected)
    del expected, got
    split.clear()
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, run in (("per packet (CaptureReader + decode_plain_tcp)", scalar),
                          ("block (offsets + numpy + per-packet key/payload)",
                           lambda q: block(q, split)),
                          ("dissect, fast lane (everything)",
                           lambda q: sum(b.num_rows for b in dissect(q)))):
            t = time.process_time()
            run(path)
            best[name] = min(best.get(name, 1e9), time.process_time() - t)
    print(f"{path.name}: {packets:,} packets, {plain:,} plain; CPU s, least of {args.repeat}")
    for name, secs in best.items():
        print(f"  {name:50s} {secs:7.3f}")
    print("  block split: " + ", ".join(f"{k} {v:.3f}" for k, v in split.items()))
    walk, by_block = (best[name] for name in list(best)[:2])
    print(f"  block / per packet: {by_block / walk:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
