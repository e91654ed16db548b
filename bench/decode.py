"""KV-cache speed-up of caption decoding over recomputation (issue 6).

Greedy decoding of exactly L words (EOS ignored, so both write the same number) with the cache
and without it (the whole prefix recomputed each step), interleaved in one run; median of the
repeats. The two must produce identical captions. Goal: at least 3x at L = 32.

Two batch sizes: 64 captions at once (evaluating a test set) and 8. With few rows each step is
bound by reading the weights, which the cache does not save, so its gain is smaller there.

Writes bench/results/decode.json: one row {batch, length, cache_ms, recompute_ms, speedup, run}
per line printed (medians). --runs N repeats the whole table N times in one process (run 1..N),
to show how far two runs of it differ.

Run: python bench/decode.py [--repeats 3] [--batches 64 8] [--runs 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, write_results  # noqa: E402
from minivlm.captioner import CaptionDecoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 8])
    parser.add_argument("--runs", type=int, default=1, help="times the whole table is measured")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = CaptionDecoder(vocab_size=1000, d_model=256, n_heads=8, n_layers=4, max_len=80).eval()
    print(f"decoder d=256, 4 layers, 8 heads, 16 image tokens (a 4x4 CNN grid); "
          f"{torch.get_num_threads()} threads; median of {args.repeats}")  # fmt: skip
    print(f"{'batch':>5} {'length':>6} {'recompute ms':>13} {'KV cache ms':>12} {'speed-up':>9}")
    results = []
    for run in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"run {run} of {args.runs}")
        for batch, length in [(b, n) for b in args.batches for n in (16, 32, 64)]:
            image = torch.randn(batch, 16, 256)
            runs = {True: [], False: []}
            outs = {}
            for r in range(args.repeats + 1):
                for cache in (True, False) if r % 2 else (False, True):
                    t0 = time.perf_counter()
                    outs[cache] = model.generate(
                        image, max_new=length, use_cache=cache, stop_at_eos=False
                    )
                    if r:  # round 0 warms up
                        runs[cache].append(time.perf_counter() - t0)
            assert torch.equal(outs[True], outs[False]), "cache and recomputation disagree"
            slow, fast = (statistics.median(runs[c]) * 1e3 for c in (False, True))
            print(f"{batch:>5} {length:>6} {slow:>13.1f} {fast:>12.1f} {slow / fast:>8.1f}x")
            results.append({"batch": batch, "length": length, "cache_ms": fast,
                            "recompute_ms": slow, "speedup": slow / fast, "run": run})  # fmt: skip
    write_results("decode", command("decode.py", args), results, repeats=args.repeats,
                  model={"d_model": 256, "layers": 4, "heads": 8, "image_tokens": 16})  # fmt: skip


if __name__ == "__main__":
    main()
