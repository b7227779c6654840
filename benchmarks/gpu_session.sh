#!/usr/bin/env bash
# One prepared device run (a lent GPU machine, about 15 minutes of device time in all): the
# CUDA row of the prior sampler's speed, then a pretraining chunk on the GPU that continues
# the bundled PFN weights, exported (EMA) for the ship test on the CPU machine afterwards:
#   python benchmarks/pfn_quality.py --half select --seeds 5 --no-timing --checkpoint pfn_gpu.pt
# The machine's image has torch, numpy and PyYAML, all that engine.models needs; nothing else
# is installed there. Output goes to $OUT (the device tool's folder; ./gpu_out elsewhere).
#   bash benchmarks/gpu_session.sh [SECONDS_OF_PRETRAINING] [TOKENS_PER_BATCH] [INIT_FROM]
# INIT_FROM (default: the bundled weights) may be an earlier chunk's last.pt, carried along,
# so chunks accumulate across sessions (weights, optimizer and EMA go on).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_out}"; mkdir -p "$OUT"
BUDGET="${1:-360}"; TOKENS="${2:-24576}"; INIT="${3:-engine/models/checkpoints/pfn_small.pt}"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
PY="$(command -v python3 || command -v python)"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/device.txt"
"$PY" benchmarks/prior_speed.py --steps 10 --repeats 3 2>&1 | tee "$OUT/prior_speed.txt"
# The continuation config, with its run folder under $OUT, checkpoints every 50 steps (the
# chunk ends on SIGINT at the time budget), and TOKENS rows per batch (the GPU is idle at
# the CPU's 6,144).
sed -e "s#^run_dir: .*#run_dir: $OUT/run#" -e "s#^init_from: .*#init_from: $INIT#" \
    -e "s#^  tokens_per_batch: .*#  tokens_per_batch: $TOKENS#" \
    -e "s#^  checkpoint_every: .*#  checkpoint_every: 50#" \
    -e "s#^  eval_every: .*#  eval_every: 250#" \
    engine/models/pretrain_continue.yaml > "$OUT/pretrain_gpu.yaml"
timeout -s INT "$BUDGET" "$PY" -c "
from engine.models.pretrain import run_pretraining
try:
    run_pretraining('$OUT/pretrain_gpu.yaml')
except KeyboardInterrupt:
    print('time budget reached; the last checkpoint is $OUT/run/last.pt')
" 2>&1 | tee "$OUT/pretrain.log"
"$PY" -c "from engine.models.pretrain import export_weights; \
print(export_weights('$OUT/run/last.pt', '$OUT/pfn_gpu.pt'))" 2>&1 | tee -a "$OUT/pretrain.log"
