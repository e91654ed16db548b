"""Using a trained captioner: load it from its run folder, caption pictures or a scene you
write, and draw what each word looked at (chapter 8).

    cap = load_captioner("runs/capstone/cpu-seed0")
    cap.caption_files(["photo.jpg"])          # one caption per picture, any size
    cap.caption_scene("a small red triangle left of a large blue circle")

A shapes-world model knows only the shapes world: it describes any photo as shapes.
`python -m minivlm caption RUN_DIR IMAGE... [--scene TEXT] [--attention FILE.png]` does the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..data import CaptionTokenizer, parse, render, scene_from_facts, to_tensor
from ..data.images import load_image
from ..errors import InputError
from ..viz import panel_grid, plot_word_attention, word_attention
from .config import CapstoneConfig, CocoData, ModelConfig, Schedule, ShapesData
from .evaluation import caption_images
from .model import Captioner

EXAMPLE = "a small red triangle left of a large blue circle"


def config_from_dict(d: dict) -> CapstoneConfig:
    """The inverse of dataclasses.asdict for a CapstoneConfig (config.json, results.json)."""
    data = CocoData(**d["data"]) if "root" in d["data"] else ShapesData(**d["data"])
    top = {k: v for k, v in d.items() if k not in ("model", "data", "schedule")}
    return CapstoneConfig(
        **top, model=ModelConfig(**d["model"]), data=data, schedule=Schedule(**d["schedule"])
    )


def render_text(text: str, size: int) -> np.ndarray:
    """The picture (S, S, 3) uint8 of a scene written as a sentence of the grammar."""
    try:
        facts = parse(text)
    except (ValueError, TypeError) as err:
        raise InputError(
            "scene", f"a sentence of the shapes world's grammar, e.g. {EXAMPLE!r}", repr(text)
        ) from err
    return render([scene_from_facts(facts)], size=size)[0]


@dataclass
class TrainedCaptioner:
    """A captioner with its tokenizer and the config it was trained with."""

    captioner: Captioner
    tok: CaptionTokenizer
    config: CapstoneConfig

    @property
    def size(self) -> int:
        return self.config.model.image_size

    def caption(self, images: np.ndarray, beam: int = 1) -> list[str]:
        """Captions of uint8 images (N, S, S, 3) at the model's size."""
        return caption_images(self.captioner, images, self.tok, beam=beam)

    def caption_files(self, paths: list[str | Path], beam: int = 1) -> list[str]:
        """One caption per picture file (PNG, JPEG, ...), centre-cropped and resized."""
        return self.caption(np.stack([load_image(p, self.size) for p in paths]), beam)

    def render_scene(self, text: str) -> np.ndarray:
        """The picture (S, S, 3) uint8 of a scene written as a sentence of the grammar."""
        return render_text(text, self.size)

    def caption_scene(self, text: str) -> tuple[str, np.ndarray]:
        """Render the scene `text` describes and caption it: (caption, picture)."""
        image = self.render_scene(text)
        return self.caption(image[None])[0], image

    def save_attention(self, image: np.ndarray, path: str | Path) -> list[str]:
        """Draw the per-word attention maps of one picture (S, S, 3) into a PNG; its words."""
        from matplotlib.figure import Figure

        x = to_tensor(image)[0]  # (3, S, S)
        words, maps = word_attention(self.captioner, x, self.tok)
        fig, axes = panel_grid(len(words) + 1, figure=Figure(layout="constrained"))
        plot_word_attention(x, words, maps, axes=axes)
        fig.savefig(path, dpi=120)
        return words


def load_captioner(run_dir: str | Path, device: str | torch.device = "cpu") -> TrainedCaptioner:
    """The captioner a finished run saved (run_dir/captioner.safetensors), ready to use."""
    run_dir = Path(run_dir)
    files = [run_dir / n for n in ("config.json", "tokenizer.json", "captioner.safetensors")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InputError(
            "run_dir", "the folder of a finished capstone run (it saves config.json, "
            "tokenizer.json and captioner.safetensors)", f"{run_dir} without {', '.join(missing)}",
        )  # fmt: skip
    try:
        cfg = config_from_dict(json.loads(files[0].read_text())["config"])
        tok = CaptionTokenizer.load(files[1])
        model = Captioner.build(cfg.model, tok)
        model.load_state_dict(load_file(str(files[2])))
    except (ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as err:
        raise InputError("run_dir", "a readable finished run", f"{run_dir}: {err}") from err
    return TrainedCaptioner(model.to(device).eval(), tok, cfg)
