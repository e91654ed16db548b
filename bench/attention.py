"""Forward + backward time of a minivlm encoder stack against nn.TransformerEncoder (issue 4).

Both stacks hold identical weights (copied) and see the same batch with a padding mask. Runs
are interleaved (A, B, A, B, ...) so that the noise of a shared machine hits both alike; the
median of each is reported. The goal: minivlm with the fast path at most 1.1x the reference.
The from-scratch path (fast=False, the maths written out) is timed too, for its cost.
Writes bench/results/attention.json: one row {size, batch, tokens, d_model, heads, layers,
reference_ms, fast_ms, fast_ratio, scratch_ms, scratch_ratio} per size (medians).

Run: python bench/attention.py [--rounds 30] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, write_results  # noqa: E402
from minivlm.transformer import Encoder  # noqa: E402

# (name, d_model, heads, layers, batch, tokens): the capstone's size, and one larger
SIZES = [
    ("capstone", 128, 4, 4, 64, 40),
    ("larger", 256, 8, 4, 32, 128),
]


def step(model, x, mask, is_ref: bool) -> float:
    t0 = time.perf_counter()
    out = model(x, src_key_padding_mask=~mask) if is_ref else model(x, key_mask=mask)[0]
    out.square().mean().backward()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, fwd+bwd, median of {args.rounds}")
    header = (
        "size",
        "shape (B,T,D) x L",
        "reference ms",
        "fast ms",
        "ratio",
        "scratch ms",
        "ratio",
    )
    print("{:>9} {:>20} {:>13} {:>9} {:>6} {:>11} {:>6}".format(*header))
    results = []
    for name, d, h, n_layers, B, T in SIZES:
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(
            d, h, 4 * d, 0.0, "gelu", batch_first=True, norm_first=True
        )
        ref = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        fast = Encoder(n_layers, d, h, 4 * d, norm_first=True, fast=True)
        scratch = Encoder(n_layers, d, h, 4 * d, norm_first=True, fast=False)
        fast.load_from_torch(ref)
        scratch.load_from_torch(ref)
        x = torch.randn(B, T, d)
        mask = torch.ones(B, T, dtype=torch.bool)
        mask[B // 2 :, T * 3 // 4 :] = False  # half the batch is padded
        with torch.no_grad():
            diff = (
                (fast(x, key_mask=mask)[0] - ref(x, src_key_padding_mask=~mask))[mask].abs().max()
            )
        assert diff < 1e-4, f"outputs differ by {diff}"
        times = {"ref": [], "fast": [], "scratch": []}
        models = {"ref": ref, "fast": fast, "scratch": scratch}
        for r in range(args.rounds + 3):
            for key in ("ref", "fast", "scratch") if r % 2 else ("scratch", "fast", "ref"):
                t = step(models[key], x, mask, key == "ref")
                if r >= 3:  # the first rounds warm up allocators and caches
                    times[key].append(t)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        shape = f"({B},{T},{d}) x {n_layers}"
        ratio_fast, ratio_scratch = med["fast"] / med["ref"], med["scratch"] / med["ref"]
        print(
            f"{name:>9} {shape:>20} {med['ref']:>13.2f} {med['fast']:>9.2f} {ratio_fast:>5.2f}x "
            f"{med['scratch']:>11.2f} {ratio_scratch:>5.2f}x"
        )
        results.append({
            "size": name, "batch": B, "tokens": T, "d_model": d, "heads": h, "layers": n_layers,
            "reference_ms": med["ref"], "fast_ms": med["fast"], "fast_ratio": ratio_fast,
            "scratch_ms": med["scratch"], "scratch_ratio": ratio_scratch,
        })  # fmt: skip
    write_results("attention", command("attention.py", args), results, rounds=args.rounds)


if __name__ == "__main__":
    main()
