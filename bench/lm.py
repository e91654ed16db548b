"""Pretrain chapter 10's language model on text alone and measure what it learned.

    python bench/lm.py --steps 600 --seeds 0 --name-held-out true false --threads 1

For each seed and each corpus (one that names the held-out colour-shape pairs, one that never
does): the held-out perplexity curve, the training seconds, and, given a scene's true caption
as text, how often greedy decoding answers right, per question kind, on chapter 9's test
questions and on its compositional ones (every one names a held-out pair). `pair_ppl` is the
perplexity of held-out texts that name a held-out pair: a corpus that never named one finds
them far less likely. Writes bench/results/lm.json, or --out instead (a short run, e.g.
bench/gpu_check.py's `--steps 200 --device cuda`, leaves lm.json as it is).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, write_results  # noqa: E402
from minivlm.data.corpus import TextCorpus, named_pairs  # noqa: E402
from minivlm.data.splits import HELD_OUT_PAIRS  # noqa: E402
from minivlm.lm import PretrainConfig, answer_accuracy, perplexity, pretrain_lm  # noqa: E402
from minivlm.train import TrainConfig  # noqa: E402


def pair_texts(n: int, seed: int) -> list[str]:
    """n held-out texts (the val stream) that name a held-out pair."""
    out: list[str] = []
    corpus, i = TextCorpus(seed=seed, name_held_out=True, stream="val"), 0
    while len(out) < n:
        text = corpus[i].text
        if named_pairs(text) & HELD_OUT_PAIRS:
            out.append(text)
        i += 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--name-held-out", nargs="+", default=["true", "false"])
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--n-scenes", type=int, default=300, help="test and comp scenes, 5 q each")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where the model trains: cpu, cuda, ...")
    p.add_argument("--out", default=None, help="results file (default bench/results/lm.json)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        for name in args.name_held_out:
            train = TrainConfig(
                steps=args.steps, lr=args.lr, warmup=100, seed=seed,
                eval_every=args.eval_every, log_every=50, progress=False,
            )  # fmt: skip
            cfg = replace(
                PretrainConfig(), name_held_out=name == "true", batch_size=args.batch_size,
                train=train,
            )  # fmt: skip
            run = pretrain_lm(cfg, device=args.device)
            row = {
                "name_held_out": cfg.name_held_out,
                "seed": seed,
                "steps": args.steps,
                "train_seconds": run.seconds,
                "params": sum(q.numel() for q in run.model.parameters()),
                "curve": run.curve,
                "pair_ppl": perplexity(run.model, run.tokenizer, pair_texts(512, seed)),
                "test": answer_accuracy(run.model, run.tokenizer, "test", args.n_scenes),
                "comp": answer_accuracy(run.model, run.tokenizer, "comp", args.n_scenes),
            }
            rows.append(row)
            print(f"name_held_out={name} seed={seed}: {run.seconds:.0f} s of training")
            print("  held-out perplexity:", [(s, round(v, 3)) for s, v in run.curve])
            print(f"  perplexity of texts naming a held-out pair: {row['pair_ppl']:.3f}")
            for split in ("test", "comp"):
                print(f"  {split}:", {k: round(v, 3) for k, v in sorted(row[split].items())})
    base = PretrainConfig()
    model = {k: getattr(base, k) for k in ("d_model", "n_heads", "n_layers", "max_len", "mix")}
    write_results("lm", command("lm.py", args), rows, args.out, model=model)


if __name__ == "__main__":
    main()
