"""Meta-TasNet's training objective: SI-SNR, reconstruction, latent (dis)similarity.

Pure tensor functions, written after the authors' definitions (github.com/pfnet-research/meta-tasnet), plus
``SISNRLoss``, a Keras loss for plain separation estimates. The combined, stage-summed
objective that needs the model's encoder and decoder is ``MetaTasNet.compute_objective``,
which calls ``stage_objective`` below for every stage.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import tensorflow as tf

EPSILON = 1e-8
_LOG10 = np.log(10.0)

#: Names of the seven per-stage statistics, in the authors' order.
STAGE_STATISTICS = ("si_snr_drums", "si_snr_bass", "si_snr_other", "si_snr_vocals",
                    "reconstruction", "dissimilarity", "similarity")


def _log10(x):
    return tf.math.log(x) / _LOG10


def si_snr(estimate, reference):
    """Scale-invariant SNR in dB over the last axis: ``(..., time)`` to ``(...)``.

    ``s = <est, ref> / (|ref|^2 + 1e-8)``, target ``s * ref``, error ``est - target``;
    ``10 * (log10(max(|target|^2, 1e-8)) - log10(max(|error|^2, 1e-8)))``.
    """
    reference_power = tf.reduce_sum(tf.square(reference), axis=-1, keepdims=True) + EPSILON
    scale = tf.reduce_sum(reference * estimate, axis=-1, keepdims=True) / reference_power
    target = scale * reference
    error = estimate - target
    target_power = tf.maximum(tf.reduce_sum(tf.square(target), axis=-1), EPSILON)
    error_power = tf.maximum(tf.reduce_sum(tf.square(error), axis=-1), EPSILON)
    return 10.0 * (_log10(target_power) - _log10(error_power))


def source_masks(sources):
    """``(batch, sources)`` float mask: 1 where a source has any non-zero sample.

    Args:
        sources: ``(batch, sources, time)``.
    """
    return tf.cast(tf.reduce_any(tf.not_equal(sources, 0.0), axis=-1), sources.dtype)


def separation_si_snr(estimates, sources, masks):
    """Per-source SI-SNR averaged over the batch items where the source is present.

    Args:
        estimates: ``(batch, sources, time)``.
        sources: ``(batch, sources, time)`` references.
        masks: ``(batch, sources)``, 1 where the source is present.

    Returns:
        ``(sources,)``.
    """
    values = si_snr(estimates, sources)  # (batch, sources)
    return tf.reduce_sum(values * masks, axis=0) / tf.maximum(tf.reduce_sum(masks, axis=0), EPSILON)


def reconstruction_si_snr(reconstruction, mixture):
    """Mean SI-SNR of ``decoder(encoder(mixture))`` against the mixture, ``(batch, time)`` each."""
    return tf.reduce_mean(si_snr(reconstruction, mixture))


def cosine_similarity(a, b):
    """PyTorch's cosine similarity over the last axis: ``a.b / (max(|a|, eps) * max(|b|, eps))``.

    ``max(|a|, eps)`` is computed as ``sqrt(max(|a|^2, eps^2))``, the same value, so that a
    zero vector (the latent of a silent source) has a zero gradient instead of
    ``0 * d|a|/da = 0 * 0/0``: under XLA that NaN reached every encoder weight.
    """
    norm_a = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(a), axis=-1), EPSILON * EPSILON))
    norm_b = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(b), axis=-1), EPSILON * EPSILON))
    return tf.reduce_sum(a * b, axis=-1) / (norm_a * norm_b)


def dissimilarity(latents, masks):
    """Mean cosine similarity of the absolute latents of different instruments (to minimise).

    Args:
        latents: ``(sources, batch, frames, channels)`` encoder latents of the true sources,
            zero where the source is silent.
        masks: ``(batch, sources)``.

    Returns:
        scalar: summed over pairs and items, divided by the (pair, item) combinations in
        which both sources are present, averaged over frames.
    """
    pairs = list(itertools.combinations(range(latents.shape[0]), 2))
    first, second = [p[0] for p in pairs], [p[1] for p in pairs]
    count = tf.reduce_sum(tf.gather(masks, first, axis=1) * tf.gather(masks, second, axis=1)) + EPSILON
    similarity = cosine_similarity(tf.abs(tf.gather(latents, first)), tf.abs(tf.gather(latents, second)))  # (pairs, batch, frames)
    return tf.reduce_mean(tf.reduce_sum(similarity, axis=(0, 1)) / count)


def similarity(latents, masks):
    """Mean cosine similarity of each instrument's latents with the previous batch item's (to maximise).

    Args:
        latents: ``(sources, batch, frames, channels)``, zero where the source is silent.
        masks: ``(batch, sources)``.

    Returns:
        scalar: summed over instruments and items, divided by the (instrument, item) pairs
        where both are present (at least 1e-8), averaged over frames.
    """
    count = tf.maximum(tf.reduce_sum(masks * tf.roll(masks, 1, axis=0)), EPSILON)
    values = cosine_similarity(latents, tf.roll(latents, 1, axis=1))  # (sources, batch, frames)
    return tf.reduce_mean(tf.reduce_sum(values, axis=(0, 1)) / count)


def stage_objective(estimates, sources, masks, mixture, reconstruction, source_latents,
                    reconstruction_weight=0.05, dissimilarity_weight=3.0, similarity_weight=2.0,
                    instrument_weights=None):
    """One stage's loss and its seven statistics.

    ``-sum(w_i * SI-SNR_i) - w_r * reconstruction + w_d * dissimilarity - w_s * similarity``,
    with every instrument weight ``w_i`` 1 in the paper.

    Args:
        estimates: ``(batch, sources, time)``.
        sources: ``(batch, sources, time)``.
        masks: ``(batch, sources)``.
        mixture: ``(batch, time)``.
        reconstruction: ``(batch, time)`` decoder(encoder(mixture)).
        source_latents: ``(batch, sources, frames, channels)`` encoder latents of the sources.
        reconstruction_weight, dissimilarity_weight, similarity_weight: term weights.
        instrument_weights: ``(sources,)`` weights of the per-instrument SI-SNRs
            (default: all 1). The statistics stay unweighted.

    Returns:
        ``(loss, statistics)``: a scalar and ``(7,)`` as ``STAGE_STATISTICS``.
    """
    separation = separation_si_snr(estimates, sources, masks)  # (sources,)
    if instrument_weights is None:
        loss = -tf.reduce_sum(separation)
    else:
        loss = -tf.reduce_sum(tf.constant(instrument_weights, separation.dtype) * separation)
    zero = tf.zeros((), estimates.dtype)
    recon = reconstruction_si_snr(reconstruction, mixture) if reconstruction_weight > 0 else zero
    loss -= reconstruction_weight * recon
    latents = tf.transpose(source_latents * masks[:, :, None, None], (1, 0, 2, 3))  # (sources, batch, frames, channels)
    dissim = dissimilarity(latents, masks) if dissimilarity_weight > 0 else zero
    loss += dissimilarity_weight * dissim
    sim = similarity(latents, masks) if similarity_weight > 0 else zero
    loss -= similarity_weight * sim
    return loss, tf.concat([separation, tf.stack([recon, dissim, sim])], axis=0)


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class SISNRLoss(keras.losses.Loss):
    """Minus the SI-SNR summed over sources, for ``(batch, sources, time)`` estimates.

    Silent reference sources are left out of an item's sum. This is the separation term
    of the paper's objective per batch item; the full objective (batch-level masking,
    reconstruction and latent terms, summed over stages) is ``MetaTasNet.compute_objective``.
    """

    def __init__(self, name="si_snr_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        masks = source_masks(y_true)
        return -tf.reduce_sum(si_snr(y_pred, y_true) * masks, axis=-1)
