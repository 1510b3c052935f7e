"""One Meta-TasNet stage: encoder, masking TCN and decoder at one sample rate."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.layers.decoder import Decoder
from tf_metatasnet.layers.encoder import Encoder
from tf_metatasnet.layers.masking_tcn import MaskingTCN


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class Stage(keras.layers.Layer):
    """Separates one mono mixture at the stage's rate into four sources.

    The mixture latent is repeated for the four instruments, concatenated (from stage 1
    on) with the previous stage's separated latents, masked by the ``MaskingTCN`` and
    decoded by the shared ``Decoder``. With ``generated`` weights the stage owns the
    instrument embedding table ``(4, E_1)`` that drives every generated layer.

    Args:
        channels: ``N_i``.
        kernel_size: ``L_i``.
        stride: ``W_i``.
        bottleneck_channels: ``B``.
        hidden_channels: ``H``.
        num_layers: TCN layers per stack.
        num_stacks: TCN stacks.
        tcn_kernel_size: depthwise kernel of the TCN. Default 3.
        filters: encoder/decoder resolutions. Default 3.
        num_mels: spectrogram projection channels. Default 256.
        sample_rate: the stage's rate in Hz. Default 8000.
        generated: generated (``True``) or static per-instrument weights. Default ``True``.
        embedding_dim: ``E_1``. Default 8.
        bottleneck_dim: ``E_2``. Default 5.
        residual_bias: biases on the TCN residual/skip convs. Default ``False``.
        dropout: channel dropout on the mixture latent while training. Default 0.
        previous_channels: channels of the previous stage's latents (``N_{i-1}``), 0 for
            the first stage. Default 0.
        num_instruments: sources separated. Default 4.
        recompute_tcn: gradient checkpointing of the masking TCN's layers (see
            ``MaskingTCN``'s ``recompute``). Default ``False``.

    Call arguments:
        mixture: ``(batch, samples)`` at ``sample_rate``, ``samples`` a multiple of ``stride``.
        previous: ``(instruments, batch, frames, previous_channels)`` or ``None``.
        training: enables dropout.
        decode: decode the separated latents to waveforms (``False`` skips the decoder
            and returns ``None`` estimates: a later stage needs only the latents).

    Returns:
        ``(estimates, separated, mixture_latent)``: ``(batch, instruments, samples)``,
        ``(instruments, batch, frames, channels)`` (for the next stage) and
        ``(batch, frames, channels)``.
    """

    def __init__(self, channels: int, kernel_size: int, stride: int, bottleneck_channels: int,
                 hidden_channels: int, num_layers: int, num_stacks: int, tcn_kernel_size: int = 3,
                 filters: int = 3, num_mels: int = 256, sample_rate: int = 8000,
                 generated: bool = True, embedding_dim: int = 8, bottleneck_dim: int = 5,
                 residual_bias: bool = False, dropout: float = 0.0, previous_channels: int = 0,
                 num_instruments: int = 4, recompute_tcn: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.bottleneck_channels = bottleneck_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.num_stacks = num_stacks
        self.tcn_kernel_size = tcn_kernel_size
        self.filters = filters
        self.num_mels = num_mels
        self.sample_rate = sample_rate
        self.generated = generated
        self.embedding_dim = embedding_dim
        self.bottleneck_dim = bottleneck_dim
        self.residual_bias = residual_bias
        self.dropout = dropout
        self.previous_channels = previous_channels
        self.num_instruments = num_instruments
        self.recompute_tcn = recompute_tcn
        self.encoder = Encoder(channels, kernel_size, stride, filters, num_mels, sample_rate, name="encoder")
        self.decoder = Decoder(channels, kernel_size, stride, filters, name="decoder")
        self.mask = MaskingTCN(
            channels, channels + previous_channels, bottleneck_channels, hidden_channels,
            num_layers, num_stacks, tcn_kernel_size, residual_bias, generated=generated,
            embedding_dim=embedding_dim, bottleneck_dim=bottleneck_dim,
            num_instruments=num_instruments, recompute=recompute_tcn, name="mask")
        # Dropout2d of the authors: whole channels of an (item, instrument) latent.
        self.latent_dropout = keras.layers.SpatialDropout1D(dropout, name="latent_dropout")

    def build(self, input_shape=None):
        self.encoder.build()
        self.decoder.build()
        self.mask.build()
        self.instrument_embedding = None
        if self.generated:
            self.instrument_embedding = self.add_weight(
                name="instrument_embedding", shape=(self.num_instruments, self.embedding_dim),
                initializer=keras.initializers.RandomNormal(stddev=1.0))

    def call(self, mixture, previous=None, training=False, decode=True):
        batch = tf.shape(mixture)[0]
        mixture_latent = self.encoder(mixture)  # (batch, frames, N)
        frames = tf.shape(mixture_latent)[1]
        if self.previous_channels and previous is None:
            raise ValueError(f"{self.name} needs the previous stage's latents")
        # The mask's input is the mixture latent for every instrument, then the previous
        # stage's latents. Handed over in two parts (MaskingTCN's ``shared``), the masking
        # network need not form it at inference; it is formed here for the latent dropout
        # (training) and for an export copy (TFLite files keep their graph).
        if (self.dropout > 0 and training) or self.mask.in_conv.exportable:
            latents = tf.repeat(mixture_latent[None], self.num_instruments, axis=0)  # (instruments, batch, frames, N)
            mask_input = latents
            if self.dropout > 0:
                flat = tf.reshape(latents, (-1, frames, self.channels))  # (instruments*batch, frames, N)
                mask_input = tf.reshape(self.latent_dropout(flat, training=training), tf.shape(latents))
            if self.previous_channels:
                mask_input = tf.concat([mask_input, previous], axis=-1)  # (instruments, batch, frames, N + N_prev)
            masks = self.mask(mask_input, self.instrument_embedding, training=training)
            separated = latents * masks
        else:
            masks = self.mask(previous if self.previous_channels else None, self.instrument_embedding,
                              training=training, shared=mixture_latent)  # (instruments, batch, frames, N)
            separated = mixture_latent[None] * masks  # (instruments, batch, frames, N)
        if not decode:
            return None, separated, mixture_latent
        signals = self.decoder(tf.reshape(separated, (-1, frames, self.channels)))  # (instruments*batch, samples)
        signals = tf.reshape(signals, (self.num_instruments, batch, -1))  # (instruments, batch, samples)
        return tf.transpose(signals, (1, 0, 2)), separated, mixture_latent

    def get_config(self):
        config = super().get_config()
        config.update({
            "channels": self.channels, "kernel_size": self.kernel_size, "stride": self.stride,
            "bottleneck_channels": self.bottleneck_channels, "hidden_channels": self.hidden_channels,
            "num_layers": self.num_layers, "num_stacks": self.num_stacks,
            "tcn_kernel_size": self.tcn_kernel_size, "filters": self.filters,
            "num_mels": self.num_mels, "sample_rate": self.sample_rate, "generated": self.generated,
            "embedding_dim": self.embedding_dim, "bottleneck_dim": self.bottleneck_dim,
            "residual_bias": self.residual_bias, "dropout": self.dropout,
            "previous_channels": self.previous_channels, "num_instruments": self.num_instruments,
            "recompute_tcn": self.recompute_tcn,
        })
        return config
