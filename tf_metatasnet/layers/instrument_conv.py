"""1x1 convolution with its own weights per instrument (the masking network's channel mixer)."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.layers.initializers import torch_uniform
from tf_metatasnet.layers.instrument_layer import InstrumentLayer
from tf_metatasnet.layers.shapes import dimensions


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class InstrumentConv1x1(InstrumentLayer):
    """Pointwise convolution of the four instruments at once, as one batched matmul.

    Parameters per instrument: ``kernel`` ``(filters, in_channels)`` and, with
    ``use_bias``, ``bias`` ``(filters,)``.

    Args:
        filters: output channels.
        use_bias: add a per-instrument bias. Default ``False``.
        **kwargs: see ``InstrumentLayer`` (``generated``, ``embedding_dim`` ...).

    Call arguments:
        x: ``(instruments, batch, time, in_channels)``.
        embedding: ``(instruments, E_1)``; ignored by static layers.

    Returns:
        ``(instruments, batch, time, filters)``.

    With ``exportable = True`` (``tf_metatasnet.export.graph.make_exportable`` sets it on
    an export copy; it is not saved) each instrument is one plain matmul: with constant
    weights a TFLite ``FULLY_CONNECTED`` op, whose weights the dynamic-range and int8
    quantizers store in int8 (they leave ``BATCH_MATMUL``'s constant operand in float32).
    Same values.
    """

    exportable = False

    def __init__(self, filters: int, use_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.use_bias = use_bias

    def parameter_specs(self, channels):
        specs = {"kernel": ((self.filters, channels), torch_uniform(channels))}
        if self.use_bias:
            specs["bias"] = ((self.filters,), torch_uniform(channels))
        return specs

    def call(self, x, embedding=None):
        params = self.instrument_parameters(embedding)
        instruments, batch, time, _ = dimensions(x)
        if self.exportable:
            outputs = []
            for i in range(self.num_instruments):
                flat = tf.reshape(x[i], (-1, self.input_channels))                  # (batch*time, in)
                y = tf.matmul(flat, params["kernel"][i], transpose_b=True)        # (batch*time, filters)
                if self.use_bias:
                    y += params["bias"][i]
                outputs.append(y)
            y = tf.stack(outputs)                                   # (instruments, batch*time, filters)
            return tf.reshape(y, (instruments, batch, time, self.filters))
        flat = tf.reshape(x, (instruments, -1, self.input_channels))  # (instruments, batch*time, in)
        y = tf.matmul(flat, params["kernel"], transpose_b=True)  # (instruments, batch*time, filters)
        if self.use_bias:
            y += tf.reshape(params["bias"], (instruments, 1, self.filters))
        return tf.reshape(y, (instruments, batch, time, self.filters))  # (instruments, batch, time, filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "use_bias": self.use_bias})
        return config
