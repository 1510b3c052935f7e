"""Group normalisation with its own scale and bias per instrument."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.layers.instrument_layer import InstrumentLayer
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

    def call(self, x, embedding=None):
        affine = self.instrument_parameters(embedding)["affine"]  # (instruments, 2*channels)
        instruments, batch, time, _ = dimensions(x)
        affine = tf.reshape(affine, (instruments, 1, 1, 2 * self.input_channels))  # (instruments, 1, 1, 2*channels)
        scale, bias = tf.split(tf.cast(affine, tf.float32), 2, axis=-1)  # 2 x (instruments, 1, 1, channels)
        dtype = x.dtype
        x = tf.cast(x, tf.float32)  # statistics in float32, also under mixed precision
        count = time * (self.input_channels // self.groups)
        if isinstance(count, tf.Tensor):
            count = tf.cast(count, tf.float32)
        grouped = (instruments, batch, self.groups, self.input_channels // self.groups)

        def group_mean(values):
            """(instruments, batch, time, channels) -> per-group mean broadcast to (..., 1, channels)."""
            sums = tf.reshape(tf.reduce_sum(values, axis=2), grouped)  # (instruments, batch, groups, channels/groups)
            means = tf.reduce_sum(sums, axis=-1, keepdims=True) / count  # (instruments, batch, groups, 1)
            return tf.reshape(tf.broadcast_to(means, grouped), (instruments, batch, 1, self.input_channels))

        # Two passes with contiguous reductions over time: the centred variance stays
        # exact for inputs with a large mean (E[x^2] - E[x]^2 would cancel in float32).
        centred = x - group_mean(x)
        inverse = tf.math.rsqrt(group_mean(tf.square(centred)) + self.epsilon)  # (instruments, batch, 1, channels)
        return tf.cast(centred * (inverse * scale) + bias, dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"groups": self.groups, "epsilon": self.epsilon})
        return config
