"""What every bench script shares: the commit it measured, and writing bench/results/<name>.json.

A results file holds `command` (the command line that reproduces it), `machine`, `torch`,
`threads`, `commit`, any settings the script passes, and `results`: the figures, raw (not
rounded), as a list of rows or one dict, so bench/report.py can render a table from them.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
from pathlib import Path

import torch

from minivlm.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def commit() -> str:
    """The code a figure was measured with (git's short hash; "unknown" outside a checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True)  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command(script: str, args: argparse.Namespace | None = None) -> str:
    """The command line that reproduces a run: `python bench/<script>` and every option's value
    (an option left at None, i.e. not given, is left out)."""
    parts = [f"python bench/{script}"]
    for key, value in vars(args or argparse.Namespace()).items():
        if value is None:
            continue
        value = " ".join(map(str, value)) if isinstance(value, list | tuple) else value
        parts.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(parts)


def write_results(
    name: str, cmd: str, results: list | dict, path: str | Path | None = None, **settings
) -> Path:
    """Write bench/results/<name>.json (or `path`, e.g. a short run's temporary file) atomically;
    `threads` is torch's thread count right now."""
    report = {
        "command": cmd,
        "machine": platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "commit": commit(),
        **settings,
        "results": results,
    }
    path = Path(path) if path is not None else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report, indent=1))
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    print(f"wrote {shown}")
    return path


def merged(rows: list[dict], cmd: str, path: Path, key: str) -> tuple[list[dict], list[str]]:
    """The rows of the results file (`path`) that these runs did not redo, then these rows (so a
    run of one arm, e.g. `--what scratch`, adds to the file instead of replacing it), and every
    command whose rows the file holds, this one last. A row is named by (row[key], its seed)."""
    old = json.loads(path.read_text()) if path.exists() else {"results": []}
    new = {(r[key], r["seed"]) for r in rows}
    kept = [r for r in old["results"] if (r[key], r["seed"]) not in new]
    commands = old.get("commands", [old["command"]] if "command" in old else []) if kept else []
    return kept + rows, [c for c in commands if c != cmd] + [cmd]


def summary(rows: list[dict], key: str) -> None:
    """Print mean ± sample std over seeds per row[key], per score of "test" and "comp"."""
    names = list(dict.fromkeys(r[key] for r in rows))
    for split in ("test", "comp"):
        keys = list(rows[0][split])
        print(f"\n{split:<11}" + "".join(f"{k:>14}" for k in keys) + f"{'train s':>10}")
        for name in names:
            runs = [r for r in rows if r[key] == name]
            cells = []
            for k in keys:
                v = [r[split][k] for r in runs if k in r[split]]
                sd = statistics.stdev(v) if len(v) > 1 else 0.0
                cells.append(f"{statistics.mean(v):>7.3f} ±{sd:.3f}" if v else "")
            secs = [r["train_seconds"] for r in runs if "train_seconds" in r]
            took = f"{statistics.mean(secs):>10.0f}" if secs else ""
            print(f"{name:<11}" + "".join(f"{c:>14}" for c in cells) + took)
