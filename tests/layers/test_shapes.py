"""Dimensions known while tracing are numbers, not graph operations (layers/shapes.py)."""

import numpy as np
import tensorflow as tf

from tf_metatasnet.layers import InstrumentConv1x1, InstrumentDepthwiseConv, InstrumentGroupNorm
from tf_metatasnet.layers.shapes import dimensions


def test_static_dimensions_are_ints_and_unknown_ones_tensors():
    assert dimensions(tf.zeros((4, 2, 7, 3))) == [4, 2, 7, 3]
    seen = {}

    @tf.function(input_signature=[tf.TensorSpec((4, None, 7, None), tf.float32)])
    def read(x):
        seen["dims"] = dimensions(x)
        return tf.stack([tf.convert_to_tensor(d) for d in seen["dims"]])

    assert read(tf.zeros((4, 2, 7, 3))).numpy().tolist() == [4, 2, 7, 3]
    static = [d for d in seen["dims"] if isinstance(d, int)]
    assert static == [4, 7] and all(isinstance(seen["dims"][i], tf.Tensor) for i in (1, 3))


def _traced(layer, shape, signature_shape=None):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    if not layer.built:
        layer.build(shape)
    function = tf.function(lambda x: layer(x), input_signature=[
        tf.TensorSpec(signature_shape or shape, tf.float32)])
    graph = function.get_concrete_function().graph
    return function(tf.constant(x)).numpy(), [op.type for op in graph.get_operations()], x


def test_instrument_layers_read_no_shapes_when_the_input_shape_is_known():
    """A fully known input shape makes no Shape/StridedSlice/Pack bookkeeping in the graph; an
    unknown batch and time give the same values."""
    for make in (lambda: InstrumentGroupNorm(groups=2, generated=False),
                 lambda: InstrumentConv1x1(6, use_bias=True, generated=False),
                 lambda: InstrumentDepthwiseConv(3, 2, generated=False)):
        layer = make()
        known, types, x = _traced(layer, (4, 2, 50, 8))
        assert "Shape" not in types and "Pack" not in types, (type(layer).__name__, types)
        unknown, types, _ = _traced(layer, (4, 2, 50, 8), (4, None, None, 8))
        assert "Shape" in types
        np.testing.assert_allclose(known, unknown, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(known, layer(tf.constant(x)).numpy(), rtol=1e-6, atol=1e-6)
