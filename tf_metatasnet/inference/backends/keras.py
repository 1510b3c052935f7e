"""The Keras backend: a ``MetaTasNet`` in this process (the separator's default)."""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import tensorflow as tf

from tf_metatasnet.inference.backends.base import Backend
from tf_metatasnet.memory import release_free_memory
from tf_metatasnet.models.fixed import compute_fixed_parameters, fixed_parameters
from tf_metatasnet.models.metatasnet import MetaTasNet


class KerasBackend(Backend):
    """Runs a ``MetaTasNet``'s :meth:`~tf_metatasnet.models.metatasnet.MetaTasNet.separate`.

    Args:
        model: a ``MetaTasNet``.
        jit_compile: compile the model with XLA (faster after a one-off compilation).
        device: a TensorFlow device such as ``"/CPU:0"`` or ``"/GPU:0"`` (default: TF's choice).
        fix_generated: compute the generators' outputs once, now, and trace the model with
            them as constants (default): the same values, a smaller graph that traces,
            compiles and runs faster. The backend then keeps the weights the model has when
            it is made; pass ``False`` to follow later changes of the model's weights.
        max_items: at most this many rows (windows times channels) per model call; a larger
            batch runs in pieces. Default 1 on a CPU: the convolutions already use every core,
            so batching gains nothing there while peak memory grows with it. ``None`` runs
            what it is given at once. ``"auto"`` (default): ``None`` when ``device`` names a
            GPU, else 1.
    """

    name = "keras"
    window = None
    rescale = "lstsq"

    def __init__(self, model: MetaTasNet, jit_compile: bool = True, device: "str | None" = None,
                 fix_generated: bool = True, max_items: "int | str | None" = "auto"):
        if not isinstance(model, MetaTasNet):
            raise TypeError(f"KerasBackend needs a MetaTasNet, got {type(model).__name__}")
        if max_items == "auto":   # one row at a time, unless on a GPU
            max_items = None if device and "GPU" in device.upper() else 1
        if max_items is not None and max_items < 1:
            raise ValueError(f"max_items must be positive or None, got {max_items}")
        self.model = model
        self.rates = tuple(model.config.stage_rates)
        self.stride = model.config.stride(0)
        self.sources = tuple(model.sources)
        self.device = device
        self.max_items = max_items
        self._fixed = compute_fixed_parameters(model) if fix_generated else []

        def separate(mixtures):
            with fixed_parameters(self._fixed):   # read while tracing only
                return model.separate(mixtures)

        # No AutoGraph: the model has no Python control flow on tensors, and converting its
        # layers' code only lengthens tracing.
        self._separate = tf.function(separate, jit_compile=jit_compile, reduce_retracing=True,
                                     autograph=False)

    def __str__(self) -> str:
        return f"keras:{self.model.name}"

    def _run(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        tensors = [tf.constant(x) for x in inputs]
        with tf.device(self.device) if self.device else contextlib.nullcontext():
            result = self._separate(tensors).numpy()
        # The window's freed tensors stay in the C heap, fragmented, unless handed back:
        # a song's memory would grow from window to window (tf_metatasnet.memory).
        release_free_memory()
        return result

    def separate_chunk(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        rows = len(inputs[0])
        step = self.max_items or rows
        if step >= rows:
            return self._run(inputs)
        return np.concatenate([self._run([x[start:start + step] for x in inputs])   # (step, S, n)
                               for start in range(0, rows, step)])
