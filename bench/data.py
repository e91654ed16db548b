"""How fast the shapes world renders: images per second at 32, 64 and 128 px, on one core.

The goal (issue 2) is that data never holds training back: at least 5,000 images/s at 64x64 on
one core. Writes bench/results/data.json: one row {size, images_per_s (the median),
best_images_per_s, rates (every batch, sorted)} per size.

Run: python bench/data.py [--n 4000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, write_results  # noqa: E402
from minivlm.data import make_scenes, render  # noqa: E402

GOAL_64 = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="images per timed batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per size (best kept)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, honestly
    t0 = time.perf_counter()
    scenes = make_scenes("train", args.n)
    sample_s = time.perf_counter() - t0
    print(f"sampling {args.n} scenes: {args.n / sample_s:,.0f} scenes/s (done once per data set)")
    print(f"{'size':>6} {'images/s (best)':>16} {'images/s (median)':>18}")
    results = []
    for size in (32, 64, 128):
        render(scenes[:200], size)  # warm up
        rates = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            render(scenes, size, seed=r)
            rates.append(args.n / (time.perf_counter() - t0))
        rates.sort()
        print(f"{size:>6} {rates[-1]:>16,.0f} {rates[len(rates) // 2]:>18,.0f}")
        results.append({"size": size, "images_per_s": rates[len(rates) // 2],
                        "best_images_per_s": rates[-1], "rates": rates})  # fmt: skip
        if size == 64:
            median64 = rates[len(rates) // 2]
    verdict = "meets" if median64 >= GOAL_64 else "MISSES"
    ratio = median64 / GOAL_64
    print(f"64 px median {median64:,.0f} images/s: {ratio:.2f}x the goal ({verdict} {GOAL_64:,})")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    write_results("data", command("data.py", args), results, cores=cores, images=args.n,
                  repeats=args.repeats, scenes_per_s=args.n / sample_s,
                  goal_64=GOAL_64)  # fmt: skip


if __name__ == "__main__":
    main()
