"""Small helpers that turn results files into markdown tables (bench/report.py)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def load(name: str, folder: Path = RESULTS) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ms(values: Iterable[float], digits: int = 3) -> str:
    """Mean ± sample standard deviation (the mean alone for one value)."""
    v = list(values)
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f}"


def span(values: Iterable[float], fmt: str = ",.0f") -> str:
    """The range of some figures, such as wall times: '583-708'."""
    v = sorted(values)
    lo, hi = format(v[0], fmt), format(v[-1], fmt)
    return lo if lo == hi else f"{lo}-{hi}"


def per_seed(rows: list[dict], get: Callable[[dict], float], digits: int = 3) -> str:
    return " / ".join(f"{get(r):.{digits}f}" for r in rows)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def groups(db: dict) -> dict[str, list[dict]]:
    """Rows by key without the seed ('cpu/pretrained'), each sorted by seed."""
    out: dict[str, list[dict]] = {}
    for row in db["runs"]:
        out.setdefault(row["key"].rsplit("/seed", 1)[0], []).append(row)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in out.items()}
