"""`run(cfg)`: every stage of the capstone, the evaluation, and the run folder (chapter 8).

A run folder (`python -m minivlm capstone` writes runs/capstone/<preset>-seed<seed>) holds:

    config.json              the config that ran (a rerun must match it, or it is refused)
    tokenizer.json           the vocabulary
    pretrain/ curated/ caption/ selftrain/round<r>/   checkpoints and logs of each stage
    captioner.safetensors    the trained captioner (weights only), for `load_captioner`
    results.json             `RunResult.summary()`: scores, times per stage, steps

The same command resumes a killed run from the newest checkpoint of each stage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..data import CaptionTokenizer
from ..device import DEVICE_ENV, KNOWN_DEVICES, device_available, pick_device
from ..errors import InputError
from ..files import atomic_write, atomic_write_text
from ..train import latest_checkpoint, read_checkpoint
from .batches import check_data, datasets, tokenizer_for
from .config import CapstoneConfig, override
from .evaluation import evaluate, evaluate_refs
from .model import Captioner, Pretrainer
from .stages import STAGES, Stage1, pretrain_stage, self_train, train_stage


@dataclass
class RunResult:
    """What a run measured. `times` holds seconds per stage (training, curating, labelling):
    their sum is the training time that equal-time comparisons use."""

    config: CapstoneConfig
    scores: dict[str, dict[str, float]]  # split -> metric -> value
    times: dict[str, float]  # stage -> seconds, over every process that worked on the run
    steps_run: dict[str, int]  # stage -> steps this process trained (a resume skips the rest)
    logs: dict[str, list[dict]] = field(repr=False, default_factory=dict)  # stage -> log rows
    captions: dict[str, list[str]] = field(repr=False, default_factory=dict)  # split -> captions
    retrieval: dict[str, dict[str, float]] = field(default_factory=dict)  # before/after stage 1
    curated: dict = field(default_factory=dict)  # stage 1b: how many kept, of which kinds
    self_labelled: list[dict] = field(default_factory=list)  # stage 3: one entry per round
    data_seconds: float = 0.0
    eval_seconds: float = 0.0

    @property
    def train_seconds(self) -> float:
        return sum(self.times.values())

    def summary(self) -> dict:
        """Everything but the logs and captions, as JSON-ready values (results.json)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["config"] = dataclasses.asdict(self.config)
        del out["logs"], out["captions"]
        return {**out, "train_seconds": self.train_seconds}


@dataclass
class Trained:
    """The live models of a run (kept apart from RunResult, which is only data)."""

    captioner: Captioner
    pretrainer: Pretrainer
    tok: CaptionTokenizer


def resolve_device(cfg: CapstoneConfig) -> torch.device:
    """cfg.device, or for "auto" `pick_device()` (MINIVLM_DEVICE, else cuda, mps, cpu)."""
    try:
        return pick_device(None if cfg.device == "auto" else cfg.device)
    except (ValueError, RuntimeError) as err:
        have = ", ".join(k for k in KNOWN_DEVICES if device_available(k))
        asked = cfg.device if cfg.device != "auto" else f"{DEVICE_ENV}={os.environ[DEVICE_ENV]}"
        raise InputError(
            "device", f"auto or a device this machine has ({have})", f"{asked!r} ({err})"
        ) from err


def scratch(cfg: CapstoneConfig, caption_steps: int) -> CapstoneConfig:
    """The same captioner trained without stage 1, 1b or 3: the ablation's other arm."""
    return override(cfg, name=f"{cfg.name}-scratch", pretrain_steps=0, curated_steps=0,
                    self_train=(), finetune_lr=0.0, caption_steps=caption_steps)  # fmt: skip


def _flat(d: dict, prefix: str = "") -> dict:
    """{"model": {"d_model": 64}} -> {"model.d_model": 64}."""
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def open_run_dir(out: Path, cfg: CapstoneConfig) -> None:
    """Check a run folder before anything is written: not a file, the same config as a run
    already there, every newest checkpoint readable. Then record the config."""
    if out.exists() and not out.is_dir():
        raise InputError("out", "a folder for the run", f"{out}, which is a file")
    stored = out / "config.json"
    if stored.exists():
        try:
            before = json.loads(stored.read_text())["identity"]
        except (ValueError, KeyError) as err:
            raise InputError("out", "a run folder with a readable config.json", str(out)) from err
        now = json.loads(json.dumps(cfg.identity()))
        if before != now:
            a, b = _flat(before), _flat(now)
            diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            raise InputError(
                "out", f"a new folder, or one of a run with this config ({out} holds one with "
                "another)", f"a difference in {', '.join(diff)}; use another --out or delete it",
            )  # fmt: skip
    for key in STAGES:
        for where in [out / STAGES[key].folder.format(round=0), *out.glob("selftrain/round*")]:
            if (ckpt := latest_checkpoint(where)) is not None:
                read_checkpoint(ckpt)  # a truncated or corrupted file is named now, not later
    out.mkdir(parents=True, exist_ok=True)
    record = {"identity": cfg.identity(), "config": dataclasses.asdict(cfg)}
    atomic_write_text(stored, json.dumps(record, indent=1))


def run(
    cfg: CapstoneConfig,
    out_dir: str | Path | None = None,
    data: dict | None = None,
    verbose: bool = True,
    stage1: Stage1 | None = None,
) -> tuple[RunResult, Trained]:
    """Stage 1 (and 1b), stage 2, stage 3, then the evaluation. Returns the measurements and
    the trained models.

    data: the splits from `datasets(cfg)`, if already built. stage1: an earlier
    `pretrain_stage` of the same config, to fine-tune it again (e.g. on another number of
    captioned scenes); its times are counted in this run's.
    """
    say: Callable[[str], None] = (lambda msg: print(msg, flush=True)) if verbose else (lambda _: 0)
    device = resolve_device(cfg)
    if data is None:
        check_data(cfg)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        open_run_dir(out, cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    data = data or datasets(cfg)
    tok = tokenizer_for(cfg, data)
    if out is not None and not (out / "tokenizer.json").exists():
        tok.save(out / "tokenizer.json")
    data_seconds = time.perf_counter() - t0
    s = cfg.schedule

    first = stage1 or pretrain_stage(cfg, data, tok, out, device, say)
    done = first.done.copy()  # stage 1's share of the work, then this run's
    model = Captioner.from_pretrainer(first.pretrainer, s.colour_noise, s.colour_drop).to(device)
    lr = s.finetune_lr or s.lr
    say(f"stage 2: {s.caption_steps} steps of captioning on {len(data['captioned'].texts)} texts")
    train_stage(cfg, "caption", model, data["captioned"], tok, s.caption_steps, out, device,
                done, say, lr=lr)  # fmt: skip
    labelled = self_train(model, cfg, data, tok, lr, out, device, done, say) if s.self_train else []

    t1 = time.perf_counter()
    scores, captions = {}, {}
    for split in ("test", "comp") if cfg.shapes else ("val",):
        if cfg.shapes:
            scores[split], captions[split] = evaluate(model, data[split], tok)
        else:
            scores[split], captions[split] = evaluate_refs(model, data[split], tok)
        shown = ("exact", "grounded", "BLEU-4", "CIDEr-D")
        say(f"  {split}: " + ", ".join(f"{k} {scores[split][k]:.3f}" for k in shown
                                       if k in scores[split]))  # fmt: skip
    result = RunResult(
        cfg, scores, done.times, done.steps_run, done.logs, captions, first.retrieval,
        first.curated, labelled, data_seconds, time.perf_counter() - t1,
    )  # fmt: skip
    if out is not None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        atomic_write(out / "captioner.safetensors", lambda p: save_file(tensors, p))
        atomic_write_text(out / "results.json", json.dumps(result.summary(), indent=1))
    return result, Trained(model, first.pretrainer, tok)


def results_table(rows: list[tuple[str, RunResult]]) -> str:
    """A Markdown table of each run's training time and scores."""
    lines = []
    for name, r in rows:
        keys = ("exact", "grounded") if r.config.shapes else ("BLEU-4", "CIDEr-D")
        cells = [f"{r.scores[split][k]:.3f}" for split in r.scores for k in keys]
        if not lines:
            heads = [f"{split} {k}" for split in r.scores for k in keys]
            lines = ["| run | train time | " + " | ".join(heads) + " |",
                     "|---" * (2 + len(heads)) + "|"]  # fmt: skip
        lines.append(f"| {name} | {r.train_seconds:.0f} s | " + " | ".join(cells) + " |")
    return "\n".join(lines)
