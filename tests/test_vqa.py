"""VQA answerers (chapter 9): shapes and masks, the blind model's blindness, the reader's ceiling
on true captions, a short training run against the blind rate, and one-line errors."""

import numpy as np
import pytest
import torch

from minivlm.capstone.config import ModelConfig
from minivlm.capstone.model import Captioner
from minivlm.data import CaptionTokenizer, render, to_tensor
from minivlm.data.captions import caption, paraphrase
from minivlm.data.question_grammar import ANSWERS
from minivlm.data.questions import KINDS, ShapesQuestions, blind_rates, make_questions
from minivlm.errors import InputError
from minivlm.vqa import (
    ANSWER_TYPES,
    TYPE_NAMES,
    UNKNOWN,
    BlindVQA,
    ClassifierVQA,
    NSReader,
    answer,
    answer_types,
)
from minivlm.vqa_generative import GenerativeVQA
from minivlm.vqa_train import QuestionBatches, accuracy, fit, reader_accuracy, steps_for

TINY = ModelConfig(image_size=32, grid=4, width=8, d_model=32, n_heads=4, fuse_layers=1)


@pytest.fixture(scope="module")
def small() -> ShapesQuestions:
    return ShapesQuestions("train", 40, size=32, seed=3)


def test_batches_hold_every_question_of_each_scene(small):
    model = ClassifierVQA(TINY)
    b = QuestionBatches(small, model.tok, scenes=4, seed=1)(7)
    assert b["image"].shape == (4, 3, 32, 32)
    assert b["which"].tolist() == [i for i in range(4) for _ in range(5)]
    assert b["ids"].shape[0] == b["mask"].shape[0] == b["type"].shape[0] == 20
    again = QuestionBatches(small, model.tok, scenes=4, seed=1)(7)
    assert torch.equal(b["ids"], again["ids"]) and torch.equal(b["answer"], again["answer"])
    for t, a in zip(b["type"].tolist(), b["answer"].tolist(), strict=True):
        assert ANSWERS[a] in ANSWER_TYPES[TYPE_NAMES[t]]  # every answer fits its question's type


@pytest.mark.parametrize("fusion", ["stack", "glimpse"])
def test_classifier_logits_are_masked_by_answer_type(small, fusion):
    torch.manual_seed(0)
    model = ClassifierVQA(TINY, fusion=fusion)
    batch = QuestionBatches(small, model.tok, scenes=3)(0)
    logits = model.logits(batch)
    assert logits.shape == (15, len(ANSWERS))
    allowed = model.types[batch["type"]]  # (15, A)
    assert torch.isfinite(logits[allowed]).all() and torch.isinf(logits[~allowed]).all()
    out = model(batch)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.image.colour_net[0].weight.grad.abs().sum() > 0  # the image is trained too
    qs = small.questions[:5]
    for q, a in zip(qs, model.predict(to_tensor(small.images[:5]), qs), strict=True):
        assert a in ANSWER_TYPES[TYPE_NAMES[int(answer_types([q])[0])]]


def test_blind_model_never_sees_the_image_and_the_classifier_does(small):
    torch.manual_seed(0)
    blind, seeing = BlindVQA(image_size=32, d_model=32), ClassifierVQA(TINY)
    a = QuestionBatches(small, blind.tok, scenes=3)(0)
    b = {**a, "image": torch.rand_like(a["image"]) * 2 - 1}  # other pictures, same questions
    with torch.no_grad():
        assert torch.equal(blind.logits(a), blind.logits(b))
        assert not torch.allclose(seeing.logits(a), seeing.logits(b))


@pytest.mark.parametrize("split", ["test", "comp"])
def test_reader_answers_every_question_from_true_captions(split):
    qs = make_questions(split, 150, seed=2)
    rng = np.random.default_rng(0)
    for texts in ([caption(s) for s in qs.scenes], [paraphrase(s, rng) for s in qs.scenes]):
        guesses = [NSReader.read(texts[w], q) for w, q in zip(qs.which, qs.questions, strict=True)]
        assert guesses == qs.answers


def test_reader_says_unknown_where_its_caption_cannot_answer():
    assert NSReader.read("a small red", "is there a red thing ?") == UNKNOWN  # no parse
    two = "a small red square left of a small red square"
    assert NSReader.read(two, "what colour is the small square ?") == UNKNOWN  # not unique
    assert NSReader.read(two, "how many red squares are there ?") == "two"


def test_reader_with_a_captioner_scores_per_kind():
    torch.manual_seed(0)
    data = ShapesQuestions("test", 6, size=32)
    tok = CaptionTokenizer.shapes_world()
    reader = NSReader(Captioner.build(TINY, tok), tok, image_size=32)  # untrained: any words
    guesses = reader.predict(data.images[data.which[:10]], data.questions[:10])
    assert all(g in ANSWERS or g == UNKNOWN for g in guesses)
    truth = reader_accuracy(reader, data, captions=[caption(s) for s in data.scenes])
    assert truth == {**{k: 1.0 for k in KINDS if k in data.kinds}, "all": 1.0}


def test_a_short_run_beats_the_blind_rate_on_some_kind():
    torch.set_num_threads(1)
    train = ShapesQuestions("train", 600)
    test = ShapesQuestions("test", 150)
    torch.manual_seed(0)
    model = ClassifierVQA(ModelConfig(width=8, d_model=48, n_heads=4, fuse_layers=1))
    log = fit(model, train, steps=300, scenes=16, lr=3e-3, log_every=50)
    assert log[-1]["loss"] < log[0]["loss"]
    scores = accuracy(model, test)
    assert set(scores) == {*KINDS, "all"}
    blind = blind_rates(train, test)
    gain = {k: scores[k] - blind[k].blind for k in KINDS}  # seeds 0-2 gave 0.11 to 0.17 at best
    assert max(gain.values()) >= 0.08, gain


def test_steps_for_a_budget_is_positive(small):
    assert steps_for(BlindVQA(image_size=32, d_model=32), small, seconds=1.0, scenes=2) >= 1


def test_from_captioner_starts_from_its_weights():
    tok = CaptionTokenizer.shapes_world()
    cap = Captioner.build(TINY, tok)
    for fusion in ("glimpse", "stack"):
        model = ClassifierVQA.from_captioner(cap, TINY, fusion=fusion)
        assert torch.equal(model.image.colour_net[0].weight, cap.image.colour_net[0].weight)
        embed = model.embed if fusion == "glimpse" else model.fuse.embed
        assert torch.equal(embed.word.weight[: len(tok)], cap.decoder.embed.word.weight)
        assert embed.word.num_embeddings == len(model.tok) > len(tok)


def test_answer_takes_pictures_and_tensors():
    torch.manual_seed(0)
    qs = make_questions("test", 2, seed=1)
    picture = render(qs.scenes[:1], size=32)[0]  # (32, 32, 3) uint8
    model = ClassifierVQA(TINY)
    a = answer(model, picture, qs.questions[0])
    assert a == answer(model, to_tensor(picture)[0], qs.questions[0]) and a in ANSWERS
    reader = NSReader(None, CaptionTokenizer.shapes_world(), image_size=32)
    seen: list[np.ndarray] = []  # what the reader's captioner is shown

    def describe(images):  # a perfect captioner
        seen.append(images)
        return [caption(qs.scenes[0])] * len(images)

    reader.describe = describe
    assert answer(reader, picture, qs.questions[0]) == qs.answers[0]
    assert answer(reader, to_tensor(picture)[0], qs.questions[0]) == qs.answers[0]
    for images in seen:  # both ways in, the captioner sees the same uint8 picture
        assert images.dtype == np.uint8 and np.array_equal(images, picture[None])


@pytest.mark.parametrize(
    "image, question, error, words",
    [
        (np.zeros((64, 64, 3), np.uint8), "is there a red circle ?", InputError, "uint8 picture"),
        (np.zeros((32, 32, 3), np.float32), "is there a red circle ?", InputError, "uint8"),
        (torch.zeros(1, 3, 32, 32), "is there a red circle ?", InputError, "float tensor"),
        ([[0]], "is there a red circle ?", TypeError, "numpy uint8 array"),
        (np.zeros((32, 32, 3), np.uint8), "what is this ?", InputError, "attribute"),
        (np.zeros((32, 32, 3), np.uint8), "is there a red circle", InputError, "'?'"),
        (np.zeros((32, 32, 3), np.uint8), 42, TypeError, "str"),
    ],
)
def test_answer_rejects_bad_input_in_one_line(image, question, error, words):
    with pytest.raises(error, match=words) as info:
        answer(ClassifierVQA(TINY), image, question)
    assert "\n" not in str(info.value)


def test_answer_and_fusion_reject_what_they_do_not_know():
    with pytest.raises(TypeError, match="an answerer of chapter 9 or an NSReader"):
        answer("a model", np.zeros((32, 32, 3), np.uint8), "is there a red circle ?")
    with pytest.raises(InputError, match="fusion: expected 'stack' or 'glimpse'"):
        ClassifierVQA(TINY, fusion="film")


def test_generative_answerer_writes_the_word_after_the_question(small):
    torch.manual_seed(0)
    tok = CaptionTokenizer.shapes_world()
    cap = Captioner.build(TINY, tok)
    model = GenerativeVQA.from_captioner(cap, TINY)
    assert torch.equal(model.decoder.lm_head.weight[: len(tok)], cap.decoder.lm_head.weight)
    assert torch.equal(model.image.colour_net[0].weight, cap.image.colour_net[0].weight)
    batch = QuestionBatches(small, model.tok, scenes=3)(0)
    logits = model.logits(batch)
    assert logits.shape == (15, len(model.tok))  # the whole vocabulary: no answer head
    # the position read is the "?": words after it ([EOS], padding) cannot change the answer
    longer = {
        **batch,
        "ids": torch.cat([batch["ids"], batch["ids"][:, :2]], 1),
        "mask": torch.cat([batch["mask"], torch.zeros(15, 2, dtype=torch.bool)], 1),
    }
    with torch.no_grad():
        assert torch.allclose(model.logits(batch), model.logits(longer), atol=1e-5)
    target = model.target(batch)
    assert [model.tok.tk.id_to_token(i) for i in target.tolist()] == [
        ANSWERS[a] for a in batch["answer"].tolist()
    ]  # fmt: skip
    out = model(batch)
    out["loss"].backward()
    assert model.image.colour_net[0].weight.grad.abs().sum() > 0
    # a word that is not an answer counts as -1, so it is never right
    not_answer = torch.tensor([model.tok.tk.token_to_id("left"), int(target[0])])
    assert model.to_answers(not_answer).tolist() == [-1, int(batch["answer"][0])]


def test_a_short_generative_run_learns_to_write_answer_words():
    torch.set_num_threads(1)
    train = ShapesQuestions("train", 300)
    torch.manual_seed(0)
    model = GenerativeVQA(ModelConfig(width=8, d_model=48, n_heads=4, fuse_layers=1))
    fit(model, train, steps=60, scenes=16, lr=3e-3, log_every=20)
    words = model.predict(to_tensor(train.images[train.which[:40]]), train.questions[:40])
    assert all(w in ANSWERS for w in words)  # it learned which words answer
    assert accuracy(model, train)["all"] > 0.3


def test_looks_gives_each_glimpse_a_distribution_over_words_and_cells(small):
    torch.manual_seed(0)
    model = ClassifierVQA(TINY)
    qs = small.questions[:3]
    words, cells = model.looks(to_tensor(small.images[small.which[:3]]), qs)
    ids, mask = model.tok.batch_encode(qs)
    assert words.shape == (3, 3, ids.shape[1]) and cells.shape == (3, 3, 4, 4)
    assert torch.allclose(words.sum(-1), torch.ones(3, 3), atol=1e-5)
    assert (words[~mask[:, None].expand_as(words)] == 0).all()  # never on padding
    assert torch.allclose(cells.sum((-2, -1)), torch.ones(3, 3), atol=1e-5)
    with pytest.raises(InputError, match="only glimpses look"):
        ClassifierVQA(TINY, fusion="stack").looks(to_tensor(small.images[:1]), qs[:1])


def test_fit_logs_the_learning_curve_on_held_out_questions(small):
    torch.manual_seed(0)
    model = BlindVQA(d_model=32, n_layers=1, image_size=32)
    held_out = ShapesQuestions("test", 12, size=32)
    log = fit(model, small, steps=6, scenes=4, log_every=2, held_out=held_out, eval_every=3)
    evals = [r for r in log if r.get("eval")]
    assert [r["step"] for r in evals] == [3, 6]
    assert evals[-1]["all"] == accuracy(model, held_out)["all"]  # the model as it ended


def test_typed_questions_are_tidied_before_the_model_reads_them():
    torch.manual_seed(0)
    model = ClassifierVQA(TINY)
    typed, tidy = "Is there a red circle?", "is there a red circle ?"
    batch = model.batch(torch.zeros(2, 3, 32, 32), [typed, tidy])
    assert torch.equal(batch["ids"][0], batch["ids"][1])
    assert model.tok.unk_id not in batch["ids"].tolist()[0]  # "circle?" would be [UNK]
    picture = np.zeros((32, 32, 3), np.uint8)
    assert answer(model, picture, typed) == answer(model, picture, tidy)
