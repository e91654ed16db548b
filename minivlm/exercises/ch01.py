"""Chapter 1's auto-checked exercises: the relation rule, the compositional split, a padded batch.

Each exercise names a reference (the package's own code where it has one) and the mistakes a
learner is likely to make, written out as the wrong code they would write.
"""

from __future__ import annotations

import torch

from ..data import HELD_OUT_PAIRS, CaptionTokenizer, Obj, Scene, SceneFacts, caption, pairs_of
from ..data.scenes import AXIS_RATIO, MIN_AXIS_GAP, scene_from_facts
from ..data.scenes import relation_of as _relation_of
from ..data.splits import make_scenes
from .core import Case, Exercise, Mistake


def _obj(x: float, y: float, shape: str = "circle", color: str = "red") -> Obj:
    return Obj(shape, color, "small", x, y)


def _pairs_of_objects() -> list[Case]:
    a = _obj(0.25, 0.5)
    return [
        Case("b to the right of a, in one row", (a, _obj(0.75, 0.5, "square", "blue"))),
        Case("b below a, in one column (y points down)", (_obj(0.5, 0.25), _obj(0.5, 0.75))),
        Case("b to the left of a", (_obj(0.75, 0.5), _obj(0.25, 0.5, "square"))),
        Case("a diagonal pair: 0.3 across, 0.2 down", (_obj(0.2, 0.3), _obj(0.5, 0.5))),
        Case("b above a", (_obj(0.5, 0.75), _obj(0.5, 0.25, "triangle"))),
        Case("centres only 0.04 apart along x", (_obj(0.48, 0.5), _obj(0.52, 0.5))),
        Case("exactly twice as far across as down: 0.5 and 0.25", (a, _obj(0.75, 0.75))),
    ]


def relation_of(a: Obj, b: Obj) -> str | None:
    """The relation that puts `a` first ("left of", "above"), or None: the package's rule."""
    return _relation_of(a, b)


def _y_up(a, b):
    dx, dy = b.x - a.x, a.y - b.y  # as in maths: y grows upwards
    if dx >= MIN_AXIS_GAP and dx >= AXIS_RATIO * abs(dy):
        return "left of"
    if dy >= MIN_AXIS_GAP and dy >= AXIS_RATIO * abs(dx):
        return "above"
    return None


def _unordered(a, b):
    dx, dy = abs(b.x - a.x), abs(b.y - a.y)  # which object comes first is lost
    if dx >= MIN_AXIS_GAP and dx >= AXIS_RATIO * dy:
        return "left of"
    if dy >= MIN_AXIS_GAP and dy >= AXIS_RATIO * dx:
        return "above"
    return None


def _no_ratio(a, b):
    dx, dy = b.x - a.x, b.y - a.y
    if dx >= MIN_AXIS_GAP and dx >= abs(dy):  # any dominant axis: diagonals pass
        return "left of"
    if dy >= MIN_AXIS_GAP and dy >= abs(dx):
        return "above"
    return None


def _no_gap(a, b):
    dx, dy = b.x - a.x, b.y - a.y
    if dx > 0 and dx >= AXIS_RATIO * abs(dy):
        return "left of"
    if dy > 0 and dy >= AXIS_RATIO * abs(dx):
        return "above"
    return None


def _strict(a, b):
    dx, dy = b.x - a.x, b.y - a.y
    if dx >= MIN_AXIS_GAP and dx > AXIS_RATIO * abs(dy):
        return "left of"
    if dy >= MIN_AXIS_GAP and dy > AXIS_RATIO * abs(dx):
        return "above"
    return None


def _scene(*objects: tuple[str, str, str], relation: str | None = "left of") -> Scene:
    return scene_from_facts(SceneFacts(objects, relation if len(objects) > 1 else None))


def _scene_lists() -> list[Case]:
    scenes = [
        _scene(("small", "green", "square")),  # an ordinary pair
        _scene(("large", "red", "triangle")),  # a held-out pair
        _scene(("small", "red", "circle"), ("large", "blue", "triangle")),  # red and triangle apart
        _scene(("small", "blue", "circle"), ("small", "blue", "square"), relation="above"),
        _scene(("large", "yellow", "triangle"), ("small", "green", "circle")),  # two held out
        _scene(("small", "orange", "triangle"), ("large", "purple", "square")),
    ]
    return [
        Case("comp: six scenes, some with held-out pairs", (scenes, "comp")),
        Case("train: the same six scenes", (scenes, "train")),
        Case("test: the same scenes, reversed", (scenes[::-1], "test")),
    ]


def allowed_in(scenes: list[Scene], split: str) -> list[bool]:
    """For each scene, may it belong to `split`? comp needs at least one held-out (colour,
    shape) pair; train, val and test must have none (the rule of minivlm.data.splits)."""
    return [bool(pairs_of(s) & HELD_OUT_PAIRS) == (split == "comp") for s in scenes]


def _apart(scenes, split):
    out = []
    for s in scenes:  # a held-out colour somewhere and a held-out shape somewhere
        colours, shapes = {o.color for o in s.objects}, {o.shape for o in s.objects}
        held = any((c, h) in HELD_OUT_PAIRS for c in colours for h in shapes)
        out.append(held == (split == "comp"))
    return out


def _all_held(scenes, split):
    if split != "comp":
        return [not (pairs_of(s) & HELD_OUT_PAIRS) for s in scenes]
    return [pairs_of(s) <= HELD_OUT_PAIRS for s in scenes]  # every object held out


def _shape_first(scenes, split):
    held = [any((o.shape, o.color) in HELD_OUT_PAIRS for o in s.objects) for s in scenes]
    return [h == (split == "comp") for h in held]


def _comp_only(scenes, split):
    if split == "comp":
        return [bool(pairs_of(s) & HELD_OUT_PAIRS) for s in scenes]
    return [True] * len(scenes)  # nothing is excluded from train, val and test


def _id_lists() -> list[Case]:
    tok = CaptionTokenizer.shapes_world()
    seqs = [tok.encode(caption(s)) for s in make_scenes("val", 4)]  # [BOS] ... [EOS]
    roberta = [[0, 250, 7, 2], [0, 31414, 2], [0, 9, 1423, 2335, 12, 2]]  # <s> = 0, </s> = 2
    return [
        Case("four captions of the shapes world, [PAD] = 0", (seqs, tok.pad_id)),
        Case("the same captions cut to max_len = 8", (seqs, tok.pad_id), {"max_len": 8}),
        Case("a RoBERTa-style vocabulary: [PAD] = 1, and id 0 is a real token", (roberta, 1)),
    ]


def pad_batch(
    seqs: list[list[int]], pad_id: int, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids (B, T) long, padded at the end to the longest sequence, and the attention mask
    (B, T) bool, True on real tokens. A sequence longer than max_len keeps its first
    max_len - 1 ids and its last one ([EOS]): CaptionTokenizer.batch_encode's rule."""
    if max_len is not None:
        seqs = [s if len(s) <= max_len else s[: max_len - 1] + s[-1:] for s in seqs]
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)  # (B, T)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[b, : len(s)] = True
    return ids, mask


def _cut(seqs, max_len):
    if max_len is None:
        return seqs
    return [s if len(s) <= max_len else s[: max_len - 1] + s[-1:] for s in seqs]


def _left_padded(seqs, pad_id, max_len=None):
    seqs = _cut(seqs, max_len)
    T = max(len(s) for s in seqs)
    ids = torch.tensor([[pad_id] * (T - len(s)) + s for s in seqs])
    return ids, ids != pad_id


def _inverted(seqs, pad_id, max_len=None):
    ids, mask = pad_batch(seqs, pad_id, max_len)
    return ids, ~mask  # True on the padding: the key_padding_mask convention


def _int_mask(seqs, pad_id, max_len=None):
    ids, mask = pad_batch(seqs, pad_id, max_len)
    return ids, mask.long()


def _int32_mask(seqs, pad_id, max_len=None):
    ids, mask = pad_batch(seqs, pad_id, max_len)
    return ids, mask.int()


def _eos_lost(seqs, pad_id, max_len=None):
    if max_len is not None:
        seqs = [s[:max_len] for s in seqs]
    return pad_batch(seqs, pad_id)


def _zero_is_pad(seqs, pad_id, max_len=None):
    ids, _ = pad_batch(seqs, pad_id, max_len)
    return ids, ids != 0


EXERCISES = [
    Exercise(
        "1.1", "the relation rule", relation_of, _pairs_of_objects,
        mistakes=[
            Mistake("y points *down* in an image: b is below a when b.y > a.y, and then "
                    "a is 'above' b", _y_up),
            Mistake("the relation puts a first: use the signed offsets b.x - a.x and "
                    "b.y - a.y, not their absolute values", _unordered),
            Mistake("the offset along the axis must be at least AXIS_RATIO (twice) the offset "
                    "across it; a merely larger one lets diagonal pairs through", _no_ratio),
            Mistake("also require at least MIN_AXIS_GAP along the axis: centres closer than "
                    "that are not clearly ordered", _no_gap),
            Mistake("'at least twice' includes exactly twice: compare with >=, not >", _strict),
        ],
    ),
    Exercise(
        "1.2", "which split may hold a scene", allowed_in, _scene_lists,
        mistakes=[
            Mistake("a held-out pair is one object's own (colour, shape): a red circle beside "
                    "a blue triangle holds no red triangle; test pairs_of(scene)", _apart),
            Mistake("a comp scene needs at least one held-out pair (any), not all of its "
                    "objects held out", _all_held),
            Mistake("train, val and test must *exclude* every held-out pair: a scene with one "
                    "of them belongs to comp only", _comp_only),
            Mistake("HELD_OUT_PAIRS holds (colour, shape) tuples such as ('red', 'triangle'): "
                    "build each pair in that order", _shape_first),
        ],
    ),
    Exercise(
        "1.3", "padding a batch, with its attention mask", pad_batch, _id_lists,
        mistakes=[
            Mistake("pad at the end: each row starts with its real tokens, then [PAD] up to "
                    "the longest sequence", _left_padded),
            Mistake("the attention mask is True on real tokens and False on [PAD] (PyTorch's "
                    "key_padding_mask uses the opposite convention)", _inverted),
            Mistake("return the mask as a bool tensor (ids != pad_id is one), not as 0/1 "
                    "integers", _int_mask),
            Mistake("return the mask as a bool tensor (ids != pad_id is one), not as 0/1 "
                    "integers", _int32_mask),
            Mistake("a cut sequence keeps its last id, [EOS]: take the first max_len - 1 ids, "
                    "then s[-1]", _eos_lost),
            Mistake("compare with pad_id, not with 0: here [PAD] is id 1 and id 0 is a real "
                    "token", _zero_is_pad),
        ],
    ),
]  # fmt: skip
