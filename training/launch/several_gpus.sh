#!/usr/bin/env bash
# Trains on every GPU of this machine with MirroredStrategy (data parallel: each GPU takes
# data.batch_size / GPUs of every batch; the config's batch size must divide evenly),
# resuming the run if it was interrupted.
#   training/launch/several_gpus.sh [CONFIG] [more metatasnet train options]
# CONFIG defaults to training/configs/paper.yaml (the authors trained it on two GPUs).
# CUDA_VISIBLE_DEVICES=0,1 chooses the GPUs; PRECISION=float32 or XLA=--no-xla turn off
# mixed precision or XLA.
set -euo pipefail
config=${1:-training/configs/paper.yaml}
shift $(( $# > 0 ? 1 : 0 ))
metatasnet=${METATASNET:-metatasnet}
output=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1])).get('output_dir', 'runs/metatasnet'))" "$config")
resume=()
[ -f "$output/checkpoints/state.json" ] && resume=(--resume)
exec $metatasnet train --config "$config" --strategy mirrored --precision "${PRECISION:-mixed_float16}" \
    ${XLA:---xla} "${resume[@]}" "$@"
