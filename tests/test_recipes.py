"""The recipes outside the package: training configs and launch scripts, export scripts."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest
from locations import REPO

import tf_metatasnet as tm
from tf_metatasnet.training.config import load_train_config

SCRIPTS = sorted((REPO / "training").rglob("*.sh")) + sorted((REPO / "export").rglob("*.sh"))

#: A stand-in for ``metatasnet`` (and TF Serving's binary) that records how it was called.
RECORDER = textwrap.dedent("""\
    import json, os, sys
    config = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--model_config_file=")), None)
    print("CALL " + json.dumps({"argv": sys.argv[1:], "TF_CONFIG": os.environ.get("TF_CONFIG"),
                                "config": open(config).read() if config else None}))
""")


def _record(tmp_path, script, *args, **env):
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    done = subprocess.run(["bash", str(REPO / script), *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "METATASNET": f"{sys.executable} {recorder}", **env})
    calls = [json.loads(line[5:]) for line in done.stdout.splitlines() if line.startswith("CALL ")]
    return done, calls


def test_every_script_parses():
    assert len(SCRIPTS) >= 6
    for script in SCRIPTS:
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{script}: {done.stderr}"


@pytest.mark.parametrize("name", ["paper", "default_model", "cpu_small"])
def test_training_configs_load(name):
    config = load_train_config(REPO / "training" / "configs" / f"{name}.yaml")
    assert config.model_config() is not None and config.epochs >= 1


def test_the_paper_config_is_the_papers_recipe():
    config = load_train_config(REPO / "training" / "configs" / "paper.yaml")
    assert config.model_config() == tm.get_config("paper")
    assert (config.data.batch_size, config.data.crop_seconds, config.epochs) == (12, 8.0, 250)
    assert (config.optimizer.name, config.optimizer.learning_rate, config.optimizer.clipnorm) == ("ranger", 1e-3, 5.0)


@pytest.mark.slow
def test_the_default_model_config_builds_the_shipped_architecture():
    config = load_train_config(REPO / "training" / "configs" / "default_model.yaml")
    assert config.model_config().replace(recompute_tcn=False) == tm.from_preset("default").config


def test_multi_worker_launch_builds_tf_config_from_the_worker_list(tmp_path):
    done, calls = _record(tmp_path, "training/launch/multi_worker.sh", "training/configs/cpu_small.yaml",
                          "--epochs", "1", WORKERS="gpu-a:12345, gpu-b:12345", INDEX="1", TF_CONFIG="")
    assert done.returncode == 0, done.stderr
    [call] = calls
    assert json.loads(call["TF_CONFIG"]) == {"cluster": {"worker": ["gpu-a:12345", "gpu-b:12345"]},
                                             "task": {"type": "worker", "index": 1}}
    assert call["argv"][:4] == ["train", "--config", "training/configs/cpu_small.yaml", "--strategy"]
    assert "multi_worker" in call["argv"] and call["argv"][-2:] == ["--epochs", "1"]
    done, calls = _record(tmp_path, "training/launch/multi_worker.sh", WORKERS="gpu-a:1", INDEX="2",
                          TF_CONFIG="")
    assert done.returncode != 0 and not calls and "INDEX must be a position in WORKERS" in done.stderr


def test_launch_scripts_pick_the_strategy_and_resume_a_run(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: tiny\noutput_dir: {tmp_path / 'run'}\ndata: {{cache_dir: {tmp_path}}}\n")
    for script, strategy in [("one_gpu.sh", "default"), ("several_gpus.sh", "mirrored")]:
        done, [call] = _record(tmp_path, f"training/launch/{script}", config, PRECISION="float32")
        assert done.returncode == 0, done.stderr
        assert call["argv"][call["argv"].index("--strategy") + 1] == strategy
        assert "--resume" not in call["argv"] and "--xla" in call["argv"]
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "state.json").write_text("{}")
    done, [call] = _record(tmp_path, "training/launch/one_gpu.sh", config, XLA="--no-xla", PRECISION="float32")
    assert "--resume" in call["argv"] and "--no-xla" in call["argv"] and "--xla" not in call["argv"]


def test_serve_script_points_the_binary_at_the_export(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "models.config").write_text(
        'model_config_list {\n  config {\n    name: "m"\n    base_path: "/models/m"\n  }\n}\n')
    recorder = tmp_path / "server.py"
    recorder.write_text(RECORDER)
    wrapper = tmp_path / "tensorflow_model_server"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {recorder} \"$@\"\n")
    wrapper.chmod(0o755)
    done = subprocess.run(["bash", str(REPO / "export" / "serve.sh"), str(tmp_path / "base")],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "SERVER": str(wrapper)})
    assert done.returncode == 0, done.stderr
    call = json.loads(done.stdout.split("CALL ", 1)[1])
    assert "--rest_api_port=8501" in call["argv"] and "--port=8500" in call["argv"]
    assert f'base_path: "{tmp_path / "base"}/m"' in call["config"]
    missing = subprocess.run(["bash", str(REPO / "export" / "serve.sh"), str(tmp_path)], capture_output=True,
                             text=True, env={**os.environ, "SERVER": str(wrapper)})
    assert missing.returncode == 1 and "models.config: missing" in missing.stderr


@pytest.mark.slow
def test_export_all_writes_serving_tflite_and_android_assets(tmp_path):
    keras.utils.set_random_seed(2)
    model = tmp_path / "tiny.keras"
    tm.save_model(tm.build_model("tiny"), model)
    env = {**os.environ, "INSTRUMENTS": "vocals", "QUANTIZATIONS": "float32 dynamic",
           "TFLITE_OPTIONS": "--no-report --weight-rounding nearest --chunk-seconds 2",
           "ANDROID_ASSETS": str(tmp_path / "app-assets"), "METATASNET": f"{sys.executable} -m tf_metatasnet.cli"}
    done = subprocess.run(["bash", str(REPO / "export" / "export_all.sh"), str(model), str(tmp_path / "out")],
                          cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    assert (out / "serving" / "metatasnet" / "1" / "saved_model.pb").is_file()
    assert (out / "serving" / "metatasnet_vocals" / "1" / "saved_model.pb").is_file()
    assert 'name: "metatasnet_vocals"' in (out / "serving" / "models.config").read_text()
    assert sorted(p.name for p in (out / "tflite").glob("*.tflite")) == ["vocals_dynamic.tflite",
                                                                          "vocals_float32.tflite"]
    assert sorted(p.name for p in (out / "android_assets").iterdir()) == ["vocals_dynamic.json",
                                                                          "vocals_dynamic.tflite"]
    assert sorted(p.name for p in (tmp_path / "app-assets").iterdir()) == ["vocals_dynamic.json",
                                                                           "vocals_dynamic.tflite"]
    assert "export/serve.sh" in done.stdout
