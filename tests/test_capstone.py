"""The capstone pipeline: encoder, objectives wiring, colour noise, run(), resume and the CLI."""

import json

import numpy as np
import pytest
import torch

from minivlm.__main__ import main
from minivlm.capstone import (
    Captioner,
    Pairs,
    Pretrainer,
    TwoPathwayEncoder,
    attribute_probe,
    content_words,
    curate,
    datasets,
    is_subsequence,
    noisy_colours,
    preset,
    pretrain_stage,
    results_table,
    run,
    self_label,
)
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
from minivlm.viz import word_attention

TINY = dict(
    image_size=32, grid=4, d_model=32, n_alt=64, n_captioned=64, n_test=16, n_comp=16,
    batch=8, pretrain_steps=4, caption_steps=4, threads=0, progress=False,
)  # fmt: skip


@pytest.fixture(scope="module")
def tok():
    return CaptionTokenizer.shapes_world()


def test_encoder_gives_shape_then_colour_tokens():
    enc = TwoPathwayEncoder(64, 48, grid=8, width=8)
    x = to_tensor(render(make_scenes("train", 3), size=64))
    assert enc(x).shape == (3, 2 * 64, 48)
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        enc(x[:, :, :32, :32])
    with pytest.raises(ValueError, match="power of two"):
        preset("ci", image_size=48, grid=8)


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
    pre = Pretrainer(cfg, tok)
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


def test_run_end_to_end_and_resume_gives_the_same_scores(tmp_path, capsys):
    cfg = preset(
        "ci", **TINY, curated_steps=4, self_train_steps=4, self_train_rounds=2,
        self_train_last_steps=6, finetune_lr=1e-3,
    )  # fmt: skip
    first = run(cfg, out_dir=tmp_path)
    assert 1 <= first["curated"]["kept"] < cfg.n_alt
    assert len(first["self_labelled"]) == 2  # one entry per round of stage 3
    for labelled in first["self_labelled"]:
        assert 0 <= labelled["kept"] <= labelled["of"]  # the alt-texts that parse
    assert first["self_labelled"][0]["of"] >= first["curated"]["kept"]
    assert "keep" not in first  # stage 1b's indices feed stage 3 but are not reported
    for r in (0, 1):
        assert (tmp_path / "selftrain" / f"round{r}").is_dir()
    assert [row["round"] for row in first["log_selftrain"]].count(1) >= 1
    last_step = {row["round"]: row["step"] for row in first["log_selftrain"]}
    assert last_step == {0: 4, 1: 6}  # the last round runs self_train_last_steps
    stages = ("pretrain", "curate", "curated", "caption", "label", "selftrain")
    assert np.isclose(first["time"]["train"], sum(first["time"][k] for k in stages))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["test"]["exact"] == first["test"]["exact"]
    for key in ("test", "comp"):
        assert 0.0 <= first[key]["grounded"] <= 1.0 and "BLEU-4" in first[key]
    assert len(first["captions_test"]) == cfg.n_test
    assert first["retrieval_after"]["t2i R@1"] >= 0.0
    # a second run finds the final checkpoints of every stage and only evaluates
    again = run(cfg, out_dir=tmp_path)
    assert again["captions_test"] == first["captions_test"]
    for a, b in zip(
        first["model"].state_dict().values(), again["model"].state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    table = results_table([("tiny", first)])
    assert table.count("\n") == 2 and f"{first['test']['exact']:.3f}" in table


def test_a_reused_stage_1_gives_the_run_it_came_from(tok):
    cfg = preset("ci", **TINY, curated_steps=4)
    data = datasets(cfg)
    whole = run(cfg, data=data, verbose=False)
    stage1 = pretrain_stage(cfg, data, tok, say=lambda _: None)
    reused = run(cfg, data=data, verbose=False, stage1=stage1)
    assert reused["captions_test"] == whole["captions_test"]
    assert reused["time"]["train"] >= reused["time"]["curated"] + reused["time"]["caption"]
    assert not run(cfg, data=data, verbose=False, pretrain=False)["time"].get("pretrain")


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
    pre = _LengthScorer(preset("ci", **TINY), tok)
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
    model = Captioner.from_pretrainer(Pretrainer(cfg, tok), 0.0)
    image = to_tensor(render(make_scenes("test", 1), size=32))[0]
    words, maps = word_attention(model, image, tok)
    assert maps.shape == (len(words), 4, 4)
    torch.testing.assert_close(maps.sum((1, 2)), torch.ones(len(words)))  # 2 pathways, one softmax


def test_cli_runs_a_preset_and_rejects_unknown_fields(tmp_path, capsys):
    args = ["capstone", "--preset", "ci", "--out", str(tmp_path), "--no-pretrain"]
    args += [f"--set={k}={v}" for k, v in TINY.items()]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| ci seed 0 |" in printed and (tmp_path / "ci-seed0-scratch" / "results.json").exists()
    with pytest.raises(SystemExit):
        main(["capstone", "--set", "no_such_field=1"])
    with pytest.raises(ValueError, match="unknown preset"):
        preset("laptop")
    assert np.isclose(preset("cpu", lr=1e-3).lr, 1e-3)
    for bad in (
        {"curated_steps": -1},
        {"curate_keep": 0.0},
        {"curate_keep": 1.5},
        {"self_train_steps": -1},
        {"self_train_rounds": 0},
        {"self_train_last_steps": -1},
        {"real_share": 0.0},
        {"real_share": 1.0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            preset("lowcap", **bad)
    with pytest.raises(ValueError, match="self_train_steps needs curated_steps"):
        preset("lowcap", curated_steps=0)
    assert preset("lowcap", self_train_steps=0).self_train_steps == 0  # stage 3 off, last too


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
    model = Captioner.from_pretrainer(Pretrainer(cfg, tok), 0.0)
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
