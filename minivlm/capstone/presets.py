"""The capstone's presets, one per use (chapter 8): `preset("ci", caption_steps=500)`.

ci      the ablation's base and the tests': the cpu preset's model on less data
quick   chapter 8's own run: about 90 s of training on a 2-core CPU
cpu     `make capstone`, the main job
lowcap  the low-caption regime: 100 captions, curation, self-training in rounds
gpu     a CUDA GPU: larger batches, more steps, bf16
coco    photos on disk (`--data coco:DIR` fills in the folder)
"""

from __future__ import annotations

from ..errors import InputError
from .config import CapstoneConfig, CocoData, ModelConfig, Schedule, ShapesData, override

PRESETS: dict[str, CapstoneConfig] = {
    # the ablation's base (bench/capstone.py --what ablation) and the tests'
    "ci": CapstoneConfig(
        name="ci", data=ShapesData(n_alt=10_000, n_captioned=5_000, n_test=300, n_comp=300),
        schedule=Schedule(pretrain_steps=100, caption_steps=1300),
    ),
    # chapter 8's own run: a narrower model (d = 96, a first conv of 8 channels) that reads
    # only the 24 fullest cells of each pathway takes less time per step than the cpu preset's
    # (bench/throughput.py --preset quick), at a higher lr reached over a longer warm-up;
    # colour dropout keeps its short run from naming shapes by their colour, and cell positions
    # with wavelengths of 2*pi to about 15 cells (base 2.5) tell neighbouring cells apart
    "quick": CapstoneConfig(
        name="quick", model=ModelConfig(d_model=96, width=8, keep_cells=24, pos_base=2.5),
        data=ShapesData(n_alt=50_000, n_captioned=20_000),
        schedule=Schedule(pretrain_steps=100, caption_steps=2400, lr=5e-3, warmup=200,
                          colour_drop=0.25),
    ),
    # `make capstone`: a few minutes on a 2-core CPU
    "cpu": CapstoneConfig(
        name="cpu", data=ShapesData(n_alt=50_000, n_captioned=20_000),
        schedule=Schedule(pretrain_steps=200, caption_steps=4000),
    ),
    # the low-caption regime (bench/capstone.py --what lowcap): the ci model, 100 captions,
    # stage 1b (LM on curated alt-text), then 7 rounds of stage 3 (self-training), the last
    # one 4 times as long
    "lowcap": CapstoneConfig(
        name="lowcap", data=ShapesData(n_alt=50_000, n_captioned=100, n_test=300, n_comp=300),
        schedule=Schedule(
            pretrain_steps=150, curated_steps=2500, caption_steps=300,
            self_train=(500,) * 6 + (2000,), finetune_lr=1e-3,
        ),
    ),
    # a CUDA GPU: larger batches, more steps, bf16
    "gpu": CapstoneConfig(
        name="gpu", device="cuda",
        data=ShapesData(n_alt=100_000, n_captioned=20_000, n_test=2000, n_comp=2000),
        schedule=Schedule(batch=128, pretrain_steps=3000, caption_steps=6000, lr=1e-3),
    ),
    # real photos (`--data coco:DIR` fills in the folder): chapter 4's CNN grid, a vocabulary
    # from the training captions, no colour noise; BLEU-4 and CIDEr-D on the val split
    "coco": CapstoneConfig(
        name="coco", model=ModelConfig(encoder="cnn", image_size=128, grid=8, width=32, max_len=40),
        data=CocoData(), schedule=Schedule(batch=64, pretrain_steps=2000, caption_steps=20000,
                                           lr=1e-3, colour_noise=0.0),
    ),
}  # fmt: skip


def preset(name: str, **values) -> CapstoneConfig:
    """A preset with any flat fields overridden: preset("ci", caption_steps=500)."""
    if name not in PRESETS:
        raise InputError("preset", f"one of {', '.join(PRESETS)}", repr(name))
    return override(PRESETS[name], **values)
