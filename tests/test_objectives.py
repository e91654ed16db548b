"""Pretraining objectives: ITC equals CLIP's loss, hard negatives, BERT masking, retrieval."""

import math

import pytest
import torch
from transformers.models.clip import modeling_clip

from minivlm.data import CaptionTokenizer, caption, make_scenes
from minivlm.objectives import (
    Temperature,
    hard_negatives,
    itc_loss,
    itm_pairs,
    mask_tokens,
    retrieval,
    similarity,
)

# the CLIP loss in transformers: `clip_loss` before 5.0, `image_text_contrastive_loss` after
clip_loss = getattr(modeling_clip, "clip_loss", None) or modeling_clip.image_text_contrastive_loss


def test_itc_equals_transformers_clip_loss():
    torch.manual_seed(0)
    img, txt = torch.randn(8, 16), torch.randn(8, 16)
    logits = Temperature()() * similarity(img, txt)
    torch.testing.assert_close(itc_loss(logits), clip_loss(logits.T))  # CLIP passes text x image
    torch.testing.assert_close(itc_loss(logits), clip_loss(logits))  # symmetric anyway


def test_itc_is_low_for_matching_pairs():
    emb = torch.eye(6)
    perfect = itc_loss(100 * similarity(emb, emb))
    shuffled = itc_loss(100 * similarity(emb, emb.roll(1, 0)))
    assert perfect < 1e-3 and shuffled > 10


def test_temperature_starts_at_clip_value_and_is_clamped():
    t = Temperature()
    assert t().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        t.log_scale.fill_(10.0)
    assert t().item() == pytest.approx(100.0, rel=1e-5)


def test_hard_negatives_are_never_the_pair_and_follow_similarity():
    sim = torch.full((4, 4), -5.0)
    sim.fill_diagonal_(10.0)
    sim[0, 2] = 5.0  # text 2 looks very much like image 0's text
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(200):
        neg_text, neg_image = hard_negatives(sim, g)
        assert (neg_text != torch.arange(4)).all() and (neg_image != torch.arange(4)).all()
        counts[neg_text[0]] += 1
    assert counts[2] > 190  # drawn in proportion to softmax(sim): e^5 vs e^-5


def test_itm_pairs_layout():
    sim = torch.randn(5, 5)
    images, texts, labels = itm_pairs(sim, torch.Generator().manual_seed(1))
    assert images.shape == texts.shape == labels.shape == (15,)
    assert (labels[:5] == 1).all() and (labels[5:] == 0).all()
    assert (images[:5] == texts[:5]).all() and (images[5:] != texts[5:]).all()


def test_mask_tokens_follows_bert_proportions():
    tok = CaptionTokenizer.shapes_world()
    ids, keep = tok.batch_encode([caption(s) for s in make_scenes("train", 2000)])
    special = ~keep | (ids == tok.bos_id) | (ids == tok.eos_id)
    g = torch.Generator().manual_seed(0)
    out, labels = mask_tokens(ids, special, tok.mask_id, len(tok), generator=g)
    chosen = labels != -100
    assert not (chosen & special).any()
    assert chosen.sum() / (~special).sum() == pytest.approx(0.15, abs=0.01)
    assert (labels[chosen] == ids[chosen]).all()
    assert ((out != ids) & ~chosen).sum() == 0  # only chosen tokens change
    n = chosen.sum().item()
    as_mask = (out[chosen] == tok.mask_id).sum().item() / n
    unchanged = (out[chosen] == ids[chosen]).sum().item() / n
    assert as_mask == pytest.approx(0.8, abs=0.03)
    assert unchanged == pytest.approx(0.1 + 0.1 / (len(tok) - 5), abs=0.03)  # kept, or a lucky draw
    assert (
        (out[chosen] > tok.mask_id).logical_or(out[chosen] == tok.mask_id).all()
    )  # never a special


def test_retrieval_recall_both_ways():
    emb = torch.eye(12)
    r = retrieval(emb, emb, ks=(1, 5))
    assert all(v == 1.0 for v in r.values())
    r = retrieval(emb, emb.roll(1, 0), ks=(1,))
    assert r["i2t R@1"] == 0.0 and r["t2i R@1"] == 0.0
    assert math.isclose(
        retrieval(torch.randn(100, 64), torch.randn(100, 64), ks=(10,))["i2t R@10"],
        0.1,
        abs_tol=0.1,
    )


@pytest.mark.parametrize(
    "call, err, words",
    [
        (lambda: itc_loss(torch.zeros(2, 3)), ValueError, "square logits"),
        (lambda: similarity(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, r"\(B, D\)"),
        (lambda: hard_negatives(torch.zeros(1, 1)), ValueError, "B >= 2"),
        (
            lambda: mask_tokens(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3), 4, 10),
            ValueError,
            "bool tensor",
        ),
        (
            lambda: mask_tokens(
                torch.zeros(2, 3, dtype=torch.long),
                torch.zeros(2, 3, dtype=torch.bool),
                4,
                10,
                prob=1.5,
            ),
            ValueError,
            "prob",
        ),
    ],
)
def test_bad_input_is_a_clear_error(call, err, words):
    with pytest.raises(err, match=words):
        call()
