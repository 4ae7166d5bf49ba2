#!/usr/bin/env bash
# The lab's CUDA ladder, as one prepared script for a session that is lent a GPU (one H100/H200).
#
#   bash benchmarks/lab_cuda.sh            # ≈ 10 minutes: preset gpu, 7 budgets 1e12 … 1e15 FLOPs (3 OOMs),
#                                          # direct and chain-of-thought, 400 held-out problems, n = 32
#
# Needs a CUDA build of torch 2.13.0 in the environment (the test extras pin the CPU build):
#   pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
# Writes everything under $OUT (default lab-gpu/): the database, checkpoints, figure.png, report.html,
# summary.json, and the sampling benchmark on the GPU. Rerunning resumes; nothing is trained twice.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-lab-gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python}
"$PY" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"no CUDA device for torch {torch.__version__}: install a CUDA build (see the header of this script)")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
PY
nvidia-smi --query-gpu=name,memory.total,power.draw --format=csv || true
"$PY" -m oomlab lab plan --device cuda | tee "$OUT/plan.txt"
start=$(date +%s)
"$PY" -m oomlab lab run --device cuda --db "$OUT/oomlab.db" --out "$OUT" 2>&1 | tee "$OUT/run.txt"
echo "lab wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/run.txt"
"$PY" benchmarks/torch_sampling.py --device cuda --n 64 | tee "$OUT/torch_sampling.txt"
"$PY" -m oomlab ooms --lab "$OUT/oomlab.db" | tee "$OUT/ooms.txt"
