"""Dilated depthwise convolution with its own kernel per instrument (the TCN's temporal conv)."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.layers.initializers import torch_uniform
from tf_metatasnet.layers.instrument_layer import InstrumentLayer
from tf_metatasnet.layers.shapes import dimensions


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class InstrumentDepthwiseConv(InstrumentLayer):
    """Length-preserving dilated depthwise convolution of the four instruments at once.

    Zero padding of ``dilation_rate * (kernel_size - 1) / 2`` on both sides (for the
    authors' kernel 3 this is their ``padding = dilation``). Computed as a sum of
    ``kernel_size`` shifted, scaled copies of the input: plain element-wise work that
    XLA fuses and TFLite runs with builtin ops. Parameters per instrument: ``kernel``
    ``(channels, kernel_size)``, PyTorch's depthwise layout without the unit axis.

    Args:
        kernel_size: odd kernel size. Default 3.
        dilation_rate: dilation. Default 1.
        **kwargs: see ``InstrumentLayer``.

    Call arguments:
        x: ``(instruments, batch, time, channels)``.
        embedding: ``(instruments, E_1)``; ignored by static layers.

    Returns:
        ``(instruments, batch, time, channels)``.
    """

    def __init__(self, kernel_size: int = 3, dilation_rate: int = 1, **kwargs):
        super().__init__(**kwargs)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate

    def parameter_specs(self, channels):
        return {"kernel": ((channels, self.kernel_size), torch_uniform(self.kernel_size))}

    def call(self, x, embedding=None):
        kernel = self.instrument_parameters(embedding)["kernel"]  # (instruments, channels, k)
        instruments, batch, length, channels = dimensions(x)
        taps = tf.unstack(tf.reshape(kernel, (instruments, 1, 1, channels, self.kernel_size)),
                          axis=-1)  # k x (instruments, 1, 1, channels)
        pad = self.dilation_rate * (self.kernel_size - 1) // 2
        padded = tf.pad(x, [[0, 0], [0, 0], [pad, pad], [0, 0]])  # (instruments, batch, time+2*pad, channels)
        y = 0.0
        for tap, weight in enumerate(taps):
            start = tap * self.dilation_rate
            y += padded[:, :, start:start + length, :] * weight
        return y

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "dilation_rate": self.dilation_rate})
        return config
