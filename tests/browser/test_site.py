"""The Jupyter Book site in a real browser: every page loads cleanly, offline (issue 3).

For each page: no console errors, no failed requests, no request outside 127.0.0.1, every image
loaded, all maths typeset by the MathJax that ships with the site. Each chapter page shows the
diagrams (notebooks/figures/*.svg) its notebook refers to, loaded and with alt text. The sidebar
and the "next" buttons reach every chapter. A screenshot of each page goes to book/_build/screenshots/.
Each chapter with exercises shows them under their heading, and the solution of every implement
exercise stays hidden below its code cell until the learner clicks it open (issue 21).
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from urllib.parse import urlparse

import pytest
import yaml

from minivlm.exercises.generate import STUB, exercise_start

from .conftest import ROOT, SHOTS, SITE


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    chapters = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [toc["root"], *chapters]


def _all_pages() -> list[str]:
    return sorted(
        str(p.relative_to(SITE)) for p in SITE.rglob("*.html") if "_static" not in p.parts
    )


def test_toc_lists_every_notebook_in_chapter_order():
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    chapters = [p for p in _toc_pages()[1:] if p.startswith("notebooks/")]
    assert chapters == [f"notebooks/{n}" for n in notebooks]
    assert _toc_pages()[-1] == "results", "the Results page (bench/RESULTS.md) closes the book"


@pytest.mark.parametrize("page", _all_pages() or ["(site not built)"])
def test_page_loads_cleanly_offline(browser, site_url, page):
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()

    def outside(route):
        problems.append(f"request outside the site: {route.request.url}")
        route.abort()

    pg.route(lambda url: urlparse(url).hostname != "127.0.0.1", outside)
    pg.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on(
        "requestfailed",
        lambda r: (
            urlparse(r.url).hostname == "127.0.0.1"
            and problems.append(f"failed request: {r.url} ({r.failure})")
        ),
    )
    pg.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))

    pg.goto(f"{site_url}/{page}", wait_until="load")
    n_math = pg.locator(".math").count()
    if n_math:
        pg.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
        pg.evaluate("MathJax.startup.promise")
        typeset = pg.locator("mjx-container").count()
        assert typeset >= n_math, f"{page}: {typeset} of {n_math} formulas typeset"
        assert pg.locator("mjx-merror").count() == 0, f"{page}: MathJax reported an error"
    pg.wait_for_load_state("networkidle")
    broken = pg.evaluate(
        "Array.from(document.images)"
        ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken, f"{page}: images not loaded: {broken}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / (page.replace("/", "__").removesuffix(".html") + ".png")))
    context.close()
    assert not problems, f"{page}:\n" + "\n".join(problems)


@pytest.mark.parametrize("notebook", sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_chapter_pages_show_the_stored_outputs(browser, site_url, notebook):
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    last_text = next(
        "".join(o["text"]).strip().splitlines()[-1] for o in reversed(outputs) if "text" in o
    )
    pg = browser.new_page()
    pg.goto(f"{site_url}/notebooks/{notebook}.html")
    assert pg.locator(".cell_output img").count() == figures
    assert last_text in pg.inner_text("main")  # printed text is shown as stored
    pg.close()


# every SVG on the page (made eager, in case it is lazy), with its natural width and alt text
_SVG_IMAGES = """async () => {
    const svgs = Array.from(document.images)
        .filter(i => new URL(i.src, location.href).pathname.endsWith(".svg"));
    await Promise.all(svgs.map(i => { i.loading = "eager"; return i.decode().catch(() => null); }));
    return svgs.map(i => ({src: i.src, width: i.naturalWidth, alt: (i.getAttribute("alt") || "").trim()}));
}"""


@pytest.mark.parametrize("notebook", sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_chapter_diagrams_load_with_alt_text(browser, site_url, notebook):
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    markdown = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    referred = {PurePosixPath(p).name for p in re.findall(r"figures/[\w.-]+\.svg", markdown)}
    pg = browser.new_page()
    pg.goto(f"{site_url}/notebooks/{notebook}.html", wait_until="load")
    svgs = pg.evaluate(_SVG_IMAGES)
    pg.close()
    broken = [i["src"] for i in svgs if not i["width"] > 0]
    assert not broken, f"{notebook}: SVG images not loaded: {broken}"
    no_alt = [i["src"] for i in svgs if not i["alt"]]
    assert not no_alt, f"{notebook}: SVG images without alt text: {no_alt}"
    shown = {PurePosixPath(urlparse(i["src"]).path).name for i in svgs}
    assert referred <= shown, f"{notebook}: diagrams not on the page: {sorted(referred - shown)}"


def test_navigation_reaches_every_chapter(browser, site_url):
    expected = [f"{p}.html" for p in _toc_pages()]
    pg = browser.new_page()
    pg.goto(f"{site_url}/index.html")  # redirects to the intro
    pg.wait_for_url(f"**/{expected[0]}")
    sidebar = pg.eval_on_selector_all(
        ".bd-sidebar-primary a.reference.internal", "els => els.map(e => e.href)"
    )
    for page in expected[1:]:
        assert any(href.endswith(page) for href in sidebar), f"sidebar has no link to {page}"
    visited = [urlparse(pg.url).path.lstrip("/")]
    for _ in expected[1:]:  # walk the book with the "next" button
        pg.click("a.right-next")
        pg.wait_for_load_state("load")
        visited.append(urlparse(pg.url).path.lstrip("/"))
    assert visited == expected
    assert pg.locator("a.right-next").count() == 0  # the last chapter has no "next"
    pg.close()


def _exercise_sections() -> dict[str, list[dict]]:
    """The exercise cells of every chapter that has an "## Exercises" section, by notebook."""
    out = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        if exercise_start(cells) < len(cells):
            out[path.stem] = cells[exercise_start(cells) :]
    return out


EXERCISES = _exercise_sections()


@pytest.mark.parametrize("notebook", sorted(EXERCISES))
def test_exercise_solutions_are_hidden_until_clicked(browser, site_url, notebook):
    cells = EXERCISES[notebook]
    texts = ["".join(c["source"]) for c in cells]
    headings = [m for t in texts for m in re.findall(r"^### (Exercise [\w.]+ \(\w+\))", t, re.M)]
    stubs = sum(c["cell_type"] == "code" and STUB in t for c, t in zip(cells, texts, strict=True))
    assert headings and stubs, f"{notebook}: expected exercise headings and implement stubs"
    pg = browser.new_page()
    pg.goto(f"{site_url}/notebooks/{notebook}.html", wait_until="load")
    section = pg.locator("section#exercises")
    assert section.locator("h2").first.inner_text().strip() == "Exercises"
    shown = [h.split(":")[0] for h in section.locator("h3").all_inner_texts()]
    assert shown == headings, f"{notebook}: exercise headings on the page differ from the notebook"
    solutions = section.locator("details", has=pg.locator("summary:text-is('Solution')"))
    assert solutions.count() == stubs, f"{notebook}: expected one solution per implement exercise"
    for i in range(stubs):
        details = solutions.nth(i)
        # it sits right below the exercise's code cell, the one the learner fills in
        above = details.evaluate("d => d.previousElementSibling.matches('.cell') ? "
                                 "d.previousElementSibling.innerText : ''")  # fmt: skip
        assert "raise NotImplementedError" in above, (
            f"{notebook}: solution {i + 1} not below a stub"
        )
        code = details.locator("pre").first
        assert details.locator("summary").is_visible()
        assert not code.is_visible(), f"{notebook}: solution {i + 1} is shown before a click"
        details.locator("summary").click()
        assert code.is_visible(), f"{notebook}: solution {i + 1} is still hidden after a click"
        assert details.evaluate("d => d.open")
    pg.close()
