"""Gradient checkpointing (``tf_metatasnet.layers.recompute``): same values and gradients as
the function itself, computed again in the backward pass."""

import numpy as np
import pytest
import tensorflow as tf

from tf_metatasnet.layers.recompute import after, recompute_grad


def _segment(weight):
    """Two outputs from two inputs and a variable, with non-linearities (as a TCN layer)."""
    traces = []

    def segment(x, scale):
        traces.append(1)
        hidden = tf.nn.softplus(x * scale) * weight  # (batch, channels)
        return tf.tanh(hidden), tf.reduce_sum(hidden * x, axis=-1)

    return segment, traces


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_recomputed_values_and_gradients_equal_the_plain_function(jit_compile):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((3, 5)), tf.float32)
    scale = tf.constant(rng.standard_normal((5,)), tf.float32)
    weight = tf.Variable(rng.standard_normal((5,)), dtype=tf.float32)
    upstream = tf.constant(rng.standard_normal((3, 5)), tf.float32)
    segment, traces = _segment(weight)

    def loss_and_gradients(function):
        with tf.GradientTape() as tape:
            tape.watch([x, scale])
            first, second = function(x, scale)
            loss = tf.reduce_sum(first * upstream) + tf.reduce_sum(second ** 2)
        return [loss, *tape.gradient(loss, [x, scale, weight])]

    plain = tf.function(lambda: loss_and_gradients(segment), jit_compile=jit_compile)()
    traces.clear()
    recomputed = tf.function(lambda: loss_and_gradients(recompute_grad(segment)),
                             jit_compile=jit_compile)()
    assert len(traces) == 2  # the forward pass and its recomputation for the gradient
    for expected, actual in zip(plain, recomputed):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


def test_a_function_of_its_inputs_only_gets_their_gradients():
    x = tf.constant([[0.5, -1.0, 2.0]])

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = recompute_grad(lambda x: tf.sin(x) * x)(x)
        return tape.gradient(y, x)

    np.testing.assert_allclose(gradient().numpy(), (tf.cos(x) * x + tf.sin(x)).numpy(), rtol=1e-6)


def test_a_nan_output_gradient_gives_nan_input_gradients():
    """The recomputation reads the output gradient (a data dependency that orders it after
    that gradient, which XLA needs): zero when it is finite, NaN otherwise, as
    tf.recompute_grad does, so a NaN gradient stays visible in every input gradient."""
    x = tf.constant([1.0, 2.0])

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = recompute_grad(tf.square)(x)
        return tape.gradient(y, x, output_gradients=tf.constant([float("nan"), 1.0]))

    assert np.isnan(gradient().numpy()).all()


def test_after_adds_zero_from_the_gradient_or_nan():
    value = tf.constant([1.5, -2.0])
    np.testing.assert_array_equal(after(value, tf.constant([[3.0, 4.0]])).numpy(), value.numpy())
    assert np.isnan(after(value, tf.constant([float("nan"), 1.0])).numpy()).all()
    assert after(tf.constant([1.0], tf.float16), tf.constant([2.0])).dtype == tf.float16
