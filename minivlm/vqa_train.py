"""Training and scoring the VQA answerers of `minivlm.vqa` (chapter 9).

* `QuestionBatches`: get_batch(step) for chapter 8's loop (`minivlm.train.train`). A batch is
  `scenes` scenes with *all* their questions: each image goes through the encoder once and its
  region tokens serve its five questions (`which` maps a question to its image).
* `fit`: AdamW, warm-up, cosine, for a number of steps; `steps_for` times a few steps of a copy
  of the model to turn a wall-clock budget into steps.
* `accuracy`: accuracy per kind and overall; `reader_accuracy` does the same for `NSReader`.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn

from .data import CaptionTokenizer, to_tensor
from .data.questions import KINDS, ShapesQuestions
from .train import TrainConfig, evaluating, train
from .train import steps_for as time_steps
from .vqa import NSReader, _Answerer, answer_types


class QuestionBatches:
    """get_batch(step) -> {"image" (Bs, 3, S, S), "which" (B,), "ids" (B, T), "mask" (B, T),
    "type" (B,), "answer" (B,)} with B = scenes x questions per scene; a function of
    (seed, step) only, as `minivlm.train.train` needs for exact resume."""

    def __init__(self, data: ShapesQuestions, tok: CaptionTokenizer, scenes: int, seed: int = 0):
        if scenes < 1:
            raise ValueError(f"scenes per batch must be >= 1, got {scenes}")
        self.data, self.scenes, self.seed = data, scenes, seed
        self.per_scene = len(data.questions) // len(data.scenes)
        self.ids, self.mask = tok.batch_encode(data.questions)  # (Q, T) each
        self.types = answer_types(data.questions)  # (Q,)

    def __call__(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, step])
        s = rng.integers(len(self.data.scenes), size=self.scenes)  # (Bs,)
        q = (s[:, None] * self.per_scene + np.arange(self.per_scene)).reshape(-1)  # (B,)
        width = int(self.mask[q].sum(1).max())
        return {
            "image": to_tensor(self.data.images[s]),  # (Bs, 3, S, S)
            "which": torch.arange(self.scenes).repeat_interleave(self.per_scene),  # (B,)
            "ids": self.ids[q, :width],
            "mask": self.mask[q, :width],
            "type": self.types[q],
            "answer": self.data.answer_ids[q],
        }


def fit(
    model: _Answerer,
    data: ShapesQuestions,
    steps: int,
    scenes: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    warmup: int = 100,
    log_every: int = 50,
    held_out: ShapesQuestions | None = None,
    eval_every: int = 0,
    max_seconds: float = 0.0,
) -> list[dict]:
    """Train an answerer for `steps` steps of `scenes` scenes (all their questions); the log.

    held_out: questions scored (`accuracy`) every `eval_every` steps and at the end, logged as
    records with "eval": True and one accuracy per kind: the learning curve. max_seconds > 0
    stops training sooner if it runs that long (`TrainConfig.max_seconds`)."""
    batches = QuestionBatches(data, model.tok, scenes, seed)
    cfg = TrainConfig(steps=steps, lr=lr, warmup=min(warmup, max(1, steps // 10)), min_lr=lr / 20,
                      seed=seed, log_every=log_every, eval_every=eval_every,
                      max_seconds=max_seconds, progress=False)  # fmt: skip
    score = (lambda m, _: accuracy(m, held_out)) if held_out is not None else None
    return train(model, batches, cfg, evaluate=score, device=model.types.device)  # where it is


def steps_for(
    model: _Answerer, data: ShapesQuestions, seconds: float, scenes: int = 32, probe: int = 12
) -> int:
    """How many training steps fit in `seconds` (`minivlm.train.steps_for`)."""
    batches = QuestionBatches(data, model.tok, scenes, seed=12345)
    return time_steps(model, batches, seconds, probe, model.types.device)


def _score(right: np.ndarray, kinds: list[str]) -> dict[str, float]:
    out: dict[str, list[bool]] = defaultdict(list)
    for r, k in zip(right.tolist(), kinds, strict=True):
        out[k].append(r)
    scores = {k: float(np.mean(out[k])) for k in KINDS if k in out}
    return {**scores, "all": float(np.mean(right))}


@torch.no_grad()
def accuracy(model: _Answerer, data: ShapesQuestions, scenes: int = 200) -> dict[str, float]:
    """Accuracy per kind and overall ("all") of a trained answerer on a question set."""
    batches = QuestionBatches(data, model.tok, scenes)
    right = []
    with evaluating(model):
        device = model.types.device
        for start in range(0, len(data.scenes), scenes):
            s = np.arange(start, min(start + scenes, len(data.scenes)))
            q = (s[:, None] * batches.per_scene + np.arange(batches.per_scene)).reshape(-1)
            batch = {
                "image": to_tensor(data.images[s]).to(device),
                "which": torch.arange(len(s), device=device).repeat_interleave(batches.per_scene),
                "ids": batches.ids[q].to(device),
                "mask": batches.mask[q].to(device),
                "type": batches.types[q].to(device),
            }
            guess = model.guess(batch).cpu()
            right.append((guess == data.answer_ids[q]).numpy())
    return _score(np.concatenate(right), data.kinds)


def reader_accuracy(
    reader: NSReader, data: ShapesQuestions, captions: list[str] | None = None
) -> dict[str, float]:
    """The neuro-symbolic reader's accuracy per kind; captions: one per scene (default: the
    reader's captioner writes them), e.g. the ground-truth captions for its ceiling."""
    captions = captions if captions is not None else reader.describe(data.images)
    guess = [reader.read(captions[w], q) for w, q in zip(data.which, data.questions, strict=True)]
    return _score(np.array(guess) == np.array(data.answers), data.kinds)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
