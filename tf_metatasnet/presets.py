"""Named presets: four model architectures and the bundled trained model.

- ``PRESETS``: architectures, as ``MetaTasNetConfig`` s. ``build_model(name)`` (and
  ``from_preset(name)``) makes a model of one with random weights.
- ``PRETRAINED``: presets that come with trained weights inside the package;
  ``tf_metatasnet.from_preset("default")`` loads the bundled default model.

:func:`get_config` resolves a preset name, a JSON file or a mapping to a config; it is how
every entry point (``build_model``, the training recipes, the CLI) reads a configuration.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

from tf_metatasnet import assets
from tf_metatasnet.config import MetaTasNetConfig

PRESETS: dict[str, MetaTasNetConfig] = {
    # The published model (45,545,602 values in the original's state_dict).
    "paper": MetaTasNetConfig(),
    # Real CPU training on a laptop-sized machine.
    "small": MetaTasNetConfig(N=128, B=64, H=128, layers=4, stack=2, num_mels=64),
    # Small enough to train on 2 CPU cores in a working session and ship in the package:
    # with N=80 and layers=6 (1.94 M values, 3.8 MB as a float16 .keras file) the bundled
    # default model (training/configs/default_model.yaml).
    "compact": MetaTasNetConfig(N=40, B=32, H=48, layers=4, stack=2, num_mels=24),
    # Unit tests: the configuration of the authors' parity fixture.
    "tiny": MetaTasNetConfig(N=32, B=16, H=16, layers=2, stack=1, num_mels=16),
}

#: Presets with trained weights shipped in ``tf_metatasnet/assets``: name -> file name.
PRETRAINED: dict[str, str] = {
    # The compact preset with N=80 and 6-layer stacks, trained on synthetic songs
    # (README, "The default model").
    "default": assets.DEFAULT_MODEL,
}


def preset_names() -> tuple[str, ...]:
    """Every name ``from_preset`` takes: the architectures, then the trained models."""
    return (*PRESETS, *PRETRAINED)


def get_config(preset_or_config: "str | os.PathLike | Mapping | MetaTasNetConfig") -> MetaTasNetConfig:
    """Resolves a preset name, a JSON file, a mapping or a config to a ``MetaTasNetConfig``."""
    if isinstance(preset_or_config, MetaTasNetConfig):
        return preset_or_config
    if isinstance(preset_or_config, Mapping):
        return MetaTasNetConfig.from_dict(preset_or_config)
    name = os.fspath(preset_or_config)
    if name in PRESETS:
        return PRESETS[name]
    if name in PRETRAINED:
        raise ValueError(f"{name!r} is a trained model, not an architecture: "
                         f"tf_metatasnet.from_preset({name!r}) loads it")
    if name.endswith(".json") and os.path.isfile(name):
        with open(name, encoding="utf-8") as f:
            try:
                return MetaTasNetConfig.from_dict(json.load(f))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{name}: {error}") from None
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)} or a .json file")
