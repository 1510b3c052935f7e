"""Group normalisation with its own scale and bias per instrument."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.layers.instrument_layer import InstrumentLayer
from tf_metatasnet.layers.recompute import after
from tf_metatasnet.layers.shapes import dimensions


def _ones_then_zeros(shape, dtype=None):
    """Static initial ``affine``: scale 1 for the first half, bias 0 for the second."""
    half = shape[-1] // 2
    ones = tf.ones((*shape[:-1], half), dtype=dtype)
    return tf.concat([ones, tf.zeros_like(ones)], axis=-1)


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class InstrumentGroupNorm(InstrumentLayer):
    """``GroupNorm(groups)`` over channels and time, per batch item and instrument.

    Parameters per instrument: ``affine`` ``(2 * channels,)``, the scale followed by the
    bias (the generator's layout; static layers keep the same layout).

    Args:
        groups: number of channel groups. Default 8.
        epsilon: added to the variance. Default ``1e-8`` (the authors').
        **kwargs: see ``InstrumentLayer``.

    Call arguments:
        x: ``(instruments, batch, time, channels)``.
        embedding: ``(instruments, E_1)``; ignored by static layers.
        slope: a PReLU slope ``(1,)`` (``SharedPReLU.alpha``) to apply to ``x`` first, in
            the same gradient; ``None`` (default) normalises ``x`` as it is. Every norm of
            the masking network follows a PReLU. Left to autodiff, the pair keeps three
            activations for the backward pass (the PReLU's input, its sign, the centred
            values); together it keeps the input only and recomputes the rest, which is
            cheap element-wise work (``benchmarks/README.md``, training memory). Same
            values and gradients.

    Returns:
        ``(instruments, batch, time, channels)``.
    """

    def __init__(self, groups: int = 8, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups
        self.epsilon = epsilon

    def parameter_specs(self, channels):
        if channels % self.groups:
            raise ValueError(f"{self.name}: {channels} channels are not divisible into {self.groups} groups")
        return {"affine": ((2 * channels,), _ones_then_zeros)}

    def call(self, x, embedding=None, slope=None):
        affine = self.instrument_parameters(embedding)["affine"]  # (instruments, 2*channels)
        if slope is None:
            return self._normalize(x, affine)
        return _prelu_group_norm(x, tf.convert_to_tensor(slope), tf.convert_to_tensor(affine),
                                 self.groups, self.epsilon)

    def _normalize(self, x, affine):
        """The norm alone, left to autodiff."""
        instruments, batch, time, _ = dimensions(x)
        affine = tf.reshape(affine, (instruments, 1, 1, 2 * self.input_channels))  # (instruments, 1, 1, 2*channels)
        scale, bias = tf.split(tf.cast(affine, tf.float32), 2, axis=-1)  # 2 x (instruments, 1, 1, channels)
        dtype = x.dtype
        x = tf.cast(x, tf.float32)  # statistics in float32, also under mixed precision
        group_mean = _group_mean_function(x, self.groups)
        # Two passes with contiguous reductions over time: the centred variance stays
        # exact for inputs with a large mean (E[x^2] - E[x]^2 would cancel in float32).
        centred = x - group_mean(x)
        inverse = tf.math.rsqrt(group_mean(tf.square(centred)) + self.epsilon)  # (instruments, batch, 1, channels)
        return tf.cast(centred * (inverse * scale) + bias, dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"groups": self.groups, "epsilon": self.epsilon})
        return config


def _group_mean_function(x, groups: int):
    """``group_mean(values)``: per instrument, batch item and channel group, the mean over
    time and the group's channels, broadcast back to ``(instruments, batch, 1, channels)``.
    ``x`` gives the shape."""
    instruments, batch, time, channels = dimensions(x)
    count = time * (channels // groups)
    if isinstance(count, tf.Tensor):
        count = tf.cast(count, tf.float32)
    grouped = (instruments, batch, groups, channels // groups)

    def group_mean(values):
        """(instruments, batch, time, channels) -> per-group mean broadcast to (..., 1, channels)."""
        sums = tf.reshape(tf.reduce_sum(values, axis=2), grouped)  # (instruments, batch, groups, channels/groups)
        means = tf.reduce_sum(sums, axis=-1, keepdims=True) / count  # (instruments, batch, groups, 1)
        return tf.reshape(tf.broadcast_to(means, grouped), (instruments, batch, 1, channels))

    return group_mean


def _prelu_group_norm(x, slope, affine, groups: int, epsilon: float):
    """``GroupNorm(PReLU(x))`` with per-instrument ``affine`` and a hand-written gradient
    that keeps only ``x`` and the per-group statistics.

    Args:
        x: ``(instruments, batch, time, channels)``.
        slope: ``(1,)``, the PReLU's.
        affine: ``(instruments, 2*channels)``, scale then bias.

    Returns:
        ``(instruments, batch, time, channels)`` in ``x``'s dtype (statistics in float32).
    """

    @tf.custom_gradient
    def prelu_group_norm(x, slope, affine):
        instruments, batch, time, channels = dimensions(x)
        group_mean = _group_mean_function(x, groups)
        scale, bias = tf.split(tf.reshape(tf.cast(affine, tf.float32), (instruments, 1, 1, 2 * channels)),
                               2, axis=-1)  # 2 x (instruments, 1, 1, channels)
        slope32 = tf.cast(slope, tf.float32)

        def activated(x):
            x = tf.cast(x, tf.float32)  # (instruments, batch, time, channels)
            return x, tf.where(x >= 0, x, x * slope32)

        _, p = activated(x)
        mean = group_mean(p)  # (instruments, batch, 1, channels)
        centred = p - mean
        inverse = tf.math.rsqrt(group_mean(tf.square(centred)) + epsilon)  # (instruments, batch, 1, channels)
        y = tf.cast(centred * (inverse * scale) + bias, x.dtype)

        def gradient(dy):
            # Recomputed from x (the only activation kept): the PReLU and the normalised values,
            # after dy (else Grappler would merge this with the forward pass's and keep it).
            x32, p = activated(after(tf.cast(x, tf.float32), dy))
            normalised = (p - mean) * inverse
            dy = tf.cast(dy, tf.float32)
            dscale = tf.reduce_sum(dy * normalised, axis=[1, 2])  # (instruments, channels)
            dbias = tf.reduce_sum(dy, axis=[1, 2])
            daffine = tf.reshape(tf.concat([dscale, dbias], axis=-1), tf.shape(affine))
            # GroupNorm: dp = inverse * (g - mean(g) - normalised * mean(g * normalised)), g = dy * scale.
            g = dy * scale
            dp = inverse * (g - group_mean(g) - normalised * group_mean(g * normalised))
            positive = x32 >= 0
            dx = tf.where(positive, dp, dp * slope32)
            dslope = tf.reshape(tf.reduce_sum(tf.where(positive, 0.0, dp * x32)), tf.shape(slope))
            return tf.cast(dx, x.dtype), tf.cast(dslope, slope.dtype), tf.cast(daffine, affine.dtype)

        return y, gradient

    return prelu_group_norm(x, slope, affine)
