"""Scenes of the shapes world: what is in a picture, before any pixel is drawn (chapter 1).

A scene is 1 to 3 objects in the unit square. Each object has a shape, a colour, a size and a
centre. Objects never overlap, and every scene with two or more objects lies along one axis
(a row or a column) with a clear order, so its spatial relation ("left of" or "above") is never
ambiguous. `scene_facts` reads those facts off the geometry; the captions of `captions.py` say
them in words and `parse` reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 50, 47),
    "green": (60, 170, 60),
    "blue": (45, 95, 215),
    "yellow": (235, 200, 40),
    "purple": (145, 70, 190),
    "orange": (240, 130, 30),
}
SIZES: dict[str, float] = {"small": 0.08, "large": 0.14}  # half-extent, as a fraction of the side
BACKGROUND: tuple[int, int, int] = (25, 25, 30)
MAX_OBJECTS = 3
MARGIN = 0.02  # free space kept between two objects and between an object and the border
AXIS_RATIO = 2.0  # along a relation's axis, objects are at least this many times further apart
MIN_AXIS_GAP = 0.05  # than across it, and at least this far apart along it
RELATIONS: dict[str, int] = {"left of": 0, "above": 1}  # relation -> axis (0 = x, 1 = y)


@dataclass(frozen=True)
class Obj:
    """One object: attributes plus its centre (x right, y down), in units of the image side."""

    shape: str
    color: str
    size: str
    x: float
    y: float

    def __post_init__(self) -> None:
        _check_choice("shape", self.shape, SHAPES)
        _check_choice("color", self.color, tuple(COLORS))
        _check_choice("size", self.size, tuple(SIZES))
        for name in ("x", "y"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"Obj.{name} must be a float in [0, 1], got {type(value).__name__}")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"Obj.{name} must lie in [0, 1], got {value}")

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    @property
    def attributes(self) -> tuple[str, str, str]:
        """(size, color, shape): the order in which a caption says them."""
        return (self.size, self.color, self.shape)


@dataclass(frozen=True)
class Scene:
    """A validated list of objects. Construction raises ValueError for an invalid layout."""

    objects: tuple[Obj, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.objects, tuple):
            object.__setattr__(self, "objects", tuple(self.objects))
        if not all(isinstance(o, Obj) for o in self.objects):
            raise TypeError("Scene.objects must be Obj instances")
        if not 1 <= len(self.objects) <= MAX_OBJECTS:
            raise ValueError(f"a scene holds 1 to {MAX_OBJECTS} objects, got {len(self.objects)}")
        problem = layout_problem(self.objects)
        if problem:
            raise ValueError(f"invalid scene layout: {problem}")

    def __len__(self) -> int:
        return len(self.objects)


@dataclass(frozen=True)
class SceneFacts:
    """What a caption must get right: the objects in canonical order, their count, the relation."""

    objects: tuple[tuple[str, str, str], ...]  # (size, color, shape) each
    relation: str | None  # "left of", "above", or None for a single object

    @property
    def count(self) -> int:
        return len(self.objects)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}; got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")


def relation_of(a: Obj, b: Obj) -> str | None:
    """The relation that puts `a` first: "left of", "above", or None if a and b are not clearly
    ordered along one axis (for example, diagonal neighbours)."""
    dx, dy = b.x - a.x, b.y - a.y
    if dx >= MIN_AXIS_GAP and dx >= AXIS_RATIO * abs(dy):
        return "left of"
    if dy >= MIN_AXIS_GAP and dy >= AXIS_RATIO * abs(dx):
        return "above"
    return None


def _ordered(objects: tuple[Obj, ...]) -> tuple[tuple[Obj, ...], str | None] | None:
    """Objects sorted along the scene's axis plus the relation, or None when ambiguous."""
    if len(objects) == 1:
        return objects, None
    for relation, axis in RELATIONS.items():
        ordered = tuple(sorted(objects, key=lambda o: (o.x, o.y)[axis]))
        pairs = zip(ordered[:-1], ordered[1:], strict=True)
        if all(relation_of(a, b) == relation for a, b in pairs):
            return ordered, relation
    return None


def layout_problem(objects: tuple[Obj, ...]) -> str | None:
    """Why a layout is invalid (outside the image, overlapping, ambiguous), or None if valid."""
    for o in objects:
        lo, hi = o.radius + MARGIN, 1.0 - o.radius - MARGIN
        if not (lo <= o.x <= hi and lo <= o.y <= hi):
            where = f"({o.x:.3f}, {o.y:.3f})"
            return f"{o.size} {o.shape} at {where} is not inside [{lo:.2f}, {hi:.2f}]"
    for i, a in enumerate(objects):
        for b in objects[i + 1 :]:
            gap = float(np.hypot(a.x - b.x, a.y - b.y)) - a.radius - b.radius
            if gap < MARGIN:
                return f"{a.color} {a.shape} and {b.color} {b.shape} overlap (gap {gap:.3f})"
    if _ordered(objects) is None:
        return "objects do not lie clearly along one axis, so their relation would be ambiguous"
    return None


def scene_facts(scene: Scene) -> SceneFacts:
    """Read the facts off the geometry: objects left to right (or top to bottom)."""
    ordered, relation = _ordered(scene.objects)  # type: ignore[misc]  # valid scenes always order
    return SceneFacts(tuple(o.attributes for o in ordered), relation)


def scene_from_facts(facts: SceneFacts) -> Scene:
    """A scene that has exactly these facts: its objects evenly spaced along the relation's
    axis, in the facts' order, centred across it (used to draw a caption a learner typed)."""
    n, axis = len(facts.objects), RELATIONS.get(facts.relation or "left of", 0)
    objects = []
    for i, (size, color, shape) in enumerate(facts.objects):
        main, cross = (i + 0.5) / n, 0.5
        x, y = (main, cross) if axis == 0 else (cross, main)
        objects.append(Obj(shape, color, size, x, y))
    return Scene(tuple(objects))


def pairs_of(scene: Scene) -> set[tuple[str, str]]:
    """The (color, shape) pairs that occur in a scene."""
    return {(o.color, o.shape) for o in scene.objects}


def sample_scene(
    rng: np.random.Generator,
    n_objects: int | None = None,
    exclude_pairs: frozenset[tuple[str, str]] = frozenset(),
    require_pairs: frozenset[tuple[str, str]] = frozenset(),
    max_tries: int = 1000,
) -> Scene:
    """Draw a random valid scene.

    n_objects: 1 to 3, or None for uniform. exclude_pairs: (color, shape) pairs that must not
    occur. require_pairs: if given, at least one object uses one of these pairs.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    if n_objects is not None and (
        isinstance(n_objects, bool) or not isinstance(n_objects, (int, np.integer))
    ):
        raise TypeError(f"n_objects must be an int in 1..{MAX_OBJECTS}, got {n_objects!r}")
    if n_objects is not None and not 1 <= n_objects <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be in 1..{MAX_OBJECTS}, got {n_objects}")
    allowed = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in exclude_pairs]
    required = sorted(require_pairs)
    if not allowed or (required and not set(required) <= set(allowed)):
        raise ValueError("exclude_pairs leaves no (color, shape) pair to draw from")
    n = int(rng.integers(1, MAX_OBJECTS + 1)) if n_objects is None else int(n_objects)
    for _ in range(max_tries):
        pairs = [allowed[i] for i in rng.integers(len(allowed), size=n)]
        if required:
            pairs[int(rng.integers(n))] = required[int(rng.integers(len(required)))]
        sizes = [list(SIZES)[i] for i in rng.integers(len(SIZES), size=n)]
        xy = _sample_positions(rng, [SIZES[s] for s in sizes])
        if xy is None:
            continue
        objects = tuple(
            Obj(shape, color, size, float(x), float(y))
            for (color, shape), size, (x, y) in zip(pairs, sizes, xy, strict=True)
        )
        if layout_problem(objects) is None:
            return Scene(objects)
    raise RuntimeError(f"no valid scene after {max_tries} tries")  # pragma: no cover


def _sample_positions(rng: np.random.Generator, radii: list[float]) -> np.ndarray | None:
    """Centres for objects with these radii, laid out along a random axis (checked later)."""
    n = len(radii)
    r = np.asarray(radii)
    lo, hi = r + MARGIN, 1.0 - r - MARGIN
    if n == 1:
        return rng.uniform(lo, hi, size=(2, 1)).T  # (1, 2)
    axis = int(rng.integers(2))
    order = rng.permutation(n)  # which object comes first along the axis
    r = r[order]
    # main-axis centres: the free length is shared out at random between the gaps
    need = 2 * r.sum() + MARGIN * (n + 1)
    if need >= 1.0:
        return None
    cuts = np.sort(rng.uniform(0.0, 1.0 - need, size=n))
    main = MARGIN + cuts + np.cumsum(2 * r) - r + MARGIN * np.arange(n)
    # cross-axis centres drift little between neighbours, so the axis stays clear
    cross = np.empty(n)
    cross[0] = rng.uniform(lo[order][0], hi[order][0])
    for i in range(1, n):
        slack = (main[i] - main[i - 1]) / AXIS_RATIO * 0.9
        cross[i] = np.clip(cross[i - 1] + rng.uniform(-slack, slack), lo[order][i], hi[order][i])
    xy = np.empty((n, 2))
    xy[order, axis] = main
    xy[order, 1 - axis] = cross
    return xy  # (n, 2)
