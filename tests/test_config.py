"""Configuration: presets, defaults, validation and JSON round trips."""

import json

import pytest

from tf_metatasnet.config import MetaTasNetConfig
from tf_metatasnet.presets import PRESETS, get_config


def test_paper_defaults_are_the_published_model():
    c = PRESETS["paper"]
    assert (c.N, c.L, c.W, c.B, c.H, c.layers, c.stack, c.kernel, c.filters, c.num_mels) == \
        (440, 20, 20, 160, 160, 6, 3, 3, 3, 256)
    assert (c.E_1, c.E_2, c.stages_num, c.sampling_rate) == (8, 5, 3, 8000)
    assert not c.independent_params and not c.residual_bias and c.dropout == 0.0
    assert (c.reconstruction_loss_weight, c.dissimilarity_loss_weight, c.similarity_loss_weight) == (0.05, 3.0, 2.0)
    assert c.instrument_loss_weights == (1.0, 1.0, 1.0, 1.0)
    assert c.stage_rates == (8000, 16000, 32000)
    assert [c.stage_channels(i) for i in range(3)] == [440, 880, 1760]
    assert [c.stride(i) for i in range(3)] == [20, 40, 80]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name, tmp_path):
    config = PRESETS[name]
    assert MetaTasNetConfig.from_json(config.to_json()) == config
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    assert get_config(str(path)) == config
    assert get_config(json.loads(config.to_json())) == config
    assert get_config(name) is config


@pytest.mark.parametrize("changes, field", [
    ({"N": 30}, "N"), ({"B": 12}, "B"), ({"kernel": 4}, "kernel"), ({"sampling_rate": 11025}, "sampling_rate"),
    ({"W": 30}, "L=20, W=30"), ({"dropout": 1.0}, "dropout"), ({"layers": 0}, "layers"),
    ({"instrument_loss_weights": (1, 1, 1)}, "instrument_loss_weights"),
    ({"instrument_loss_weights": (1, -1, 1, 1)}, "instrument_loss_weights"),
    ({"instrument_loss_weights": (0, 0, 0, 0)}, "instrument_loss_weights"),
    ({"instrument_loss_weights": (1, 1, float("nan"), 1)}, "instrument_loss_weights"),
    ({"instrument_loss_weights": (1, 1, True, 1)}, "instrument_loss_weights"),
    ({"instrument_loss_weights": "1, 1, 3, 1"}, "instrument_loss_weights"),
    ({"instrument_loss_weights": 3.0}, "instrument_loss_weights"),
])
def test_invalid_configs_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        PRESETS["tiny"].replace(**changes)


def test_unknown_fields_and_presets_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown config field"):
        MetaTasNetConfig.from_dict({"N": 32, "bogus": 1})
    assert MetaTasNetConfig.from_dict({"N": 32, "bogus": 1}, strict=False).N == 32
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("huge")
    bad = tmp_path / "bad.json"
    bad.write_text('{"N": 31}')
    with pytest.raises(ValueError, match="bad.json"):
        get_config(str(bad))


def test_receptive_field_of_the_paper_model_is_567_frames_each_side():
    # 3 stages x 3 stacks x (1 + 2 + ... + 32) frames of 20 samples at 8 kHz.
    assert PRESETS["paper"].receptive_field_seconds() == pytest.approx(567 * 20 / 8000)
    compact = PRESETS["compact"]
    assert compact.receptive_field_seconds() == pytest.approx(3 * 2 * 15 * 20 / 8000)
    wider = compact.replace(kernel=5)
    assert wider.receptive_field_seconds() == pytest.approx(2 * compact.receptive_field_seconds())


def test_instrument_loss_weights_from_json_lists_are_float_tuples():
    config = PRESETS["tiny"].replace(instrument_loss_weights=[1, 1, 3, 0.5])
    assert config.instrument_loss_weights == (1.0, 1.0, 3.0, 0.5)
    assert all(type(w) is float for w in config.instrument_loss_weights)
    assert json.loads(config.to_json())["instrument_loss_weights"] == [1.0, 1.0, 3.0, 0.5]
    assert MetaTasNetConfig.from_json(config.to_json()) == config
    hash(config)  # still hashable (frozen, tuple field)
