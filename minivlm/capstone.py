"""The capstone: pretrain on noisy alt-text, then fine-tune a captioner (chapter 8).

Stage 1 pretrains an image encoder and a text side on many image/alt-text pairs with the three
objectives of chapter 6: ITC (a unimodal text encoder against the pooled image), ITM with hard
negatives and MLM (both through a multimodal encoder that cross-attends to the image), plus
BLIP's image-grounded language modelling (the same multimodal stack, causal). Stage 2
fine-tunes a caption decoder on a small set of fully captioned scenes. As in BLIP, the decoder
*is* the multimodal encoder run causally: its cross-attention, which learned in stage 1 which
region a word names, is reused as it is.

Stage 1b (`curated_steps`, used by the low-caption bench) curates the alt-text as web-scale
pretraining does: `curate` keeps the texts that are complete sentences and whose ITC score says
they match their image, and the multimodal stack then writes only those, word by word. Most
alt-text (partial, bag-of-words, or another scene's caption) teaches *what* is in a picture but
not in which order to say it; the curated pairs do both.

Stage 3 (`self_train_steps`, `self_train_rounds`) is the captioner half of BLIP's CapFilt: the
fine-tuned captioner captions the alt-text images in the canonical style, `self_label`
keeps a synthetic caption only where it names the same sizes, colours and shapes, in the same
order, as the alt-text beside the image, and every word of it is said there in that order; the
captioner trains again on those plus its real captions. Each round labels again with the better
captioner. The paraphrases taught grounding slowly; the synthetic captions teach it in the one
word order that is scored.

The image encoder has two pathways (see `TwoPathwayEncoder`): a shape pathway that sees only
the silhouette of the scene and a colour pathway that sees only the mean colour of each cell.
Their tokens stay separate all the way to the decoder, so a word can read the shape of an object
without its colour. That, and noise on the colour words the multimodal stack reads in both
stages, is what lets the captioner name a red triangle although training never showed one.

`run(config)` does both stages and the evaluation; the command line
`python -m minivlm capstone --preset ci|cpu|gpu|lowcap` calls it (see `PRESETS`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .captioner import CaptionDecoder, teacher_forcing_loss
from .data import AltTextPairs, CaptionTokenizer, ShapesCaptions, to_tensor
from .data.captions import ALT_KINDS, caption, try_parse
from .data.scenes import BACKGROUND, COLORS, SHAPES, SIZES, scene_facts
from .fusion import masked_mean
from .metrics import caption_scores, grounded_accuracy
from .objectives import Temperature, itc_loss, itm_pairs, mask_tokens, retrieval, similarity
from .text import TextEmbedding
from .train import TrainConfig, latest_checkpoint, rank_slice, train
from .transformer import Encoder
from .vision import sinusoidal_positions_2d

# ---------------------------------------------------------------- configuration


@dataclass
class CapstoneConfig:
    """Everything a capstone run depends on. Presets below; any field can be overridden."""

    name: str = "custom"
    image_size: int = 64
    grid: int = 8  # G: each pathway gives G*G tokens
    width: int = 16  # channels of the shape pathway's first conv
    d_model: int = 128
    n_heads: int = 4
    text_layers: int = 1  # the unimodal text encoder (ITC)
    fuse_layers: int = 2  # the multimodal encoder = the caption decoder
    n_alt: int = 20_000  # alt-text pairs for stage 1
    n_captioned: int = 5_000  # fully captioned scenes for stage 2
    n_test: int = 500
    n_comp: int = 500
    batch: int = 32
    pretrain_steps: int = 600
    curated_steps: int = 0  # stage 1b: LM on the alt-texts that pass `curate` (0: skip)
    curate_keep: float = 0.5  # share of the parsed alt-texts that curation keeps
    self_train_steps: int = 0  # stage 3: captions on self-labelled alt-text images (0: skip)
    self_train_rounds: int = 1  # stage 3 labels, then trains self_train_steps, this many times
    self_train_last_steps: int = 0  # steps of stage 3's last round (0: self_train_steps)
    real_share: float = 0.25  # share of stage 3's batches drawn from the real captions
    caption_steps: int = 1000
    lr: float = 3e-3
    finetune_lr: float = 0.0  # stage 2's peak lr after stage 1 (0: lr)
    warmup: int = 50
    colour_noise: float = 0.3  # chance that the decoder reads a random colour word
    itm_share: float = 0.25  # share of the batch that also gets ITM pairs
    mlm_prob: float = 0.4  # share of words MLM hides (BERT: 0.15; alt-texts are short)
    seed: int = 0
    device: str = "cpu"
    amp: bool = True
    compile: bool = False
    threads: int = 0  # 0: leave torch's default
    progress: bool = True  # tqdm bars
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image_size % self.grid or (self.image_size // self.grid) & (
            self.image_size // self.grid - 1
        ):
            raise ValueError(
                f"image_size / grid must be a power of two, got {self.image_size} / {self.grid}"
            )
        for name in (
            "n_alt", "n_captioned", "n_test", "n_comp", "batch", "caption_steps",
            "self_train_rounds",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "pretrain_steps", "curated_steps", "self_train_steps", "self_train_last_steps",
        ):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.curate_keep <= 1.0:
            raise ValueError(f"curate_keep must be in (0, 1], got {self.curate_keep}")
        if self.self_train_steps and not self.curated_steps:
            raise ValueError("self_train_steps needs curated_steps > 0: stage 3 follows stage 1b")
        if not 0.0 < self.real_share < 1.0:
            raise ValueError(f"real_share must be in (0, 1), got {self.real_share}")
        if self.finetune_lr < 0:
            raise ValueError(f"finetune_lr must be >= 0, got {self.finetune_lr}")
        if not 0.0 < self.mlm_prob < 1.0:
            raise ValueError(f"mlm_prob must be in (0, 1), got {self.mlm_prob}")
        if not 0.0 <= self.colour_noise <= 1.0:
            raise ValueError(f"colour_noise must be in [0, 1], got {self.colour_noise}")


PRESETS: dict[str, CapstoneConfig] = {
    # the notebook's run: about 3 minutes on a 2-core CPU
    "ci": CapstoneConfig(
        name="ci", n_alt=10_000, n_captioned=5_000, n_test=300, n_comp=300,
        pretrain_steps=100, caption_steps=1300,
    ),
    # `make capstone`: about 10 minutes on a 2-core CPU
    "cpu": CapstoneConfig(
        name="cpu", n_alt=50_000, n_captioned=20_000, pretrain_steps=200, caption_steps=4000,
    ),
    # the low-caption regime (bench/capstone.py --what lowcap): the ci model, 100 captions,
    # stage 1b (LM on curated alt-text), then 7 rounds of stage 3 (self-training), the last
    # one 4 times as long; about 31 minutes of training on one CPU thread
    "lowcap": CapstoneConfig(
        name="lowcap", n_alt=50_000, n_captioned=100, n_test=300, n_comp=300, pretrain_steps=150,
        curated_steps=2500, caption_steps=300, self_train_steps=500, self_train_rounds=7,
        self_train_last_steps=2000, finetune_lr=1e-3,
    ),
    # a CUDA GPU: larger batches, more steps, bf16
    "gpu": CapstoneConfig(
        name="gpu", n_alt=100_000, n_captioned=20_000, n_test=2000, n_comp=2000, batch=128,
        pretrain_steps=3000, caption_steps=6000, lr=1e-3, device="cuda",
    ),
}  # fmt: skip


def preset(name: str, **overrides) -> CapstoneConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {tuple(PRESETS)}")
    return replace(PRESETS[name], **overrides)


# ---------------------------------------------------------------- the model


class TwoPathwayEncoder(nn.Module):
    """Images (B, 3, S, S) -> 2*G*G tokens (B, 2*G*G, D): G*G shape tokens, G*G colour tokens.

    * The silhouette m = how far each pixel is from the background colour, squashed to [0, 1].
      It is the same for a red and a blue triangle, so the shape pathway, a small strided CNN
      on m, cannot learn that "red things are not triangles".
    * The colour pathway sees only the mean foreground colour of each cell, sum(x m) / sum(m),
      through a per-cell MLP: it knows nothing of shape.
    Both get the 2D sinusoidal position of their cell and a learned type vector.
    """

    def __init__(self, image_size: int, d_model: int, grid: int = 8, width: int = 16):
        super().__init__()
        stages = int(math.log2(image_size // grid))
        layers: list[nn.Module] = []
        c = 1
        for i in range(stages):
            layers += [nn.Conv2d(c, width * 2**i, 3, stride=2, padding=1), nn.GELU()]
            c = width * 2**i
        layers += [nn.Conv2d(c, c, 3, padding=1), nn.GELU()]
        self.shape_net = nn.Sequential(*layers)
        self.colour_net = nn.Sequential(nn.Linear(3, 32), nn.GELU(), nn.Linear(32, 32))
        self.shape_proj = nn.Linear(c + 1, d_model)
        self.colour_proj = nn.Linear(32 + 1, d_model)
        self.shape_norm, self.colour_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.register_buffer("pos", sinusoidal_positions_2d(grid, grid, d_model), persistent=False)
        self.type_emb = nn.Parameter(torch.randn(2, d_model) * 0.02)  # shape, colour
        bg = torch.tensor(BACKGROUND, dtype=torch.float32).div(127.5).sub(1.0)
        self.register_buffer("background", bg.view(1, 3, 1, 1), persistent=False)
        self.image_size, self.grid, self.cell = image_size, grid, image_size // grid

    def silhouette(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 1, S, S): 0 on the background, 1 inside objects."""
        dist = (images - self.background).norm(dim=1, keepdim=True)
        return ((dist - 0.15) / 0.3).clamp(0.0, 1.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(
                f"expected images (B, 3, {self.image_size}, {self.image_size}), "
                f"got {tuple(images.shape)}"
            )
        m = self.silhouette(images)  # (B, 1, S, S)
        cover = F.avg_pool2d(m, self.cell)  # (B, 1, G, G): how much of each cell is object
        shape = self.shape_net(m)  # (B, C, G, G)
        colour = F.avg_pool2d(images * m, self.cell) / (cover + 1e-3)  # (B, 3, G, G)
        shape = torch.cat([shape, cover], 1).flatten(2).transpose(1, 2)  # (B, G*G, C+1)
        colour = colour.flatten(2).transpose(1, 2)  # (B, G*G, 3)
        colour = torch.cat([self.colour_net(colour), cover.flatten(2).transpose(1, 2)], -1)
        s = self.shape_norm(self.shape_proj(shape) + self.pos + self.type_emb[0])  # (B, G*G, D)
        c = self.colour_norm(self.colour_proj(colour) + self.pos + self.type_emb[1])
        return torch.cat([s, c], dim=1)  # (B, 2*G*G, D)


class TextEncoder(nn.Module):
    """Unimodal text encoder for ITC: embeddings, a pre-LN Transformer, masked mean."""

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, max_len: int):
        super().__init__()
        self.embed = TextEmbedding(vocab_size, d_model, max_len=max_len)
        self.encoder = Encoder(n_layers, d_model, n_heads, 4 * d_model, norm_first=True)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, _ = self.encoder(self.embed(ids), key_mask=mask)  # (B, T, D)
        return masked_mean(h, mask)  # (B, D)


def _images(batch: dict, device) -> torch.Tensor:
    return batch["image"].to(device, non_blocking=True)


def noisy_colours(ids: torch.Tensor, colour_ids: torch.Tensor, p: float) -> torch.Tensor:
    """Replace each colour word of ids (B, T) by a random colour with probability p.

    The decoder reads these words but must still write the true next word, so it cannot learn
    "after 'red' comes no triangle" from the text: it has to look at the image.
    """
    if p <= 0:
        return ids
    swap = (torch.rand(ids.shape, device=ids.device) < p) & torch.isin(ids, colour_ids)
    pick = torch.randint(len(colour_ids), ids.shape, device=ids.device)
    return torch.where(swap, colour_ids[pick], ids)


class Pretrainer(nn.Module):
    """Stage 1: forward(batch) -> {"loss": itc + itm + mlm + lm, "itc", "itm", "mlm", "lm"}.

    lm is BLIP's image-grounded language modelling: the same multimodal stack, run causally,
    writes the alt-text word by word. It is the objective closest to captioning.
    """

    def __init__(self, cfg: CapstoneConfig, tok: CaptionTokenizer, max_len: int = 32):
        super().__init__()
        d, V = cfg.d_model, len(tok)
        self.tok, self.cfg = tok, cfg
        self.image = TwoPathwayEncoder(cfg.image_size, d, cfg.grid, cfg.width)
        self.text = TextEncoder(V, d, cfg.n_heads, cfg.text_layers, max_len)
        self.image_proj, self.text_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.scale = Temperature()
        self.fuse = CaptionDecoder(V, d, cfg.n_heads, cfg.fuse_layers, max_len=max_len)
        self.itm_head = nn.Linear(d, 2)
        colour_ids = torch.tensor([tok.tk.token_to_id(c) for c in COLORS])
        self.register_buffer("colour_ids", colour_ids, persistent=False)

    def embed(self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor):
        """Image tokens (B, Ni, D) and the ITC embeddings of images and texts (B, D) each."""
        img = self.image(images)
        return img, self.image_proj(img.mean(1)), self.text_proj(self.text(ids, mask))

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        ids, mask = batch["ids"], batch["mask"]
        img, v, t = self.embed(_images(batch, ids.device), ids, mask)
        sim = similarity(v, t)  # (B, B)
        itc = itc_loss(self.scale() * sim)
        # ITM: a share of the images, each with its text, a hard negative text and image
        k = max(2, int(len(ids) * self.cfg.itm_share))
        i_idx, t_idx, labels = itm_pairs(sim[:k, :k].detach())
        h, _ = self.fuse.hidden(ids[t_idx], img[i_idx], key_mask=mask[t_idx], causal=False)
        itm = F.cross_entropy(self.itm_head(h[:, 0]), labels)  # the [BOS] position decides
        # MLM: hide 15% of the words, predict them from the rest and the image
        # the multimodal stack reads colour words with noise, as the captioner will (see
        # noisy_colours): otherwise it learns "red is never followed by triangle" right here
        read = noisy_colours(ids, self.colour_ids, self.cfg.colour_noise)
        special = ids <= self.tok.mask_id  # pad, bos, eos, unk, mask are never chosen
        corrupted, target = mask_tokens(
            ids, special, self.tok.mask_id, len(self.tok), prob=self.cfg.mlm_prob
        )
        corrupted = torch.where(target == -100, read, corrupted)  # noise only where unmasked
        logits = self.fuse(corrupted, img, key_mask=mask, causal=False)  # (B, T, V)
        mlm = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100)
        lm = teacher_forcing_loss(self.fuse, ids, mask, img, read=read)  # write the alt-text
        return {"loss": itc + itm + mlm + lm, "itc": itc, "itm": itm, "mlm": mlm, "lm": lm}


class Captioner(nn.Module):
    """Stage 2: the image encoder and a caption decoder; forward(batch) -> teacher forcing."""

    def __init__(self, image: TwoPathwayEncoder, decoder: CaptionDecoder, colour_ids, noise=0.0):
        super().__init__()
        self.image, self.decoder, self.noise = image, decoder, noise
        self.register_buffer("colour_ids", torch.as_tensor(colour_ids), persistent=False)

    @classmethod
    def from_pretrainer(cls, pre: Pretrainer, noise: float) -> Captioner:
        """Copies of stage 1's image encoder and multimodal stack, the latter as the decoder."""
        return cls(copy.deepcopy(pre.image), copy.deepcopy(pre.fuse), pre.colour_ids, noise)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        ids, mask = batch["ids"], batch["mask"]
        read = noisy_colours(ids, self.colour_ids, self.noise) if self.training else ids
        image = self.image(_images(batch, ids.device))
        return {"loss": teacher_forcing_loss(self.decoder, ids, mask, image, read=read)}

    @torch.no_grad()
    def caption(self, images: torch.Tensor, beam: int = 1, max_new: int = 24) -> torch.Tensor:
        return self.decoder.generate(self.image(images), max_new=max_new, beam=beam)


# ---------------------------------------------------------------- data


class Batches:
    """get_batch(step) for train(): batch `step` is a function of (seed, step) only.

    keep: indices of the pairs to draw from (default: all of them), e.g. from `curate`.
    """

    def __init__(
        self, data: ShapesCaptions, tok: CaptionTokenizer, batch: int, seed: int, keep=None
    ):
        texts = data.texts if keep is None else [data.texts[i] for i in keep]
        self.images = data.images if keep is None else data.images[keep]  # (N, S, S, 3) uint8
        self.ids, self.mask = tok.batch_encode(texts)  # (N, T) each, tokenised once
        self.batch, self.seed = batch, seed

    def __call__(self, step: int) -> dict:
        idx = np.random.default_rng([self.seed, step]).integers(len(self.images), size=self.batch)
        idx = idx[rank_slice(self.batch)]  # under torchrun, this process's share of the batch
        width = int(self.mask[idx].sum(1).max())  # trim padding to this batch's longest text
        return {
            "image": to_tensor(self.images[idx]),  # (B, 3, S, S)
            "ids": self.ids[idx, :width],
            "mask": self.mask[idx, :width],
        }


def datasets(cfg: CapstoneConfig) -> dict[str, ShapesCaptions]:
    """Alt-text pairs, captioned training scenes, held-out test scenes, the compositional split."""
    s, seed = cfg.image_size, cfg.seed
    return {
        "alt": AltTextPairs(cfg.n_alt, size=s, seed=seed),
        "captioned": ShapesCaptions("train", cfg.n_captioned, size=s, seed=seed + 100),
        "test": ShapesCaptions("test", cfg.n_test, size=s),
        "comp": ShapesCaptions("comp", cfg.n_comp, size=s),
    }


@torch.no_grad()
def curate(
    pre: Pretrainer, alt: ShapesCaptions, tok: CaptionTokenizer, keep: float = 0.5, batch=1000
) -> np.ndarray:
    """Indices of the alt-text pairs worth writing word by word: a text filter, then an image
    filter, as web-scale pretraining does (LAION's CLIP-score filter, BLIP's CapFilt).

    1. The text must be a complete sentence: `parse` reads it (partials and bags fail).
    2. Of those, keep the `keep` share whose image and text agree best under stage 1's ITC
       embeddings (the wrong captions of other scenes score low).
    Nothing is rewritten: a kept pair trains with its own words.
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    parses = complete_sentences(alt.texts)
    if len(parses) == 0:
        raise ValueError("no alt-text is a complete sentence of the grammar; nothing to keep")
    was = pre.training
    pre.eval()
    device = next(pre.parameters()).device
    scores = []
    for i in range(0, len(parses), batch):
        j = parses[i : i + batch]
        ids, mask = (x.to(device) for x in tok.batch_encode([alt.texts[k] for k in j]))
        _, v, t = pre.embed(to_tensor(alt.images[j]).to(device), ids, mask)  # (b, D) each
        scores.append(similarity(v, t).diagonal())  # (b,): each image with its own text
    pre.train(was)
    score = torch.cat(scores).cpu().numpy()
    n = max(1, round(keep * len(parses)))
    return np.sort(parses[np.argsort(-score, kind="stable")[:n]])


def complete_sentences(texts: list[str]) -> np.ndarray:
    """Indices of the texts that are complete sentences of the grammar (`try_parse` reads them)."""
    return np.flatnonzero([try_parse(t) is not None for t in texts])


@dataclass
class Pairs:
    """Images and texts that `Batches` can draw from, e.g. self-labelled alt-text images."""

    images: np.ndarray  # (N, S, S, 3) uint8
    texts: list[str]


def content_words(text: str) -> list[str]:
    """The size, colour and shape words of a text, in the order it says them (relations and
    prefixes aside)."""
    return [w for w in text.split() if w in _CONTENT]


_CONTENT = frozenset(SIZES) | frozenset(COLORS) | frozenset(SHAPES)


def is_subsequence(words: list[str], text: list[str]) -> bool:
    """Whether `words` all appear in `text`, in the same order (others may lie between)."""
    rest = iter(text)
    return all(w in rest for w in words)


def self_label(
    model: Captioner, alt: ShapesCaptions, tok: CaptionTokenizer, pool: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Stage 3's data, the captioner half of BLIP's CapFilt: caption the alt-text images in
    `pool` and keep a synthetic caption where the alt-text beside its image says the same.
    The alt-text is noisy and so is the captioner; where the two agree, both are most likely
    right. Two checks:
    - the same sizes, colours and shapes, in the same order (`content_words`). A caption that
      names the right objects in the wrong order, or gives one object's colour to the other,
      still has the alt-text's words as a bag;
    - every word of the caption, in order, in the alt-text (`is_subsequence`), so "left of" and
      "above" must be said there. Without it, a backward paraphrase ("a blue square right of a
      red circle") agrees with a caption that names its objects in the wrong order, exactly the
      low-caption captioner's typical error. Paraphrases with other words ("over", "under") are
      dropped too; a few true labels lost for a near-perfect precision.
    Returns (kept indices, their captions)."""
    synthetic = caption_images(model, alt.images[pool], tok)
    said = [alt.texts[i] for i in pool]
    kept = np.flatnonzero(
        [
            content_words(c) == content_words(t) and is_subsequence(c.split(), t.split())
            for c, t in zip(synthetic, said, strict=True)
        ]
    )
    return pool[kept], [synthetic[k] for k in kept]


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: Captioner, data: ShapesCaptions, tok: CaptionTokenizer, batch: int = 250, beam: int = 1
) -> tuple[dict[str, float], list[str]]:
    """Greedy (or beam) captions of a split; exact match, grounded accuracy and text metrics."""
    captions = caption_images(model, data.images, tok, batch, beam)
    scores = grounded_accuracy(captions, [scene_facts(s) for s in data.scenes], data.texts)
    refs = {i: [t] for i, t in enumerate(data.texts)}
    hyps = {i: [c] if c else ["[empty]"] for i, c in enumerate(captions)}
    scores.update(caption_scores(refs, hyps))
    return scores, captions


@torch.no_grad()
def caption_images(
    model: Captioner, images: np.ndarray, tok: CaptionTokenizer, batch: int = 250, beam: int = 1
) -> list[str]:
    """Captions of (N, S, S, 3) uint8 images, `batch` at a time, in eval mode."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    captions: list[str] = []
    for i in range(0, len(images), batch):
        x = to_tensor(images[i : i + batch]).to(device)  # (b, 3, S, S)
        captions += [tok.decode(row.tolist()) for row in model.caption(x, beam=beam)]
    model.train(was)
    return captions


@torch.no_grad()
def retrieval_scores(pre: Pretrainer, data: ShapesCaptions, tok: CaptionTokenizer) -> dict:
    """Recall@1/5/10 both ways on held-out scenes and their canonical captions."""
    pre.eval()
    ids, mask = tok.batch_encode(data.texts)
    device = next(pre.parameters()).device
    _, v, t = pre.embed(to_tensor(data.images).to(device), ids.to(device), mask.to(device))
    pre.train()
    return retrieval(v, t)


@torch.no_grad()
def attribute_probe(
    model: Pretrainer | Captioner, data: ShapesCaptions, tok: CaptionTokenizer
) -> dict[str, dict[str, float]]:
    """What the multimodal stack knows, by number of objects in the scene.

    Teacher forcing on the canonical captions: at each size, colour or shape word, is the
    stack's most likely word *of that kind* the right one? {"1": {"size":, "colour":,
    "shape":}, "2": ..., "3": ...}. Chance is 1/2, 1/6 and 1/3.
    """
    decoder = model.fuse if isinstance(model, Pretrainer) else model.decoder
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    ids, mask = (x.to(device) for x in tok.batch_encode(data.texts))  # (N, T)
    logits = decoder(ids[:, :-1], model.image(to_tensor(data.images).to(device)), mask[:, :-1])
    model.train(was)
    target = ids[:, 1:]  # (N, T-1): the word each position predicts
    n_objects = torch.tensor([scene_facts(s).count for s in data.scenes], device=device)
    out: dict[str, dict[str, float]] = {str(n): {} for n in sorted(set(n_objects.tolist()))}
    for kind, words in (("size", SIZES), ("colour", COLORS), ("shape", SHAPES)):
        wid = torch.tensor([tok.tk.token_to_id(w) for w in words], device=device)
        guess = wid[logits[..., wid].argmax(-1)]  # (N, T-1): best word of this kind
        right = guess == target  # (N, T-1)
        for n in out:
            at = torch.isin(target, wid) & (n_objects == int(n))[:, None]  # positions to score
            out[n][kind] = right[at].float().mean().item()
    return out


# ---------------------------------------------------------------- the pipeline


def stage_config(cfg: CapstoneConfig, steps: int, seed_offset: int) -> TrainConfig:
    """The training-loop settings of one stage (seed_offset 1: stage 1, 3: stage 1b, 2: stage 2,
    4, 14, 24, ...: the rounds of stage 3)."""
    return TrainConfig(
        steps=steps, lr=cfg.lr, warmup=min(cfg.warmup, max(1, steps // 10)), min_lr=cfg.lr / 20,
        seed=cfg.seed * 100 + seed_offset, log_every=10, amp=cfg.amp, compile=cfg.compile,
        progress=cfg.progress,
    )  # fmt: skip


def pretrain_stage(
    cfg: CapstoneConfig,
    data: dict,
    tok: CaptionTokenizer,
    out: Path | None = None,
    device: torch.device | str = "cpu",
    say=print,
) -> tuple[Pretrainer, dict]:
    """Stage 1 on data["alt"]: ITC + ITM + MLM + LM on every pair, then (if cfg.curated_steps)
    stage 1b, LM alone on the pairs `curate` keeps. Returns the pretrainer and what to report
    (under "keep": the curated indices)."""
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    pre = Pretrainer(cfg, tok).to(device)
    info: dict = {"time": {}}
    if not cfg.pretrain_steps:
        return pre, info
    say(f"stage 1: {cfg.pretrain_steps} steps of ITC + ITM + MLM + LM on {cfg.n_alt} alt-texts")
    info["retrieval_before"] = retrieval_scores(pre, data["test"], tok)
    t1 = time.perf_counter()
    info["log_pretrain"] = train(
        pre, Batches(data["alt"], tok, cfg.batch, cfg.seed),
        stage_config(cfg, cfg.pretrain_steps, 1),
        out_dir=out / "pretrain" if out else None, device=device,
    )  # fmt: skip
    info["time"]["pretrain"] = time.perf_counter() - t1
    info["retrieval_after"] = retrieval_scores(pre, data["test"], tok)
    say(
        f"  {info['time']['pretrain']:.0f} s; text->image R@1 on test "
        f"{info['retrieval_before']['t2i R@1']:.3f} -> {info['retrieval_after']['t2i R@1']:.3f}"
    )
    if cfg.curated_steps:
        t1 = time.perf_counter()
        keep = curate(pre, data["alt"], tok, cfg.curate_keep)
        info["time"]["curate"] = time.perf_counter() - t1
        kinds = getattr(data["alt"], "kinds", None)
        info["keep"], info["curated"] = keep, {"kept": len(keep), "of": len(data["alt"])}
        if kinds is not None:  # the generator knows each pair's kind: how good was the filter?
            info["curated"]["kinds"] = {k: sum(kinds[i] == k for i in keep) for k in ALT_KINDS}
        say(f"stage 1b: {cfg.curated_steps} steps of LM on {len(keep)} curated alt-texts")
        t1 = time.perf_counter()
        info["log_curated"] = curated_stage(cfg, pre, data["alt"], tok, keep, out, device)
        info["time"]["curated"] = time.perf_counter() - t1
        say(f"  {info['time']['curated']:.0f} s, curation {info['time']['curate']:.0f} s")
    return pre, info


def curated_stage(
    cfg: CapstoneConfig,
    pre: Pretrainer,
    pairs: ShapesCaptions | Pairs,
    tok: CaptionTokenizer,
    keep: np.ndarray,
    out: Path | None = None,
    device: torch.device | str = "cpu",
) -> list[dict]:
    """Stage 1b, in place on `pre`: `cfg.curated_steps` steps of LM alone on the pairs `keep`
    (from `curate`). Returns the training log."""
    writer = Captioner(pre.image, pre.fuse, pre.colour_ids, cfg.colour_noise)  # shares weights
    return train(
        writer, Batches(pairs, tok, cfg.batch, cfg.seed + 3, keep=keep),
        stage_config(cfg, cfg.curated_steps, 3),
        out_dir=out / "curated" if out else None, device=device,
    )  # fmt: skip


def run(
    cfg: CapstoneConfig,
    out_dir: str | Path | None = None,
    pretrain: bool = True,
    caption_steps: int | None = None,
    data: dict | None = None,
    verbose: bool = True,
    stage1: tuple[Pretrainer, dict] | None = None,
) -> dict:
    """Stage 1 (unless pretrain=False), stage 2, evaluation. Returns a results dict with the
    scores, timings, logs, sample captions, the trained captioner (under "model") and stage 1's
    pretrainer (under "pretrainer").

    stage1: (pretrainer, info) from an earlier `pretrain_stage` with the same config, to
    fine-tune it again (e.g. on another number of captioned scenes); its times are counted.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(out_dir) if out_dir is not None else None
    tok = CaptionTokenizer.shapes_world()
    t0 = time.perf_counter()
    data = data or datasets(cfg)
    t_data = time.perf_counter() - t0

    def say(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    stages = ["pretrain", "curated", "caption"]
    stages += [f"selftrain/round{r}" for r in range(cfg.self_train_rounds)]
    for stage in stages:
        if out is not None and (ckpt := latest_checkpoint(out / stage)) is not None:
            say(f"found {ckpt}: {stage} resumes from it (delete {out} to start afresh)")
    if not pretrain:
        pre, info = Pretrainer(cfg, tok).to(device), {"time": {}}
    else:
        pre, info = stage1 or pretrain_stage(cfg, data, tok, out, device, say)
    results: dict = {"config": asdict(cfg), "pretrained": pretrain, **info}
    keep = results.pop("keep", None)  # stage 1b's curated indices (None: no stage 1b)
    results["time"] = {"data": t_data, **info["time"]}
    model = Captioner.from_pretrainer(pre, cfg.colour_noise).to(device)
    steps = caption_steps or cfg.caption_steps
    train_cfg = stage_config(cfg, steps, 2)
    if pretrain and cfg.pretrain_steps and cfg.finetune_lr:
        train_cfg = replace(train_cfg, lr=cfg.finetune_lr, min_lr=cfg.finetune_lr / 20)
    say(f"stage 2: {steps} steps of captioning on {cfg.n_captioned} captioned scenes")
    t2 = time.perf_counter()
    results["log_caption"] = train(
        model, Batches(data["captioned"], tok, cfg.batch, cfg.seed + 1), train_cfg,
        out_dir=out / "caption" if out else None, device=device,
    )  # fmt: skip
    results["time"]["caption"] = time.perf_counter() - t2
    if pretrain and cfg.self_train_steps and keep is not None:
        pool = complete_sentences(data["alt"].texts)
        part = self_train(model, cfg, data, tok, pool, train_cfg, out, device, say)
        results["time"].update(part.pop("time"))
        results.update(part)
    stages = ("pretrain", "curate", "curated", "caption", "label", "selftrain")
    results["time"]["train"] = sum(results["time"].get(k, 0.0) for k in stages)
    results["caption_steps"] = steps
    t3 = time.perf_counter()
    for split in ("test", "comp"):
        scores, captions = evaluate(model, data[split], tok)
        results[split] = scores
        results[f"captions_{split}"] = captions
        say(
            f"  {split}: exact {scores['exact']:.3f}, grounded {scores['grounded']:.3f}, "
            f"colour {scores['colour']:.3f}, shape {scores['shape']:.3f}"
        )
    results["time"]["eval"] = time.perf_counter() - t3
    results["time"]["total"] = (
        time.perf_counter() - t0 + (sum(info["time"].values()) if stage1 is not None else 0.0)
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        summary = {k: v for k, v in results.items() if not k.startswith(("log_", "captions_"))}
        (out / "results.json").write_text(json.dumps(summary, indent=1))
    results["model"], results["pretrainer"] = model, pre
    return results


def self_train(
    model: Captioner,
    cfg: CapstoneConfig,
    data: dict,
    tok: CaptionTokenizer,
    pool: np.ndarray,
    stage2: TrainConfig,
    out: Path | None = None,
    device: torch.device | str = "cpu",
    say=print,
) -> dict:
    """Stage 3, `cfg.self_train_rounds` times: `self_label` the alt-text images `pool` (those
    whose text is a complete sentence: the ordered agreement rejects other scenes' captions by
    itself, so the ITC filter of stage 1b is not needed) with the captioner as it now is, then
    train `model` on those and the real captions (a `cfg.real_share` of every batch) for
    `cfg.self_train_steps` steps (the last round `cfg.self_train_last_steps`, if set), with
    stage 2's learning rate. A better captioner agrees with more alt-texts and errs less, so each
    round has more, and truer, labels to learn from; the last round, on the most and truest
    labels, is where a longer schedule pays.
    Returns what to report: {"time": {"label", "selftrain"}, "self_labelled": [per round],
    "log_selftrain"}."""
    timing, labelled, log = {"label": 0.0, "selftrain": 0.0}, [], []
    real = data["captioned"]
    for r in range(cfg.self_train_rounds):
        t1 = time.perf_counter()
        idx, synthetic = self_label(model, data["alt"], tok, pool)
        timing["label"] += time.perf_counter() - t1
        labelled.append({"kept": len(idx), "of": len(pool)})
        if idx.size and hasattr(data["alt"], "scenes"):  # the generator knows the truth
            truth = [caption(data["alt"].scenes[i]) for i in idx]  # the share of true labels
            labelled[-1]["right"] = float(np.mean(np.array(synthetic) == np.array(truth)))
        # repeat the real captions so that they are about real_share of what batches draw from
        reps = max(1, round(cfg.real_share * len(idx) / ((1 - cfg.real_share) * len(real))))
        mix = Pairs(
            np.concatenate([data["alt"].images[idx]] + [real.images] * reps),
            synthetic + list(real.texts) * reps,
        )
        last = r == cfg.self_train_rounds - 1 and cfg.self_train_last_steps
        steps = cfg.self_train_last_steps if last else cfg.self_train_steps
        say(
            f"stage 3, round {r + 1} of {cfg.self_train_rounds}: {steps} steps on "
            f"{len(idx)} of {len(pool)} self-labelled images and {len(real)} captioned scenes"
        )
        t2 = time.perf_counter()
        train_cfg = stage_config(cfg, steps, 4 + 10 * r)
        rows = train(
            model, Batches(mix, tok, cfg.batch, cfg.seed + 4 + 10 * r),
            replace(train_cfg, lr=stage2.lr, min_lr=stage2.min_lr),
            out_dir=out / "selftrain" / f"round{r}" if out else None, device=device,
        )  # fmt: skip
        log += [{"round": r, **row} for row in rows]
        timing["selftrain"] += time.perf_counter() - t2
    return {"time": timing, "self_labelled": labelled, "log_selftrain": log}


def results_table(rows: list[tuple[str, dict]]) -> str:
    """A Markdown table of exact match and grounded accuracy per run."""
    lines = [
        "| run | train time | test exact | test grounded | comp exact | comp grounded |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        test, comp = r["test"], r["comp"]
        lines.append(
            f"| {name} | {r['time']['train']:.0f} s | {test['exact']:.3f} | "
            f"{test['grounded']:.3f} | {comp['exact']:.3f} | {comp['grounded']:.3f} |"
        )
    return "\n".join(lines)
