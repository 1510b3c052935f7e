"""Meta-TasNet's decoder: latent frames back to a waveform through multi-resolution filters."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.layers.encoder import align_filters, filter_paddings
from tf_metatasnet.layers.initializers import torch_uniform


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class Decoder(keras.layers.Layer):
    """Latent to waveform, ``(batch, frames, channels)`` to ``(batch, frames * stride)``.

    1x1 transposed conv to ``sum(widths)`` channels (no bias), ReLU, split into pieces of
    ``widths[l] = channels / 2**(l+1)`` channels; piece ``l`` goes through a transposed
    conv with kernel ``kernel_size * 2**l`` and the given stride; the pieces are summed.
    All pieces share one matmul and one overlap-add (their kernels are aligned in a
    common window), which is the same sum.

    Args:
        channels: latent channels ``N_i``.
        kernel_size: base kernel ``L_i``.
        stride: stride ``W_i``.
        filters: number of resolutions. Default 3.

    Call arguments:
        latents: ``(batch, frames, channels)``.

    Returns:
        ``(batch, frames * stride)``.
    """

    def __init__(self, channels: int, kernel_size: int, stride: int, filters: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.filters = filters

    @property
    def widths(self) -> list[int]:
        return [self.channels // 2 ** (l + 1) for l in range(self.filters)]

    def build(self, input_shape=None):
        self.bottleneck = self.add_weight(name="bottleneck", shape=(self.channels, sum(self.widths)),
                                          initializer=torch_uniform(sum(self.widths)))
        # PyTorch's ConvTranspose1d fan-in is out_channels * kernel = k_l here.
        self.filter_kernels = [
            self.add_weight(name=f"filter_{l}", shape=(self.kernel_size * 2 ** l, width),
                            initializer=torch_uniform(self.kernel_size * 2 ** l))
            for l, width in enumerate(self.widths)
        ]

    def call(self, latents):
        paddings = filter_paddings(self.kernel_size, self.stride, self.filters)
        kernel = tf.concat(align_filters(self.filter_kernels, paddings), axis=-1)  # (k_max, sum(widths))
        x = tf.nn.relu(tf.matmul(latents, self.bottleneck))  # (batch, frames, sum(widths))
        frames = tf.matmul(x, kernel, transpose_b=True)  # (batch, frames, k_max)
        signal = tf.signal.overlap_and_add(frames, self.stride)  # (batch, (frames-1)*stride + k_max)
        length = tf.shape(latents)[1] * self.stride
        return signal[:, paddings[-1]:paddings[-1] + length]  # (batch, frames * stride)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels, "kernel_size": self.kernel_size,
                       "stride": self.stride, "filters": self.filters})
        return config
