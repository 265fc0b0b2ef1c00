#!/usr/bin/env bash
# The CUDA checks in one go, on a machine with a GPU: the CUDA test module and the benchmark.
#   scripts/gpu_check.sh OUT_FOLDER
# writes OUT_FOLDER/test_cuda.log (pytest, tests/test_cuda.py), OUT_FOLDER/nvidia-smi.txt,
# OUT_FOLDER/bench.json and OUT_FOLDER/bench.log (python -m tsrobust.bench --device cuda --json-file).
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUT_FOLDER}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible to torch'" || exit 1
timeout 900 python -m pytest -q -rs tests/test_cuda.py 2>&1 | tee "$OUT/test_cuda.log"
tests=${PIPESTATUS[0]}
timeout 900 python -m tsrobust.bench --device cuda --json-file "$OUT/bench.json" > "$OUT/bench.log" 2>&1
bench=$?
echo "tests: exit $tests; bench: exit $bench (outputs in $OUT)"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
