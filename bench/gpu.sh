#!/usr/bin/env bash
# GPU benchmark for the device machine: xit's training loop on an XLM-R-Large-shaped encoder in bf16, tokens/s
# and MFU on one GPU and, where the machine has several, on all of them (bench/gpu_mfu.py says how it counts).
# Usage: bash bench/gpu.sh [extra gpu_mfu.py options], e.g. --seq-len 512 --batch-size 16
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "bench/gpu.sh: no CUDA device visible (bench/gpu_mfu.py --shape tiny runs on CPU)")'
exec "$PY" bench/gpu_mfu.py --shape large --seq-len 256 --batch-size 32 --steps 40 --warmup-steps 10 "$@"
