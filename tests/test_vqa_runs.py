"""Saved answerers (chapter 9): a saved classifier or blind model loads with the same answers, a
capstone run loads as the neuro-symbolic reader, and `python -m minivlm ask` answers from the
command line, with one-line errors for bad input."""

import json

import pytest
import torch
from PIL import Image

from minivlm.__main__ import main
from minivlm.capstone.config import ModelConfig
from minivlm.data import render, to_tensor
from minivlm.data.captions import parse
from minivlm.data.question_grammar import ANSWERS
from minivlm.data.scenes import scene_from_facts
from minivlm.errors import InputError
from minivlm.vqa import BlindVQA, ClassifierVQA, NSReader, answer
from minivlm.vqa_runs import load_answerer, save_answerer

from .capstone_tiny import TINY as TINY_RUN
from .capstone_tiny import sets

TINY = ModelConfig(image_size=32, grid=4, width=8, d_model=32, n_heads=4, fuse_layers=1)
SCENE = "a small red triangle left of a large blue circle"
QUESTIONS = [
    "is there a red triangle?",
    "how many circles are there?",
    "what shape is the blue thing?",
]


def scene_picture(size: int = 32):
    return render([scene_from_facts(parse(SCENE))], size=size)[0]  # (S, S, 3) uint8


def shuffled(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere, so that a load that skipped a tensor would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


@pytest.mark.parametrize(
    "make", [lambda: ClassifierVQA(TINY), lambda: ClassifierVQA(TINY, fusion="stack"),
             lambda: BlindVQA(d_model=32, n_layers=1, image_size=32)],
    ids=["glimpse", "stack", "blind"],
)  # fmt: skip
def test_a_saved_answerer_loads_with_the_same_logits(tmp_path, make):
    model = shuffled(make(), 0).eval()
    save_answerer(model, tmp_path / "run", scores={"test": {"all": 0.5}})
    back = load_answerer(tmp_path / "run")
    assert type(back) is type(model) and not back.training
    images = to_tensor(render([scene_from_facts(parse(SCENE))] * 3, size=32))  # (3, 3, 32, 32)
    with torch.no_grad():
        want = model.logits(model.batch(images, QUESTIONS))
        got = back.logits(back.batch(images, QUESTIONS))
    assert torch.equal(want, got)
    assert json.loads((tmp_path / "run" / "answerer.json").read_text())["scores"]["test"] == {
        "all": 0.5
    }
    assert not list((tmp_path / "run").glob(".*tmp*")), "no temporary file is left behind"


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(InputError, match="run_dir: expected a VQA run .* without answerer.json"):
        load_answerer(tmp_path)
    save_answerer(ClassifierVQA(TINY), tmp_path / "run")
    (tmp_path / "run" / "answerer.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(InputError, match="run_dir: expected a readable VQA run"):
        load_answerer(tmp_path / "run")
    with pytest.raises(TypeError, match="BlindVQA, ClassifierVQA or GenerativeVQA, got NSReader"):
        save_answerer(NSReader(None, None), tmp_path / "other")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def capstone_run(tmp_path_factory):
    """A finished tiny capstone run (32-pixel pictures)."""
    out = tmp_path_factory.mktemp("runs")
    assert main(["capstone", "--preset", "ci", "--out", str(out), *sets(TINY_RUN)]) == 0
    return out / "ci-seed0"


def test_a_capstone_run_loads_as_the_reader(capstone_run):
    reader = load_answerer(capstone_run)
    assert isinstance(reader, NSReader) and reader.image_size == 32
    said = reader.describe(scene_picture()[None])[0]
    # the reader answers from the caption its captioner writes, whatever that caption is
    assert answer(reader, scene_picture(), QUESTIONS[1]) == NSReader.read(said, QUESTIONS[1])


def test_ask_answers_each_question(tmp_path, capsys):
    model = shuffled(ClassifierVQA(TINY), 1).eval()
    save_answerer(model, tmp_path / "run")
    Image.fromarray(scene_picture()).save(tmp_path / "scene.png")
    assert main(["ask", str(tmp_path / "run"), str(tmp_path / "scene.png"), *QUESTIONS]) == 0
    lines = capsys.readouterr().out.splitlines()
    want = [answer(model, scene_picture(), q) for q in QUESTIONS]
    assert lines == [f"{q} {a}" for q, a in zip(QUESTIONS, want, strict=True)]
    assert all(a in ANSWERS for a in want)
    assert main(["ask", str(tmp_path / "run"), "--scene", SCENE, *QUESTIONS]) == 0
    assert capsys.readouterr().out.splitlines() == lines  # the same picture, drawn from words


@pytest.mark.parametrize(
    "argv, error",
    [
        (["{run}", "{png}"], "error: ask: expected IMAGE then one or more questions"),
        (["{run}", "{png}", "where is the red circle?"], "error: question: expected"),
        (["{run}", "{tmp}/none.png", "is there a red circle?"], "error: image: expected an image"),
        (["{tmp}", "{png}", "is there a red circle?"], "error: run_dir: expected a VQA run"),
        (["{run}", "--scene", "a red blob", "is there a red circle?"], "error: scene: expected"),
    ],
)
def test_ask_errors_are_one_line(tmp_path, capsys, argv, error):
    save_answerer(ClassifierVQA(TINY), tmp_path / "run")
    Image.fromarray(scene_picture()).save(tmp_path / "scene.png")
    where = {"run": tmp_path / "run", "png": tmp_path / "scene.png", "tmp": tmp_path}
    assert main(["ask", *(a.format(**where) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(error) and err.count("\n") == 1, err


def test_ask_serves_a_chapter_10_model_too(tmp_path, capsys):
    from minivlm.llava import ask as vlm_ask
    from minivlm.llava import save_vlm

    from .test_llava import tiny

    model = tiny().eval()
    save_vlm(model, tmp_path / "vlm")
    assert isinstance(load_answerer(tmp_path / "vlm"), type(model))
    questions = ["describe the image", "is there a red circle ?"]
    assert main(["ask", str(tmp_path / "vlm"), "--scene", SCENE, *questions]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{q} {vlm_ask(model, scene_picture(), q)}" for q in questions]
