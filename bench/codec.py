"""Codec benchmark: ASDU encode and decode rate, iec104 vs hat-drivers, in one run.

Cases (both on the 104 default profile, COT 2 / CA 2 / IOA 3):

* ``M_ME_NC_1 x1``: one float measurand with quality (SQ=0), the most common ASDU;
* ``M_ME_NC_1 SQ=1 x30``: 30 float measurands at consecutive addresses.

For each, ``encode_asdu`` (our ``ASDU`` -> octets) and ``decode_asdu`` (octets -> ``ASDU``)
against hat-drivers' ``hat.drivers.iec60870.encodings.iec104.Encoder`` on the equivalent
hat ASDU. Both sides are checked to produce/accept the same octets first. The rate is
ASDUs per second, best of ``--repeat`` timing runs of at least ``--min-time`` seconds
(``timeit`` style); the ratio is ours / hat (> 1: we are faster).

Usage: ``python bench/codec.py [--repeat 5] [--min-time 0.2] [--json]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from iec104 import codec
from iec104.codec import ASDU, Cause, FloatingValue, InformationObject, Quality, TypeId


def our_asdu(count: int, sequence: bool) -> ASDU:
    objects = tuple(InformationObject(1000 + i, FloatingValue(0.5 + i), Quality())
                    for i in range(count))
    return ASDU(TypeId.M_ME_NC_1, sequence, Cause.SPONTANEOUS, False, False, 0, 1, objects)


def hat_asdu(count: int, sequence: bool) -> Any:
    from hat.drivers.iec60870.encodings import iec104 as h104  # type: ignore[import-untyped]

    quality = h104.MeasurementQuality(False, False, False, False, False)
    elements = [h104.IoElement_M_ME_NC(h104.FloatingValue(0.5 + i), quality)
                for i in range(count)]
    if sequence:
        ios = [h104.IO(1000, elements, None)]
    else:
        ios = [h104.IO(1000 + i, [e], None) for i, e in enumerate(elements)]
    cause = h104.Cause(h104.CauseType.SPONTANEOUS, False, False, 0)
    return h104.ASDU(h104.AsduType.M_ME_NC, cause, 1, ios)


def rate(fn: Callable[[], object], repeat: int, min_time: float) -> float:
    """Calls per second: best of ``repeat`` runs, each at least ``min_time`` long."""
    timer = timeit.Timer(fn)
    number, elapsed = timer.autorange()
    while elapsed < min_time:
        number *= 2
        elapsed = timer.timeit(number)
    best = min([elapsed] + timer.repeat(repeat=repeat - 1, number=number))
    return number / best


CASES = [("M_ME_NC_1 x1", 1, False), ("M_ME_NC_1 SQ=1 x30", 30, True)]


def run(repeat: int, min_time: float) -> list[dict[str, Any]]:
    from hat.drivers.iec60870.encodings import iec104 as h104  # type: ignore[import-untyped]

    hat = h104.Encoder()
    rows = []
    for name, count, sequence in CASES:
        ours, theirs = our_asdu(count, sequence), hat_asdu(count, sequence)
        raw = codec.encode_asdu(ours)
        assert bytes(hat.encode_asdu(theirs)) == raw, "hat and iec104 disagree on the octets"
        assert codec.decode_asdu(raw) == ours
        decoded, rest = hat.decode_asdu(raw)
        assert decoded == theirs and not rest
        for op, mine, other in (
                ("encode", lambda a=ours: codec.encode_asdu(a),
                 lambda a=theirs: hat.encode_asdu(a)),
                ("decode", lambda r=raw: codec.decode_asdu(r),
                 lambda r=raw: hat.decode_asdu(r))):
            ours_rate = rate(mine, repeat, min_time)
            hat_rate = rate(other, repeat, min_time)
            rows.append({"case": name, "op": op, "octets": len(raw), "iec104": ours_rate,
                         "hat": hat_rate, "ratio": ours_rate / hat_rate})
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        from importlib.metadata import version
        hat_version = version("hat-drivers")
    except Exception:  # noqa: BLE001 - informational only
        hat_version = "?"
    return (f"{cpu}, {os.cpu_count()} CPUs; {platform.python_implementation()} "
            f"{platform.python_version()}; {platform.system()} {platform.release()}; "
            f"hat-drivers {hat_version}; {dt.date.today().isoformat()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--json", action="store_true", help="print JSON rows instead")
    args = parser.parse_args()
    rows = run(args.repeat, args.min_time)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))
        return
    print(machine())
    print()
    print(f"| {'ASDU':<20} | {'op':<6} | {'octets':>6} | {'iec104 ASDU/s':>13} | "
          f"{'hat ASDU/s':>11} | {'iec104/hat':>10} |")
    print(f"|{'-' * 22}|{'-' * 8}|{'-' * 7}:|{'-' * 14}:|{'-' * 12}:|{'-' * 11}:|")
    for r in rows:
        print(f"| {r['case']:<20} | {r['op']:<6} | {r['octets']:>6} | {r['iec104']:>13,.0f} | "
              f"{r['hat']:>11,.0f} | {r['ratio']:>9.2f}x |")


if __name__ == "__main__":
    main()
