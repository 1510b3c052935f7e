"""Generated weights computed once: the per-instrument parameters as constants for inference.

At inference the instrument embeddings do not change, so every generator's output is a
constant. Computing those outputs once, eagerly, and tracing the model with them in place
of the generators gives a graph without the ~1,500 small generator matmuls of the paper
model: it traces and compiles faster and runs faster (measured in ``benchmarks/README.md``),
with the values of the in-graph generators (the same operations, computed before the graph
instead of inside it). Unlike ``tf_metatasnet.export.folding.fold_generator`` no second model
is built: the constants are lent to the model's own layers only while a function traces.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import tensorflow as tf

from tf_metatasnet.layers.instrument_layer import InstrumentLayer, lent_parameters
from tf_metatasnet.layers.traversal import sublayers
from tf_metatasnet.models.metatasnet import MetaTasNet

__all__ = ["compute_fixed_parameters", "fixed_parameters"]


def compute_fixed_parameters(model: MetaTasNet) -> list:
    """``[(layer, {name: (instruments, *shape) tensor})]`` for every generated per-instrument
    layer of ``model``: its generator's output on its stage's instrument embedding, computed
    now from the current weights. Empty for a model with static weights (nothing to fix)."""
    parameters = []
    for stage in model.stages:
        if stage.instrument_embedding is None:   # independent_params: no generators
            continue
        embedding = tf.convert_to_tensor(stage.instrument_embedding)   # (instruments, E_1)
        for layer in sublayers(stage):
            if isinstance(layer, InstrumentLayer) and layer.generated:
                parameters.append((layer, {name: tf.convert_to_tensor(value) for name, value in
                                           layer.instrument_parameters(embedding).items()}))
    return parameters


@contextlib.contextmanager
def fixed_parameters(parameters: list) -> Iterator[None]:
    """While the block runs, each layer in ``parameters`` (from :func:`compute_fixed_parameters`)
    uses those tensors instead of its weights; they are removed again on leaving, even on error.

    Meant around tracing: a ``tf.function`` traced inside captures the tensors as constants.
    """
    with lent_parameters(parameters):
        yield
