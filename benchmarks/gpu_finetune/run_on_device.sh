#!/usr/bin/env bash
# The one prepared GPU run of issue 12: fine-tune model v2's U²-Net preset (every weight)
# on one GPU for MINUTES, then pack the result to come back (benchmarks/gpu_finetune/).
#
#   device run, carry [".gpu"]:  bash benchmarks/gpu_finetune/run_on_device.sh
#   smoke test here (CPU):       SMOKE=1 bash benchmarks/gpu_finetune/run_on_device.sh
#
# Needs .gpu/ from prepare.py. Writes under $OUT: gpu.txt, run.log, the history and loss
# plot, and liwi-v2-u2net.delta.partNN (carry_back.py unpack rebuilds the checkpoint).
set -euo pipefail
OUT=${OUT:-/tmp/liwi_gpu_out}
SMOKE=${SMOKE:-0}
W=/tmp/liwi_gpu
if [ "$SMOKE" = 1 ]; then  # a few samples, a few steps, on this CPU
  PROCS=1 N3=6 N2=6 MINUTES=0.3 DEVICE=cpu BATCH=2 VAL=4 PY=${PY:-.venv/bin/python}
fi
PROCS=${PROCS:-8}      # synth processes per table kind (the machine has 16 cores)
N3=${N3:-220}          # 3-layer stacks per process (two objects: two peeling problems each)
N2=${N2:-180}          # 2-layer stacks per process
MINUTES=${MINUTES:-6}  # fine-tuning wall clock (the issue allows at most 8)
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-16}
VAL=${VAL:-192}
PY=${PY:-python3}
t0=$(date +%s)
log() { echo "[gpu-run $(($(date +%s) - t0))s] $*"; }
mkdir -p "$OUT" "$W"
rm -rf "$W/d" "$W/cache"
if ! $PY -c "import pydantic" 2>/dev/null; then  # the GPU image has no pydantic
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/platform PYTHONUNBUFFERED=1
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no GPU") \
  > "$OUT/gpu.txt" 2>&1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
log "synth: $PROCS x $N3 3-layer + $PROCS x $N2 2-layer stacks at 320 px"
tables=()
for ((i = 0; i < PROCS; i++)); do
  for kind in 3 2; do
    n=$N3 && [ $kind = 2 ] && n=$N2
    d="$W/d/l${kind}_$i"
    tables+=("$d/table")
    $PY -m liwi.cli synth --out "$d" --n "$n" --layers $kind --size 320 \
      --seed $((300 + 10 * kind + i)) --backgrounds .gpu/bgs --cutouts .gpu/clipart \
      --cutout-share 0.5 --quiet > "$W/synth_${kind}_$i.log" 2>&1 &
  done
done
wait
log "synth done"
$PY - "$W/ft.yaml" "${tables[@]}" <<PYEOF
import sys, yaml
cfg = yaml.safe_load(open("jobs/configs/finetune_v2_u2net_gpu.yaml"))
cfg.update(tables=sys.argv[2:], max_minutes=float("$MINUTES"), device="$DEVICE",
           batch_size=int("$BATCH"), val_samples=int("$VAL"))
yaml.safe_dump(cfg, open(sys.argv[1], "w"))
PYEOF
# the progress bar's redraws are dropped from the log (the history has every step)
$PY -m liwi.cli finetune --config "$W/ft.yaml" 2>&1 | tr '\r' '\n' \
  | { grep -v -E "^(finetune|train|val): .*\]$" || true; } | tee "$OUT/run.log" | tail -n 40
log "fine-tune done"
for f in history.jsonl loss.png; do cp "$W/liwi-v2-u2net.$f" "$OUT/" 2>/dev/null || true; done
$PY benchmarks/gpu_finetune/carry_back.py pack "$W/liwi-v2-u2net.pt" .gpu/u2net_trunk.int8 \
  "$OUT/liwi-v2-u2net.delta"
log "packed"
