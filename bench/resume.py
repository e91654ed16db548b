"""What a kill costs: SIGKILL a capstone run mid-stage, resume it, compare (chapter 8).

    python bench/resume.py [--preset ci] [--stage caption] [--at 960] [--threads 1]

Starts `python -m minivlm capstone` in a subprocess, kills it with SIGKILL (no handler runs)
once the stage's log reaches step --at, then runs the same command again, which resumes from
the newest checkpoint. A third, unbroken run in another folder gives the reference. Prints
the steps and seconds lost (the steps between the last checkpoint and the kill, at the
stage's measured step time), the steps the resumed process trained, and whether the final
captioner equals the unbroken run's bit for bit (one thread makes training deterministic).
Writes bench/results/resume.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minivlm.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "resume.json"


def log_steps(folder: Path) -> list[dict]:
    path = folder / "metrics.jsonl"
    rows = path.read_text().splitlines() if path.exists() else []
    return [json.loads(r) for r in rows[:-1] or []]  # the last line may be half written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="ci")
    ap.add_argument("--stage", default="caption", help="the stage folder to kill in")
    ap.add_argument("--at", type=int, default=960, help="kill once this step is logged")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="resume-"))

    def command(out: Path) -> list[str]:
        sets = ["--set", f"threads={args.threads}", "--set", "progress=false"]
        return [sys.executable, "-m", "minivlm", "capstone", "--preset", args.preset,
                "--out", str(out), *sets]  # fmt: skip

    run_dir = tmp / "killed" / f"{args.preset}-seed0"
    stage = run_dir / args.stage
    t0 = time.perf_counter()
    proc = subprocess.Popen(command(tmp / "killed"), cwd=ROOT, stdout=subprocess.DEVNULL)
    while not (rows := log_steps(stage)) or rows[-1]["step"] < args.at:
        if proc.poll() is not None:
            raise SystemExit(f"the run ended before step {args.at} of {args.stage}")
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    killed_at, killed_time = rows[-1]["step"], rows[-1]["time"]
    saved = max(int(p.stem[5:]) for p in stage.glob("step_*.json"))
    first_wall = time.perf_counter() - t0
    per_step = killed_time / killed_at
    t1 = time.perf_counter()
    subprocess.run(command(tmp / "killed"), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    resume_wall = time.perf_counter() - t1
    resumed = json.loads((run_dir / "results.json").read_text())
    t2 = time.perf_counter()
    subprocess.run(command(tmp / "unbroken"), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    unbroken_wall = time.perf_counter() - t2
    a = load_file(str(run_dir / "captioner.safetensors"))
    b = load_file(str(tmp / "unbroken" / f"{args.preset}-seed0" / "captioner.safetensors"))
    equal = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    row = {
        "preset": args.preset, "stage": args.stage, "threads": args.threads,
        "killed_after_step": killed_at, "resumed_from_step": saved,
        "steps_lost": killed_at - saved, "seconds_lost": (killed_at - saved) * per_step,
        "step_seconds": per_step, "steps_run_on_resume": resumed["steps_run"],
        "wall_seconds": {"killed": first_wall, "resumed": resume_wall, "unbroken": unbroken_wall},
        "weights_equal": equal, "scores": resumed["scores"],
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__},
    }  # fmt: skip
    print(json.dumps(row, indent=1))
    atomic_write_text(RESULTS, json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
