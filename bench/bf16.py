"""bf16 autocast against fp32 on the same capstone training steps (chapter 8; issue 24).

    python bench/bf16.py --out runs/gpu_check/bf16.json [--preset gpu] [--device cuda] [--steps 50]

For stage 1's pretraining step and stage 2's caption step of the preset's model, trains a fresh
model (same seed, same batches, same in-step random numbers) for --warmup + --steps steps of the
course's own loop (`minivlm.train.train`), once in fp32 and once under bf16 autocast, and records
the milliseconds per step after the warm-up, their ratio (bf16 / fp32: below 1 is a speed-up)
and the loss after the last step both ways. `train` turns autocast on for CUDA only, so on a CPU
both arms run fp32 and each row says so in `autocast`: that is bench/gpu_check.py's dry run, not
a measurement. Writes --out only, never bench/results/ (bench/gpu_check.py copies the rows into
gpu.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.capstone import stage_model  # noqa: E402
from minivlm.__main__ import parse_sets  # noqa: E402
from minivlm.capstone import CapstoneConfig, datasets, override, preset  # noqa: E402
from minivlm.capstone.stages import stage_config  # noqa: E402
from minivlm.files import atomic_write_text  # noqa: E402
from minivlm.train import train  # noqa: E402

STAGES = ("pretrain", "caption")


def one_arm(
    cfg: CapstoneConfig, data: dict, key: str, device: str, amp: bool, warmup: int, steps: int
) -> tuple[float, float]:
    """(ms per step after `warmup` steps, loss at the last step) of a fresh model of a stage."""
    model, batches = stage_model(cfg, data, key)  # seeded: both arms start from the same weights
    loop = replace(stage_config(cfg, key, warmup + steps), log_every=1, amp=amp, progress=False)
    log = train(model, batches, loop, device=device)  # each step's loss.item() syncs the GPU
    ms = 1e3 * (log[-1]["time"] - log[warmup - 1]["time"]) / steps
    return ms, log[-1]["loss"]


def compare(cfg: CapstoneConfig, data: dict, key: str, device: str, warmup: int, steps: int):
    """One row: fp32 and bf16 autocast on the same steps of one stage."""
    fp32_ms, fp32_loss = one_arm(cfg, data, key, device, False, warmup, steps)
    bf16_ms, bf16_loss = one_arm(cfg, data, key, device, True, warmup, steps)
    cuda = torch.device(device).type == "cuda"
    return {
        "stage": key, "steps": steps, "warmup": warmup, "batch": cfg.schedule.batch,
        "fp32_ms": fp32_ms, "bf16_ms": bf16_ms, "ratio": bf16_ms / fp32_ms,
        "fp32_loss": fp32_loss, "bf16_loss": bf16_loss,
        "autocast": "bf16" if cuda else "none: train() autocasts on CUDA only; both arms fp32",
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the JSON file to write")
    p.add_argument("--preset", default="gpu", help="the capstone preset whose model is timed")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=50, help="timed steps per arm")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (>= 1)")
    p.add_argument("--n", type=int, default=2000, help="scenes in the splits the batches draw")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = p.parse_args()
    if args.warmup < 1 or args.steps < 1:
        p.error("--warmup and --steps must be >= 1")
    cfg = override(preset(args.preset), progress=False, **parse_sets(args.set))
    data = datasets(override(cfg, n_alt=args.n, n_captioned=args.n, n_test=10, n_comp=10))
    rows = []
    for key in STAGES:
        r = compare(cfg, data, key, args.device, args.warmup, args.steps)
        rows.append(r)
        print(f"{key:>8}: fp32 {r['fp32_ms']:.1f} ms/step, bf16 {r['bf16_ms']:.1f} ms/step "
              f"(x{r['ratio']:.2f}); loss {r['fp32_loss']:.4f} / {r['bf16_loss']:.4f}",
              flush=True)  # fmt: skip
    model = asdict(cfg.model)
    report = {"device": args.device, "preset": args.preset, "model": model, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
