"""Chapter 7a's auto-checked exercises: the causal mask, the teacher-forcing loss, greedy
decoding with [EOS], beam search that keeps its finished captions, and attention with a KV cache.

Each exercise names a reference (the package's own code: `minivlm.attention`,
`minivlm.captioner`) and the mistakes a learner is likely to make, written out as the wrong code
they would write.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..attention import KVCache, causal_mask, scaled_dot_product_attention
from ..captioner import CaptionDecoder, teacher_forcing_loss
from .core import Case, Exercise, Mistake

PAD, BOS, EOS = 0, 1, 2  # the special ids of every decoder below, as in the shapes world
VOCAB, D, N_IMAGE = 10, 16, 4  # a tiny vocabulary, model width and number of image tokens


def _decoder(seed: int, eos_shift: float = 0.0, pad_shift: float = 0.0) -> CaptionDecoder:
    """A small random caption decoder; the shifts move the [EOS] and [PAD] logits."""
    with torch.random.fork_rng(devices=[]):  # the learner's random stream is left alone
        torch.manual_seed(seed)
        model = CaptionDecoder(VOCAB, d_model=D, n_heads=2, n_layers=1, max_len=12).eval()
    with torch.no_grad():
        model.lm_head.bias[EOS] += eos_shift
        model.lm_head.bias[PAD] += pad_shift
    return model


def _images(seed: int, b: int) -> torch.Tensor:
    return torch.randn(b, N_IMAGE, D, generator=torch.Generator().manual_seed(seed))  # (B, Ni, D)


# 7a.1 -- the causal mask, with a cache offset ---------------------------------------------------


def _mask_cases() -> list[Case]:
    return [
        Case("no cache: Tq = Tk = 5", (5,)),
        Case("one new word after 3 cached ones: Tq = 1, Tk = 4", (1, 4)),
        Case("two new words after 3 cached ones: Tq = 2, Tk = 5", (2, 5)),
    ]


def make_causal_mask(t_q: int, t_k: int | None = None) -> torch.Tensor:
    """(Tq, Tk) bool, True where query i (at position Tk - Tq + i) may see key j."""
    return causal_mask(t_q, t_k)


def _upper(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool).triu(t_k - t_q)  # the future, not the past


def _strict(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool).tril(t_k - t_q - 1)  # a word cannot see itself


def _no_offset(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool).tril()  # query i at position i, not Tk - Tq + i


def _float_mask(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k).tril(t_k - t_q)  # 1.0 / 0.0, not True / False


# 7a.2 -- the teacher-forcing loss -----------------------------------------------------------


def _captions(lengths: list[int], t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (B, T): [BOS] words [EOS] [PAD]...; mask (B, T): True on the real tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), t), PAD)
    for b, n in enumerate(lengths):  # n words between [BOS] and [EOS]
        ids[b, 0], ids[b, n + 1] = BOS, EOS
        ids[b, 1 : n + 1] = torch.randint(3, VOCAB, (n,), generator=g)
    return ids, ids != PAD


def _loss_cases() -> list[Case]:
    full = _captions([4, 4], 6, seed=0)
    ragged = _captions([4, 2, 1], 6, seed=1)
    return [
        Case("two captions of the same length (no padding)", (_decoder(0), *full, _images(0, 2))),
        Case("captions of 4, 2 and 1 words, padded", (_decoder(1), *ragged, _images(1, 3))),
    ]


def tf_loss(model, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Read [BOS] w1 .. wn, predict w1 .. wn [EOS]; the mean cross-entropy over real targets."""
    return teacher_forcing_loss(model, ids, mask, image)


def _nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -logits.log_softmax(-1).gather(-1, target[..., None]).squeeze(-1)  # (B, T)


def _no_shift(model, ids, mask, image):
    logits = model(ids, image, key_mask=mask)  # (B, T, V): position t predicts the word it reads
    return (_nll(logits, ids) * mask).sum() / mask.sum()


def _shift_backwards(model, ids, mask, image):
    logits = model(ids[:, 1:], image, key_mask=mask[:, 1:])  # reads w1 .. [EOS]
    return (_nll(logits, ids[:, :-1]) * mask[:, :-1]).sum() / mask[:, :-1].sum()


def _padding_scored(model, ids, mask, image):
    logits = model(ids[:, :-1], image, key_mask=mask[:, :-1])
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])  # [PAD] targets count too


def _padding_scored_no_key_mask(model, ids, mask, image):
    logits = model(ids[:, :-1], image)  # no key mask either: the padded queries change too
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])


def _input_mask(model, ids, mask, image):
    logits = model(ids[:, :-1], image, key_mask=mask[:, :-1])
    keep = mask[:, :-1]  # the mask of the inputs: keeps the [EOS] -> [PAD] step
    return (_nll(logits, ids[:, 1:]) * keep).sum() / keep.sum()


def _mean_over_all(model, ids, mask, image):
    logits = model(ids[:, :-1], image, key_mask=mask[:, :-1])
    return (_nll(logits, ids[:, 1:]) * mask[:, 1:]).mean()  # divided by B * (T - 1)


# 7a.3 -- greedy decoding with [EOS] and a length limit ----------------------------------------


def _greedy_cases() -> list[Case]:
    return [
        Case("every caption ends before the limit", (_decoder(23, 0.5), _images(23, 6), 7)),
        Case("some captions end, others reach the limit", (_decoder(3), _images(3, 6), 7)),
        Case("a decoder that likes [PAD]", (_decoder(4, -2.0, 1.5), _images(4, 6), 5)),
        Case("no caption ends: the limit", (_decoder(5, -4.0), _images(5, 4), 4)),
    ]


def greedy(model, image: torch.Tensor, max_new: int) -> torch.Tensor:
    """(B, L) ids after [BOS], L <= max_new: argmax each step, [PAD] after [EOS], stop when
    every caption has ended."""
    return model.generate(image, max_new=max_new, beam=1)


def _greedy_loop(model, image, max_new, ban=True, pad_after=True, until="all", keep_bos=False):
    seqs = torch.full((image.shape[0], 1), model.bos_id)  # (B, 1)
    done = torch.zeros(image.shape[0], dtype=torch.bool)
    for _ in range(max_new):
        with torch.no_grad():
            logits = model(seqs, image)[:, -1]  # (B, V)
        if ban:
            logits[:, [model.bos_id, model.pad_id]] = -math.inf
        nxt = logits.argmax(-1)  # (B,)
        if pad_after:
            nxt = torch.where(done, model.pad_id, nxt)
        seqs = torch.cat([seqs, nxt[:, None]], dim=1)
        done |= nxt == model.eos_id
        if until == "all" and done.all() or until == "any" and done.any():
            break
    return seqs if keep_bos else seqs[:, 1:]


def _no_ban(model, image, max_new):
    return _greedy_loop(model, image, max_new, ban=False)


def _words_after_eos(model, image, max_new):
    return _greedy_loop(model, image, max_new, pad_after=False)


def _never_stops(model, image, max_new):
    return _greedy_loop(model, image, max_new, until="never")


def _stops_at_first(model, image, max_new):
    return _greedy_loop(model, image, max_new, until="any")


def _keeps_bos(model, image, max_new):
    return _greedy_loop(model, image, max_new, keep_bos=True)


# 7a.4 -- beam search that keeps its finished captions -----------------------------------------


def _beam_cases() -> list[Case]:
    return [
        Case("beam 3", (_decoder(3, -0.5), _images(3, 1), 3, 7)),
        Case("beam 3, another image", (_decoder(20, -0.5), _images(20, 1), 3, 7)),
        Case("beam 4", (_decoder(29), _images(29, 1), 4, 7)),
        Case("beam 2, no caption ends before the limit", (_decoder(9, -2.0), _images(9, 1), 2, 5)),
    ]


def _until_eos(row: list[int]) -> list[int]:
    return row[: row.index(EOS) + 1] if EOS in row else row


def beam_search(model, image: torch.Tensor, beam: int, max_new: int) -> list[int]:
    """The words of the most probable caption that a beam of `beam` finds for one image (1, Ni,
    D), up to and including its [EOS]: finished captions stay in the beam, their score fixed."""
    return _until_eos(model.generate(image, max_new=max_new, beam=beam)[0].tolist())


def _beam_loop(
    model, image, beam, max_new, add_score=True, best_first=True, finished="keep", pad_cost=False
):
    beams = [(0.0, [model.bos_id])]  # (log p, words)
    for _ in range(max_new):
        candidates = []
        for score, words in beams:
            with torch.no_grad():
                logp = model(torch.tensor([words]), image)[0, -1].log_softmax(-1)  # (V,)
            if words[-1] in (model.eos_id, model.pad_id):
                cost = logp[model.pad_id].item() if pad_cost else 0.0
                candidates.append((score + cost, words + [model.pad_id]))
                continue
            for v in range(len(logp)):
                if v not in (model.bos_id, model.pad_id):
                    candidates.append(((score if add_score else 0.0) + logp[v].item(), words + [v]))
        if finished == "drop":
            candidates = [c for c in candidates if c[1][-1] != model.eos_id]
        beams = sorted(candidates, key=lambda c: -c[0] if best_first else c[0])[:beam]
        if all(w[-1] in (model.eos_id, model.pad_id) for _, w in beams):
            break
    return _until_eos(beams[0][1][1:])


def _eos_not_final(model, image, beam, max_new):
    beams = [(0.0, [model.bos_id])]
    for _ in range(max_new):  # [EOS] is just another word: finished captions go on
        candidates = []
        for score, words in beams:
            with torch.no_grad():
                logp = model(torch.tensor([words]), image)[0, -1].log_softmax(-1)
            candidates += [(score + logp[v].item(), words + [v]) for v in range(len(logp))
                           if v not in (model.bos_id, model.pad_id)]  # fmt: skip
        beams = sorted(candidates, key=lambda c: -c[0])[:beam]
    return beams[0][1][1:]


def _last_word_only(model, image, beam, max_new):
    return _beam_loop(model, image, beam, max_new, add_score=False)


def _worst_first(model, image, beam, max_new):
    return _beam_loop(model, image, beam, max_new, best_first=False)


def _pads_cost(model, image, beam, max_new):
    return _beam_loop(model, image, beam, max_new, pad_cost=True)


def _drops_finished(model, image, beam, max_new):
    return _beam_loop(model, image, beam, max_new, finished="drop")


# 7a.5 -- attention with a KV cache ------------------------------------------------------------


def _cache_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)

    def qkv(b: int, t_new: int, t_past: int) -> tuple[torch.Tensor, ...]:
        new = [torch.randn(b, 2, t_new, 4, generator=g) for _ in range(3)]  # (B, h, Tn, dh)
        past = [torch.randn(b, 2, t_past, 4, generator=g) for _ in range(2)]  # (B, h, Tp, dh)
        return (*new, *past)

    return [
        Case("one new word after 4 cached ones", qkv(2, 1, 4)),
        Case("three new words after 2 cached ones", qkv(2, 3, 2)),
        Case("an empty cache and 4 new words", qkv(1, 4, 0)),
    ]


def attend_with_cache(q, k, v, past_k, past_v):
    """Append the new keys and values (B, h, Tn, dh) to the cached ones (B, h, Tp, dh) and
    attend from the new queries: (output (B, h, Tn, dh), keys and values (B, h, Tp + Tn, dh))."""
    keys, values = KVCache(past_k, past_v).update(k, v)  # (B, h, Tp + Tn, dh)
    out, _ = scaled_dot_product_attention(q, keys, values, causal_mask(q.shape[-2], keys.shape[-2]))
    return out, keys, values


def _attend(q, keys, values, mask=None):
    scores = q @ keys.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, h, Tn, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    return scores.softmax(-1) @ values


def _past_unused(q, k, v, past_k, past_v):
    tn = q.shape[-2]
    out = _attend(q, k, v, causal_mask(tn))  # the new keys only: the cache is stored, not read
    return out, torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)


def _new_first(q, k, v, past_k, past_v):
    keys, values = torch.cat([k, past_k], -2), torch.cat([v, past_v], -2)  # new before old
    return _attend(q, keys, values, causal_mask(q.shape[-2], keys.shape[-2])), keys, values


def _no_causal(q, k, v, past_k, past_v):
    keys, values = torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)
    return _attend(q, keys, values), keys, values  # new word i sees the new words after it


def _mask_at_zero(q, k, v, past_k, past_v):
    keys, values = torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)
    mask = torch.ones(q.shape[-2], keys.shape[-2], dtype=torch.bool).tril()  # no offset
    return _attend(q, keys, values, mask), keys, values


EXERCISES = [
    Exercise(
        "7a.1", "the causal mask, with a cache", make_causal_mask, _mask_cases,
        mistakes=[
            Mistake("a query may see the keys at or *before* it, the lower triangle "
                    "(torch.tril), not the upper one", _upper),
            Mistake("a word may see itself: keep the diagonal (key j <= query position i), or "
                    "the first word sees nothing at all", _strict),
            Mistake("with Tk - Tq cached keys, query i sits at position Tk - Tq + i: shift the "
                    "triangle right, torch.tril(..., diagonal=t_k - t_q)", _no_offset),
            Mistake("return a bool mask (True = may attend), e.g. from torch.ones(..., "
                    "dtype=torch.bool)", _float_mask),
        ],
    ),
    Exercise(
        "7a.2", "the teacher-forcing loss", tf_loss, _loss_cases,
        mistakes=[
            Mistake("shift by one: read ids[:, :-1] and score the prediction at position t "
                    "against ids[:, t + 1], the *next* word", _no_shift),
            Mistake("the inputs are everything but the last token and the targets everything "
                    "but the first ([BOS] predicts w1), not the other way round", _shift_backwards),
            Mistake("padding is not a target: ignore the positions where mask[:, 1:] is False "
                    "(targets -100 and ignore_index=-100)", _padding_scored),
            Mistake("padding is not a target: ignore the positions where mask[:, 1:] is False "
                    "(targets -100 and ignore_index=-100)", _padding_scored_no_key_mask),
            Mistake("mask the targets with their own mask, mask[:, 1:]; mask[:, :-1] keeps the "
                    "step [EOS] -> [PAD] in the loss", _input_mask),
            Mistake("average over the real targets: divide by mask[:, 1:].sum(), not by every "
                    "position B * (T - 1)", _mean_over_all),
        ],
    ),
    Exercise(
        "7a.3", "greedy decoding with [EOS]", greedy, _greedy_cases,
        mistakes=[
            Mistake("[BOS] and [PAD] are never words: set their logits to -inf before the "
                    "argmax", _no_ban),
            Mistake("after [EOS] a caption is finished: from then on its row writes only [PAD] "
                    "(torch.where(done, pad_id, next))", _words_after_eos),
            Mistake("stop as soon as every caption has written [EOS]: the result is only as "
                    "long as the longest caption, not always max_new", _never_stops),
            Mistake("stop when *every* row is done (done.all()), not when the first caption "
                    "ends", _stops_at_first),
            Mistake("drop the leading [BOS]: return the words after it, seqs[:, 1:]",
                    _keeps_bos),
        ],
    ),
    Exercise(
        "7a.4", "beam search that keeps finished captions", beam_search, _beam_cases,
        mistakes=[
            Mistake("a candidate's score is the log-probability of the whole caption: add the "
                    "word's log p to the score of the beam it extends", _last_word_only),
            Mistake("keep the K *highest* scores: sort the candidates by score in decreasing "
                    "order (log-probabilities are negative)", _worst_first),
            Mistake("a beam that writes [EOS] is finished: extend it only by a free [PAD] and "
                    "return the words up to its [EOS]", _eos_not_final),
            Mistake("a finished caption's score stays as it is: its [PAD]s add 0, not "
                    "log p([PAD])", _pads_cost),
            Mistake("a caption that writes [EOS] is not thrown away: it keeps its place among "
                    "the K best, with its score", _drops_finished),
        ],
    ),
    Exercise(
        "7a.5", "attention with a KV cache", attend_with_cache, _cache_cases,
        mistakes=[
            Mistake("the queries attend over every key, cached and new: concatenate first, "
                    "then attend over the concatenation", _past_unused),
            Mistake("append: the cached keys come first, then the new ones "
                    "(torch.cat([past_k, k], dim=-2))", _new_first),
            Mistake("new word i may not see the new words after it: mask with "
                    "causal_mask(Tn, Tp + Tn)", _no_causal),
            Mistake("new word i sits at position Tp + i: shift the triangle right by the cache "
                    "length, as causal_mask(Tn, Tp + Tn) does (torch's is_causal=True does not)",
                    _mask_at_zero),
        ],
    ),
]  # fmt: skip
