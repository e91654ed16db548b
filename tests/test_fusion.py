"""Fusion families: shapes, masks, the tutorial's two bugs, and clear errors."""

import numpy as np
import pytest
import torch

from minivlm.data import CaptionTokenizer, caption, make_scenes, render, scene_facts, to_tensor
from minivlm.fusion import (
    CoAttentionFusion,
    ConcatFusion,
    CrossAttentionFusion,
    FixedViLBERT,
    LateFusion,
    TutorialViLBERT,
)
from minivlm.matching import (
    NEGATIVE_KINDS,
    MatchModel,
    build_matching_data,
    cell_accuracy,
    cell_labels,
    evaluate,
    make_negative,
    ranking_batch,
    train_matcher,
    train_region_encoder,
)
from minivlm.transformer import BertConfig, BertEncoder
from minivlm.vision import ConvStem

D = 16


def tiny_bert() -> BertEncoder:
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=24,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=48,
    )
    return BertEncoder(cfg).eval()


@pytest.fixture
def pair():
    torch.manual_seed(0)
    img, txt = torch.randn(3, 16, D), torch.randn(3, 7, D)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    return img, txt, mask


FUSERS = [
    lambda: LateFusion(D, "product"),
    lambda: LateFusion(D, "concat"),
    lambda: ConcatFusion(D, 4, 2),
    lambda: CrossAttentionFusion(D, 4, 2),
    lambda: CoAttentionFusion(D, 4, 2),
]


@pytest.mark.parametrize("make", FUSERS)
def test_every_family_fuses_to_one_vector_and_ignores_padding(make, pair):
    img, txt, mask = pair
    fuser = make().eval()
    out = fuser(img, txt, mask)
    assert out.shape == (3, D) and torch.isfinite(out).all()
    noisy = txt.clone()
    noisy[1, 4:] += 100.0  # change only padded positions
    torch.testing.assert_close(fuser(img, noisy, mask), out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make", FUSERS)
def test_examples_are_independent(make, pair):
    img, txt, mask = pair
    fuser = make().eval()
    out = fuser(img, txt, mask)
    img2 = img.clone()
    img2[2] += torch.randn(16, D)  # (a constant shift would vanish in a LayerNorm)
    out2 = fuser(img2, txt, mask)
    torch.testing.assert_close(out2[:2], out[:2])
    assert not torch.allclose(out2[2], out[2])


def test_late_fusion_is_blind_to_word_order_without_a_text_encoder(pair):
    img, txt, _ = pair
    late = LateFusion(D).eval()
    torch.testing.assert_close(late(img, txt.flip(1)), late(img, txt), atol=1e-6, rtol=1e-5)
    cross = CrossAttentionFusion(D, 4, 1).eval()  # pools the first token: order matters
    assert not torch.allclose(cross(img, txt.flip(1)), cross(img, txt))


def test_tutorial_vilbert_mixes_the_batch_and_the_fix_does_not():
    bert = tiny_bert()
    torch.manual_seed(0)
    ids = torch.randint(5, 50, (3, 6))
    mask = torch.ones(3, 6, dtype=torch.bool)
    images = torch.randn(3, 3, 32, 32)
    changed = images.clone()
    changed[2] += 1.0  # change example 2 only
    tutorial = TutorialViLBERT(3 * 32 * 32, bert, n_heads=4).eval()
    with torch.no_grad():
        diff = (tutorial(changed, ids, mask) - tutorial(images, ids, mask)).abs().sum(-1)
    assert diff[0] > 1e-4 and diff[1] > 1e-4  # bug 1: examples 0 and 1 moved too
    fixed = FixedViLBERT(ConvStem(32, 24, grid=4, width=8), bert, n_heads=4).eval()
    with torch.no_grad():
        diff = (fixed(changed, ids, mask) - fixed(images, ids, mask)).abs().sum(-1)
    assert diff[0] == 0 and diff[1] == 0 and diff[2] > 0


def test_tutorial_vilbert_has_one_image_token_and_the_fix_has_regions():
    bert = tiny_bert()
    images = torch.randn(2, 3, 32, 32)
    tutorial = TutorialViLBERT(3 * 32 * 32, bert, n_heads=4).eval()
    assert tutorial.visual_encoder(images.flatten(1)).unsqueeze(1).shape[1] == 1  # bug 2
    fixed = FixedViLBERT(ConvStem(32, 24, grid=4, width=8), bert, n_heads=4).eval()
    ids, mask = torch.randint(5, 50, (2, 5)), torch.ones(2, 5, dtype=torch.bool)
    _, weights = fixed(images, ids, mask, need_weights=True)
    word_to_region = weights[-1][:, :, 1 + 16 :, 1 : 1 + 16]  # (B, h, words, regions)
    assert word_to_region.shape[-1] == 16
    assert not torch.allclose(word_to_region[0, 0, 0], word_to_region[0, 0, 0].mean().expand(16))


def test_minimal_edit_negatives():
    rng = np.random.default_rng(0)
    for scene in make_scenes("test", 200):
        facts = scene_facts(scene)
        for kind in NEGATIVE_KINDS:
            neg = make_negative(facts, kind, rng)
            if neg is None:
                continue
            assert neg != facts and neg.count == facts.count and neg.relation == facts.relation
            words_same = sorted(caption(neg).split()) == sorted(caption(facts).split())
            assert words_same == (kind != "colour")  # binding and relation keep the bag of words
    with pytest.raises(ValueError, match="unknown negative kind"):
        make_negative(facts, "size", rng)


def test_cell_labels_and_match_model_shapes():
    scenes = make_scenes("train", 5)
    labels = cell_labels(scenes, 4)
    assert labels.shape == (5, 16, 3)
    assert ((labels[..., 0] > 0).sum(1) == torch.tensor([len(s) for s in scenes])).all()
    tok = CaptionTokenizer.shapes_world()
    ids, mask = tok.batch_encode([caption(s) for s in scenes])
    for family in ("late-product", "concat", "co-attention"):
        logits = MatchModel(family, len(tok), d_region=8, d_model=16)(
            torch.randn(5, 16, 8), ids, mask
        )
        assert logits.shape == (5,)
    assert to_tensor(render(scenes, 32)).shape == (5, 3, 32, 32)


@pytest.mark.parametrize(
    "call, err, words",
    [
        (lambda p: LateFusion(D)(p[0][0], p[1], p[2]), ValueError, r"image tokens \(B, Ni, D\)"),
        (
            lambda p: ConcatFusion(D, 4, 1)(p[0][:2], p[1], p[2]),
            ValueError,
            "share batch and width",
        ),
        (
            lambda p: CrossAttentionFusion(D, 4, 1)(p[0], p[1], p[2].long()),
            ValueError,
            "text mask must be bool",
        ),
        (lambda p: LateFusion(D, "sum"), ValueError, "'product' or 'concat'"),
        (lambda p: MatchModel("gated", 10), ValueError, "unknown fusion family"),
    ],
)
def test_bad_input_is_a_clear_error(call, err, words, pair):
    with pytest.raises(err, match=words):
        call(pair)


@pytest.fixture
def tiny_matching():
    tok = CaptionTokenizer.shapes_world()
    data = build_matching_data("train", 12, 32, tok, seed=0)
    data.regions = torch.randn(12, 16, 8, generator=torch.Generator().manual_seed(0))
    return data, len(tok)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_restores_the_mode_it_found(training, tiny_matching):
    data, vocab = tiny_matching
    torch.manual_seed(0)
    model = MatchModel("co-attention", vocab, d_region=8, d_model=16).train(training)
    seen = []
    model.register_forward_hook(lambda m, args, out: seen.append((m.training, out.requires_grad)))
    scores = evaluate(model, data)
    assert set(scores) == set(NEGATIVE_KINDS) and all(0 <= v <= 1 for v in scores.values())
    assert seen and all(mode == (False, False) for mode in seen)  # eval mode, no gradients
    assert all(m.training == training for m in model.modules())  # then back as it was


def test_the_matching_trainings_use_the_one_loop_and_repeat_exactly(tiny_matching):
    data, vocab = tiny_matching
    torch.testing.assert_close(ranking_batch(data, 3, 4, seed=1), ranking_batch(data, 3, 4, seed=1))
    assert not torch.equal(ranking_batch(data, 3, 4, 1)[1], ranking_batch(data, 4, 4, 1)[1])
    runs = [train_matcher("late-product", data, data, vocab, steps=3, batch=4) for _ in range(2)]
    assert runs[0]["loss"] == runs[1]["loss"] and runs[0]["binding"] == runs[1]["binding"]
    encs = [train_region_encoder(data.images, data.labels, steps=2, batch=4) for _ in range(2)]
    for a, b in zip(encs[0].state_dict().values(), encs[1].state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert not encs[0].training and not any(p.requires_grad for p in encs[0].parameters())
    assert 0 <= cell_accuracy(encs[0], data.images, data.labels) <= 1


def test_passing_device_cpu_changes_nothing(tiny_matching):
    data, vocab = tiny_matching
    default = train_matcher("late-product", data, data, vocab, steps=3, batch=4)
    on_cpu = train_matcher("late-product", data, data, vocab, steps=3, batch=4, device="cpu")
    del default["seconds"], on_cpu["seconds"]
    assert on_cpu == default  # the same loss and accuracies, bit for bit
    enc = train_region_encoder(data.images, data.labels, steps=2, batch=4)
    enc_cpu = train_region_encoder(data.images, data.labels, steps=2, batch=4, device="cpu")
    assert all(map(torch.equal, enc.state_dict().values(), enc_cpu.state_dict().values()))
    acc = cell_accuracy(enc, data.images, data.labels)
    assert cell_accuracy(enc_cpu, data.images, data.labels, device="cpu") == acc
