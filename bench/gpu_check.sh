#!/usr/bin/env bash
# Everything a machine with a CUDA GPU checks, in one go (about 5–8 minutes on an H100):
#   1. the GPU suite (tests/gpu) on the card, in float16;
#   2. bench/sampling.py --device cuda: LatentLoom against diffusers on the random full-size
#      SD 1.5 file, 512², 20 Euler steps, float16 and bfloat16, two rounds each.
# The benchmark's JSON goes to stdout and to tmp/gpu_check/sampling_cuda.json; the suite's
# report to stderr. Stops at the first failure. Needs the environment of tools/setup.sh (a
# CUDA build of torch: the pinned one from PyPI is) and no network. Extra arguments go to
# bench/sampling.py (e.g. --rounds 1 when time is short).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1
if ! "$PYTHON" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: no CUDA device (torch.cuda.is_available() is false); nothing to check" >&2
    exit 2
fi
mkdir -p tmp/gpu_check
echo "== GPU suite" >&2
timeout 300 "$PYTHON" -m pytest tests/gpu -q -p no:cacheprovider -rs >&2
echo "== sampling benchmark on CUDA" >&2
timeout 420 "$PYTHON" bench/sampling.py --device cuda --size 512 --steps 20 --rounds 2 "$@" \
    | tee tmp/gpu_check/sampling_cuda.json
