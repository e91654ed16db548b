"""The whole course on a CUDA GPU, in one short prepared check (issue 24).

    python bench/gpu_check.py [PART ...] [--limit PART=SECONDS] [--jobs N] [--out DIR]
    python bench/gpu_check.py --dry-run [--out DIR]       (CPU only: the script's own test)

Parts, in this order (all of them when none is named), each a subprocess stopped at its limit:

    notebooks  every notebooks/*.ipynb under strict nbval, --jobs side by side (2 threads each,
               MPLBACKEND unset so plt.show() draws the inline figures the outputs hold;
               printed decimals compared to two places, notebooks/sanitize_gpu.cfg)      140 s
    capstone   `python -m minivlm capstone --preset gpu`, made smaller by CAPSTONE_GPU to an
               estimated 2-3 minutes on an H100 (not yet measured): scores, times, steps  170 s
    bf16       bench/bf16.py: bf16 autocast against fp32 on the same capstone steps        30 s
    vqa        bench/vqa.py's short mode: blind answerer, captioner and reader, one seed     60 s
    lm         bench/lm.py's short mode: 200 steps of chapter 10's language model on CUDA    30 s
    llava      bench/llava.py's short mode: chapter 10's whole recipe, short stages, one seed 40 s

The limits sum to 470 s (7 min 50 s), under the 8 minutes of GPU time a slot gives, start-up
included; a part that reaches its limit is stopped (SIGINT, then SIGKILL to every process it
started, a notebook's kernel included), recorded as "timed_out" with what it had, and the next
part runs. bench/results/gpu.json is rewritten (atomically) after every part: device, torch and
CUDA versions, commit, command, and per part its status, seconds and results. Outputs and logs
go to runs/gpu_check/ (--out DIR: gpu.json and all of them to DIR instead).

--dry-run runs the same code on a CPU with cheap stand-ins (one short notebook, a tiny capstone,
two fp32 steps for bf16, the blind answerer, a 4-step language model, a few steps of each
stage of chapter 10's recipe) and one more part,
`overrun`, whose 1 s limit proves the kill path. It writes DIR/gpu.json (default: a new
temporary folder), never bench/results/gpu.json; tests/test_gpu_check.py runs it in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, write_results  # noqa: E402
from minivlm.__main__ import parse_sets  # noqa: E402
from minivlm.errors import InputError  # noqa: E402
from tests.capstone_tiny import TINY  # noqa: E402  (the tests' tiny capstone, for --dry-run)

NOTEBOOKS = ROOT / "notebooks"
SANITIZE = ("sanitize.cfg", "sanitize_gpu.cfg")  # nbval's, then what a GPU's digits need
PARTS = ("notebooks", "capstone", "bf16", "vqa", "lm", "llava")
LIMITS = {"notebooks": 140, "capstone": 170, "bf16": 30, "vqa": 60, "lm": 30, "llava": 40,
          "overrun": 1}  # fmt: skip
# the gpu preset, smaller: half the alt-text (data takes ~1 min of CPU), 1500 + 3000 steps
CAPSTONE_GPU = {"n_alt": 50_000, "pretrain_steps": 1500, "caption_steps": 3000, "progress": False}
GRACE_S = 5.0  # after SIGINT (a training loop saves a checkpoint), before SIGKILL
TAIL_LINES = 15  # of a part's output, kept in gpu.json unless it passed


# ---------------------------------------------------------------- a command with a time limit


@dataclass
class Outcome:
    """How a command ended: exit status (None if killed), seconds, and its output's last lines."""

    returncode: int | None
    seconds: float
    timed_out: bool
    tail: list[str]

    @property
    def status(self) -> str:
        return "timed_out" if self.timed_out else "passed" if self.returncode == 0 else "failed"


def _tree(pid: int) -> set[int]:
    """pid and every process below it (Linux /proc; elsewhere just pid)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended while we looked
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo += [c for c in children.get(p, []) if c not in found]
    return found


def running(pid: int) -> bool:
    """Whether process pid still runs (a zombie has ended: only its exit status is left)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGINT to the command's process group, `grace` s to finish, then SIGKILL to every process
    it started (a Jupyter kernel runs in a session of its own, so a group kill would miss it),
    and wait (up to GRACE_S) until they have ended, so the next part finds the GPU free."""
    tree = _tree(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    tree |= _tree(proc.pid)
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()
    deadline = time.monotonic() + GRACE_S
    while any(running(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)


def run_limited(
    cmd: list[str], limit: float, log: Path, env: dict | None = None, grace: float = GRACE_S
) -> Outcome:
    """Run cmd from the repository root with its output in `log` (a file, not a pipe: a process
    left behind cannot block us on it); stop it after `limit` s (see `_stop`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=max(limit, 0.0))
            timed_out = False
        except subprocess.TimeoutExpired:
            _stop(proc, grace)
            timed_out = True
    seconds = time.perf_counter() - t0
    tail = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    return Outcome(None if timed_out else proc.returncode, seconds, timed_out, tail)


# ---------------------------------------------------------------- the parts


@dataclass
class Check:
    """What every part needs: dry run or not, the folder for outputs and logs, the options."""

    dry_run: bool
    work: Path
    jobs: int
    capstone_sets: dict

    def command(self, name: str, cmd: list[str], limit: float, env: dict | None = None) -> dict:
        """Run one part's command; its status, exit status, log and (unless passed) last lines."""
        log = self.work / "logs" / f"{name}.log"
        out = run_limited([sys.executable, *cmd], limit, log, env)
        res = {"status": out.status, "timed_out": out.timed_out, "returncode": out.returncode,
               "command": shlex.join(["python", *cmd]), "log": str(log)}  # fmt: skip
        return res if out.status == "passed" else {**res, "tail": out.tail}

    def read(self, name: str) -> dict:
        path = self.work / name
        return json.loads(path.read_text()) if path.exists() else {}


def _sets(values: dict) -> list[str]:
    return [a for k, v in values.items() for a in ("--set", f"{k}={json.dumps(v)}")]


TINY_MODEL = {k: TINY[k] for k in ("image_size", "grid", "d_model", "batch")}
# each bench script's short mode: (its options on CUDA, its options in the dry run)
SHORT = {
    "bf16": (["--device", "cuda", "--steps", "50"],
             ["--device", "cpu", "--steps", "2", "--warmup", "1", "--n", "64", *_sets(TINY_MODEL)]),
    "vqa": (["--seeds", "0", "--what", "blind", "reader", "--n-train", "2000", "--n-test", "200",
             "--n-comp", "200", "--blind-seconds", "5", "--caption-steps", "500"],
            ["--seeds", "0", "--what", "blind", "--n-train", "100", "--n-test", "20",
             "--n-comp", "20", "--blind-seconds", "1"]),
    "lm": (["--seeds", "0", "--name-held-out", "true", "--steps", "200", "--eval-every", "100",
            "--n-scenes", "100", "--device", "cuda"],
           ["--seeds", "0", "--name-held-out", "true", "--steps", "4", "--eval-every", "2",
            "--n-scenes", "10", "--batch-size", "16"]),
    "llava": (["--seeds", "0", "--what", "main", "--n-train", "2000", "--n-test", "100",
               "--n-comp", "100", "--caption-steps", "500", "--lm-steps", "200", "--s1", "50",
               "--s2", "200", "--device", "cuda"],
              ["--seeds", "0", "--what", "main", "--n-train", "20", "--n-test", "4", "--n-comp",
               "4", "--n-alt", "200", "--n-captioned", "100", "--pretrain-steps", "1",
               "--caption-steps", "2", "--lm-steps", "2", "--s1", "1", "--s2", "1", "--scenes",
               "4"]),
}  # fmt: skip


def notebooks(check: Check, limit: float) -> dict:
    """Strict nbval per notebook, `jobs` side by side, the slowest (per chapters.json) first."""
    timed = {r["notebook"]: r["run_seconds"] for r in _results("chapters").get("results", [])}
    books = sorted(NOTEBOOKS.glob("*.ipynb"), key=lambda p: -timed.get(p.stem, 1e9))
    books = [NOTEBOOKS / "00_setup.ipynb"] if check.dry_run else books
    jobs = check.jobs or min(len(books), max(1, (os.cpu_count() or 2) // 2))
    threads = 1 if check.dry_run else 2
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    sanitize = check.work / "sanitize.cfg"  # the course's, and two decimals for a GPU's float order
    sanitize.parent.mkdir(parents=True, exist_ok=True)
    sanitize.write_text("\n".join((NOTEBOOKS / f).read_text() for f in SANITIZE))
    env["OMP_NUM_THREADS"] = str(threads)
    deadline = time.monotonic() + limit

    def one(book: Path) -> dict:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"notebook": book.stem, "status": "not_run", "seconds": 0.0, "timed_out": True}
        cmd = [sys.executable, "-m", "pytest", str(book.relative_to(ROOT)), "--nbval",
               "--nbval-current-env", "--nbval-sanitize-with", str(sanitize),
               "-p", "no:cacheprovider", "-q"]  # fmt: skip
        out = run_limited(cmd, left, check.work / "logs" / "notebooks" / f"{book.stem}.log", env)
        print(f"  {book.stem}: {out.status} in {out.seconds:.0f} s", flush=True)
        row = {"notebook": book.stem, "status": out.status, "seconds": out.seconds,
               "timed_out": out.timed_out}  # fmt: skip
        return row if out.status == "passed" else {**row, "tail": out.tail}

    with ThreadPoolExecutor(jobs) as pool:
        rows = sorted(pool.map(one, books), key=lambda r: r["notebook"])
    passed = sum(r["status"] == "passed" for r in rows)
    timed_out = any(r["timed_out"] for r in rows)
    status = "passed" if passed == len(rows) else "timed_out" if timed_out else "failed"
    return {"status": status, "timed_out": timed_out, "passed": passed, "of": len(rows),
            "jobs": jobs, "omp_threads": threads, "mplbackend": "unset", "sanitize": SANITIZE,
            "notebooks": rows}  # fmt: skip


def capstone(check: Check, limit: float) -> dict:
    """The gpu preset, from scratch (never resumed): results.json's scores, times and steps, and
    each stage's last log row (what a stopped run reached, and its speed)."""
    out = check.work / "capstone"
    shutil.rmtree(out, ignore_errors=True)
    sets = TINY if check.dry_run else {**CAPSTONE_GPU, **check.capstone_sets}
    device = ["--device", "cpu"] if check.dry_run else []
    cmd = ["-m", "minivlm", "capstone", "--preset", "gpu", *device, "--out", str(out), *_sets(sets)]
    res = {**check.command("capstone", cmd, limit), "sets": sets, "progress": {}}
    run_dir = out / "gpu-seed0"
    for log in sorted(run_dir.glob("*/metrics.jsonl")):
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        if rows:
            res["progress"][log.parent.name] = {k: rows[-1][k] for k in ("step", "time", "loss")}
    if (run_dir / "results.json").exists():
        summary = json.loads((run_dir / "results.json").read_text())
        keep = ("scores", "times", "steps_run", "data_seconds", "eval_seconds", "train_seconds")
        res.update({k: summary[k] for k in keep if k in summary})
    return res


def short_bench(name: str) -> Callable[[Check, float], dict]:
    """The part that runs bench/<name>.py's short mode (SHORT) and reads the JSON it wrote."""

    def part(check: Check, limit: float) -> dict:
        options = SHORT[name][1 if check.dry_run else 0]
        out = check.work / f"{name}.json"
        res = check.command(name, [f"bench/{name}.py", *options, "--out", str(out)], limit)
        figures = check.read(out.name)  # bf16.json: rows; vqa.json, lm.json: results
        rows = figures.get("rows", figures.get("results", []))
        return {**res, **{k: figures[k] for k in ("model",) if k in figures}, "rows": rows}

    part.__doc__ = f"bench/{name}.py, short: {' '.join(SHORT[name][0])}"
    return part


def overrun(check: Check, limit: float) -> dict:
    """Dry run only: a command (and a child of it) that outlives its limit, to be stopped."""
    child = (
        "import subprocess as s, sys; s.run([sys.executable, '-c', 'import time; time.sleep(60)'])"
    )
    return {**check.command("overrun", ["-c", child], limit), "expected": "timed_out"}


RUNNERS = {"notebooks": notebooks, "capstone": capstone, "bf16": short_bench("bf16"),
           "vqa": short_bench("vqa"), "lm": short_bench("lm"), "llava": short_bench("llava"),
           "overrun": overrun}  # fmt: skip


# ---------------------------------------------------------------- the check


def _results(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def device_info(dry_run: bool) -> dict:
    """The device, torch's CUDA and cuDNN versions and the GPU's memory (dry run: the CPU)."""
    if dry_run:
        return {"device": "cpu (dry run)", "cuda": None}
    props = torch.cuda.get_device_properties(0)
    memory = round(props.total_memory / 2**30, 1)
    cudnn = torch.backends.cudnn.version()
    return {"device": props.name, "cuda": torch.version.cuda, "cudnn": cudnn, "gpu_gib": memory}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("parts", nargs="*", help=f"any of {', '.join(PARTS)} (default: all)")
    p.add_argument("--dry-run", action="store_true", help="on a CPU, with cheap stand-ins")
    p.add_argument("--out", help="folder for gpu.json, logs and outputs")
    p.add_argument("--limit", action="append", default=[], metavar="PART=SECONDS")
    p.add_argument("--jobs", type=int, default=0, help="notebooks side by side (0: cores / 2)")
    p.add_argument("--capstone-set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a capstone field over CAPSTONE_GPU's, e.g. n_alt=20000")  # fmt: skip
    args = p.parse_args(argv)
    known = ("overrun", *PARTS) if args.dry_run else PARTS
    args.parts = args.parts or list(known)
    if bad := [n for n in args.parts if n not in known]:
        p.error(f"no part {', '.join(bad)}; expected some of {', '.join(known)}")
    args.limits = dict(LIMITS)
    for item in args.limit:
        name, _, value = item.partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if name not in known or not seconds > 0:
            p.error(f"--limit {item}: expected PART=SECONDS, PART one of {', '.join(known)}")
        args.limits[name] = seconds
    try:
        args.capstone_sets = parse_sets(args.capstone_set)
    except InputError as err:
        p.error(str(err))
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("error: bench/gpu_check.py needs a CUDA GPU and torch sees none "
              "(--dry-run checks the script on a CPU)", file=sys.stderr)  # fmt: skip
        return 2
    if args.dry_run:
        work = Path(args.out or tempfile.mkdtemp(prefix="gpu_check-"))
    else:
        work = Path(args.out or ROOT / "runs" / "gpu_check")
    target = work / "gpu.json" if args.out or args.dry_run else RESULTS / "gpu.json"
    if args.dry_run and target.resolve() == (RESULTS / "gpu.json").resolve():
        print("error: --dry-run never writes bench/results/gpu.json; pick another --out",
              file=sys.stderr)  # fmt: skip
        return 2
    check = Check(args.dry_run, work.resolve(), args.jobs, args.capstone_sets)
    cmd = shlex.join(["python", "bench/gpu_check.py", *argv])
    limits = {n: args.limits[n] for n in args.parts}
    info = {**device_info(args.dry_run), "dry_run": args.dry_run, "limits": limits,
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}  # fmt: skip
    print(f"GPU check on {info['device']}: {', '.join(f'{n} {s:g} s' for n, s in limits.items())} "
          f"(at most {sum(limits.values()):g} s); writing {target}", flush=True)  # fmt: skip
    results: dict[str, dict] = {}
    start = time.perf_counter()
    write_results("gpu", cmd, results, target, **info, seconds=0.0)
    for name in args.parts:
        print(f"{name}: up to {limits[name]:g} s", flush=True)
        t0 = time.perf_counter()
        try:
            res = RUNNERS[name](check, limits[name])
        except Exception as err:  # a broken part is a result too; the next part still runs
            res = {"status": "error", "timed_out": False, "error": f"{type(err).__name__}: {err}"}
        results[name] = {**res, "seconds": time.perf_counter() - t0, "limit_s": limits[name]}
        print(f"{name}: {res['status']} in {results[name]['seconds']:.0f} s", flush=True)
        write_results("gpu", cmd, results, target, **info, seconds=time.perf_counter() - start)
    ok = all(r["status"] == r.get("expected", "passed") for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
