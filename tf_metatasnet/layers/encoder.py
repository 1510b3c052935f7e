"""Meta-TasNet's encoder: learned multi-resolution filterbank plus a spectrogram branch."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.layers.initializers import torch_uniform
from tf_metatasnet.layers.spectrogram import LogSpectrogram


def filter_paddings(kernel_size: int, stride: int, filters: int) -> list[int]:
    """Zero padding on each side of the filter of each resolution: ``(k_l - stride) // 2``."""
    return [(kernel_size * 2 ** l - stride) // 2 for l in range(filters)]


def align_filters(kernels, paddings):
    """Places kernels of different lengths in one window of the longest kernel's length.

    Filter ``l`` starts ``paddings[-1] - paddings[l]`` samples into the common window, so a
    single strided framing (encoder) or overlap-add (decoder) serves every resolution.

    Args:
        kernels: list of ``(k_l, channels_l)``.
        paddings: the filters' paddings.

    Returns:
        list of ``(k_max, channels_l)``, zero outside each kernel.
    """
    k_max = kernels[-1].shape[0]
    return [tf.pad(kernel, [[paddings[-1] - pad, k_max - kernel.shape[0] - paddings[-1] + pad], [0, 0]])
            for kernel, pad in zip(kernels, paddings)]


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class Encoder(keras.layers.Layer):
    """Waveform to mixture latent, ``(batch, samples)`` to ``(batch, samples / stride, channels)``.

    ``filters`` strided convolutions with kernels ``kernel_size * 2**l`` and
    ``channels / 4`` outputs each (no bias), interleaved on channels as the authors'
    (channel ``c * filters + l`` is channel ``c`` of filter ``l``), ReLU; the
    ``LogSpectrogram`` branch concatenated; then 1x1 conv, ReLU, 1x1 conv (no biases).

    Args:
        channels: latent channels ``N_i``.
        kernel_size: base kernel ``L_i``.
        stride: stride ``W_i``.
        filters: number of parallel filters. Default 3.
        num_mels: spectrogram projection channels. Default 256.
        sample_rate: the stage's rate (sets the STFT size). Default 8000.

    Call arguments:
        signal: ``(batch, samples)``, ``samples`` a multiple of ``stride``.

    Returns:
        ``(batch, samples / stride, channels)``.
    """

    def __init__(self, channels: int, kernel_size: int, stride: int, filters: int = 3,
                 num_mels: int = 256, sample_rate: int = 8000, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.filters = filters
        self.num_mels = num_mels
        self.sample_rate = sample_rate
        scale = sample_rate // 8000
        # The log-power STFT always runs in float32 (no half-precision FFT, and log(|X|^2 + 1e-8)
        # underflows in float16), also under a mixed-precision policy.
        self.spectrogram = LogSpectrogram(1024 * scale, 256 * scale, num_mels, name="spectrogram",
                                          dtype="float32")

    def build(self, input_shape=None):
        width = self.channels // 4
        self.filter_kernels = [
            self.add_weight(name=f"filter_{l}", shape=(self.kernel_size * 2 ** l, width),
                            initializer=torch_uniform(self.kernel_size * 2 ** l))
            for l in range(self.filters)
        ]
        features = width * self.filters + self.num_mels
        self.bottleneck_1 = self.add_weight(name="bottleneck_1", shape=(features, self.channels),
                                            initializer=torch_uniform(features))
        self.bottleneck_2 = self.add_weight(name="bottleneck_2", shape=(self.channels, self.channels),
                                            initializer=torch_uniform(self.channels))
        self.spectrogram.build()

    def filterbank(self, signal):
        """The ReLU'd multi-resolution filterbank: ``(batch, frames, channels/4 * filters)``."""
        paddings = filter_paddings(self.kernel_size, self.stride, self.filters)
        kernel = tf.stack(align_filters(self.filter_kernels, paddings), axis=-1)  # (k_max, channels/4, filters)
        kernel = tf.reshape(kernel, (kernel.shape[0], -1))  # (k_max, channels/4 * filters), interleaved
        padded = tf.pad(signal, [[0, 0], [paddings[-1], paddings[-1]]])
        frames = tf.signal.frame(padded, kernel.shape[0], self.stride)  # (batch, frames, k_max)
        return tf.nn.relu(tf.matmul(frames, kernel))

    def call(self, signal):
        features = self.filterbank(signal)  # (batch, frames, channels/4 * filters)
        spectrogram = self.spectrogram(signal, frames=tf.shape(features)[1])  # (batch, frames, num_mels)
        x = tf.concat([features, tf.cast(spectrogram, features.dtype)], axis=-1)
        x = tf.nn.relu(tf.matmul(x, self.bottleneck_1))
        return tf.matmul(x, self.bottleneck_2)  # (batch, frames, channels)

    def get_config(self):
        config = super().get_config()
        config.update({
            "channels": self.channels, "kernel_size": self.kernel_size, "stride": self.stride,
            "filters": self.filters, "num_mels": self.num_mels, "sample_rate": self.sample_rate,
        })
        return config
