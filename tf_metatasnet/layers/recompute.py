"""Gradient checkpointing of one segment: recompute its activations in the backward pass.

``tf.recompute_grad`` does this too, but its gradient is itself a nested
``tf.custom_gradient`` (there only to raise an error under forward-mode autodiff): tracing
it walks the whole graph in front of the segment looking for variables and adds four
operations per input. The masking TCN has 20 segments a stage, each with a few dozen
inputs (its layers' generated parameters), so in the paper model's training step that
was a quadratic share of the tracing (``benchmarks/README.md``, first step). Here the
gradient is one ``tf.GradientTape`` over the recomputation, built with public API only.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def after(value, gradient):
    """``value`` plus zero computed from ``gradient`` (NaN if its first element is NaN).

    A recomputation in a backward pass reads its inputs through this, so it depends on the
    gradient: it then runs once that gradient exists (XLA ignores control dependencies),
    and Grappler cannot merge it with the identical forward computation, which would keep
    the forward pass's tensors alive for the backward pass.
    """
    first = tf.reshape(gradient, [-1])[:1]
    zero = tf.where(tf.reduce_all(tf.equal(first, first)), 0.0, float("nan"))
    return value + tf.cast(zero, value.dtype)


def recompute_grad(function: Callable) -> Callable:
    """``function(*tensors)`` whose backward pass recomputes it from its inputs.

    The forward pass keeps only the inputs; the gradient runs ``function`` again under a
    tape and differentiates that, for the inputs and for any variable ``function`` reads.
    Same values and gradients as without checkpointing. Meant for graph mode (inside a
    ``tf.function``); ``function`` must take and return tensors only.
    """

    @tf.custom_gradient
    def checkpointed(*inputs):
        outputs = function(*inputs)

        def gradient(*output_gradients, variables=None):
            # The recomputation must run once the output gradients exist (else it would
            # hold its activations through the rest of the backward pass). XLA ignores
            # control dependencies, so make it a data dependency: add zero (NaN if the
            # gradient is NaN) to the first input, from which everything is recomputed.
            replayed = [tf.identity(value) for value in inputs]
            replayed[0] = after(replayed[0], output_gradients[0])
            watched = replayed + list(variables or [])
            with tf.GradientTape() as tape:
                tape.watch(watched)
                recomputed = function(*replayed)
            gradients = tape.gradient(tf.nest.flatten(recomputed), watched,
                                      output_gradients=list(output_gradients),
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
            if variables is None:  # tf.custom_gradient passes variables only when read
                return gradients
            return gradients[:len(inputs)], gradients[len(inputs):]

        return outputs, gradient

    return checkpointed
