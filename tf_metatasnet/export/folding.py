"""Folding the generator: a Meta-TasNet with generated weights as one with constant weights.

The paper's model computes the weights of every masking-network conv and norm from the
instrument embedding with a small generator (``WeightGenerator``). At inference the
embedding is fixed, so those weights are constants: computing them once and storing them
as the static per-instrument weights of an ``independent_params=True`` model of the same
sizes gives the same outputs (as in the authors' generator) without running the
generator, and a graph of ordinary convs and norms that exports anywhere.
"""

from __future__ import annotations

from tf_metatasnet.layers.instrument_layer import InstrumentLayer
from tf_metatasnet.layers.traversal import sublayers
from tf_metatasnet.models.metatasnet import MetaTasNet


def _relative(path: str) -> str:
    """A variable's path without the model's own name (``stage_0/encoder/filter_0``)."""
    return path.split("/", 1)[1]


def _instrument_layers(layer) -> list:
    """The ``InstrumentLayer`` s inside ``layer``, in a fixed (construction) order."""
    return [sub for sub in sublayers(layer) if isinstance(sub, InstrumentLayer)]


def fold_generator(model: MetaTasNet) -> MetaTasNet:
    """A copy of ``model`` with static weights: ``independent_params=True``, same outputs.

    Args:
        model: a ``MetaTasNet``, generated or static (a static one is simply copied).

    Returns:
        a new ``MetaTasNet`` whose per-instrument weights are the ones ``model``'s generators
        produce from its instrument embeddings, and whose other weights are ``model``'s.
    """
    folded = MetaTasNet(model.config.replace(independent_params=True), name=f"{model.name}_folded")
    assigned = set()
    for stage, target in zip(model.stages, folded.stages):
        for source_layer, target_layer in zip(_instrument_layers(stage), _instrument_layers(target)):
            if source_layer.name != target_layer.name:
                raise ValueError(f"cannot fold {model.name}: layer {source_layer.name} does not "
                                 f"match {target_layer.name}")
            parameters = source_layer.instrument_parameters(stage.instrument_embedding)
            for name, variable in target_layer.static.items():
                variable.assign(parameters[name])  # (instruments, *shape)
                assigned.add(id(variable))
    weights = {_relative(variable.path): variable for variable in model.weights}
    for variable in folded.weights:
        if id(variable) in assigned:
            continue
        source = weights.get(_relative(variable.path))
        if source is None:
            raise ValueError(f"cannot fold {model.name}: no weight for {_relative(variable.path)}")
        variable.assign(source)
    return folded
