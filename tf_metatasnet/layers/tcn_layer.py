"""One dilated temporal-convolution layer of the masking network."""

from __future__ import annotations

import keras

from tf_metatasnet.layers.instrument_conv import InstrumentConv1x1
from tf_metatasnet.layers.instrument_depthwise_conv import InstrumentDepthwiseConv
from tf_metatasnet.layers.instrument_group_norm import InstrumentGroupNorm
from tf_metatasnet.layers.prelu import SharedPReLU


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class TCNLayer(keras.layers.Layer):
    """1x1 conv (B -> H), PReLU, GroupNorm, dilated depthwise conv, PReLU, GroupNorm, then
    a residual and a skip 1x1 conv (H -> B), all with per-instrument weights.

    Args:
        bottleneck_channels: ``B``.
        hidden_channels: ``H``.
        kernel_size: depthwise kernel. Default 3.
        dilation_rate: depthwise dilation. Default 1.
        residual_bias: biases on the residual and skip convs. Default ``False``.
        generated: generated (``True``) or static per-instrument weights. Default ``True``.
        embedding_dim: ``E_1``. Default 8.
        bottleneck_dim: ``E_2``. Default 5.
        num_instruments: sources computed together. Default 4.

    Call arguments:
        x: ``(instruments, batch, time, B)``.
        embedding: ``(instruments, E_1)`` or ``None`` for static weights.
        residual: compute the residual output (``False`` returns ``None`` for it: the last
            layer's residual is never used).
        training: in training each PReLU runs inside the norm after it
            (``InstrumentGroupNorm(slope=...)``), whose gradient keeps fewer activations;
            at inference they run one after the other. Same values either way.

    Returns:
        ``(residual, skip)``, each ``(instruments, batch, time, B)``.
    """

    def __init__(self, bottleneck_channels: int, hidden_channels: int, kernel_size: int = 3,
                 dilation_rate: int = 1, residual_bias: bool = False, generated: bool = True,
                 embedding_dim: int = 8, bottleneck_dim: int = 5, num_instruments: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.bottleneck_channels = bottleneck_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.residual_bias = residual_bias
        self.generated = generated
        self.embedding_dim = embedding_dim
        self.bottleneck_dim = bottleneck_dim
        self.num_instruments = num_instruments
        common = dict(generated=generated, embedding_dim=embedding_dim, bottleneck_dim=bottleneck_dim,
                      num_instruments=num_instruments)
        self.conv1d = InstrumentConv1x1(hidden_channels, name="conv1d", **common)
        self.prelu_1 = SharedPReLU(name="prelu_1")
        self.norm_1 = InstrumentGroupNorm(name="norm_1", **common)
        self.dconv1d = InstrumentDepthwiseConv(kernel_size, dilation_rate, name="dconv1d", **common)
        self.prelu_2 = SharedPReLU(name="prelu_2")
        self.norm_2 = InstrumentGroupNorm(name="norm_2", **common)
        self.res_out = InstrumentConv1x1(bottleneck_channels, residual_bias, name="res_out", **common)
        self.skip_out = InstrumentConv1x1(bottleneck_channels, residual_bias, name="skip_out", **common)

    def build(self, input_shape=None):
        hidden = (None, None, None, self.hidden_channels)
        self.conv1d.build((None, None, None, self.bottleneck_channels))
        for layer in (self.prelu_1, self.norm_1, self.dconv1d, self.prelu_2, self.norm_2,
                      self.res_out, self.skip_out):
            layer.build(hidden)

    def call(self, x, embedding=None, residual=True, training=False):
        x = prelu_norm(self.prelu_1, self.norm_1, self.conv1d(x, embedding), embedding,
                       training)  # (instruments, batch, time, H)
        x = prelu_norm(self.prelu_2, self.norm_2, self.dconv1d(x, embedding), embedding, training)
        return (self.res_out(x, embedding) if residual else None), self.skip_out(x, embedding)

    def get_config(self):
        config = super().get_config()
        config.update({
            "bottleneck_channels": self.bottleneck_channels, "hidden_channels": self.hidden_channels,
            "kernel_size": self.kernel_size, "dilation_rate": self.dilation_rate,
            "residual_bias": self.residual_bias, "generated": self.generated,
            "embedding_dim": self.embedding_dim, "bottleneck_dim": self.bottleneck_dim,
            "num_instruments": self.num_instruments,
        })
        return config


def prelu_norm(prelu: SharedPReLU, norm: InstrumentGroupNorm, x, embedding, training: bool):
    """``norm(prelu(x))``; in training as one operation with a leaner gradient
    (``InstrumentGroupNorm(slope=...)``), at inference as the two layers."""
    if training:
        return norm(x, embedding, slope=prelu.alpha)
    return norm(prelu(x), embedding)
