"""The tf.data pipelines: shapes, rates, alignment, augmentation, cross-track mixing, masks."""

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from tf_metatasnet.audio import resample
from tf_metatasnet.data.pipeline import (
    DataConfig,
    crop_frames,
    make_same_track_example,
    train_dataset,
    validation_dataset,
)
from tf_metatasnet.presets import get_config

RATES = (8000, 16000, 32000)
STRIDE = get_config("tiny").W


@pytest.fixture(scope="module")
def varied_cache(tmp_path_factory):
    """6 training tracks (>= 4 in musdb's train split), one cut to a third of its length."""
    from tf_metatasnet.data.prepare import prepare_musdb
    from tf_metatasnet.data.synth.dataset import make_toy_dataset, validation_track_names

    root = tmp_path_factory.mktemp("varied-musdb")
    make_toy_dataset(root, tracks=6, test_tracks=0, seconds=3.0, fmt="wav", seed=5)
    valid = set(validation_track_names())
    short = [t for t in sorted((root / "train").iterdir()) if t.name not in valid][0]
    for stem in short.glob("*.wav"):
        audio, rate = sf.read(stem, dtype="float32")
        sf.write(stem, audio[: rate], rate, subtype="FLOAT")
    prepared = prepare_musdb(root, tmp_path_factory.mktemp("varied-cache"), is_wav=True,
                             crop_seconds=0.5, splits=("train", "valid"), keep_resampled=True)
    return root, prepared


def _track_audio(prepared, split="train"):
    """Every track's resampled sources at 8 kHz: ``{track_id: (frames, 4, 2) float}``."""
    out = {}
    for example in prepared.as_dataset(split):
        sources = example["sources_8000"].numpy()
        track, start, valid = int(example["track_id"]), int(example["start"]), int(example["num_frames"])
        full = out.setdefault(track, np.zeros((0, 4, 2), np.float32))
        end = start + valid
        if full.shape[0] < end:
            full = np.concatenate([full, np.zeros((end - full.shape[0], 4, 2), np.float32)])
        full[start:end] = sources[:valid]
        out[track] = full
    return out


def _locate(crop, tracks, source):
    """(track_id, offset, channel, gain, score) of a crop of ``source``: the best normalised
    correlation with every channel of every track (1 for an exact, scaled copy)."""
    from scipy.signal import correlate

    best = None
    n = len(crop)
    for track, audio in tracks.items():
        for channel in range(2):
            signal = audio[:, source, channel].astype(np.float64)
            if len(signal) < n:
                continue
            dots = correlate(signal, crop, mode="valid", method="fft")  # (positions,)
            energy = np.concatenate([[0.0], np.cumsum(signal ** 2)])
            windows = energy[n:] - energy[:-n]  # energy of every window
            scores = dots / (np.sqrt(np.maximum(windows, 0) * (crop ** 2).sum()) + 1e-12)
            offset = int(np.argmax(scores))
            if best is None or scores[offset] > best[4]:
                best = (track, offset, channel, dots[offset] / max(windows[offset], 1e-12), scores[offset])
    return best


def test_batches_have_the_model_shapes_and_rates(varied_cache):
    _, prepared = varied_cache
    config = DataConfig(cache_dir=str(prepared.cache_dir), batch_size=4, crop_seconds=0.5, seed=1)
    mixtures, sources, masks = next(iter(train_dataset(prepared, config, RATES, STRIDE)))
    frames = crop_frames(prepared, 0.5, STRIDE)
    assert frames == 4000
    for i, rate in enumerate(RATES):
        assert mixtures[i].shape == (4, frames * rate // 8000) and mixtures[i].dtype == tf.float32
        assert sources[i].shape == (4, 4, frames * rate // 8000)
        np.testing.assert_allclose(mixtures[i], tf.reduce_sum(sources[i], axis=1), atol=1e-5)
    assert masks.shape == (4, 4)


def test_a_crop_is_the_same_audio_at_every_rate(varied_cache):
    _, prepared = varied_cache
    config = DataConfig(cache_dir=str(prepared.cache_dir), batch_size=4, crop_seconds=0.5, seed=2)
    _, sources, _ = next(iter(train_dataset(prepared, config, RATES, STRIDE)))
    base = sources[0].numpy()
    for i in (1, 2):
        down = resample(np.moveaxis(sources[i].numpy(), -1, 0).reshape(-1, 16), RATES[i], 8000)
        down = np.moveaxis(down.reshape(-1, 4, 4), 0, -1)  # (batch, 4, frames)
        inner = slice(400, base.shape[-1] - 400)  # away from the resampler's edge effects
        error = down[..., inner] - base[..., inner]
        snr = 10 * np.log10(np.sum(base[..., inner] ** 2) / np.sum(error ** 2))
        assert snr > 30, (RATES[i], snr)


def test_augmentation_matches_the_recipe(varied_cache):
    """Each source is one channel of one track at one offset, times a gain in [0.75, 1.25],
    divided by the track's mixture std; half of each batch mixes four different tracks."""
    _, prepared = varied_cache
    tracks = _track_audio(prepared)
    stds = {}
    for example in prepared.as_dataset("train"):
        stds[int(example["track_id"])] = float(example["mixture_std"][0])
    config = DataConfig(cache_dir=str(prepared.cache_dir), batch_size=4, crop_seconds=0.5, seed=3)
    gains, channels = [], []
    for _, sources, masks in train_dataset(prepared, config, RATES, STRIDE).take(6):
        sources = sources[0].numpy().astype(np.float64)  # (4 items, 4 sources, frames)
        for item in range(4):
            audible = [j for j in range(4) if np.abs(sources[item, j]).max() > 0]
            np.testing.assert_array_equal(masks.numpy()[item][audible], 1.0)
            found = [_locate(sources[item, j], tracks, j) for j in audible]
            assert all(score > 0.9999 for *_, score in found), found
            track_ids = [f[0] for f in found]
            offsets = [f[1] for f in found]
            if item < 2:  # same-track examples: one track, one offset
                assert len(set(track_ids)) == 1 and len(set(offsets)) == 1
            else:  # cross-track examples: four different tracks
                assert len(set(track_ids)) == len(audible)
            for track, _, channel, gain, _ in found:
                gains.append(gain * stds[track])
                channels.append(channel)
    gains = np.array(gains)
    assert gains.min() >= 0.75 - 1e-3 and gains.max() <= 1.25 + 1e-3
    assert gains.max() - gains.min() > 0.3  # drawn, not constant
    assert 0.25 < np.mean(channels) < 0.75  # both channels are used


@pytest.mark.parametrize("fraction, expected", [(0.0, 0), (0.25, 1), (0.5, 2), (1.0, 4)])
def test_cross_track_fraction_sets_the_batch_split(fraction, expected):
    assert DataConfig(batch_size=4, cross_track_fraction=fraction).split_batch(4) == (4 - expected, expected)


def test_uniform_track_sampling_draws_tracks_equally(varied_cache):
    _, prepared = varied_cache
    tracks = _track_audio(prepared)
    short = min(tracks, key=lambda t: len(tracks[t]))
    counts = {}
    for sampling in ("uniform", "length"):
        config = DataConfig(cache_dir=str(prepared.cache_dir), batch_size=8, crop_seconds=0.5,
                            cross_track_fraction=0.0, track_sampling=sampling, seed=4)
        hits = total = 0
        for _, sources, _ in train_dataset(prepared, config, RATES, STRIDE).take(8):
            for item in sources[0].numpy().astype(np.float64):
                hits += _locate(item[0], tracks, 0)[0] == short
                total += 1
        counts[sampling] = hits / total
    share = 1.0 / len(tracks)
    assert abs(counts["uniform"] - share) < 0.12, counts
    assert counts["length"] < counts["uniform"], counts


@pytest.mark.slow
def test_seeded_pipelines_repeat_and_seeds_differ(varied_cache):
    _, prepared = varied_cache
    config = DataConfig(cache_dir=str(prepared.cache_dir), batch_size=2, crop_seconds=0.5)
    first = [next(iter(train_dataset(prepared, config, RATES, STRIDE, seed=s)))[1][0].numpy()
             for s in (7, 7, 8)]
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.allclose(first[0], first[2])


def test_silent_sources_are_masked():
    rates = (8000, 16000)
    frames = 800
    rng = np.random.default_rng(0)
    example = {f"sources_{r}": tf.constant((rng.standard_normal((2 * frames * r // 8000, 4, 2)) * 3000)
                                           .astype(np.int16)) for r in rates}
    example["sources_16000"] = tf.tensor_scatter_nd_update(
        example["sources_16000"], [[0]], tf.zeros((1, 4, 2), tf.int16))
    silent = np.array(example["sources_16000"])
    silent[:, 2, :] = 0  # "other" is silent in the segment
    example["sources_16000"] = tf.constant(silent)
    example.update(scale=tf.constant(1.0), mixture_std=tf.constant([0.2, 0.2]),
                   num_frames=tf.constant(2 * frames))
    config = DataConfig(batch_size=1)
    _, sources, masks = make_same_track_example(example, tf.constant([1, 2], tf.int64), config,
                                                frames, rates)
    np.testing.assert_array_equal(masks.numpy(), [1, 1, 0, 1])
    assert sources[1].shape == (4, 2 * frames)


def test_crops_longer_than_the_cache_are_refused(varied_cache):
    _, prepared = varied_cache
    with pytest.raises(ValueError, match="--crop-seconds 2"):
        crop_frames(prepared, 2, STRIDE)
    with pytest.raises(ValueError, match="rates"):
        train_dataset(prepared, DataConfig(crop_seconds=0.5), (8000, 24000), STRIDE)


def test_validation_covers_every_track_in_order(varied_cache):
    _, prepared = varied_cache
    tracks = _track_audio(prepared, "valid")
    items = batches = 0
    dataset = validation_dataset(prepared, RATES, STRIDE, batch_size=3)
    for mixtures, sources, masks in dataset:
        assert sources[2].shape[1:] == (4, prepared.segment_frames * 4)
        items += mixtures[0].shape[0]
        batches += 1
    segments = sum(-(-len(audio) // prepared.segment_frames) for audio in tracks.values())
    assert items == 2 * segments and items > 0
    # The count is known in advance (Keras's fit then validates without "ran out of data").
    assert int(dataset.cardinality()) == batches


def test_data_config_rejects_bad_values():
    with pytest.raises(ValueError, match="cross_track_fraction"):
        DataConfig(cross_track_fraction=1.5)
    with pytest.raises(ValueError, match="track_sampling"):
        DataConfig(track_sampling="random")
    with pytest.raises(ValueError, match="prefetch_batches"):
        DataConfig(prefetch_batches=0)
    with pytest.raises(ValueError, match="unknown data setting"):
        DataConfig.from_dict({"batch": 3})
