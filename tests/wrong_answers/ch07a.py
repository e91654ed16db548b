"""Wrong answers to chapter 7a's exercises."""

import math

import torch
import torch.nn.functional as F


def _positions(t_q, t_k):
    t_k = t_k or t_q
    i = torch.arange(t_k - t_q, t_k).unsqueeze(1)  # where each query sits
    return i, torch.arange(t_k).unsqueeze(0)


def mask_of_the_future(t_q, t_k=None):
    i, j = _positions(t_q, t_k)
    return j >= i


def mask_without_diagonal(t_q, t_k=None):
    i, j = _positions(t_q, t_k)
    return j < i


def tril_from_the_corner(t_q, t_k=None):
    return torch.tril(torch.ones(t_q, t_k or t_q)).bool()


def mask_of_ones_and_zeros(t_q, t_k=None):
    i, j = _positions(t_q, t_k)
    return (j <= i).to(torch.float32)


def predicts_the_word_it_reads(model, ids, mask, image):
    logits = model(ids, image, key_mask=mask)
    return F.cross_entropy(logits.flatten(0, 1), ids.masked_fill(~mask, -100).flatten())


def targets_before_inputs(model, ids, mask, image):
    logits = model(ids[:, 1:], image, key_mask=mask[:, 1:])
    target = ids[:, :-1].masked_fill(~mask[:, :-1], -100)
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def pads_are_targets(model, ids, mask, image):
    logits = model(ids[:, :-1], image)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def masked_with_the_input_mask(model, ids, mask, image):
    logits = model(ids[:, :-1], image, key_mask=mask[:, :-1])
    target = torch.where(mask[:, :-1], ids[:, 1:], -100)
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100)


def mean_over_every_position(model, ids, mask, image):
    logp = model(ids[:, :-1], image, key_mask=mask[:, :-1]).log_softmax(-1)
    picked = logp.gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
    return -(picked * mask[:, 1:].float()).mean()


def _greedy(model, image, max_new, ban=True, after_eos=True, stop="all", drop_bos=True):
    out = [[model.bos_id] for _ in range(image.shape[0])]
    for _ in range(max_new):
        with torch.no_grad():
            logits = model(torch.tensor(out), image)[:, -1]
        if ban:
            logits[:, model.bos_id] = logits[:, model.pad_id] = float("-inf")
        for row, word in zip(out, logits.argmax(-1).tolist(), strict=True):
            ended = model.eos_id in row
            row.append(model.pad_id if ended and after_eos else word)
        ended = [model.eos_id in row for row in out]
        if stop == "all" and all(ended) or stop == "any" and any(ended):
            break
    return torch.tensor(out)[:, 1:] if drop_bos else torch.tensor(out)


def argmax_over_every_token(model, image, max_new):
    return _greedy(model, image, max_new, ban=False)


def keeps_writing_after_eos(model, image, max_new):
    return _greedy(model, image, max_new, after_eos=False)


def always_max_new_words(model, image, max_new):
    return _greedy(model, image, max_new, stop="never")


def stops_with_the_first_eos(model, image, max_new):
    return _greedy(model, image, max_new, stop="any")


def returns_bos_too(model, image, max_new):
    return _greedy(model, image, max_new, drop_bos=False)


def _beam(model, image, beam, max_new, cumulative=True, descending=True, eos="final", free=True):
    hyps = [([model.bos_id], 0.0)]
    for _ in range(max_new):
        pool = []
        for words, score in hyps:
            if eos == "final" and words[-1] in (model.eos_id, model.pad_id):
                with torch.no_grad():
                    lp = model(torch.tensor([words]), image).log_softmax(-1)[0, -1]
                pool.append(
                    (words + [model.pad_id], score + (0.0 if free else lp[model.pad_id].item()))
                )
                continue
            with torch.no_grad():
                lp = model(torch.tensor([words]), image).log_softmax(-1)[0, -1]
            lp[model.bos_id] = lp[model.pad_id] = -math.inf
            for w, value in enumerate(lp.tolist()):
                if value > -math.inf and not (eos == "drop" and w == model.eos_id):
                    pool.append((words + [w], (score if cumulative else 0.0) + value))
        pool.sort(key=lambda h: h[1], reverse=descending)
        hyps = pool[:beam]
        if eos != "none" and all(h[0][-1] in (model.eos_id, model.pad_id) for h in hyps):
            break
    words = [w for w in hyps[0][0][1:] if w != model.pad_id]
    return (
        words
        if eos == "none"
        else words[: words.index(model.eos_id) + 1 if model.eos_id in words else None]
    )


def scores_only_the_new_word(model, image, beam, max_new):
    return _beam(model, image, beam, max_new, cumulative=False)


def keeps_the_lowest_scores(model, image, beam, max_new):
    return _beam(model, image, beam, max_new, descending=False)


def eos_is_an_ordinary_word(model, image, beam, max_new):
    return _beam(model, image, beam, max_new, eos="none")


def finished_beams_pay_for_padding(model, image, beam, max_new):
    return _beam(model, image, beam, max_new, free=False)


def throws_finished_beams_away(model, image, beam, max_new):
    return _beam(model, image, beam, max_new, eos="drop")


def _softmax_attend(q, keys, values, allowed=None):
    scores = torch.einsum("bhqd,bhkd->bhqk", q, keys) / q.shape[-1] ** 0.5
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ values


def attends_to_the_new_keys_only(q, k, v, past_k, past_v):
    n = q.shape[2]
    out = _softmax_attend(q, k, v, torch.ones(n, n, dtype=torch.bool).tril())
    return out, torch.cat((past_k, k), dim=2), torch.cat((past_v, v), dim=2)


def prepends_the_new_keys(q, k, v, past_k, past_v):
    keys, values = torch.cat((k, past_k), dim=2), torch.cat((v, past_v), dim=2)
    n, t = q.shape[2], keys.shape[2]
    allowed = torch.arange(t)[None, :] <= torch.arange(t - n, t)[:, None]
    return _softmax_attend(q, keys, values, allowed), keys, values


def forgets_the_causal_mask(q, k, v, past_k, past_v):
    keys, values = torch.cat((past_k, k), dim=2), torch.cat((past_v, v), dim=2)
    return _softmax_attend(q, keys, values), keys, values


def torch_is_causal(q, k, v, past_k, past_v):
    keys, values = torch.cat((past_k, k), dim=2), torch.cat((past_v, v), dim=2)
    return F.scaled_dot_product_attention(q, keys, values, is_causal=True), keys, values


WRONG = {
    "7a.1": [(mask_of_the_future, "lower triangle"), (mask_without_diagonal, "may see itself"),
             (tril_from_the_corner, "shift the triangle right"),
             (mask_of_ones_and_zeros, "bool mask")],
    "7a.2": [(predicts_the_word_it_reads, "the *next* word"),
             (targets_before_inputs, "not the other way round"),
             (pads_are_targets, "padding is not a target"),
             (masked_with_the_input_mask, "their own mask"),
             (mean_over_every_position, "average over the real targets")],
    "7a.3": [(argmax_over_every_token, "never words"), (keeps_writing_after_eos, "writes only [PAD]"),
             (always_max_new_words, "as long as the longest caption"),
             (stops_with_the_first_eos, "done.all()"), (returns_bos_too, "drop the leading [BOS]")],
    "7a.4": [(scores_only_the_new_word, "log-probability of the whole caption"),
             (keeps_the_lowest_scores, "*highest* scores"),
             (eos_is_an_ordinary_word, "is finished: extend it only by a free [PAD]"),
             (finished_beams_pay_for_padding, "add 0, not"),
             (throws_finished_beams_away, "not thrown away")],
    "7a.5": [(attends_to_the_new_keys_only, "every key, cached and new"),
             (prepends_the_new_keys, "the cached keys come first"),
             (forgets_the_causal_mask, "may not see the new words after it"),
             (torch_is_causal, "sits at position Tp + i")],
}  # fmt: skip
