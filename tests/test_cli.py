"""The command line: every bad input is one line `error: <field>: expected ..., got ...` with
exit status 2, and leaves the out dir as it was; `caption` uses a finished run; COCO-format
captions on disk train end to end."""

import json
import shutil

import pytest
import torch
from PIL import Image

from minivlm.__main__ import main
from minivlm.capstone import load_captioner
from minivlm.capstone.batches import coco_files
from minivlm.data import caption, make_scenes, paraphrase, render, scene_rng

from .capstone_tiny import TINY, sets


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny shapes-world run: runs/ci-seed0 under a temporary folder."""
    out = tmp_path_factory.mktemp("runs")
    assert main(["capstone", "--preset", "ci", "--out", str(out), *sets(TINY)]) == 0
    return out / "ci-seed0"


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """A small COCO-format caption set that the test writes: rendered scenes saved as PNGs of
    odd sizes, two captions each in sentence case, split into train.json and val.json."""
    root = tmp_path_factory.mktemp("coco")
    (root / "images").mkdir()
    scenes = make_scenes("train", 48, seed=3)
    pixels = render(scenes, size=96, seed=3)
    for split, part in (("train", range(0, 40)), ("val", range(40, 48))):
        images, annotations = [], []
        for i in part:
            name = f"{i:06d}.png"
            Image.fromarray(pixels[i][:, 8:88]).save(root / "images" / name)  # 96 x 80 pixels
            images.append({"id": i, "file_name": name})
            for text in (caption(scenes[i]), paraphrase(scenes[i], scene_rng("train", i, 9))):
                annotations.append({"image_id": i, "caption": text.capitalize() + "."})
        (root / f"{split}.json").write_text(
            json.dumps({"images": images, "annotations": annotations})
        )
    return root


def snapshot(folder):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def cases(finished, coco, tmp_path):
    """(argv, the start of the expected error line) for each bad input."""
    broken = tmp_path / "broken"
    shutil.copytree(finished.parent, broken)
    ckpt = sorted((broken / "ci-seed0" / "caption").glob("step_*.safetensors"))[-1]
    ckpt.write_bytes(ckpt.read_bytes()[:200])  # truncated
    garbled = tmp_path / "garbled"
    shutil.copytree(finished.parent, garbled)
    record = sorted((garbled / "ci-seed0" / "pretrain").glob("step_*.json"))[-1]
    record.write_text('{"step": 4, "optim')  # corrupted
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    not_an_image = tmp_path / "photo.png"
    not_an_image.write_text("these are not pixels")
    tiny = sets(TINY)
    run = ["capstone", "--preset", "ci", "--out"]
    yield (
        ["capstone", "--set", "no_such_field=1"],
        "no_such_field: expected a field of the capstone config",
    )
    yield ["capstone", "--set", "lr=abc"], "lr: expected a number, got 'abc'"
    yield ["capstone", "--set", "batch=0"], "batch: expected a value >= 2, got 0"
    yield ["capstone", "--set", "batch=1.5"], "batch: expected an integer, got 1.5"
    yield ["capstone", "--set", "amp=maybe"], "amp: expected true or false, got 'maybe'"
    yield (
        ["capstone", "--set", "image_size=63"],
        "image_size: expected image_size / grid to be a power of two",
    )
    yield (
        ["capstone", "--set", "colour_noise=2"],
        "colour_noise: expected a value in [0.0, 1.0], got 2.0",
    )
    yield ["capstone", "--set", "encoder=resnet"], "encoder: expected one of two_pathway, cnn, vit"
    yield ["capstone", "--set", "self_train=[500,-1]"], "self_train: expected round lengths >= 1"
    yield (
        ["capstone", "--preset", "lowcap", "--set", "pretrain_steps=0"],
        "curated_steps: expected pretrain_steps > 0",
    )
    yield ["capstone", "--set", "caption_steps"], "--set: expected FIELD=VALUE"
    yield (
        ["capstone", "--preset", "laptop"],
        "--preset: expected one of ci, quick, cpu, lowcap, gpu, coco",
    )
    yield ["capstone", "--seed", "x"], "arguments: expected the usage of"
    yield ["capstone", "--frobnicate"], "arguments: expected the usage of"
    yield ["capstone", "--device", "tpu"], "device: expected auto or a device this machine has"
    if not torch.cuda.is_available():
        yield (
            ["capstone", "--device", "cuda", *tiny],
            "device: expected auto or a device this machine has",
        )
    yield [*run, str(a_file), *tiny], "out: expected a folder for the runs, got"
    yield ["capstone", "--data", "imagenet"], "--data: expected shapes or coco:DIR"
    yield (
        ["capstone", "--data", f"coco:{tmp_path / 'nowhere'}"],
        "data: expected coco:DIR with DIR a folder",
    )
    yield ["capstone", "--data", f"coco:{tmp_path}"], "data: expected"
    yield (
        ["capstone", "--data", f"coco:{coco}", "--set", "n_alt=5"],
        "n_alt: expected a field of the capstone config with coco data",
    )
    yield (
        ["capstone", "--preset", "ci", "--data", f"coco:{coco}"],
        "encoder: expected cnn or vit on photos",
    )
    yield [*run, str(broken), *tiny], "checkpoint: expected complete tensors"
    yield [*run, str(garbled), *tiny], "checkpoint: expected a checkpoint record"
    yield (
        [*run, str(finished.parent), *sets({**TINY, "d_model": 64})],
        "out: expected a new folder, or one of a run with this config",
    )
    yield ["caption", str(finished), str(not_an_image)], "image: expected a PNG or JPEG file"
    yield (
        ["caption", str(finished), str(tmp_path / "missing.png")],
        "image: expected an image file, got",
    )
    yield (
        ["caption", str(tmp_path), "--scene", "a small red circle"],
        "run_dir: expected the folder of a finished capstone run",
    )
    yield (
        ["caption", str(finished), "--scene", "a red thing next to a circle"],
        "scene: expected a sentence of the shapes world's grammar",
    )
    yield ["caption", str(finished)], "caption: expected IMAGE files or --scene TEXT, got neither"


# what each case of cases() tries, in order (the device case is left out on a CUDA machine)
CASES = (
    "unknown field", "not a number", "out of range", "not an integer", "not a boolean",
    "image_size and grid", "noise above 1", "unknown encoder", "negative round",
    "stage 1b without stage 1", "--set without a value", "unknown preset", "bad --seed",
    "unknown option", "unknown device", *(() if torch.cuda.is_available() else ("cuda absent",)),
    "out dir is a file", "unknown data", "missing coco dir", "coco dir without files",
    "shapes field with coco", "two-pathway on photos", "truncated checkpoint",
    "corrupted checkpoint record", "another config's run", "not an image", "missing image",
    "not a run folder", "scene outside the grammar", "nothing to caption",
)  # fmt: skip


@pytest.fixture(scope="module")
def bad_inputs(finished, coco, tmp_path_factory):
    return list(cases(finished, coco, tmp_path_factory.mktemp("bad")))


def test_every_case_is_named(bad_inputs):
    assert len(bad_inputs) == len(CASES) >= 15


@pytest.mark.parametrize("k", range(len(CASES)), ids=CASES)
def test_bad_input_is_one_line_and_changes_nothing(bad_inputs, k, capsys, tmp_path_factory):
    argv, expected = bad_inputs[k]
    runs = tmp_path_factory.getbasetemp()  # every run folder of these tests
    before = snapshot(runs)
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {expected}"), (argv, err)
    assert "Traceback" not in err
    assert snapshot(runs) == before, argv  # nothing written, nothing destroyed


def test_caption_command_captions_pictures_and_scenes_you_write(finished, tmp_path, capsys):
    picture = tmp_path / "odd.jpg"
    scene = make_scenes("test", 1)[0]
    Image.fromarray(render([scene], size=150)[0][:, 10:140]).save(picture)  # 150 x 130, JPEG
    heat = tmp_path / "attention.png"
    text = "a small red triangle left of a large blue circle"
    argv = ["caption", str(finished), str(picture), "--scene", text, "--attention", str(heat)]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("note: this model knows only the shapes world")
    assert out[1].startswith(f"{picture}: ") and out[2].startswith(f"scene {text!r}: ")
    for i in (0, 1):  # one attention figure per picture
        assert (tmp_path / f"attention-{i}.png").stat().st_size > 5000
    cap = load_captioner(finished)
    said, image = cap.caption_scene(text)
    assert image.shape == (32, 32, 3) and out[2].endswith(said)
    assert cap.caption_files([picture]) == [out[1].split(": ", 1)[1]]


def test_coco_format_captions_train_end_to_end(coco, tmp_path, capsys):
    values = {**TINY, "min_count": 1}
    for k in ("n_alt", "n_captioned", "n_test", "n_comp"):
        del values[k]
    argv = ["capstone", "--data", f"coco:{coco}", "--out", str(tmp_path), *sets(values)]
    assert main(argv) == 0
    assert "| coco seed 0 |" in capsys.readouterr().out
    run_dir = tmp_path / "coco-seed0"
    result = json.loads((run_dir / "results.json").read_text())
    assert set(result["scores"]) == {"val"}
    assert {"BLEU-4", "CIDEr-D"} <= set(result["scores"]["val"])
    assert result["config"]["model"]["encoder"] == "cnn"
    cap = load_captioner(run_dir)
    assert "." in cap.tok.tk.get_vocab() and len(cap.tok) < 60  # words of these captions
    assert main(["caption", str(run_dir), str(coco / "images" / "000041.png")]) == 0
    assert not capsys.readouterr().out.startswith("note:")  # a photo model: no such warning


def test_coco_files_reads_both_layouts(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_val2017.json").write_text("{}")
    folder, annotations = coco_files(tmp_path, "val")
    assert folder == tmp_path / "val2017" and annotations.name == "captions_val2017.json"
    (tmp_path / "train.json").write_text("{}")
    assert coco_files(tmp_path, "train") == (tmp_path / "images", tmp_path / "train.json")
