"""How big a model of a configuration is, known before a single weight is allocated.

A checkpoint or ``.keras`` file is untrusted input: its configuration could ask for a model
far larger than the machine (``stages_num=40``, ``N=200000``). ``MetaTasNetConfig.validate``
bounds each field; :func:`check_size` then bounds the whole: the number of values
(:func:`count_values`, exact, computed from the configuration the way the layers build
their weights) and the memory a separation window needs (:func:`estimated_bytes`), against
a limit a user may raise (``--max-model-gib``).
"""

from __future__ import annotations

import math

from tf_metatasnet.config import MetaTasNetConfig
from tf_metatasnet.sources import SOURCES

#: Separations and exports refuse models whose estimated memory exceeds this by default.
DEFAULT_LIMIT_GIB = 16.0
#: The window a model's memory is estimated for: the separator's default 20-s chunk with
#: 4 s of context on each side.
ESTIMATE_SECONDS = 28.0
#: Bytes of a float32 value.
_BYTES = 4


class ModelTooLargeError(ValueError):
    """A model's configuration asks for more memory than the limit; the message names the
    file, the size and how to raise the limit."""


def _instrument_layer(shape_sizes: list[int], config: MetaTasNetConfig) -> int:
    """Values of one per-instrument layer with parameters of these sizes: generated (one
    generator: a bottleneck ``E_1 -> E_2`` and a head ``E_2 -> size`` per parameter, with
    biases) or static (every parameter once per instrument)."""
    if config.independent_params:
        return len(SOURCES) * sum(shape_sizes)
    bottleneck = (config.E_1 + 1) * config.E_2
    return bottleneck + sum((config.E_2 + 1) * size for size in shape_sizes)


def _stage_values(config: MetaTasNetConfig, stage: int) -> int:
    channels, kernel = config.stage_channels(stage), config.kernel_size(stage)
    n_fft = 1024 * config.stage_rate(stage) // 8000
    bins = n_fft // 2 + 1
    width = channels // 4
    encoder = (sum(kernel * 2 ** l * width for l in range(config.filters))
               + (width * config.filters + config.num_mels) * channels + channels * channels)
    spectrogram = n_fft + 4 * bins + bins * config.num_mels + config.num_mels
    widths = [channels // 2 ** (l + 1) for l in range(config.filters)]
    decoder = channels * sum(widths) + sum(kernel * 2 ** l * w for l, w in enumerate(widths))
    embedding = 0 if config.independent_params else len(SOURCES) * config.E_1

    def norm(c):
        return _instrument_layer([2 * c], config)

    def conv(c_in, c_out, bias=False):
        return _instrument_layer([c_out * c_in] + ([c_out] if bias else []), config)

    mask_in = channels + (config.stage_channels(stage - 1) if stage else 0)
    b, h = config.B, config.H
    tcn_layer = (conv(b, h) + 1 + norm(h) + _instrument_layer([h * config.kernel], config) + 1 + norm(h)
                 + 2 * conv(h, b, config.residual_bias))
    mask = (1 + norm(mask_in) + conv(mask_in, b) + 1 + norm(b)
            + config.layers * config.stack * tcn_layer
            + 1 + norm(b) + conv(b, channels) + 1 + norm(channels))
    return encoder + spectrogram + decoder + embedding + mask


def count_values(config: MetaTasNetConfig) -> int:
    """The number of values (weights and statistics) of a model of ``config``: equal to
    ``build_model(config).count_params()``, without building it."""
    return sum(_stage_values(config, stage) for stage in range(config.stages_num))


def activation_values(config: MetaTasNetConfig, seconds: float = ESTIMATE_SECONDS, batch: int = 1) -> int:
    """An estimate of the values held at once while separating ``batch`` windows of
    ``seconds`` (the largest stage's working tensors plus the latents handed between
    stages): the STFT frames and spectrum, the encoder's features, the four instruments'
    masking-network tensors (input, bottleneck, skip sum, hidden) and the decoder's frames."""
    frames = math.ceil(seconds * config.sampling_rate / config.W)  # the same at every stage
    largest, carried = 0, 0
    for stage in range(config.stages_num):
        channels, rate = config.stage_channels(stage), config.stage_rate(stage)
        n_fft, hop = 1024 * rate // 8000, 256 * rate // 8000
        samples = seconds * rate
        stft_frames = samples / hop + 1
        spectrum = stft_frames * (n_fft + 3 * (n_fft // 2 + 1))
        encoder = frames * (channels // 4 * config.filters + config.num_mels + 2 * channels)
        mask_in = channels + (config.stage_channels(stage - 1) if stage else 0)
        mask = len(SOURCES) * frames * (2 * mask_in + 2 * config.B + 2 * config.H)
        decoder = frames * (channels + config.kernel_size(stage) * 2 ** (config.filters - 1))
        largest = max(largest, samples + max(spectrum, encoder) + mask + decoder)
        carried = len(SOURCES) * frames * channels
    return int(batch * (largest + carried))


def estimated_bytes(config: MetaTasNetConfig, seconds: float = ESTIMATE_SECONDS, batch: int = 1) -> int:
    """Bytes of float32 weights and of :func:`activation_values` for one separation call."""
    return _BYTES * (count_values(config) + activation_values(config, seconds, batch))


def check_size(config: MetaTasNetConfig, source: str, limit_gib: "float | None" = DEFAULT_LIMIT_GIB) -> None:
    """Raises :class:`ModelTooLargeError` if a model of ``config`` needs more than
    ``limit_gib`` GiB (:func:`estimated_bytes` of the default window); ``None``: no limit.

    ``source`` (the file the configuration came from) starts the message.
    """
    if limit_gib is None:
        return
    needed = estimated_bytes(config)
    if needed > limit_gib * 2 ** 30:
        raise ModelTooLargeError(
            f"{source}: the model would take about {needed / 2 ** 30:.1f} GiB ({count_values(config):,} values "
            f"and a {ESTIMATE_SECONDS:g}-s window), more than the {limit_gib:g} GiB limit; "
            f"--max-model-gib raises it")
