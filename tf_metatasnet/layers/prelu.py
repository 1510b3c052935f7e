"""PReLU with one slope shared by every channel (PyTorch's ``nn.PReLU()`` default)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class SharedPReLU(keras.layers.Layer):
    """``max(0, x) + alpha * min(0, x)`` with a single learned ``alpha``.

    Args:
        alpha_initializer: initial slope. Default ``0.25`` (PyTorch's).

    Call arguments:
        x: a tensor of any shape.
    """

    def __init__(self, alpha_initializer: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = alpha_initializer

    def build(self, input_shape=None):
        self.alpha = self.add_weight(
            name="alpha", shape=(1,),
            initializer=keras.initializers.Constant(self.alpha_initializer))

    def call(self, x):
        return tf.where(x >= 0, x, x * self.alpha)

    def get_config(self):
        config = super().get_config()
        config.update({"alpha_initializer": self.alpha_initializer})
        return config
