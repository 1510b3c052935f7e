"""A prepared cache (``metatasnet prepare``): what ``prepared.json`` records, and its readers.

:func:`open_prepared` reads ``CACHE_DIR/prepared.json`` into a :class:`PreparedDataset`,
whose :meth:`~PreparedDataset.as_dataset` reads one split of the ``musdb_multirate`` TFDS
dataset (``tf_metatasnet.data.musdb_multirate``) as dicts of its features, dequantised.
``tf_metatasnet.data.prepare`` writes such a cache; ``tf_metatasnet.data.pipeline`` makes
the training examples from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import warnings

import tensorflow as tf
import tensorflow_datasets as tfds

from tf_metatasnet.data.musdb_multirate import INT16_PEAK, MusdbMultirate, MusdbMultirateConfig
from tf_metatasnet.data.splits import TFDS_SPLITS, split_key
from tf_metatasnet.errors import one_line

#: Version of ``prepared.json``'s layout; readers refuse another one.
FORMAT_VERSION = 1
#: The file that describes a cache, in its folder.
PREPARED_JSON = "prepared.json"


class PrepareError(ValueError):
    """MUSDB18 could not be prepared or a prepared dataset not opened; one line says why."""


@dataclasses.dataclass(frozen=True)
class PreparedDataset:
    """A prepared cache: what ``prepared.json`` records, and readers of its TFDS dataset.

    Attributes:
        cache_dir: the cache folder (absolute).
        rates: the sample rates, increasing; the first is the base rate.
        crop_seconds: the training crop; ``crop_frames`` is it at the base rate.
        segment_frames: every example's length at the base rate (``2 * crop_frames``);
            ``segment_frames * rate // rates[0]`` at ``rate``.
        config_name: the ``musdb_multirate`` builder config, e.g. ``r8000-16000-32000_crop8``.
        splits: ``{"train" | "valid" | "test": track names}``, sorted: a name's index is the
            ``track_id`` of its examples.
        segments: ``{split: number of examples}``.
        track_segments: ``{split: {track: number of its examples}}`` (e.g. to draw every track
            equally often although longer tracks have more segments).
    """

    cache_dir: str
    rates: tuple[int, ...]
    crop_seconds: float
    crop_frames: int
    segment_frames: int
    config_name: str
    splits: dict[str, list[str]]
    segments: dict[str, int]
    track_segments: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    @property
    def dataset_dir(self) -> str:
        """Where TFDS keeps the dataset: ``CACHE_DIR/musdb_multirate/<config>/1.0.0``."""
        return os.path.join(self.cache_dir, MusdbMultirate.name, self.config_name, str(MusdbMultirate.VERSION))

    def builder(self):
        """The ``MusdbMultirate`` TFDS builder of this cache (already built)."""
        builder = make_builder(self.cache_dir, self.rates, self.crop_seconds)
        if not builder.is_prepared():
            raise PrepareError(f"{self.dataset_dir}: the dataset is missing (run metatasnet prepare)")
        return builder

    def as_dataset(self, split: str, *, shuffle_files: bool = False, seed: "int | None" = None,
                   input_context=None, decode: bool = True, files_in_parallel: "int | None" = None):
        """A ``tf.data.Dataset`` of one split's segments, as dicts of the builder's features.

        Args:
            split: ``train``, ``valid`` (or ``validation``) or ``test``.
            shuffle_files: read the split's files in a random order (default: False).
            seed: seed of that order (default: None, a different one each time).
            input_context: a ``tf.distribute.InputContext``: each input pipeline then reads a
                disjoint part, whole files when the split has at least one file per pipeline,
                every n-th example otherwise.
            decode: True (default): each ``sources_{rate}`` is dequantised to float32
                ``(frames, 4, 2)`` (``int16 * scale / 32767``). False: the stored int16, for
                dequantising later (e.g. after batching, on the accelerator).
            files_in_parallel: how many files are read at once, one record at a time from
                each and without read-ahead, so that memory does not depend on the
                dataset's size (the pipeline after it has its own buffers). Default: TFDS's
                reading (16 files at once, blocks of 16 records, parallel, prefetched).
        """
        try:
            key = split_key(split)
        except ValueError as error:
            raise PrepareError(str(error)) from None
        if key not in self.splits:
            raise PrepareError(f"{self.cache_dir}: no {split} split in this cache "
                               f"(prepared: {', '.join(self.splits)})")
        builder = self.builder()
        tfds_split = TFDS_SPLITS[key]
        shard_after = None
        if (input_context is not None and input_context.num_input_pipelines > 1
                and builder.info.splits[tfds_split].num_shards < input_context.num_input_pipelines):
            shard_after, input_context = input_context, None  # too few files to split by file
        options = {}
        if files_in_parallel is not None:
            # Bounded reading: files_in_parallel files open, one record at a time from each,
            # sequentially, no read-ahead of TFDS's own (its parallel interleave and prefetch
            # buffer blocks of 16 records per file, which a bigger dataset fills further).
            options = {"interleave_cycle_length": files_in_parallel, "interleave_block_length": 1,
                       "num_parallel_calls_for_interleave_files": None,  # sequential
                       "num_parallel_calls_for_decode": 1, "skip_prefetch": True}
        read_config = tfds.ReadConfig(shuffle_seed=seed, input_context=input_context,
                                      try_autocache=False,  # audio: never cache in memory implicitly
                                      **options)
        with quiet_tfds():  # the decoding function is traced here
            dataset = builder.as_dataset(split=tfds_split, shuffle_files=shuffle_files,
                                         read_config=read_config)
        if shard_after is not None:
            dataset = dataset.shard(shard_after.num_input_pipelines, shard_after.input_pipeline_id)
        if not decode:
            return dataset
        keys = [f"sources_{rate}" for rate in self.rates]

        def dequantise(example):
            example = dict(example)
            step = example["scale"] / INT16_PEAK
            for name in keys:
                example[name] = tf.cast(example[name], tf.float32) * step  # (frames, 4, 2)
            return example

        return dataset.map(dequantise, num_parallel_calls=tf.data.AUTOTUNE)

    def disk_bytes(self) -> int:
        """Bytes used by the whole cache folder."""
        return folder_bytes(self.cache_dir)


def open_prepared(cache_dir: "str | os.PathLike") -> PreparedDataset:
    """Opens a cache written by :func:`prepare_musdb` (``metatasnet prepare``)."""
    cache_dir = os.path.abspath(os.fspath(cache_dir))
    path = os.path.join(cache_dir, PREPARED_JSON)
    if not os.path.isfile(path):
        raise PrepareError(f"{cache_dir}: no prepared dataset ({PREPARED_JSON} is missing; "
                           f"run metatasnet prepare)")
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
        if record.get("format_version") != FORMAT_VERSION:
            raise PrepareError(f"{path}: format version {record.get('format_version')}, this "
                               f"version reads {FORMAT_VERSION} (run metatasnet prepare again)")
        prepared = PreparedDataset(
            cache_dir=cache_dir,
            rates=tuple(int(rate) for rate in record["rates"]),
            crop_seconds=float(record["crop_seconds"]),
            crop_frames=int(record["crop_frames"]),
            segment_frames=int(record["segment_frames"]),
            config_name=str(record["config_name"]),
            splits={split: list(info["tracks"]) for split, info in record["splits"].items()},
            segments={split: int(info["segments"]) for split, info in record["splits"].items()},
            track_segments={split: {name: int(count) for name, count in info["track_segments"].items()}
                            for split, info in record["splits"].items()},
        )
    except PrepareError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PrepareError(f"{path}: unreadable ({one_line(error)}; run metatasnet prepare "
                           f"again)") from None
    if not os.path.isfile(os.path.join(prepared.dataset_dir, "dataset_info.json")):
        raise PrepareError(f"{prepared.dataset_dir}: the dataset is missing (run metatasnet prepare)")
    return prepared


class _TfdsNoiseFilter(logging.Filter):
    """Drops two TFDS warnings that say nothing to a user: that a builder config is not one of
    the predefined ones, and TFDS's own use of the deprecated ``FeatureConnector.dtype``."""

    NOISE = ("Using custom data configuration", "`FeatureConnector.dtype` is deprecated")

    def filter(self, record):
        return not record.getMessage().startswith(self.NOISE)


@contextlib.contextmanager
def quiet_tfds():
    """Filters :class:`_TfdsNoiseFilter`'s messages out of the ``absl`` logger meanwhile, and
    tf.data's warning that TFDS's sequential file interleave ignores ``deterministic``."""
    absl_logger = logging.getLogger("absl")
    quiet = _TfdsNoiseFilter()
    absl_logger.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The `deterministic` argument has no effect", UserWarning)
            yield
    finally:
        absl_logger.removeFilter(quiet)


def make_builder(cache_dir: str, rates, crop_seconds: float):
    """A ``MusdbMultirate`` builder for ``cache_dir`` (the predefined config by name if it is one)."""
    config = MusdbMultirateConfig(rates=rates, crop_seconds=crop_seconds)
    with quiet_tfds():
        return MusdbMultirate(config=config.name if config.name in MusdbMultirate.builder_configs
                              else config, data_dir=cache_dir)


def folder_bytes(folder: str) -> int:
    """Bytes of every file below ``folder``."""
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(parent, name))
    return total
