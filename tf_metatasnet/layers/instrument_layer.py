"""Base class of the layers whose weights differ per instrument.

Meta-TasNet runs the masking network of the four instruments together. Each of its convs
and norms has one set of parameters per instrument, which are either *generated* from the
instrument embedding (the paper's model) or *static* (``independent_params``, the
baseline). Both kinds store and hand out the parameters in the same per-instrument
layout, ``(instruments, *shape)`` with ``shape`` in PyTorch's order, so the operation that
uses them is written once and the importer maps either kind directly.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import keras
import tensorflow as tf

from tf_metatasnet.layers.generator import WeightGenerator


class InstrumentLayer(keras.layers.Layer):
    """Per-instrument parameters, generated from an embedding or static.

    Subclasses define ``parameter_specs(channels)`` and ``call(x, embedding=None)``.

    Args:
        generated: ``True`` to generate the parameters from the instrument embedding,
            ``False`` for static per-instrument weights. Default ``True``.
        embedding_dim: ``E_1``. Default 8.
        bottleneck_dim: ``E_2``. Default 5.
        num_instruments: number of instruments computed together. Default 4.
    """

    def __init__(self, generated: bool = True, embedding_dim: int = 8, bottleneck_dim: int = 5,
                 num_instruments: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.generated = generated
        self.embedding_dim = embedding_dim
        self.bottleneck_dim = bottleneck_dim
        self.num_instruments = num_instruments

    def parameter_specs(self, channels: int) -> dict:
        """``{name: (shape, static initializer)}`` for an input of ``channels`` channels."""
        raise TypeError(f"{type(self).__name__} must define parameter_specs()")

    def build(self, input_shape):
        self.input_channels = int(input_shape[-1])
        self._shapes = {name: tuple(shape)
                        for name, (shape, _) in self.parameter_specs(self.input_channels).items()}
        if self.generated:
            self.generator = WeightGenerator(
                {name: math.prod(shape) for name, shape in self._shapes.items()},
                self.embedding_dim, self.bottleneck_dim, name="generator")
            self.generator.build((self.num_instruments, self.embedding_dim))
            self.generator.trainable = self.trainable  # a frozen layer's generator is frozen too
        else:
            self.static = {
                name: self.add_weight(name=name, shape=(self.num_instruments, *shape), initializer=init)
                for name, (shape, init) in self.parameter_specs(self.input_channels).items()
            }

    #: ``{name: (instruments, *shape)}`` tensors used instead of the weights while set (see
    #: ``tf_metatasnet.models.fixed.fixed_parameters``: inference traces with the generators'
    #: outputs as constants); ``None`` otherwise.
    fixed_parameters = None

    def instrument_parameters(self, embedding=None) -> dict:
        """``{name: (instruments, *shape)}``: the parameters each instrument uses now.

        For a generated layer this runs the generator on ``embedding`` ``(instruments, E_1)``;
        the result is what "folding the generator" turns into constants.
        """
        if self.fixed_parameters is not None:
            return dict(self.fixed_parameters)
        if not self.generated:
            return dict(self.static)
        if embedding is None:
            raise ValueError(f"{self.name}: a generated layer needs the instrument embedding")
        flat = self.generator(embedding)
        return {name: tf.reshape(flat[name], (-1, *shape))  # (instruments, *shape)
                for name, shape in self._shapes.items()}

    def get_config(self):
        config = super().get_config()
        config.update({
            "generated": self.generated,
            "embedding_dim": self.embedding_dim,
            "bottleneck_dim": self.bottleneck_dim,
            "num_instruments": self.num_instruments,
        })
        return config


@contextlib.contextmanager
def lent_parameters(parameters: list) -> Iterator[None]:
    """While the block runs, each layer of ``parameters``, ``[(layer, {name: (instruments,
    *shape) tensor})]``, uses those tensors instead of its weights or its generator; they are
    removed again on leaving, even on error.

    Used to trace inference with the generators' outputs as constants
    (``tf_metatasnet.models.fixed``) and to recompute a masking-TCN segment from parameters
    generated outside it (``MaskingTCN(recompute=True)``).
    """
    try:
        for layer, values in parameters:
            layer.fixed_parameters = values
        yield
    finally:
        for layer, _ in parameters:
            layer.fixed_parameters = None
