"""``iec104 read``'s one-line formatter alone: the block formatter against the one it replaced.

The capture is dissected once into the batches ``read`` formats (8,192 rows); then, in the
same process and alternating, each formatter turns every batch into the octets ``read``
writes: the old one (``tests/support/oneline_v1.py``: Arrow kernels, a Python string per
line, joined and encoded) and ``iec104.cli.oneline.batch_text`` (one block per batch). Both
outputs are checked to be byte-identical first. CPU seconds (``time.process_time``, the
least of ``--repeat`` runs) per formatter, per time mode, and their ratio.

Usage::

    python bench/oneline.py CAPTURE [--repeat 3] [--modes a,e,r]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support


def main(argv: list[str] | None = None) -> int:
    import pyarrow as pa

    from iec104.cli.oneline import batch_text
    from iec104.dissector import dissect
    from tests.support import oneline_v1

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("capture", type=Path)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--modes", default="a,e,r")
    args = p.parse_args(argv)
    batches = list(dissect(args.capture, batch_rows=8192))
    rows = sum(b.num_rows for b in batches)
    t0 = pa.concat_arrays([b.column("time") for b in batches]).drop_null()[0].value

    def old(mode: str) -> bytes:
        return b"".join(("\n".join(lines) + "\n").encode()
                        for b in batches if (lines := oneline_v1.batch_lines(b, mode, t0)))

    def new(mode: str) -> bytes:
        return b"".join(bytes(batch_text(b, mode, t0)[0]) for b in batches)

    print(f"{args.capture.name}: {len(batches)} batches, {rows:,} rows; CPU seconds, least "
          f"of {args.repeat}")
    print("| time mode | lines | old formatter CPU s | block formatter CPU s | old / new |")
    print("|---|---:|---:|---:|---:|")
    for mode in args.modes.split(","):
        expected = old(mode)
        assert new(mode) == expected, f"outputs differ (-t {mode})"
        best = {"old": float("inf"), "new": float("inf")}
        for _ in range(args.repeat):
            for name, fn in (("old", old), ("new", new)):
                started = time.process_time()
                fn(mode)
                best[name] = min(best[name], time.process_time() - started)
        lines = expected.count(b"\n")
        print(f"| {mode} | {lines:,} | {best['old']:.3f} | {best['new']:.3f} "
              f"| {best['old'] / best['new']:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
