#!/usr/bin/env bash
# Starts the stock TF Serving server on an export (export/export_all.sh or
# `metatasnet export saved-model`): export/serve.sh BASE_DIR
# With Docker (the tensorflow/serving image); or, where TF Serving is installed,
# SERVER=tensorflow_model_server runs the binary directly. REST on 8501, gRPC on 8500:
#   metatasnet separate song.mp3 -o out --server http://localhost:8501/v1/models/metatasnet
#   metatasnet separate song.mp3 -o out --server grpc://localhost:8500/metatasnet_vocals
# models.config names every model under /models, where the container sees BASE_DIR; for
# the binary, the paths are rewritten to BASE_DIR in a temporary copy.
set -euo pipefail
base=$(cd "${1:?usage: export/serve.sh BASE_DIR}" && pwd)
[ -f "$base/models.config" ] || { echo "$base/models.config: missing (export first)" >&2; exit 1; }
if [ "${SERVER:-docker}" = docker ]; then
    exec docker run --rm -p 8501:8501 -p 8500:8500 -v "$base:/models" tensorflow/serving \
        --model_config_file=/models/models.config
fi
config=$(mktemp --suffix=.config)
trap 'rm -f "$config"' EXIT
sed "s#base_path: \"/models/#base_path: \"$base/#" "$base/models.config" > "$config"
"$SERVER" --port=8500 --rest_api_port=8501 --model_config_file="$config"
