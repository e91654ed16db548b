"""Chapter 8's auto-checked exercises: the warm-up-then-cosine schedule, colour-word noise, the
two-pathway encoder's per-cell colour, and self-labelling's agreement test.

Each exercise names a reference (the package's own code of `minivlm.train` and
`minivlm.capstone` where it has one) and the mistakes a learner is likely to make, written out
as the wrong code they would write. Colour-word noise is random, so it is checked draw for draw:
the exercise states the order of the draws, and the learner seeds a generator from the case.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..capstone.encoders import TwoPathwayEncoder
from ..capstone.labels import content_words, is_subsequence
from ..capstone.model import colour_ids, noisy_colours
from ..data import CaptionTokenizer, render, sample_scene, to_tensor
from ..data.scenes import BACKGROUND, COLORS, SHAPES, SIZES
from ..train import TrainConfig, lr_at
from .core import Case, Exercise, Mistake

# ---------------------------------------------------------------- 8.1 the schedule


def _schedule_cases() -> list[Case]:
    cfg = TrainConfig(steps=20, lr=3e-3, warmup=4, min_lr=1.5e-4)
    flat = TrainConfig(steps=10, lr=1e-3, warmup=0, min_lr=0.0)
    return [
        Case("step 0, the first warm-up step (lr 3e-3, warm-up 4 of 20 steps)", (0, cfg)),
        Case("step 3, the last warm-up step", (3, cfg)),
        Case("step 4, the first step after the warm-up", (4, cfg)),
        Case("step 12, halfway through the cosine", (12, cfg)),
        Case("step 19, the last step", (19, cfg)),
        Case("step 25, past the end of training", (25, cfg)),
        Case("no warm-up (warmup = 0), step 3 of 10", (3, flat)),
    ]


def warmup_cosine(step: int, cfg: TrainConfig) -> float:
    """The learning rate of `step`: `minivlm.train.lr_at`, the schedule of chapter 8."""
    return lr_at(step, cfg)


def _cosine(cfg: TrainConfig, progress: float, floor: float | None = None) -> float:
    low = cfg.min_lr if floor is None else floor
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


def _no_warmup(step, cfg):
    return _cosine(cfg, min(1.0, step / cfg.steps))  # the cosine from step 0


def _warmup_from_zero(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * step / cfg.warmup  # step 0 gets a learning rate of 0
    return lr_at(step, cfg)


def _warmup_one_too_long(step, cfg):
    if step <= cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup  # step `warmup` overshoots to lr (W+1)/W
    return lr_at(step, cfg)


def _progress_from_step_zero(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return _cosine(cfg, min(1.0, step / cfg.steps))  # the cosine has already begun at `warmup`


def _progress_over_all_steps(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return _cosine(cfg, min(1.0, (step - cfg.warmup) / cfg.steps))  # never reaches the end


def _down_to_zero(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return _cosine(cfg, min(1.0, (step - cfg.warmup) / (cfg.steps - cfg.warmup)), floor=0.0)


def _no_clamp(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return _cosine(cfg, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))  # climbs again


# ---------------------------------------------------------------- 8.2 colour-word noise


def _noise_cases() -> list[Case]:
    tok = CaptionTokenizer.shapes_world()
    captions = [
        "a small red circle left of a large blue square",
        "a large green triangle",
        "a small yellow square above a small red circle above a large purple circle",
        "a large orange triangle left of a small green square",
    ]
    ids, _ = tok.batch_encode(captions)  # (4, T): [BOS] ... [EOS] [PAD]...
    colours = colour_ids(tok)  # (6,): the ids of the six colour words
    return [
        Case("four captions, p = 0.3, seed 0", (ids, colours, 0.3, 0)),
        Case("four captions, p = 1: every colour word is drawn again, seed 1",
             (ids, colours, 1.0, 1)),
        Case("four captions, p = 0: nothing changes, seed 2", (ids, colours, 0.0, 2)),
        Case("four captions, p = 0.6, seed 3", (ids, colours, 0.6, 3)),
    ]  # fmt: skip


def colour_noise(ids: torch.Tensor, colours: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """`minivlm.capstone.noisy_colours` with its random numbers drawn from a generator seeded by
    `seed`: first the coins (B, T), then the colour indices (B, T)."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # noisy_colours draws from torch's own generator
        torch.default_generator.set_state(g.get_state())  # ... here in the state of g
        return noisy_colours(ids, colours, p)


def _draws(ids, colours, seed, coin_shape=None, picks_first=False):
    g = torch.Generator().manual_seed(seed)
    if picks_first:
        pick = torch.randint(len(colours), ids.shape, generator=g)
        return torch.rand(ids.shape, generator=g), pick
    coin = torch.rand(coin_shape or ids.shape, generator=g)
    return coin, torch.randint(len(colours), ids.shape, generator=g)


def _every_word(ids, colours, p, seed):
    coin, pick = _draws(ids, colours, seed)
    return torch.where(coin < p, colours[pick], ids)  # [BOS], shapes, padding: all swapped


def _keep_with_p(ids, colours, p, seed):
    coin, pick = _draws(ids, colours, seed)
    return torch.where((coin >= p) & torch.isin(ids, colours), colours[pick], ids)  # 1 - p


def _one_coin_per_caption(ids, colours, p, seed):
    coin, pick = _draws(ids, colours, seed, coin_shape=(ids.shape[0], 1))  # (B, 1)
    return torch.where((coin < p) & torch.isin(ids, colours), colours[pick], ids)


def _index_not_id(ids, colours, p, seed):
    coin, pick = _draws(ids, colours, seed)
    return torch.where((coin < p) & torch.isin(ids, colours), pick, ids)  # 0..5, not word ids


def _picks_first(ids, colours, p, seed):
    coin, pick = _draws(ids, colours, seed, picks_first=True)
    return torch.where((coin < p) & torch.isin(ids, colours), colours[pick], ids)


# ---------------------------------------------------------------- 8.3 the colour of a cell

_BG = torch.tensor(BACKGROUND, dtype=torch.float32) / 127.5 - 1  # (3,): in [-1, 1]


def _colour_cases() -> list[Case]:
    half = _BG.view(3, 1, 1).repeat(1, 16, 16)  # (3, 16, 16): background everywhere
    half[:, 0:8, 4:8] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]  # pure red, half a cell
    scenes = [sample_scene(np.random.default_rng(s)) for s in (3, 4)]
    small, large = to_tensor(render(scenes, 32)), to_tensor(render(scenes, 64))  # (2, 3, S, S)
    return [
        Case("a 16-pixel image whose top-left 8 x 8 cell is half red; cells of 8",
             (half[None], _BG, 8)),
        Case("two rendered scenes of 32 pixels, cells of 4", (small, _BG, 4)),
        Case("two rendered scenes of 64 pixels, cells of 8", (large, _BG, 8)),
    ]  # fmt: skip


def cell_colours(images: torch.Tensor, background: torch.Tensor, cell: int) -> torch.Tensor:
    """Images (B, 3, S, S) -> the mean foreground colour of each cell (B, 3, S/cell, S/cell), as
    `TwoPathwayEncoder.forward` feeds it to its colour pathway (its silhouette is the package's)."""
    size = images.shape[-1]
    with torch.random.fork_rng(devices=[]):  # its random initial weights: torch's RNG untouched
        enc = TwoPathwayEncoder(size, d_model=8, grid=size // cell, width=2)
    enc.background = background.view(1, 3, 1, 1)  # the encoder's own is the shapes world's
    m = enc.silhouette(images)  # (B, 1, S, S)
    cover = F.avg_pool2d(m, cell)  # (B, 1, G, G)
    return F.avg_pool2d(images * m, cell) / (cover + 1e-3)  # (B, 3, G, G)


def _silhouette(images, background, per_channel=False, clamp=True):
    diff = images - background.view(1, 3, 1, 1)
    dist = diff.abs() if per_channel else diff.norm(dim=1, keepdim=True)
    m = (dist - 0.15) / 0.3
    return m.clamp(0.0, 1.0) if clamp else m


def _plain_mean(images, background, cell):
    return F.avg_pool2d(images, cell)  # the background's colour mixed in


def _over_the_area(images, background, cell):
    return F.avg_pool2d(images * _silhouette(images, background), cell)  # / cell area only


def _no_epsilon(images, background, cell):
    m = _silhouette(images, background)
    return F.avg_pool2d(images * m, cell) / F.avg_pool2d(m, cell)  # 0 / 0 in empty cells


def _sums_plus_epsilon(images, background, cell):
    m = _silhouette(images, background)
    return (F.avg_pool2d(images * m, cell) * cell**2) / (F.avg_pool2d(m, cell) * cell**2 + 1e-3)


def _per_channel(images, background, cell):
    m = _silhouette(images, background, per_channel=True)  # (B, 3, S, S)
    return F.avg_pool2d(images * m, cell) / (F.avg_pool2d(m, cell) + 1e-3)


def _not_clamped(images, background, cell):
    m = _silhouette(images, background, clamp=False)  # the background weighs -0.5
    return F.avg_pool2d(images * m, cell) / (F.avg_pool2d(m, cell) + 1e-3)


# ---------------------------------------------------------------- 8.4 self-labelling's filter

_TRUE = "a small red circle left of a large blue square"


def _agreement_cases() -> list[Case]:
    return [
        Case("the alt-text is the caption", (_TRUE, _TRUE)),
        Case("a forward paraphrase with a prefix and 'to the left of'",
             (_TRUE, "a photo of a small red circle to the left of a large blue square")),
        Case("the caption names the objects in the wrong order",
             ("a large blue square left of a small red circle",
              "there are two shapes : a small red circle left of a large blue square")),
        Case("the caption gives each object the other's colour",
             ("a small blue circle left of a large red square", _TRUE)),
        Case("a backward paraphrase, and a caption that names the objects in the wrong order",
             ("a large blue square left of a small red circle",
              "a large blue square to the right of a small red circle")),
        Case("the caption leaves out the third object the alt-text names",
             (_TRUE, f"{_TRUE} left of a small green triangle")),
        Case("a count prefix and 'above'",
             ("a large green triangle above a small purple circle",
              "there are two shapes : a large green triangle above a small purple circle")),
    ]  # fmt: skip


def agrees(caption: str, alt_text: str) -> bool:
    """Whether `self_label` keeps `caption` for the image beside `alt_text` (chapter 8)."""
    return content_words(caption) == content_words(alt_text) and is_subsequence(
        caption.split(), alt_text.split()
    )


_WORDS = frozenset(SIZES) | frozenset(COLORS) | frozenset(SHAPES)


def _content(text):
    return [w for w in text.split() if w in _WORDS]


def _as_text(caption, alt_text):
    return caption in alt_text  # "left of" is not in "to the left of"


def _as_a_set(caption, alt_text):
    return set(_content(caption)) == set(_content(alt_text))  # the order is lost


def _content_only(caption, alt_text):
    return _content(caption) == _content(alt_text)  # "left of" vs "right of" never compared


def _subsequence_only(caption, alt_text):
    return is_subsequence(caption.split(), alt_text.split())  # an object may be missing


EXERCISES = [
    Exercise(
        "8.1", "the warm-up-then-cosine schedule", warmup_cosine, _schedule_cases,
        mistakes=[
            Mistake("the cosine starts where the warm-up ends: progress = (step - warmup) / "
                    "(steps - warmup), 0 at the first step after the warm-up",
                    _progress_from_step_zero),
            Mistake("warm up first: for step < warmup the rate is lr * (step + 1) / warmup, and "
                    "the cosine starts only after it", _no_warmup),
            Mistake("step 0 must already train: use (step + 1) / warmup, so that the last "
                    "warm-up step reaches lr", _warmup_from_zero),
            Mistake("the warm-up is steps 0 to warmup - 1: test step < warmup, not <=",
                    _warmup_one_too_long),
            Mistake("the cosine spans the steps after the warm-up: divide by steps - warmup, "
                    "so that progress reaches 1 at the last step", _progress_over_all_steps),
            Mistake("the cosine ends at cfg.min_lr, not at 0: min_lr + 0.5 * (lr - min_lr) * "
                    "(1 + cos(pi * progress))", _down_to_zero),
            Mistake("past the end the rate stays at min_lr: cap progress at 1 "
                    "(min(1.0, progress)), or the cosine climbs again", _no_clamp),
        ],
        atol=1e-10, rtol=1e-7,
    ),
    Exercise(
        "8.2", "colour-word noise", colour_noise, _noise_cases,
        mistakes=[
            Mistake("swap only colour words: and the coin with torch.isin(ids, colours), or "
                    "[BOS], shapes and padding change too", _every_word),
            Mistake("swap where the coin is below p: with p = 0.3 about 30% of the colour "
                    "words change, not 70%", _keep_with_p),
            Mistake("flip one coin per word, torch.rand(ids.shape, generator=g), not one per "
                    "caption", _one_coin_per_caption),
            Mistake("the draw is an index into colours: write colours[pick], the word's id, "
                    "not pick", _index_not_id),
            Mistake("draw in the order given: first the coins (torch.rand), then the colour "
                    "indices (torch.randint), both from the seeded generator", _picks_first),
        ],
        hint="draw both with generator=g, seeded by `seed`, in the order given, and swap only "
             "colour words",
    ),
    Exercise(
        "8.3", "the mean foreground colour of each cell", cell_colours, _colour_cases,
        mistakes=[
            Mistake("weight every pixel by the silhouette m: a plain average mixes in the "
                    "background's colour", _plain_mean),
            Mistake("divide by the coverage (the cell's mean of m, plus 1e-3): a half-covered "
                    "cell must give the object's colour, not half of it", _over_the_area),
            Mistake("divide by the coverage plus 1e-3, as the encoder does: a cell with no "
                    "object then gives 0, not 0 / 0", _no_epsilon),
            Mistake("take means over the cell (F.avg_pool2d) of both x*m and m, so that the "
                    "1e-3 is added to a coverage in [0, 1], not to a sum of pixels",
                    _sums_plus_epsilon),
            Mistake("the silhouette is one number per pixel: the Euclidean norm of x - "
                    "background over the three channels (dim=1, keepdim=True)", _per_channel),
            Mistake("clamp the silhouette to [0, 1]: unclamped, the background weighs -0.5",
                    _not_clamped),
        ],
    ),
    Exercise(
        "8.4", "self-labelling's agreement test", agrees, _agreement_cases,
        mistakes=[
            Mistake("also compare the content words: a caption that leaves out an object is "
                    "still a subsequence of the alt-text", _subsequence_only),
            Mistake("also test that every word of the caption appears in the alt-text, in "
                    "order: 'left of' must be said there, or a backward paraphrase agrees with "
                    "a caption in the wrong order", _content_only),
            Mistake("compare the content words as lists, in order: as sets, a caption that "
                    "names the objects in the wrong order or swaps their colours agrees",
                    _as_a_set),
            Mistake("the alt-text may hold more words than the caption (a prefix, 'to the'): "
                    "test that the caption's words appear in it in order, others allowed "
                    "between", _as_text),
        ],
    ),
]  # fmt: skip
