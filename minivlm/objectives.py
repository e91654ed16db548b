"""Pretraining objectives for image-text pairs (chapter 6).

* ITC, image-text contrastive: in a batch of B pairs, each image should pick its own text out of
  B (and each text its image). Symmetric InfoNCE over cosine similarities times a learnable
  temperature, as in CLIP; `itc_loss` equals transformers' `clip_loss` on the same logits.
* ITM, image-text matching: a fused model says "match" or "no match"; the negatives are *hard*,
  drawn from the batch in proportion to how similar ITC finds them (ALBEF).
* MLM, masked language modelling on the image: hide 15% of the caption's tokens (80% become
  [MASK], 10% a random word, 10% stay) and predict them from the rest and the image.
* Retrieval recall@K, image->text and text->image, from the ITC similarities.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .metrics import recall_at_k


class Temperature(nn.Module):
    """A learnable logit scale 1/tau, stored as its log; starts at 1/0.07, clamped to <= 100."""

    def __init__(self, init: float = 1 / 0.07, max_scale: float = 100.0):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(init)))
        self.max_log = math.log(max_scale)

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(max=self.max_log).exp()


def similarity(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarities (B_img, B_txt) of two batches of embeddings (B, D)."""
    if image_emb.dim() != 2 or text_emb.dim() != 2 or image_emb.shape[1] != text_emb.shape[1]:
        shapes = f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        raise ValueError(f"need embeddings (B, D) and (B', D), got {shapes}")
    return F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T


def itc_loss(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE on logits (B, B) = scale * similarity; the pairs sit on the diagonal."""
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"ITC needs square logits (B, B), got {tuple(logits.shape)}")
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def hard_negatives(
    sim: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each image a negative text, and for each text a negative image, from sim (B, B).

    A candidate is drawn with probability softmax(sim) over the others (never the pair itself):
    the more similar a wrong text looks, the likelier it is to be the negative.
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] < 2:
        raise ValueError(f"need a square similarity matrix with B >= 2, got {tuple(sim.shape)}")
    eye = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    # draw on the generator's device (a CPU generator draws the same for sim on any device)
    where = generator.device if generator is not None else sim.device
    with torch.no_grad():
        w_i2t = sim.float().masked_fill(eye, float("-inf")).softmax(dim=1)  # (B, B), zero diagonal
        w_t2i = sim.float().T.masked_fill(eye, float("-inf")).softmax(dim=1)
        neg_text = torch.multinomial(w_i2t.to(where), 1, generator=generator).squeeze(1)  # (B,)
        neg_image = torch.multinomial(w_t2i.to(where), 1, generator=generator).squeeze(1)  # (B,)
    return neg_text.to(sim.device), neg_image.to(sim.device)


def itm_pairs(
    sim: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image index, text index, label) for 3B ITM pairs: B matches, B images with a hard
    negative text, B texts with a hard negative image. Label 1 = match."""
    B = sim.shape[0]
    neg_text, neg_image = hard_negatives(sim, generator)
    idx = torch.arange(B, device=sim.device)
    images = torch.cat([idx, idx, neg_image])
    texts = torch.cat([idx, neg_text, idx])
    labels = torch.cat([torch.ones(B), torch.zeros(2 * B)]).long().to(sim.device)
    return images, texts, labels


def mask_tokens(
    ids: torch.Tensor,
    special: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking. ids (B, T); special (B, T) bool marks tokens never to mask (pad, bos, eos).

    Returns the corrupted ids and the labels (B, T): the original id where a token was chosen,
    -100 (ignored by cross_entropy) elsewhere. Of the chosen tokens, 80% become [MASK], 10% a
    random word (ids above mask_id: the words of CaptionTokenizer), 10% stay as they are.
    """
    if ids.shape != special.shape or special.dtype != torch.bool:
        raise ValueError("special must be a bool tensor shaped like ids (True = never mask)")
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    # draw on the generator's device (a CPU generator draws the same for ids on any device)
    where = generator.device if generator is not None else ids.device
    u = torch.rand(ids.shape, generator=generator, device=where).to(ids.device)
    chosen = (u < prob) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    action = torch.rand(ids.shape, generator=generator, device=where).to(ids.device)
    out = ids.clone()
    out[chosen & (action < 0.8)] = mask_id
    random_words = torch.randint(
        mask_id + 1, vocab_size, ids.shape, generator=generator, device=where
    ).to(ids.device)
    swap = chosen & (action >= 0.8) & (action < 0.9)
    out[swap] = random_words[swap]
    return out, labels


def retrieval(image_emb: torch.Tensor, text_emb: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Recall@K both ways for paired embeddings: image i's text is text i."""
    sim = similarity(image_emb, text_emb)
    out = {f"i2t {k}": v for k, v in recall_at_k(sim, ks).items()}
    out.update({f"t2i {k}": v for k, v in recall_at_k(sim.T, ks).items()})
    return out
