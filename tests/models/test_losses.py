"""Loss terms against NumPy implementations of the authors' formulas."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from tf_metatasnet.models import losses


def np_si_snr(est, ref):
    s = (est * ref).sum(-1, keepdims=True) / ((ref ** 2).sum(-1, keepdims=True) + 1e-8)
    t = s * ref
    e = est - t
    return 10 * (np.log10(np.maximum((t ** 2).sum(-1), 1e-8)) - np.log10(np.maximum((e ** 2).sum(-1), 1e-8)))


def np_cos(a, b):
    return (a * b).sum(-1) / (np.maximum(np.linalg.norm(a, axis=-1), 1e-8) * np.maximum(np.linalg.norm(b, axis=-1), 1e-8))


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((3, 4, 400)).astype("float32")
    est = (ref + 0.3 * rng.standard_normal(ref.shape)).astype("float32")
    ref[1, 2] = 0.0  # a silent "other"
    masks = np.ones((3, 4), "float32")
    masks[1, 2] = 0.0
    return est, ref, masks


def test_si_snr_matches_numpy_and_is_scale_invariant(batch):
    est, ref, masks = batch
    np.testing.assert_allclose(losses.si_snr(est, ref).numpy(), np_si_snr(est, ref), rtol=1e-4, atol=1e-4)
    present = masks.astype(bool)  # a silent reference has no scale to be invariant to
    np.testing.assert_allclose(losses.si_snr(3.0 * est, ref).numpy()[present],
                               losses.si_snr(est, ref).numpy()[present], rtol=1e-4)
    assert float(losses.si_snr(ref[0, 0], ref[0, 0])) > 60.0


def test_separation_si_snr_averages_only_present_sources(batch):
    est, ref, masks = batch
    expected = (np_si_snr(est, ref) * masks).sum(0) / masks.sum(0)
    np.testing.assert_allclose(losses.separation_si_snr(est, ref, masks).numpy(), expected, rtol=1e-5)
    assert losses.source_masks(tf.constant(ref)).numpy().tolist() == masks.tolist()


def test_dissimilarity_and_similarity_match_numpy(batch):
    _, _, masks = batch
    rng = np.random.default_rng(4)
    latents = rng.standard_normal((4, 3, 7, 5)).astype("float32") * masks.T[:, :, None, None]
    pairs = list(itertools.combinations(range(4), 2))
    total = sum(np_cos(np.abs(latents[a]), np.abs(latents[b])).sum(0) for a, b in pairs)
    count = sum((masks[:, a] * masks[:, b]).sum() for a, b in pairs) + 1e-8
    np.testing.assert_allclose(losses.dissimilarity(latents, masks).numpy(), (total / count).mean(), rtol=1e-5)
    rolled = np.roll(latents, 1, axis=1)
    count = max((masks * np.roll(masks, 1, axis=0)).sum(), 1e-8)
    expected = (np_cos(latents, rolled).sum((0, 1)) / count).mean()
    np.testing.assert_allclose(losses.similarity(latents, masks).numpy(), expected, rtol=1e-5)


def test_stage_objective_combines_the_terms_with_the_weights(batch):
    est, ref, masks = batch
    rng = np.random.default_rng(5)
    mixture = ref.sum(1)
    reconstruction = mixture + 0.1 * rng.standard_normal(mixture.shape).astype("float32")
    source_latents = rng.standard_normal((3, 4, 7, 5)).astype("float32")
    loss, stats = losses.stage_objective(est, ref, masks, mixture, reconstruction, source_latents, 0.05, 3.0, 2.0)
    stats = stats.numpy()
    assert stats.shape == (7,)
    np.testing.assert_allclose(float(loss), -stats[:4].sum() - 0.05 * stats[4] + 3.0 * stats[5] - 2.0 * stats[6], rtol=1e-5)
    np.testing.assert_allclose(stats[4], np_si_snr(reconstruction, mixture).mean(), rtol=1e-5)
    latents = np.transpose(source_latents * masks[:, :, None, None], (1, 0, 2, 3))
    np.testing.assert_allclose(stats[5], losses.dissimilarity(latents, masks).numpy(), rtol=1e-5)
    only_separation, stats0 = losses.stage_objective(est, ref, masks, mixture, reconstruction, source_latents, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(float(only_separation), -stats0.numpy()[:4].sum(), rtol=1e-6)
    assert stats0.numpy()[4:].tolist() == [0.0, 0.0, 0.0]
    weights = (1.0, 0.5, 3.0, 2.0)
    weighted, stats1 = losses.stage_objective(est, ref, masks, mixture, reconstruction, source_latents,
                                              0.05, 3.0, 2.0, weights)
    np.testing.assert_allclose(stats1.numpy(), stats, rtol=1e-6)  # the statistics stay unweighted
    np.testing.assert_allclose(float(weighted), -(np.array(weights) * stats[:4]).sum() - 0.05 * stats[4]
                               + 3.0 * stats[5] - 2.0 * stats[6], rtol=1e-5)


def test_keras_si_snr_loss(batch):
    est, ref, masks = batch
    loss = losses.SISNRLoss(reduction=None)
    per_item = loss(ref, est).numpy()
    np.testing.assert_allclose(per_item, -(np_si_snr(est, ref) * masks).sum(-1), rtol=1e-4)
    assert losses.SISNRLoss.from_config(loss.get_config()).name == loss.name
