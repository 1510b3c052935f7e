"""Model files are untrusted: a bad one is one line naming it (and, for weights, the key and
the shapes), and an oversized one is refused before anything is allocated."""

import argparse
import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import torch
from snapshot import one_line_error, snapshot

import tf_metatasnet as tm
from tf_metatasnet.cli import main
from tf_metatasnet.models.size import count_values, estimated_bytes


def _rewrite(source, target, change):
    """A copy of the ``.keras`` archive ``source`` whose config.json is ``change(config)``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for member in old.infolist():
            data = old.read(member.filename)
            if member.filename == "config.json":
                data = json.dumps(change(json.loads(data))).encode()
            new.writestr(member, data)
    return target


def _fields(**changes):
    def change(config):
        config["config"]["config"].update(changes)
        return config
    return change


def _info(capsys, path, *extra):
    before = snapshot(os.path.dirname(path))
    status = main(["info", str(path), *extra])
    assert snapshot(os.path.dirname(path)) == before
    return status


@pytest.mark.parametrize("change, message", [
    (_fields(stages_num=40), "config field stages_num must be at most 6, got 40"),
    (_fields(N=200000), "config field N must be at most 4096, got 200000"),
    (_fields(N="many"), "config field N must be a positive integer, got 'many'"),
    (_fields(recompute_tcn="yes"), "config field recompute_tcn must be true or false"),
    (_fields(surprise=1), "unknown config field(s): surprise"),
    (lambda config: [config], "its config.json is a list, not a model configuration"),
    (lambda config: {**config, "class_name": "Sequential"}, "holds a 'Sequential' model, not a Meta-TasNet"),
    (lambda config: {**config, "config": {"config": 3}}, "configuration is missing or not a mapping"),
])
def test_a_bad_configuration_is_refused_before_building(change, message, tiny_model_file, tmp_path, capsys):
    path = _rewrite(tiny_model_file, tmp_path / "bad.keras", change)
    assert _info(capsys, path) == 1
    assert message in one_line_error(capsys, path)


def test_an_oversized_model_is_refused_unless_the_limit_is_raised(tiny_model_file, tmp_path, capsys):
    huge = tm.get_config("paper").replace(N=4096, B=4096, H=4096)
    assert estimated_bytes(huge) > 16 * 2 ** 30 and count_values(huge) > 10 ** 9
    path = _rewrite(tiny_model_file, tmp_path / "huge.keras", _fields(N=4096, B=4096, H=4096, layers=6, stack=3,
                                                                     num_mels=256))
    assert _info(capsys, path) == 1
    assert "more than the 16 GiB limit; --max-model-gib raises it" in one_line_error(capsys, path)
    assert _info(capsys, tiny_model_file, "--max-model-gib", "0.0001") == 1
    assert "--max-model-gib raises it" in one_line_error(capsys, tiny_model_file)
    assert _info(capsys, tiny_model_file, "--max-model-gib", "1") == 0


def test_damaged_archives_and_foreign_models_are_one_line(tiny_model_file, tmp_path, capsys):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(tiny_model_file.read_bytes()[: tiny_model_file.stat().st_size // 2])
    assert _info(capsys, truncated) == 1
    assert "not a readable .keras archive, truncated or not a zip file" in one_line_error(capsys, truncated)
    dense = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(dense)
    assert _info(capsys, dense) == 1
    assert "holds a 'Sequential' model" in one_line_error(capsys, dense)
    folder = tmp_path / "folder.keras"
    folder.mkdir()
    assert _info(capsys, folder) == 1
    assert "is a folder, not a model file" in one_line_error(capsys, folder)


def test_non_finite_weights_are_named(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    model = tm.build_model("tiny")
    variable = model.stages[1].decoder.bottleneck
    variable.assign(np.where(np.arange(variable.shape[1]) == 3, np.nan, variable.numpy()))
    path = tmp_path / "nan.keras"
    tm.save_model(model, path)
    assert _info(capsys, path) == 1
    assert f"weight {variable.path} has NaN or infinite values" in one_line_error(capsys, path)


@pytest.mark.slow  # starts the command in processes (6-10 s)
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "tf_metatasnet.cli", "info", str(fifo)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 1
    assert f"metatasnet: error: {fifo}: is not a regular file" in done.stderr


@pytest.fixture(scope="module")
def checkpoint(fixture_dir):
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(fixture_dir / "official_small.pt", map_location="cpu", weights_only=True)


def _save(checkpoint, path, args=None, state=None):
    torch.save({"args": args or checkpoint["args"], "state_dict": state if state is not None else checkpoint["state_dict"]},
               path)
    return path


KEY = "stages.1.decoder.bottleneck.0.weight"


@pytest.mark.parametrize("value, message", [
    (lambda w: w[:, :-1], f"key {KEY} has shape (64, 55, 1), expected (64, 56, 1) for this configuration"),
    (lambda w: w[:, :, 0], f"key {KEY} has shape (64, 56), expected (64, 56, 1)"),
    (lambda w: 1.5, f"key {KEY} has shape (), expected (64, 56, 1)"),
    (lambda w: [1.0, 2.0], f"key {KEY} has shape (2,), expected (64, 56, 1)"),
    (lambda w: {"not": "numbers"}, f"key {KEY} is not an array of numbers (dict)"),
    (lambda w: torch.full_like(w, float("nan")), f"key {KEY} has NaN or infinite values"),
])
def test_a_malformed_checkpoint_names_the_key_and_the_shapes(value, message, checkpoint, tmp_path, capsys):
    state = dict(checkpoint["state_dict"])
    state[KEY] = value(state[KEY])
    path = _save(checkpoint, tmp_path / "bad.pt", state=state)
    assert _info(capsys, path) == 1
    assert message in one_line_error(capsys, path)


def test_checkpoint_configurations_are_bounded_too(checkpoint, tmp_path, capsys):
    args = argparse.Namespace(**{**vars(checkpoint["args"]), "stages_num": 40})
    path = _save(checkpoint, tmp_path / "deep.pt", args=args)
    assert _info(capsys, path) == 1
    assert "config field stages_num must be at most 6, got 40" in one_line_error(capsys, path)
    path = _save(checkpoint, tmp_path / "list.pt", state=[1, 2])
    assert _info(capsys, path) == 1
    assert "state_dict is a list, not a mapping" in one_line_error(capsys, path)
