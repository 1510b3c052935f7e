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

    Its gradient is written out (``_shifted_sum``): the same shifted sums with the kernel
    reversed for the input, one product and sum per tap for the kernel. Left to autodiff,
    each slice's gradient scatters into a zero tensor of the padded input, which made this
    layer's backward pass three quarters of a TCN layer's (``benchmarks/README.md``).

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
        return _shifted_sum(x, kernel, self.kernel_size, self.dilation_rate)

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "dilation_rate": self.dilation_rate})
        return config


def _shifted_sum(x, kernel, kernel_size: int, dilation_rate: int):
    """``y[t] = sum_k x[t + k*dilation - pad] * kernel[..., k]`` (zeros outside ``x``), with
    its gradient.

    Args:
        x: ``(instruments, batch, time, channels)``.
        kernel: ``(instruments, channels, kernel_size)``.

    Returns:
        ``(instruments, batch, time, channels)``.
    """

    @tf.custom_gradient
    def shifted_sum(x, kernel):
        instruments, batch, length, channels = dimensions(x)
        taps = tf.unstack(tf.reshape(kernel, (instruments, 1, 1, channels, kernel_size)),
                          axis=-1)  # k x (instruments, 1, 1, channels)
        pad = dilation_rate * (kernel_size - 1) // 2
        padding = [[0, 0], [0, 0], [pad, pad], [0, 0]]

        def shifted(padded, tap):
            """``padded`` (time + 2*pad) cut to ``time`` steps starting at tap ``tap``."""
            start = tap * dilation_rate
            return padded[:, :, start:start + length, :]  # (instruments, batch, time, channels)

        padded = tf.pad(x, padding)  # (instruments, batch, time+2*pad, channels)
        y = 0.0
        for tap, weight in enumerate(taps):
            y += shifted(padded, tap) * weight

        def gradient(dy):
            # With dy_padded = dy padded like x, and d = dilation:
            #   dx[s]       = sum_k dy_padded[s + (k-1-tap)*d] * kernel_tap  (the taps reversed)
            #   dkernel_tap = sum over batch and time of x * dy_padded[s + (k-1-tap)*d]
            # Both read the same shifted copies of the output gradient and x itself, never a
            # tensor of the forward pass (which would then be kept for the backward pass).
            dy_padded = tf.pad(dy, padding)
            dx = 0.0
            dkernel = []
            for tap, weight in enumerate(taps):
                shifted_dy = shifted(dy_padded, kernel_size - 1 - tap)
                dx += shifted_dy * weight
                dkernel.append(tf.reduce_sum(x * shifted_dy, axis=[1, 2]))  # (instruments, channels)
            dkernel = tf.stack(dkernel, axis=-1)  # (instruments, channels, k)
            return dx, tf.reshape(dkernel, tf.shape(kernel))

        return y, gradient

    # A static layer's kernel is a variable: read it outside, so its gradient is the kernel's.
    return shifted_sum(x, tf.convert_to_tensor(kernel))
