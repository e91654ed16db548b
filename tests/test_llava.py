"""Chapter 10's prefix VLM: shapes, token merging, the answer-only loss, what each stage trains,
greedy decoding to [EOS], a short run, saving, and one-line errors."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minivlm.capstone.config import ModelConfig
from minivlm.capstone.encoders import TwoPathwayEncoder
from minivlm.data.corpus import DESCRIBE, lm_tokenizer
from minivlm.data.questions import KINDS, ShapesQuestions
from minivlm.errors import InputError
from minivlm.llava import (
    PrefixVLM,
    VLMConfig,
    answer_loss,
    ask,
    dialogue,
    encode_dialogues,
    instruction,
    load_vlm,
    merge_cells,
    save_vlm,
)
from minivlm.llava_train import DialogueBatches, accuracy, fit_stage, steps_for
from minivlm.lm import CausalLM, LMConfig, encode

TOK = lm_tokenizer()
VISION = ModelConfig(image_size=32, grid=4, width=4, d_model=16, n_heads=2)
LM = LMConfig(len(TOK), d_model=32, n_heads=2, n_layers=2)


def tiny(seed: int = 0, **kw) -> PrefixVLM:
    torch.manual_seed(seed)
    return PrefixVLM(VLMConfig(VISION, LM, **kw), TOK)


@pytest.fixture(scope="module")
def data() -> ShapesQuestions:
    return ShapesQuestions("train", 12, size=32, seed=3)


def test_the_dialogue_is_the_corpus_format_with_the_image_for_the_caption(data):
    assert dialogue("what colour is the square ?", "red") == (
        "<image> . what colour is the square ? red"
    )
    ids, mask, answer = encode_dialogues(TOK, ["is there a red circle ?", DESCRIBE],
                                         ["yes", "a small red circle"], max_len=48)  # fmt: skip
    words = [TOK.tk.id_to_token(i) for i in ids[0][mask[0]].tolist()]
    assert words == ["[BOS]", ".", "is", "there", "a", "red", "circle", "?", "yes", "[EOS]"]
    assert answer[0].nonzero()[:, 0].tolist() == [8, 9]  # the answer and its [EOS]
    assert answer[1].nonzero()[:, 0].tolist() == [6, 7, 8, 9, 10]  # [BOS] . describe the image .
    assert not encode_dialogues(TOK, ["is there a red circle ?"], None, 48)[2].any()
    assert instruction("What color is the square?") == "what colour is the square ?"
    assert instruction("Describe the image.") == DESCRIBE


@pytest.mark.parametrize(("kw", "n"), [({}, 8), ({"merge": 1}, 32), ({"pair": True}, 4),
                                       ({"projector": "linear"}, 8)])  # fmt: skip
def test_shapes(data, kw, n):
    model = tiny(**kw)
    assert model.cfg.n_image_tokens == n
    images = torch.randn(3, 3, 32, 32)
    assert model.image_tokens(images).shape == (3, n, 32)  # (B, Np, D of the LM)
    for stage, rows in ((1, 4), (2, 4 * 5 + 2)):
        batch = DialogueBatches(data, TOK, scenes=4, stage=stage, seed=1)(7)
        assert batch["image"].shape == (4, 3, 32, 32) and batch["which"].shape == (rows,)
        assert batch["ids"].shape == batch["mask"].shape == batch["answer"].shape
        assert batch["ids"].shape[0] == rows
        again = DialogueBatches(data, TOK, scenes=4, stage=stage, seed=1)(7)
        assert all(torch.equal(batch[k], again[k]) for k in batch)  # a function of (seed, step)
        out = model(batch)
        assert out["loss"].ndim == 0 and torch.isfinite(out["loss"]) and 0 <= out["acc"] <= 1


def test_merging_keeps_a_cells_shape_and_colour_together():
    G, k, D = 4, 2, 3
    cells = torch.arange(G * G, dtype=torch.float32)  # cell r * G + c, row-major
    pathway = [torch.stack([cells, cells, torch.full_like(cells, p)], -1) for p in (0, 1)]
    tokens = torch.cat(pathway).reshape(1, 2 * G * G, D)  # G*G shape tokens, G*G colour tokens
    merged = merge_cells(tokens, G, pathways=2, k=k, pair=False)  # (1, 8, 12)
    assert merged.shape == (1, 8, k * k * D)
    for j in range(4):  # merged token j: the 2x2 block (r, c) of cells
        r, c = divmod(j, 2)
        block = [(2 * r + dy) * G + 2 * c + dx for dy in (0, 1) for dx in (0, 1)]
        shape, colour = merged[0, j].view(4, D), merged[0, 4 + j].view(4, D)
        assert shape[:, 0].tolist() == colour[:, 0].tolist() == block  # same cells, same order
        assert (shape[:, 2] == 0).all() and (colour[:, 2] == 1).all()
    paired = merge_cells(tokens, G, pathways=2, k=k, pair=True)  # (1, 4, 24)
    torch.testing.assert_close(paired, torch.cat([merged[:, :4], merged[:, 4:]], -1))
    # on the real encoder: recolour one object (same silhouette, so the shape tokens stay):
    # only the colour half of its block's token moves, the token that holds its shape
    model = tiny(merge=2, pair=True)
    background = torch.tensor([25.0, 25.0, 30.0]).div(127.5).sub(1.0)
    red, blue = (background.view(1, 3, 1, 1).repeat(1, 1, 32, 32) for _ in range(2))
    red[:, :, 18:26, 4:12] = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)  # block (1, 0)
    blue[:, :, 18:26, 4:12] = torch.tensor([-1.0, -1.0, 1.0]).view(1, 3, 1, 1)
    diff = merge_cells(model.image(red) - model.image(blue), 4, 2, 2, pair=True)  # (1, 4, 8 D)
    moved = diff[0].abs().view(4, 2, -1).sum(-1)  # (block, pathway: shape, colour)
    assert moved[2, 1] > 0 and moved[:, 0].max() == 0  # its colour moved, no shape did
    assert moved[[0, 1, 3]].max() == 0  # nor any other block
    prefix = model.image_tokens(red) - model.image_tokens(blue)  # (1, 4, 32)
    assert prefix[0, 2].abs().sum() > 0 and prefix[0, [0, 1, 3]].abs().max() == 0


def test_the_loss_reads_the_answer_tokens_only(data):
    model = tiny()
    batch = DialogueBatches(data, TOK, scenes=3, stage=2, seed=2)(0)
    ids, mask, answer = batch["ids"], batch["mask"], batch["answer"]
    prefix = model.image_tokens(batch["image"])[batch["which"]]
    logits = model.lm.logits(ids[:, :-1], mask[:, :-1], prefix).detach()  # (B, T-1, V)
    by_hand = [
        -F.log_softmax(logits[b, t], -1)[ids[b, t + 1]]
        for b in range(len(ids))
        for t in range(ids.shape[1] - 1)
        if answer[b, t + 1]
    ]
    expected = torch.stack(by_hand).mean()
    torch.testing.assert_close(answer_loss(logits, ids, answer), expected)
    torch.testing.assert_close(model(batch)["loss"], expected)
    # prompt and padding positions: their logits and their targets never count
    outside = ~answer[:, 1:]  # (B, T-1)
    noisy = logits + 5 * torch.randn_like(logits) * outside[..., None]
    other = torch.where(answer, ids, torch.randint_like(ids, 5, len(TOK)))
    torch.testing.assert_close(answer_loss(noisy, other, answer), expected)
    at_answer = logits.clone()
    b, t = answer[:, 1:].nonzero()[0].tolist()
    at_answer[b, t] += 5 * torch.randn(len(TOK))
    assert not torch.isclose(answer_loss(at_answer, ids, answer), expected)
    g = logits.clone().requires_grad_(True)
    answer_loss(g, ids, answer).backward()
    assert (g.grad[outside] == 0).all() and (g.grad[~outside].abs().sum(-1) > 0).all()


def test_the_prefix_conditions_the_words_and_only_the_projector_learns():
    model = tiny()
    ids, mask, answer = encode_dialogues(TOK, ["what colour is the circle ?"] * 3, ["red"] * 3, 48)
    images = torch.randn(2, 3, 32, 32)
    batch = {"image": images, "which": torch.tensor([0, 1, 0]), "ids": ids, "mask": mask,
             "answer": answer}  # fmt: skip
    prefix = model.image_tokens(images)[batch["which"]]
    logits = model.lm.logits(ids, mask, prefix)  # (3, T, V)
    torch.testing.assert_close(logits[0], logits[2])  # same image, same words
    assert (logits[0] - logits[1]).abs().amax() > 1e-4  # another image: other next words
    model(batch)["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projector.parameters())
    assert all(p.grad is None for p in [*model.lm.parameters(), *model.image.parameters()])


def _changed(before: dict, model: PrefixVLM, prefix: str) -> bool:
    return any(not torch.equal(v, before[k]) for k, v in model.state_dict().items()
               if k.startswith(prefix))  # fmt: skip


def test_a_shared_prefix_gives_the_logits_and_gradients_of_a_repeated_one():
    torch.manual_seed(1)
    lm = CausalLM(LMConfig(len(TOK), d_model=32, n_heads=2, n_layers=3), TOK.pad_id, TOK.bos_id,
                  TOK.eos_id)  # fmt: skip
    texts = [
        "a small red circle",
        "how many circles are there ? one",
        "yes",
        "is there a red circle",
    ]
    ids, mask = encode(TOK, texts, 48)  # (4, T): padded, so the key mask matters
    which = torch.tensor([1, 0, 1, 2])
    grads = []
    for shared in (False, True):
        prefix = torch.randn(3, 5, 32, generator=torch.Generator().manual_seed(2)).requires_grad_()
        if shared:
            out = lm.shared_logits(ids, mask, prefix, which)
        else:
            out = lm.logits(ids, mask, prefix[which])
        (out * mask[..., None]).square().sum().backward()
        grads.append((out.detach(), prefix.grad, lm.lm_head.weight.grad.clone()))
        lm.zero_grad()
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_each_stage_trains_what_it_should(data):
    torch.manual_seed(0)
    lm = CausalLM(LM, TOK.pad_id, TOK.bos_id, TOK.eos_id)
    lm_before = copy.deepcopy(lm.state_dict())
    vision = TwoPathwayEncoder(32, 16, grid=4, width=4)
    model = PrefixVLM.from_parts(vision, VISION, lm, TOK)
    before = copy.deepcopy(model.state_dict())
    run = {"steps": 3, "scenes": 3, "log_every": 1}
    for stage, unfreeze in ((1, False), (2, False)):
        fit_stage(model, data, stage=stage, unfreeze_lm=unfreeze, **run)
        assert _changed(before, model, "projector.")
        assert not _changed(before, model, "image.") and not _changed(before, model, "lm.")
    fit_stage(model, data, stage=2, unfreeze_lm=1, **run)  # the last block and above
    assert _changed(before, model, "lm.encoder.layers.1.") and _changed(before, model, "lm.lm_head")
    assert not _changed(before, model, "lm.encoder.layers.0.")
    assert not _changed(before, model, "lm.embed.") and not _changed(before, model, "image.")
    fit_stage(model, data, stage=2, unfreeze_lm=True, **run)  # the whole LM
    assert _changed(before, model, "lm.embed.") and _changed(before, model, "lm.encoder.layers.0.")
    assert not _changed(before, model, "image.")
    assert all(torch.equal(v, lm_before[k]) for k, v in lm.state_dict().items())  # a copy learned
    assert not any(p.requires_grad for p in model.image.parameters())  # not even in the optimizer
    assert model.training and not model.image.training  # the frozen encoder stays in eval mode


def test_steps_for_times_a_copy_and_leaves_the_model_as_it_was(data):
    model = tiny()
    before = copy.deepcopy(model.state_dict())
    assert steps_for(model, data, 5.0, stage=2, unfreeze_lm=True, scenes=3, probe=4) >= 1
    assert not _changed(before, model, "")  # the model itself never trained
    assert not any(p.requires_grad for p in model.lm.parameters())  # nor changed its freezing
    with pytest.raises(InputError, match="probe"):
        steps_for(model, data, 5.0, stage=2, probe=2)


def test_ask_decodes_greedily_and_stops_at_eos(data, monkeypatch):
    model = tiny()
    script = ["red", "circle", "[EOS]", "blue"]
    calls = []

    def scripted(ids, key_mask, prefix, which):  # the next word: script[step], by argmax
        assert prefix.shape == (1, model.cfg.n_image_tokens, 32) and which.tolist() == [0]
        step = ids.shape[1] - 2 - len("what colour is the circle ?".split())
        calls.append(step)
        logits = torch.zeros(ids.shape[0], ids.shape[1], len(TOK))
        logits[:, -1, TOK.tk.token_to_id(script[step])] = 2.0
        logits[:, -1, TOK.tk.token_to_id("green")] = 1.9  # close, but argmax is argmax
        return logits

    monkeypatch.setattr(model.lm, "shared_logits", scripted)
    assert ask(model, data.images[0], "What colour is the circle?") == "red circle"
    assert calls == [0, 1, 2]  # nothing after [EOS]
    assert ask(model, to_float(data.images[0]), "what colour is the circle ?") == "red circle"


def to_float(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1  # (3, S, S)


def test_a_few_steps_lower_the_loss_and_save_and_load(data, tmp_path):
    model = tiny(projector="mlp")
    log = fit_stage(model, data, steps=30, stage=1, scenes=6, lr=3e-3, log_every=1)
    losses = [r["loss"] for r in log]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1, losses
    log = fit_stage(model, data, steps=20, stage=2, unfreeze_lm=True, scenes=4, log_every=1)
    losses = [r["loss"] for r in log]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1, losses
    scores = accuracy(model, data, scenes=5)
    assert set(scores) == {*KINDS, "all", "describe"} and all(0 <= v <= 1 for v in scores.values())
    save_vlm(model, tmp_path / "run", scores={"test": scores})
    again = load_vlm(tmp_path / "run")
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    for q in ("is there a red circle ?", DESCRIBE):
        assert ask(again, data.images[1], q) == ask(model, data.images[1], q)


def test_bad_input_raises_one_line_errors(data, tmp_path):
    model = tiny()
    picture = data.images[0]
    cases = [
        (lambda: ask(model, picture.astype(np.float32), "is there a red circle ?"), "image"),
        (lambda: ask(model, picture[:16], "is there a red circle ?"), "image"),
        (lambda: ask(model, torch.zeros(3, 64, 64), "is there a red circle ?"), "image"),
        (lambda: ask(model, picture, "what is love ?"), "question"),
        (lambda: ask(model, picture, "describe the scene"), "question"),
        (lambda: VLMConfig(VISION, LM, projector="conv"), "projector"),
        (lambda: VLMConfig(VISION, LM, merge=3), "merge"),
        (lambda: VLMConfig(ModelConfig(encoder="cnn", grid=4), LM, pair=True), "pair"),
        (lambda: PrefixVLM(VLMConfig(VISION, LMConfig(10)), TOK), "tok"),
        (lambda: model.unfreeze_lm(3), "last"),
        (lambda: fit_stage(model, data, 2, stage=3), "stage"),
        (lambda: fit_stage(model, data, 2, stage=1, unfreeze_lm=True), "unfreeze_lm"),
        (lambda: DialogueBatches(data, TOK, scenes=0, stage=1), "scenes"),
        (lambda: DialogueBatches(data, TOK, scenes=2, stage=2, describe=2.0), "describe"),
        (lambda: encode_dialogues(TOK, ["is there a red hexagon ?"], ["no"], 48), "vocabulary"),
        (lambda: encode_dialogues(TOK, ["is there a red circle ?"], [""], 48), "answers"),
        (lambda: load_vlm(tmp_path), "run_dir"),
    ]
    for call, field in cases:
        with pytest.raises(InputError, match=field) as err:
            call()
        assert "\n" not in str(err.value)
    with pytest.raises(TypeError, match="PrefixVLM"):
        ask(object(), picture, "is there a red circle ?")  # type: ignore[arg-type]
