"""Measure the capstone's targets on this machine (chapter 8).

    python bench/capstone.py --what cpu ablation lowcap --seeds 0 1 2 [--threads 1]
    python bench/capstone.py --what quick --seeds 0 1 2
    python bench/capstone.py --what order --lowcap 100 --seeds 0 --threads 1
    python bench/capstone.py --what encoders --seeds 0 1 2 --threads 1

* quick: chapter 8's own run (the quick preset), measured as cpu is.
* cpu: the preset `make capstone` runs: exact match and grounded accuracy on held-out test
  scenes and on the compositional split, and the wall time.
* ablation: a preset (--ablation-preset, default ci) run as it is, and its captioner without
  stage 1 trained for the same wall time (caption steps scaled by the measured step time).
* lowcap: the low-caption regime. For each number N of captioned scenes, pretrain-then-caption
  against caption-only training on the same N scenes for the same wall time. Stage 1 (with
  curation, stage 1b) runs once per seed; stages 2 and 3 (the rounds of self-training) run for
  each N, and each N's pretrained run is charged stage 1's full time. Rows keyed `subseq`,
  `ordered`, `oneround`, `curated` and `uncurated` come from earlier versions of the preset
  (6 rounds of stage 3 of 500 steps, with no longer last round; the same, whose filter checked
  only the order of the content words; one round with an order-blind filter; no stage 3; no
  curation).
* encoders: what the two-pathway encoder's inductive bias buys. The cpu preset with each
  image encoder (--set encoder=two_pathway|cnn|vit) at the same training wall time: each
  encoder's steps of stage 1 and 2 are scaled by its measured step time against the
  two-pathway encoder's (both timed in the same process), so every arm trains about as long
  as the two-pathway run. Rows `encoders/<encoder>/seed<s>`.
* order: where the low-caption gap lies (--lowcap N, first value). Stage 1b on the curated
  alt-texts as they are, against the same images with oracle texts written from the
  generator's truth: paraphrases that always name the objects in canonical order (left to
  right, top to bottom), and the canonical captions. Then stage 2 on N captions, no stage 3.
  A diagnostic, never a recipe: the oracle texts are not data a learner would have.

Every run is merged into bench/results/capstone.json as it finishes (a rerun skips what is
there; two processes may share the file), and the summary prints mean ± sample standard
deviation over seeds. --threads sets torch's threads per run, e.g. to run two benches side by
side on two cores; each row records it.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import commit  # noqa: E402
from minivlm.capstone import (  # noqa: E402
    Batches,
    Captioner,
    Pairs,
    Pretrainer,
    RunResult,
    Stage1,
    curate,
    curated_stage,
    datasets,
    evaluate,
    override,
    preset,
    pretrain_stage,
    run,
    scratch,
    stage_config,
)  # fmt: skip
from minivlm.capstone.stages import stage_seed  # noqa: E402
from minivlm.data import CaptionTokenizer, ShapesCaptions  # noqa: E402
from minivlm.data.captions import RELATION_PHRASES, caption, paraphrase  # noqa: E402
from minivlm.files import atomic_write_text  # noqa: E402
from minivlm.train import train  # noqa: E402

TEST_KEYS = ("exact", "grounded", "colour", "shape", "size", "relation", "count")
RESULTS = ROOT / "bench" / "results" / "capstone.json"
ORDER_RESULTS = RESULTS.with_name("lowcap_order.json")  # the order diagnostic, kept apart


def load(path: Path = RESULTS) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"runs": []}


def record(key: str, r: RunResult, path: Path = RESULTS, **info) -> dict:
    """Merge one run into the results file (re-read first: another process may have written)."""
    row = {
        "key": key, **info, "threads": torch.get_num_threads(), "commit": commit(),
        "test": {k: r.scores["test"][k] for k in TEST_KEYS},
        "comp": {k: r.scores["comp"][k] for k in ("exact", "grounded", "colour", "shape")},
        "time": {**r.times, "train": r.train_seconds, "data": r.data_seconds,
                 "eval": r.eval_seconds},
        "caption_steps": r.config.schedule.caption_steps,
        "pretrain_steps": r.config.schedule.pretrain_steps, "encoder": r.config.model.encoder,
        "colour_drop": r.config.schedule.colour_drop, "keep_cells": r.config.model.keep_cells,
        "retrieval": r.retrieval.get("after"), "self_labelled": r.self_labelled or None,
    }  # fmt: skip
    db = load(path)
    db["runs"] = [x for x in db["runs"] if x["key"] != key] + [row]
    db["machine"] = {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(db, indent=1))
    return row


def done(key: str, path: Path = RESULTS) -> dict | None:
    return next((x for x in load(path)["runs"] if x["key"] == key), None)


def single(tag: str, cfg, seed: int) -> dict:
    key = f"{tag}/pretrained/seed{seed}"
    return done(key) or record(key, run(cfg)[0], arm="pretrained", seed=seed)


def pair(tag: str, cfg, seed: int, data: dict | None = None, **info) -> None:
    """The pretrained run, then caption-only training for the same wall time."""
    key = f"{tag}/pretrained/seed{seed}"
    row = done(key) or record(key, run(cfg, data=data)[0], arm="pretrained", seed=seed, **info)
    key2 = f"{tag}/scratch/seed{seed}"
    if done(key2) is None:
        per_step = row["time"]["caption"] / row["caption_steps"]  # from the run, not a guess
        arm = scratch(cfg, caption_steps=round(row["time"]["train"] / per_step))
        record(key2, run(arm, data=data)[0], arm="scratch", seed=seed, **info)


def lowcap(seed: int, ns: list[int], common: dict) -> None:
    """Stage 1 once for this seed, fine-tuned on each N; then the caption-only arm for each N."""
    base = preset("lowcap", seed=seed, **common)
    todo = [n for n in ns if done(f"lowcap{n}/pretrained/seed{seed}") is None]
    # alt-texts only if a pretrained row is missing; each N gets its own captioned scenes below
    data = datasets(override(base, n_alt=1 if not todo else base.data.n_alt, n_captioned=1))
    stage1 = pretrain_stage(base, data, CaptionTokenizer.shapes_world()) if todo else None
    for n in ns:
        cfg = override(base, n_captioned=n)
        captioned = ShapesCaptions("train", n, size=cfg.model.image_size, seed=seed + 100)
        d = {**data, "captioned": captioned}
        key = f"lowcap{n}/pretrained/seed{seed}"
        if n in todo:
            r, _ = run(cfg, data=d, stage1=stage1)
            record(key, r, arm="pretrained", seed=seed, n_captioned=n)
        pair(f"lowcap{n}", cfg, seed, data=d, n_captioned=n)


ENCODERS = ("two_pathway", "cnn", "vit")


def stage_model(cfg, data: dict, key: str) -> tuple[torch.nn.Module, Batches]:
    """A fresh model of one stage ("pretrain" or "caption") and that stage's batches."""
    tok = CaptionTokenizer.shapes_world()
    torch.manual_seed(0)
    model = Pretrainer(cfg.model, cfg.schedule, tok)
    if key == "caption":
        s = cfg.schedule
        model = Captioner.from_pretrainer(model, s.colour_noise, s.colour_drop)
    pairs = data["alt" if key == "pretrain" else "captioned"]
    return model, Batches(pairs, tok, cfg.schedule.batch, stage_seed(cfg, key))


def step_seconds(cfg, data: dict, key: str, steps: int = 30) -> float:
    """Seconds per training step of one stage ("pretrain" or "caption"), after 10 warm-up
    steps: the figure that scales an encoder's steps to an equal wall time."""
    model, batches = stage_model(cfg, data, key)
    log = train(model, batches, replace(stage_config(cfg, key, 10 + steps), log_every=1))
    return (log[-1]["time"] - log[9]["time"]) / steps


def steps_in_turns(
    configs: dict, data: dict, keys: tuple[str, ...], steps: int = 30, repeats: int = 1
) -> dict[tuple[str, str], float]:
    """Seconds per step of each (config name, stage), `step_seconds` of every one in turns,
    `repeats` rounds of them, so that a shared machine's load hits them all alike; the median
    round of each."""
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for name, cfg in configs.items():
            for key in keys:
                times.setdefault((name, key), []).append(step_seconds(cfg, data, key, steps))
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def encoders(seed: int, common: dict) -> None:
    """The cpu preset with each image encoder, trained for the same wall time."""
    base = preset("cpu", seed=seed, **common)
    keys = {e: f"encoders/{e}/seed{seed}" for e in ENCODERS}
    if all(done(k) for k in keys.values()):
        return
    data = datasets(base)
    configs = {e: override(base, encoder=e) for e in ENCODERS}
    speed = steps_in_turns(configs, data, ("pretrain", "caption"))
    for e, cfg in configs.items():
        s = cfg.schedule  # the two-pathway run's steps, scaled by its speed over this one's
        scale = {k: speed["two_pathway", k] / speed[e, k] for k in ("pretrain", "caption")}
        steps = {f"{k}_steps": max(1, round(getattr(s, f"{k}_steps") * scale[k])) for k in scale}
        if done(keys[e]) is None:
            r, _ = run(override(cfg, **steps), data=data)
            record(keys[e], r, arm=e, seed=seed, step_seconds={k: speed[e, k] for k in scale})


ORDER_TEXTS = ("alt", "forward", "canonical")
BACKWARD = [p for p, (_, back) in RELATION_PHRASES.items() if back]  # "right of", "below", ...


def forward_paraphrase(scene, rng: np.random.Generator) -> str:
    """A paraphrase that names the objects in canonical order: redrawn while it names them
    backwards."""
    while True:
        text = paraphrase(scene, rng)
        if not any(f" {p} " in f" {text} " for p in BACKWARD):
            return text


def order(seed: int, n: int, common: dict) -> None:
    """Stage 1 and curation once; stage 1b on each kind of text for the same curated images."""
    base = preset("lowcap", seed=seed, n_captioned=n, self_train=[], **common)
    keys = {t: f"order-{t}{n}/pretrained/seed{seed}" for t in ORDER_TEXTS}
    todo = [t for t in ORDER_TEXTS if done(keys[t], ORDER_RESULTS) is None]
    if not todo:
        return
    tok = CaptionTokenizer.shapes_world()
    data = datasets(base)
    alt = data["alt"]
    first = pretrain_stage(override(base, curated_steps=0), data, tok)
    keep = curate(first.pretrainer, alt, tok, base.schedule.curate_keep)
    rng = np.random.default_rng(seed)
    for kind in todo:
        texts = list(alt.texts)
        for i in keep:
            if kind == "forward":
                texts[i] = forward_paraphrase(alt.scenes[i], rng)
            elif kind == "canonical":
                texts[i] = caption(alt.scenes[i])
        writer = copy.deepcopy(first.pretrainer)
        spent = first.done.copy()
        curated_stage(base, writer, Pairs(alt.images, texts), tok, keep, done=spent)
        zero, _ = evaluate(Captioner.from_pretrainer(writer, 0.0), data["test"], tok)
        r, _ = run(base, data=data, stage1=Stage1(writer, keep, spent, first.retrieval))
        record(keys[kind], r, ORDER_RESULTS, arm="pretrained", seed=seed, n_captioned=n,
               texts=kind, zero_shot_grounded=zero["grounded"])  # fmt: skip


def summary(path: Path = RESULTS) -> None:
    groups: dict[str, list[dict]] = {}
    for row in load(path)["runs"]:
        groups.setdefault(row["key"].rsplit("/seed", 1)[0], []).append(row)

    def ms(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    print("\n| runs | seeds | train time (s) | test exact | test grounded | comp exact |")
    print("|---|---|---|---|---|---|")
    for name, rows in sorted(groups.items()):
        print(
            f"| {name} | {len(rows)} | {statistics.mean(r['time']['train'] for r in rows):.0f} "
            f"| {ms([r['test']['exact'] for r in rows])} "
            f"| {ms([r['test']['grounded'] for r in rows])} "
            f"| {ms([r['comp']['exact'] for r in rows])} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--what", nargs="+", default=["cpu", "ablation", "lowcap"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--lowcap", nargs="+", type=int, default=[100, 250, 500, 1000])
    ap.add_argument("--ablation-preset", default="ci")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    common = {"progress": False, "threads": args.threads}
    if args.threads:
        torch.set_num_threads(args.threads)
    for seed in args.seeds:
        for name in ("quick", "cpu"):  # chapter 8's own run; `make capstone`
            if name in args.what:
                single(name, preset(name, seed=seed, **common), seed)
        if "ablation" in args.what:
            name = args.ablation_preset
            pair(name, preset(name, seed=seed, **common), seed)
        if "lowcap" in args.what:
            lowcap(seed, args.lowcap, common)
        if "order" in args.what:
            order(seed, args.lowcap[0], common)
        if "encoders" in args.what:
            encoders(seed, common)
    summary()
    if "order" in args.what:
        summary(ORDER_RESULTS)


if __name__ == "__main__":
    main()
