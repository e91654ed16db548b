"""The schematic diagram of each chapter 1 to 10 (and 7b), drawn by code (one function each).

Rerun after changing a drawing (or the code it depicts), from the repository root with the
project's Python (.venv/bin/python; the drawings read facts from minivlm):

    python book/diagrams.py                  # writes notebooks/figures/NN_name.svg
    python book/diagrams.py --png /tmp/diag  # also writes PNG previews there, to look at

Each diagram is a `Canvas` whose units are inches (7.5 wide, the site's content width at
100 px an inch), built from a few helpers: `box` (a labelled rounded box), `arrow` / `link`
(arrows between points or boxes), `panel` (a titled group) and `cells` (a row of tokens).
`Canvas.problems` lists any text that overlaps other text, sticks out of its box, or leaves
the figure; `write` refuses to write while any diagram has one, and tests/test_diagrams.py
checks that the committed SVGs are what this file draws. The SVGs keep their text as <text>
(svg.fonttype "none") and carry no date, so the same code writes the same bytes.

The facts drawn come from the package where they are data (the tokenizer's ids, the held-out
colour-shape pairs, the colours, what the parser and the metrics make of a caption); the names
in the boxes are those of the modules each chapter imports (minivlm/data, attention.py,
transformer.py, vision.py, text.py, fusion.py, objectives.py, captioner.py, metrics.py,
capstone/, vqa.py, lm.py, llava.py).

Chapter 9's drawing lives in book/diagrams_vqa.py and chapter 10's in book/diagrams_llava.py,
which import these helpers from this file (`from diagrams import Canvas, ...`); the registry
loads each when its drawing is first asked for.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from types import ModuleType

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch, Polygon, Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from minivlm.data import COLORS, HELD_OUT_PAIRS, CaptionTokenizer, parse  # noqa: E402
from minivlm.data.scenes import BACKGROUND  # noqa: E402
from minivlm.metrics import fact_hits, lcs_length, ngrams  # noqa: E402

FIGURES = Path(__file__).resolve().parents[1] / "notebooks" / "figures"
WIDTH = 7.5  # inches: the site's content width at 100 px an inch
FONT, SMALL = 10.0, 9.0  # box titles, everything else (never below 9 pt)
RC = {
    "svg.hashsalt": "minivlm",  # ids in the SVG are the same on every run
    "svg.fonttype": "none",  # text stays <text>: small files, searchable, selectable
    # DejaVu ships with matplotlib, so the layout is measured the same everywhere; the SVG
    # names the generic family after it, for a browser that lacks it
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.monospace": ["DejaVu Sans Mono"],
    "font.size": SMALL,
}
METADATA = {"Date": None}  # no timestamp in the file

Point = tuple[float, float]
# kind -> (fill, edge): image orange, text blue, fused purple, losses red, results green
PALETTE: dict[str, tuple[str, str]] = {
    "image": ("#fde3c8", "#b85c0a"),
    "text": ("#d8e7f8", "#2c6bb3"),
    "fused": ("#e9dff5", "#6a3d9a"),
    "op": ("#f2f2f2", "#555555"),
    "loss": ("#f8d8d6", "#b3322c"),
    "out": ("#dcefdb", "#2e7d32"),
    "pad": ("#e4e4e4", "#9a9a9a"),
}
INK = "#333333"
MUTED = "#555555"
BOXED = dict(ha="center", va="center", color=INK, zorder=4, linespacing=1.25, clip_on=False)


@dataclass(frozen=True)
class Box:
    """Where a box sits (centre x, y and size w, h, in inches) and its anchor points."""

    x: float
    y: float
    w: float
    h: float

    @property
    def left(self) -> Point:
        return (self.x - self.w / 2, self.y)

    @property
    def right(self) -> Point:
        return (self.x + self.w / 2, self.y)

    @property
    def top(self) -> Point:
        return (self.x, self.y + self.h / 2)

    @property
    def bottom(self) -> Point:
        return (self.x, self.y - self.h / 2)

    def at(self, side: str, shift: float = 0.0) -> Point:
        """A point on a side ("left", "right", "top", "bottom"), moved along it by shift."""
        x, y = getattr(self, side)
        return (x, y + shift) if side in ("left", "right") else (x + shift, y)


class Canvas:
    """A figure whose data units are inches, plus what `problems` needs to check its text."""

    def __init__(self, height: float, width: float = WIDTH) -> None:
        self.fig = Figure(figsize=(width, height))
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.0, 0.0, 1.0, 1.0))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.axis("off")
        self.boxed: list[tuple[FancyBboxPatch | Circle, list[Text]]] = []
        self.free: list[Text] = []

    # --- the helpers every diagram is made of ------------------------------------------------

    def label(
        self, x: float, y: float, text: str, size: float = SMALL, ha: str = "center",
        va: str = "center", color: str = MUTED, style: str = "normal", weight: str = "normal",
        mono: bool = False,
    ) -> Text:  # fmt: skip
        """Free text (checked against every box and every other text)."""
        t = self.ax.text(
            x, y, text, size=size, ha=ha, va=va, color=color, style=style, weight=weight,
            family="monospace" if mono else "sans-serif", zorder=5, clip_on=False,
            linespacing=1.25,
        )  # fmt: skip
        self.free.append(t)
        return t

    def box(
        self, x: float, y: float, w: float, h: float, text: str = "", title: str = "",
        kind: str = "op", dashed: bool = False, size: float = SMALL, mono: bool = False,
    ) -> Box:  # fmt: skip
        """A rounded box centred at (x, y): a bold title line and/or body text inside."""
        fill, edge = PALETTE[kind]
        patch = FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
            fc=fill, ec=edge, lw=1.1, ls=(0, (4, 2)) if dashed else "-", zorder=2,
        )  # fmt: skip
        self.ax.add_patch(patch)
        family = "monospace" if mono else "sans-serif"
        line_t, line_b = FONT * 1.25 / 72, size * 1.25 / 72  # inches per line
        n = text.count("\n") + 1 if text else 0
        m = title.count("\n") + 1 if title else 0
        total = m * line_t + n * line_b
        texts = []
        if title:
            y_title = y + total / 2 - m * line_t / 2
            texts.append(self.ax.text(x, y_title, title, size=FONT, weight="bold", **BOXED))
        if text:
            y_text = y + total / 2 - m * line_t - n * line_b / 2
            texts.append(self.ax.text(x, y_text, text, size=size, family=family, **BOXED))
        self.boxed.append((patch, texts))
        return Box(x, y, w, h)

    def plus(self, x: float, y: float, r: float = 0.13, sign: str = "+") -> Box:
        """A small circle holding an operator (the residual add)."""
        patch = Circle((x, y), r, fc="#ffffff", ec=INK, lw=1.1, zorder=2)
        self.ax.add_patch(patch)
        t = self.ax.text(
            x, y - 0.01, sign, size=FONT + 2, ha="center", va="center", color=INK, zorder=4
        )
        self.boxed.append((patch, [t]))
        return Box(x, y, 2 * r, 2 * r)

    def arrow(
        self, start: Point, end: Point, label: str = "", rad: float = 0.0, color: str = INK,
        dashed: bool = False, both: bool = False, where: float = 0.5,
        offset: Point = (0.0, 0.1), ha: str = "center", size: float = SMALL,
    ) -> None:  # fmt: skip
        """An arrow from start to end (curved by rad), with an optional label beside it."""
        self.ax.annotate(
            "", xy=end, xytext=start, zorder=3,
            arrowprops=dict(
                arrowstyle="<|-|>" if both else "-|>", color=color, lw=1.1, shrinkA=0,
                shrinkB=0, mutation_scale=10, connectionstyle=f"arc3,rad={rad}",
                linestyle=(0, (4, 2)) if dashed else "-",
            ),
        )  # fmt: skip
        if label:
            x = start[0] + where * (end[0] - start[0]) + offset[0]
            y = start[1] + where * (end[1] - start[1]) + offset[1]
            self.label(x, y, label, size=size, ha=ha)

    def link(self, a: Box, b: Box, label: str = "", **kw) -> None:
        """An arrow between two boxes, from the sides that face each other."""
        if b.x - b.w / 2 >= a.x + a.w / 2:
            self.arrow(a.right, b.left, label, **kw)
        elif a.x - a.w / 2 >= b.x + b.w / 2:
            self.arrow(a.left, b.right, label, **kw)
        elif b.y < a.y:
            self.arrow(a.bottom, b.top, label, **kw)
        else:
            self.arrow(a.top, b.bottom, label, **kw)

    def path(self, points: Sequence[Point], color: str = INK, dashed: bool = False) -> None:
        """A polyline whose last segment is an arrow (residual connections, loops)."""
        xs, ys = zip(*points[:-1], strict=True)
        self.ax.plot(
            xs, ys, color=color, lw=1.1, zorder=3, solid_capstyle="butt",
            linestyle=(0, (4, 2)) if dashed else "-",
        )  # fmt: skip
        self.arrow(points[-2], points[-1], color=color, dashed=dashed)

    def panel(
        self, x0: float, y0: float, x1: float, y1: float, title: str = "", dashed: bool = False
    ) -> None:
        """A light rounded group with its title in the top-left corner."""
        patch = FancyBboxPatch(
            (x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=0.1",
            fc="#fafafa", ec="#b0b0b0", lw=1.0, ls=(0, (4, 2)) if dashed else "-", zorder=1,
        )  # fmt: skip
        self.ax.add_patch(patch)
        if title:
            self.label(x0 + 0.12, y1 - 0.17, title, size=FONT, ha="left", color=INK, weight="bold")

    def cells(
        self, x0: float, y: float, words: Sequence[str], kinds: Sequence[str], w: float = 0.5,
        h: float = 0.34, gap: float = 0.04, size: float = SMALL,
    ) -> list[Box]:  # fmt: skip
        """A row of token cells from x0 (left edge), one word each."""
        return [
            self.box(x0 + i * (w + gap) + w / 2, y, w, h, word, kind=kind, size=size)
            for i, (word, kind) in enumerate(zip(words, kinds, strict=True))
        ]

    def scene(
        self, x0: float, y0: float, side: float, objects: Sequence[tuple[str, str, float, float]],
        grid: int = 0,
    ) -> Box:  # fmt: skip
        """A shapes-world picture: objects (shape, colour, x, y) in the unit square, y down."""
        bg = tuple(c / 255 for c in BACKGROUND)
        self.ax.add_patch(Rectangle((x0, y0), side, side, fc=bg, ec=INK, lw=1.0, zorder=2))
        for shape, colour, ux, uy in objects:
            fc = tuple(c / 255 for c in COLORS[colour])
            cx, cy, r = x0 + ux * side, y0 + (1 - uy) * side, 0.12 * side
            if shape == "circle":
                patch = Circle((cx, cy), r, fc=fc, lw=0, zorder=3)
            elif shape == "square":
                patch = Rectangle((cx - 0.86 * r, cy - 0.86 * r), 1.72 * r, 1.72 * r, fc=fc, lw=0)
            else:  # an equilateral triangle, apex up, as minivlm/data/render.py draws it
                R = 1.15 * r
                pts = [(cx, cy + R), (cx - 0.866 * R, cy - R / 2), (cx + 0.866 * R, cy - R / 2)]
                patch = Polygon(pts, closed=True, fc=fc, lw=0)
            patch.set_zorder(3)
            self.ax.add_patch(patch)
        for k in range(1, grid):
            u = k * side / grid
            kw = dict(color="#cccccc", lw=0.7, ls=(0, (2, 2)), zorder=4)
            self.ax.plot([x0 + u, x0 + u], [y0, y0 + side], **kw)
            self.ax.plot([x0, x0 + side], [y0 + u, y0 + u], **kw)
        return Box(x0 + side / 2, y0 + side / 2, side, side)

    # --- checks and output ------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Text that overlaps other text or another box, sticks out of its box or the figure."""
        renderer = self.fig.canvas.get_renderer()
        page = self.fig.bbox
        texts = [t for _, ts in self.boxed for t in ts] + self.free
        ext = {id(t): t.get_window_extent(renderer) for t in texts}
        out = []
        for t in texts:
            e = ext[id(t)]
            if e.x0 < page.x0 or e.y0 < page.y0 or e.x1 > page.x1 or e.y1 > page.y1:
                out.append(f"{t.get_text()!r} leaves the figure")
        for a, b in combinations(texts, 2):
            if ext[id(a)].padded(-1).overlaps(ext[id(b)].padded(-1)):
                out.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
        for patch, ts in self.boxed:
            p = patch.get_window_extent(renderer)
            for t in ts:
                e = ext[id(t)]
                if e.x0 < p.x0 + 2 or e.x1 > p.x1 - 2 or e.y0 < p.y0 + 1 or e.y1 > p.y1 - 1:
                    out.append(f"{t.get_text()!r} sticks out of its box")
            for t in self.free:
                if ext[id(t)].padded(-1).overlaps(p):
                    out.append(f"{t.get_text()!r} overlaps a box")
        return out

    def save(self, path: Path) -> None:
        """SVG (deterministic, text kept as text) or, for a .png path, a 100 dpi preview."""
        svg = path.suffix == ".svg"
        with matplotlib.rc_context(RC):
            self.fig.savefig(
                path, format=path.suffix[1:], dpi=100, metadata=METADATA if svg else None
            )


# --- chapter 1: the shapes world ------------------------------------------------------------


def shapes_world() -> Canvas:
    """Chapter 1: scene facts -> image and caption -> token ids and mask; the four splits."""
    c = Canvas(5.45)
    facts = c.box(0.98, 4.1, 1.75, 1.3, "1 to 3 objects, each:\ncolour, shape, size,\n"
                  "centre (x, y)", title="scene facts")  # fmt: skip
    c.label(0.98, 3.2, "Scene, sample_scene()", mono=True)
    image = c.box(3.85, 4.8, 1.9, 0.62, "(H, W, 3) uint8", title="image", kind="image")
    text = c.box(3.85, 3.6, 2.1, 0.8, "“a small red circle left\nof a large blue triangle”",
                 title="caption", kind="text")  # fmt: skip
    c.arrow(facts.at("right", 0.3), image.left, "render()", offset=(-0.12, 0.2))
    c.arrow(facts.at("right", -0.3), text.left, "caption()", offset=(-0.12, -0.2))
    pic = c.scene(5.13, 4.4, 0.8, [("circle", "red", 0.27, 0.5), ("triangle", "blue", 0.72, 0.5)])
    c.arrow(image.right, pic.left)
    tensor = c.box(6.75, 4.8, 1.22, 0.62, "(B, 3, S, S)\nfloat in [−1, 1]", title="to_tensor()",
                   kind="image")  # fmt: skip
    c.arrow(pic.right, tensor.left)
    tok = c.box(6.35, 3.6, 1.95, 0.8, "one token a word,\n[BOS] … [EOS], [PAD]",
                title="CaptionTokenizer")  # fmt: skip
    c.link(text, tok)
    c.label(5.14, 3.03, "batch_encode()", mono=True)

    # a padded batch of two captions, with the tokenizer's real ids
    tk = CaptionTokenizer.shapes_world()
    ids, mask = tk.batch_encode(["a small red circle left of a large blue triangle",
                                 "a large green square"])  # fmt: skip
    c.panel(0.1, 1.45, 7.4, 2.88, "token ids (B, T) and padding mask (B, T)")
    c.label(7.3, 2.71, "mask: True on real tokens, False on [PAD]", ha="right")
    for b, y in enumerate((2.23, 1.74)):
        words = [tk.tk.id_to_token(i) for i in ids[b].tolist()]
        cells = [f"{w}\n{i}" for w, i in zip(words, ids[b].tolist(), strict=True)]
        kinds = ["text" if m else "pad" for m in mask[b].tolist()]
        c.label(0.35, y, f"b = {b}")
        c.cells(0.64, y, cells, kinds, w=0.545, h=0.44, gap=0.015)
    c.arrow(tok.bottom, (6.35, 2.88))

    # the splits
    c.panel(0.1, 0.1, 7.4, 1.3, "splits: each scene from its own random stream (seed, split, i)")
    for x, name in ((0.78, "train"), (2.05, "val"), (3.32, "test")):
        c.box(x, 0.58, 1.15, 0.6, "no held-out\npair", title=name)
    c.box(4.65, 0.58, 1.3, 0.6, "≥ 1 held-out\npair", title="comp", kind="fused")
    held = sorted(f"{colour} {shape}" for colour, shape in HELD_OUT_PAIRS)
    c.label(5.45, 0.58, "held-out colour-shape pairs:\n" + ",\n".join(
        ", ".join(held[i : i + 2]) for i in (0, 2)), ha="left")  # fmt: skip
    return c


# --- chapter 2: attention -------------------------------------------------------------------


def attention() -> Canvas:
    """Chapter 2: scaled dot-product attention step by step, then multi-head around it."""
    c = Canvas(4.85)
    c.label(4.35, 4.62, "Attention(Q, K, V) = softmax(Q Kᵀ / √d_h + mask) V", size=FONT,
            color=INK)  # fmt: skip
    x = c.box(0.5, 3.3, 0.72, 1.6, "(B, T, D)", title="X", kind="text")
    q = c.box(1.75, 4.05, 1.0, 0.55, "q_proj(X)", title="Q")
    k = c.box(1.75, 3.3, 1.0, 0.55, "k_proj(X)", title="K")
    v = c.box(1.75, 2.4, 1.0, 0.55, "v_proj(X)", title="V")
    for b in (q, k, v):
        c.arrow(x.right, b.left)
    c.label(1.75, 1.95, "linear, split into h heads", size=SMALL)
    scores = c.box(3.4, 3.68, 1.05, 0.6, "(B, h, T, T)", title="Q Kᵀ")
    c.arrow(q.right, scores.at("left", 0.12))
    c.arrow(k.right, scores.at("left", -0.12))
    c.label(2.7, 3.0, "(B, h, T, d_h)")
    scale = c.box(4.55, 3.68, 0.85, 0.6, "scores", title="÷ √d_h")
    mask = c.box(5.65, 3.68, 1.0, 0.6, "False → −∞", title="mask")
    soft = c.box(6.8, 3.68, 0.98, 0.6, "over keys", title="softmax")
    c.link(scores, scale)
    c.link(scale, mask)
    c.link(mask, soft)
    c.label(5.05, 3.0, "padding: key_mask (B, T)\ncausal: key j ≤ query i")
    out = c.box(6.8, 2.4, 0.98, 0.6, "(B, h, T, d_h)", title="weights · V", kind="fused")
    c.arrow(soft.bottom, out.top, "weights", offset=(-0.36, 0.02))
    c.arrow(v.right, out.left, "V (B, h, T, d_h)", offset=(0.3, 0.12))

    c.panel(0.1, 0.1, 7.4, 1.75, "multi-head: h heads side by side (MultiHeadAttention)")
    row = [
        c.box(0.55, 0.78, 0.75, 0.72, "(B, T, D)", title="X", kind="text"),
        c.box(1.9, 0.78, 1.5, 0.72, "into h heads of\nd_h = D / h", title="Q, K, V: split"),
        c.box(3.6, 0.78, 1.5, 0.72, "each head on its own\n(B, h, T, T) weights", title="attend"),
        c.box(
            5.25, 0.78, 1.4, 0.72, "heads side by side\n(B, T, h · d_h = D)", title="concatenate"
        ),
        c.box(6.78, 0.78, 1.1, 0.72, "linear\n(B, T, D)", title="out_proj", kind="fused"),
    ]
    for a, b in zip(row, row[1:], strict=False):
        c.link(a, b)
    return c


# --- chapter 3: the encoder block -----------------------------------------------------------


def encoder_block() -> Canvas:
    """Chapter 3: the pre-LN EncoderBlock of minivlm/transformer.py, its FFN, and post-LN."""
    c = Canvas(4.15)
    y = 2.65
    x_in = c.box(0.4, y, 0.62, 0.62, "(B, T, D)", title="x", kind="text")
    ln1 = c.box(1.5, y, 1.0, 0.62, "norm1", title="LayerNorm")
    mha = c.box(2.72, y, 1.1, 0.62, "self-attention", title="multi-head")
    add1 = c.plus(3.55, y)
    ln2 = c.box(4.35, y, 1.0, 0.62, "norm2", title="LayerNorm")
    ffn = c.box(5.4, y, 0.8, 0.62, "ff", title="FFN")
    add2 = c.plus(6.08, y)
    final = c.box(6.9, y, 1.0, 0.62, "final_norm", title="LayerNorm", kind="fused")
    c.arrow(x_in.right, ln1.left)
    for a, b in ((ln1, mha), (mha, add1), (add1, ln2), (ln2, ffn), (ffn, add2), (add2, final)):
        c.link(a, b)
    # the residual paths: x skips each sub-layer and is added back
    c.path([(0.86, y), (0.86, 3.3), (3.55, 3.3), add1.top])
    c.path([(3.77, y), (3.77, 3.3), (6.08, 3.3), add2.top])
    c.label(2.2, 3.42, "residual: + x")
    c.label(4.9, 3.42, "residual: + x")
    c.panel(0.76, 1.95, 6.3, 3.9, "EncoderBlock (pre-LN, norm_first=True), stacked × N",
            dashed=True)  # fmt: skip
    c.label(6.9, 2.1, "after the N-th\nblock (pre-LN)", ha="center")

    # the feed-forward network, opened up
    c.panel(3.85, 0.1, 7.4, 1.75, "FeedForward: one MLP, every position")
    zoom = [
        c.box(4.55, 0.8, 1.05, 0.62, "D → d_ff", title="Linear"),
        c.box(5.62, 0.8, 0.7, 0.62, "", title="GELU"),
        c.box(6.7, 0.8, 1.05, 0.62, "d_ff → D", title="Linear"),
    ]
    c.link(zoom[0], zoom[1])
    c.link(zoom[1], zoom[2])
    c.arrow(ffn.bottom, (5.4, 1.75), dashed=True)

    c.panel(0.1, 0.1, 3.7, 1.75, "pre-LN and post-LN")
    c.label(0.25, 1.1, "pre-LN (norm_first=True, the default):\n"
            "x = x + attn(norm1(x));  x = x + ff(norm2(x))\n"
            "and one more LayerNorm after the stack", ha="left", color=INK)  # fmt: skip
    c.label(0.25, 0.42, "post-LN (norm_first=False, BERT):\n"
            "x = norm1(x + attn(x));  x = norm2(x + ff(x))", ha="left", color=INK)  # fmt: skip
    return c


# --- chapter 4: image and text tokens -------------------------------------------------------


def tokens() -> Canvas:
    """Chapter 4: CNN grid tokens and ViT patch tokens, 2-D positions; text embeddings."""
    c = Canvas(5.2)
    ya, yb = 4.3, 2.85
    pic = c.scene(0.15, 3.1, 0.95, [("circle", "red", 0.3, 0.4), ("square", "green", 0.7, 0.65)],
                  grid=4)  # fmt: skip
    c.label(0.62, 2.83, "image\n(B, 3, S, S)")
    c.label(1.45, ya + 0.58, "CNN grid: ConvStem", size=FONT, ha="left", color=INK, weight="bold")
    a1 = c.box(2.3, ya, 1.7, 0.75, "stride-2 3×3 convs and\nresidual blocks halve S\n"
               "until a G × G grid is left", kind="image")  # fmt: skip
    a2 = c.box(4.1, ya, 1.65, 0.75, "1×1 conv to D, flatten:\nG² tokens\n(B, G², D)",
               kind="image")  # fmt: skip
    c.label(3.2, ya - 0.57, "each token has seen a whole region", style="italic")
    c.label(1.45, yb + 0.58, "ViT patches: PatchEmbed", size=FONT, ha="left", color=INK,
            weight="bold")  # fmt: skip
    b1 = c.box(2.3, yb, 1.7, 0.75, "patchify: p × p patches,\nN = (S / p)² of them\n"
               "(B, N, p·p·3)", kind="image")  # fmt: skip
    b2 = c.box(4.1, yb, 1.65, 0.75, "linear to D (a conv,\nkernel = stride = p)\n(B, N, D)",
               kind="image")  # fmt: skip
    c.label(3.2, yb - 0.57, "each token sees only its p × p pixels", style="italic")
    c.arrow(pic.at("right", 0.25), a1.left)
    c.arrow(pic.at("right", -0.25), b1.left)
    c.link(a1, a2)
    c.link(b1, b2)
    ym = (ya + yb) / 2
    pos = c.box(5.75, ym, 1.3, 0.95, "rows | columns\nsinusoids\n(ViT: learned)",
                title="+ 2-D positions")  # fmt: skip
    out = c.box(6.98, ym, 0.8, 0.95, "(B, Ni, D)", title="image\ntokens", kind="image")
    c.arrow(a2.right, pos.at("left", 0.25))
    c.arrow(b2.right, pos.at("left", -0.25))
    c.link(pos, out)

    c.panel(0.1, 0.1, 7.4, 1.95, "text: TextEmbedding")
    ids = c.box(0.75, 0.85, 1.05, 0.72, "(B, T)", title="caption ids", kind="text")
    word = c.box(2.3, 0.85, 1.7, 0.72, "nn.Embedding(V, D):\nan id picks a row", kind="text",
                 title="word embedding")  # fmt: skip
    c.label(4.1, 1.4, "attention ignores order:\na position vector adds it")
    tpos = c.box(5.75, 0.85, 1.3, 0.72, "learned or\nsinusoidal (T, D)", title="+ positions")
    tout = c.box(6.98, 0.85, 0.8, 0.72, "(B, T, D)", title="text\ntokens", kind="text")
    c.link(ids, word)
    c.link(word, tpos, "(B, T, D)", offset=(0.0, -0.13))
    c.link(tpos, tout)
    return c


# --- chapter 5: fusion ----------------------------------------------------------------------


def fusion() -> Canvas:
    """Chapter 5: the four fusion families of minivlm/fusion.py, one panel each."""
    c = Canvas(5.75)
    left, right = 0.1, 3.8  # the panels' left edges
    top, bottom = 2.95, 0.1  # the panels' bottom edges
    pw, ph = 3.6, 2.7

    # late fusion
    x0, y0 = left, top
    c.panel(x0, y0, x0 + pw, y0 + ph, "LateFusion: pool, then combine")
    img = c.box(x0 + 0.47, y0 + 1.75, 0.76, 0.55, "image\ntokens", kind="image")
    txt = c.box(x0 + 0.47, y0 + 0.8, 0.76, 0.55, "text\ntokens", kind="text")
    mi = c.box(x0 + 1.4, y0 + 1.75, 0.98, 0.55, "mean\n→ v (B, D)", kind="image")
    mt = c.box(x0 + 1.4, y0 + 0.8, 0.98, 0.55, "masked mean\n→ t (B, D)", kind="text")
    comb = c.box(x0 + 2.47, y0 + 1.27, 0.76, 0.72, "v ⊙ t\nor [v; t]", kind="fused")
    head = c.box(x0 + 3.22, y0 + 1.27, 0.56, 0.72, "MLP\n(B, D)", kind="out")
    c.link(img, mi)
    c.link(txt, mt)
    c.arrow(mi.right, comb.at("left", 0.2))
    c.arrow(mt.right, comb.at("left", -0.2))
    c.link(comb, head)
    c.label(x0 + pw / 2, y0 + 0.25, "pooling forgets which word goes with which region",
            style="italic")  # fmt: skip

    # single stream
    x0, y0 = right, top
    c.panel(x0, y0, x0 + pw, y0 + ph, "ConcatFusion: one stream")
    words = ["[CLS]", "img", "img", "img", "txt", "txt", "txt"]
    kinds = ["out", "image", "image", "image", "text", "text", "text"]
    row = c.cells(x0 + 0.3, y0 + 2.0, words, kinds, w=0.4, h=0.34, gap=0.03)
    c.label(row[2].x, y0 + 1.66, "+ type 0")
    c.label(row[5].x, y0 + 1.66, "+ type 1")
    enc = c.box(x0 + 1.8, y0 + 1.05, 2.6, 0.55, "one Encoder: every token\nattends to every other",
                kind="fused")  # fmt: skip
    c.arrow((x0 + 1.8, y0 + 1.48), enc.top)
    out = c.box(x0 + 1.8, y0 + 0.3, 1.6, 0.36, "[CLS] output (B, D)", kind="out")
    c.link(enc, out)

    # cross-attention
    x0, y0 = left, bottom
    c.panel(x0, y0, x0 + pw, y0 + ph, "CrossAttentionFusion: text asks image")
    img = c.box(x0 + 2.25, y0 + 2.0, 0.95, 0.42, "image tokens", kind="image")
    txt = c.box(x0 + 0.45, y0 + 1.2, 0.7, 0.55, "text\ntokens", kind="text")
    sa = c.box(x0 + 1.35, y0 + 1.2, 0.78, 0.55, "self-\nattention", kind="text")
    ca = c.box(x0 + 2.25, y0 + 1.2, 0.78, 0.55, "cross-attn\nQ = text", kind="fused")
    ff = c.box(x0 + 3.1, y0 + 1.2, 0.56, 0.55, "FFN", kind="fused")
    c.link(txt, sa)
    c.link(sa, ca)
    c.link(ca, ff)
    c.arrow(img.bottom, ca.top, "K, V", offset=(0.22, 0.0))
    c.label(x0 + 1.4, y0 + 0.72, "× n_layers, pre-LN, with residuals")
    out = c.box(x0 + 2.75, y0 + 0.3, 1.4, 0.36, "first token (B, D)", kind="out")
    c.arrow(ff.bottom, out.at("top", 0.35))

    # co-attention
    x0, y0 = right, bottom
    c.panel(x0, y0, x0 + pw, y0 + ph, "CoAttentionFusion: both ways (ViLBERT)")
    yi, yt = y0 + 1.85, y0 + 0.75
    img = c.box(x0 + 0.45, yi, 0.72, 0.55, "image\ntokens", kind="image")
    txt = c.box(x0 + 0.45, yt, 0.72, 0.55, "text\ntokens", kind="text")
    ai = c.box(x0 + 1.42, yi, 0.78, 0.55, "i_from_t\nQ = image", kind="image")
    at = c.box(x0 + 1.42, yt, 0.78, 0.55, "t_from_i\nQ = text", kind="text")
    bi = c.box(x0 + 2.3, yi, 0.68, 0.55, "self-attn\n+ FFN", kind="image")
    bt = c.box(x0 + 2.3, yt, 0.68, 0.55, "self-attn\n+ FFN", kind="text")
    out = c.box(x0 + 3.17, (yi + yt) / 2, 0.62, 1.02, "text[0]\n⊙ mean\nof image\n(B, D)",
                kind="out")  # fmt: skip
    c.link(img, ai)
    c.link(txt, at)
    c.arrow(img.right, at.at("top", -0.12), color=PALETTE["image"][1])
    c.arrow(txt.right, ai.at("bottom", -0.12), color=PALETTE["text"][1])
    c.label(x0 + 0.45, (yi + yt) / 2, "K, V both\nways")
    c.link(ai, bi)
    c.link(at, bt)
    c.arrow(bi.right, out.at("left", 0.3))
    c.arrow(bt.right, out.at("left", -0.3))
    c.label(x0 + 1.85, y0 + 0.22, "the streams exchange keys and values, × n_layers")
    return c


# --- chapter 6: pretraining objectives ------------------------------------------------------


def pretraining() -> Canvas:
    """Chapter 6: ITC, ITM and MLM on the image, as minivlm/objectives.py computes them."""
    c = Canvas(4.95)
    pw, top = 2.38, 4.85
    xs = (0.1, 2.56, 5.02)

    # ITC
    x0 = xs[0]
    c.panel(x0, 0.1, x0 + pw, top, "ITC: contrastive")
    v = c.box(x0 + 0.62, 4.05, 1.0, 0.55, "(B, D)", title="image → v", kind="image")
    t = c.box(x0 + 1.76, 4.05, 1.0, 0.55, "(B, D)", title="text → t", kind="text")
    n, cell = 4, 0.3
    gx, gy = x0 + 0.45, 1.95  # the matrix's bottom-left corner
    for i in range(n):
        for j in range(n):
            diag = i == j
            c.ax.add_patch(Rectangle(
                (gx + j * cell, gy + (n - 1 - i) * cell), cell, cell, zorder=2, lw=0.8,
                fc=PALETTE["out"][0] if diag else "#f2f2f2", ec="#999999",
            ))  # fmt: skip
        c.label(gx - 0.16, gy + (n - 1 - i + 0.5) * cell, f"v{i + 1}")
        c.label(gx + (i + 0.5) * cell, gy + n * cell + 0.14, f"t{i + 1}")
    c.label(gx + n * cell + 0.08, gy + n * cell / 2, "positives:\nthe\ndiagonal", ha="left",
            color=PALETTE["out"][1])  # fmt: skip
    c.arrow(v.bottom, (gx - 0.16, gy + n * cell + 0.05))
    c.arrow(t.bottom, (gx + n * cell - 0.15, gy + n * cell + 0.3))
    c.label(x0 + pw / 2, 1.6, "B × B: scale · cos(vᵢ, tⱼ)", color=INK)
    loss = c.box(x0 + pw / 2, 0.75, 2.1, 0.9, "cross-entropy over rows\n(image → text) and "
                 "columns\n(text → image), averaged", title="InfoNCE", kind="loss")  # fmt: skip
    c.arrow((x0 + pw / 2, 1.43), loss.top)

    # ITM
    x0 = xs[1]
    c.panel(x0, 0.1, x0 + pw, top, "ITM: match or not?")
    rows = (("image i", "text i", "1", "out"), ("image i", "hard neg.\ntext", "0", "loss"),
            ("hard neg.\nimage", "text i", "0", "loss"))  # fmt: skip
    for r, (a, b, y_lab, kind) in enumerate(rows):
        y = 4.15 - r * 0.52
        c.box(x0 + 0.6, y, 0.9, 0.45, a, kind="image")
        c.box(x0 + 1.58, y, 0.9, 0.45, b, kind="text")
        c.box(x0 + 2.2, y, 0.22, 0.45, y_lab, kind=kind)
    c.label(x0 + pw / 2, 2.55, "negatives: hard ∝ softmax(sim),\nnever the pair; or random")
    fused = c.box(x0 + pw / 2, 1.75, 2.1, 0.62, "text cross-attends the image",
                  title="fused stack", kind="fused")  # fmt: skip
    c.arrow((x0 + pw / 2, 2.26), fused.top)
    head = c.box(x0 + pw / 2, 0.75, 2.1, 0.72, "[BOS] output → linear\nmatch / no match",
                 title="2-way head", kind="loss")  # fmt: skip
    c.link(fused, head)

    # MLM on the image
    x0 = xs[2]
    c.panel(x0, 0.1, x0 + pw, top, "MLM on the image")
    c.label(x0 + pw / 2, 4.2, "hide 15% of the words:\n80% → [MASK], 10% → a\n"
            "random word, 10% unchanged")  # fmt: skip
    words = ["a", "[MASK]", "red", "circle"]
    kinds = ["text", "loss", "text", "text"]
    row = c.cells(x0 + 0.1, 3.5, words, kinds, w=0.52, h=0.36, gap=0.03)
    fused = c.box(x0 + 0.85, 2.55, 1.35, 0.72, "words read both\nways, cross-attend\nimage",
                  kind="fused")  # fmt: skip
    img = c.box(x0 + 1.95, 2.55, 0.6, 0.72, "image\ntokens", kind="image")
    c.link(img, fused)
    c.arrow(row[1].bottom, fused.at("top", row[1].x - fused.x))
    pred = c.box(x0 + 0.85, 1.7, 1.35, 0.36, "predict: small", kind="text")
    c.link(fused, pred)
    loss = c.box(x0 + pw / 2, 0.75, 2.1, 0.72, "on the hidden words only\n(label −100 elsewhere)",
                 title="cross-entropy", kind="loss")  # fmt: skip
    c.arrow(pred.bottom, (pred.x, 1.11))
    return c


# --- chapter 7: captioning ------------------------------------------------------------------


def captioning() -> Canvas:
    """Chapter 7: encoder memory, the decoder block, teacher forcing, greedy decoding."""
    c = Canvas(5.4)
    pic = c.scene(0.55, 4.25, 0.85, [("circle", "red", 0.5, 0.5)])
    enc = c.box(0.98, 3.45, 1.55, 0.6, "ConvStem, ViT or\ntwo-pathway (ch. 4, 8)",
                title="image encoder", kind="image")  # fmt: skip
    mem = c.box(0.98, 2.45, 1.55, 0.62, "image tokens\n(B, Ni, D)", title="memory", kind="image")
    c.link(pic, enc)
    c.link(enc, mem)
    c.label(0.98, 1.45, "the block: CrossAttention-\nBlock, pre-LN; each\nsub-layer x + f(LN(x))")

    # the decoder: embeddings at the bottom, logits at the top
    xd = 3.2
    c.panel(2.1, 1.25, 4.3, 3.95, "", dashed=True)
    c.label(2.2, 3.8, "× n_layers", weight="bold", color=INK, ha="left")
    emb = c.box(xd, 0.85, 1.9, 0.55, "word + position", title="embedding", kind="text")
    sa = c.box(xd, 1.75, 1.9, 0.6, "word t sees words ≤ t", title="causal self-attention",
               kind="text")  # fmt: skip
    ca = c.box(xd, 2.55, 1.9, 0.6, "Q: words; K, V: memory", title="cross-attention",
               kind="fused")  # fmt: skip
    ff = c.box(xd, 3.3, 1.9, 0.45, "", title="feed-forward (FFN)", kind="fused")
    head = c.box(xd, 4.55, 1.9, 0.62, "(B, T, V) logits", title="LayerNorm → lm_head",
                 kind="out")  # fmt: skip
    c.arrow((xd, 0.1), emb.bottom, "ids (B, T)", offset=(0.42, -0.02))
    c.link(emb, sa)
    c.link(sa, ca)
    c.link(ca, ff)
    c.link(ff, head)
    c.arrow(mem.right, ca.left, "K, V", offset=(-0.1, 0.2))

    # teacher forcing
    x0 = 4.5
    c.panel(x0, 2.85, 7.4, 5.3, "teacher forcing (training)")
    c.label(x0 + 0.15, 4.85, "input: caption shifted right, [BOS] first", ha="left")
    read = ["[BOS]", "a", "small", "red", "circle"]
    target = ["a", "small", "red", "circle", "[EOS]"]
    r1 = c.cells(x0 + 0.2, 4.45, read, ["text"] * 5, w=0.48, gap=0.06)
    r2 = c.cells(x0 + 0.2, 3.7, target, ["out"] * 5, w=0.48, gap=0.06)
    for a, b in zip(r1, r2, strict=True):
        c.link(a, b)
    c.label(x0 + 0.15, 3.3, "target: caption + [EOS]; every position\n"
            "at once, [PAD] ignored (−100)", ha="left")  # fmt: skip

    # greedy decoding
    c.panel(x0, 0.1, 7.4, 2.7, "greedy decoding (beam = 1)")
    seen = c.box(x0 + 0.85, 1.75, 1.4, 0.62, "[BOS] a small", title="words so far", kind="text")
    dec = c.box(x0 + 2.2, 1.75, 0.95, 0.62, "KV cache", title="decoder", kind="fused")
    pick = c.box(x0 + 2.2, 0.72, 0.95, 0.62, "over V → red", title="argmax", kind="out")
    c.link(seen, dec)
    c.link(dec, pick)
    c.arrow(pick.left, seen.at("bottom", 0.0), rad=-0.3)
    c.label(x0 + 0.75, 0.62, "append, feed back;\nstop at [EOS]")
    return c


# --- chapter 7b: scoring captions -----------------------------------------------------------


def caption_metrics() -> Canvas:
    """Chapter 7b: n-gram metrics against the references; grounded accuracy against the scene."""
    c = Canvas(5.3)
    ref, cand = "a small red circle", "a small blue circle"  # one colour off
    said, truth = parse(cand), parse(ref)
    hits = fact_hits(said, truth)
    r1, c1 = ngrams(ref.split(), 1), ngrams(cand.split(), 1)
    clipped = sum(min(k, r1[g]) for g, k in c1.items())
    lcs = lcs_length(ref.split(), cand.split())

    refs = c.box(1.2, 4.8, 2.0, 0.62, f"“{ref}”", title="references (1 or more)", kind="text")
    hyp = c.box(3.6, 4.8, 2.0, 0.62, f"“{cand}”", title="candidate", kind="text")
    pic = c.scene(6.35, 4.4, 0.8, [("circle", "red", 0.5, 0.5)])
    c.label(6.2, 4.8, "the image,\nits scene", ha="right")

    # the n-gram metrics: words shared with the references
    c.panel(0.1, 0.1, 4.35, 3.95, "n-gram metrics: words shared")
    c.arrow(refs.bottom, (1.2, 3.95))
    c.arrow(hyp.at("bottom", -0.6), (3.0, 3.95))
    rows = (
        ("BLEU-n", "clipped n-gram precision pₙ,\ngeometric mean over n,\n× brevity penalty",
         f"p₁ = {clipped}/{sum(c1.values())}: “blue” is in\nno reference"),
        ("ROUGE-L", "longest common\nsubsequence (LCS),\nF-measure, β = 1.2",
         f"LCS = “a small circle”:\n{lcs} words in order"),
        ("CIDEr-D", "tf-idf n-gram vectors,\ncosine with each reference,\naveraged over n = 1..4",
         "“a” is in every caption:\nidf weight 0"),
    )  # fmt: skip
    for i, (name, how, example) in enumerate(rows):
        y = 3.05 - i * 1.0
        c.box(1.35, y, 2.3, 0.82, how, title=name, kind="op")
        c.label(2.62, y, example, ha="left")
    c.label(2.22, 0.33, "scores the wording: a false caption can\nbeat a true paraphrase",
            style="italic")  # fmt: skip

    # grounded accuracy: what the caption says, checked against the scene
    c.panel(4.45, 0.1, 7.4, 3.95, "grounded accuracy")

    def facts(f) -> str:
        size, colour, shape = f.objects[0]
        return f"{f.count} object:\n{size}, {colour},\n{shape}"

    got = c.box(5.22, 2.85, 1.34, 0.9, facts(said), title="parse()", kind="text")
    real = c.box(6.7, 2.85, 1.2, 0.9, facts(truth), title="scene_facts()", kind="image")
    c.arrow(hyp.at("bottom", 0.6), got.top)
    c.arrow(pic.bottom, real.top)
    keys = ("count", "size", "colour", "shape")
    right = "  ".join(f"{k} ✓" for k in keys if hits[k])
    wrong = "  ".join(f"{k} ✗" for k in keys if not hits[k])
    verdict = c.box(5.92, 1.45, 2.7, 0.82, f"{right}\n{wrong} → caption false",
                    title="compare fact by fact", kind="loss")  # fmt: skip
    c.arrow(got.bottom, verdict.at("top", got.x - verdict.x))
    c.arrow(real.bottom, verdict.at("top", real.x - verdict.x))
    c.label(5.92, 0.5, "grounded = the fraction of captions\nwhose every fact is true")
    return c


# --- chapter 8: the capstone ----------------------------------------------------------------


def pipeline() -> Canvas:
    """Chapter 8: the capstone's stages, its two-pathway encoder, and what a run writes."""
    c = Canvas(5.75)
    alt = c.box(2.0, 5.25, 2.8, 0.7, "full, partial, bag of words, or wrong",
                title="alt-text pairs (noisy)", kind="text")  # fmt: skip
    cap = c.box(5.5, 5.25, 2.4, 0.7, "one true caption each", title="captioned scenes",
                kind="text")  # fmt: skip
    y, w, h = 3.75, 1.68, 1.05
    s1 = c.box(0.96, y, w, h, "ITC + ITM + MLM + LM\non every alt-text pair\n(Pretrainer)",
               title="1 · pretrain", kind="fused")  # fmt: skip
    s1b = c.box(2.8, y, w, h, "keep whole sentences\nwith a high ITC score;\nLM on those",
                title="1b · curate", kind="fused", dashed=True)  # fmt: skip
    s2 = c.box(4.64, y, w, h, "teacher forcing on\ncaptioned scenes, from\nstage 1's parts",
               title="2 · caption", kind="fused")  # fmt: skip
    s3 = c.box(6.48, y, w, h, "caption alt-text images,\nkeep where the alt-text\nagrees; retrain",
               title="3 · self-train", kind="fused", dashed=True)  # fmt: skip
    c.arrow(alt.at("bottom", -1.04), s1.top)
    c.arrow(alt.at("bottom", 0.8), s1b.top)
    c.arrow(alt.at("bottom", 1.2), s3.at("top", -0.3))
    c.arrow(cap.at("bottom", -0.86), s2.top)
    c.arrow(cap.at("bottom", 0.98), s3.at("top", 0.3))
    c.link(s1, s1b)
    c.link(s1b, s2)
    c.link(s2, s3)
    c.arrow(s1.at("bottom", 0.3), s2.at("bottom", -0.3), rad=0.15, dashed=True)
    c.label(2.8, 2.72, "dashed: the lowcap preset only;\nci and cpu go 1 → 2")
    c.arrow(s3.at("bottom", 0.05), s3.at("bottom", 0.6), rad=1.3)
    c.label(6.8, 2.72, "× rounds")
    c.arrow(s3.at("bottom", -0.45), (6.03, 2.5), "final\ncaptioner", offset=(-0.42, 0.0))

    # the two-pathway image encoder
    c.panel(0.1, 0.1, 4.35, 2.5, "image encoder: TwoPathwayEncoder")
    objects = [("triangle", "yellow", 0.3, 0.55), ("circle", "purple", 0.72, 0.45)]
    pic = c.scene(0.25, 0.9, 0.75, objects, grid=4)
    shape = c.box(1.95, 1.75, 1.55, 0.62, "silhouette m →\nstrided CNN", title="shape",
                  kind="image")  # fmt: skip
    colour = c.box(1.95, 0.85, 1.55, 0.62, "mean colour a cell\n→ MLP", title="colour",
                   kind="image")  # fmt: skip
    c.arrow(pic.at("right", 0.2), shape.left)
    c.arrow(pic.at("right", -0.2), colour.left)
    st = c.box(3.55, 1.75, 1.15, 0.62, "(B, G², D)", title="G² tokens", kind="image")
    ct = c.box(3.55, 0.85, 1.15, 0.62, "(B, G², D)", title="G² tokens", kind="image")
    c.link(shape, st)
    c.link(colour, ct)
    c.label(2.3, 0.3, "+ 2-D positions and a type; kept apart: (B, 2·G², D)")

    # what a run writes
    c.panel(4.55, 0.1, 7.4, 2.5, "run folder: runs/capstone/…")
    files = ("config.json, tokenizer.json", "pretrain/ … selftrain/: checkpoints",
             "captioner.safetensors", "results.json: scores, times")  # fmt: skip
    for i, name in enumerate(files):
        c.box(5.97, 1.95 - i * 0.47, 2.6, 0.36, name, kind="out")
    return c


# --- chapter 9 and later: drawn in sibling modules that import the helpers above -------------


def _sibling(name: str) -> ModuleType:
    """book/<name>.py, loaded once. It does `from diagrams import ...`: that must find this very
    module, whatever it was loaded as (__main__ for `python book/diagrams.py`, book_diagrams in
    tests/test_diagrams.py), rather than run this file a second time."""
    if name not in sys.modules:
        sys.modules.setdefault("diagrams", sys.modules[__name__])
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def vqa() -> Canvas:
    """Chapter 9: four answerers, one picture and one question (book/diagrams_vqa.py)."""
    return _sibling("diagrams_vqa").vqa()


def modern_vlm() -> Canvas:
    """Chapter 10: LLaVA's recipe on the shapes world (book/diagrams_llava.py)."""
    return _sibling("diagrams_llava").modern_vlm()


DIAGRAMS: dict[str, Callable[[], Canvas]] = {
    "01_shapes_world.svg": shapes_world,
    "02_attention.svg": attention,
    "03_encoder_block.svg": encoder_block,
    "04_tokens.svg": tokens,
    "05_fusion.svg": fusion,
    "06_pretraining.svg": pretraining,
    "07_captioning.svg": captioning,
    "07b_caption_metrics.svg": caption_metrics,
    "08_pipeline.svg": pipeline,
    "09_vqa.svg": vqa,
    "10_modern_vlm.svg": modern_vlm,
}


def draw(name: str) -> Canvas:
    """One diagram, drawn under the settings that make its SVG deterministic."""
    with matplotlib.rc_context(RC):
        return DIAGRAMS[name]()


def write(out: Path = FIGURES, png: Path | None = None, force: bool = False) -> list[Path]:
    """Write every diagram as out/NN_name.svg (and a PNG preview into png, if given).

    Nothing is written while any diagram has a layout problem (ValueError), unless force.
    """
    with matplotlib.rc_context(RC):
        canvases = {name: make() for name, make in DIAGRAMS.items()}
        problems = [f"{name}: {p}" for name, c in canvases.items() for p in c.problems()]
        if problems and not force:
            raise ValueError("text overlaps or sticks out:\n" + "\n".join(problems))
        out.mkdir(parents=True, exist_ok=True)
        if png is not None:
            png.mkdir(parents=True, exist_ok=True)
        for name, canvas in canvases.items():
            canvas.save(out / name)
            if png is not None:
                canvas.save(png / Path(name).with_suffix(".png").name)
    return [out / name for name in canvases]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the SVGs")
    parser.add_argument("--png", type=Path, default=None, help="also write PNG previews here")
    parser.add_argument("--force", action="store_true", help="write even with layout problems")
    args = parser.parse_args(argv)
    try:
        paths = write(args.out, args.png, force=args.force)
    except ValueError as err:
        print(f"nothing written: {err}", file=sys.stderr)
        return 1
    for p in paths:
        print(f"{p} ({p.stat().st_size / 1000:.1f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
