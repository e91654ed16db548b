"""Chapter 7b's auto-checked exercises: corpus BLEU with clipping and the brevity penalty,
CIDEr-D's TF-IDF vectors, and a grounded-accuracy reader.

Each exercise names a reference (the package's own code: `minivlm.metrics`) and the mistakes a
learner is likely to make, written out as the wrong code they would write.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..data import caption, make_scenes, paraphrase, scene_facts
from ..data.captions import try_parse
from ..metrics import bleu, cider_d, grounded_accuracy, ngrams
from .core import Case, Exercise, Mistake

# 7b.1 -- corpus BLEU ------------------------------------------------------------------------


def _bleu_cases() -> list[Case]:
    repeated = ({0: ["a small red circle"]}, {0: ["a red red red circle"]})
    two_refs = (
        {0: ["a red circle", "a red square"]},
        {0: ["a red a red a red circle"]},
    )
    short = (
        {0: ["a large blue square", "a large blue square on the left",
             "there is a large blue square left of a small red circle"],
         1: ["a small red circle above a green square", "a small red circle above it"]},
        {0: ["a large blue square left of"], 1: ["a small red"]},
    )  # fmt: skip
    tie = (
        {0: ["a large blue square left of", "a large blue square"]},
        {0: ["a large blue square left"]},
    )
    cancel = (
        {0: ["a small red circle left of a large blue square"], 1: ["a large green triangle"]},
        {0: ["a small red circle left of a square"], 1: ["a large green triangle above a circle"]},
    )
    corpus = (
        {
            0: ["a small red circle"],
            1: ["a large blue square left of a small green triangle"],
            2: ["a small yellow triangle above a large purple circle",
                "a large purple circle under a small yellow triangle"],
            3: ["a large orange square"],
        },
        {0: ["a red red red circle"], 1: ["a large blue square left of a small red triangle"],
         2: ["a small yellow triangle above a purple circle"], 3: ["a square"]},
    )  # fmt: skip
    return [
        Case("one image, a repeated word (BLEU-1 and BLEU-2)", repeated, {"n": 2}),
        Case("a word repeated three times, two references with it once each", two_refs, {"n": 2}),
        Case("a short and a long candidate: their lengths add up", cancel),
        Case("short candidates, several references of different lengths", short),
        Case("two references equally close in length", tie),
        Case("a corpus of four images", corpus),
    ]


def _bleu(refs, hyps, n=4, clip="max", bp="closest", mean="geometric", corpus=True):
    """BLEU with one of its steps done wrong (for the mistakes below)."""
    if not corpus:  # the mean of per-sentence scores
        per = [_bleu({k: refs[k]}, {k: hyps[k]}, n, clip, bp, mean) for k in refs]
        return [sum(s[i] for s in per) / len(per) for i in range(n)]
    correct, total, c_len, r_len = [0] * n, [0] * n, 0, 0
    for key in refs:
        words = hyps[key][0].split()
        for k in range(1, n + 1):
            cand = Counter(tuple(words[i : i + k]) for i in range(len(words) - k + 1))
            best: Counter = Counter()
            for r in refs[key]:
                rw = r.split()
                rc = Counter(tuple(rw[i : i + k]) for i in range(len(rw) - k + 1))
                best = best | rc if clip == "max" else best + rc
            if clip == "none":  # every occurrence of an n-gram that some reference has
                correct[k - 1] += sum(c for g, c in cand.items() if best[g])
            else:
                correct[k - 1] += sum(min(c, best[g]) for g, c in cand.items())
            total[k - 1] += sum(cand.values())
        lens = [len(r.split()) for r in refs[key]]
        c = len(words)
        if bp == "shortest":
            r_len += min(lens)
        elif bp == "first":
            r_len += min(lens, key=lambda L: abs(L - c))  # ties: the first in the list
        else:
            r_len += min(lens, key=lambda L: (abs(L - c), L))
        c_len += c
    p = [a / b for a, b in zip(correct, total, strict=True)]
    penalty = 1.0 if bp == "none" or c_len >= r_len else math.exp(1 - r_len / c_len)
    if bp == "inverted" and c_len < r_len:
        penalty = math.exp(1 - c_len / r_len)
    if mean == "arithmetic":
        return [penalty * sum(p[:k]) / k for k in range(1, n + 1)]
    return [penalty * math.exp(sum(map(math.log, p[:k])) / k) for k in range(1, n + 1)]


def corpus_bleu(refs: dict, hyps: dict, n: int = 4) -> list[float]:
    """BLEU-1..BLEU-n of a corpus, as `minivlm.metrics.bleu` computes it."""
    return bleu(refs, hyps, n)


def _no_clip(refs, hyps, n=4):
    return _bleu(refs, hyps, n, clip="none")


def _clip_to_sum(refs, hyps, n=4):
    return _bleu(refs, hyps, n, clip="sum")


def _no_penalty(refs, hyps, n=4):
    return _bleu(refs, hyps, n, bp="none")


def _shortest_ref(refs, hyps, n=4):
    return _bleu(refs, hyps, n, bp="shortest")


def _first_of_ties(refs, hyps, n=4):
    return _bleu(refs, hyps, n, bp="first")


def _inverted_penalty(refs, hyps, n=4):
    return _bleu(refs, hyps, n, bp="inverted")


def _arithmetic(refs, hyps, n=4):
    return _bleu(refs, hyps, n, mean="arithmetic")


def _sentence_mean(refs, hyps, n=4):
    return _bleu(refs, hyps, n, corpus=False)


# 7b.2 -- CIDEr-D ----------------------------------------------------------------------------


def _cider_cases() -> list[Case]:
    small = (
        {0: ["a small red circle", "a red circle"], 1: ["a large blue square"],
         2: ["a small green triangle", "a green triangle on the left"]},
        {0: ["a red red red circle"], 1: ["a large blue square left of a large blue square"],
         2: ["a small green triangle"]},
    )  # fmt: skip
    rng = np.random.default_rng(7)
    scenes = make_scenes("test", 8)
    refs = {i: [caption(s), paraphrase(s, rng), paraphrase(s, rng)] for i, s in enumerate(scenes)}
    hyps = {}
    for i, s in enumerate(scenes):
        text = caption(s)
        if i % 3 == 1:
            text = paraphrase(s, rng)
        elif i % 3 == 2:
            text = " ".join(text.split()[:4] * 2)  # the first object, twice
        hyps[i] = [text]
    return [
        Case("three images, a repeated word, a long candidate", small),
        Case("eight shapes-world scenes, three references each", (refs, hyps)),
    ]


def cider(refs: dict, hyps: dict) -> float:
    """CIDEr-D of a corpus (n = 1..4, sigma = 6), as `minivlm.metrics.cider_d` computes it."""
    return cider_d(refs, hyps)


def _cider(refs, hyps, df_from="images", clip=True, penalty=True, scale=10.0, per_n=True):
    """CIDEr-D with one of its steps done wrong (for the mistakes below)."""
    n, sigma = 4, 6.0
    df: Counter = Counter()
    for k in refs:
        if df_from == "references":
            for r in refs[k]:
                df.update(set(ngrams(r.split(), n)))
        else:
            df.update(set().union(*(ngrams(r.split(), n) for r in refs[k])))
        if df_from == "with candidates":
            df.update(set(ngrams(hyps[k][0].split(), n)) - set().union(
                *(ngrams(r.split(), n) for r in refs[k])))  # fmt: skip
    log_n = math.log(len(refs))

    def vector(text: str) -> tuple[list[dict], int]:
        words = text.split()
        vec: list[dict] = [{} for _ in range(n)]
        for g, tf in ngrams(words, n).items():
            vec[len(g) - 1][g] = tf * (log_n - math.log(max(1.0, df[g])))
        return vec, len(words)

    def cosine(vh: list[dict], vr: list[dict]) -> float:
        dot = sum(min(w, vr.get(g, 0.0)) * vr.get(g, 0.0) if clip else w * vr.get(g, 0.0)
                  for g, w in vh.items())  # fmt: skip
        norm = math.sqrt(sum(w * w for w in vh.values())) * math.sqrt(
            sum(w * w for w in vr.values())
        )
        return dot / norm if norm else 0.0

    scores = []
    for k in refs:
        vh, lh = vector(hyps[k][0])
        total = 0.0
        for r in refs[k]:
            vr, lr = vector(r)
            pen = math.exp(-((lh - lr) ** 2) / (2 * sigma**2)) if penalty else 1.0
            if per_n:
                total += pen * sum(cosine(vh[i], vr[i]) for i in range(n)) / n
            else:
                flat = lambda v: {g: w for d in v for g, w in d.items()}  # noqa: E731
                total += pen * cosine(flat(vh), flat(vr))
        scores.append(scale * total / len(refs[k]))
    return sum(scores) / len(scores)


def _df_per_reference(refs, hyps):
    return _cider(refs, hyps, df_from="references")


def _df_with_candidates(refs, hyps):
    return _cider(refs, hyps, df_from="with candidates")


def _cider_no_clip(refs, hyps):
    return _cider(refs, hyps, clip=False)


def _no_length_penalty(refs, hyps):
    return _cider(refs, hyps, penalty=False)


def _not_scaled(refs, hyps):
    return _cider(refs, hyps, scale=1.0)


def _one_cosine(refs, hyps):
    return _cider(refs, hyps, per_n=False)


# 7b.3 -- a grounded-accuracy reader ---------------------------------------------------------


def _reader_cases() -> list[Case]:
    rng = np.random.default_rng(3)
    one, two = make_scenes("test", 3, n_objects=1), make_scenes("test", 5, n_objects=2, seed=1)
    facts = [scene_facts(s) for s in one + two]
    true = [caption(f) if i % 2 else paraphrase(f, rng) for i, f in enumerate(facts)]
    swapped = []
    for f in facts:  # the two objects' colours swapped (or one colour changed)
        words = caption(f).split()
        if f.count == 2 and f.objects[0][1] != f.objects[1][1]:
            words[2], words[-2] = words[-2], words[2]
        else:
            words[2] = "purple" if words[2] != "purple" else "red"
        swapped.append(" ".join(words))
    mixed = list(true)
    mixed[0] = "red circle"  # not a sentence of the grammar
    mixed[3] = " ".join(caption(facts[3]).split()[:4])  # only the first of two objects
    mixed[4] = swapped[4]
    mixed[6] = paraphrase(facts[6], rng)
    return [
        Case("true captions, canonical and paraphrased", (true, facts)),
        Case("colours swapped or changed", (swapped, facts)),
        Case("an unparsable caption, a missing object, a paraphrase", (mixed, facts)),
    ]


def reader(captions: list[str], facts: list) -> tuple[float, float]:
    """(grounded, colour) as `minivlm.metrics.grounded_accuracy` reads them."""
    g = grounded_accuracy(captions, facts)
    return g["grounded"], g["colour"]


def _read(captions, facts, by_text=False, per="object", denominator="all", skip=False,
          as_sets=False):  # fmt: skip
    grounded = colour = n_obj = n_cap = 0
    for text, truth in zip(captions, facts, strict=True):
        said = try_parse(text)
        if said is None and skip:
            continue
        n_cap += 1
        if denominator == "all" or said is not None and said.count == truth.count:
            n_obj += truth.count
        if said is None:
            continue
        grounded += text == caption(truth) if by_text else said == truth
        if said.count == truth.count:
            if as_sets:
                colour += len({c for _, c, _ in said.objects} & {c for _, c, _ in truth.objects})
            else:
                colour += sum(
                    a[1] == b[1] for a, b in zip(said.objects, truth.objects, strict=True)
                )
    return grounded / n_cap, colour / (n_cap if per == "caption" else n_obj)


def _by_text(captions, facts):
    return _read(captions, facts, by_text=True)


def _per_caption(captions, facts):
    return _read(captions, facts, per="caption")


def _right_count_only(captions, facts):
    return _read(captions, facts, denominator="right count")


def _skip_unparsed(captions, facts):
    return _read(captions, facts, skip=True)


def _skip_unparsed_in_grounded(captions, facts):
    parsed = sum(try_parse(text) is not None for text in captions)
    return _read(captions, facts)[0] * len(captions) / parsed, _read(captions, facts)[1]


def _colour_sets(captions, facts):
    return _read(captions, facts, as_sets=True)


EXERCISES = [
    Exercise(
        "7b.1", "corpus BLEU", corpus_bleu, _bleu_cases,
        mistakes=[
            Mistake("clip each n-gram's count to the most times it occurs in one reference: "
                    "min(count in the candidate, max count in a reference)", _no_clip),
            Mistake("clip to the most times an n-gram occurs in any *one* reference (the max "
                    "over references, Counter |), not to its total over all of them", _clip_to_sum),
            Mistake("multiply by the brevity penalty exp(1 - r/c) when the corpus's candidates "
                    "are shorter than its references (c < r)", _no_penalty),
            Mistake("r is the length of the reference *closest* to the candidate's length, "
                    "not the shortest reference", _shortest_ref),
            Mistake("when two references are equally close in length, take the shorter one: "
                    "min(lens, key=lambda L: (abs(L - c), L))", _first_of_ties),
            Mistake("the brevity penalty is exp(1 - r/c), reference over candidate length, "
                    "below 1 when c < r; exp(1 - c/r) is a bonus", _inverted_penalty),
            Mistake("BLEU-N is the *geometric* mean of p1..pN: exp(mean(log p)), not their "
                    "average", _arithmetic),
            Mistake("corpus BLEU sums the clipped counts, totals and lengths over all images "
                    "first, then divides; it is not the mean of per-image scores", _sentence_mean),
        ],
    ),
    Exercise(
        "7b.2", "CIDEr-D", cider, _cider_cases,
        mistakes=[
            Mistake("df counts *images*: add each image's n-grams once, the union over its "
                    "references, however many references contain them", _df_per_reference),
            Mistake("document frequencies come from the references only, never from the "
                    "candidates being scored", _df_with_candidates),
            Mistake("CIDEr-D clips the candidate's weights: the dot product sums "
                    "min(w_cand, w_ref) * w_ref over the n-grams", _cider_no_clip),
            Mistake("multiply each reference's similarity by the length penalty "
                    "exp(-(l_cand - l_ref)^2 / (2 sigma^2)), sigma = 6", _no_length_penalty),
            Mistake("CIDEr-D is reported times 10: multiply the mean similarity by 10",
                    _not_scaled),
            Mistake("one cosine per n-gram order n = 1..4, then their mean; not one cosine of "
                    "all n-grams together", _one_cosine),
        ],
    ),
    Exercise(
        "7b.3", "a grounded-accuracy reader", reader, _reader_cases,
        mistakes=[
            Mistake("parse the caption and compare its facts with the scene's (try_parse(text) "
                    "== truth); a true paraphrase is worded differently", _by_text),
            Mistake("colour is a share of *objects*: divide the right colours by the number of "
                    "objects in all scenes, not by the number of captions", _per_caption),
            Mistake("a caption with the wrong count (or none) earns no colour hits, but its "
                    "objects stay in the denominator: divide by every scene's objects",
                    _right_count_only),
            Mistake("a caption the parser rejects is wrong, not absent: keep it in both "
                    "denominators", _skip_unparsed),
            Mistake("a caption the parser rejects is wrong, not absent: keep it in both "
                    "denominators", _skip_unparsed_in_grounded),
            Mistake("compare colours object by object, in order (the first said object with "
                    "the first true one), not as sets", _colour_sets),
        ],
    ),
]  # fmt: skip
