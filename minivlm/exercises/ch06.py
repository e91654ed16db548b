"""Chapter 6's auto-checked exercises: ITC, recall@K, hard negatives for ITM, BERT's masking.

Each exercise names a reference (the package's own code of `minivlm.objectives` and
`minivlm.metrics`) and the mistakes a learner is likely to make, written out as the wrong code
they would write. The two random procedures are checked draw for draw: the exercise states the
order of the draws, as the chapter made them, and the learner seeds a generator from the case.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import CaptionTokenizer
from ..metrics import recall_at_k
from ..objectives import hard_negatives, itc_loss, mask_tokens, similarity
from .core import Case, Exercise, Mistake


def _itc_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    img = torch.randn(6, 16, generator=g) * torch.rand(6, 1, generator=g) * 3  # (B, D), norms vary
    return [
        Case("B = 4, D = 8, scale 1/0.07", (torch.randn(4, 8, generator=g),
                                             torch.randn(4, 8, generator=g), 1 / 0.07)),
        Case("texts close to their images, scale 10", (img, img + torch.randn(6, 16, generator=g),
                                                       10.0)),
        Case("B = 3, scale 1", (torch.randn(3, 5, generator=g) * 4, torch.randn(3, 5, generator=g),
                                1.0)),
    ]  # fmt: skip


def itc(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric InfoNCE of two batches of paired embeddings (B, D), logits = scale * cosine."""
    return itc_loss(scale * similarity(image_emb, text_emb))


def _cosine_logits(image_emb, text_emb, scale):
    return scale * F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T  # (B, B)


def _one_way(image_emb, text_emb, scale):
    logits = _cosine_logits(image_emb, text_emb, scale)
    return F.cross_entropy(logits, torch.arange(len(logits)))  # image -> text only


def _not_normalised(image_emb, text_emb, scale):
    logits = scale * image_emb @ text_emb.T  # dot products, not cosines
    target = torch.arange(len(logits))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _labels_zero(image_emb, text_emb, scale):
    logits = _cosine_logits(image_emb, text_emb, scale)
    target = torch.zeros(len(logits), dtype=torch.long)  # every row's answer is column 0
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _summed(image_emb, text_emb, scale):
    logits = _cosine_logits(image_emb, text_emb, scale)
    target = torch.arange(len(logits))
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)  # no / 2


def _divided_by_scale(image_emb, text_emb, scale):
    return itc_loss(_cosine_logits(image_emb, text_emb, 1.0) / scale)  # scale taken for tau


def _recall_cases() -> list[Case]:
    g = torch.Generator().manual_seed(17)
    img = torch.randn(12, 6, generator=g)  # (N, D)
    fair = similarity(img, img + 0.8 * torch.randn(12, 6, generator=g))  # often, not always, right
    txt = img[:8] + 0.8 * torch.randn(8, 6, generator=g)
    txt[5] = txt[2]  # texts 2 and 5 are the same caption
    return [
        Case("a fair model, 12 pairs, K = 1", (fair, 1)),
        Case("a weak model, 10 pairs, K = 5", (torch.randn(10, 10, generator=g), 5)),
        Case("texts 2 and 5 identical: a tie with the right text, K = 1",
             (similarity(img[:8], txt), 1)),
        Case("the same, K = 3", (similarity(img[:8], txt), 3)),
    ]  # fmt: skip


def recall(sim: torch.Tensor, k: int) -> float:
    """Image->text recall@K of a similarity matrix (N, N) whose right pairs are on the diagonal."""
    return recall_at_k(sim, (k,))[f"R@{k}"]


def _at_least(sim, k):
    rank = (sim >= sim.diagonal()[:, None]).sum(1)  # counts the right text itself, and ties
    return (rank < k).float().mean().item()


def _rank_le_k(sim, k):
    rank = (sim > sim.diagonal()[:, None]).sum(1)
    return (rank <= k).float().mean().item()  # one place too many


def _no_new_axis(sim, k):
    rank = (sim > sim.diagonal()).sum(1)  # sim[i, j] against sim[j, j]
    return (rank < k).float().mean().item()


def _text_to_image(sim, k):
    rank = (sim > sim.diagonal()[None, :]).sum(0)  # down each column: text -> image
    return (rank < k).float().mean().item()


def _top_k(sim, k):
    top = sim.topk(k, dim=1).indices  # (N, k): a tie is broken by position, not in our favour
    return (top == torch.arange(len(sim))[:, None]).any(1).float().mean().item()


def _negative_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)
    emb = F.normalize(torch.randn(6, 8, generator=g), dim=-1)  # (B, D)
    near = F.normalize(emb + 0.3 * torch.randn(6, 8, generator=g), dim=-1)
    return [
        Case("ITC logits of 6 pairs, seed 0", (14.0 * similarity(emb, near), 0)),
        Case("random logits, B = 5, seed 1", (3 * torch.randn(5, 5, generator=g), 1)),
        Case("B = 8, seed 2", (torch.randn(8, 8, generator=g), 2)),
    ]  # fmt: skip


def draw_negatives(logits: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(a negative text for each image, a negative image for each text), as hard_negatives
    draws them with a generator seeded by `seed`."""
    return hard_negatives(logits, torch.Generator().manual_seed(seed))


def _draw(w_texts, w_images, seed):
    g = torch.Generator().manual_seed(seed)
    neg_text = torch.multinomial(w_texts, 1, generator=g).squeeze(1)  # (B,)
    return neg_text, torch.multinomial(w_images, 1, generator=g).squeeze(1)


def _with_the_pair(logits, seed):
    return _draw(logits.softmax(1), logits.T.softmax(1), seed)  # the diagonal may be drawn


def _diagonal_zero(logits, seed):
    eye = torch.eye(len(logits), dtype=torch.bool)
    return _draw(logits.masked_fill(eye, 0).softmax(1), logits.T.masked_fill(eye, 0).softmax(1),
                 seed)  # fmt: skip


def _images_from_rows(logits, seed):
    w = logits.masked_fill(torch.eye(len(logits), dtype=torch.bool), float("-inf")).softmax(1)
    return _draw(w, w, seed)  # each text's image drawn from a row, not a column


def _hardest(logits, seed):
    eye = torch.eye(len(logits), dtype=torch.bool)
    off = logits.masked_fill(eye, float("-inf"))
    return off.argmax(1), off.argmax(0)  # always the nearest miss


def _uniform(logits, seed):
    w = (~torch.eye(len(logits), dtype=torch.bool)).float()  # every other one equally likely
    return _draw(w, w, seed)


def _transposed_weights(logits, seed):
    off = logits.masked_fill(torch.eye(len(logits), dtype=torch.bool), float("-inf"))
    return _draw(off.softmax(1), off.softmax(0).T, seed)  # the right weights, column-major


def _mask_cases() -> list[Case]:
    tok = CaptionTokenizer.shapes_world()
    texts = ["a red circle", "a small blue square left of a large green triangle",
             "two shapes : a red circle above a blue square", "a large yellow triangle",
             "a purple circle below a small orange square", "a green square"]  # fmt: skip
    ids, keep = tok.batch_encode(texts)  # (6, T)
    special = ~keep | (ids == tok.bos_id) | (ids == tok.eos_id)  # padding, [BOS], [EOS]
    V = len(tok)
    return [
        Case("six captions, prob 0.15, seed 0", (ids, special, tok.mask_id, V, 0.15, 0)),
        Case("six captions, prob 0.5, seed 1", (ids, special, tok.mask_id, V, 0.5, 1)),
        Case("six captions, prob 0.9, seed 2", (ids, special, tok.mask_id, V, 0.9, 2)),
    ]


def bert_mask(ids, special, mask_id: int, vocab_size: int, prob: float, seed: int):
    """BERT's 15% / 80-10-10 masking, as mask_tokens draws it with a generator seeded by `seed`.
    Returns the corrupted ids and the labels (-100 where no token was chosen)."""
    return mask_tokens(ids, special, mask_id, vocab_size, prob, torch.Generator().manual_seed(seed))


def _corrupt(ids, special, mask_id, vocab_size, prob, seed, specials=False, labels="chosen",
             split=True, low=None):  # fmt: skip
    """BERT's masking with one thing done differently (what the mistakes share)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(ids.shape, generator=g)
    chosen = (u < prob) if specials else (u < prob) & ~special
    action = torch.rand(ids.shape, generator=g)
    words = torch.randint(mask_id + 1 if low is None else low, vocab_size, ids.shape, generator=g)
    to_mask = chosen & (action < 0.8) if split else chosen
    swap = chosen & (action >= 0.8) & (action < 0.9) if split else torch.zeros_like(chosen)
    out = torch.where(swap, words, torch.where(to_mask, mask_id, ids))
    target = {"chosen": chosen, "all": torch.ones_like(chosen), "[MASK]": to_mask}[labels]
    return out, torch.where(target, ids, -100)


def _masks_specials(*args):
    return _corrupt(*args, specials=True)


def _labels_everywhere(*args):
    return _corrupt(*args, labels="all")


def _labels_at_mask_only(*args):
    return _corrupt(*args, labels="[MASK]")


def _all_mask(*args):
    return _corrupt(*args, split=False)


def _any_word(*args):
    return _corrupt(*args, low=0)


EXERCISES = [
    Exercise(
        "6.1", "the ITC loss", itc, _itc_cases,
        mistakes=[
            Mistake("ITC is symmetric: average the cross-entropy of the rows (image -> text) and "
                    "of the columns (text -> image, logits.T)", _one_way),
            Mistake("normalise both embeddings to unit length first (F.normalize(x, dim=-1)): "
                    "the logits are scaled cosines, not dot products", _not_normalised),
            Mistake("image i's text is text i: the labels are torch.arange(B), the diagonal, "
                    "not zeros", _labels_zero),
            Mistake("average the two directions: (image -> text + text -> image) / 2",
                    _summed),
            Mistake("scale is 1/tau: multiply the cosines by it, do not divide", _divided_by_scale),
        ],
    ),
    Exercise(
        "6.2", "recall@K", recall, _recall_cases,
        mistakes=[
            Mistake("count only the texts that score strictly higher (>) than the right one: "
                    ">= counts the right text itself and any tie with it", _at_least),
            Mistake("the right text is in the top K when fewer than K texts beat it: rank < k, "
                    "not rank <= k", _rank_le_k),
            Mistake("compare each row with its own diagonal entry, sim.diagonal()[:, None]; "
                    "without the new axis sim[i, j] is compared with sim[j, j]", _no_new_axis),
            Mistake("row i is image i's query: count along the row (dim 1); counting down a "
                    "column measures text -> image", _text_to_image),
            Mistake("topk breaks a tie by position and can leave out a right text that ties "
                    "with a duplicate: count the texts that score strictly higher instead", _top_k),
        ],
    ),
    Exercise(
        "6.3", "hard negatives for ITM", draw_negatives, _negative_cases,
        mistakes=[
            Mistake("fill the diagonal with -inf before the softmax: a pair must never be drawn "
                    "as its own negative", _with_the_pair),
            Mistake("a diagonal of 0 still has weight e^0 after the softmax: fill it with "
                    "float('-inf')", _diagonal_zero),
            Mistake("a text's negative image comes from its column: draw the images from the "
                    "softmax of logits.T, not of logits", _images_from_rows),
            Mistake("draw with torch.multinomial in proportion to the softmax; argmax always "
                    "takes the nearest miss, which on noisy pairs is often a true match",
                    _hardest),
            Mistake("weigh the candidates by the softmax of their logits, so that near misses "
                    "come most often; equal weights give random negatives", _uniform),
            Mistake("your weights may be right, but torch.multinomial draws differently from a "
                    "transposed (non-contiguous) tensor: take softmax(dim=1) of logits.T, or "
                    "call .contiguous()", _transposed_weights),
        ],
    ),
    Exercise(
        "6.4", "BERT's masking", bert_mask, _mask_cases,
        mistakes=[
            Mistake("never choose a special token: chosen = (u < prob) & ~special",
                    _masks_specials),
            Mistake("the label is -100 wherever no token was chosen, so that cross_entropy "
                    "ignores those positions", _labels_everywhere),
            Mistake("every chosen token gets its label, also the 10% replaced by a random word "
                    "and the 10% left unchanged", _labels_at_mask_only),
            Mistake("only 80% of the chosen tokens become [MASK] (action < 0.8); 10% become a "
                    "random word, 10% stay", _all_mask),
            Mistake("draw the random words from the real words only, "
                    "torch.randint(mask_id + 1, vocab_size, ...)", _any_word),
        ],
    ),
]  # fmt: skip
