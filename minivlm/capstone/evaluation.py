"""Scoring the capstone's models (chapter 8).

* `caption_images`: greedy (or beam) captions of uint8 images, a batch at a time.
* `evaluate`: a shapes-world split's exact match and grounded accuracy (chapter 7b: the parser
  reads the caption back and every fact must be right), plus BLEU, ROUGE-L and CIDEr-D.
* `evaluate_refs`: BLEU and CIDEr-D against several reference captions (COCO's val split).
* `retrieval_scores`: stage 1's text<->image recall; `attribute_probe`: what the multimodal
  stack knows of size, colour and shape, by number of objects.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ..data import CaptionTokenizer, ShapesCaptions, to_tensor
from ..data.scenes import COLORS, SHAPES, SIZES, scene_facts
from ..metrics import caption_scores, grounded_accuracy
from ..objectives import retrieval
from ..train import evaluating
from .batches import Pairs
from .model import Captioner, Pretrainer


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def caption_images(
    model: Captioner, images: np.ndarray, tok: CaptionTokenizer, batch: int = 250, beam: int = 1
) -> list[str]:
    """Captions of (N, S, S, 3) uint8 images, `batch` at a time, in eval mode."""
    captions: list[str] = []
    with evaluating(model):
        device = device_of(model)
        for i in range(0, len(images), batch):
            x = to_tensor(images[i : i + batch]).to(device)  # (b, 3, S, S)
            captions += [tok.decode(row.tolist()) for row in model.caption(x, beam=beam)]
    return captions


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


def evaluate_refs(
    model: Captioner, data: Pairs, tok: CaptionTokenizer, batch: int = 250
) -> tuple[dict[str, float], list[str]]:
    """Greedy captions of every image of `data`, scored against all its reference captions."""
    captions = caption_images(model, data.images, tok, batch)
    refs = {i: list(r) for i, r in enumerate(data.refs)}
    hyps = {i: [c] if c else ["[empty]"] for i, c in enumerate(captions)}
    return caption_scores(refs, hyps), captions


def retrieval_scores(pre: Pretrainer, data, tok: CaptionTokenizer) -> dict[str, float]:
    """Recall@1/5/10 both ways on held-out scenes and their canonical captions."""
    with evaluating(pre):
        device = device_of(pre)
        ids, mask = (x.to(device) for x in tok.batch_encode(data.texts))
        _, v, t = pre.embed(to_tensor(data.images).to(device), ids, mask)
    return retrieval(v, t)


def attribute_probe(
    model: Pretrainer | Captioner, data: ShapesCaptions, tok: CaptionTokenizer
) -> dict[str, dict[str, float]]:
    """What the multimodal stack knows, by number of objects in the scene.

    Teacher forcing on the canonical captions: at each size, colour or shape word, is the
    stack's most likely word *of that kind* the right one? {"1": {"size":, "colour":,
    "shape":}, "2": ..., "3": ...}. Chance is 1/2, 1/6 and 1/3.
    """
    decoder = model.fuse if isinstance(model, Pretrainer) else model.decoder
    with evaluating(model):
        device = device_of(model)
        ids, mask = (x.to(device) for x in tok.batch_encode(data.texts))  # (N, T)
        image = model.image(to_tensor(data.images).to(device))
        logits = decoder(ids[:, :-1], image, mask[:, :-1])  # (N, T-1, V)
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
