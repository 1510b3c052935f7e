"""The Keras backend: a ``MetaTasNet`` in this process (the separator's default)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from tf_metatasnet.inference.backends.base import Backend
from tf_metatasnet.models.metatasnet import MetaTasNet


class KerasBackend(Backend):
    """Runs a ``MetaTasNet``'s :meth:`~tf_metatasnet.models.metatasnet.MetaTasNet.separate`.

    Args:
        model: a ``MetaTasNet``.
        jit_compile: compile the model with XLA (faster after a one-off compilation).
        device: a TensorFlow device such as ``"/CPU:0"`` or ``"/GPU:0"`` (default: TF's choice).
    """

    name = "keras"
    window = None
    rescale = "lstsq"

    def __init__(self, model: MetaTasNet, jit_compile: bool = True, device: "str | None" = None):
        if not isinstance(model, MetaTasNet):
            raise TypeError(f"KerasBackend needs a MetaTasNet, got {type(model).__name__}")
        self.model = model
        self.rates = tuple(model.config.stage_rates)
        self.stride = model.config.stride(0)
        self.sources = tuple(model.sources)
        self.device = device
        self._separate = tf.function(model.separate, jit_compile=jit_compile, reduce_retracing=True)

    def __str__(self) -> str:
        return f"keras:{self.model.name}"

    def separate_chunk(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        tensors = [tf.constant(x) for x in inputs]
        if self.device:
            with tf.device(self.device):
                return self._separate(tensors).numpy()
        return self._separate(tensors).numpy()
