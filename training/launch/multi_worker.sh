#!/usr/bin/env bash
# Trains across machines with MultiWorkerMirroredStrategy: run it on every machine at once,
# with the same WORKERS list and each machine's own INDEX (0 is the chief, which writes the
# run's files; the others write to temporary folders). Every worker needs the prepared
# cache at the config's data.cache_dir, and the same code and config.
#   WORKERS=gpu-a:12345,gpu-b:12345 INDEX=0 training/launch/multi_worker.sh [CONFIG] [options]
#   WORKERS=gpu-a:12345,gpu-b:12345 INDEX=1 training/launch/multi_worker.sh [CONFIG] [options]
# This builds TF_CONFIG (tf_config.py; tf_config.example.json shows its form); with
# TF_CONFIG already set, WORKERS and INDEX are not needed. PRECISION and XLA as in one_gpu.sh.
set -euo pipefail
config=${1:-training/configs/paper.yaml}
shift $(( $# > 0 ? 1 : 0 ))
metatasnet=${METATASNET:-metatasnet}
if [ -z "${TF_CONFIG:-}" ]; then
    : "${WORKERS:?set WORKERS=host:port,host:port,... (or TF_CONFIG)}"
    : "${INDEX:?set INDEX, the position of this machine in WORKERS, 0 = chief}"
    TF_CONFIG=$(python3 "$(dirname "$0")/tf_config.py" "$WORKERS" "$INDEX")
    export TF_CONFIG
fi
output=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1])).get('output_dir', 'runs/metatasnet'))" "$config")
resume=()
[ -f "$output/checkpoints/state.json" ] && resume=(--resume)
exec $metatasnet train --config "$config" --strategy multi_worker --precision "${PRECISION:-mixed_float16}" \
    ${XLA:---xla} "${resume[@]}" "$@"
