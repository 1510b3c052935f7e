"""The weight generator: instrument embeddings in, the flat parameters of one layer out.

This is what makes Meta-TasNet a *meta-learned* extractor: every conv and norm of the
masking network owns a small generator that maps the (learned) embedding of each
instrument through a bottleneck to that instrument's weights. Folding the result into
constants gives an ordinary per-instrument network (see
``InstrumentLayer.instrument_parameters``).
"""

from __future__ import annotations

import keras

from tf_metatasnet.layers.initializers import torch_uniform


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class WeightGenerator(keras.layers.Layer):
    """``Linear(E_1 -> E_2)`` bottleneck followed by one ``Linear(E_2 -> size)`` head per output.

    Args:
        output_sizes: ``{head name: flat size}``, e.g. ``{"kernel": out*in, "bias": out}``.
            The heads' names are the authors' (``kernel``, ``bias``, ``affine``).
        embedding_dim: ``E_1``, size of the instrument embedding.
        bottleneck_dim: ``E_2``, size of the generator bottleneck.

    Call arguments:
        embedding: ``(instruments, E_1)``.

    Returns:
        ``{head name: (instruments, size)}``.
    """

    def __init__(self, output_sizes: dict, embedding_dim: int, bottleneck_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.output_sizes = dict(output_sizes)
        self.embedding_dim = embedding_dim
        self.bottleneck_dim = bottleneck_dim
        self.bottleneck = keras.layers.Dense(
            bottleneck_dim, name="bottleneck",
            kernel_initializer=torch_uniform(embedding_dim), bias_initializer=torch_uniform(embedding_dim))
        self.heads = {
            name: keras.layers.Dense(
                size, name=name,
                kernel_initializer=torch_uniform(bottleneck_dim), bias_initializer=torch_uniform(bottleneck_dim))
            for name, size in self.output_sizes.items()
        }

    def build(self, input_shape=None):
        self.bottleneck.build((None, self.embedding_dim))
        for head in self.heads.values():
            head.build((None, self.bottleneck_dim))

    def call(self, embedding):
        code = self.bottleneck(embedding)  # (instruments, E_2)
        return {name: head(code) for name, head in self.heads.items()}

    def get_config(self):
        config = super().get_config()
        config.update({
            "output_sizes": self.output_sizes,
            "embedding_dim": self.embedding_dim,
            "bottleneck_dim": self.bottleneck_dim,
        })
        return config
