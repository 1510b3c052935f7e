"""The encoder's spectrogram branch: normalised log-power STFT, learned projection, resampled in time."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_metatasnet.layers.initializers import torch_uniform

#: ``log10(p + 1e-8) = log10(SCALE * p + SCALE * 1e-8) - log10(SCALE)``: with SCALE = 1e4
#: every scalar of the export formulation is a normal float16 number (1e-8 is not: it
#: rounds to 0).
_LOG_SCALE = 1e4


def _exact_vector(values, anchor):
    """``values`` (a float32 vector) rebuilt at run time from the int32 constant of its bits.

    The float16 TFLite variant stores float constants in float16, which ruins the
    spectrogram branch (the Hann window's rounding leaks energy into silent bins, and
    per-bin statistics with small std are shifted); integer constants are left alone.
    ``anchor`` (an int32 zero computed from the input) keeps the converter from folding
    the bitcast back into a float constant. Exact: the same float32 values.
    """
    bits = tf.constant(np.asarray(values, np.float32).view(np.int32))
    return tf.bitcast(bits + anchor, tf.float32)


def reflect_indices(length, pad):
    """Indices that extend ``range(length)`` by ``pad`` mirrored samples on each side.

    Equals ``torch.nn.functional.pad(mode="reflect")`` whenever ``pad < length`` and, unlike
    it, keeps reflecting for shorter signals, so that any input length works.
    """
    positions = tf.range(-pad, length + pad)
    period = tf.maximum(2 * (length - 1), 1)
    positions = tf.math.floormod(positions, period)
    return tf.where(positions >= length, period - positions, positions)


def linear_resize_align_corners(x, size):
    """Linear interpolation along axis 1 to ``size`` frames, ``align_corners=True`` semantics.

    Args:
        x: ``(batch, frames, channels)``.
        size: output frame count (scalar tensor or int).

    Returns:
        ``(batch, size, channels)``, as ``torch.nn.functional.interpolate(mode="linear",
        align_corners=True)``.
    """
    frames = tf.shape(x)[1]
    scale = tf.cast(frames - 1, tf.float32) / tf.cast(tf.maximum(size - 1, 1), tf.float32)
    position = tf.cast(tf.range(size), tf.float32) * scale
    left = tf.cast(tf.floor(position), tf.int32)
    left = tf.minimum(left, frames - 1)
    right = tf.minimum(left + 1, frames - 1)
    weight = tf.clip_by_value(position - tf.cast(left, tf.float32), 0.0, 1.0)[None, :, None]
    return tf.gather(x, left, axis=1) * (1.0 - weight) + tf.gather(x, right, axis=1) * weight


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class LogSpectrogram(keras.layers.Layer):
    """Normalised log-power spectrogram with a learned projection to ``num_mels`` channels.

    STFT (periodic Hann window of ``n_fft``, hop ``hop``, centred with reflect padding),
    ``log10(|X|^2 + 1e-8)``, per-frequency standardisation with statistics computed from
    training data (``mean``/``std``, frozen), a learned per-frequency affine, then a 1x1
    projection to ``num_mels`` channels, linearly resampled to the encoder's frame count.

    Args:
        n_fft: FFT size (``1024 * rate // 8000`` in the paper).
        hop: hop length (``256 * rate // 8000``).
        num_mels: output channels.

    Call arguments:
        signal: ``(batch, samples)`` waveform.
        frames: the number of output frames (the encoder's ``T'``); pass it by keyword
            (Keras 3 takes only tensors as further positional arguments).

    Returns:
        ``(batch, frames, num_mels)``.

    With ``exportable = True`` (``tf_metatasnet.export.graph.make_exportable`` sets it on
    an export copy; it is not saved) the layer computes the same values in a form whose
    precision survives float16 weight storage in TFLite: ``log10(1e4 * |X|^2 + 1e-4) - 4``,
    the window and the per-bin statistics and affine rebuilt from exact integer constants
    (``_exact_vector``), and fixed-length signals reflect-padded with slices (the index
    vector would be a constant as long as the window).
    """

    exportable = False

    def __init__(self, n_fft: int, hop: int, num_mels: int, **kwargs):
        super().__init__(**kwargs)
        self.n_fft = n_fft
        self.hop = hop
        self.num_mels = num_mels

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1

    def build(self, input_shape=None):
        bins = self.num_bins
        hann = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(self.n_fft) / self.n_fft)).astype("float32")
        self.window = self.add_weight(name="window", shape=(self.n_fft,), trainable=False,
                                      initializer=keras.initializers.Constant(hann))
        self.mean = self.add_weight(name="mean", shape=(bins,), trainable=False, initializer="zeros")
        self.std = self.add_weight(name="std", shape=(bins,), trainable=False, initializer="ones")
        self.affine_scale = self.add_weight(name="affine_scale", shape=(bins,), initializer="ones")
        self.affine_bias = self.add_weight(name="affine_bias", shape=(bins,), initializer="zeros")
        self.mel_kernel = self.add_weight(name="mel_kernel", shape=(bins, self.num_mels),
                                          initializer=torch_uniform(bins))
        self.mel_bias = self.add_weight(name="mel_bias", shape=(self.num_mels,),
                                        initializer=torch_uniform(bins))

    def log_power(self, signal):
        """``log10(|STFT|^2 + 1e-8)`` of ``(batch, samples)``: ``(batch, stft_frames, bins)``.

        Also used to compute the ``mean``/``std`` statistics from training data.
        """
        length = tf.shape(signal)[-1]
        padded = tf.gather(signal, reflect_indices(length, self.n_fft // 2), axis=-1)  # (batch, samples + n_fft)
        frames = tf.signal.frame(padded, self.n_fft, self.hop)  # (batch, stft_frames, n_fft)
        spectrum = tf.signal.rfft(frames * self.window)  # (batch, stft_frames, bins)
        power = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
        return tf.math.log(power + 1e-8) * (1.0 / np.log(10.0))

    def call(self, signal, frames):
        if self.exportable:
            v = self._export_vectors(signal)
            x = self._export_log_power(signal, v["window"])  # (batch, stft_frames, bins)
        else:
            v = {"mean": self.mean, "std": self.std, "affine_scale": self.affine_scale,
                 "affine_bias": self.affine_bias}
            x = self.log_power(signal)  # (batch, stft_frames, bins)
        x = (x - v["mean"]) / v["std"]
        x = x * v["affine_scale"] + v["affine_bias"]
        x = tf.matmul(x, self.mel_kernel) + self.mel_bias  # (batch, stft_frames, num_mels)
        return linear_resize_align_corners(x, frames)  # (batch, frames, num_mels)

    # ---------------------------------------------------------- export formulation
    def _export_vectors(self, signal):
        """The window, statistics and affine as exact constants (see ``_exact_vector``)."""
        # A zero that depends on the input: abs(x) >= 0, so min(abs(x), 0) == 0.
        anchor = tf.cast(tf.minimum(tf.abs(signal[0, 0]), 0.0), tf.int32)
        names = ("window", "mean", "std", "affine_scale", "affine_bias")
        with tf.init_scope():  # the weights' current values, also while tracing
            values = {name: np.asarray(getattr(self, name).numpy()) for name in names}
        return {name: _exact_vector(values[name], anchor) for name in names}

    def _export_log_power(self, signal, window):
        """``log_power`` with float16-safe scalars and slice padding; same values."""
        length = tf.shape(signal)[-1]
        pad = self.n_fft // 2
        if signal.shape[-1] is not None and signal.shape[-1] > pad:
            # Reflect padding by slices: no index constant as long as the window.
            padded = tf.concat([tf.reverse(signal[:, 1:pad + 1], [1]), signal,
                                tf.reverse(signal[:, -pad - 1:-1], [1])], axis=1)  # (batch, samples + n_fft)
        else:
            padded = tf.gather(signal, reflect_indices(length, pad), axis=-1)
        frames = tf.signal.frame(padded, self.n_fft, self.hop)  # (batch, stft_frames, n_fft)
        spectrum = tf.signal.rfft(frames * window)  # (batch, stft_frames, bins)
        power = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
        scaled = tf.math.log(power * _LOG_SCALE + _LOG_SCALE * 1e-8) * (1.0 / np.log(10.0))
        return scaled - np.log10(_LOG_SCALE)

    def get_config(self):
        config = super().get_config()
        config.update({"n_fft": self.n_fft, "hop": self.hop, "num_mels": self.num_mels})
        return config
