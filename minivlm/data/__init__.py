"""The shapes world and real captioned data (chapter 1: notebooks/01_shapes_world.ipynb)."""

from .captions import alt_text, caption, paraphrase, parse, try_parse, vocabulary
from .coco import CocoCaptions, CocoRecord, load_coco_captions, normalize_caption
from .datasets import AltTextPairs, CaptionCollate, ShapesCaptions
from .images import load_image, load_photo, to_tensor, unnormalize
from .render import render
from .scenes import (
    COLORS,
    SHAPES,
    SIZES,
    Obj,
    Scene,
    SceneFacts,
    layout_problem,
    pairs_of,
    sample_scene,
    scene_facts,
    scene_from_facts,
)
from .splits import HELD_OUT_PAIRS, SPLITS, make_scenes, scene_rng
from .tokenizer import CaptionTokenizer

__all__ = [
    "COLORS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "HELD_OUT_PAIRS",
    "Obj",
    "Scene",
    "SceneFacts",
    "layout_problem",
    "pairs_of",
    "sample_scene",
    "scene_facts",
    "scene_from_facts",
    "render",
    "to_tensor",
    "unnormalize",
    "load_photo",
    "load_image",
    "caption",
    "paraphrase",
    "parse",
    "try_parse",
    "alt_text",
    "vocabulary",
    "make_scenes",
    "scene_rng",
    "CaptionTokenizer",
    "ShapesCaptions",
    "AltTextPairs",
    "CaptionCollate",
    "CocoCaptions",
    "CocoRecord",
    "load_coco_captions",
    "normalize_caption",
]
