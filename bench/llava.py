"""Measure chapter 10's modern recipe on this machine: the main run over seeds, and its ablations.

    python bench/llava.py --seeds 0 1 2 --threads 1
    python bench/llava.py --seeds 0 --what main no_stage1 frozen last1 linear unpaired unnamed
    python bench/llava.py --seeds 0 --n-train 200 --n-alt 2000 --n-captioned 500 \
        --caption-steps 20 --lm-steps 20 --s1 5 --s2 5 --n-test 20 --n-comp 20 --out /tmp/l.json

For each seed, everything is trained here, and its seconds are counted:

* the vision encoder: the capstone's quick preset (chapter 8), of which only `.image` is kept;
* the language model: `minivlm.lm.pretrain_lm` on text alone, --lm-steps steps. Its corpus names
  every colour-shape pair; the `unnamed` arm pretrains a second LM whose text never names a
  held-out pair (the language prior);
* stage 1: the projector alone, on "describe the image ." with the caption (--s1 steps);
* stage 2: instruction tuning on chapter 9's questions and describe prompts, the whole LM
  unfrozen (--s2 steps).

The arms, each started from the same encoder and LM:

* main: an MLP projector, 2x2 merging with a cell's shape and colour tokens in one (16 image
  tokens), stage 1, then stage 2 unfrozen;
* no_stage1: stage 2 alone, given stage 1's seconds as extra stage-2 steps (equal time);
* frozen / last1: stage 2 with the LM frozen, or only its last block (and head) unfrozen;
* linear: a linear projector instead of the MLP;
* unpaired: the shape and colour pathways merged apart (32 image tokens): the LM must bind a
  colour to a shape across two tokens;
* unnamed: the main recipe on the LM whose text never named a held-out pair;
* glimpse: chapter 9's glimpse classifier (`ClassifierVQA`) from the same captioner, given the
  steps that its first steps' speed fits in the seconds the main arm spent on its LM and both
  stages: the two chapters at equal training time, as far as that timing holds (it needs the
  seed's `main` row, from this run or the results file; it cannot describe).

Scores (`llava_train.accuracy`): greedy answers to chapter 9's questions, per kind, on held-out
scenes ("test") and on the compositional split ("comp", every question names a held-out pair),
and caption exact match for "describe the image .". Every row records its seconds by part.
Writes bench/results/llava.json after every seed (rows of other arms or seeds already in the
file are kept); --out writes another file instead (bench/gpu_check.py's short run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, merged, summary, write_results  # noqa: E402
from minivlm.capstone import preset, run  # noqa: E402
from minivlm.data.questions import ShapesQuestions  # noqa: E402
from minivlm.llava import PrefixVLM  # noqa: E402
from minivlm.llava_train import accuracy, fit_stage, steps_for  # noqa: E402
from minivlm.lm import PretrainConfig, pretrain_lm  # noqa: E402
from minivlm.train import TrainConfig  # noqa: E402
from minivlm.vqa import ClassifierVQA  # noqa: E402
from minivlm.vqa_train import accuracy as vqa_accuracy  # noqa: E402
from minivlm.vqa_train import fit  # noqa: E402
from minivlm.vqa_train import steps_for as vqa_steps_for  # noqa: E402

ARMS = ("main", "no_stage1", "frozen", "last1", "linear", "unpaired", "unnamed", "glimpse")
# stage 2 under --budget gets this share of the steps its first steps time, and stops on the
# wall clock when the budget is spent (TrainConfig.max_seconds): the first steps misjudged the
# rest by up to 13% here (649 s of 600 at a margin of 0.85 and no stop), and a run cut short
# ends before its learning rate has come down, so the margin stays
MARGIN = 0.9
# name -> (projector, pair, stage 1?, stage 2's unfreeze_lm, the LM's text named every pair?)
RECIPES = {
    "main": ("mlp", True, True, True, True),
    "no_stage1": ("mlp", True, False, True, True),
    "frozen": ("mlp", True, True, False, True),
    "last1": ("mlp", True, True, 1, True),
    "linear": ("linear", True, True, True, True),
    "unpaired": ("mlp", False, True, True, True),
    "unnamed": ("mlp", True, True, True, False),
}


def language_model(named: bool, seed: int, args):
    """Pretrain chapter 10's LM on text alone; (Pretrained, its final held-out perplexity)."""
    train = TrainConfig(steps=args.lm_steps, lr=3e-3, warmup=min(100, args.lm_steps // 5 + 1),
                        seed=seed, eval_every=args.lm_steps, log_every=50,
                        progress=False)  # fmt: skip
    cfg = replace(PretrainConfig(), name_held_out=named, train=train)
    return pretrain_lm(cfg, device=args.device)


def glimpse(rows, trained, cfg, train, splits, vision_s: float, args, seed: int) -> dict:
    """Chapter 9's glimpse classifier for the seconds the main arm spent beyond its encoder."""
    main = next(r for r in [*rows, *args.previous] if r["arm"] == "main" and r["seed"] == seed)
    budget = main["train_seconds"] - main["seconds"]["vision"]
    torch.manual_seed(seed)
    model = ClassifierVQA.from_captioner(trained.captioner, cfg.model)
    steps = vqa_steps_for(model, train, budget, scenes=args.scenes)
    log = fit(model, train, steps, scenes=args.scenes, lr=args.lr, seed=seed, max_seconds=budget)
    secs, steps = log[-1]["time"], log[-1]["step"]  # the steps it ran, within the budget
    test, comp = (vqa_accuracy(model, s) for s in splits)
    print(f"  glimpse    test {test['all']:.3f} comp {comp['all']:.3f}  {vision_s + secs:.0f} s")
    return {"arm": "glimpse", "seed": seed, "steps": {"vqa": steps}, "budget_s": budget,
            "threads": torch.get_num_threads(),
            "seconds": {"vision": vision_s, "vqa": secs}, "train_seconds": vision_s + secs,
            "test": test, "comp": comp}  # fmt: skip


def stage2_steps(rows: list[dict], args, seed: int) -> int | None:
    """--s2; or with --budget, the main arm's steps of this seed (None: main, still to time)."""
    if not args.budget:
        return args.s2
    main = [r for r in [*rows, *args.previous] if r["arm"] == "main" and r["seed"] == seed]
    return main[0]["steps"]["stage2"] if main else None


def one_seed(seed: int, args) -> list[dict]:
    t0 = time.perf_counter()
    train = ShapesQuestions("train", args.n_train, seed=seed)
    test, comp = ShapesQuestions("test", args.n_test), ShapesQuestions("comp", args.n_comp)
    print(f"seed {seed}: data {time.perf_counter() - t0:.0f} s", flush=True)
    given = (("n_alt", args.n_alt), ("n_captioned", args.n_captioned),
             ("pretrain_steps", args.pretrain_steps))  # fmt: skip
    data = {k: v for k, v in given if v is not None}
    data |= {"n_test": args.n_test, "n_comp": args.n_comp}  # its caption scores: as many scenes
    cfg = preset("quick", seed=seed, threads=args.threads, progress=False, device=args.device,
                 caption_steps=args.caption_steps, colour_drop=args.colour_drop,
                 keep_cells=args.keep_cells,
                 **data)  # fmt: skip
    result, trained = run(cfg, verbose=False)
    vision_s = result.train_seconds
    print(f"  vision encoder (captioner): {vision_s:.0f} s, caption exact "
          f"{result.scores['test']['exact']:.3f}", flush=True)  # fmt: skip
    lms = {}
    for named in sorted({RECIPES[a][4] for a in args.what if a in RECIPES}, reverse=True):
        lms[named] = language_model(named, seed, args)
        print(f"  LM (names every pair: {named}): {lms[named].seconds:.0f} s, "
              f"perplexity {lms[named].curve[-1][1]:.3f}", flush=True)  # fmt: skip
    rows = []
    for arm in args.what:
        if arm == "glimpse":
            rows.append(glimpse(rows, trained, cfg, train, (test, comp), vision_s, args, seed))
            continue
        projector, pair, stage1, unfreeze, named = RECIPES[arm]
        lm = lms[named]
        torch.manual_seed(seed)
        model = PrefixVLM.from_parts(trained.captioner.image, cfg.model, lm.model, lm.tokenizer,
                                     projector, args.merge, pair)  # fmt: skip
        common = {"scenes": args.scenes, "lr": args.lr, "seed": seed, "log_every": 100}
        s1_s, s2_steps = 0.0, stage2_steps(rows, args, seed)
        if stage1:
            s1_s = fit_stage(model, train, args.s1, 1, **common)[-1]["time"]
        else:  # equal time: the seconds of stage 1's steps buy more stage-2 steps
            per_s1 = 1.0 / steps_for(model, train, 1.0, 1, scenes=args.scenes)  # (an estimate)
            s2_steps += steps_for(model, train, args.s1 * per_s1, 2, unfreeze, args.scenes)
        limit = 0.0  # the arms run main's steps; main, under --budget, the seconds left
        if s2_steps is None:
            limit = args.budget - vision_s - lm.seconds - s1_s
            fits = steps_for(model, train, limit, 2, unfreeze, args.scenes)
            s2_steps = max(1, int(MARGIN * fits))
        log = fit_stage(model, train, s2_steps, 2, unfreeze, max_seconds=limit, **common)
        s2_s, s2_steps = log[-1]["time"], log[-1]["step"]  # what it ran (a stop may cut it)
        t1 = time.perf_counter()
        scores = accuracy(model, test), accuracy(model, comp)
        seconds = {"vision": vision_s, "lm": lm.seconds, "stage1": s1_s, "stage2": s2_s}
        row = {
            "arm": arm, "seed": seed, "projector": projector, "pair": pair,
            "n_image_tokens": model.cfg.n_image_tokens, "unfreeze_lm": unfreeze,
            "lm_names_every_pair": named, "steps": {"lm": args.lm_steps,
            "stage1": args.s1 if stage1 else 0, "stage2": s2_steps},
            "seconds": seconds, "train_seconds": sum(seconds.values()),
            "threads": torch.get_num_threads(),
            "eval_seconds": time.perf_counter() - t1, "lm_perplexity": lm.curve[-1][1],
            "caption_exact": result.scores["test"]["exact"],
            "test": scores[0], "comp": scores[1],
        }  # fmt: skip
        rows.append(row)
        t, c = scores
        print(
            f"  {arm:<10} test {t['all']:.3f} describe {t['describe']:.3f} comp {c['all']:.3f}"
            f" comp describe {c['describe']:.3f}  {row['train_seconds']:.0f} s",
            flush=True,
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--what", nargs="+", default=["main"], choices=ARMS)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--n-comp", type=int, default=500)
    p.add_argument("--caption-steps", type=int, default=2000, help="the encoder's captioner")
    p.add_argument("--colour-drop", type=float, default=0.0, help="colour dropout (chapter 8)")
    p.add_argument("--keep-cells", type=int, default=0, help="the cells the encoder keeps (0: all)")
    p.add_argument("--pretrain-steps", type=int, default=None, help="its stage 1 (preset's)")
    p.add_argument("--n-alt", type=int, default=None, help="the captioner's alt-texts (preset's)")
    p.add_argument("--n-captioned", type=int, default=None, help="its captions (preset's)")
    p.add_argument("--lm-steps", type=int, default=600)
    p.add_argument("--s1", type=int, default=300, help="stage 1 steps")
    p.add_argument("--s2", type=int, default=1500, help="stage 2 steps (without --budget)")
    p.add_argument("--budget", type=float, default=0.0,
                   help="seconds of training in all per seed: main's stage 2 gets what is left "
                   "(timed, less 15%%), and every other arm of the seed its steps")  # fmt: skip
    p.add_argument("--scenes", type=int, default=32, help="scenes per batch")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--merge", type=int, default=2, help="k of k x k cell merging")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="results file (default bench/results/llava.json)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = Path(args.out) if args.out else ROOT / "bench" / "results" / "llava.json"
    args.previous = json.loads(path.read_text())["results"] if path.exists() else []
    missing = set(args.seeds) - {r["seed"] for r in args.previous if r["arm"] == "main"}
    first = args.what[0] == "main"  # then every other arm of the seed can read main's row
    if "glimpse" in args.what and missing and not first:
        p.error(f"--what glimpse needs main first (this run or the file), seeds {missing}")
    if args.budget and missing and not first:
        p.error(f"--budget gives the arms main's stage-2 steps: put main first, seeds {missing}")
    rows: list[dict] = []
    for seed in args.seeds:
        rows += one_seed(seed, args)
        cmd = command("llava.py", argparse.Namespace(**{k: v for k, v in vars(args).items()
                                                        if k != "previous"}))  # fmt: skip
        everything, commands = merged(rows, cmd, path, key="arm")
        write_results("llava", commands[-1], everything, path, commands=commands)
    summary(everything, key="arm")


if __name__ == "__main__":
    main()
