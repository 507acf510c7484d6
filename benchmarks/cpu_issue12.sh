#!/usr/bin/env bash
# The CPU measurements quoted in the README (issue 12), in one go on an otherwise idle 2-core machine:
#   bash benchmarks/cpu_issue12.sh /path/to/official/FrameDiT [OUT_DIR]
# Every figure is a ratio measured side by side in one process (ours vs official, or design vs design).
# Allocator: with torch and XLA in one process, glibc malloc hands XLA's per-step buffers back to the kernel and
# ours pays ~190k page faults per step (0.7 s of 3.0 s at Latte-S/2 depth 12); tcmalloc keeps them. Both sides
# run under the same allocator; it is recorded in every header ('ld_preload'). apt install libtcmalloc-minimal4.
set -euo pipefail
cd "$(dirname "$0")/.."
official=${1:?usage: cpu_issue12.sh OFFICIAL_SRC [OUT_DIR]}
out=${2:-benchmarks/results}
mkdir -p "$out"
tc=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
if [[ -n "$tc" && -z "${LD_PRELOAD:-}" ]]; then export LD_PRELOAD="$tc"; fi
# The CPU-best settings: unrolled blocks (stacking the saved activations costs the scan 1-15% at depth 12 on CPU;
# model.scan_blocks stays True by default for compile time on accelerators), no remat (with unrolled blocks and the
# barrier it beats dots_with_no_batch_dims_saveable by 0-11%, remat_barrier_cpu.jsonl), cpu_kernels=auto (on for CPU; was grad_barrier).
best=(--ours-override remat_policy=none --ours-override scan_blocks=False)
vs() { python benchmarks/vs_official.py --official-src "$official" --frames 16 --batch 2 --latent 16 --threads 2 \
         --rounds 3 "$@"; }
# 1. ours vs official, S size depth 12, B=2, F=16, 16x16 latents, fp32, 2 threads: every design.
# 5 rounds: the first timed round of either side is often an outlier (up to 2x), so 3 rounds leave one sample.
vs --designs local,g,h_concat,h_gated,full3d --depth 12 "${best[@]}" --rounds 5 --out "$out/vs_official_cpu.jsonl"
# 1b. the same with the default scanned blocks (scan_blocks=True), side by side with the official step again.
vs --designs local,g,h_concat --depth 12 --ours-override remat_policy=dots_with_no_batch_dims_saveable \
   --out "$out/vs_official_cpu_scanned.jsonl"
# 2. the "before": the step as landed before issue 12 (unrolled blocks, no barrier, no remat), same official step.
vs --designs local --depth 12 --ours-override scan_blocks=False --ours-override cpu_kernels=off \
   --ours-override remat_policy=none \
   --out "$out/vs_official_cpu_before.jsonl"
# 3. depth 4 (with 1.: depth 12 / depth 4).
vs --designs local,g,h_concat --depth 4 "${best[@]}" --out "$out/vs_official_cpu_depth4.jsonl"
# 4. step time vs T for LF, G, H (S width, depth 2, B=1).
python benchmarks/step_time.py --tiny --designs local,g,h_concat --frames 16,32,64 --sizes 16 --rounds 2 \
  --remat-policy dots_with_no_batch_dims_saveable --no-scan-blocks --out "$out/step_time_vs_T_cpu.jsonl"
# 5. compile time of the XL/2 train step, scanned vs unrolled.
python benchmarks/compile_time.py --models FrameDiTH-XL/128-512/2-concat --latent 32 --frames 16 \
  --out "$out/compile_time_cpu.jsonl"
# 6. remat policy x cotangent barrier, side by side: the issue-12 config (depth 12, B=2) and the demo's shape.
python benchmarks/variants.py --designs local,g,h_concat --depth 12 --batch 2 --frames 16 --sizes 16 --rounds 2 \
  --no-scan-blocks --variants none:off,none:on,dots_with_no_batch_dims_saveable:off,dots_with_no_batch_dims_saveable:on \
  --out "$out/remat_barrier_cpu.jsonl"
python benchmarks/variants.py --designs h_concat --sizes 32 --patch 4 --hidden-size 128 --depth 4 --num-heads 4 \
  --batch 8 --frames 10 --rounds 3 \
  --no-scan-blocks --variants none:off,none:on,dots_with_no_batch_dims_saveable:off,dots_with_no_batch_dims_saveable:on \
  --out "$out/remat_barrier_cpu.jsonl"
# 7. where the LF step's time goes (summed XLA op time per step), before (no barrier, hence no matmul_vjp) and after.
for gb in off on; do
  python benchmarks/profile_ops.py --tiny --designs local --frames 16 --sizes 16 --depth 12 --batch 2 \
    --no-scan-blocks --remat-policy none --cpu-kernels "$gb" --steps 2 --out "$out/profile_ops_cpu.jsonl"
done
