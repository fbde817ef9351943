#!/usr/bin/env bash
# One command on a GPU machine, under 5 minutes: GPU preprocessing parity, torch FP32/FP16 and
# CUDA graphs at batch 1 and 8, onnxruntime's CUDA provider if present, the pipeline on a video
# (needs PyAV), 8 and 16 batched streams in one process against the engine alone at that
# batch, 1080p decoding on the CPU against NVDEC, and, where TensorRT is installed, one FP16 engine per input size (1-8 batch
# profile) with parity and timings. Figures go to $OUT/gpu_check.json (or ./gpu-check/),
# rewritten after every step; the last line says what passed and what was not tested.
# Without a CUDA device it ends with "no CUDA device: nothing measured" and exit status 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PYTHON" scripts/gpu_check.py "$@"
