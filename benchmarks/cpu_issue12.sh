#!/usr/bin/env bash
# The CPU measurements quoted in the README (issue 12), in one go on an otherwise idle 2-core machine:
#   bash benchmarks/cpu_issue12.sh /path/to/official/FrameDiT [OUT_DIR]
# Every figure is a ratio measured side by side in one process (ours vs official, or design vs design).
set -euo pipefail
cd "$(dirname "$0")/.."
official=${1:?usage: cpu_issue12.sh OFFICIAL_SRC [OUT_DIR]}
out=${2:-benchmarks/results}
mkdir -p "$out"
best=(--ours-override scan_blocks=True --ours-override remat_policy=dots_with_no_batch_dims_saveable)
# 1. ours vs official, S size depth 12, B=2, F=16, 16x16 latents, fp32, 2 threads: every design.
python benchmarks/vs_official.py --official-src "$official" --designs local,g,h_concat,h_gated,full3d \
  --frames 16 --depth 12 --batch 2 --latent 16 --threads 2 --rounds 3 "${best[@]}" --out "$out/vs_official_cpu.jsonl"
# 2. the landed step (unrolled blocks, no remat) against the same official step: the "before".
python benchmarks/vs_official.py --official-src "$official" --designs local --frames 16 --depth 12 --batch 2 \
  --latent 16 --threads 2 --rounds 3 --ours-override scan_blocks=False --out "$out/vs_official_cpu_unrolled.jsonl"
# 3. depth 4 (with 1., depth 12 / depth 4).
python benchmarks/vs_official.py --official-src "$official" --designs local,g,h_concat --frames 16 --depth 4 \
  --batch 2 --latent 16 --threads 2 --rounds 3 "${best[@]}" --out "$out/vs_official_cpu_depth4.jsonl"
# 4. step time vs T for LF, G, H (S width, depth 2, B=1).
python benchmarks/step_time.py --tiny --designs local,g,h_concat --frames 16,32,64 --sizes 16 --rounds 2 \
  --remat-policy dots_with_no_batch_dims_saveable --out "$out/step_time_vs_T_cpu.jsonl"
# 5. compile time of the XL/2 train step, scanned vs unrolled.
python benchmarks/compile_time.py --models FrameDiTH-XL/128-512/2-concat --latent 32 --frames 16 \
  --out "$out/compile_time_cpu.jsonl"
