#!/usr/bin/env bash
# Makes the bundled default model (tf_metatasnet/assets/default_model.keras) from nothing:
# renders a music-like dataset with FluidSynth, prepares it, trains the `compact` preset
# with N=80 and 6-layer stacks (about 90 minutes on 2 CPU cores; run it again after an interruption
# and it resumes), copies the best model into the package and scores that file on the
# held-out test split.
# Needs: apt-get install fluidsynth fluid-soundfont-gm ffmpeg; pip install -e .
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=data/fluidsynth
CACHE=data/fluidsynth-cache
RUN=runs/default_model

if [ ! -f "$DATA/test/Toy Artist - Toy Test Song 010/mixture.wav" ]; then
    metatasnet make-toy-dataset --renderer fluidsynth -o "$DATA" --tracks 64 --test-tracks 10 --seconds 30
fi
if [ ! -f "$CACHE/prepared.json" ]; then
    metatasnet prepare --musdb "$DATA" --is-wav -o "$CACHE" --crop-seconds 2
fi
CONFIG=training/configs/default_model.yaml
# Train; or resume an interrupted run; or go on to the scores when the run is complete.
if [ ! -f "$RUN/checkpoints/state.json" ]; then
    metatasnet train --config "$CONFIG"
elif python -c "import json, sys, yaml; sys.exit(json.load(open(sys.argv[1]))['epoch'] >= yaml.safe_load(open(sys.argv[2]))['epochs'])" "$RUN/checkpoints/state.json" "$CONFIG"; then
    metatasnet train --config "$CONFIG" --resume
fi
# The model alone (no optimizer state), weights in float16, deflated at level 9: 3.8 MB.
python -c "import tf_metatasnet as tm; tm.save_model(tm.load_model('$RUN/best.keras'), 'tf_metatasnet/assets/default_model.keras', recompress=True, weights_dtype='float16')"
# Scores of the shipped file on the held-out test split.
metatasnet evaluate --musdb "$DATA" --is-wav --model tf_metatasnet/assets/default_model.keras --subset test -o "$RUN/evaluation"
# The floor any model must beat: every stem = the mixture, or a quarter of it.
metatasnet evaluate --musdb "$DATA" --is-wav --baseline mixture --subset test -o runs/baseline-mixture
metatasnet evaluate --musdb "$DATA" --is-wav --baseline mixture/4 --subset test -o runs/baseline-mixture-4
cp "$CONFIG" tf_metatasnet/assets/.default_model.yaml.tmp
mv tf_metatasnet/assets/.default_model.yaml.tmp tf_metatasnet/assets/default_model.yaml
echo "default model: tf_metatasnet/assets/default_model.keras ($(du -h tf_metatasnet/assets/default_model.keras | cut -f1))"
