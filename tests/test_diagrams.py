"""The chapter diagrams: book/diagrams.py draws them (chapter 9's from book/diagrams_vqa.py,
chapter 10's from book/diagrams_llava.py), notebooks/figures/ holds them, and every chapter
shows its own with alt text.

A committed SVG must be what the code draws now: the same text, and the same bytes when the
matplotlib that runs the test is the one that drew the file (its version is in the SVG's
metadata; another version lays out the same picture in other bytes).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "notebooks" / "figures"
SVG_NS = "{http://www.w3.org/2000/svg}"
# the file names other pages use: one diagram per chapter 1 to 10, and one for chapter 7b
NAMES = [
    "01_shapes_world.svg",
    "02_attention.svg",
    "03_encoder_block.svg",
    "04_tokens.svg",
    "05_fusion.svg",
    "06_pretraining.svg",
    "07_captioning.svg",
    "07b_caption_metrics.svg",
    "08_pipeline.svg",
    "09_vqa.svg",
    "10_modern_vlm.svg",
]
# a markdown image ![alt](figures/x.svg "title") or an HTML <img> naming figures/x.svg
MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?(figures/[^)\s>]+\.svg)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_IMAGE = re.compile(r"<img\b[^>]*>", re.I)
# a MyST figure or image directive, with its :alt: option if it has one
DIRECTIVE = re.compile(r"\{(?:figure|image)\}\s+(figures/\S+\.svg)\s*\n((?:[ \t]*:\w+:.*\n?)*)")
MENTION = re.compile(r"figures/[\w.-]+\.svg")


def _load_diagrams():
    spec = importlib.util.spec_from_file_location("book_diagrams", ROOT / "book" / "diagrams.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


diagrams = _load_diagrams()


def _texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


@pytest.fixture(scope="module")
def drawn():
    return {name: diagrams.draw(name) for name in NAMES}


def test_the_module_draws_the_chapter_diagrams():
    assert list(diagrams.DIAGRAMS) == NAMES
    assert sorted(p.name for p in FIGURES.glob("*.svg")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_each_diagram_is_a_small_svg_with_labels(name):
    path = FIGURES / name
    assert path.is_file(), f"{path} is missing: run python book/diagrams.py"
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg"
    assert float(root.get("width").removesuffix("pt")) == pytest.approx(72 * diagrams.WIDTH)
    assert len(_texts(path.read_bytes())) >= 10, "text is kept as <text> (svg.fonttype none)"
    assert path.stat().st_size < 60_000


@pytest.mark.parametrize("name", NAMES)
def test_no_text_overlaps_or_leaves_its_box(name, drawn):
    assert drawn[name].problems() == []


@pytest.mark.parametrize("name", NAMES)
def test_the_committed_svg_is_what_the_code_draws(name, drawn, tmp_path):
    fresh = tmp_path / name
    drawn[name].save(fresh)
    committed = (FIGURES / name).read_bytes()
    assert _texts(fresh.read_bytes()) == _texts(committed), "rerun python book/diagrams.py"
    drew = re.search(rb"Matplotlib v([^,<\s]+)", committed)
    assert drew, "the SVG names the matplotlib that drew it"
    if drew[1].decode() == matplotlib.__version__:
        assert fresh.read_bytes() == committed, "rerun python book/diagrams.py"


def test_drawing_twice_gives_the_same_bytes(drawn, tmp_path):
    name = NAMES[0]
    drawn[name].save(tmp_path / "a.svg")
    diagrams.draw(name).save(tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def _references() -> list[tuple[str, str, str]]:
    """(notebook, alt text, figures/x.svg) for every figure a markdown cell refers to: markdown
    images, <img> tags and MyST figure/image directives; any other mention counts as an image
    without alt text."""
    refs = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            src = "".join(cell["source"])
            found = [(alt, path) for alt, path in MARKDOWN_IMAGE.findall(src)]
            for tag in HTML_IMAGE.findall(src):
                src_attr = re.search(r"\bsrc\s*=\s*[\"']([^\"']+)[\"']", tag)
                alt_attr = re.search(r"\balt\s*=\s*[\"']([^\"']*)[\"']", tag)
                if src_attr and MENTION.fullmatch(src_attr[1]):
                    found.append((alt_attr[1] if alt_attr else "", src_attr[1]))
            for path, options in DIRECTIVE.findall(src):
                alt_opt = re.search(r":alt:(.*)", options)
                found.append((alt_opt[1].strip() if alt_opt else "", path))
            mentions = MENTION.findall(src)
            for path in {p for _, p in found}:
                mentions = [m for m in mentions if m != path]
            refs += [(nb.name, alt, path) for alt, path in found]
            refs += [(nb.name, "", path) for path in mentions]  # not shown as an image
    return refs


def test_every_figure_a_notebook_refers_to_exists_and_has_alt_text():
    for notebook, alt, path in _references():
        assert (ROOT / "notebooks" / path).is_file(), f"{notebook} shows {path}, which is missing"
        assert alt.strip(), f"{notebook}: {path} needs alt text, as ![what it shows]({path})"


@pytest.mark.parametrize("name", NAMES)
def test_each_chapter_shows_its_diagram(name):
    chapter = name.split("_")[0]  # "07" for 07_captioning.svg, "07b" for 07b_caption_metrics.svg
    shown_in = {nb for nb, alt, path in _references() if Path(path).name == name and alt.strip()}
    assert any(nb.startswith(f"{chapter}_") for nb in shown_in), (
        f"no chapter {chapter} notebook shows figures/{name} (with alt text); shown in "
        f"{sorted(shown_in) or 'none'}"
    )
