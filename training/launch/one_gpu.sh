#!/usr/bin/env bash
# Trains on one GPU (or the CPU when there is none), resuming the run if it was interrupted.
#   training/launch/one_gpu.sh [CONFIG] [more metatasnet train options]
# CONFIG defaults to training/configs/paper.yaml. On a GPU, mixed precision and XLA are on;
# PRECISION=float32 or XLA=--no-xla turn them off.
set -euo pipefail
config=${1:-training/configs/paper.yaml}
shift $(( $# > 0 ? 1 : 0 ))
metatasnet=${METATASNET:-metatasnet}
precision=${PRECISION:-}
if [ -z "$precision" ]; then   # mixed precision on a GPU; on a CPU float16 would be slower
    precision=float32
    if python3 -c "import sys, tensorflow as tf; sys.exit(not tf.config.list_physical_devices('GPU'))" 2>/dev/null; then
        precision=mixed_float16
    fi
fi
output=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1])).get('output_dir', 'runs/metatasnet'))" "$config")
resume=()
[ -f "$output/checkpoints/state.json" ] && resume=(--resume)
exec $metatasnet train --config "$config" --strategy default --precision "$precision" ${XLA:---xla} "${resume[@]}" "$@"
