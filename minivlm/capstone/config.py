"""What a capstone run depends on, in three parts and a few run settings (chapter 8).

* `ModelConfig`: the shape of the model (image encoder, widths, layers). A trained captioner is
  rebuilt from this part and the tokenizer alone.
* the data: `ShapesData` (the generated shapes world: alt-text pairs, captioned scenes, test
  and compositional splits) or `CocoData` (COCO-format captions on disk);
* `Schedule`: the steps of each stage, learning rates and the objectives' settings.

Every field is read by the stages that run, and a combination that would leave one unread (a
stage 1b without stage 1, the two-pathway encoder on photos) is an error, not a silent no-op.
Bad values raise `InputError` ("field: expected ..., got ..."), which the command line prints as
one line. `override(cfg, **fields)` takes flat field names and puts each into its part; the
presets are in `presets.py`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace

from ..errors import InputError

ENCODERS = ("two_pathway", "cnn", "vit")


def _check_types(obj) -> None:
    """Each field must hold a value of its default's type (an int is a float too)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):  # a part, checked by its own __post_init__
            continue
        if isinstance(default, bool):
            ok, what = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, what = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            what = "a number"
            if ok:
                object.__setattr__(obj, f.name, float(value))
        elif isinstance(default, tuple):
            ok = isinstance(value, list | tuple) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            )
            what = "a list of integers, e.g. [500,2000]"
            if ok:
                object.__setattr__(obj, f.name, tuple(value))
        else:
            ok, what = isinstance(value, str), "a string"
        if not ok:
            raise InputError(f.name, what, repr(value))


def _at_least(obj, lo: float, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < lo:
            raise InputError(name, f"a value >= {lo}", getattr(obj, name))


def _within(obj, name: str, lo: float, hi: float, closed: str = "[]") -> None:
    v = getattr(obj, name)
    low_ok = v >= lo if closed[0] == "[" else v > lo
    high_ok = v <= hi if closed[1] == "]" else v < hi
    if not (low_ok and high_ok):
        raise InputError(name, f"a value in {closed[0]}{lo}, {hi}{closed[1]}", v)


@dataclass(frozen=True)
class ModelConfig:
    """The shape of the model: everything needed to rebuild a trained captioner."""

    encoder: str = "two_pathway"  # two_pathway (shapes world only) | cnn (chapter 4) | vit
    image_size: int = 64
    grid: int = 8  # G: the encoder gives G*G tokens per pathway
    width: int = 16  # channels of the first conv (two_pathway, cnn)
    keep_cells: int = 0  # two_pathway: keep the K cells with the most object (0: all G*G)
    pos_base: float = 10000.0  # two_pathway, cnn: the base of the cells' 2-D sinusoids
    vit_layers: int = 2  # Transformer layers over the patches (vit)
    d_model: int = 128
    n_heads: int = 4
    text_layers: int = 1  # the unimodal text encoder (ITC)
    fuse_layers: int = 2  # the multimodal encoder = the caption decoder
    max_len: int = 32  # positions of the text side: longest text + [BOS] + [EOS]

    def __post_init__(self) -> None:
        _check_types(self)
        if self.encoder not in ENCODERS:
            raise InputError("encoder", f"one of {', '.join(ENCODERS)}", repr(self.encoder))
        _at_least(self, 1, "grid", "width", "d_model", "n_heads", "text_layers", "fuse_layers")
        _at_least(self, 4, "max_len")
        _at_least(self, 0, "vit_layers", "keep_cells")
        if not self.pos_base > 1:
            raise InputError("pos_base", "a value > 1", self.pos_base)
        if self.keep_cells > self.grid**2:
            raise InputError("keep_cells", f"at most grid * grid = {self.grid**2}", self.keep_cells)
        cell = self.image_size // self.grid
        if self.image_size % self.grid or cell < 2 or cell & (cell - 1):
            raise InputError(
                "image_size",
                "image_size / grid to be a power of two >= 2 (e.g. 64 / 8)",
                f"{self.image_size} / {self.grid}",
            )
        if self.d_model % 4:
            raise InputError("d_model", "a multiple of 4 (for 2-D positions)", self.d_model)
        if self.d_model % self.n_heads:
            raise InputError("n_heads", f"a divisor of d_model={self.d_model}", self.n_heads)
        for name, only in (
            ("width", ("two_pathway", "cnn")), ("vit_layers", ("vit",)),
            ("keep_cells", ("two_pathway",)), ("pos_base", ("two_pathway", "cnn")),
        ):  # fmt: skip
            if self.encoder not in only and getattr(self, name) != _default(ModelConfig, name):
                raise InputError(
                    name, f"its default with encoder={self.encoder} (it sets {'/'.join(only)})",
                    getattr(self, name),
                )  # fmt: skip


@dataclass(frozen=True)
class ShapesData:
    """The generated shapes world (chapter 1): how many scenes of each kind."""

    n_alt: int = 20_000  # noisy alt-text pairs (stages 1, 1b and 3)
    n_captioned: int = 5_000  # fully captioned training scenes (stage 2)
    n_test: int = 500  # held-out scenes
    n_comp: int = 500  # the compositional split: colour-shape pairs never seen in training

    def __post_init__(self) -> None:
        _check_types(self)
        _at_least(self, 1, "n_alt", "n_captioned", "n_test", "n_comp")


@dataclass(frozen=True)
class CocoData:
    """COCO-format captions on disk (`python -m minivlm capstone --data coco:DIR`).

    DIR holds `train.json` and `val.json` (COCO caption format) with the images they name in
    `DIR/images/`, or COCO's own layout: `annotations/captions_{train,val}2017.json` with the
    images in `train2017/` and `val2017/`."""

    root: str = ""
    max_train: int = 0  # images of the train split to use (0: all)
    max_val: int = 0  # images of the val split to score (0: all)
    min_count: int = 5  # a word seen fewer times in the training captions becomes [UNK]

    def __post_init__(self) -> None:
        _check_types(self)
        _at_least(self, 0, "max_train", "max_val")
        _at_least(self, 1, "min_count")


@dataclass(frozen=True)
class Schedule:
    """How long each stage trains, and the settings of its objectives."""

    batch: int = 32
    pretrain_steps: int = 600  # stage 1: ITC + ITM + MLM + LM on alt-text (0: no stage 1)
    curated_steps: int = 0  # stage 1b: LM on the alt-texts that pass `curate` (0: skip)
    curate_keep: float = 0.5  # share of the parsed alt-texts that curation keeps
    caption_steps: int = 1000  # stage 2: captioning
    self_train: tuple[int, ...] = ()  # stage 3: the steps of each round of self-training
    real_share: float = 0.25  # share of stage 3's batches drawn from the real captions
    lr: float = 3e-3
    finetune_lr: float = 0.0  # stage 2's and 3's peak lr after stage 1 (0: lr)
    warmup: int = 50
    colour_noise: float = 0.3  # chance that the multimodal stack reads a random colour word
    colour_drop: float = 0.0  # share of stage 2's and 3's captions whose image hides its colour
    itm_share: float = 0.25  # share of stage 1's batch that also gets ITM pairs
    mlm_prob: float = 0.4  # share of words MLM hides (BERT: 0.15; alt-texts are short)

    def __post_init__(self) -> None:
        _check_types(self)
        _at_least(self, 2, "batch")
        _at_least(self, 1, "caption_steps")
        _at_least(self, 0, "pretrain_steps", "curated_steps", "warmup", "finetune_lr")
        if any(s < 1 for s in self.self_train):
            raise InputError("self_train", "round lengths >= 1 step", list(self.self_train))
        _within(self, "curate_keep", 0.0, 1.0, "(]")
        _within(self, "real_share", 0.0, 1.0, "()")
        _within(self, "colour_noise", 0.0, 1.0)
        _within(self, "colour_drop", 0.0, 1.0, "[)")
        _within(self, "itm_share", 0.0, 1.0, "(]")
        _within(self, "mlm_prob", 0.0, 1.0, "()")
        if not self.lr > 0:
            raise InputError("lr", "a value > 0", self.lr)
        needs = (
            ("curated_steps", "pretrain_steps", "stage 1b curates with stage 1's ITC"),
            ("self_train", "curated_steps", "stage 3 follows stage 1b"),
            ("finetune_lr", "pretrain_steps", "it is the learning rate after stage 1"),
        )
        for name, needed, why in needs:
            if getattr(self, name) and not getattr(self, needed):
                raise InputError(name, f"{needed} > 0 ({why}) or no {name}", getattr(self, name))


@dataclass(frozen=True)
class CapstoneConfig:
    """A whole run: model, data, schedule, and where and how it runs."""

    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: ShapesData | CocoData = field(default_factory=ShapesData)
    schedule: Schedule = field(default_factory=Schedule)
    seed: int = 0
    device: str = "auto"  # auto: minivlm.pick_device() (MINIVLM_DEVICE, else cuda, mps, cpu)
    amp: bool = True  # bf16 autocast, on CUDA only
    compile: bool = False  # torch.compile (it does not pay on a small CPU)
    threads: int = 0  # torch threads (0: torch's default)
    progress: bool = True  # tqdm bars
    ckpt_seconds: float = 30.0  # a checkpoint at least this often: a kill loses at most that

    def __post_init__(self) -> None:
        _check_types(self)
        _at_least(self, 0, "seed", "threads")
        if not self.ckpt_seconds > 0:
            raise InputError("ckpt_seconds", "a number of seconds > 0", self.ckpt_seconds)
        if self.schedule.colour_drop and self.model.encoder != "two_pathway":
            raise InputError(
                "colour_drop",
                f"0 with encoder={self.model.encoder} (it hides the two-pathway encoder's "
                "colour tokens)",
                self.schedule.colour_drop,
            )
        if isinstance(self.data, CocoData):
            if self.model.encoder == "two_pathway":
                raise InputError(
                    "encoder",
                    "cnn or vit on photos (the two-pathway encoder needs the shapes world's "
                    "flat background)",
                    "two_pathway",
                )
            for name in ("curated_steps", "self_train"):  # they read the shapes world's grammar
                if getattr(self.schedule, name):
                    raise InputError(name, "0 with coco data (it needs alt-text)", name)

    @property
    def shapes(self) -> bool:
        return isinstance(self.data, ShapesData)

    def identity(self) -> dict:
        """What the trained weights depend on: two runs with the same identity may share a
        run folder (and resume each other); device, threads and progress bars may differ."""
        keep = ("model", "data", "schedule", "seed", "amp")
        return {k: v for k, v in dataclasses.asdict(self).items() if k in keep}


def _default(cls, name: str):
    f = next(f for f in fields(cls) if f.name == name)
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def field_names(cfg: CapstoneConfig) -> dict[str, str]:
    """Every flat field name of this config -> the part that holds it ("" for the top)."""
    names = {f.name: "" for f in fields(cfg) if f.name not in ("model", "data", "schedule")}
    for part in ("model", "data", "schedule"):
        names.update({f.name: part for f in fields(getattr(cfg, part))})
    return names


def override(cfg: CapstoneConfig, **values) -> CapstoneConfig:
    """A copy of cfg with flat fields replaced: override(cfg, lr=1e-3, d_model=64)."""
    where = field_names(cfg)
    parts: dict[str, dict] = {"": {}, "model": {}, "data": {}, "schedule": {}}
    for name, value in values.items():
        if name not in where:
            kind = "coco" if isinstance(cfg.data, CocoData) else "shapes"
            raise InputError(
                name, f"a field of the capstone config with {kind} data, one of "
                f"{', '.join(sorted(where))}", "an unknown name",
            )  # fmt: skip
        parts[where[name]][name] = value
    top = parts.pop("")
    for part, changes in parts.items():
        if changes:
            top[part] = replace(getattr(cfg, part), **changes)
    return replace(cfg, **top)
