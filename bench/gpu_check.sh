#!/usr/bin/env bash
# On a machine with CUDA: strict nbval over every notebook, then the capstone's gpu preset.
# Prints the wall time of each part. Run from the repository root: bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
test -x "$PY" || { python3 -m venv .venv && .venv/bin/pip install --quiet -e '.[dev]'; PY=.venv/bin/python; }
"$PY" - <<'PYEOF'
import torch
assert torch.cuda.is_available(), "bench/gpu_check.sh needs a CUDA GPU; torch sees none"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PYEOF
mkdir -p bench/results
t0=$(date +%s)
"$PY" -m pytest notebooks --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg -q
t1=$(date +%s)
echo "notebooks under strict nbval on the GPU: $((t1 - t0)) s"
"$PY" -m minivlm capstone --preset gpu --out runs/gpu_check | tee bench/results/gpu_check.txt
t2=$(date +%s)
echo "capstone gpu preset: $((t2 - t1)) s"
