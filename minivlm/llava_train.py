"""Training chapter 10's PrefixVLM in LLaVA's two stages, and scoring it (chapter 10).

* Stage 1, alignment: "describe the image ." answered with the scene's caption (chapter 8's
  captions), the LM frozen, so only the projector learns: it learns to write image tokens that
  the LM already knows how to read, as LLaVA's `--tune_mm_mlp_adapter` does.
* Stage 2, instruction tuning: chapter 9's questions, each answered by one word, mixed with
  describe prompts. The projector learns, and the LM too if `unfreeze_lm` says so (whole, or its
  last k blocks).

Both stages read a `ShapesQuestions` set: its images, its questions and its scenes' captions
(a ShapesQuestions and a ShapesCaptions of one split and seed draw the same pixels).
`DialogueBatches` is get_batch(step) for `minivlm.train.train`, a function of (seed, step);
each scene's image goes through the encoder once and serves all its dialogues (`which`).
`accuracy` answers by greedy decoding: per question kind, and caption exact match for describe.
`steps_for` turns seconds into steps, to compare recipes (or chapters) at equal training time.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import caption, to_tensor
from .data.corpus import DESCRIBE
from .data.questions import ShapesQuestions
from .errors import InputError
from .llava import PrefixVLM, encode_dialogues
from .train import TrainConfig, train
from .train import steps_for as time_steps
from .vqa_train import _score


class DialogueBatches:
    """get_batch(step) -> {"image" (Bs, 3, S, S), "which" (B,), "ids", "mask", "answer" (B, T)}.

    Stage 1: one describe dialogue per scene (B = Bs). Stage 2: every question of each scene,
    plus a describe dialogue for a share `describe` of the scenes (B = Bs * (per_scene +
    describe)). Describe answers are about ten words, questions' one, so with the loss averaged
    over answer tokens, describe = 0.5 gives the two about equal weight."""

    def __init__(
        self, data: ShapesQuestions, tok, scenes: int, stage: int, describe: float = 0.5,
        seed: int = 0, max_len: int = 48,
    ):  # fmt: skip
        if isinstance(scenes, bool) or not isinstance(scenes, int) or scenes < 1:
            raise InputError("scenes", "an int >= 1 (scenes per batch)", repr(scenes))
        if stage not in (1, 2):
            raise InputError("stage", "1 (captions) or 2 (instructions)", repr(stage))
        if not 0.0 <= describe <= 1.0:
            raise InputError("describe", "a share in [0, 1]", describe)
        self.data, self.scenes, self.stage, self.seed = data, scenes, stage, seed
        self.describe = describe
        n = len(data.scenes)
        self.n_questions, self.per_scene = len(data.questions), len(data.questions) // n
        questions = [*data.questions, *[DESCRIBE] * n]  # row Q + i: describe scene i
        answers = [*data.answers, *(caption(s) for s in data.scenes)]
        self.ids, self.mask, self.answer = encode_dialogues(tok, questions, answers, max_len)

    def __call__(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, step])
        s = rng.integers(len(self.data.scenes), size=self.scenes)  # (Bs,)
        k = self.scenes if self.stage == 1 else round(self.describe * self.scenes)
        rows, which = self.n_questions + s[:k], np.arange(k)  # describe the first k scenes
        if self.stage == 2:
            q = (s[:, None] * self.per_scene + np.arange(self.per_scene)).reshape(-1)
            rows = np.concatenate([q, rows])  # (B,)
            which = np.concatenate([np.arange(self.scenes).repeat(self.per_scene), which])
        width = int(self.mask[rows].sum(1).max())
        return {
            "image": to_tensor(self.data.images[s]),  # (Bs, 3, S, S)
            "which": torch.from_numpy(which),  # (B,)
            "ids": self.ids[rows, :width],  # (B, T)
            "mask": self.mask[rows, :width],
            "answer": self.answer[rows, :width],
        }


def _trainable(model: PrefixVLM, stage: int, unfreeze_lm: bool | int) -> None:
    """Freeze or unfreeze the LM as a stage says (the projector always learns)."""
    if stage not in (1, 2):
        raise InputError("stage", "1 (captions) or 2 (instructions)", repr(stage))
    frozen = unfreeze_lm is False or (type(unfreeze_lm) is int and unfreeze_lm == 0)
    if stage == 1 and not frozen:
        raise InputError(
            "unfreeze_lm", "False in stage 1 (the projector learns alone)", unfreeze_lm
        )
    if frozen:
        model.freeze_lm()
    else:
        model.unfreeze_lm(None if unfreeze_lm is True else unfreeze_lm)  # type: ignore[arg-type]


def fit_stage(
    model: PrefixVLM,
    data: ShapesQuestions,
    steps: int,
    stage: int,
    unfreeze_lm: bool | int = False,
    scenes: int = 32,
    lr: float = 2e-3,
    describe: float = 0.5,
    seed: int = 0,
    warmup: int = 50,
    log_every: int = 50,
    held_out: ShapesQuestions | None = None,
    eval_every: int = 0,
    out_dir=None,
    max_seconds: float = 0.0,
) -> list[dict]:
    """Train one stage for `steps` steps of `scenes` scenes, where the model is; the log.

    unfreeze_lm (stage 2 only): False or 0, the LM stays frozen; True, all of it learns; k, its
    last k blocks (`PrefixVLM.unfreeze_lm`). The encoder never learns. held_out: scored
    (`accuracy`) every eval_every steps and at the end, logged as records with "eval": True.
    out_dir: checkpoints and metrics.jsonl, resumed from there (`minivlm.train.train`).
    max_seconds > 0 stops training sooner if it runs that long (`TrainConfig.max_seconds`)."""
    _trainable(model, stage, unfreeze_lm)
    batches = DialogueBatches(data, model.tok, scenes, stage, describe, seed, model.cfg.lm.max_len)
    cfg = TrainConfig(steps=steps, lr=lr, warmup=min(warmup, max(1, steps // 10)), min_lr=lr / 20,
                      seed=seed, log_every=log_every, eval_every=eval_every,
                      max_seconds=max_seconds, progress=False)  # fmt: skip
    score = (lambda m, _: accuracy(m, held_out)) if held_out is not None else None
    return train(model, batches, cfg, out_dir, evaluate=score, device=model.device)


def steps_for(
    model: PrefixVLM,
    data: ShapesQuestions,
    seconds: float,
    stage: int,
    unfreeze_lm: bool | int = False,
    scenes: int = 32,
    describe: float = 0.5,
    probe: int = 12,
) -> int:
    """How many steps of `fit_stage` with these settings fit in `seconds` (timed on a copy,
    `minivlm.train.steps_for`): chapter 10 against chapter 9 at equal training time."""
    batches = DialogueBatches(data, model.tok, scenes, stage, describe, 12345, model.cfg.lm.max_len)
    ready = lambda twin: _trainable(twin, stage, unfreeze_lm)  # noqa: E731
    return time_steps(model, batches, seconds, probe, model.device, setup=ready)


@torch.no_grad()
def accuracy(
    model: PrefixVLM, data: ShapesQuestions, scenes: int = 100, describe: bool = True
) -> dict[str, float]:
    """Greedy answers to every question of `data`: accuracy per kind and "all" (an answer is
    right when its one word is the answer and [EOS] follows); with describe, "describe": how
    often "describe the image ." gets each scene's caption word for word (exact match)."""
    n = len(data.scenes)
    per_scene = len(data.questions) // n
    said, described = [], []
    for start in range(0, n, scenes):
        s = np.arange(start, min(start + scenes, n))  # (b,)
        images = to_tensor(data.images[s])  # (b, 3, S, S)
        q = (s[:, None] * per_scene + np.arange(per_scene)).reshape(-1)  # (b * per_scene,)
        which = torch.arange(len(s)).repeat_interleave(per_scene)
        said += model.reply(images, which, [data.questions[i] for i in q], max_new=2)
        if describe:
            described += model.reply(images, torch.arange(len(s)), [DESCRIBE] * len(s))
    scores = _score(np.array(said) == np.array(data.answers), data.kinds)
    if describe:
        truth = [caption(sc) for sc in data.scenes]
        scores["describe"] = float(np.mean([a == b for a, b in zip(described, truth, strict=True)]))
    return scores
