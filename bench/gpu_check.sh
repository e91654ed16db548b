#!/usr/bin/env bash
# Issue 24's GPU check: finds (or makes) the venv, then runs bench/gpu_check.py with the
# arguments given. Run from anywhere; on a CUDA machine, all parts within about 7 minutes:
#     bash bench/gpu_check.sh [notebooks] [capstone] [bf16] [vqa] [lm] [--limit PART=SECONDS]
#     bash bench/gpu_check.sh --dry-run          (on a CPU: the script's own check, ~40 s)
# PY names the Python to use (default .venv/bin/python, made with `pip install -e '.[dev]'` if
# missing). See `python bench/gpu_check.py --help` and its docstring for the parts and limits.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if ! test -x "$PY" && ! command -v "$PY" >/dev/null; then
    python3 -m venv .venv && .venv/bin/pip install --quiet -e '.[dev]'
    PY=.venv/bin/python
fi
exec "$PY" bench/gpu_check.py "$@"
