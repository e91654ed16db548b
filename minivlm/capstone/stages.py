"""The stages of the capstone, one table of them, and the code that trains each (chapter 8).

    stage 1   pretrain   ITC + ITM + MLM + LM on every alt-text pair        (Pretrainer)
    stage 1b  curate     keep complete sentences with a high ITC score
              curated    LM alone on the kept pairs                         (Captioner view)
    stage 2   caption    captioning on the captioned scenes                 (Captioner)
    stage 3   label      the captioner labels the alt-text images           } once per round
              selftrain  captioning on the kept labels and the real ones    }

`STAGES` names each step, the folder under the run folder that holds its checkpoints (or its
curated indices and labels), and the offset of its seeds: a training stage's batches and its
in-step random numbers both come from `cfg.seed * 100 + offset` (+ 10 per round of stage 3).
Every step saves what it made, so a run killed at any moment resumes where it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..data import CaptionTokenizer
from ..data.captions import ALT_KINDS, caption
from ..files import atomic_write_text
from ..train import TrainConfig, latest_checkpoint, read_checkpoint, train
from .batches import Batches, Pairs
from .config import CapstoneConfig
from .evaluation import retrieval_scores
from .labels import complete_sentences, curate, self_label
from .model import Captioner, Pretrainer


@dataclass(frozen=True)
class Stage:
    key: str  # its key in a run's times, logs and steps
    folder: str  # under the run folder; {round} is stage 3's round
    seed: int | None  # seed offset of a training stage (None: it does not train)
    what: str


STAGES: dict[str, Stage] = {s.key: s for s in (
    Stage("pretrain", "pretrain", 1, "stage 1: ITC + ITM + MLM + LM on alt-text"),
    Stage("curate", "curated", None, "stage 1b: keep the sentences whose ITC score is high"),
    Stage("curated", "curated", 2, "stage 1b: LM on the curated alt-text"),
    Stage("caption", "caption", 3, "stage 2: captioning"),
    Stage("label", "selftrain/round{round}", None, "stage 3: the captioner labels alt-text"),
    Stage("selftrain", "selftrain/round{round}", 4, "stage 3: captioning on its own labels"),
)}  # fmt: skip


def folder(out: Path | None, key: str, round: int = 0) -> Path | None:
    return out / STAGES[key].folder.format(round=round) if out is not None else None


def stage_config(
    cfg: CapstoneConfig, key: str, steps: int, round: int = 0, lr: float = 0.0
) -> TrainConfig:
    """The training-loop settings of one stage: cosine from lr (default cfg's) to lr / 20."""
    lr = lr or cfg.schedule.lr
    return TrainConfig(
        steps=steps, lr=lr, warmup=min(cfg.schedule.warmup, max(1, steps // 10)), min_lr=lr / 20,
        seed=stage_seed(cfg, key, round), log_every=10, amp=cfg.amp, compile=cfg.compile,
        progress=cfg.progress, ckpt_seconds=cfg.ckpt_seconds, fused=True,
    )  # fmt: skip


def stage_seed(cfg: CapstoneConfig, key: str, round: int = 0) -> int:
    return cfg.seed * 100 + STAGES[key].seed + 10 * round


@dataclass
class Done:
    """What a run has done so far: seconds, steps this process trained, and logs, per stage."""

    times: dict[str, float] = field(default_factory=dict)
    steps_run: dict[str, int] = field(default_factory=dict)
    logs: dict[str, list[dict]] = field(default_factory=dict)

    def copy(self) -> Done:
        return Done(
            dict(self.times), dict(self.steps_run), {k: list(v) for k, v in self.logs.items()}
        )

    def add(self, key: str, seconds: float, steps: int = 0, log: list[dict] | None = None):
        self.times[key] = self.times.get(key, 0.0) + seconds
        if STAGES[key].seed is not None:
            self.steps_run[key] = self.steps_run.get(key, 0) + steps
            self.logs.setdefault(key, []).extend(log or [])


def train_stage(
    cfg: CapstoneConfig, key: str, model: nn.Module, pairs, tok: CaptionTokenizer, steps: int,
    out: Path | None, device: torch.device, done: Done, say: Callable[[str], None],
    keep=None, round: int = 0, lr: float = 0.0,
) -> None:  # fmt: skip
    """Train `model` for one stage (or round) with `minivlm.train.train`, resuming from the
    stage folder's newest checkpoint; its seconds, steps and log go into `done`."""
    where = folder(out, key, round)
    ckpt = latest_checkpoint(where) if where is not None else None
    start = read_checkpoint(ckpt)[0]["step"] if ckpt is not None else 0
    if start:
        say(f"  {key}: resumes from step {start} of {steps} ({ckpt})")
    batches = Batches(pairs, tok, cfg.schedule.batch, stage_seed(cfg, key, round), keep=keep,
                      max_len=cfg.model.max_len)  # fmt: skip
    log = train(model, batches, stage_config(cfg, key, steps, round, lr), where, device=device)
    rows = [{"round": round, **r} for r in log] if key == "selftrain" else log
    done.add(key, log[-1]["time"] if log else 0.0, steps - start, rows)


def saved(path: Path | None, make: Callable[[], dict]) -> tuple[dict, float]:
    """The JSON that `make` returns, computed once: read back from `path` if a run already
    saved it there. Returns (it, the seconds it took when it was made)."""
    if path is not None and path.exists():
        record = json.loads(path.read_text())
        return record, record["seconds"]
    t0 = time.perf_counter()
    record = make()
    record["seconds"] = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record))
    return record, record["seconds"]


@dataclass
class Stage1:
    """What stage 1 (and 1b) hand on: the pretrainer, the curated indices, and what to report."""

    pretrainer: Pretrainer
    keep: np.ndarray | None = None  # stage 1b's curated alt-texts (None: no stage 1b)
    done: Done = field(default_factory=Done)
    retrieval: dict[str, dict[str, float]] = field(default_factory=dict)
    curated: dict = field(default_factory=dict)


def pretrain_stage(
    cfg: CapstoneConfig, data: dict, tok: CaptionTokenizer, out: Path | None = None,
    device: torch.device | str = "cpu", say: Callable[[str], None] = print,
) -> Stage1:  # fmt: skip
    """Stage 1 on data["alt"], then (if cfg.schedule.curated_steps) stage 1b."""
    device, s = torch.device(device), cfg.schedule
    torch.manual_seed(cfg.seed)
    result = Stage1(Pretrainer(cfg.model, s, tok).to(device))
    if not s.pretrain_steps:
        return result
    alt, pre = data["alt"], result.pretrainer
    say(f"stage 1: {s.pretrain_steps} steps of ITC + ITM + MLM + LM on {len(alt.texts)} pairs")
    probe = data.get("test", data.get("val"))  # retrieval on held-out pairs
    if getattr(probe, "refs", None):  # COCO: one caption per image
        probe = Pairs(probe.images, [r[0] for r in probe.refs])
    result.retrieval["before"] = retrieval_scores(pre, probe, tok)
    train_stage(cfg, "pretrain", pre, alt, tok, s.pretrain_steps, out, device, result.done, say)
    result.retrieval["after"] = after = retrieval_scores(pre, probe, tok)
    say(f"  {result.done.times['pretrain']:.0f} s; text->image R@1 on held-out pairs "
        f"{result.retrieval['before']['t2i R@1']:.3f} -> {after['t2i R@1']:.3f}")  # fmt: skip
    if s.curated_steps:
        record, seconds = saved(
            folder(out, "curate") / "keep.json" if out else None,
            lambda: {"keep": curate(pre, alt, tok, s.curate_keep).tolist()},
        )
        result.done.add("curate", seconds)
        result.keep = keep = np.asarray(record["keep"], dtype=np.int64)
        result.curated = {"kept": len(keep), "of": len(alt.texts)}
        if hasattr(alt, "kinds"):  # the generator knows each pair's kind: how good was the filter?
            result.curated["kinds"] = {k: sum(alt.kinds[i] == k for i in keep) for k in ALT_KINDS}
        say(f"stage 1b: {s.curated_steps} steps of LM on {len(keep)} curated alt-texts")
        curated_stage(cfg, pre, alt, tok, keep, out, device, result.done, say)
    return result


def curated_stage(
    cfg: CapstoneConfig, pre: Pretrainer, pairs, tok: CaptionTokenizer, keep: np.ndarray,
    out: Path | None = None, device: torch.device | str = "cpu", done: Done | None = None,
    say: Callable[[str], None] = print,
) -> Done:  # fmt: skip
    """Stage 1b, in place on `pre`: LM alone on the pairs `keep` (from `curate`)."""
    done = done if done is not None else Done()
    writer = Captioner(pre.image, pre.fuse, pre.colour_ids, cfg.schedule.colour_noise)  # shares
    train_stage(cfg, "curated", writer, pairs, tok, cfg.schedule.curated_steps, out,
                torch.device(device), done, say, keep=keep)  # fmt: skip
    return done


def self_train(
    model: Captioner, cfg: CapstoneConfig, data: dict, tok: CaptionTokenizer, lr: float,
    out: Path | None, device: torch.device, done: Done, say: Callable[[str], None],
) -> list[dict]:  # fmt: skip
    """Stage 3, one round per entry of cfg.schedule.self_train: `self_label` the alt-text images
    whose text is a complete sentence with the captioner as it now is, then train on those and
    the real captions (a `real_share` of every batch) at stage 2's learning rate. A better
    captioner agrees with more alt-texts and errs less, so each round has more, and truer,
    labels; the last round, on the most and truest, is where a longer schedule pays.
    Returns one entry per round: {"kept", "of", "right" (share of true labels, when known)}."""
    alt, real, labelled = data["alt"], data["captioned"], []
    pool = complete_sentences(alt.texts)  # the ordered check rejects other scenes' captions
    rounds = cfg.schedule.self_train
    for r, steps in enumerate(rounds):

        def label() -> dict:
            idx, synthetic = self_label(model, alt, tok, pool)
            return {"idx": idx.tolist(), "captions": synthetic}

        record, seconds = saved(folder(out, "label", r) / "labels.json" if out else None, label)
        done.add("label", seconds)
        idx, synthetic = np.asarray(record["idx"], dtype=np.int64), record["captions"]
        labelled.append({"kept": len(idx), "of": len(pool)})
        if idx.size and hasattr(alt, "scenes"):  # the generator knows the truth
            truth = [caption(alt.scenes[i]) for i in idx]
            labelled[-1]["right"] = float(np.mean(np.array(synthetic) == np.array(truth)))
        # repeat the real captions so that they are about real_share of what batches draw from
        share = cfg.schedule.real_share
        reps = max(1, round(share * len(idx) / ((1 - share) * len(real.texts))))
        mix = Pairs(
            np.concatenate([alt.images[idx]] + [real.images] * reps),
            synthetic + list(real.texts) * reps,
        )
        say(f"stage 3, round {r + 1} of {len(rounds)}: {steps} steps on {len(idx)} of "
            f"{len(pool)} self-labelled images and {len(real.texts)} captioned scenes")  # fmt: skip
        train_stage(cfg, "selftrain", model, mix, tok, steps, out, device, done, say,
                    round=r, lr=lr)  # fmt: skip
    return labelled
