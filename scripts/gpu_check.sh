#!/usr/bin/env bash
# One command on a GPU machine (under 5 minutes): builds or loads the TensorRT FP16 engine where
# TensorRT exists, checks parity against PyTorch FP32 on rendered frames, and prints latency and
# throughput for tensorrt-fp16, torch-fp16 and torch-fp32 at batch 1 and 8 (320 and 640).
# Without TensorRT it runs the torch-CUDA parts. Figures go to $OUT/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" scripts/gpu_check.py "$@"
