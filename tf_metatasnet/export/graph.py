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

For TFLite, :func:`make_exportable` switches two kinds of layer of an export copy to
formulations with the same values that quantize well: ``InstrumentConv1x1`` to one plain
matmul per instrument, ``LogSpectrogram`` to constants that survive float16 storage.
"""

from __future__ import annotations

import os

import tensorflow as tf

from tf_metatasnet.atomic import write_directory_atomically
from tf_metatasnet.compat import freeze
from tf_metatasnet.layers.instrument_conv import InstrumentConv1x1
from tf_metatasnet.layers.spectrogram import LogSpectrogram
from tf_metatasnet.layers.traversal import sublayers


def make_exportable(model):
    """Switches ``model``'s spectrograms and per-instrument 1x1 convs to their export
    formulations (same weights, same values; ``exportable`` of ``LogSpectrogram`` and
    ``InstrumentConv1x1``). Meant for an export copy (e.g. a folded model); the switch is
    not saved with the model. Returns ``model``.
    """
    for layer in sublayers(model):
        if isinstance(layer, (LogSpectrogram, InstrumentConv1x1)):
            layer.exportable = True
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
    traced = tf.function(compute, input_signature=specs, autograph=False).get_concrete_function()
    frozen = freeze(traced)

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
    """Writes a SavedModel whose ``serving_default`` is ``signature``, atomically (built
    beside ``path``, then renamed into place, replacing what is there: callers check first)."""
    def write(folder: str) -> None:
        # Inference only: the layers' custom gradients (exact group norm) are not saved.
        tf.saved_model.save(tf.Module(), folder, signatures={"serving_default": signature},
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))

    return write_directory_atomically(path, write)
