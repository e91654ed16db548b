"""What does stage 1 teach? Probe the multimodal stack while it pretrains (chapter 8).

    python bench/pretrain_probe.py [--steps 1200] [--every 200] [--threads 1]

Trains the capstone's `Pretrainer` (ITC + ITM + MLM + LM) on the ci preset's alt-texts and,
every --every steps, runs `attribute_probe` on 300 held-out test scenes: reading the canonical
caption word by word, does the stack's best size, colour and shape word name the object the
caption is describing? Scores are split by the number of objects in the scene. The rows are
written to bench/results/pretrain_probe.json.

The low-caption regime hangs on this: a lone object is named from alt-text alone, but in a
scene of two or three, the alt-text never says in which order to describe them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minivlm.capstone import (  # noqa: E402
    Batches,
    Pretrainer,
    attribute_probe,
    datasets,
    preset,
    stage_config,
)
from minivlm.capstone.stages import stage_seed  # noqa: E402
from minivlm.data import CaptionTokenizer  # noqa: E402
from minivlm.files import atomic_write_text  # noqa: E402
from minivlm.train import train  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "pretrain_probe.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = preset("ci", seed=args.seed, progress=False)
    tok = CaptionTokenizer.shapes_world()
    data = datasets(cfg)
    torch.manual_seed(cfg.seed)
    pre = Pretrainer(cfg.model, cfg.schedule, tok)
    rows = []
    t0 = time.perf_counter()

    def probe(model: Pretrainer, step: int) -> dict[str, float]:
        p = attribute_probe(model, data["test"], tok)
        rows.append({"step": step, "seconds": time.perf_counter() - t0, "probe": p})
        print(
            f"step {step:>5} ({rows[-1]['seconds']:4.0f} s)  "
            + "  ".join(
                f"{n} obj: " + " ".join(f"{k} {v:.2f}" for k, v in kinds.items())
                for n, kinds in p.items()
            ),
            flush=True,
        )
        return {f"{k}{n}": v for n, kinds in p.items() for k, v in kinds.items()}

    probe(pre, 0)
    tc = replace(stage_config(cfg, "pretrain", args.steps), eval_every=args.every)
    batches = Batches(data["alt"], tok, cfg.schedule.batch, stage_seed(cfg, "pretrain"))
    train(pre, batches, tc, evaluate=probe)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        RESULTS,
        json.dumps(
            {
                "config": {"preset": "ci", "steps": args.steps, "seed": args.seed},
                "threads": args.threads,
                "machine": {"cpu": platform.processor() or platform.machine()},
                "torch": torch.__version__,
                "rows": rows,
            },
            indent=1,
        ),
    )


if __name__ == "__main__":
    main()
