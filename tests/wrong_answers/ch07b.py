"""Wrong answers to chapter 7b's exercises."""

import math
from collections import Counter

import numpy as np

from minivlm.data import caption, try_parse


def _grams(words, k):
    return Counter(zip(*(words[i:] for i in range(k)), strict=False))  # k-grams


def _bleu(refs, hyps, n=4, clip="max", penalty="closest", average="geometric"):
    hit, seen = np.zeros(n), np.zeros(n)
    c = r = 0
    for key, (hyp,) in hyps.items():
        words, references = hyp.split(), [ref.split() for ref in refs[key]]
        for k in range(1, n + 1):
            counts = _grams(words, k)
            in_refs = [_grams(ref, k) for ref in references]
            for g, m in counts.items():
                allowed = {"max": max(x[g] for x in in_refs), "sum": sum(x[g] for x in in_refs),
                           "none": m if any(x[g] for x in in_refs) else 0}[clip]  # fmt: skip
                hit[k - 1] += min(m, allowed)
            seen[k - 1] += sum(counts.values())
        lengths = sorted(len(ref) for ref in references)
        r += (
            lengths[0] if penalty == "shortest" else min(lengths, key=lambda L: abs(L - len(words)))
        )
        c += len(words)
    p = hit / seen
    if average == "arithmetic":
        scores = np.cumsum(p) / np.arange(1, n + 1)
    else:
        scores = np.exp(np.cumsum(np.log(p)) / np.arange(1, n + 1))
    if penalty != "none" and c < r:
        scores = scores * math.exp(1 - r / c)
    return [float(s) for s in scores]


def counts_every_repetition(refs, hyps, n=4):
    return _bleu(refs, hyps, n, clip="none")


def clips_to_all_references_together(refs, hyps, n=4):
    return _bleu(refs, hyps, n, clip="sum")


def no_brevity_penalty(refs, hyps, n=4):
    return _bleu(refs, hyps, n, penalty="none")


def penalty_from_the_shortest_reference(refs, hyps, n=4):
    return _bleu(refs, hyps, n, penalty="shortest")


def average_of_precisions(refs, hyps, n=4):
    return _bleu(refs, hyps, n, average="arithmetic")


def mean_of_sentence_bleu(refs, hyps, n=4):
    per_image = [_bleu({k: refs[k]}, {k: hyps[k]}, n) for k in refs]
    return list(np.mean(per_image, axis=0))


def _cider(refs, hyps, df_unit="image", clipped=True, length_penalty=True, times=10.0):
    def grams(text):
        words = text.split()
        return [_grams(words, k) for k in range(1, 5)]

    df = Counter()
    for key in refs:
        if df_unit == "reference":
            for ref in refs[key]:
                for g in grams(ref):
                    df.update(g.keys())
        else:
            seen = set()
            for text in refs[key] + (hyps[key] if df_unit == "image and candidate" else []):
                for g in grams(text):
                    seen |= set(g)
            df.update(seen)
    n_images = len(refs)

    def weights(text):
        return [
            {g: tf * math.log(n_images / max(1, df[g])) for g, tf in c.items()} for c in grams(text)
        ]

    total = 0.0
    for key in refs:
        h, lh = weights(hyps[key][0]), len(hyps[key][0].split())
        per_ref = []
        for ref in refs[key]:
            r, lr = weights(ref), len(ref.split())
            sims = []
            for hk, rk in zip(h, r, strict=True):
                num = sum(
                    (min(w, rk.get(g, 0)) if clipped else w) * rk.get(g, 0) for g, w in hk.items()
                )
                den = math.hypot(*hk.values()) * math.hypot(*rk.values())
                sims.append(num / den if den else 0.0)
            gauss = math.exp(-((lh - lr) ** 2) / 72) if length_penalty else 1.0
            per_ref.append(gauss * sum(sims) / 4)
        total += times * sum(per_ref) / len(per_ref)
    return total / n_images


def df_counts_references(refs, hyps):
    return _cider(refs, hyps, df_unit="reference")


def df_counts_the_candidates(refs, hyps):
    return _cider(refs, hyps, df_unit="image and candidate")


def plain_cosine(refs, hyps):
    return _cider(refs, hyps, clipped=False)


def no_gaussian_penalty(refs, hyps):
    return _cider(refs, hyps, length_penalty=False)


def forgets_times_ten(refs, hyps):
    return _cider(refs, hyps, times=1.0)


def _reader(captions, facts, match="facts", denominator="objects", unparsed="wrong", sets=False):
    right, colours, kept = 0, 0, 0
    for text, truth in zip(captions, facts, strict=True):
        said = try_parse(text)
        if said is None:
            kept += unparsed == "wrong"
            continue
        kept += 1
        right += (text == caption(truth)) if match == "text" else (said == truth)
        if len(said.objects) == len(truth.objects):
            if sets:
                colours += len({o[1] for o in said.objects} & {o[1] for o in truth.objects})
            else:
                colours += sum(
                    s[1] == t[1] for s, t in zip(said.objects, truth.objects, strict=True)
                )
    objects = sum(len(t.objects) for t in facts) if denominator == "objects" else kept
    return right / kept, colours / objects


def compares_the_words(captions, facts):
    return _reader(captions, facts, match="text")


def colour_per_caption(captions, facts):
    return _reader(captions, facts, denominator="captions")


def ignores_unparsed_captions(captions, facts):
    return _reader(captions, facts, unparsed="skip")


def colours_as_a_set(captions, facts):
    return _reader(captions, facts, sets=True)


WRONG = {
    "7b.1": [(counts_every_repetition, "clip each n-gram's count"),
             (clips_to_all_references_together, "*one* reference"),
             (no_brevity_penalty, "multiply by the brevity penalty"),
             (penalty_from_the_shortest_reference, "*closest*"),
             (average_of_precisions, "*geometric* mean"),
             (mean_of_sentence_bleu, "not the mean of per-image scores")],
    "7b.2": [(df_counts_references, "df counts *images*"),
             (df_counts_the_candidates, "references only"),
             (plain_cosine, "clips the candidate's weights"),
             (no_gaussian_penalty, "length penalty"),
             (forgets_times_ten, "times 10")],
    "7b.3": [(compares_the_words, "a true paraphrase is worded differently"),
             (colour_per_caption, "share of *objects*"),
             (ignores_unparsed_captions, "wrong, not absent"),
             (colours_as_a_set, "not as sets")],
}  # fmt: skip
