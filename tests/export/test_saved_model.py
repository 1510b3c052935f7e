"""SavedModels for TF Serving: layout, signature, and running without this project."""

import os
import subprocess
import sys

import numpy as np
import pytest
from signals import random_mixtures

from tf_metatasnet.export.folding import fold_generator
from tf_metatasnet.export.saved_model import models_config

SOURCES = ("drums", "bass", "other", "vocals")

# Runs in a fresh interpreter that cannot import tf_metatasnet (blocked, and -I drops the
# working directory and PYTHONPATH): only TensorFlow loads and runs the SavedModel.
_RUNNER = """
import json, sys
sys.modules["tf_metatasnet"] = None
import numpy as np, tensorflow as tf
folder, inputs_path, outputs_path = sys.argv[1:]
signature = tf.saved_model.load(folder).signatures["serving_default"]
with np.load(inputs_path) as data:
    outputs = signature(**{name: tf.constant(data[name]) for name in data.files})
np.savez(outputs_path, **{name: value.numpy() for name, value in outputs.items()})
assert "tf_metatasnet" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
"""


def _run_without_project(folder, inputs, tmp_path):
    np.savez(tmp_path / "inputs.npz", **inputs)
    subprocess.run([sys.executable, "-I", "-c", _RUNNER, str(folder), str(tmp_path / "inputs.npz"),
                    str(tmp_path / "outputs.npz")], check=True, cwd=tmp_path,
                   env={"PATH": os.environ["PATH"], "TF_CPP_MIN_LOG_LEVEL": "2"})
    with np.load(tmp_path / "outputs.npz") as data:
        return {name: data[name] for name in data.files}


def _inputs(model, batch, frames, seed=0):
    mixtures = random_mixtures(model.config, batch=batch, frames=frames, seed=seed)
    return mixtures, {f"mixture_{rate}": m for rate, m in zip(model.config.stage_rates, mixtures)}


def test_layout_and_models_config(tiny_export):
    _, base = tiny_export
    for name in ("metatasnet", "metatasnet_vocals"):
        assert (base / name / "3" / "saved_model.pb").is_file()
    config = (base / "models.config").read_text()
    assert config == models_config({"metatasnet": "/models/metatasnet",
                                    "metatasnet_vocals": "/models/metatasnet_vocals"})
    assert 'name: "metatasnet_vocals"' in config and "model_config_list {" in config
    assert not [p for p in os.listdir(base) if p.startswith(".tmp")]


def test_signature_shown_by_saved_model_cli(tiny_export):
    _, base = tiny_export
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", str(base / "metatasnet" / "3"), "--tag_set", "serve",
                            "--signature_def", "serving_default"], check=True, capture_output=True,
                           text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
    inputs, outputs = shown.split("The given SavedModel SignatureDef contains the following output(s):")
    for rate in (8000, 16000, 32000):
        assert f"inputs['mixture_{rate}'] tensor_info:" in inputs
    assert inputs.count("shape: (-1, -1)") == 3 and inputs.count("dtype: DT_FLOAT") == 3
    for source in SOURCES:
        assert f"outputs['{source}'] tensor_info:" in outputs
    assert outputs.count("shape: (-1, -1)") == 4
    assert "Method name is: tensorflow/serving/predict" in outputs


@pytest.mark.slow
def test_saved_models_run_with_tensorflow_only(tiny_export, tmp_path):
    model, base = tiny_export
    mixtures, inputs = _inputs(model, batch=2, frames=200)
    outputs = _run_without_project(base / "metatasnet" / "3", inputs, tmp_path)
    expected = model.separate(mixtures).numpy()                       # (batch, 4, samples)
    assert sorted(outputs) == sorted(SOURCES)
    for k, source in enumerate(SOURCES):
        np.testing.assert_allclose(outputs[source], expected[:, k], rtol=1e-4, atol=1e-5)

    # The per-instrument model (generator folded), another batch and length.
    mixtures, inputs = _inputs(model, batch=1, frames=256, seed=1)
    outputs = _run_without_project(base / "metatasnet_vocals" / "3", inputs, tmp_path)
    assert list(outputs) == ["vocals"]
    np.testing.assert_allclose(outputs["vocals"], fold_generator(model).separate(mixtures).numpy()[:, 3],
                               rtol=1e-4, atol=1e-5)
