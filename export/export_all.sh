#!/usr/bin/env bash
# Exports a model for every target: export/export_all.sh MODEL OUT
#   OUT/serving/          SavedModels in TF Serving's layout (all stems, and one per
#                         instrument) and models.config; export/serve.sh OUT/serving serves them
#   OUT/tflite/           per-instrument TFLite models (+ metadata JSON) and export_report.json
#   OUT/android_assets/   the dynamic-range TFLite files the Android demo loads; copy them into
#                         android_demo/app/src/main/assets (ANDROID_ASSETS=that folder does it)
# MODEL is a .keras model or the authors' .pt checkpoint. INSTRUMENTS (default: all four),
# QUANTIZATIONS (default: float32 float16 dynamic int8_weights int8) and CALIBRATION (a
# prepared cache or audio files for int8 and GPTQ; default: generated music) narrow or
# feed the TFLite export, TFLITE_OPTIONS adds to it (e.g. --no-report); VERSION (default 1)
# is the SavedModels' version folder.
set -euo pipefail
model=${1:?usage: export/export_all.sh MODEL OUT}
out=${2:?usage: export/export_all.sh MODEL OUT}
metatasnet=${METATASNET:-metatasnet}
read -r -a instruments <<< "${INSTRUMENTS:-drums bass other vocals}"
read -r -a quantizations <<< "${QUANTIZATIONS:-float32 float16 dynamic int8_weights int8}"
read -r -a extra <<< "${TFLITE_OPTIONS:-}"
[ -n "${CALIBRATION:-}" ] && extra+=(--calibration $CALIBRATION)

# --overwrite: running the recipe again replaces its own SavedModels (never anything else).
$metatasnet export saved-model --model "$model" -o "$out/serving" --version "${VERSION:-1}" --overwrite \
    --instrument "${instruments[@]}"
$metatasnet export tflite --model "$model" -o "$out/tflite" --instrument "${instruments[@]}" \
    --quantization "${quantizations[@]}" "${extra[@]}"

# The Android demo runs one dynamic-range model per instrument (its README, "Models").
mkdir -p "$out/android_assets"
for instrument in "${instruments[@]}"; do
    for ext in tflite json; do
        file="$out/tflite/${instrument}_dynamic.$ext"
        if [ -f "$file" ]; then cp "$file" "$out/android_assets/"; fi
    done
done
if [ -n "${ANDROID_ASSETS:-}" ]; then
    mkdir -p "$ANDROID_ASSETS" && cp "$out"/android_assets/* "$ANDROID_ASSETS"/
fi
echo "TF Serving: export/serve.sh $out/serving   (models.config: $out/serving/models.config)"
echo "Android:    $out/android_assets -> android_demo/app/src/main/assets"
