"""Better training text from noisy alt-text: curation (stage 1b) and self-labelling (stage 3)
(chapter 8).

* `curate` keeps the alt-texts worth writing word by word: complete sentences whose image and
  text agree under stage 1's ITC embeddings, as web-scale pretraining filters its pairs
  (LAION's CLIP-score filter, BLIP's CapFilt).
* `self_label` is the captioner half of BLIP's CapFilt: the captioner captions the alt-text
  images, and a synthetic caption is kept where the alt-text beside its image says the same
  thing, in the same order.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import CaptionTokenizer, to_tensor
from ..data.captions import try_parse
from ..data.scenes import COLORS, SHAPES, SIZES
from ..objectives import similarity
from ..train import evaluating
from .evaluation import caption_images, device_of
from .model import Captioner, Pretrainer


def complete_sentences(texts: list[str]) -> np.ndarray:
    """Indices of the texts that are complete sentences of the grammar (`try_parse` reads them)."""
    return np.flatnonzero([try_parse(t) is not None for t in texts])


def curate(
    pre: Pretrainer, alt, tok: CaptionTokenizer, keep: float = 0.5, batch=1000
) -> np.ndarray:
    """Indices of the alt-text pairs worth writing word by word: a text filter, then an image
    filter.

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
    scores = []
    with evaluating(pre):
        device = device_of(pre)
        for i in range(0, len(parses), batch):
            j = parses[i : i + batch]
            ids, mask = (x.to(device) for x in tok.batch_encode([alt.texts[k] for k in j]))
            _, v, t = pre.embed(to_tensor(alt.images[j]).to(device), ids, mask)  # (b, D) each
            scores.append(similarity(v, t).diagonal())  # (b,): each image with its own text
    score = torch.cat(scores).cpu().numpy()
    n = max(1, round(keep * len(parses)))
    return np.sort(parses[np.argsort(-score, kind="stable")[:n]])


_CONTENT = frozenset(SIZES) | frozenset(COLORS) | frozenset(SHAPES)


def content_words(text: str) -> list[str]:
    """The size, colour and shape words of a text, in the order it says them (relations and
    prefixes aside)."""
    return [w for w in text.split() if w in _CONTENT]


def is_subsequence(words: list[str], text: list[str]) -> bool:
    """Whether `words` all appear in `text`, in the same order (others may lie between)."""
    rest = iter(text)
    return all(w in rest for w in words)


def self_label(
    model: Captioner, alt, tok: CaptionTokenizer, pool: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Stage 3's data: caption the alt-text images in `pool` and keep a synthetic caption where
    the alt-text beside its image says the same. The alt-text is noisy and so is the captioner;
    where the two agree, both are most likely right. Two checks:
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
