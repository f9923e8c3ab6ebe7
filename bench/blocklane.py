"""The dissector's block lane against the packet-by-packet lane and the event path, same run.

``dissect_packets`` (what ``dissect`` and ``iec104 convert`` run in one process) has three
ways through a capture, which give the same batches (``tests/dissect/test_fast_lane.py``):

* ``block=0``: every packet through the reassembly events (the reference);
* ``runs=False``: the fast lane packet by packet (``decode_plain_tcp`` + ``Reassembler.
  in_order`` per packet, the payloads framed and recorded per block);
* ``runs=True`` (the default): the block lane (``iec104/capture/blocks.py``): pcap records
  read a block at a time, headers decoded by column, runs of in-order packets taken at once.

This script times ``dissect`` alone (no Parquet) each way on the same capture, alternating,
in one process, and prints CPU seconds (``time.process_time``) and the same run's ratios; it
checks first that the three give the same rows.

Usage::

    python bench/blocklane.py                       # bench/dissect.py's 600k-APDU capture
    python bench/blocklane.py --capture X.pcap --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa

from iec104.capture.reader import CaptureReader
from iec104.capture.reassembly import Reassembler
from iec104.dissector import DEFAULT_BLOCK, dissect_packets

WAYS = {"event path (block=0)": (0, False),
        "fast lane, packet by packet (runs=False)": (DEFAULT_BLOCK, False),
        "block lane (runs=True)": (DEFAULT_BLOCK, True)}


def run(path: Path, block: int, runs: bool, keep: bool = False) -> pa.Table | int:
    with CaptureReader(path) as reader:
        batches = dissect_packets([(reader, 0, None)], Reassembler(), block=block, runs=runs)
        if keep:
            return pa.Table.from_batches(list(batches))
        return sum(b.num_rows for b in batches)


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

    tables = [run(path, block, runs, keep=True) for block, runs in WAYS.values()]
    if not all(t.equals(tables[0]) for t in tables[1:]):  # type: ignore[union-attr]
        print("blocklane: the three ways gave different rows")
        return 1
    rows = tables[0].num_rows  # type: ignore[union-attr]
    del tables
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(args.repeat):
        for name, (block, runs) in WAYS.items():
            t = time.process_time()
            run(path, block, runs)
            times[name].append(time.process_time() - t)
    print(f"{path.name}: {rows:,} rows; dissect() CPU s, {args.repeat} alternating runs")
    lane = min(times["block lane (runs=True)"])
    for name, secs in times.items():
        print(f"  {name:42s} {', '.join(f'{s:.2f}' for s in secs)}  "
              f"(least {min(secs):.2f}; block lane / this {lane / min(secs):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
