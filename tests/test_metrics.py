"""Caption metrics against pycocoevalcap's own scorers, grounded accuracy, and recall@K."""

import random

import numpy as np
import pytest
import torch
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from minivlm.data import caption, make_scenes, paraphrase, parse, scene_facts
from minivlm.data.scenes import COLORS, SHAPES, SIZES
from minivlm.metrics import (
    bleu,
    caption_scores,
    cider_d,
    grounded_accuracy,
    lcs_length,
    missed_facts,
    recall_at_k,
    rouge_l,
)

WORDS = (
    "a the red blue green small large circle square triangle left of above on cat dog sits".split()
)


def random_corpus(seed: int, n_images: int = 40):
    rng = random.Random(seed)
    sent = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))  # noqa: E731
    refs = {i: [sent() for _ in range(rng.randint(1, 5))] for i in range(n_images)}
    hyps = {i: [sent()] for i in range(n_images)}
    return refs, hyps


@pytest.mark.parametrize("seed", range(5))
def test_bleu_equals_pycocoevalcap(seed):
    refs, hyps = random_corpus(seed)
    expected, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    for ours, theirs in zip(bleu(refs, hyps), expected, strict=True):
        assert abs(ours - theirs) <= 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_rouge_and_cider_equal_pycocoevalcap(seed):
    refs, hyps = random_corpus(seed)
    assert abs(rouge_l(refs, hyps) - Rouge().compute_score(refs, hyps)[0]) <= 1e-6
    assert abs(cider_d(refs, hyps) - Cider().compute_score(refs, hyps)[0]) <= 1e-6


def test_on_shapes_world_captions():
    scenes = make_scenes("test", 30)
    rng = np.random.default_rng(0)
    refs = {i: [caption(s), paraphrase(s, rng)] for i, s in enumerate(scenes)}
    hyps = {i: [caption(s)] for i, s in enumerate(scenes)}
    ours = caption_scores(refs, hyps)
    assert abs(ours["CIDEr-D"] - Cider().compute_score(refs, hyps)[0]) <= 1e-6
    assert ours["BLEU-1"] > 0.9 and ours["ROUGE-L"] > 0.9


def test_perfect_and_empty_overlap():
    refs = {0: ["a red circle"], 1: ["a blue square left of a red circle"]}
    assert bleu(refs, {0: ["a red circle"], 1: ["a blue square left of a red circle"]})[
        3
    ] == pytest.approx(1.0, abs=1e-6)
    assert bleu(refs, {0: ["dog"], 1: ["cat"]})[0] == pytest.approx(0.0, abs=1e-6)
    assert lcs_length("a b c d".split(), "a c d e".split()) == 3


def test_grounded_accuracy_reads_meaning_not_wording():
    scenes = make_scenes("test", 20, n_objects=2)
    facts = [scene_facts(s) for s in scenes]
    canon = [caption(f) for f in facts]
    rng = np.random.default_rng(1)
    paraphrased = [paraphrase(f, rng) for f in facts]
    scores = grounded_accuracy(paraphrased, facts, canon)
    assert scores["grounded"] == 1.0 and scores["exact"] < 1.0
    broken = ["a small red"] + canon[1:]  # one caption the parser rejects
    scores = grounded_accuracy(broken, facts, canon)
    assert scores["unparsed"] == pytest.approx(1 / 20) and scores["grounded"] == pytest.approx(
        19 / 20
    )
    swapped = (
        canon[0].replace("left of", "above")
        if "left of" in canon[0]
        else canon[0].replace("above", "left of")
    )
    assert grounded_accuracy([swapped], facts[:1])["relation"] == 0.0


def test_missed_facts_names_each_wrong_fact():
    facts = scene_facts(make_scenes("test", 1, n_objects=3)[0])
    canon = caption(facts)
    assert missed_facts(canon, facts) == []
    assert missed_facts(paraphrase(facts, np.random.default_rng(0)), facts) == []
    assert missed_facts("a small red", facts) == ["unparsed"]
    (s0, c0, h0), (s1, c1, h1) = facts.objects[:2]
    other = {"circle": "square", "square": "triangle", "triangle": "circle"}
    wrong = canon.replace(f"a {s0} {c0} {h0}", f"a {s0} {c0} {other[h0]}", 1)
    assert missed_facts(wrong, facts) == ["shape"]
    two = canon.rsplit(f" {facts.relation} ", 1)[0]  # the third object dropped
    assert missed_facts(two, facts) == ["count"]
    flipped = canon.replace(facts.relation, "above" if facts.relation == "left of" else "left of")
    assert missed_facts(flipped, facts) == ["relation"]
    # the metric and the failure list agree on captions with random attribute errors
    rng = random.Random(0)
    choices = {w: tuple(group) for group in (SIZES, COLORS, SHAPES) for w in group}
    seen = set()
    for _ in range(50):
        text = " ".join(
            rng.choice(choices[w]) if w in choices and rng.random() < 0.2 else w
            for w in canon.split()
        )
        missed = missed_facts(text, facts)
        seen.add(len(missed))
        assert (grounded_accuracy([text], [facts])["grounded"] == 1.0) == (missed == [])
        said = [a for obj in parse(text).objects for a in obj]  # sizes, colours, shapes
        truth = [a for obj in facts.objects for a in obj]
        assert len(missed) == sum(a != b for a, b in zip(said, truth, strict=True))
    assert {0, 1, 2} <= seen


def test_recall_at_k():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.5, 0.0], [0.1, 0.2, 0.3]])
    r = recall_at_k(sim, ks=(1, 2))
    assert r["R@1"] == pytest.approx(2 / 3) and r["R@2"] == 1.0


@pytest.mark.parametrize(
    "call, err, words",
    [
        (lambda: bleu({0: ["a"]}, {1: ["a"]}), ValueError, "same image ids"),
        (lambda: bleu({0: ["a"]}, {0: ["a", "b"]}), ValueError, "exactly one candidate"),
        (lambda: rouge_l({0: []}, {0: ["a"]}), ValueError, "non-empty list of reference"),
        (lambda: cider_d({}, {}), ValueError, "no captions"),
        (lambda: bleu([], []), TypeError, "must be dicts"),
        (lambda: recall_at_k(torch.zeros(2, 3)), ValueError, "square"),
        (lambda: grounded_accuracy(["a"], []), ValueError, "same length"),
    ],
)
def test_bad_input_is_a_clear_error(call, err, words):
    with pytest.raises(err, match=words):
        call()
