"""bench/gpu_check.py (issue 24): its dry run on a CPU, which is how CI keeps the GPU check from
rotting while no GPU is at hand, and the helper that stops a part at its time limit."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HAS_PROC = Path("/proc/self/stat").exists()


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


# ---------------------------------------------------------------- the time-limit helper


def test_a_command_past_its_limit_is_stopped_and_marked(tmp_path):
    out = gpu_check.run_limited(["sleep", "30"], 0.5, tmp_path / "sleep.log")
    assert out.timed_out and out.status == "timed_out" and out.returncode is None
    # stopped, not run out: far below the 30 s it asks for (how far past limit + grace it ends
    # depends on the machine's load: a CI run beside another job ended 15 ms past 5.5 s)
    assert out.seconds < 15


def test_a_command_within_its_limit_keeps_its_status_and_output(tmp_path):
    ok = gpu_check.run_limited([sys.executable, "-c", "print('hi')"], 30, tmp_path / "ok.log")
    assert (ok.status, ok.returncode, ok.tail) == ("passed", 0, ["hi"])
    code = "import sys; print('boom'); sys.exit(3)"
    bad = gpu_check.run_limited([sys.executable, "-c", code], 30, tmp_path / "bad.log")
    assert (bad.status, bad.returncode, bad.timed_out, bad.tail) == ("failed", 3, False, ["boom"])


@pytest.mark.skipif(not HAS_PROC, reason="finds the processes a command started in /proc")
def test_a_stopped_command_leaves_no_process_behind(tmp_path):
    # like nbval: a process that shrugs off SIGINT, with a child in a session of its own (a
    # Jupyter kernel), which a kill of the process group alone would miss
    pid_file = tmp_path / "child.pid"
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '30'], start_new_session=True)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(30)\n"
    )
    out = gpu_check.run_limited([sys.executable, "-c", code], 3, tmp_path / "tree.log", grace=0.5)
    assert out.timed_out and out.seconds < 10
    assert pid_file.exists(), "the command did not start its child in time"
    assert not gpu_check.running(int(pid_file.read_text()))


# ---------------------------------------------------------------- the dry run


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    committed = ROOT / "bench" / "results" / "gpu.json"
    before = committed.stat().st_mtime_ns if committed.exists() else None
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "bench/gpu_check.py", "--dry-run", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    after = committed.stat().st_mtime_ns if committed.exists() else None
    assert before == after, "the dry run wrote bench/results/gpu.json"
    return proc, json.loads((out / "gpu.json").read_text())


def test_dry_run_runs_every_part_and_stops_the_one_that_overruns(dry_run):
    proc, report = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    parts = report["results"]
    assert list(parts) == ["overrun", *gpu_check.PARTS]  # the overrun first: the rest still ran
    over = parts["overrun"]
    assert over["status"] == "timed_out" and over["timed_out"] and over["returncode"] is None
    assert over["seconds"] < over["limit_s"] + gpu_check.GRACE_S + 5, "the stop came late"
    for name in gpu_check.PARTS:
        part = parts[name]
        assert part["status"] == "passed" and not part["timed_out"], (name, part.get("tail"))
        assert 0 < part["seconds"] <= part["limit_s"], name


def test_dry_run_records_the_machine_and_each_parts_figures(dry_run):
    _, report = dry_run
    assert report["device"] == "cpu (dry run)" and report["dry_run"] is True
    assert report["cuda"] is None and report["torch"] == torch.__version__ and report["commit"]
    assert report["command"].startswith("python bench/gpu_check.py --dry-run")
    assert report["seconds"] >= sum(p["seconds"] for p in report["results"].values()) * 0.99
    parts = report["results"]
    books = parts["notebooks"]
    assert books["mplbackend"] == "unset" and books["passed"] == books["of"] == 1
    assert books["sanitize"] == ["sanitize.cfg", "sanitize_gpu.cfg"]
    assert [(b["notebook"], b["status"]) for b in books["notebooks"]] == [("00_setup", "passed")]
    cap = parts["capstone"]
    assert {"test", "comp"} <= cap["scores"].keys() and cap["train_seconds"] > 0
    assert cap["progress"]["caption"]["step"] == cap["sets"]["caption_steps"]
    stages = {r["stage"]: r for r in parts["bf16"]["rows"]}
    assert stages.keys() == {"pretrain", "caption"}
    for row in stages.values():
        assert row["fp32_ms"] > 0 and row["bf16_ms"] > 0 and row["autocast"].startswith("none")
    assert "blind" in {r["answerer"] for r in parts["vqa"]["rows"]}
    assert [r["steps"] for r in parts["lm"]["rows"]] == [4]
    llava = parts["llava"]["rows"]
    assert [(r["arm"], r["steps"]["stage2"]) for r in llava] == [("main", 1)]
    assert {"describe", "all"} <= llava[0]["test"].keys() and llava[0]["train_seconds"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_without_cuda_and_dry_run_it_stops_at_once_with_one_line(capsys):
    assert gpu_check.main(["notebooks"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--dry-run" in err and "\n" not in err


def test_a_dry_run_never_targets_the_committed_results(capsys):
    assert gpu_check.main(["--dry-run", "--out", str(ROOT / "bench" / "results")]) == 2
    assert "never writes bench/results/gpu.json" in capsys.readouterr().err
