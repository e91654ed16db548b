"""The project frame: environment.yml in step with pyproject.toml, the README's promises kept."""

import re
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package (the dev extra brings it)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONSTRAINTS_LOWEST = ROOT / "constraints-lowest.txt"


def _min_python(spec: str) -> tuple[int, int]:
    m = re.search(r">=\s*(\d+)\.(\d+)", spec)
    assert m, f"no lower bound in {spec!r}"
    return int(m[1]), int(m[2])


def test_environment_yml_installs_the_project_with_every_extra():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    assert _min_python(python) == _min_python(PYPROJECT["project"]["requires-python"])
    assert "pip" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert len(pip_section) == 1, "pip section should only install the project"
    m = re.fullmatch(r"-e \.\[(.*)\]", pip_section[0])
    assert m, pip_section
    extras = set(m[1].split(","))
    assert extras == set(PYPROJECT["project"]["optional-dependencies"])
    # no package is listed twice with separate pins: conda only brings python and pip
    assert [d for d in deps if isinstance(d, str)] == [python, "pip"]


def test_dependencies_are_ranges_not_pins():
    deps = PYPROJECT["project"]["dependencies"] + [
        d for extra in PYPROJECT["project"]["optional-dependencies"].values() for d in extra
    ]
    pinned = [d for d in deps if "==" in d]
    assert not pinned, f"declare ranges, not pins: {pinned}"
    names = {re.split(r"[<>=!~\[ ]", d)[0].lower() for d in deps}
    for needed in (
        "torch",
        "torchvision",
        "transformers",
        "einops",
        "matplotlib",
        "tokenizers",
        "safetensors",
        "scikit-image",
        "tqdm",
        "pytest",
        "nbval",
        "hypothesis",
        "ruff",
        "jupyterlab",
        "jupyter-book",
    ):
        assert needed in names, needed


def test_readme_and_ci_use_the_same_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "book", "lab", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), target


def test_every_chapter_in_the_readme_map_exists():
    readme = (ROOT / "README.md").read_text()
    linked = re.findall(r"notebooks/(\d\d[a-z]?_\w+)\.ipynb", readme)  # 07, 07b, ...
    assert linked, "the README's chapter map links no notebook"
    on_disk = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(set(linked)) == on_disk


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _marker(marker: str | None) -> str:
    return re.sub(r"\s+", " ", (marker or "").replace("'", '"')).strip()


def test_lowest_constraints_pin_exactly_the_declared_lower_bounds():
    # what `make lowest` tests is what pyproject.toml declares: every dependency of the package and
    # of the dev extra, at its lower bound, with the same environment marker, and nothing else
    declared = {}
    for req in (
        PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    ):
        m = re.fullmatch(
            r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([^,;\s]+)[^;]*(?:;(.*))?", req.strip()
        )
        assert m, f"{req!r}: every dependency declares a lower bound (name>=version)"
        declared[_canonical(m[1])] = (m[2], _marker(m[3]))
    pinned = {}
    for line in CONSTRAINTS_LOWEST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^;\s]+)\s*(?:;(.*))?", line)
        assert m, f"{line!r} in {CONSTRAINTS_LOWEST.name} is not name==version[; marker]"
        assert _canonical(m[1]) not in pinned, f"{m[1]} is pinned twice"
        pinned[_canonical(m[1])] = (m[2], _marker(m[3]))
    assert pinned == declared


def test_ci_tests_the_lower_bounds():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lowest:", makefile, re.M)
    assert CONSTRAINTS_LOWEST.name in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make test") < ci.index("make lowest")
