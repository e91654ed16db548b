"""Caption and retrieval metrics, written from their definitions (chapter 7b).

Captions come in as dicts image_id -> list of pre-tokenised strings (words separated by spaces),
one candidate per image and one or more references, the format of the COCO caption evaluation
(pycocoevalcap). The tests check every score against pycocoevalcap's Python scorers to 1e-6.

* BLEU-n (corpus): clipped n-gram precisions, their geometric mean, times a brevity penalty
  exp(1 - r/c) when the candidates are shorter than the references (closest reference length).
* ROUGE-L: an F-measure (beta = 1.2) of the longest common subsequence, best reference per image.
* CIDEr-D: cosine similarity of TF-IDF weighted n-gram vectors (n = 1..4), candidate counts
  clipped to the reference's, a Gaussian penalty on length differences, x10.
* Grounded accuracy: the shapes-world parser reads each caption back into facts, so a caption is
  judged by what it says (objects, attributes, count, relation), not by its wording.
* Recall@K: how often the right match is among the top K retrieved.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch

from .data.captions import try_parse
from .data.scenes import SceneFacts

_TINY, _SMALL = 1e-15, 1e-9  # pycocoevalcap's guards against 0/0 in BLEU


def _check(refs: dict, hyps: dict) -> list:
    if not isinstance(refs, dict) or not isinstance(hyps, dict):
        raise TypeError("refs and hyps must be dicts: image_id -> list of tokenised strings")
    if refs.keys() != hyps.keys():
        raise ValueError("refs and hyps must have the same image ids")
    if not refs:
        raise ValueError("no captions to score")
    for key in refs:
        if not isinstance(hyps[key], list) or len(hyps[key]) != 1:
            raise ValueError(f"image {key!r}: expected exactly one candidate caption in a list")
        if not isinstance(refs[key], list) or not refs[key]:
            raise ValueError(f"image {key!r}: expected a non-empty list of reference captions")
    return list(refs)


def ngrams(words: Sequence[str], n: int) -> Counter:
    """Counts of every k-gram, k = 1..n, as tuples."""
    return Counter(
        tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1)
    )


def bleu(refs: dict, hyps: dict, n: int = 4) -> list[float]:
    """Corpus BLEU-1..BLEU-n (closest reference length for the brevity penalty)."""
    correct, guess = [0] * n, [0] * n
    test_len = ref_len = 0
    for key in _check(refs, hyps):
        words = hyps[key][0].split()
        counts = ngrams(words, n)
        max_ref: Counter = Counter()
        for ref in refs[key]:
            max_ref |= ngrams(ref.split(), n)  # | keeps the max count of each n-gram
        for gram, c in counts.items():
            correct[len(gram) - 1] += min(c, max_ref[gram])
        for k in range(n):
            guess[k] += max(0, len(words) - k)
        lens = [len(r.split()) for r in refs[key]]
        ref_len += min(lens, key=lambda L: (abs(L - len(words)), L))  # closest; ties: shorter
        test_len += len(words)
    scores, product = [], 1.0
    for k in range(n):
        product *= (correct[k] + _TINY) / (guess[k] + _SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (test_len + _TINY) / (ref_len + _SMALL)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, by dynamic programming."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(refs: dict, hyps: dict, beta: float = 1.2) -> float:
    """Mean over images of ROUGE-L F(beta), with the best precision and recall over references."""
    scores = []
    for key in _check(refs, hyps):
        cand = hyps[key][0].split(" ")
        prec, rec = [], []
        for ref in refs[key]:
            r = ref.split(" ")
            lcs = lcs_length(r, cand)
            prec.append(lcs / len(cand))
            rec.append(lcs / len(r))
        p, r = max(prec), max(rec)
        scores.append((1 + beta**2) * p * r / (r + beta**2 * p) if p and r else 0.0)
    return sum(scores) / len(scores)


def cider_d(refs: dict, hyps: dict, n: int = 4, sigma: float = 6.0) -> float:
    """CIDEr-D, as the COCO evaluation computes it (document frequencies from the references)."""
    keys = _check(refs, hyps)
    ref_counts = {k: [ngrams(r.split(), n) for r in refs[k]] for k in keys}
    df: Counter = Counter()
    for k in keys:
        df.update(set().union(*ref_counts[k]))  # in how many images' references each n-gram occurs
    log_n_images = math.log(len(keys))

    def tfidf(counts: Counter) -> tuple[list[dict], list[float], int]:
        vec: list[dict] = [{} for _ in range(n)]
        norm = [0.0] * n
        for gram, tf in counts.items():
            w = tf * (log_n_images - math.log(max(1.0, df[gram])))
            vec[len(gram) - 1][gram] = w
            norm[len(gram) - 1] += w * w
        # the reference implementation measures length in bigrams; we keep its definition
        length = sum(tf for gram, tf in counts.items() if len(gram) == 2)
        return vec, [math.sqrt(x) for x in norm], length

    scores = []
    for k in keys:
        vh, nh, lh = tfidf(ngrams(hyps[k][0].split(), n))
        total = [0.0] * n
        for rc in ref_counts[k]:
            vr, nr, lr = tfidf(rc)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
            for i in range(n):
                dot = sum(min(w, vr[i].get(g, 0.0)) * vr[i].get(g, 0.0) for g, w in vh[i].items())
                if nh[i] and nr[i]:
                    dot /= nh[i] * nr[i]
                total[i] += dot * penalty
        scores.append(sum(total) / n / len(refs[k]) * 10.0)
    return sum(scores) / len(scores)


def caption_scores(refs: dict, hyps: dict) -> dict[str, float]:
    """BLEU-1..4, ROUGE-L and CIDEr-D in one dict."""
    out = {f"BLEU-{i + 1}": s for i, s in enumerate(bleu(refs, hyps))}
    out["ROUGE-L"] = rouge_l(refs, hyps)
    out["CIDEr-D"] = cider_d(refs, hyps)
    return out


def fact_hits(said: SceneFacts, truth: SceneFacts) -> Counter:
    """How many facts of `truth` a parsed caption states: count and relation (0 or 1 each), and
    size, colour and shape per object, compared only when the number of objects is right."""
    hits = Counter(
        count=int(said.count == truth.count), relation=int(said.relation == truth.relation)
    )
    if said.count == truth.count:
        for (s1, c1, h1), (s2, c2, h2) in zip(said.objects, truth.objects, strict=True):
            hits["size"] += s1 == s2
            hits["colour"] += c1 == c2
            hits["shape"] += h1 == h2
    return hits


def missed_facts(text: str, truth: SceneFacts) -> list[str]:
    """The facts a caption gets wrong, one entry per miss (chapter 8's failure analysis).

    [] when the caption states every fact (its wording may still differ from the canonical
    one); ["unparsed"] when the parser rejects it; attributes are listed only when the number of
    objects is right, as in `grounded_accuracy`.
    """
    said = try_parse(text)
    if said is None:
        return ["unparsed"]
    hits = fact_hits(said, truth)
    missed = [k for k in ("count", "relation") if not hits[k]]
    if hits["count"]:
        missed += [k for k in ("size", "colour", "shape") for _ in range(truth.count - hits[k])]
    return missed


def grounded_accuracy(
    captions: Sequence[str], facts: Sequence[SceneFacts], canonical: Sequence[str] | None = None
) -> dict[str, float]:
    """Judge generated captions by the facts the parser reads back.

    exact: the caption equals the canonical one (if given); grounded: every fact right;
    count, relation: right when the caption parses; colour/shape/size: per object, over
    captions with the right count. A caption the parser rejects counts as wrong everywhere.
    """
    if len(captions) != len(facts) or (canonical is not None and len(canonical) != len(facts)):
        raise ValueError("captions, facts (and canonical captions) must have the same length")
    if not captions:
        raise ValueError("no captions to score")
    n = len(captions)
    hits = Counter()
    for i, (text, truth) in enumerate(zip(captions, facts, strict=True)):
        if canonical is not None:
            hits["exact"] += text == canonical[i]
        said = try_parse(text)
        if said is None:
            hits["unparsed"] += 1
            continue
        hits["grounded"] += said == truth
        hits.update(fact_hits(said, truth))
    n_objects = sum(truth.count for truth in facts)
    out = {k: hits[k] / n for k in ("grounded", "count", "relation", "unparsed")}
    out.update({k: hits[k] / n_objects for k in ("colour", "shape", "size")})
    if canonical is not None:
        out["exact"] = hits["exact"] / n
    return out


def recall_at_k(similarity: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """similarity (N, N): row i = query i, the right match is column i. R@K per K."""
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(
            f"similarity must be a square (N, N) matrix, got {tuple(similarity.shape)}"
        )
    target = similarity.diagonal().unsqueeze(1)  # (N, 1)
    rank = (similarity > target).sum(1)  # how many candidates beat the right one
    return {f"R@{k}": (rank < k).float().mean().item() for k in ks}
