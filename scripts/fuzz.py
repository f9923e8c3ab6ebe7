"""The long fuzz run: millions of seeded cases through codec, framer, dissector, filter, CLI.

Usage::

    python scripts/fuzz.py                      # 1,000,000 cases, seed 1, 2 processes
    python scripts/fuzz.py --cases 20000 --seed 7 --jobs 1
    python scripts/fuzz.py --replay dissect 1 4711   # one case again, with its traceback

The cases are those of :mod:`tests.support.fuzz` (the test suite runs a bounded sample of
them in ``tests/test_fuzz.py``), split over the targets in fixed shares and over ``--jobs``
processes by case index, so a run is the same whatever the number of processes. It prints
per target the cases, the documented outcomes and the crashes (with the ``--replay``
arguments), then the wall time and the peak RSS of the largest process, and exits 1 if
anything crashed. Needs the test extra (``pip install -e '.[test]'``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import fuzz  # after the path is set

SHARES = {"codec": 0.6, "framer": 0.2, "dissect": 0.1, "ipfrag": 0.02, "filter": 0.075,
          "cli": 0.005}
"""Fractions of the cases per target (the slow targets get fewer)."""


def _part(target: str, seed: int, start: int, cases: int) -> tuple[fuzz.Result, int]:
    result = fuzz.run(target, seed, cases, start=start)
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=1_000_000, help="total cases (default 1M)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    p.add_argument("--targets", default=",".join(SHARES),
                   help=f"comma-separated subset of {', '.join(SHARES)}")
    p.add_argument("--replay", nargs=3, metavar=("TARGET", "SEED", "INDEX"),
                   help="run one case again and show its traceback")
    args = p.parse_args(argv)
    if args.replay:
        target, seed, index = args.replay
        print(fuzz.replay(target, int(seed), int(index)))
        return 0
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    total_share = sum(SHARES[t] for t in targets)
    plan = {t: max(1, round(args.cases * SHARES[t] / total_share)) for t in targets}
    started = time.monotonic()
    merged = fuzz.Result()
    peak_kib = 0
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = []
        for target, cases in plan.items():
            step = -(-cases // (max(1, args.jobs) * 4))  # a few parts per process
            for start in range(0, cases, step):
                futures.append(pool.submit(_part, target, args.seed, start,
                                           min(step, cases - start)))
        for future in futures:
            result, rss = future.result()
            merged.cases.update(result.cases)
            merged.outcomes.update(result.outcomes)
            merged.crashes += result.crashes
            peak_kib = max(peak_kib, rss)
    elapsed = time.monotonic() - started
    print(f"{'target':8} {'cases':>9} {'crashes':>7}  outcomes")
    for target in targets:
        outcomes = ", ".join(f"{o} {n}" for (t, o), n in sorted(merged.outcomes.items())
                             if t == target)
        crashes = sum(1 for c in merged.crashes if c[0] == target)
        print(f"{target:8} {merged.cases[target]:>9,} {crashes:>7}  {outcomes}")
    print(f"{'total':8} {sum(merged.cases.values()):>9,} {len(merged.crashes):>7}  "
          f"seed {args.seed}, {args.jobs} process(es), {elapsed:.0f} s, "
          f"peak RSS {peak_kib / 1024:.0f} MB (largest process)")
    for target, seed, index, error in merged.crashes[:50]:
        print(f"crash: --replay {target} {seed} {index}: {error}")
    return 1 if merged.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
