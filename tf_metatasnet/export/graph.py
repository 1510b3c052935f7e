"""The model as frozen TensorFlow graphs with named inputs and outputs, for export.

Every exported artifact (the SavedModels for TF Serving, the TFLite models) is made from
one of two functions of the normalised stage mixtures:

- :func:`stems_signature`: all four stems, ``{"drums": (batch, samples_last), ...}``;
- :func:`instrument_signature`: one instrument. Earlier stages never decode waveforms and
  the last decodes only this instrument's separated latent; all four masking networks
  still run, because the masks are a softmax across the instruments.

Inputs are named ``mixture_<rate>`` (``mixture_8000``, ``mixture_16000``,
``mixture_32000`` for the paper model), each ``(batch, samples_i)`` float32 at the stage's
rate, already resampled (outside the graph, with soxr as the separator does) and divided
by the song's standard deviation at that rate; ``samples_i = window * 2**i`` with
``window`` a multiple of the model's stride. The graphs are frozen: the weights are
constants, so a SavedModel has no variables and the TFLite converter folds them.

For TFLite, :func:`make_exportable` switches two layers of an export copy to formulations
with the same values that quantize well: ``ExportInstrumentConv1x1`` (one plain matmul
per instrument) and ``ExportLogSpectrogram`` (constants that survive float16 storage).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
# Freezing has no public API in TF 2. The TFLite converter keeps Keras 3 weights as
# resource variables (VAR_HANDLE / READ_VARIABLE ops that read uninitialised values in
# the interpreter) unless the graph is frozen first.
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tf_metatasnet.layers.instrument_conv import InstrumentConv1x1
from tf_metatasnet.layers.spectrogram import (LogSpectrogram, linear_resize_align_corners,
                                              reflect_indices)

#: ``log10(p + 1e-8) = log10(SCALE * p + SCALE * 1e-8) - log10(SCALE)``: with SCALE = 1e4
#: every scalar is a normal float16 number (1e-8 is not: it rounds to 0).
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


class ExportLogSpectrogram(LogSpectrogram):
    """``LogSpectrogram`` whose precision survives float16 weight storage; same values.

    Computes ``log10(1e4 * |X|^2 + 1e-4) - 4`` (= ``log10(|X|^2 + 1e-8)``), rebuilds the
    window and the per-bin statistics and affine from exact integer constants (see
    ``_exact_vector``) and reflect-pads fixed-length signals with slices (the parent's
    index vector would be a constant as long as the window). Shapes as ``LogSpectrogram``.
    """

    def _vectors(self, signal):
        # A zero that depends on the input: abs(x) >= 0, so min(abs(x), 0) == 0.
        anchor = tf.cast(tf.minimum(tf.abs(signal[0, 0]), 0.0), tf.int32)
        names = ("window", "mean", "std", "affine_scale", "affine_bias")
        with tf.init_scope():  # the weights' current values, also while tracing
            values = {name: np.asarray(getattr(self, name).numpy()) for name in names}
        return {name: _exact_vector(values[name], anchor) for name in names}

    def log_power(self, signal, window=None):
        window = self._vectors(signal)["window"] if window is None else window
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

    def call(self, signal, frames):
        v = self._vectors(signal)
        x = self.log_power(signal, v["window"])  # (batch, stft_frames, bins)
        x = (x - v["mean"]) / v["std"]
        x = x * v["affine_scale"] + v["affine_bias"]
        x = tf.matmul(x, self.mel_kernel) + self.mel_bias  # (batch, stft_frames, num_mels)
        return linear_resize_align_corners(x, frames)  # (batch, frames, num_mels)


class ExportInstrumentConv1x1(InstrumentConv1x1):
    """``InstrumentConv1x1`` as one plain matmul per instrument; same values.

    With constant weights each becomes a TFLite ``FULLY_CONNECTED`` op, whose weights the
    dynamic-range and int8 quantizers store in int8 (they leave ``BATCH_MATMUL``'s
    constant operand in float32). Shapes as ``InstrumentConv1x1``.
    """

    def call(self, x, embedding=None):
        params = self.instrument_parameters(embedding)
        shape = tf.shape(x)
        outputs = []
        for i in range(self.num_instruments):
            flat = tf.reshape(x[i], (-1, self.input_channels))                  # (batch*time, in)
            y = tf.matmul(flat, params["kernel"][i], transpose_b=True)        # (batch*time, filters)
            if self.use_bias:
                y += params["bias"][i]
            outputs.append(y)
        y = tf.stack(outputs)                                                 # (instruments, batch*time, filters)
        return tf.reshape(y, (shape[0], shape[1], shape[2], self.filters))


_EXPORT_CLASSES = {LogSpectrogram: ExportLogSpectrogram, InstrumentConv1x1: ExportInstrumentConv1x1}


def make_exportable(model):
    """Switches ``model``'s layers to their export formulations (same weights, same values).

    ``ExportLogSpectrogram`` and ``ExportInstrumentConv1x1`` replace their parents in
    place: use it on an export copy only (e.g. a folded model), since saving the model as
    ``.keras`` afterwards would record the export classes.
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):  # noqa: SLF001
        if type(layer) in _EXPORT_CLASSES:
            layer.__class__ = _EXPORT_CLASSES[type(layer)]
    return model


def input_name(rate: int) -> str:
    """The signature input of the stage at ``rate`` Hz: ``mixture_<rate>``."""
    return f"mixture_{rate}"


def input_specs(config, window: "int | None" = None, batch: "int | None" = None) -> list:
    """One ``tf.TensorSpec`` per stage, ``(batch, window * 2**i)``; ``None`` = any size."""
    base = config.stage_rates[0]
    return [tf.TensorSpec((batch, None if window is None else window * rate // base), tf.float32,
                          name=input_name(rate))
            for rate in config.stage_rates]


def extract_instrument(model, mixtures, index: int):
    """One instrument's estimate: ``(batch, samples_last)`` from the stage mixtures.

    Same values as ``model.separate(mixtures)[:, index]``, decoding only that instrument.
    """
    previous = None
    for stage, mixture in zip(model.stages, mixtures):
        _, previous, _ = stage(mixture, previous, decode=False)  # (instruments, batch, frames, N)
    return model.stages[-1].decoder(previous[index])  # (batch, samples_last)


def _frozen_signature(compute, specs, output_names):
    """Freezes ``compute(*mixtures) -> list of tensors`` into a signature function.

    Returns a concrete function with keyword inputs named after ``specs`` and a dict of
    outputs named ``output_names``, whose graph holds the weights as constants.
    """
    traced = tf.function(compute, input_signature=specs).get_concrete_function()
    frozen = convert_variables_to_constants_v2(traced)

    def serve(*mixtures):
        return dict(zip(output_names, frozen(*mixtures)))

    return tf.function(serve, input_signature=specs).get_concrete_function()


def stems_signature(model, window: "int | None" = None, batch: "int | None" = None):
    """All stems: inputs ``mixture_<rate>``, outputs ``{source: (batch, samples_last)}``."""
    sources = list(model.sources)

    def compute(*mixtures):
        estimates = model.separate(list(mixtures))  # (batch, sources, samples_last)
        return [estimates[:, k] for k in range(len(sources))]

    return _frozen_signature(compute, input_specs(model.config, window, batch), sources)


def instrument_signature(model, instrument: str, window: "int | None" = None,
                         batch: "int | None" = None):
    """One instrument: inputs ``mixture_<rate>``, output ``{instrument: (batch, samples_last)}``.

    ``model`` is best a folded one (``tf_metatasnet.export.folding.fold_generator``); a generated
    model gives the same values with the generator frozen into the graph.
    """
    if instrument not in model.sources:
        raise ValueError(f"unknown instrument {instrument!r} (choose from {', '.join(model.sources)})")
    index = model.sources.index(instrument)

    def compute(*mixtures):
        return [extract_instrument(model, list(mixtures), index)]

    return _frozen_signature(compute, input_specs(model.config, window, batch), [instrument])


def save_signature(path: "str | os.PathLike", signature) -> str:
    """Writes a SavedModel whose ``serving_default`` is ``signature``, atomically.

    The folder is written beside ``path`` under a temporary name and renamed into place,
    replacing an existing SavedModel there.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        # Inference only: the layers' custom gradients (exact group norm) are not saved.
        tf.saved_model.save(tf.Module(), temporary, signatures={"serving_default": signature},
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return path
