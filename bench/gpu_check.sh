#!/usr/bin/env bash
# On a machine with CUDA: strict nbval over every notebook, then the capstone's gpu preset.
# Prints the wall time of each part. Run from the repository root:
#     bash bench/gpu_check.sh [notebooks] [capstone]     (both when none is named)
# PY names the Python to use (default .venv/bin/python, made with `pip install -e '.[dev]'` if
# missing). With pytest-xdist installed, the notebooks run side by side, one kernel each
# (`--dist loadscope` keeps a notebook's cells in order, in one kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
parts=${*:-notebooks capstone}
PY=${PY:-.venv/bin/python}
test -x "$PY" || command -v "$PY" >/dev/null || {
    python3 -m venv .venv && .venv/bin/pip install --quiet -e '.[dev]'
    PY=.venv/bin/python
}
"$PY" - <<'PYEOF'
import torch
assert torch.cuda.is_available(), "bench/gpu_check.sh needs a CUDA GPU; torch sees none"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PYEOF
mkdir -p bench/results
if [[ " $parts " == *" notebooks "* ]]; then
    parallel=()
    if "$PY" -c "import xdist" 2>/dev/null; then
        n=$(ls notebooks/*.ipynb | wc -l)
        parallel=(-n "$(( n < $(nproc) ? n : $(nproc) ))" --dist loadscope)
        # kernels side by side: 2 threads each (as on the course's 2-core CPU), not nproc each
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / n > 2 ? $(nproc) / n : 2 ))}
    fi
    # the committed outputs hold inline figures; MPLBACKEND=Agg would make plt.show() print none
    unset MPLBACKEND
    t0=$(date +%s)
    "$PY" -m pytest notebooks --nbval --nbval-current-env \
        --nbval-sanitize-with notebooks/sanitize.cfg -q -p no:cacheprovider "${parallel[@]}"
    echo "notebooks under strict nbval on the GPU machine: $(( $(date +%s) - t0 )) s"
fi
if [[ " $parts " == *" capstone "* ]]; then
    t1=$(date +%s)
    "$PY" -m minivlm capstone --preset gpu --out runs/gpu_check | tee bench/results/gpu_check.txt
    echo "capstone gpu preset: $(( $(date +%s) - t1 )) s"
fi
