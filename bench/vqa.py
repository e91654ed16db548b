"""Measure chapter 9's answerers on this machine: accuracy per kind, held out and compositional.

    python bench/vqa.py --seeds 0 1 2 --budget 600 --short 300 --threads 1
    python bench/vqa.py --seeds 0 --what blind reader full scratch stack generative
    python bench/vqa.py --seeds 0 --what curve --curve 1000 4000 20000 --short 300 --threads 1
    python bench/vqa.py --seeds 0 --what blind --n-train 200 --blind-seconds 1 --out /tmp/vqa.json

For each seed, on the same questions (--n-train training scenes with 5 questions each, held-out
test scenes and the compositional split, whose every question names a held-out colour-shape
pair):

* blind rate: each exact question text's most common training answer (`blind_rates`);
* blind: `BlindVQA` (the question alone) trained for --blind-seconds;
* captioner: the capstone's quick preset, trained once per seed (its seconds are charged to
  every answerer built on it);
* reader: `NSReader`, that captioner + the caption parser + the executor (no VQA training);
* short / full: `ClassifierVQA` (glimpse fusion) started from that captioner, trained so that
  captioner + VQA training take --short / --budget seconds of wall time;
* scratch (optional): the same classifier from random weights for --budget seconds;
* stack (optional): the capstone's multimodal stack as the fusion (words query the regions,
  mean over words), from the captioner, for --budget seconds: the blind plateau.
* generative (optional): `GenerativeVQA`, the captioner's decoder writing the answer word after
  the question (BLIP's route), from the captioner, for --budget seconds.
* curve (optional): pretraining against scratch over the number of labelled questions. For
  each N of --curve (training scenes, 5 questions each), the glimpse classifier from the
  captioner and from random weights, both for --short seconds of wall time (the captioner's
  included in the first): rows `curve/pretrained/N` and `curve/scratch/N`.

Every row records its training seconds (the captioner's included) and steps. Writes
bench/results/vqa.json after every seed (a killed run keeps what it measured; rows of other
answerers or seeds already in the file are kept, so runs of a few answerers add up) and prints
mean ± sample standard deviation over seeds next to each kind's blind rate. --out writes
another file instead (a short run, e.g. bench/gpu_check.py's, leaves vqa.json as it is).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, merged, summary, write_results  # noqa: E402
from minivlm.capstone import preset, run  # noqa: E402
from minivlm.data.questions import KINDS, ShapesQuestions, blind_rates  # noqa: E402
from minivlm.vqa import BlindVQA, ClassifierVQA, NSReader  # noqa: E402
from minivlm.vqa_generative import GenerativeVQA  # noqa: E402
from minivlm.vqa_train import accuracy, fit, reader_accuracy, steps_for  # noqa: E402

ANSWERERS = ("blind", "reader", "short", "full", "scratch", "stack", "generative", "curve")
DEFAULT = ("blind", "reader", "short", "full")


def train_for(model, data, seconds: float, args, seed: int) -> tuple[int, float]:
    """Train for about `seconds`; (steps, seconds the loop took). The steps come from 20 timed
    steps, less 10%: a 500 s run here went 12% slower than its first steps."""
    steps = int(0.9 * steps_for(model, data, seconds, scenes=args.scenes, probe=22))
    log = fit(model, data, steps, scenes=args.scenes, lr=args.lr, seed=seed)
    return steps, log[-1]["time"]


def one_seed(seed: int, args) -> list[dict]:
    t0 = time.perf_counter()
    train = ShapesQuestions("train", args.n_train, seed=seed)
    test, comp = ShapesQuestions("test", args.n_test), ShapesQuestions("comp", args.n_comp)
    print(f"seed {seed}: data {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []

    def add(name: str, scores: tuple[dict, dict], **info) -> None:
        rows.append({"answerer": name, "seed": seed, **info, "test": scores[0], "comp": scores[1]})
        t, c = scores
        print(f"  {name:<10} test {t['all']:.3f} comp {c['all']:.3f}  " + " ".join(
            f"{k} {t[k]:.2f}" for k in KINDS if k in t) + f"  {info}", flush=True)  # fmt: skip

    rates = [{k: r.blind for k, r in blind_rates(train, split).items()} for split in (test, comp)]
    add("blind rate", (rates[0], rates[1]))
    if "blind" in args.what:
        torch.manual_seed(seed)
        model = BlindVQA()
        steps, secs = train_for(model, train, args.blind_seconds, args, seed)
        add("blind", (accuracy(model, test), accuracy(model, comp)), steps=steps,
            train_seconds=secs)  # fmt: skip
    cfg = preset("quick", seed=seed, threads=args.threads, progress=False,
                 caption_steps=args.caption_steps, colour_drop=args.colour_drop,
                 keep_cells=args.keep_cells)  # fmt: skip
    if {"reader", "short", "full", "stack", "generative", "curve"} & set(args.what):
        result, trained = run(cfg, verbose=False)
        cap_s, cap = result.train_seconds, trained.captioner
        print(f"  captioner: {cap_s:.0f} s, test exact {result.scores['test']['exact']:.3f}")
    if "reader" in args.what:
        reader = NSReader(cap, trained.tok)
        add("reader", (reader_accuracy(reader, test), reader_accuracy(reader, comp)),
            train_seconds=cap_s, caption_exact=result.scores["test"]["exact"])  # fmt: skip
    arms = [
        ("short", args.short, "glimpse", "captioner", train),
        ("full", args.budget, "glimpse", "captioner", train),
        ("scratch", args.budget, "glimpse", "scratch", train),
        ("stack", args.budget, "stack", "captioner", train),
        ("generative", args.budget, "generative", "captioner", train),
    ]
    arms = [arm for arm in arms if arm[0] in args.what]
    if "curve" in args.what:
        for n in args.curve:
            few = ShapesQuestions("train", n, seed=seed) if n != len(train.scenes) else train
            for start in ("captioner", "scratch"):
                name = f"curve/{'pretrained' if start == 'captioner' else 'scratch'}/{n}"
                arms.append((name, args.short, "glimpse", start, few))
    for name, budget, fusion, start, questions in arms:
        torch.manual_seed(seed)
        model = build(fusion, cfg.model, cap if start == "captioner" else None)
        spent = cap_s if start == "captioner" else 0.0
        steps, secs = train_for(model, questions, budget - spent, args, seed)
        add(name, (accuracy(model, test), accuracy(model, comp)), fusion=fusion, start=start,
            steps=steps, budget_s=budget, train_seconds=spent + secs,
            n_train=len(questions.scenes))  # fmt: skip
    return rows


def build(fusion: str, m, cap=None):
    """A fresh answerer of this fusion ("stack", "glimpse" or "generative"), from the captioner
    `cap`, or from random weights when cap is None."""
    if fusion == "generative":
        return GenerativeVQA.from_captioner(cap, m) if cap else GenerativeVQA(m)
    return ClassifierVQA.from_captioner(cap, m, fusion) if cap else ClassifierVQA(m, fusion=fusion)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--what", nargs="+", default=list(DEFAULT), choices=ANSWERERS)
    p.add_argument("--budget", type=float, default=600.0, help="seconds: captioner + VQA")
    p.add_argument("--short", type=float, default=300.0, help="seconds: the chapter's run")
    p.add_argument("--blind-seconds", type=float, default=60.0)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--curve", type=int, nargs="+", default=[1000, 4000, 20_000],
                   help="training scenes for --what curve")  # fmt: skip
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--n-comp", type=int, default=1000)
    p.add_argument("--scenes", type=int, default=32, help="scenes per batch (5 questions each)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--caption-steps", type=int, default=2000, help="the captioner's stage 2")
    p.add_argument("--colour-drop", type=float, default=0.0, help="colour dropout (chapter 8)")
    p.add_argument("--keep-cells", type=int, default=0, help="the cells the encoder keeps (0: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", default=None, help="results file (default bench/results/vqa.json)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = Path(args.out) if args.out else ROOT / "bench" / "results" / "vqa.json"
    rows: list[dict] = []
    for seed in args.seeds:
        rows += one_seed(seed, args)
        everything, commands = merged(rows, command("vqa.py", args), path, key="answerer")
        write_results("vqa", commands[-1], everything, path, commands=commands, seeds=args.seeds)
    summary(everything, key="answerer")


if __name__ == "__main__":
    main()
