#!/usr/bin/env bash
# One command for a lent H100/H200 (issue 12): finishes in under 9 minutes and writes JSON lines to one folder.
#
#   bash benchmarks/gpu.sh [OUT_DIR]        (default: $OUT/gpu if $OUT is set, else benchmarks/results/gpu_<date>)
#
# The GPU image has jax (CUDA plugin), flax, optax, orbax and numpy but no PyPI access. Missing pure-Python
# packages (ml_collections) travel as wheels in .whl/ (make them here with `bash benchmarks/gpu_wheels.sh`).
# jax[cuda12] is installed only if jax has no GPU backend and pip can reach an index; otherwise that is noted.
set -uo pipefail
cd "$(dirname "$0")/.."
out_dir=${1:-${OUT:+$OUT/gpu}}
out_dir=${out_dir:-benchmarks/results/gpu_$(date -u +%Y%m%d)}
mkdir -p "$out_dir"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if ! python3 -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
  echo "jax has no GPU backend here; trying pip install 'jax[cuda12]'" | tee -a "$out_dir/setup.txt"
  python3 -m pip install -q 'jax[cuda12]' >>"$out_dir/setup.txt" 2>&1 || echo "jax[cuda12] could not be installed" | tee -a "$out_dir/setup.txt"
fi
python3 - <<'PY' 2>&1 | tee -a "$out_dir/setup.txt"
import importlib
for name in ('jax', 'flax', 'optax', 'ml_collections', 'numpy'):
  try:
    m = importlib.import_module(name); print(name, getattr(m, '__version__', '?'))
  except Exception as e:  # noqa
    print('MISSING', name, type(e).__name__, e)
import jax; print('backend', jax.default_backend(), jax.devices())
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$out_dir/setup.txt" 2>&1 || true
timeout 510 python3 benchmarks/gpu_suite.py --out-dir "$out_dir" --budget-s 450 "${@:2}"
echo "gpu_suite exit $? (results in $out_dir)"
# AOT peak of the same step compiled deviceless for an H100 (benchmarks/aot.py), beside the measured peaks of the
# suite above (same model, T=16, batch 1): compare aot.jsonl's peak_bytes with the suite's peak_bytes.
JAX_PLATFORMS=cpu timeout 240 python3 benchmarks/aot.py --config=configs/taichi256.py --target=cuda:h100x1 \
  --config.data.num_frames=16 --per_device_batch=1 --out="$out_dir/aot.jsonl" >>"$out_dir/setup.txt" 2>&1 \
  || echo "aot.py did not finish (needs the CUDA plugin and ml_collections)" | tee -a "$out_dir/setup.txt"
