"""Wrong answers to chapter 1's exercises."""

import torch

from minivlm.data import HELD_OUT_PAIRS


def y_axis_up(a, b):
    right, up = b.x - a.x, a.y - b.y
    if right >= 0.05 and right >= 2 * abs(up):
        return "left of"
    if up >= 0.05 and up >= 2 * abs(right):
        return "above"
    return None


def absolute_offsets(a, b):
    dx, dy = abs(a.x - b.x), abs(a.y - b.y)
    if dx >= 0.05 and dx >= 2 * dy:
        return "left of"
    if dy >= 0.05 and dy >= 2 * dx:
        return "above"
    return None


def larger_offset_wins(a, b):
    dx, dy = b.x - a.x, b.y - a.y
    if abs(dx) > abs(dy):
        return "left of" if dx >= 0.05 else None
    return "above" if dy >= 0.05 else None


def any_positive_gap(a, b):
    dx, dy = b.x - a.x, b.y - a.y
    if dx > 0 and dx / 2 >= abs(dy):
        return "left of"
    if dy > 0 and dy / 2 >= abs(dx):
        return "above"
    return None


def strictly_twice(a, b):
    dx, dy = b.x - a.x, b.y - a.y
    if dx >= 0.05 and abs(dy) < dx / 2:
        return "left of"
    if dy >= 0.05 and abs(dx) < dy / 2:
        return "above"
    return None


def colours_and_shapes_apart(scenes, split):
    held_colours = {c for c, _ in HELD_OUT_PAIRS}
    out = []
    for scene in scenes:
        colours = {o.color for o in scene.objects} & held_colours
        shapes = {o.shape for o in scene.objects}
        held = any((c, s) in HELD_OUT_PAIRS for c in colours for s in shapes)
        out.append(held if split == "comp" else not held)
    return out


def every_object_held_out(scenes, split):
    out = []
    for scene in scenes:
        flags = [(o.color, o.shape) in HELD_OUT_PAIRS for o in scene.objects]
        out.append(all(flags) if split == "comp" else not any(flags))
    return out


def shape_colour_tuples(scenes, split):
    out = []
    for scene in scenes:
        held = bool({(o.shape, o.color) for o in scene.objects} & HELD_OUT_PAIRS)
        out.append(held if split == "comp" else not held)
    return out


def only_comp_is_filtered(scenes, split):
    if split != "comp":
        return [True for _ in scenes]
    return [any((o.color, o.shape) in HELD_OUT_PAIRS for o in s.objects) for s in scenes]


def padded_on_the_left(seqs, pad_id, max_len=None):
    if max_len is not None:
        seqs = [s[: max_len - 1] + [s[-1]] if len(s) > max_len else s for s in seqs]
    T = max(map(len, seqs))
    ids = torch.full((len(seqs), T), pad_id)
    for b, s in enumerate(seqs):
        ids[b, T - len(s) :] = torch.tensor(s)
    return ids, ids != pad_id


def mask_true_on_padding(seqs, pad_id, max_len=None):
    if max_len is not None:
        seqs = [s[: max_len - 1] + [s[-1]] if len(s) > max_len else s for s in seqs]
    T = max(map(len, seqs))
    ids = torch.tensor([s + [pad_id] * (T - len(s)) for s in seqs])
    return ids, ids == pad_id


def mask_of_ones_and_zeros(seqs, pad_id, max_len=None):
    if max_len is not None:
        seqs = [s[: max_len - 1] + [s[-1]] if len(s) > max_len else s for s in seqs]
    T = max(map(len, seqs))
    ids = torch.tensor([s + [pad_id] * (T - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (T - len(s)) for s in seqs])
    return ids, mask


def truncated_without_eos(seqs, pad_id, max_len=None):
    if max_len is not None:
        seqs = [s[:max_len] for s in seqs]
    T = max(map(len, seqs))
    ids = torch.tensor([s + [pad_id] * (T - len(s)) for s in seqs])
    return ids, ids != pad_id


def pad_is_zero(seqs, pad_id, max_len=None):
    if max_len is not None:
        seqs = [s[: max_len - 1] + [s[-1]] if len(s) > max_len else s for s in seqs]
    T = max(map(len, seqs))
    ids = torch.tensor([s + [pad_id] * (T - len(s)) for s in seqs])
    return ids, ids.bool()


WRONG = {
    "1.1": [(y_axis_up, "points *down*"), (absolute_offsets, "signed offsets"),
            (larger_offset_wins, "diagonal pairs"), (any_positive_gap, "MIN_AXIS_GAP"),
            (strictly_twice, "not >")],
    "1.2": [(colours_and_shapes_apart, "one object's own"), (every_object_held_out, "(any)"),
            (shape_colour_tuples, "in that order"), (only_comp_is_filtered, "*exclude*")],
    "1.3": [(padded_on_the_left, "pad at the end"), (mask_true_on_padding, "key_padding_mask"),
            (mask_of_ones_and_zeros, "bool tensor"), (truncated_without_eos, "[EOS]"),
            (pad_is_zero, "not with 0")],
}  # fmt: skip
