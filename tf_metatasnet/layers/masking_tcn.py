"""The masking network: a TCN that turns the mixture latent into four softmax masks."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.layers.instrument_conv import InstrumentConv1x1
from tf_metatasnet.layers.instrument_group_norm import InstrumentGroupNorm
from tf_metatasnet.layers.prelu import SharedPReLU
from tf_metatasnet.layers.tcn_layer import TCNLayer


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class MaskingTCN(keras.layers.Layer):
    """Masks for the four instruments, computed together with per-instrument weights.

    PReLU, GroupNorm, 1x1 conv (-> B), PReLU, GroupNorm; ``stack * layers`` TCN layers
    with dilations ``2**(j % layers)``, residual connections and summed skips; PReLU,
    GroupNorm, 1x1 conv (-> N), PReLU, GroupNorm; softmax across the instruments, so the
    four masks of a latent value sum to one.

    Args:
        channels: ``N_i``, the mask's channels.
        input_channels: channels of the input (``N_i``, or ``N_i + N_{i-1}`` from stage 1 on).
        bottleneck_channels: ``B``.
        hidden_channels: ``H``.
        num_layers: TCN layers per stack (``layers``). Default 6.
        num_stacks: TCN stacks (``stack``). Default 3.
        kernel_size: depthwise kernel. Default 3.
        residual_bias: biases on residual/skip convs. Default ``False``.
        generated: generated or static weights. Default ``True``.
        embedding_dim: ``E_1``. Default 8.
        bottleneck_dim: ``E_2``. Default 5.
        num_instruments: sources computed together. Default 4.
        recompute: recompute activations in the backward pass instead of keeping them from
            the forward pass (gradient checkpointing with ``tf.recompute_grad``, in segments:
            the head, each TCN layer, the tail). The TCN holds most of a training step's
            memory (each layer a dozen ``(instruments, batch, time, H)`` tensors); with
            this only each segment's input is kept. Same outputs and gradients. Default
            ``False``.

    Call arguments:
        x: ``(instruments, batch, time, input_channels)``.
        embedding: ``(instruments, E_1)`` or ``None`` for static weights.
        training: recomputation (``recompute``) applies in training only, and only inside
            a ``tf.function`` (the eager gradients of ``tf.recompute_grad`` are wrong).

    Returns:
        ``(instruments, batch, time, channels)`` masks.
    """

    def __init__(self, channels: int, input_channels: int, bottleneck_channels: int,
                 hidden_channels: int, num_layers: int = 6, num_stacks: int = 3, kernel_size: int = 3,
                 residual_bias: bool = False, generated: bool = True, embedding_dim: int = 8,
                 bottleneck_dim: int = 5, num_instruments: int = 4, recompute: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.input_channels = input_channels
        self.bottleneck_channels = bottleneck_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.num_stacks = num_stacks
        self.kernel_size = kernel_size
        self.residual_bias = residual_bias
        self.generated = generated
        self.embedding_dim = embedding_dim
        self.bottleneck_dim = bottleneck_dim
        self.num_instruments = num_instruments
        self.recompute = recompute
        common = dict(generated=generated, embedding_dim=embedding_dim, bottleneck_dim=bottleneck_dim,
                      num_instruments=num_instruments)
        self.prelu_1 = SharedPReLU(name="prelu_1")
        self.norm_1 = InstrumentGroupNorm(name="norm_1", **common)
        self.in_conv = InstrumentConv1x1(bottleneck_channels, name="in_conv", **common)
        self.prelu_2 = SharedPReLU(name="prelu_2")
        self.norm_2 = InstrumentGroupNorm(name="norm_2", **common)
        self.tcn = [
            TCNLayer(bottleneck_channels, hidden_channels, kernel_size, 2 ** (j % num_layers),
                     residual_bias, name=f"tcn_{j}", **common)
            for j in range(num_stacks * num_layers)
        ]
        # The last layer's residual output feeds nothing (in the authors' model too): it is
        # not computed, and its weights, kept for checkpoint compatibility, are frozen.
        self.tcn[-1].res_out.trainable = False
        self.prelu_3 = SharedPReLU(name="prelu_3")
        self.norm_3 = InstrumentGroupNorm(name="norm_3", **common)
        self.mask_output = InstrumentConv1x1(channels, name="mask_output", **common)
        self.prelu_4 = SharedPReLU(name="prelu_4")
        self.norm_4 = InstrumentGroupNorm(name="norm_4", **common)

    def build(self, input_shape=None):
        def shape(channels):
            return (None, None, None, channels)

        for layer in (self.prelu_1, self.norm_1, self.in_conv):
            layer.build(shape(self.input_channels))
        for layer in (self.prelu_2, self.norm_2, *self.tcn, self.prelu_3, self.norm_3, self.mask_output):
            layer.build(shape(self.bottleneck_channels))
        for layer in (self.prelu_4, self.norm_4):
            layer.build(shape(self.channels))

    def call(self, x, embedding=None, training=False):
        # Only in graph mode (tf.function, as Keras's fit runs): eagerly, tf.recompute_grad's
        # variable gradients are wrong (TF 2.21; tests/models/test_metatasnet.py checks both modes).
        recompute = self.recompute and training and not tf.executing_eagerly()
        segment = self._checkpointed if recompute else self._plain
        x = segment(self._head, x, embedding)  # (instruments, batch, time, B)
        skips = 0.0
        for j, layer in enumerate(self.tcn):
            if j < len(self.tcn) - 1:
                residual, skip = segment(layer, x, embedding)
                x = x + residual
            else:
                skip = segment(lambda x, embedding: layer(x, embedding, residual=False)[1],
                               x, embedding)
            skips = skips + skip
        return segment(self._tail, skips, embedding)  # (instruments, batch, time, N)

    def _head(self, x, embedding):
        x = self.in_conv(self.norm_1(self.prelu_1(x), embedding), embedding)  # (instruments, batch, time, B)
        return self.norm_2(self.prelu_2(x), embedding)

    def _tail(self, skips, embedding):
        x = self.mask_output(self.norm_3(self.prelu_3(skips), embedding), embedding)  # (instruments, batch, time, N)
        x = self.norm_4(self.prelu_4(x), embedding)
        # Softmax across the (few) instruments on the leading axis, without transposes. The
        # shift by the maximum only guards exp() (softmax ignores it), so it carries no
        # gradient: reduce_max's gradient here gave NaN under XLA.
        x = tf.exp(x - tf.stop_gradient(tf.reduce_max(x, axis=0, keepdims=True)))
        return x / tf.reduce_sum(x, axis=0, keepdims=True)

    @staticmethod
    def _plain(function, x, embedding):
        return function(x, embedding)

    @staticmethod
    def _checkpointed(function, x, embedding):
        """``function(x, embedding)`` under ``tf.recompute_grad``.

        The network is checkpointed in segments (the head, each TCN layer, the tail), so
        a training step keeps only the segments' inputs and recomputes the rest during
        the backward pass.
        """
        if embedding is None:  # recompute_grad takes tensors only
            return tf.recompute_grad(lambda x: function(x, None))(x)
        return tf.recompute_grad(function)(x, embedding)

    def get_config(self):
        config = super().get_config()
        config.update({
            "channels": self.channels, "input_channels": self.input_channels,
            "bottleneck_channels": self.bottleneck_channels, "hidden_channels": self.hidden_channels,
            "num_layers": self.num_layers, "num_stacks": self.num_stacks, "kernel_size": self.kernel_size,
            "residual_bias": self.residual_bias, "generated": self.generated,
            "embedding_dim": self.embedding_dim, "bottleneck_dim": self.bottleneck_dim,
            "num_instruments": self.num_instruments, "recompute": self.recompute,
        })
        return config
