"""Chapter 8's time budget, judged on a machine that may be slower on the day (chapter 8).

    python bench/budget.py [--preset quick] [--repeats 5] [--steps 20] [--threads 2]

Chapter 8's own run (the quick preset) should train in at most 90 s on this 2-core CPU. The
budget was set on a day when the cpu preset cut to 2,400 caption steps (its 200 pretraining
steps kept) trained in 157 s, 2 threads, seed 0: the reference run. A shared machine is not
equally fast every day, so a wall time measured on another day says little. This script times,
in turns in one process, a training step of each stage of the preset and of the reference run
(bench/capstone.py's `steps_in_turns`: the median of --repeats turns), and scales:

    reference today = 200 x (cpu pretraining step) + 2,400 x (cpu caption step)
    preset today    = its pretraining steps x its step + its caption steps x its step
    on the budget's day = 157 s x preset today / reference today

Writes bench/results/budget.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.capstone import steps_in_turns  # noqa: E402
from bench.common import command, write_results  # noqa: E402
from minivlm.capstone import datasets, override, preset  # noqa: E402

BUDGET_SECONDS = 90.0  # chapter 8's own run, on the budget's day
# the reference run, as measured on the day the budget was set (2 threads, seed 0)
REFERENCE = {"preset": "cpu", "pretrain_steps": 200, "caption_steps": 2400, "seconds": 157.0}
STAGES = ("pretrain", "caption")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ref = REFERENCE
    configs = {
        args.preset: preset(args.preset, progress=False),
        "reference": preset(ref["preset"], progress=False, pretrain_steps=ref["pretrain_steps"],
                            caption_steps=ref["caption_steps"]),
    }  # fmt: skip
    data = datasets(override(configs[args.preset], n_alt=2_000, n_captioned=2_000, n_test=10,
                             n_comp=10))  # fmt: skip
    seconds_per_step = steps_in_turns(configs, data, STAGES, args.steps, args.repeats)
    ms = {k: 1e3 * v for k, v in seconds_per_step.items()}
    steps = {n: {k: getattr(c.schedule, f"{k}_steps") for k in STAGES} for n, c in configs.items()}
    seconds = {n: sum(steps[n][k] * seconds_per_step[n, k] for k in STAGES) for n in configs}
    ratio = seconds[args.preset] / seconds["reference"]
    results = {
        "step_ms": {name: {k: ms[name, k] for k in STAGES} for name in configs},
        "steps": steps,
        "seconds_today": seconds,
        "ratio": ratio,
        "reference_seconds": ref["seconds"],
        "budget_day_seconds": ratio * ref["seconds"],
        "budget_seconds": BUDGET_SECONDS,
    }
    for name in configs:
        print(f"{name:>10}: pretraining {ms[name, 'pretrain']:6.1f} ms x "
              f"{steps[name]['pretrain']}, caption {ms[name, 'caption']:5.1f} ms x "
              f"{steps[name]['caption']} = {seconds[name]:6.1f} s today")  # fmt: skip
    print(f"{args.preset} takes {ratio:.2f} of the reference run's time: "
          f"{ratio * ref['seconds']:.0f} s on the budget's day, when the reference took "
          f"{ref['seconds']:.0f} s (budget {BUDGET_SECONDS:.0f} s)")  # fmt: skip
    write_results("budget", command("budget.py", args), results, preset=args.preset)


if __name__ == "__main__":
    main()
