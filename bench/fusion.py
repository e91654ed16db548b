"""The fusion experiment of chapter 5: five fusion families x seeds, one budget (issue 5).

Every family reads the same frozen region features (a CNN grid trained once to name each cell's
object) and trains for the same steps, batch and learning rate on the course's one loop
(`minivlm.train.train`); each is scored on test images against three minimal-edit negatives
(colour, binding, relation). Prints a table of mean ± std over seeds and writes
bench/results/fusion.json, which notebooks/05_fusion.ipynb displays.

Run: python bench/fusion.py [--seeds 0 1 2] [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from minivlm.files import atomic_write_text
from minivlm.matching import FAMILIES, NEGATIVE_KINDS, run_fusion_experiment

OUT = Path(__file__).parent / "results" / "fusion.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--region-steps", type=int, default=800)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=600)
    args = parser.parse_args()
    t0 = time.perf_counter()
    results, region_acc = run_fusion_experiment(
        seeds=tuple(args.seeds), steps=args.steps, n_train=args.n_train, n_test=args.n_test,
        region_steps=args.region_steps,
    )  # fmt: skip
    total = time.perf_counter() - t0
    budget = (
        f"{args.steps} steps x 32 images x 5 texts (ranking), d=64, 2 layers; minivlm.train: "
        "AdamW 1e-3, 10% warm-up then cosine to 0, clip 1.0"
    )
    print(f"region encoder: {args.region_steps} steps, cell accuracy {region_acc:.3f} (test)")
    print(f"budget per family: {budget}; seeds {args.seeds}")
    print(f"data: {args.n_train} train / {args.n_test} test scenes")
    print(f"{'family':16} " + " ".join(f"{k:>13}" for k in NEGATIVE_KINDS) + f" {'s/run':>7}")
    for fam in FAMILIES:
        runs = [r for r in results if r["family"] == fam]
        cells = []
        for k in NEGATIVE_KINDS:
            vals = [r[k] for r in runs]
            spread = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):>7.3f} ± {spread:.3f}")
        secs = statistics.mean(r["seconds"] for r in runs)
        print(f"{fam:16} " + " ".join(cells) + f" {secs:>7.1f}")
    print(f"total {total:.0f} s")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    argv = [f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()]  # fmt: skip
    report = {
        "command": "python bench/fusion.py " + " ".join(argv),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch "
        + torch.__version__,
        "budget": budget,
        "seeds": args.seeds,
        "families": list(FAMILIES),
        "region_accuracy": region_acc,
        "results": results,
        "total_seconds": total,
    }
    atomic_write_text(OUT, json.dumps(report, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
