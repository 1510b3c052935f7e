"""PyTorch's default initialisation, so that training from scratch starts where the authors' did.

``torch.nn.Conv1d`` and ``torch.nn.Linear`` draw weights and biases from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (Kaiming-uniform with ``a=sqrt(5)``).
"""

import math

import keras


def torch_uniform(fan_in: int) -> keras.initializers.Initializer:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, PyTorch's default for weights and biases."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return keras.initializers.RandomUniform(-bound, bound)
