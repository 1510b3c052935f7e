"""The training and validation input pipelines (tf.data), following the paper's recipe.

Examples come from a cache written by ``metatasnet prepare`` (see ``tf_metatasnet.data.prepare``):
fixed-length segments of every track, resampled once to each stage's rate and stored as
int16. From them, the training pipeline draws examples exactly as the authors did
(the authors' code, github.com/pfnet-research/meta-tasnet):

- a random track (uniformly, whatever its length) and a random crop of ``crop_seconds``,
  at the same position at every rate (offset ``o`` at the base rate is ``o * rate / base``);
- for each source independently a random stereo channel and a gain drawn from
  U(``gain_min``, ``gain_max``); the mixture is the sum of the gained sources;
- a fraction ``cross_track_fraction`` of every batch takes its four sources from four
  different random crops (different tracks where the split has at least four);
- every source is divided by the std of its track's mono mixture at that rate;
- a mask marks the sources that are silent in the crop, which the loss ignores.

Randomness uses stateless ops seeded per element, so a seeded pipeline gives the same
batches whatever the parallelism. The pipeline holds a bounded number of segments (the
shuffle buffer and prefetch), never the dataset: memory does not grow with the number of
tracks.

Elements are ``(mixtures, sources, masks)``: ``mixtures`` a tuple with one
``(batch, samples_i)`` tensor per stage, ``sources`` a tuple of ``(batch, 4, samples_i)``,
``masks`` ``(batch, 4)``, which is what ``MetaTasNet.train_step`` takes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from tf_metatasnet.data.splits import split_key
from tf_metatasnet.sources import SOURCES

AUTOTUNE = tf.data.AUTOTUNE
NUM_SOURCES = len(SOURCES)
_INT16_SCALE = 1.0 / 32767.0


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Settings of the input pipelines; the defaults are the paper's recipe.

    Args:
        cache_dir: folder written by ``metatasnet prepare``.
        batch_size: global batch size (split across replicas). Paper: 12.
        crop_seconds: training crop length; at most the cache's ``crop_seconds``. Paper: 8.
        cross_track_fraction: fraction of each batch whose sources come from different
            tracks. Paper: 0.5.
        gain_min, gain_max: range of the uniform per-source gain. Paper: 0.75, 1.25.
        random_channel: pick one stereo channel per source at random (else the channel mean).
        track_sampling: ``"uniform"`` (every track equally likely, the paper) or
            ``"length"`` (every segment equally likely, longer tracks more often).
        silence_threshold: a source whose RMS in the crop, after normalisation, is below
            this is marked silent (mask 0).
        shuffle_buffer: segments held for shuffling, in each of the two streams (same-track
            and cross-track examples); memory is about ``2 * shuffle_buffer`` segments (14 MB
            each for the paper's 16-s segments). The cache itself is already shuffled.
        prefetch_batches: batches made ahead of the model. A fixed number, not
            ``AUTOTUNE``: autotuning sizes the buffer by throughput, so memory would grow
            with the speed of the pipeline (a paper batch is 107 MB). Default 2.
        validation_batch_size: batch of the validation pipeline (full tracks, cut into the
            cache's segments, each channel an item).
        statistics_examples: training examples used for the spectrogram mean/std.
            Paper: about 5,000.
        seed: seed of the training pipeline; ``None`` draws a new one each run.
    """

    cache_dir: str = ""
    batch_size: int = 12
    crop_seconds: float = 8.0
    cross_track_fraction: float = 0.5
    gain_min: float = 0.75
    gain_max: float = 1.25
    random_channel: bool = True
    track_sampling: str = "uniform"
    silence_threshold: float = 1e-4
    shuffle_buffer: int = 16
    prefetch_batches: int = 2
    validation_batch_size: int = 4
    statistics_examples: int = 5000
    seed: "int | None" = None

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size must be positive, got {self.batch_size}")
        if self.crop_seconds <= 0:
            raise ValueError(f"data.crop_seconds must be positive, got {self.crop_seconds}")
        if not 0.0 <= self.cross_track_fraction <= 1.0:
            raise ValueError(f"data.cross_track_fraction must be in [0, 1], got {self.cross_track_fraction}")
        if not 0.0 < self.gain_min <= self.gain_max:
            raise ValueError(f"data.gain_min/gain_max must satisfy 0 < min <= max, got "
                             f"{self.gain_min}, {self.gain_max}")
        if self.track_sampling not in ("uniform", "length"):
            raise ValueError(f"data.track_sampling must be 'uniform' or 'length', got {self.track_sampling!r}")
        if min(self.shuffle_buffer, self.prefetch_batches, self.validation_batch_size,
               self.statistics_examples) < 1:
            raise ValueError("data.shuffle_buffer, prefetch_batches, validation_batch_size and "
                             "statistics_examples must be positive")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DataConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown data setting(s): {', '.join(unknown)}")
        return cls(**values)

    def split_batch(self, batch_size: int) -> tuple[int, int]:
        """``(same_track, cross_track)`` example counts of a batch of ``batch_size``."""
        cross = int(round(batch_size * self.cross_track_fraction))
        return batch_size - cross, cross


def crop_frames(prepared, crop_seconds: float, stride: int) -> int:
    """Crop length at the base rate: ``crop_seconds`` rounded down to a multiple of ``stride``.

    Raises ``ValueError`` when the crop does not fit in the cache's segments.
    """
    frames = int(round(crop_seconds * prepared.rates[0])) // stride * stride
    if frames < stride:
        raise ValueError(f"crop of {crop_seconds} s is shorter than one encoder frame")
    if frames > prepared.crop_frames:
        raise ValueError(f"{prepared.cache_dir}: crops of {crop_seconds} s are longer than the "
                         f"cache's {prepared.crop_seconds} s; run metatasnet prepare with "
                         f"--crop-seconds {crop_seconds}")
    return frames


def _check_rates(prepared, rates):
    if tuple(prepared.rates[:len(rates)]) != tuple(rates):
        raise ValueError(f"{prepared.cache_dir}: the cache holds rates {tuple(prepared.rates)} Hz, "
                         f"the model needs {tuple(rates)} Hz")


# ------------------------------------------------------------------ one source crop
def _source_crops(example, source, offset, channel, gain, frames, rates, base_rate):
    """One source's crop at every rate: a list of ``(frames * rate / base,)`` float32.

    ``offset``/``frames`` are at the base rate; the same channel and gain at every rate.
    """
    crops = []
    for i, rate in enumerate(rates):
        factor = rate // base_rate
        audio = example[f"sources_{rate}"]  # (segment_frames_i, 4, 2) int16
        piece = audio[offset * factor:(offset + frames) * factor, source, :]  # (frames_i, 2)
        piece = tf.cast(piece, tf.float32) * (example["scale"] * _INT16_SCALE)
        if channel is None:
            piece = tf.reduce_mean(piece, axis=-1)  # (frames_i,)
        else:
            piece = tf.gather(piece, channel, axis=-1)  # (frames_i,)
        crops.append(piece * (gain / example["mixture_std"][i]))
    return crops


def _random_offset(example, frames, seed):
    """Uniform crop start in ``[0, valid - frames]`` (0 when the segment is shorter)."""
    valid = tf.cast(example["num_frames"], tf.int32)
    high = tf.maximum(valid - frames, 0) + 1
    return tf.random.stateless_uniform((), seed, 0, high, dtype=tf.int32)


def _assemble(per_source, threshold):
    """``per_source[j][i]``: source j at stage i -> ``(mixtures, sources, masks)`` of one example."""
    stages = len(per_source[0])
    sources = tuple(tf.stack([per_source[j][i] for j in range(NUM_SOURCES)]) for i in range(stages))  # (4, n_i)
    mixtures = tuple(tf.reduce_sum(s, axis=0) for s in sources)  # (n_i,)
    rms = tf.sqrt(tf.reduce_mean(tf.square(sources[-1]), axis=-1))  # (4,)
    masks = tf.cast(rms > threshold, tf.float32)
    return mixtures, sources, masks


def _draws(config, seed):
    """Per-source channel and gain, from a stateless ``seed``."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    channels = tf.random.stateless_uniform((NUM_SOURCES,), seeds[0], 0, 2, dtype=tf.int32)
    gains = tf.random.stateless_uniform((NUM_SOURCES,), seeds[1], config.gain_min, config.gain_max)
    return channels, gains


def make_same_track_example(example, seed, config, frames, rates):
    """A training example whose four sources come from one crop of one segment."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    offset = _random_offset(example, frames, seeds[0])
    channels, gains = _draws(config, seeds[1])
    per_source = [
        _source_crops(example, j, offset, channels[j] if config.random_channel else None, gains[j],
                      frames, rates, rates[0])
        for j in range(NUM_SOURCES)]
    return _assemble(per_source, config.silence_threshold)


def make_cross_track_example(examples, seed, config, frames, rates):
    """A training example whose source ``j`` comes from a crop of ``examples[j]``."""
    seeds = tf.random.experimental.stateless_split(seed, NUM_SOURCES + 1)
    channels, gains = _draws(config, seeds[-1])
    per_source = []
    for j, example in enumerate(examples):
        offset = _random_offset(example, frames, seeds[j])
        per_source.append(_source_crops(example, j, offset,
                                        channels[j] if config.random_channel else None,
                                        gains[j], frames, rates, rates[0]))
    return _assemble(per_source, config.silence_threshold)


# ------------------------------------------------------------------ segment streams
def _segment_stream(prepared, config, seed, split="train"):
    """An endless, shuffled stream of raw (int16) segments of ``split``.

    With ``track_sampling="uniform"`` a segment of a track with ``n`` segments is kept with
    probability ``n_min / n``, so every track is drawn equally often.
    """
    # int16; two files at a time, one record each, so that memory does not grow with the
    # number of files.
    dataset = prepared.as_dataset(split, shuffle_files=True, seed=seed, decode=False,
                                  files_in_parallel=2)
    # Endless (repeat first, so shuffling never waits for a split's end); not reshuffled per
    # iterator, so that every iterator of a seeded pipeline gives the same batches (Keras's
    # fit under a strategy opens one to build the model, then another to train).
    dataset = dataset.repeat().shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
    if config.track_sampling == "uniform":
        fewest = float(min(prepared.track_segments[split_key(split)].values()))
        keep = tf.data.Dataset.random(seed=seed + 1)

        def accept(example, draw):
            probability = fewest / tf.cast(example["track_segments"], tf.float32)
            return tf.cast(draw % 1_000_000, tf.float32) < probability * 1_000_000.0

        dataset = tf.data.Dataset.zip(dataset, keep).filter(accept).map(lambda example, _: example)
    return dataset


def _element_seeds(seed):
    """An endless stream of ``(2,)`` int64 seeds for stateless random ops."""
    return tf.data.Dataset.random(seed=seed).batch(2)


def train_dataset(prepared, config: DataConfig, rates, stride: int, *, batch_size: "int | None" = None,
                  seed: "int | None" = None, split: str = "train", deterministic: "bool | None" = None):
    """The endless training pipeline, batched to ``batch_size`` (default ``config.batch_size``).

    Args:
        prepared: a ``PreparedDataset`` (``tf_metatasnet.data.prepare.open_prepared``).
        config: ``DataConfig``.
        rates: the model's stage rates (``MetaTasNetConfig.stage_rates``).
        stride: the base-rate encoder stride ``W``; crops are a multiple of it.
        batch_size: per-replica batch when used under a ``tf.distribute`` strategy.
        seed: overrides ``config.seed`` (e.g. one per input pipeline or per resumed epoch).
        deterministic: element order independent of parallelism; default: when seeded.

    Returns:
        ``tf.data.Dataset`` of ``(mixtures, sources, masks)`` (see the module docstring).
    """
    _check_rates(prepared, rates)
    rates = tuple(rates)
    frames = crop_frames(prepared, config.crop_seconds, stride)
    batch_size = batch_size or config.batch_size
    seed = config.seed if seed is None else seed
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    same, cross = config.split_batch(batch_size)

    streams = []
    if same:
        segments = _segment_stream(prepared, config, seed, split)
        same_ds = tf.data.Dataset.zip(segments, _element_seeds(seed + 2)).map(
            lambda example, s: make_same_track_example(example, s, config, frames, rates),
            num_parallel_calls=AUTOTUNE, deterministic=deterministic)
        streams.append(same_ds.batch(same, drop_remainder=True))
    if cross:
        # Groups of four random segments (of four different tracks where the split has at
        # least four) give four cross-track examples: example k takes source j from segment
        # (j + k) % 4, a Latin square, so every segment read serves all four sources once.
        groups = _segment_stream(prepared, config, seed + 10, split).batch(NUM_SOURCES, drop_remainder=True)
        if len(prepared.splits[split_key(split)]) >= NUM_SOURCES:
            groups = groups.filter(
                lambda group: tf.size(tf.unique(group["track_id"])[0]) == NUM_SOURCES)
        group_seeds = _element_seeds(seed + 3)

        def rotations(group, group_seed):
            segments = [tf.nest.map_structure(lambda x: x[i], group) for i in range(NUM_SOURCES)]
            seeds = tf.random.experimental.stateless_split(group_seed, NUM_SOURCES)
            examples = [make_cross_track_example(
                [segments[(j + k) % NUM_SOURCES] for j in range(NUM_SOURCES)], seeds[k], config,
                frames, rates) for k in range(NUM_SOURCES)]
            return tf.data.Dataset.from_tensor_slices(
                tf.nest.map_structure(lambda *xs: tf.stack(xs), *examples))

        cross_ds = tf.data.Dataset.zip(groups, group_seeds).interleave(
            rotations, cycle_length=2, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
        streams.append(cross_ds.batch(cross, drop_remainder=True))

    dataset = streams[0] if len(streams) == 1 else tf.data.Dataset.zip(tuple(streams)).map(
        lambda a, b: tf.nest.map_structure(lambda x, y: tf.concat([x, y], axis=0), a, b))
    options = tf.data.Options()
    options.deterministic = bool(seed is not None) if deterministic is None else deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options).prefetch(config.prefetch_batches)


def validation_dataset(prepared, rates, stride: int, *, batch_size: int = 4, split: str = "valid",
                       threshold: float = 1e-4):
    """Every segment of every track of ``split`` in order, each stereo channel an item.

    Segments cover whole tracks without overlap (the cache's validation layout). Each is
    cut to a multiple of the encoder ``stride`` and normalised by its track's mixture std.
    Returns ``(mixtures, sources, masks)`` batches.
    """
    _check_rates(prepared, rates)
    rates = tuple(rates)
    dataset = prepared.as_dataset(split, shuffle_files=False, decode=False)  # int16, in order
    frames = prepared.segment_frames // stride * stride

    def to_items(example):
        sources = []
        for i, rate in enumerate(rates):
            factor = rate // rates[0]
            audio = tf.cast(example[f"sources_{rate}"][:frames * factor], tf.float32)  # (n_i, 4, 2)
            audio = audio * (example["scale"] * _INT16_SCALE / example["mixture_std"][i])
            sources.append(tf.transpose(audio, (2, 1, 0)))  # (2 channels, 4, n_i)
        mixtures = tuple(tf.reduce_sum(s, axis=1) for s in sources)  # (2, n_i)
        rms = tf.sqrt(tf.reduce_mean(tf.square(sources[-1]), axis=-1))  # (2, 4)
        masks = tf.cast(rms > threshold, tf.float32)
        return tf.data.Dataset.from_tensor_slices((mixtures, tuple(sources), masks))

    # flat_map hides the count from tf.data; stating it lets Keras's fit validate without
    # warning "Your input ran out of data" after every epoch.
    batches = -(-2 * prepared.segments.get(split, 0) // batch_size)
    dataset = dataset.flat_map(to_items).batch(batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(AUTOTUNE)
