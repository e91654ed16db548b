"""Wrong answers to chapter 9's exercises."""

from collections import Counter

import torch

# 9.1: the answer-type mask


def mask_with_zeros(logits, types, allowed):
    return torch.where(allowed[types], logits, torch.zeros_like(logits))


def mask_by_multiplying(logits, types, allowed):
    return logits * allowed[types].float()  # the same as zeros where not allowed


def mask_the_allowed_answers(logits, types, allowed):
    out = logits.clone()
    out[allowed[types]] = float("-inf")
    return out


def mask_the_probabilities(logits, types, allowed):
    p = torch.softmax(logits, dim=1)
    return p.masked_fill(~allowed[types], 0.0)


def mask_with_a_big_number(logits, types, allowed):
    return torch.where(allowed[types], logits, torch.full_like(logits, -1e9))


# 9.2: a glimpse


def glimpse_without_scale(requests, keys, cells, xy):
    w = torch.softmax(torch.einsum("bkd,bnd->bkn", requests, keys), dim=-1)
    return torch.einsum("bkn,bnd->bkd", w, cells), torch.einsum("bkn,nc->bkc", w, xy)


def glimpse_softmax_over_k(requests, keys, cells, xy):
    d = keys.shape[-1]
    w = torch.softmax(torch.einsum("bkd,bnd->bkn", requests, keys) / d**0.5, dim=1)
    return torch.einsum("bkn,bnd->bkd", w, cells), torch.einsum("bkn,nc->bkc", w, xy)


def glimpse_of_the_keys(requests, keys, cells, xy):
    w = (requests @ keys.mT / keys.shape[-1] ** 0.5).softmax(-1)
    return w @ keys, w @ xy


def one_averaged_glimpse(requests, keys, cells, xy):
    w = (requests @ keys.mT / keys.shape[-1] ** 0.5).softmax(-1)
    return (w @ cells).mean(dim=1), (w @ xy).mean(dim=1)


def averaged_glimpses_repeated(requests, keys, cells, xy):
    w = (requests @ keys.mT / keys.shape[-1] ** 0.5).softmax(-1)
    w = w.mean(1, keepdim=True).repeat(1, requests.shape[1], 1)  # one place for all K
    return w @ cells, w @ xy


# 9.3: the blind rate


def _top(answers):
    return Counter(answers).most_common(1)[0][0]


def blind_by_template(train, test):
    best = {t: _top([a for _, a, t2 in train if t2 == t]) for _, _, t in train}
    return sum(best[t] == a for _, a, t in test) / len(test)


def blind_seen_only(train, test):
    best = {q: _top([a for q2, a, _ in train if q2 == q]) for q, _, _ in train}
    right = [q in best and best[q] == a for q, a, _ in test]
    return sum(right) / len(right)


def blind_most_common_answer(train, test):
    guess = _top([a for _, a, _ in train])
    return sum(a == guess for _, a, _ in test) / len(test)


def blind_with_a_global_fallback(train, test):
    best = {q: _top([a for q2, a, _ in train if q2 == q]) for q, _, _ in train}
    guess = _top([a for _, a, _ in train])
    return sum(best.get(q, guess) == a for q, a, _ in test) / len(test)


# 9.4: the executor's count

WORDS = ["zero", "one", "two", "three"]


def count_exact(objects, desc):
    return WORDS[objects.count(desc)]


def count_none_as_a_value(objects, desc):
    n = 0
    for size, colour, shape in objects:
        if (size, colour, shape) == (desc[0], desc[1], desc[2]):
            n += 1
    return WORDS[n]


def count_if_any_slot(objects, desc):
    n = 0
    for obj in objects:
        for want, have in zip(desc, obj, strict=True):
            if want is not None and want == have:
                n += 1
                break
    return WORDS[n]


def count_as_int(objects, desc):
    return len([o for o in objects if all(w in (None, h) for w, h in zip(desc, o, strict=True))])


def count_kinds(objects, desc):
    seen = set()
    for obj in objects:
        if all(w in (None, h) for w, h in zip(desc, obj, strict=True)):
            seen.add(obj)
    return WORDS[len(seen)]


WRONG = {
    "9.1": [(mask_with_zeros, "not 0"), (mask_by_multiplying, "not 0"),
            (mask_the_allowed_answers, "~allowed[types]"),
            (mask_the_probabilities, "return logits"),
            (mask_with_a_big_number, "not a large finite number")],
    "9.2": [(glimpse_without_scale, "sqrt(D)"), (glimpse_softmax_over_k, "not over the K"),
            (glimpse_of_the_keys, "not the keys"), (one_averaged_glimpse, "averaged into one"),
            (averaged_glimpses_repeated, "not their average")],
    "9.3": [(blind_by_template, "exact question text first"),
            (blind_seen_only, "is not wrong"), (blind_most_common_answer, "per question text"),
            (blind_with_a_global_fallback, "of its own template")],
    "9.4": [(count_exact, "None means 'not said'"), (count_none_as_a_value, "None means"),
            (count_if_any_slot, "*every* said slot"), (count_as_int, "not the number"),
            (count_kinds, "not kinds")],
}  # fmt: skip
