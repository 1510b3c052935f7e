#!/usr/bin/env bash
# Exports a .keras model for TF Serving and phones: export/export_all.sh MODEL OUT
set -euo pipefail
model=${1:?usage: export/export_all.sh MODEL OUT}
out=${2:?usage: export/export_all.sh MODEL OUT}
metatasnet export saved-model --model "$model" -o "$out/serving"
metatasnet export tflite --model "$model" -o "$out/tflite" --quantization float32 float16 dynamic int8
