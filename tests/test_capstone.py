"""The capstone package: config, encoders, objectives wiring, colour noise, the stages, run()."""

import json

import numpy as np
import pytest
import torch

from minivlm.capstone import (
    PRESETS,
    STAGES,
    Captioner,
    GridEncoder,
    Pairs,
    PatchEncoder,
    Pretrainer,
    TwoPathwayEncoder,
    attribute_probe,
    config_from_dict,
    content_words,
    curate,
    datasets,
    image_encoder,
    is_subsequence,
    noisy_colours,
    override,
    preset,
    pretrain_stage,
    results_table,
    run,
    scratch,
    self_label,
)
from minivlm.captioner import teacher_forcing_loss
from minivlm.data import (
    AltTextPairs,
    CaptionTokenizer,
    ShapesCaptions,
    make_scenes,
    parse,
    render,
    to_tensor,
)
from minivlm.data.scenes import COLORS, Obj, Scene
from minivlm.errors import InputError
from minivlm.vision import sinusoidal_positions_2d
from minivlm.viz import word_attention

from .capstone_tiny import TINY  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return CaptionTokenizer.shapes_world()


def test_encoder_gives_shape_then_colour_tokens():
    enc = TwoPathwayEncoder(64, 48, grid=8, width=8)
    x = to_tensor(render(make_scenes("train", 3), size=64))
    assert enc(x).shape == (3, 2 * 64, 48)
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        enc(x[:, :, :32, :32])
    with pytest.raises(InputError, match="image_size: expected image_size / grid to be a power"):
        preset("ci", image_size=48, grid=8)


def test_encoder_keeps_the_fullest_cells_tokens_unchanged():
    """keep=K returns, of each pathway, the tokens that keep=0 gives at the K cells with the
    most object, in raster order; an object's cells are all among them."""
    torch.manual_seed(0)
    full, part = TwoPathwayEncoder(64, 48, width=8), TwoPathwayEncoder(64, 48, width=8, keep=24)
    part.load_state_dict(full.state_dict())
    x = to_tensor(render(make_scenes("train", 20), size=64))
    cells = part.cells(x)  # (B, K)
    assert cells.shape == (20, 24) and (cells.diff(dim=1) > 0).all()
    torch.testing.assert_close(full.cells(x), torch.arange(64).expand(20, -1))
    cover = full.cover(x)  # (B, G*G)
    kept = cover.gather(1, cells)
    assert (kept.min(1).values >= cover.sort(1, descending=True).values[:, 23]).all()
    torch.testing.assert_close(kept.sum(1), cover.sum(1))  # no scene here fills over 24 cells
    tokens, want = part(x), full(x)  # (B, 48, D), (B, 128, D)
    pick = cells[..., None].expand(-1, -1, 48)
    torch.testing.assert_close(tokens[:, :24], want[:, :64].gather(1, pick), rtol=0, atol=0)
    torch.testing.assert_close(tokens[:, 24:], want[:, 64:].gather(1, pick), rtol=0, atol=0)
    hide = torch.tensor([True] + [False] * 19)
    assert part(x, hide_colour=hide)[0, 24:].abs().max() == 0  # colour dropout still works
    assert image_encoder(preset("quick").model).keep == preset("quick").model.keep_cells


def test_pos_base_reaches_the_encoders_positions():
    """ModelConfig.pos_base sets the base of the cells' sinusoids in both grid encoders."""
    for encoder in ("two_pathway", "cnn"):
        m = preset("ci", encoder=encoder, pos_base=2.5).model
        torch.testing.assert_close(image_encoder(m).pos, sinusoidal_positions_2d(8, 8, 128, 2.5))
    default = image_encoder(preset("ci").model).pos
    torch.testing.assert_close(default, sinusoidal_positions_2d(8, 8, 128))  # base 10000


@pytest.mark.parametrize("encoder, cls", [("cnn", GridEncoder), ("vit", PatchEncoder)])
def test_generic_encoders_give_one_token_per_cell(encoder, cls):
    cfg = preset("ci", encoder=encoder, image_size=32, grid=4, d_model=32)
    enc = image_encoder(cfg.model)
    x = to_tensor(render(make_scenes("train", 2), size=32))
    assert isinstance(enc, cls) and enc.grid == 4
    assert enc(x).shape == (2, 16, 32)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        enc(x[:, :, :16, :16])


def test_silhouette_is_blind_to_colour():
    """Two scenes that differ only in colour have the same silhouette away from edges."""
    enc = TwoPathwayEncoder(64, 32)
    scenes = [Scene((Obj("triangle", c, "large", 0.5, 0.5),)) for c in ("red", "blue")]
    m = enc.silhouette(to_tensor(render(scenes, size=64, noise=0.0)))[:, 0]  # (2, 64, 64)
    solid = (m[0] == m[0].round()) & (m[1] == m[1].round())  # fully in or fully out
    assert solid.float().mean() > 0.95
    assert torch.equal(m[0][solid], m[1][solid])
    assert m[0].sum() > 50  # the triangle is there


def test_noisy_colours_only_touch_colour_words(tok):
    colours = torch.tensor([tok.tk.token_to_id(c) for c in COLORS])
    ids, _ = tok.batch_encode(["a small red circle left of a large blue square"] * 400)
    out = noisy_colours(ids, colours, 0.5)
    is_colour = torch.isin(ids, colours)
    assert torch.equal(out[~is_colour], ids[~is_colour])
    assert torch.isin(out[is_colour], colours).all()
    changed = (out != ids)[is_colour].float().mean().item()
    assert 0.5 * 5 / 6 - 0.05 < changed < 0.5 * 5 / 6 + 0.05  # a random colour may be the same
    assert noisy_colours(ids, colours, 0.0) is ids


def test_pretrainer_losses_reach_every_part(tok):
    torch.manual_seed(0)
    cfg = preset("ci", **TINY)
    pre = Pretrainer(cfg.model, cfg.schedule, tok)
    ids, mask = tok.batch_encode(["a small red circle", "a blue square and a triangle"] * 4)
    batch = {"image": torch.randn(8, 3, 32, 32), "ids": ids, "mask": mask}
    out = pre(batch)
    assert set(out) == {"loss", "itc", "itm", "mlm", "lm"}
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    for part in (pre.image, pre.text, pre.fuse, pre.itm_head, pre.scale):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    cap = Captioner.from_pretrainer(pre, noise=0.3)
    torch.testing.assert_close(cap.decoder.lm_head.weight, pre.fuse.lm_head.weight)


def test_colour_drop_hides_the_colour_tokens_and_leaves_colour_words_unscored(tok):
    """colour_drop=1: every caption is learnt from the silhouettes alone. The colour pathway gets
    no gradient, and the loss is teacher forcing with the colour words read at random and not
    scored. colour_drop=0 is the old loss, random draws included."""
    torch.manual_seed(0)
    cfg = preset("ci", **TINY)
    pre = Pretrainer(cfg.model, cfg.schedule, tok)
    ids, mask = tok.batch_encode(["a small red circle", "a blue square left of a red circle"] * 2)
    batch = {"image": to_tensor(render(make_scenes("train", 4), size=32)), "ids": ids, "mask": mask}
    blind = Captioner.from_pretrainer(pre, noise=0.3, colour_drop=1.0)
    torch.manual_seed(1)
    blind(batch)["loss"].backward()
    colour_parts = (blind.image.colour_net, blind.image.colour_proj, blind.image.colour_norm)
    for part in colour_parts:
        assert all(p.grad is None or not p.grad.any() for p in part.parameters())
    assert blind.image.shape_net[0].weight.grad.abs().sum() > 0
    torch.manual_seed(1)
    hide = torch.rand(4) < 1.0  # the draws forward makes, in its order
    read = noisy_colours(ids, blind.colour_ids, 1.0)
    is_colour = torch.isin(ids, blind.colour_ids)
    image = blind.image(batch["image"], hide_colour=hide)
    assert not image[:, image.shape[1] // 2 :].any()  # the colour tokens are zeros
    by_hand = teacher_forcing_loss(blind.decoder, ids, mask, image, read=read, unscored=is_colour)
    torch.manual_seed(1)
    torch.testing.assert_close(blind(batch)["loss"], by_hand)
    plain, ref = (Captioner.from_pretrainer(pre, noise=0.3) for _ in range(2))  # equal weights
    torch.manual_seed(2)
    a = plain(batch)["loss"]
    torch.manual_seed(2)
    read = noisy_colours(ids, ref.colour_ids, 0.3)
    b = teacher_forcing_loss(ref.decoder, ids, mask, ref.image(batch["image"]), read=read)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="colour_drop needs a TwoPathwayEncoder, got GridEncoder"):
        Captioner(GridEncoder(32, 32, grid=4, width=8), pre.fuse, pre.colour_ids, 0.0, 0.5)


def test_run_end_to_end_then_a_rerun_only_evaluates(tmp_path):
    cfg = preset("ci", **TINY, curated_steps=4, self_train=[4, 6], finetune_lr=1e-3)
    first, trained = run(cfg, out_dir=tmp_path)
    assert 1 <= first.curated["kept"] < cfg.data.n_alt
    assert len(first.self_labelled) == 2  # one entry per round of stage 3
    for labelled in first.self_labelled:
        assert 0 <= labelled["kept"] <= labelled["of"]  # the alt-texts that parse
    assert first.self_labelled[0]["of"] >= first.curated["kept"]
    for r in (0, 1):
        assert (tmp_path / "selftrain" / f"round{r}" / "labels.json").is_file()
    last_step = {row["round"]: row["step"] for row in first.logs["selftrain"]}
    assert last_step == {0: 4, 1: 6}  # each round runs its own number of steps
    assert first.steps_run == {"pretrain": 4, "curated": 4, "caption": 4, "selftrain": 10}
    assert set(first.times) == set(STAGES)  # seconds for every stage, keyed by stage
    assert first.train_seconds == pytest.approx(sum(first.times.values()))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["scores"]["test"]["exact"] == first.scores["test"]["exact"]
    assert saved["config"]["schedule"]["self_train"] == [4, 6]  # the config that ran
    assert config_from_dict(saved["config"]) == cfg
    for key in ("test", "comp"):
        assert 0.0 <= first.scores[key]["grounded"] <= 1.0 and "BLEU-4" in first.scores[key]
    assert len(first.captions["test"]) == cfg.data.n_test
    assert first.retrieval["after"]["t2i R@1"] >= 0.0
    # a second run finds every stage done (checkpoints, curated indices, labels): it only
    # evaluates, and reports the same times as the run that did the work
    again, trained_again = run(cfg, out_dir=tmp_path)
    assert again.steps_run == {k: 0 for k in first.steps_run}
    assert again.times == first.times and again.captions == first.captions
    for a, b in zip(
        trained.captioner.state_dict().values(),
        trained_again.captioner.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    table = results_table([("tiny", first)])
    assert table.count("\n") == 2 and f"{first.scores['test']['exact']:.3f}" in table


def test_a_reused_stage_1_gives_the_run_it_came_from(tok):
    cfg = preset("ci", **TINY, curated_steps=4)
    data = datasets(cfg)
    whole, _ = run(cfg, data=data, verbose=False)
    stage1 = pretrain_stage(cfg, data, tok, say=lambda _: None)
    reused, _ = run(cfg, data=data, verbose=False, stage1=stage1)
    assert reused.captions == whole.captions
    assert set(reused.times) == {"pretrain", "curate", "curated", "caption"}  # stage 1 charged
    ablation = scratch(cfg, caption_steps=6)
    arm, _ = run(ablation, data=datasets(ablation), verbose=False)
    assert set(arm.times) == {"caption"} and arm.steps_run == {"caption": 6}
    assert arm.config.schedule.caption_steps == 6  # the config records what ran
    assert "alt" not in datasets(ablation)  # no stage 1, so no alt-text is made


def test_config_parts_take_flat_overrides_and_refuse_what_would_go_unread():
    cfg = override(PRESETS["ci"], d_model=64, n_alt=123, caption_steps=7, seed=3)
    assert (cfg.model.d_model, cfg.data.n_alt, cfg.schedule.caption_steps, cfg.seed) == (
        64, 123, 7, 3,
    )  # fmt: skip
    assert PRESETS["ci"].model.d_model == 128  # presets are never changed in place
    assert preset("lowcap").schedule.self_train == (500,) * 6 + (2000,)
    for bad, match in (
        ({"curated_steps": -1}, "curated_steps: expected a value >= 0"),
        ({"curate_keep": 0.0}, "curate_keep: expected a value in \\(0.0, 1.0\\]"),
        ({"curate_keep": 1.5}, "curate_keep"),
        ({"self_train": [500, 0]}, "self_train: expected round lengths >= 1"),
        ({"real_share": 1.0}, "real_share"),
        ({"pretrain_steps": 0}, "curated_steps: expected pretrain_steps > 0"),
        ({"curated_steps": 0}, "self_train: expected curated_steps > 0"),
        ({"encoder": "vit"}, None),
        ({"encoder": "cnn", "vit_layers": 3}, "vit_layers: expected its default"),
        ({"lr": "abc"}, "lr: expected a number, got 'abc'"),
        ({"batch": 1.5}, "batch: expected an integer, got 1.5"),
        ({"no_such": 1}, "no_such: expected a field of the capstone config"),
        ({"colour_drop": 1.0}, "colour_drop: expected a value in \\[0.0, 1.0\\)"),
        ({"encoder": "cnn", "colour_drop": 0.5}, "colour_drop: expected 0 with encoder=cnn"),
        ({"keep_cells": -1}, "keep_cells: expected a value >= 0"),
        ({"keep_cells": 65}, "keep_cells: expected at most grid \\* grid = 64, got 65"),
        ({"encoder": "cnn", "keep_cells": 8}, "keep_cells: expected its default with encoder=cnn"),
        ({"pos_base": 1.0}, "pos_base: expected a value > 1, got 1.0"),
        ({"encoder": "vit", "pos_base": 2.5}, "pos_base: expected its default with encoder=vit"),
    ):
        if match is None:
            assert preset("lowcap", **bad).model.encoder == "vit"
            continue
        with pytest.raises(InputError, match=match):
            preset("lowcap", **bad)
    with pytest.raises(InputError, match="preset: expected one of ci, quick, cpu"):
        preset("laptop")
    assert preset("ci", finetune_lr=0.0, pretrain_steps=0).schedule.pretrain_steps == 0
    with pytest.raises(InputError, match="finetune_lr: expected pretrain_steps > 0"):
        preset("ci", pretrain_steps=0, finetune_lr=1e-3)
    a, b = preset("ci"), preset("ci", threads=1, progress=False, device="cpu")
    assert a.identity() == b.identity() and a.identity() != preset("ci", seed=1).identity()


class _LengthScorer(Pretrainer):
    """A stand-in stage 1 whose ITC similarity grows with the length of the text."""

    def embed(self, images, ids, mask):
        n = len(ids)
        v = torch.tensor([[1.0, 0.0]]).expand(n, 2)
        t = torch.stack([mask.sum(1).float(), torch.ones(n)], 1)  # cos = L / sqrt(L^2 + 1)
        return None, v, t


def _parses(text):
    try:
        parse(text)
    except ValueError:
        return False
    return True


def test_curate_keeps_the_best_scoring_complete_sentences(tok):
    alt = AltTextPairs(300, size=32)
    cfg = preset("ci", **TINY)
    pre = _LengthScorer(cfg.model, cfg.schedule, tok)
    sentences = [i for i, t in enumerate(alt.texts) if _parses(t)]
    assert 0 < len(sentences) < len(alt.texts)  # partials and bags do not parse
    assert curate(pre, alt, tok, keep=1.0, batch=64).tolist() == sentences
    kept = curate(pre, alt, tok, keep=0.5, batch=64)
    assert len(kept) == round(0.5 * len(sentences)) and set(kept) <= set(sentences)
    length = {i: len(alt.texts[i].split()) for i in sentences}
    dropped = set(sentences) - set(kept)
    assert min(length[i] for i in kept) >= max(length[i] for i in dropped)
    assert pre.training  # curate puts the model back in the mode it found it in
    with pytest.raises(ValueError, match="keep"):
        curate(pre, alt, tok, keep=0.0)


def test_is_subsequence():
    text = "a photo of a small red circle to the left of a blue square".split()
    assert is_subsequence("a small red circle left of a blue square".split(), text)
    assert is_subsequence([], text)
    assert not is_subsequence("a blue square left of a small red circle".split(), text)
    assert not is_subsequence("a small red circle above a blue square".split(), text)
    assert not is_subsequence("a small red circle circle".split(), text)  # each word used once


def test_content_words_keep_the_order_and_drop_relations_and_prefixes():
    said = content_words("a small red circle left of a small blue square")
    assert said == ["small", "red", "circle", "small", "blue", "square"]
    assert (
        content_words(
            "there are two shapes : a small red circle to the left of a small blue square"
        )
        == said
    )
    backwards = "a small blue square to the right of a small red circle"
    assert content_words(backwards) == said[3:] + said[:3]
    assert content_words("circle red small") != content_words("a small red circle")
    assert content_words("a red circle") != content_words("a small red circle")


class _Scripted(torch.nn.Module):
    """A stand-in captioner that writes the given captions, in order, one per image."""

    def __init__(self, tok, captions):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.tok, self.captions = tok, list(captions)

    def caption(self, images, beam=1):
        ids, _ = self.tok.batch_encode([self.captions.pop(0) for _ in range(len(images))])
        return ids[:, 1:]  # (B, T-1): what generate returns, after [BOS]


def test_self_label_keeps_captions_that_name_what_the_alt_text_names(tok):
    alt = Pairs(
        np.zeros((10, 32, 32, 3), np.uint8),
        [
            "a small red circle",  # agrees
            "a photo of a small red circle to the left of a large blue square",  # agrees
            "a small red circle",  # the captioner says large: dropped
            "a small red circle left of a large blue square",  # colours swapped: dropped
            "a large blue square right of a small red circle",  # may be right, can't tell: dropped
            "circle red small",  # a bag of the same words, in another order: dropped
            "a red circle",  # partial: the size is missing, dropped
            # backward, and the captioner named the objects in the wrong order: the content
            # words agree by accident, but "left" is not in the alt-text, dropped
            "a small red circle right of a large blue square",
            "a small red circle over a large blue square",  # "above" is not said: dropped
            "a small green triangle",  # not in the pool
        ],
    )
    synthetic = [
        "a small red circle",
        "a small red circle left of a large blue square",
        "a large red circle",
        "a small blue circle left of a large red square",
        "a small red circle left of a large blue square",
        "a small red circle",
        "a small red circle",
        "a small red circle left of a large blue square",
        "a small red circle above a large blue square",
    ]
    model = _Scripted(tok, synthetic)
    idx, kept = self_label(model, alt, tok, np.arange(9))
    assert idx.tolist() == [0, 1] and kept == [synthetic[i] for i in (0, 1)]
    assert model.training and not model.captions  # every pool image captioned once


def test_word_attention_maps(tok):
    torch.manual_seed(0)
    cfg = preset("ci", **TINY)
    model = Captioner.from_pretrainer(Pretrainer(cfg.model, cfg.schedule, tok), 0.0)
    image = to_tensor(render(make_scenes("test", 1), size=32))[0]
    words, maps = word_attention(model, image, tok)
    assert maps.shape == (len(words), 4, 4)
    torch.testing.assert_close(maps.sum((1, 2)), torch.ones(len(words)))  # 2 pathways, one softmax
    model.image.keep = 3  # 6 tokens: each word's map sits on the 3 cells kept
    words, maps = word_attention(model, image, tok)
    assert maps.shape == (len(words), 4, 4)
    torch.testing.assert_close(maps.sum((1, 2)), torch.ones(len(words)))
    kept = torch.zeros(16, dtype=torch.bool)
    kept[model.image.cells(image[None])[0]] = True
    assert (maps.flatten(1)[:, ~kept] == 0).all() and (maps.flatten(1)[:, kept] > 0).all()


class _Oracle(torch.nn.Module):
    """A decoder that knows the captions: its top word is the true next word, except that in
    scenes of `bad` it names the next shape in the list (circle -> square -> triangle)."""

    def __init__(self, ids: torch.Tensor, vocab: int, bad: torch.Tensor, shape_ids: torch.Tensor):
        super().__init__()
        self.ids, self.vocab, self.bad, self.shape_ids = ids, vocab, bad, shape_ids

    def forward(self, ids, image, key_mask=None):
        target = self.ids[:, 1 : ids.shape[1] + 1]  # (N, T-1): the true next words
        is_shape = torch.isin(target, self.shape_ids) & self.bad[:, None]
        which = (target[..., None] == self.shape_ids).long().argmax(-1)  # index in shape_ids
        target = torch.where(is_shape, self.shape_ids[(which + 1) % 3], target)
        return torch.nn.functional.one_hot(target, self.vocab).float()


def test_attribute_probe_scores_each_kind_by_object_count(tok):
    data = ShapesCaptions("test", 60, size=32)
    cfg = preset("ci", **TINY)
    model = Captioner.from_pretrainer(Pretrainer(cfg.model, cfg.schedule, tok), 0.0)
    probe = attribute_probe(model, data, tok)  # untrained: anything in [0, 1]
    assert set(probe) == {"1", "2", "3"}
    assert all(0.0 <= v <= 1.0 for kinds in probe.values() for v in kinds.values())
    ids, _ = tok.batch_encode(data.texts)
    shapes = torch.tensor([tok.tk.token_to_id(w) for w in ("circle", "square", "triangle")])
    two = torch.tensor([len(s.objects) == 2 for s in data.scenes])
    model.decoder = _Oracle(ids, len(tok), bad=two, shape_ids=shapes)
    probe = attribute_probe(model, data, tok)
    assert probe["1"] == probe["3"] == {"size": 1.0, "colour": 1.0, "shape": 1.0}
    assert probe["2"] == {"size": 1.0, "colour": 1.0, "shape": 0.0}


def test_order_diagnostic_paraphrases_keep_the_canonical_order():
    """bench/capstone.py --what order: its 'forward' oracle texts say the scene's facts, name the
    objects in the canonical caption's order, and still vary the wording."""
    import importlib.util
    from pathlib import Path

    from minivlm.data import caption, scene_facts

    path = Path(__file__).resolve().parents[1] / "bench" / "capstone.py"
    spec = importlib.util.spec_from_file_location("bench_capstone", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rng = np.random.default_rng(0)
    scenes = make_scenes("train", 200, seed=5)
    texts = [bench.forward_paraphrase(s, rng) for s in scenes]

    for s, t in zip(scenes, texts, strict=True):
        assert parse(t) == scene_facts(s)
        assert content_words(t) == content_words(caption(s))  # the same words, in order
    assert sum(t != caption(s) for s, t in zip(scenes, texts, strict=True)) > 100
    assert not any(f" {p} " in f" {t} " for t in texts for p in bench.BACKWARD)
