"""Saving a trained answerer, and loading any answerer from its folder (chapter 9).

    save_answerer(model, "runs/vqa/glimpse-seed0", scores={"test": ..., "comp": ...})
    model = load_answerer("runs/vqa/glimpse-seed0")     # the ClassifierVQA (or BlindVQA) saved
    model = load_answerer("runs/capstone/quick-seed0")  # a capstone run: its captioner, as an
    answer(model, picture, "is there a red circle?")    # NSReader (no VQA training needed)

A VQA run folder holds `answerer.json` (which answerer, its settings, and the scores it was
saved with), `tokenizer.json` and `answerer.safetensors`, each written atomically.
`python -m minivlm ask RUN_DIR IMAGE "question"` answers from the command line.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .capstone.config import ModelConfig
from .capstone.use import load_captioner
from .data import CaptionTokenizer
from .files import load_run, save_run
from .vqa import BlindVQA, ClassifierVQA, Model, NSReader
from .vqa_generative import GenerativeVQA

if TYPE_CHECKING:  # llava imports vqa; loaded only when a chapter 10 run is asked for
    from .llava import PrefixVLM

FILES = ("answerer.json", "tokenizer.json", "answerer.safetensors")


def save_answerer(
    model: BlindVQA | ClassifierVQA | GenerativeVQA, run_dir: str | Path, scores: dict | None = None
) -> Path:
    """Write a trained answerer into run_dir (created if needed); returns the folder."""
    if isinstance(model, ClassifierVQA):
        info = {"answerer": "classifier", "fusion": model.fusion, "model": asdict(model.config)}
    elif isinstance(model, GenerativeVQA):
        info = {"answerer": "generative", "model": asdict(model.config)}
    elif isinstance(model, BlindVQA):
        info = {"answerer": "blind", "settings": model.settings}
    else:
        kind = type(model).__name__
        raise TypeError(f"model must be a BlindVQA, ClassifierVQA or GenerativeVQA, got {kind}")
    return save_run(run_dir, FILES, {**info, "scores": scores or {}}, model, model.tok)


def load_answerer(run_dir: str | Path, device: str | torch.device = "cpu") -> Model | PrefixVLM:
    """The answerer saved in run_dir: a VQA run (`save_answerer`), a finished capstone run,
    whose captioner becomes an `NSReader`, or a chapter 10 run (`llava.save_vlm`)."""
    run_dir = Path(run_dir)
    if (run_dir / "vlm.json").is_file():  # a chapter 10 run (llava.save_vlm)
        from .llava import load_vlm

        return load_vlm(run_dir, device)
    if (run_dir / "captioner.safetensors").is_file() and not (run_dir / FILES[0]).exists():
        cap = load_captioner(run_dir, device)
        return NSReader(cap.captioner, cap.tok, cap.size)

    def build(info: dict, tok: CaptionTokenizer) -> Model:
        if info["answerer"] == "classifier":
            return ClassifierVQA(ModelConfig(**info["model"]), tok, fusion=info["fusion"])
        if info["answerer"] == "generative":
            return GenerativeVQA(ModelConfig(**info["model"]), tok)
        if info["answerer"] == "blind":
            return BlindVQA(tok, **info["settings"])
        raise ValueError(f"unknown answerer {info['answerer']!r}")

    expected = (
        "a VQA run (answerer.json, tokenizer.json, answerer.safetensors), a finished capstone "
        "run (captioner.safetensors) or a chapter 10 run (vlm.json)"
    )
    model = load_run(run_dir, FILES, build, expected, "VQA run")
    return model.to(device).eval()
