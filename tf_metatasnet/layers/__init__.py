"""Keras building blocks of Meta-TasNet, one per module."""

from tf_metatasnet.layers.decoder import Decoder
from tf_metatasnet.layers.encoder import Encoder
from tf_metatasnet.layers.generator import WeightGenerator
from tf_metatasnet.layers.instrument_conv import InstrumentConv1x1
from tf_metatasnet.layers.instrument_depthwise_conv import InstrumentDepthwiseConv
from tf_metatasnet.layers.instrument_group_norm import InstrumentGroupNorm
from tf_metatasnet.layers.instrument_layer import InstrumentLayer
from tf_metatasnet.layers.masking_tcn import MaskingTCN
from tf_metatasnet.layers.prelu import SharedPReLU
from tf_metatasnet.layers.spectrogram import LogSpectrogram
from tf_metatasnet.layers.stage import Stage
from tf_metatasnet.layers.tcn_layer import TCNLayer

__all__ = [
    "Decoder", "Encoder", "InstrumentConv1x1", "InstrumentDepthwiseConv", "InstrumentGroupNorm",
    "InstrumentLayer", "LogSpectrogram", "MaskingTCN", "SharedPReLU", "Stage", "TCNLayer",
    "WeightGenerator",
]
