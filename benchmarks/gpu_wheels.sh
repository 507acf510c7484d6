#!/usr/bin/env bash
# Downloads the pure-Python wheels that benchmarks/gpu.sh needs on the GPU image (Python 3.12) into .whl/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl \
  ml_collections
ls -la .whl
