"""Image-text matching with minimal-edit negatives: the fusion experiment (chapter 5).

Does this caption describe this image? Each negative differs from the true caption by one
small edit of the facts:

* colour:  one object gets another colour         (new words: a bag of words can tell)
* binding: two objects swap their colours          (same words, other pairing)
* relation: the objects swap places ("A left of B" -> "B left of A")  (same words, other order)

A model that pools words into a bag cannot see the last two; a model that binds words to
regions can. To compare *fusion* and not perception, every family reads the same frozen region
features, as ViLBERT read an object detector's: a `RegionEncoder` (a CNN grid, chapter 4)
trained once to name the colour, shape and size of the object in each grid cell.
`run_fusion_experiment` then trains each fusion family of `minivlm.fusion` under the same budget
and reports its accuracy per kind of negative.

Both trainings run on the course's one loop, `minivlm.train.train` (chapter 8): AdamW, a linear
warm-up then a cosine decay, gradient clipping. Its model is an `Objective`, which wraps the
encoder or the matcher and returns {"loss": ...}; the batch of step s is a function of
(seed, s) only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import CaptionTokenizer, caption, make_scenes, render, scene_facts, to_tensor
from .data.scenes import COLORS, SHAPES, SIZES, Scene, SceneFacts
from .fusion import CoAttentionFusion, ConcatFusion, CrossAttentionFusion, LateFusion
from .text import TextEmbedding
from .train import TrainConfig, evaluating
from .train import train as train_loop  # the course's one loop (chapter 8)
from .vision import ConvStem

NEGATIVE_KINDS = ("colour", "binding", "relation")
FAMILIES = ("late-product", "late-concat", "concat", "cross-attention", "co-attention")


def make_negative(facts: SceneFacts, kind: str, rng: np.random.Generator) -> SceneFacts | None:
    """The facts with one minimal edit of `kind`, or None if the scene allows no such edit."""
    objs = [list(o) for o in facts.objects]  # [size, colour, shape] each
    if kind == "colour":
        i = int(rng.integers(len(objs)))
        objs[i][1] = str(rng.choice([c for c in COLORS if c != objs[i][1]]))
    elif kind == "binding":
        pairs = [
            (i, j)
            for i in range(len(objs))
            for j in range(i + 1, len(objs))
            if objs[i][1] != objs[j][1]
        ]
        if not pairs:
            return None
        i, j = pairs[int(rng.integers(len(pairs)))]
        objs[i][1], objs[j][1] = objs[j][1], objs[i][1]
    elif kind == "relation":
        if len(objs) < 2 or len({tuple(o) for o in objs}) < 2:
            return None
        i, j = sorted(rng.choice(len(objs), size=2, replace=False))
        if objs[i] == objs[j]:
            return None
        objs[i], objs[j] = objs[j], objs[i]
    else:
        raise ValueError(f"unknown negative kind {kind!r}; expected one of {NEGATIVE_KINDS}")
    out = SceneFacts(tuple(tuple(o) for o in objs), facts.relation)  # type: ignore[arg-type]
    return None if out == facts else out


def cell_labels(scenes: list[Scene], grid: int) -> torch.Tensor:
    """(N, G*G, 3) long: colour, shape and size of the object centred in each grid cell,
    each 0 for an empty cell and 1 + index otherwise."""
    labels = torch.zeros(len(scenes), grid * grid, 3, dtype=torch.long)
    for n, scene in enumerate(scenes):
        for o in scene.objects:
            cell = min(int(o.y * grid), grid - 1) * grid + min(int(o.x * grid), grid - 1)
            labels[n, cell] = torch.tensor(
                [
                    1 + list(COLORS).index(o.color),
                    1 + SHAPES.index(o.shape),
                    1 + list(SIZES).index(o.size),
                ]
            )
    return labels


class RegionEncoder(nn.Module):
    """A CNN grid (chapter 4) with one classifier per attribute, applied to every grid cell."""

    def __init__(self, image_size: int, d_model: int = 64, grid: int = 4):
        super().__init__()
        self.stem = ConvStem(image_size, d_model, grid=grid, width=16)
        self.heads = nn.ModuleList(
            nn.Linear(d_model, 1 + n) for n in (len(COLORS), len(SHAPES), len(SIZES))
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.stem(images)  # (B, G*G, D) region features

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        feats = self(images)
        return sum(
            F.cross_entropy(h(feats).flatten(0, 1), labels[..., i].flatten())
            for i, h in enumerate(self.heads)
        )


class Objective(nn.Module):
    """What `minivlm.train.train` steps: forward(batch) -> {"loss": loss_fn(model, *batch)}.

    The wrapped model keeps its own forward (the encoder still maps images to features, the
    matcher still maps a pair to a logit); only training sees this view of it."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., torch.Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: tuple) -> dict[str, torch.Tensor]:
        return {"loss": self.loss_fn(self.model, *batch)}


def loop_config(steps: int, lr: float, seed: int, progress: bool) -> TrainConfig:
    """The schedule of both trainings here: warm up over the first tenth, cosine down to 0."""
    return TrainConfig(
        steps=steps, lr=lr, warmup=max(1, steps // 10), seed=seed, log_every=50, progress=progress
    )


def region_batch(images: torch.Tensor, labels: torch.Tensor, step: int, batch: int, seed: int):
    """The batch of `step`: `batch` images drawn with replacement, a function of (seed, step).
    Returns images (B, 3, S, S) and their cell labels (B, G*G, 3)."""
    idx = torch.from_numpy(np.random.default_rng([seed, step]).integers(len(images), size=batch))
    return images[idx], labels[idx]


def train_region_encoder(
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int = 400,
    batch: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = False,
    device: torch.device | str = "cpu",
) -> RegionEncoder:
    """Supervised per-cell attributes; returns the encoder frozen (no gradients, eval mode).
    `device`: where the encoder trains and stays (batches are drawn on the CPU)."""
    torch.manual_seed(seed)
    enc = RegionEncoder(images.shape[-1])
    train_loop(
        Objective(enc, RegionEncoder.loss),
        lambda step: region_batch(images, labels, step, batch, seed),
        loop_config(steps, lr, seed, progress),
        device=device,
    )
    return enc.requires_grad_(False).eval()  # frozen for good, as a detector's features are


def cell_accuracy(
    enc: RegionEncoder,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device | str = "cpu",
) -> float:
    """Fraction of occupied cells whose colour, shape and size are all named right.
    `device`: where the encoder is."""
    with evaluating(enc):
        feats = enc(images.to(device))  # (N, G*G, D)
        pred = torch.stack([h(feats).argmax(-1) for h in enc.heads], dim=-1).cpu()  # (N, G*G, 3)
    occupied = labels[..., 0] > 0  # (N, G*G)
    return (pred == labels).all(-1)[occupied].float().mean().item()


@dataclass
class MatchingData:
    """Rendered images, and for each: the true caption plus one negative per kind."""

    images: torch.Tensor  # (N, 3, S, S)
    labels: torch.Tensor  # (N, G*G, 3): what each grid cell holds (for the region encoder)
    ids: dict[str, torch.Tensor]  # "positive" and each kind -> (N, T) ids
    masks: dict[str, torch.Tensor]  # -> (N, T) bool
    valid: dict[str, torch.Tensor]  # kind -> (N,) bool: the scene allows this edit
    regions: torch.Tensor | None = None  # (N, G*G, D) frozen region features, once computed

    def encode(
        self, enc: RegionEncoder, batch: int = 512, device: torch.device | str = "cpu"
    ) -> None:
        """Compute the frozen region features (kept on the CPU); `device`: where `enc` is."""
        with evaluating(enc):
            self.regions = torch.cat(
                [
                    enc(self.images[i : i + batch].to(device)).cpu()
                    for i in range(0, len(self.images), batch)
                ]
            )  # (N, G*G, D)


def build_matching_data(
    split: str,
    n: int,
    size: int,
    tok: CaptionTokenizer,
    seed: int = 0,
    n_objects: int | None = None,
    grid: int = 4,
) -> MatchingData:
    scenes = make_scenes(split, n, seed=seed, n_objects=n_objects)
    images = to_tensor(render(scenes, size=size, seed=seed))  # (N, 3, S, S)
    rng = np.random.default_rng(seed + 17)
    facts = [scene_facts(s) for s in scenes]
    texts = {"positive": [caption(f) for f in facts]}
    texts["other"] = texts["positive"][1:] + texts["positive"][:1]  # another scene's caption
    valid = {
        "other": torch.tensor(
            [a != b for a, b in zip(texts["positive"], texts["other"], strict=True)]
        )
    }
    for kind in NEGATIVE_KINDS:
        negs = [make_negative(f, kind, rng) for f in facts]
        valid[kind] = torch.tensor([g is not None for g in negs])
        texts[kind] = [
            caption(g) if g is not None else caption(f) for g, f in zip(negs, facts, strict=True)
        ]
    # one batch_encode for every kind, so all share one width; then split back by kind
    all_ids, all_masks = tok.batch_encode([t for ts in texts.values() for t in ts])
    ids = dict(zip(texts, all_ids.split(n), strict=True))
    masks = dict(zip(texts, all_masks.split(n), strict=True))
    return MatchingData(images, cell_labels(scenes, grid), ids, masks, valid)


class MatchModel(nn.Module):
    """Frozen region features + word embeddings -> a fusion family -> one matching logit."""

    def __init__(
        self,
        family: str,
        vocab_size: int,
        d_region: int = 64,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        n_regions: int = 16,
    ):
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"unknown fusion family {family!r}; expected one of {FAMILIES}")
        self.family = family
        self.img_proj = nn.Linear(d_region, d_model)
        self.img_pos = nn.Parameter(torch.randn(n_regions, d_model) * 0.02)  # where each cell is
        self.text = TextEmbedding(vocab_size, d_model, max_len=64)
        if family.startswith("late"):
            # late fusion still gets a text encoder, so words can see their neighbours first
            self.text_encoder = ConcatFusion(d_model, n_heads, 1).encoder
            self.fuser = LateFusion(d_model, family.removeprefix("late-"))
        else:
            self.text_encoder = None
            fuser = {"concat": ConcatFusion, "cross-attention": CrossAttentionFusion,
                     "co-attention": CoAttentionFusion}[family]  # fmt: skip
            self.fuser = fuser(d_model, n_heads, n_layers)
        self.head = nn.Linear(d_model, 1)

    def forward(self, regions: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """regions (B, G*G, d_region), ids and mask (B, T) -> logits (B,)."""
        img = self.img_proj(regions) + self.img_pos  # (B, G*G, D)
        txt = self.text(ids)  # (B, T, D)
        if self.text_encoder is not None:
            txt = self.text_encoder(txt, key_mask=mask)[0]
        return self.head(self.fuser(img, txt, mask)).squeeze(-1)


TRAIN_TEXTS = ("positive", *NEGATIVE_KINDS, "other")


def ranking_batch(data: MatchingData, step: int, batch: int, seed: int):
    """The batch of `step`, a function of (seed, step): `batch` distinct images, each with its
    caption and all its negatives (the three minimal edits and an easy one, the caption of
    another image). Returns region features (B, G*G, D), ids and masks (B, 5, T), and which
    texts are valid (B, 5)."""
    n = data.images.shape[0]
    idx = torch.from_numpy(np.random.default_rng([seed, step]).permutation(n)[:batch])
    ids = torch.stack([data.ids[k][idx] for k in TRAIN_TEXTS], dim=1)  # (B, 5, T)
    mask = torch.stack([data.masks[k][idx] for k in TRAIN_TEXTS], dim=1)  # (B, 5, T)
    valid = torch.stack(
        [data.valid.get(k, torch.ones(n, dtype=torch.bool))[idx] for k in TRAIN_TEXTS], 1
    )  # (B, 5)
    return data.regions[idx], ids, mask, valid


def ranking_loss(model: MatchModel, regions, ids, mask, valid) -> torch.Tensor:
    """Cross-entropy of picking the true caption (index 0) among the image's valid texts."""
    B, K, T = ids.shape
    logits = model(regions.repeat_interleave(K, 0), ids.reshape(B * K, T), mask.reshape(B * K, T))
    logits = logits.view(B, K).masked_fill(~valid, float("-inf"))  # (B, K)
    return F.cross_entropy(logits, torch.zeros(B, dtype=torch.long, device=logits.device))


def evaluate(
    model: MatchModel, data: MatchingData, batch: int = 256, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Accuracy on each kind of negative: a pair counts as right when the true caption scores
    higher than its edited twin (chance = 0.5). The model leaves in the mode it came in.
    `device`: where the model is."""
    out = {}
    n = data.images.shape[0]
    with evaluating(model):
        for kind in NEGATIVE_KINDS:
            wins = []
            for s in range(0, n, batch):
                sl = slice(s, min(n, s + batch))
                keep = data.valid[kind][sl]  # (b,) scenes that allow this edit
                if not keep.any():
                    continue
                img = data.regions[sl][keep].to(device)  # (b', G*G, D)
                pos_ids, pos_mask = data.ids["positive"][sl][keep], data.masks["positive"][sl][keep]
                neg_ids, neg_mask = data.ids[kind][sl][keep], data.masks[kind][sl][keep]
                pos = model(img, pos_ids.to(device), pos_mask.to(device))
                neg = model(img, neg_ids.to(device), neg_mask.to(device))
                wins.append((pos > neg).cpu())  # (b',)
            out[kind] = torch.cat(wins).float().mean().item()
    return out


def train_matcher(
    family: str,
    train: MatchingData,
    test: MatchingData,
    vocab_size: int,
    steps: int = 600,
    batch: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
    device: torch.device | str = "cpu",
) -> dict:
    """Train one fusion family for `steps` steps on frozen regions, then evaluate it.
    Returns the family, seed, training seconds, last logged loss and accuracy per negative.
    `device`: where the model trains (batches are drawn on the CPU)."""
    torch.manual_seed(seed)
    model = MatchModel(
        family,
        vocab_size,
        d_region=train.regions.shape[-1],
        n_regions=train.regions.shape[1],
    )
    t0 = time.perf_counter()
    records = train_loop(
        Objective(model, ranking_loss),
        lambda step: ranking_batch(train, step, batch, seed),
        loop_config(steps, lr, seed, progress),
        device=device,
    )
    seconds = time.perf_counter() - t0
    return {
        "family": family,
        "seed": seed,
        "seconds": seconds,
        "loss": records[-1]["loss"],
        **evaluate(model, test, device=device),
    }


def prepare_experiment(
    n_train: int = 4000,
    n_test: int = 600,
    size: int = 32,
    region_steps: int = 400,
    device: torch.device | str = "cpu",
) -> tuple[MatchingData, MatchingData, int, float]:
    """Data for both splits, plus the region encoder trained once and applied to both.
    Returns (train, test, vocab size, the encoder's per-cell accuracy on test).
    `device`: where the encoder trains and runs (the data stay on the CPU)."""
    tok = CaptionTokenizer.shapes_world()
    train = build_matching_data("train", n_train, size, tok)
    test = build_matching_data("test", n_test, size, tok)
    enc = train_region_encoder(train.images, train.labels, steps=region_steps, device=device)
    train.encode(enc, device=device)
    test.encode(enc, device=device)
    return train, test, len(tok), cell_accuracy(enc, test.images, test.labels, device)


def run_fusion_experiment(
    seeds=(0,),
    steps: int = 600,
    families=FAMILIES,
    progress: bool = False,
    device: torch.device | str = "cpu",
    **data_kw,
) -> tuple[list[dict], float]:
    """Every family x seed under one budget (same data, regions, steps, batch, learning rate).
    `device`: where every model trains and runs."""
    train, test, vocab, region_acc = prepare_experiment(device=device, **data_kw)
    results = [
        train_matcher(f, train, test, vocab, steps=steps, seed=s, progress=progress, device=device)
        for s in seeds
        for f in families
    ]
    return results, region_acc
