"""``from_preset``: a model by preset name, keras-hub style.

An architecture preset (``paper``, ``small``, ``compact``, ``tiny``) gives a new model with
random weights; a trained preset (``default``) loads its weights from the package's assets.
"""

from __future__ import annotations

from tf_metatasnet import assets
from tf_metatasnet.checkpoints.saving import load_model
from tf_metatasnet.models.metatasnet import MetaTasNet, build_model
from tf_metatasnet.presets import PRESETS, PRETRAINED, preset_names


def from_preset(name: str) -> MetaTasNet:
    """The model called ``name`` (see ``tf_metatasnet.presets.preset_names()``).

    Args:
        name: ``"paper"``, ``"small"``, ``"compact"`` or ``"tiny"`` for a new model of that
            architecture with random weights, ``"default"`` for the bundled trained model.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        FileNotFoundError: a trained preset whose file is missing from the installation.
    """
    if name in PRETRAINED:
        return load_model(assets.asset_path(PRETRAINED[name], what=f"{name!r} model"))
    if name in PRESETS:
        return build_model(name)
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(preset_names())}")
