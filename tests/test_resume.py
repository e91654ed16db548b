"""A capstone run killed with SIGKILL mid-stage resumes from its newest checkpoint, trains only
the steps that remain, and ends with the same weights as a run that was never interrupted."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from .capstone_tiny import TINY, sets

ROOT = Path(__file__).resolve().parents[1]
STEPS = 200  # stage 2 of a tiny model: a few seconds, several checkpoints by time


def command(out: Path) -> list[str]:
    values = {**TINY, "caption_steps": STEPS, "ckpt_seconds": 0.2, "threads": 1}
    return [sys.executable, "-m", "minivlm", "capstone", "--preset", "ci", "--out", str(out),
            *sets(values)]  # fmt: skip


def steps_saved(folder: Path) -> list[int]:
    return sorted(int(p.stem[len("step_") :]) for p in folder.glob("step_*.json"))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_run_resumes_and_equals_an_unbroken_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    stage2 = tmp_path / "killed" / "ci-seed0" / "caption"
    proc = subprocess.Popen(command(tmp_path / "killed"), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 300
    while not [s for s in steps_saved(stage2) if 0 < s < STEPS]:
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint of stage 2 within 300 s"
        time.sleep(0.01)
    proc.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
    proc.wait()
    killed_at = max(steps_saved(stage2))
    assert 0 < killed_at < STEPS and not (stage2.parent / "results.json").exists()

    resumed = subprocess.run(command(tmp_path / "killed"), env=env, cwd=ROOT, text=True,
                             capture_output=True, check=True)  # fmt: skip
    assert f"caption: resumes from step {killed_at} of {STEPS}" in resumed.stdout
    result = json.loads((stage2.parent / "results.json").read_text())
    # the resumed process trained only what was left: stage 1 was done, stage 2 part done
    assert result["steps_run"] == {"pretrain": 0, "caption": STEPS - killed_at}
    log = [json.loads(line) for line in (stage2 / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(10, STEPS + 1, 10))  # each step logged once

    subprocess.run(command(tmp_path / "unbroken"), env=env, cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    a = load_file(str(stage2.parent / "captioner.safetensors"))
    b = load_file(str(tmp_path / "unbroken" / "ci-seed0" / "captioner.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)  # bit for bit
