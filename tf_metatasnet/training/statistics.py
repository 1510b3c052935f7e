"""The spectrogram branch's per-frequency statistics, computed from training mixtures.

The authors normalise each stage's log-power spectrogram by its mean and standard deviation
over the training data; a run computes them once, before the first step, and stores them
in the model (non-trainable weights, saved with it).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_metatasnet.models.metatasnet import MetaTasNet
from tf_metatasnet.training.config import TrainError


def compute_spectrogram_statistics(model: MetaTasNet, dataset, examples: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-frequency mean/std of every stage's log-power spectrogram over training mixtures.

    Args:
        model: the model whose stages' ``LogSpectrogram`` layers compute the spectra.
        dataset: training batches ``(mixtures, sources, masks)``.
        examples: number of examples to use (at least one batch).

    Returns:
        one ``(mean, std)`` pair of ``(bins,)`` float32 arrays per stage.
    """
    spectrograms = [stage.encoder.spectrogram for stage in model.stages]
    sums = [np.zeros(s.num_bins) for s in spectrograms]
    squares = [np.zeros(s.num_bins) for s in spectrograms]
    count = [0] * len(spectrograms)
    seen = 0

    @tf.function
    def log_powers(mixtures):
        return [tf.reshape(s.log_power(m), (-1, s.num_bins))  # (batch * stft_frames, bins)
                for s, m in zip(spectrograms, mixtures)]

    for mixtures, _, _ in dataset:
        for i, values in enumerate(log_powers(tuple(mixtures))):
            values = values.numpy().astype(np.float64)
            sums[i] += values.sum(axis=0)
            squares[i] += np.square(values).sum(axis=0)
            count[i] += values.shape[0]
        seen += int(mixtures[0].shape[0])
        if seen >= examples:
            break
    if not seen:
        raise TrainError("the training pipeline gave no examples for the spectrogram statistics")
    statistics = []
    for i in range(len(spectrograms)):
        mean = sums[i] / count[i]
        std = np.sqrt(np.maximum(squares[i] / count[i] - mean ** 2, 0.0))
        statistics.append((mean.astype(np.float32), np.maximum(std, 1e-5).astype(np.float32)))
    return statistics


def set_spectrogram_statistics(model: MetaTasNet, statistics) -> None:
    """Stores ``compute_spectrogram_statistics``'s result in the model's stages."""
    for stage, (mean, std) in zip(model.stages, statistics):
        stage.encoder.spectrogram.mean.assign(mean)
        stage.encoder.spectrogram.std.assign(std)
