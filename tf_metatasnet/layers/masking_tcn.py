"""The masking network: a TCN that turns the mixture latent into four softmax masks."""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from tf_metatasnet.layers.instrument_conv import InstrumentConv1x1
from tf_metatasnet.layers.instrument_group_norm import InstrumentGroupNorm
from tf_metatasnet.layers.instrument_layer import InstrumentLayer, lent_parameters
from tf_metatasnet.layers.prelu import SharedPReLU
from tf_metatasnet.layers.recompute import recompute_grad
from tf_metatasnet.layers.shapes import dimensions
from tf_metatasnet.layers.tcn_layer import TCNLayer, prelu_norm
from tf_metatasnet.layers.traversal import sublayers


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
            the forward pass (gradient checkpointing with ``recompute.recompute_grad``, in segments:
            the head, each TCN layer, the tail). The TCN holds most of a training step's
            memory (each layer a dozen ``(instruments, batch, time, H)`` tensors); with
            this only each segment's input and its layers' per-instrument parameters are
            kept. Same outputs and gradients. Default ``False``.

    Call arguments:
        x: ``(instruments, batch, time, channels_x)``, or ``None`` with ``shared``.
        embedding: ``(instruments, E_1)`` or ``None`` for static weights.
        shared: ``(batch, time, channels_s)``, channels that every instrument's input
            starts with (the stage's mixture latent), or ``None``. The input is then
            ``concat([shared for each instrument, x], channels)`` (``channels_s +
            channels_x == input_channels``). At inference the head computes from the two
            parts without forming that input (``_factored_head``), which is the largest
            tensor of a separation (``(4, batch, time, 2640)`` at the last stage).
        training: recomputation (``recompute``) applies in training only, and only inside
            a ``tf.function`` (as ``fit`` runs it); eager calls keep their activations.

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

    def call(self, x, embedding=None, training=False, shared=None):
        # Only in graph mode (tf.function, as Keras's fit runs); tests/models/test_metatasnet.py
        # checks that both modes give the same gradients.
        recompute = self.recompute and training and not tf.executing_eagerly()
        segment = self._checkpointed if recompute else self._plain
        training = bool(training)
        head = (self.norm_1, self.in_conv, self.norm_2)
        if shared is not None and not training and not self.in_conv.exportable:
            x = self._factored_head(shared, x, embedding)  # (instruments, batch, time, B)
        else:
            if shared is not None:
                shared = tf.repeat(shared[None], self.num_instruments, axis=0)  # (instruments, batch, time, S)
                x = shared if x is None else tf.concat([shared, x], axis=-1)  # (instruments, batch, time, in)
            x = segment(lambda x, embedding: self._head(x, embedding, training),
                        x, embedding, head)  # (instruments, batch, time, B)
        skips = 0.0
        for j, layer in enumerate(self.tcn):
            if j < len(self.tcn) - 1:
                # Bound now: a recomputed segment calls its function again in the backward pass.
                residual, skip = segment(functools.partial(layer, training=training),
                                         x, embedding, _instrument_layers(layer))
                x = x + residual
            else:
                skip = segment(lambda x, embedding, layer=layer:
                               layer(x, embedding, residual=False, training=training)[1],
                               x, embedding, [sub for sub in _instrument_layers(layer)
                                              if sub is not layer.res_out])
            skips = skips + skip
        tail = (self.norm_3, self.mask_output, self.norm_4)
        return segment(lambda x, embedding: self._tail(x, embedding, training),
                       skips, embedding, tail)  # (instruments, batch, time, N)

    def _head(self, x, embedding, training):
        x = self.in_conv(prelu_norm(self.prelu_1, self.norm_1, x, embedding, training),
                         embedding)  # (instruments, batch, time, B)
        return prelu_norm(self.prelu_2, self.norm_2, x, embedding, training)

    def _factored_head(self, shared, x, embedding):
        """The head, ``norm_2(prelu_2(in_conv(norm_1(prelu_1(concat([shared, x]))))))``,
        without forming its input.

        ``shared`` (``(batch, time, S)``) is the same for every instrument, so its PReLU and
        its per-channel statistics are computed once; each instrument's GroupNorm only
        scales and shifts channels, so it folds into that instrument's 1x1 conv kernel (a
        kernel per instrument and batch item, ``(in, B)``: small) and a bias. The shared
        channels then go through one matmul for all four instruments, and only the
        ``(instruments, batch, time, B)`` output is per instrument. Group statistics come
        from per-channel ones, each computed in two passes and combined exactly
        (``sum (p - group mean)^2 = sum (p - channel mean)^2 + time * (channel mean -
        group mean)^2``), so a large mean does not cancel (as in ``InstrumentGroupNorm``).
        Same values as the plain head up to float rounding (tested).
        """
        instruments = self.num_instruments
        batch, time, shared_channels = dimensions(shared)

        def channel_statistics(values, axis):
            """Per-channel mean and centred sum of squares over time, float32."""
            values = tf.cast(values, tf.float32)
            mean = tf.reduce_mean(values, axis=axis, keepdims=True)
            spread = tf.reduce_sum(tf.square(values - mean), axis=axis)
            return tf.squeeze(mean, axis), spread

        shared = self.prelu_1(shared)  # (batch, time, S)
        mean, spread = channel_statistics(shared, 1)  # 2 x (batch, S)
        mean = tf.broadcast_to(mean[None], (instruments, batch, shared_channels))  # (instruments, batch, S)
        spread = tf.broadcast_to(spread[None], (instruments, batch, shared_channels))
        if x is not None:
            x = self.prelu_1(x)  # (instruments, batch, time, X)
            x_mean, x_spread = channel_statistics(x, 2)  # 2 x (instruments, batch, X)
            mean = tf.concat([mean, x_mean], axis=-1)  # (instruments, batch, in)
            spread = tf.concat([spread, x_spread], axis=-1)
        groups, channels = self.norm_1.groups, self.input_channels
        grouped = (instruments, batch, groups, channels // groups)
        mean = tf.reshape(mean, grouped)  # (instruments, batch, groups, in/groups)
        group_mean = tf.reduce_mean(mean, axis=-1, keepdims=True)  # (instruments, batch, groups, 1)
        count = tf.cast(time * (channels // groups), tf.float32)
        variance = tf.reduce_sum(tf.reshape(spread, grouped) + tf.cast(time, tf.float32)
                                 * tf.square(mean - group_mean), axis=-1, keepdims=True) / count
        inverse = tf.math.rsqrt(variance + self.norm_1.epsilon)  # (instruments, batch, groups, 1)

        def per_channel(values):
            """(instruments, batch, groups, 1) -> (instruments, batch, in)."""
            return tf.reshape(tf.broadcast_to(values, grouped), (instruments, batch, channels))

        affine = tf.cast(self.norm_1.instrument_parameters(embedding)["affine"], tf.float32)
        scale, bias = tf.split(affine[:, None], 2, axis=-1)  # 2 x (instruments, 1, in)
        gain = per_channel(inverse) * scale  # (instruments, batch, in)
        offset = bias - per_channel(group_mean) * gain
        kernel = self.in_conv.instrument_parameters(embedding)["kernel"]  # (instruments, B, in)
        kernel = tf.transpose(tf.cast(kernel, tf.float32), (0, 2, 1))  # (instruments, in, B)
        filters = self.bottleneck_channels
        folded = gain[..., None] * kernel[:, None]  # (instruments, batch, in, B)
        y = tf.matmul(offset[:, :, None], kernel[:, None])  # (instruments, batch, 1, B)
        shared_kernel = tf.reshape(tf.transpose(folded[:, :, :shared_channels], (1, 2, 0, 3)),
                                   (batch, shared_channels, instruments * filters))  # (batch, S, instruments*B)
        from_shared = tf.matmul(shared, tf.cast(shared_kernel, shared.dtype))  # (batch, time, instruments*B)
        from_shared = tf.reshape(from_shared, (batch, time, instruments, filters))  # (batch, time, instruments, B)
        y = tf.transpose(from_shared, (2, 0, 1, 3)) + tf.cast(y, shared.dtype)  # (instruments, batch, time, B)
        if x is not None:
            y += tf.matmul(x, tf.cast(folded[:, :, shared_channels:], x.dtype))  # (instruments, batch, time, B)
        return self.norm_2(self.prelu_2(y), embedding)

    def _tail(self, skips, embedding, training):
        x = self.mask_output(prelu_norm(self.prelu_3, self.norm_3, skips, embedding, training),
                             embedding)  # (instruments, batch, time, N)
        x = prelu_norm(self.prelu_4, self.norm_4, x, embedding, training)
        # Softmax across the (few) instruments on the leading axis, without transposes. The
        # shift by the maximum only guards exp() (softmax ignores it), so it carries no
        # gradient: reduce_max's gradient here gave NaN under XLA.
        x = tf.exp(x - tf.stop_gradient(tf.reduce_max(x, axis=0, keepdims=True)))
        return x / tf.reduce_sum(x, axis=0, keepdims=True)

    @staticmethod
    def _plain(function, x, embedding, layers):
        return function(x, embedding)

    @staticmethod
    def _checkpointed(function, x, embedding, layers):
        """``function(x, embedding)`` with its activations recomputed in the backward pass.

        The network is checkpointed in segments (the head, each TCN layer, the tail), so
        a training step keeps only the segments' inputs and recomputes the rest during
        the backward pass. The per-instrument parameters of the segment's ``layers`` are
        generated (or read) outside it, once, and lent to the layers inside: only the
        convolutions and norms are recomputed, and the recomputed function holds no
        generator. Tracing it (twice: forward and recomputation) is then much cheaper,
        and the graph much smaller (``benchmarks/README.md``, first step).
        """
        parameters = [layer.instrument_parameters(embedding) for layer in layers]
        flat = tf.nest.flatten(parameters)  # recompute_grad takes tensors only

        def recomputed(x, *values):
            lent = zip(layers, tf.nest.pack_sequence_as(parameters, list(values)))
            with lent_parameters(list(lent)):
                return function(x, None)

        return recompute_grad(recomputed)(x, *flat)

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


def _instrument_layers(layer) -> list:
    """The per-instrument layers inside ``layer`` (its convs and norms)."""
    return [sub for sub in sublayers(layer) if isinstance(sub, InstrumentLayer)]
