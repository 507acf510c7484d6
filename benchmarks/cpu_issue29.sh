#!/usr/bin/env bash
# Every committed figure of issue 29, in one go on an otherwise idle 2-core CPU machine (about 30 minutes):
#   bash benchmarks/cpu_issue29.sh /path/to/official/FrameDiT [OUT_DIR]
# Each step appends JSON lines (with a header naming cpu_model, commit and allocator) under OUT_DIR
# (default benchmarks/results). Ours runs with DEFAULT flags throughout: model.scan_blocks / remat_policy /
# cpu_kernels = 'auto' (framedit_jax/models/cpu/defaults.py), i.e. what a user gets without knowing the flags.
# Cut to fit 35 minutes on 2 cores: vs_official for the three designs with targets (LF, G, H concat; h_gated and
# Full 3D are in the issue-12 runs), sampling for Latte-S/2 only with one timed call per cell, the demo trained
# for its 300 IDDPM steps, the profiles for 2 steps.
set -euo pipefail
cd "$(dirname "$0")/.."
official=${1:?usage: cpu_issue29.sh OFFICIAL_SRC [OUT_DIR]}
out=${2:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
tc=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
if [[ -n "$tc" && -z "${LD_PRELOAD:-}" ]]; then export LD_PRELOAD="$tc"; fi  # as cpu_issue12.sh (recorded)
lap() { echo "# cpu_issue29: $1 done at ${SECONDS}s" >&2; }

# 1. ours (default flags) vs official train step, S size, depth 12, B=2, F=16, 16x16 latents, fp32, 2 threads,
#    5 interleaved rounds (the first timed round of either side is an outlier). ~4 min.
python benchmarks/vs_official.py --official-src "$official" --designs local,g,h_concat --frames 16 --depth 12 \
  --batch 2 --latent 16 --threads 2 --warmup 4 --rounds 5 --out "$out/vs_official_cpu.jsonl"
lap vs_official

# 2. sampling, official sample.py loop vs ours (jitted lax.scan), same weights and noise, Latte-S/2 depth 12,
#    16 frames, 16x16 latents, B = 1 and 4, DDPM-250 and DDIM-50, plus ours with DPM-Solver++(2M)-20. ~15 min.
python benchmarks/sampling_vs_official.py --official-src "$official" --designs local --depth 12 --frames 16 \
  --latent 16 --batches 1,4 --samplers ddpm250,ddim50,dpmpp20 --threads 2 --out "$out/sampling_vs_official_cpu.jsonl"
lap sampling

# 3. the demo with demo.with_iddpm's settings (an epsilon model, so that DPM-Solver++ applies; 300 steps), then
#    DPM-Solver++(2M)-20 vs DDPM-250 FVD at N=8 with the real-vs-real baseline. ~7 min.
demo=$(mktemp -d /tmp/cpu_issue29_demo.XXXXXX)
python launch/train.py --config=configs/demo.py --workdir="$demo" \
  --config.model.learn_sigma=True --config.diffusion.learn_sigma=True --config.diffusion.objective=iddpm \
  --config.diffusion.rf_shift=1.0 --config.optim.lr=3e-4 --config.optim.warmup_steps=0 --config.train.num_steps=300 \
  --config.sample.sampler=ddpm --config.sample.num_steps=100
python benchmarks/sampling_vs_official.py --demo-workdir "$demo" --fvd-num 8 --threads 2 \
  --out "$out/sampling_vs_official_cpu.jsonl"
rm -rf "$demo"
lap demo_fvd

# 4. where the default-flag LF and H steps spend their time on this CPU (summed XLA op time, 2 steps). ~3 min.
for d in local h_concat; do
  python benchmarks/profile_ops.py --tiny --designs "$d" --frames 16 --sizes 16 --depth 12 --batch 2 --steps 2 \
    --out "$out/profile_ops_cpu.jsonl"
done
lap profiles
