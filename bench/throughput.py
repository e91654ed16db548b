"""How much of this CPU's fp32 matmul peak a capstone training step uses (chapter 8).

    python bench/throughput.py [--preset cpu] [--steps 30] [--threads 0]

For each stage of the preset (stage 1's pretraining step, stage 2's caption step), counts the
floating-point operations of one training step (forward and backward) with torch's
`FlopCounterMode`, times the step over --steps steps of the course's own loop (after 10 warm-up
steps, as bench/capstone.py's `step_seconds` does), and divides the achieved GFLOP/s by the
peak of a 1024 x 1024 fp32 matmul timed just before and after that stage. A small model
spends its time in small matmuls, elementwise ops and the optimizer, so the share is well
below 1; raising it is how a run trains more in the same wall time. It also times one AdamW
update of the stage's weights both ways: fused (what the stages use) and as torch's loop over
the tensors. With a preset whose encoder keeps only some cells (`keep_cells`, the quick
preset), it also times the step against the same step with every cell, in turns.

Writes bench/results/throughput.json (the cpu preset) or throughput_<preset>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.capstone import stage_model, step_seconds, steps_in_turns  # noqa: E402
from bench.common import command, write_results  # noqa: E402
from minivlm.capstone import datasets, override, preset  # noqa: E402
from minivlm.capstone.stages import stage_config  # noqa: E402
from minivlm.train import make_optimizer, train  # noqa: E402

STAGES = ("pretrain", "caption")


def matmul_peak(n: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of an n x n fp32 matmul: 2 n^3 operations in the fastest of `repeats` (a peak
    is the best the machine does; a shared machine's load only slows some repeats)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def step_flops(cfg, data: dict, key: str) -> float:
    """Floating-point operations of one training step of a stage (forward + backward)."""
    model, batches = stage_model(cfg, data, key)
    train(model, batches, replace(stage_config(cfg, key, 1), log_every=0))  # allocators warm
    with FlopCounterMode(display=False) as counter:
        train(model, batches, replace(stage_config(cfg, key, 1), log_every=0))
    return float(counter.get_total_flops())


def optimizer_ms(cfg, data: dict, key: str, steps: int = 20, repeats: int = 5) -> dict:
    """Milliseconds of one AdamW update of a stage's weights: torch's loop over the tensors
    against the fused kernel that the capstone's stages use (`TrainConfig.fused`), timed in
    turns so that a shared machine's load hits both; the median of `repeats` turns each."""
    model, _ = stage_model(cfg, data, key)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opts = {
        name: make_optimizer(model, replace(stage_config(cfg, key, 1), fused=fused))
        for name, fused in (("loop", False), ("fused", True))
    }
    times: dict[str, list[float]] = {name: [] for name in opts}
    for _ in range(repeats):
        for name, opt in opts.items():
            opt.step()  # warm
            t0 = time.perf_counter()
            for _ in range(steps):
                opt.step()
            times[name].append(1e3 * (time.perf_counter() - t0) / steps)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def cells_ms(cfg, data: dict, key: str, steps: int = 10, repeats: int = 5) -> dict:
    """Milliseconds of one training step of a stage whose encoder keeps `keep_cells` cells,
    against the same step with every cell: `step_seconds` of each in turns, the median of
    `repeats` turns each."""
    runs = {"kept": cfg, "all": override(cfg, keep_cells=0)}
    seconds = steps_in_turns(runs, data, (key,), steps, repeats)
    return {name: 1e3 * seconds[name, key] for name in runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = preset(args.preset, progress=False)
    data = datasets(override(cfg, n_alt=2_000, n_captioned=2_000, n_test=10, n_comp=10))
    rows = []
    for key in STAGES:
        flops = step_flops(cfg, data, key)
        before = matmul_peak()
        seconds = step_seconds(cfg, data, key, args.steps)
        peak = max(before, matmul_peak())  # timed around the stage, in the same run
        achieved = flops / seconds / 1e9
        share = achieved / peak
        opt = optimizer_ms(cfg, data, key)
        rows.append({"stage": key, "gflop_per_step": flops / 1e9, "step_ms": 1e3 * seconds,
                     "gflops": achieved, "peak_gflops": peak, "share": share,
                     "optimizer_ms": opt})  # fmt: skip
        print(f"{key:>8}: {flops / 1e9:6.2f} GFLOP per step in {1e3 * seconds:6.1f} ms = "
              f"{achieved:6.1f} GFLOP/s, {share:.0%} of the matmul peak; AdamW "
              f"{opt['fused']:.2f} ms fused, {opt['loop']:.2f} ms as a loop over the tensors "
              f"({opt['loop'] / opt['fused']:.1f}x)", flush=True)  # fmt: skip
        if cfg.model.keep_cells:
            rows[-1]["cells_ms"] = cells = cells_ms(cfg, data, key)
            print(f"{'':>8}  a step reading {cfg.model.keep_cells} cells of each pathway: "
                  f"{cells['kept']:.1f} ms, every cell: {cells['all']:.1f} ms "
                  f"({cells['all'] / cells['kept']:.2f}x)", flush=True)  # fmt: skip
    print(f"fp32 matmul peak (1024 x 1024): {max(r['peak_gflops'] for r in rows):.1f} GFLOP/s, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    name = "throughput" if args.preset == "cpu" else f"throughput_{args.preset}"
    write_results(name, command("throughput.py", args), rows, preset=args.preset)


if __name__ == "__main__":
    main()
