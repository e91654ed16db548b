"""The results files of the print-and-write bench scripts hold what bench/report.py renders.

Cheap: reads the committed bench/results/<name>.json files, never runs a bench. A file that is
not there yet (its bench not run on this checkout) is skipped.
"""

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
META = {"command": str, "machine": str, "torch": str, "threads": int, "commit": str}

# every results file that bench/common.write_results writes, and the keys of one figure
FIGURES = {
    "data": {"size", "images_per_s"},
    "parity": {"reference", "max_abs_diff"},
    "attention": {"size", "reference_ms", "fast_ms", "fast_ratio", "scratch_ms", "scratch_ratio"},
    "decode": {"batch", "length", "cache_ms", "recompute_ms", "speedup", "run"},
    "compile": {
        "eager_total_s",
        "compiled_total_s",
        "eager_ms_per_step",
        "compiled_ms_per_step",
        "ratio",
        "steps",
    },
    "throughput": {"stage", "gflop_per_step", "step_ms", "gflops", "peak_gflops", "share"},
    "throughput_quick": {"stage", "gflop_per_step", "step_ms", "gflops", "peak_gflops", "share"},
    "budget": {"step_ms", "steps", "seconds_today", "ratio", "budget_day_seconds"},
    # chapter 9's answerers and chapter 10's language model: accuracies per kind, per split
    "vqa": {"answerer", "seed", "test", "comp"},
    "lm": {"seed", "steps", "train_seconds", "name_held_out", "curve", "test", "comp"},
}
# figure keys that hold a name, a flag, or a table of figures rather than one number
NOT_A_NUMBER = ("size", "reference", "stage", "answerer", "name_held_out", "curve", "test", "comp",
                "step_ms", "steps", "seconds_today")  # fmt: skip


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_results_file_has_its_metadata_and_figures(name):
    path = RESULTS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path.name} not written yet (python bench/{name}.py)")
    report = json.loads(path.read_text())
    for key, kind in META.items():
        assert isinstance(report.get(key), kind), f"{path.name}: {key!r} missing or not {kind}"
    assert report["command"].startswith(f"python bench/{name.split('_')[0]}.py")  # throughput_quick
    assert report["threads"] >= 1 and report["commit"]
    figures = report.get("results")
    assert isinstance(figures, list | dict) and figures, f"{path.name}: no figures"
    rows = figures if isinstance(figures, list) else [figures]
    for row in rows:
        assert FIGURES[name] <= row.keys(), f"{path.name}: a row lacks {FIGURES[name] - row.keys()}"
        numbers = [v for k, v in row.items() if k in FIGURES[name] and k not in NOT_A_NUMBER]
        assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)


@pytest.mark.parametrize("name", ["vqa", "lm"])
def test_accuracies_per_kind_are_shares(name):
    path = RESULTS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path.name} not written yet (python bench/{name}.py)")
    for row in json.loads(path.read_text())["results"]:
        for split in ("test", "comp"):
            scores = row[split]
            assert isinstance(scores, dict) and "all" in scores, f"{path.name}: {split} per kind"
            bad = {k: v for k, v in scores.items() if not 0.0 <= v <= 1.0}
            assert not bad, f"{path.name}: {row.get('answerer', row['seed'])} {split}: {bad}"
