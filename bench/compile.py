"""Does `torch.compile` pay for the capstone's caption training on this machine? (chapter 8)

    python bench/compile.py [--steps 300] [--threads 2] [--device cpu]

Trains the cpu preset's captioner (stage 2 only, 2,000 captioned scenes) for --steps steps,
eager and then compiled, from the same seed, and prints for each: the total time (compilation
included) and the time per step over the last 100 steps, when compilation is long done.
Writes bench/results/compile.json: {eager_total_s, compiled_total_s, eager_ms_per_step,
compiled_ms_per_step, ratio (eager / compiled per step: above 1, compiling pays), steps, ...}.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, write_results  # noqa: E402
from minivlm.capstone import Batches, Captioner, Pretrainer, preset, stage_config  # noqa: E402
from minivlm.data import CaptionTokenizer, ShapesCaptions  # noqa: E402
from minivlm.train import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.steps < 200:
        raise SystemExit(f"--steps must be at least 200 (the last 100 are timed), got {args.steps}")
    torch.set_num_threads(args.threads)
    cfg = preset("cpu", progress=False, device=args.device)
    tok = CaptionTokenizer.shapes_world()
    data = ShapesCaptions("train", 2000, size=cfg.model.image_size, seed=100)
    times, totals, losses = {}, {}, {}
    for compiled in (False, True):
        torch.manual_seed(0)
        pre = Pretrainer(cfg.model, cfg.schedule, tok)
        model = Captioner.from_pretrainer(pre, cfg.schedule.colour_noise)
        tc = replace(stage_config(cfg, "caption", args.steps), compile=compiled, log_every=50)
        t0 = time.perf_counter()
        batches = Batches(data, tok, cfg.schedule.batch, 1)
        log = train(model, batches, tc, device=torch.device(args.device))
        total = time.perf_counter() - t0
        at = {r["step"]: r["time"] for r in log if "time" in r}
        per_step = (at[args.steps] - at[args.steps - 100]) / 100
        times[compiled], totals[compiled], losses[compiled] = per_step, total, log[-1]["loss"]
        print(
            f"{'compiled' if compiled else 'eager':>8}: {total:6.1f} s in all, "
            f"{1000 * per_step:5.1f} ms/step over steps {args.steps - 100}-{args.steps}, "
            f"final loss {log[-1]['loss']:.3f}",
            flush=True,
        )
    print(f"steady-state speed-up from torch.compile: {times[False] / times[True]:.2f}x")
    results = {
        "eager_total_s": totals[False], "compiled_total_s": totals[True],
        "eager_ms_per_step": 1000 * times[False], "compiled_ms_per_step": 1000 * times[True],
        "ratio": times[False] / times[True], "steps": args.steps, "timed_steps": 100,
        "eager_final_loss": losses[False], "compiled_final_loss": losses[True],
    }  # fmt: skip
    write_results("compile", command("compile.py", args), results, device=args.device)


if __name__ == "__main__":
    main()
