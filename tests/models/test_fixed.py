"""Generated weights computed once (``tf_metatasnet.models.fixed``): same outputs, smaller graph."""

import numpy as np
import pytest
import tensorflow as tf
from signals import random_mixtures

import tf_metatasnet as tm
from tf_metatasnet.layers.instrument_layer import InstrumentLayer
from tf_metatasnet.layers.traversal import sublayers
from tf_metatasnet.models.fixed import compute_fixed_parameters, fixed_parameters


def _instrument_layers(model):
    return [layer for layer in sublayers(model) if isinstance(layer, InstrumentLayer)]


def test_fixed_parameters_are_each_generators_output():
    model = tm.build_model("tiny")
    fixed = compute_fixed_parameters(model)
    assert [layer for layer, _ in fixed] == _instrument_layers(model)   # every one, in order
    for layer, values in fixed:
        stage = next(s for s in model.stages if any(layer is sub for sub in sublayers(s)))
        flat = layer.generator(stage.instrument_embedding)              # (instruments, size)
        for name, value in values.items():
            np.testing.assert_array_equal(value.numpy().reshape(flat[name].shape), flat[name].numpy())


@pytest.mark.slow  # traces the tiny model twice (about 8 s)
def test_a_graph_traced_with_fixed_parameters_gives_the_models_outputs_without_generators():
    model = tm.build_model("tiny")
    mixtures = random_mixtures(model.config, batch=2, frames=40)
    fixed = compute_fixed_parameters(model)

    def separate(x):
        with fixed_parameters(fixed):
            return model.separate(x)

    plain = tf.function(model.separate).get_concrete_function(mixtures).graph
    traced = tf.function(separate).get_concrete_function(mixtures)
    # The generators' matmuls (a bottleneck and a head per parameter) are gone from the graph.
    matmuls = [sum(op.type == "MatMul" for op in g.get_operations()) for g in (plain, traced.graph)]
    assert matmuls[1] < matmuls[0] / 2, matmuls
    np.testing.assert_allclose(traced(mixtures).numpy(), model.separate(mixtures).numpy(), rtol=1e-5, atol=1e-6)
    # Outside the block the layers use their weights again: a change of weights shows.
    assert all(layer.fixed_parameters is None for layer in _instrument_layers(model))
    before = model.separate(mixtures).numpy()
    embedding = model.stages[-1].instrument_embedding
    embedding.assign(embedding.numpy() + 1.0)
    assert not np.allclose(model.separate(mixtures).numpy(), before)


def test_fixed_parameters_are_removed_on_error():
    model = tm.build_model("tiny")
    fixed = compute_fixed_parameters(model)
    with pytest.raises(RuntimeError, match="boom"):
        with fixed_parameters(fixed):
            assert all(layer.fixed_parameters is not None for layer, _ in fixed)
            raise RuntimeError("boom")
    assert all(layer.fixed_parameters is None for layer, _ in fixed)


def test_a_model_with_static_weights_has_nothing_to_fix():
    model = tm.build_model("tiny", independent_params=True)
    assert compute_fixed_parameters(model) == []
