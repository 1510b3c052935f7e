"""Presets, keras-hub style: four architectures and the bundled trained model."""

import numpy as np
import pytest
from locations import REPO

import tf_metatasnet as tm
from tf_metatasnet import assets
from tf_metatasnet.presets import PRESETS, PRETRAINED, get_config, preset_names


def test_names_are_the_architectures_then_the_trained_model():
    assert preset_names() == ("paper", "small", "compact", "tiny", "default") == tm.preset_names()
    assert set(PRETRAINED) == {"default"} and not set(PRETRAINED) & set(PRESETS)


@pytest.mark.parametrize("name", ["tiny", pytest.param("compact", marks=pytest.mark.slow)])
def test_an_architecture_preset_is_a_new_model_with_random_weights(name):
    first, second = tm.from_preset(name), tm.from_preset(name)
    assert first.config == PRESETS[name] == second.config
    assert first.count_params() == tm.build_model(name).count_params()
    assert any(not np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))


@pytest.mark.slow
def test_default_is_the_bundled_trained_model():
    model = tm.from_preset("default")
    shipped = tm.load_model(assets.default_model_path())
    assert model.config == shipped.config
    for a, b in zip(model.get_weights(), shipped.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The shipped architecture: the compact preset widened to N=80 with 6-layer stacks.
    assert model.config.replace(N=40, layers=4) == PRESETS["compact"]


def test_unknown_and_trained_names_are_one_line_errors():
    with pytest.raises(ValueError, match=r"unknown preset 'huge'; choose one of paper, small, compact, "
                                         r"tiny, default"):
        tm.from_preset("huge")
    with pytest.raises(ValueError, match=r"'default' is a trained model.*from_preset\('default'\)"):
        get_config("default")
    with pytest.raises(FileNotFoundError, match="no bundled 'default' model") as error:
        assets.asset_path(PRETRAINED["default"], REPO / "nowhere", what="'default' model")
    assert "\n" not in str(error.value)


def test_the_default_models_recipe_is_the_one_shipped_with_it():
    """One recipe, two places: the package ships training/configs/default_model.yaml."""
    recipe = REPO / "training" / "configs" / "default_model.yaml"
    shipped = assets.asset_path(assets.DEFAULT_MODEL_CONFIG)
    assert recipe.read_bytes() == open(shipped, "rb").read(), (
        "training/configs/default_model.yaml and tf_metatasnet/assets/default_model.yaml differ: "
        "training/make_default_model.sh copies the first to the second when it makes the model")
