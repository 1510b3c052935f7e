"""MUSDB18 prepared once for training: resampled to the model's rates, stored as a TFDS dataset.

Meta-TasNet trains on 8, 16 and 32 kHz versions of the same crop. Resampling 44.1 kHz audio
on every step would cost more than the model, so :func:`prepare_musdb` does it once, in two
phases that each leave nothing half-written:

1. **Resample** every track of musdb's ``train``, ``valid`` and ``test`` splits (MUSDB18
   ``.stem.mp4`` or MUSDB18-HQ wav folders, read with the ``musdb`` package) with soxr (VHQ)
   to each rate, into ``CACHE_DIR/resampled/{split}/{track}/``: ``{rate}.npy``, int16
   ``(frames_at_rate, 4, 2)`` (drums, bass, other, vocals; stereo) quantised by the track's
   peak ``scale``, and ``meta.json``. Lengths are exactly ``base_frames * rate // rates[0]``
   so that a position at the base rate maps to every rate. A track folder is written under a
   temporary name and renamed into place; a finished one is skipped on the next run.
2. **Build** the ``musdb_multirate`` TFDS dataset (:mod:`tf_metatasnet.data.musdb_multirate`) from those
   folders into ``CACHE_DIR/musdb_multirate/<config>/1.0.0/`` (TFDS writes it under a
   temporary name too), then ``CACHE_DIR/prepared.json``, what :func:`open_prepared` reads.
   ``resampled/`` is deleted afterwards unless ``keep_resampled``.

The mixture is not stored (training sums the gained sources); the std of each track's mono
mixture at each rate is, since tracks are normalised by it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from typing import Callable, Sequence

import numpy as np

from tf_metatasnet.atomic import write_text_atomically
from tf_metatasnet.audio.io import resample
from tf_metatasnet.config import SOURCES

#: Version of ``prepared.json``'s layout; readers refuse another one.
FORMAT_VERSION = 1
#: musdb's splits, in build order.
SPLITS = ("train", "valid", "test")
#: Split names accepted by :meth:`PreparedDataset.as_dataset` and the TFDS split of each.
_TFDS_SPLITS = {"train": "train", "valid": "validation", "validation": "validation", "test": "test"}
#: The builder's name and version (kept here so that reading the JSON needs no TensorFlow).
BUILDER_NAME = "musdb_multirate"
BUILDER_VERSION = "1.0.0"
PREPARED_JSON = "prepared.json"
RESAMPLED = "resampled"
INT16_PEAK = 32767


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
        return os.path.join(self.cache_dir, BUILDER_NAME, self.config_name, BUILDER_VERSION)

    def builder(self):
        """The ``MusdbMultirate`` TFDS builder of this cache (already built)."""
        builder = _make_builder(self.cache_dir, self.rates, self.crop_seconds)
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
        import tensorflow as tf
        import tensorflow_datasets as tfds

        key = _split_key(split)
        if key not in self.splits:
            raise PrepareError(f"{self.cache_dir}: no {split} split in this cache "
                               f"(prepared: {', '.join(self.splits)})")
        builder = self.builder()
        tfds_split = _TFDS_SPLITS[key]
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
        with _quiet_tfds():  # the decoding function is traced here
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
        return _folder_bytes(self.cache_dir)


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
        raise PrepareError(f"{path}: unreadable ({_one_line(error)}; run metatasnet prepare "
                           f"again)") from None
    if not os.path.isfile(os.path.join(prepared.dataset_dir, "dataset_info.json")):
        raise PrepareError(f"{prepared.dataset_dir}: the dataset is missing (run metatasnet prepare)")
    return prepared


def prepare_musdb(musdb_root: "str | os.PathLike", cache_dir: "str | os.PathLike", *,
                  is_wav: bool = False, crop_seconds: float = 8.0,
                  rates: Sequence[int] = (8000, 16000, 32000),
                  splits: Sequence[str] = SPLITS, keep_resampled: bool = False,
                  progress: "Callable[[str, int, int], None] | bool" = False) -> PreparedDataset:
    """Resamples MUSDB18 and builds the ``musdb_multirate`` TFDS dataset in ``cache_dir``.

    Re-running resumes: finished track folders are skipped, and a cache whose
    ``prepared.json`` matches these arguments is returned without reading MUSDB18.

    Args:
        musdb_root: MUSDB18 root (``train/`` and ``test/`` of ``.stem.mp4`` files), or
            MUSDB18-HQ's (wav folders) with ``is_wav=True``.
        cache_dir: the cache folder (created if needed).
        is_wav: the MUSDB18-HQ layout (default: False).
        crop_seconds: the training crop (default: 8, the paper's); examples are segments of
            twice that.
        rates: increasing sample rates, each a multiple of the first (default: 8, 16, 32 kHz).
        splits: musdb splits to prepare, among ``train``, ``valid``, ``test`` (default: all).
        keep_resampled: keep ``CACHE_DIR/resampled`` after the build (default: False).
        progress: ``progress(stage, done, total)`` after each track, ``stage`` being
            ``resample`` then ``build``; True shows tqdm bars, False (default) nothing.

    Returns:
        The :class:`PreparedDataset`.
    """
    root = os.path.abspath(os.fspath(musdb_root))
    cache_dir = os.path.abspath(os.fspath(cache_dir))
    rates, crop_seconds, splits = _check_options(rates, crop_seconds, splits)
    if not os.path.isdir(root):
        raise PrepareError(f"{root}: no such MUSDB18 folder")
    resampled = os.path.join(cache_dir, RESAMPLED)
    prepared = _already_prepared(cache_dir, root, is_wav, rates, crop_seconds, splits)
    if prepared is not None:
        if not keep_resampled:
            shutil.rmtree(resampled, ignore_errors=True)
        return prepared

    with _progress_reporter(progress) as report:
        tracks = {split: _list_tracks(root, is_wav, split) for split in splits}
        try:
            os.makedirs(resampled, exist_ok=True)
        except OSError as error:
            raise PrepareError(f"{cache_dir}: cannot write here ({error.strerror})") from None
        _remove_stale(resampled, tracks)

        # Phase 1: resample, one track at a time.
        total = sum(len(found) for found in tracks.values())
        report("resample", 0, total)
        done = 0
        for split, found in tracks.items():
            for track in found:
                folder = os.path.join(resampled, split, track.name)
                if not _is_resampled(folder, rates, root, is_wav):
                    _resample_track(track, split, folder, rates, root, is_wav)
                done += 1
                report("resample", done, total)

        # Phase 2: the TFDS dataset.
        dataset_config = _config_name(rates, crop_seconds)
        _remove_prepared_json_of(cache_dir, dataset_config)
        builder = _build(cache_dir, resampled, rates, crop_seconds, tracks, report)

    from tf_metatasnet.data.musdb_multirate import read_meta, segment_starts

    config = builder.builder_config
    counts = {split: {name: len(segment_starts(
        int(read_meta(os.path.join(resampled, split, name))["frames"][0]), config.crop_frames,
        config.segment_frames, overlap=split == "train"))
        for name in _track_folders(os.path.join(resampled, split))} for split in splits}
    record = {
        "format_version": FORMAT_VERSION,
        "builder": BUILDER_NAME,
        "version": BUILDER_VERSION,
        "config_name": dataset_config,
        "musdb_root": root,
        "is_wav": bool(is_wav),
        "sources": list(SOURCES),
        "rates": list(rates),
        "crop_seconds": crop_seconds,
        "crop_frames": config.crop_frames,
        "segment_frames": config.segment_frames,
        "splits": {split: {"tfds_split": _TFDS_SPLITS[split], "tracks": sorted(counts[split]),
                           "segments": int(builder.info.splits[_TFDS_SPLITS[split]].num_examples),
                           "track_segments": counts[split]}
                   for split in splits},
    }
    _write_json(os.path.join(cache_dir, PREPARED_JSON), record)
    if not keep_resampled:
        shutil.rmtree(resampled, ignore_errors=True)
    return open_prepared(cache_dir)


# --- options and listing --------------------------------------------------------------------

def _check_options(rates, crop_seconds, splits):
    """Validated ``(rates tuple, crop_seconds float, splits tuple in SPLITS order)``."""
    given = rates
    try:
        rates = tuple(int(rate) for rate in given)
        if any(float(rate) != float(value) for rate, value in zip(rates, given)):
            raise ValueError
    except (TypeError, ValueError):
        raise PrepareError(f"rates must be whole numbers of Hz, got {given!r}") from None
    if not rates or rates[0] <= 0:
        raise PrepareError(f"rates must be positive, got {', '.join(map(str, rates)) or 'none'}")
    if any(b <= a for a, b in zip(rates, rates[1:])) or any(rate % rates[0] for rate in rates):
        raise PrepareError(f"rates {', '.join(map(str, rates))}: they must be increasing and each "
                           f"a multiple of the first")
    try:
        crop_seconds = float(crop_seconds)
    except (TypeError, ValueError):
        raise PrepareError(f"crop_seconds must be a number, got {crop_seconds!r}") from None
    if not math.isfinite(crop_seconds) or round(crop_seconds * rates[0]) < 1:
        raise PrepareError(f"crop_seconds must be positive (at least one frame at {rates[0]} Hz), "
                           f"got {crop_seconds:g}")
    if isinstance(splits, str):
        splits = [splits]
    unknown = [split for split in splits if split not in SPLITS]
    if unknown or not splits:
        raise PrepareError(f"splits must be among {', '.join(SPLITS)}, got "
                           f"{', '.join(map(str, splits)) or 'none'}")
    return rates, crop_seconds, tuple(split for split in SPLITS if split in splits)


def _config_name(rates, crop_seconds) -> str:
    crop = f"{float(crop_seconds):g}".replace(".", "p")  # the same as musdb_tfds.config_name
    return f"r{'-'.join(map(str, rates))}_crop{crop}"


def _split_key(split: str) -> str:
    if split not in _TFDS_SPLITS:
        raise PrepareError(f"unknown split {split!r} (train, valid, validation or test)")
    return {"validation": "valid"}.get(split, split)


def _one_line(error: BaseException) -> str:
    """The most telling line of an error (ffmpeg's last stderr line when there is one)."""
    stderr = getattr(error, "stderr", None)
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    if isinstance(stderr, str) and stderr.strip():
        return stderr.strip().splitlines()[-1].strip()
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _list_tracks(root: str, is_wav: bool, split: str) -> list:
    """musdb ``Track`` objects of one split (musdb's own train/valid split of ``train``)."""
    import musdb

    subset = "test" if split == "test" else "train"
    kwargs = {"subsets": "test"} if split == "test" else {"subsets": "train", "split": split}
    try:
        found = list(musdb.DB(root=root, is_wav=is_wav, **kwargs).tracks)
    except Exception as error:  # musdb probes every file with ffprobe while listing
        name, reason = _find_unreadable(os.path.join(root, subset), is_wav)
        if name is None:
            raise PrepareError(f"{root}: cannot list the {split} split ({_one_line(error)})") from error
        raise PrepareError(f"{root}: track {name!r} ({split} split) is unreadable ({reason})") from error
    if not found:
        folder = os.path.join(root, subset)
        entries = os.listdir(folder) if os.path.isdir(folder) else []
        if is_wav:
            hint = ("; it has .stem.mp4 files: drop --is-wav (is_wav=False)"
                    if any(entry.endswith(".stem.mp4") for entry in entries) else "")
            layout = "track folders of wav files (MUSDB18-HQ)"
        else:
            hint = ("; it has folders: use --is-wav (is_wav=True) for MUSDB18-HQ"
                    if any(os.path.isdir(os.path.join(folder, entry)) for entry in entries)
                    else "; use --is-wav (is_wav=True) if it is MUSDB18-HQ")
            layout = ".stem.mp4 files (MUSDB18)"
        raise PrepareError(f"{root}: no tracks found in the {split} split (looked for {layout} "
                           f"in {folder}){hint}")
    return found


def _find_unreadable(folder: str, is_wav: bool):
    """``(track name, reason)`` of the first file in ``folder`` that ffprobe cannot read."""
    import stempeg

    if not os.path.isdir(folder):
        return None, None
    for entry in sorted(os.listdir(folder)):
        if is_wav:
            path, name = os.path.join(folder, entry, "mixture.wav"), entry
            if not os.path.isfile(path):
                continue
        elif entry.endswith(".stem.mp4"):
            path, name = os.path.join(folder, entry), entry[:-len(".stem.mp4")]
        else:
            continue
        try:  # what musdb reads of every file while listing a split
            info = stempeg.Info(path)
            int(info.samples(0)), info.duration(0), info.sample_rate(0)
        except Exception as error:
            return name, _one_line(error)
    return None, None


# --- phase 1: resampling --------------------------------------------------------------------

def _track_folders(split_dir: str) -> list[str]:
    """Finished track folders of a split, sorted (the same rule as the builder's)."""
    if not os.path.isdir(split_dir):
        return []
    return sorted(name for name in os.listdir(split_dir)
                  if not name.startswith(".") and os.path.isdir(os.path.join(split_dir, name)))


def _remove_stale(resampled: str, tracks: dict) -> None:
    """Leaves in ``resampled`` only folders of these splits' tracks (finished or not).

    Unfinished writes (hidden ``.tmp-*`` folders of an interrupted run), tracks no longer in
    the split and splits not asked for are deleted: the builder takes every folder it finds.
    """
    for entry in os.listdir(resampled):
        path = os.path.join(resampled, entry)
        if entry not in tracks:
            _remove(path)
            continue
        names = {track.name for track in tracks[entry]}
        for name in os.listdir(path):
            if name.startswith(".") or name not in names:
                _remove(os.path.join(path, name))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _is_resampled(folder: str, rates, root: str, is_wav: bool) -> bool:
    """Whether ``folder`` holds this track at these rates, from this MUSDB18 copy."""
    try:
        with open(os.path.join(folder, "meta.json"), encoding="utf-8") as file:
            meta = json.load(file)
    except (OSError, ValueError):
        return False
    return (meta.get("rates") == list(rates) and meta.get("musdb_root") == root
            and meta.get("is_wav") == bool(is_wav)
            and all(os.path.isfile(os.path.join(folder, f"{rate}.npy")) for rate in rates))


def _load_source(track, source: str, split: str, root: str) -> np.ndarray:
    """One source of a musdb track as float32 ``(frames, 2)``."""
    if source not in (track.sources or {}):
        raise PrepareError(f"{root}: track {track.name!r} ({split} split) has no {source} stem")
    try:
        audio = np.asarray(track.sources[source].audio, np.float32)
    except Exception as error:  # stempeg/ffmpeg raise many kinds; all mean the same here
        raise PrepareError(f"{root}: track {track.name!r} ({split} split) is unreadable "
                           f"({_one_line(error)})") from error
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise PrepareError(f"{root}: track {track.name!r} ({split} split): {source} is not "
                           f"stereo (shape {audio.shape})")
    return audio


def _resample_track(track, split: str, folder: str, rates, root: str, is_wav: bool) -> None:
    """Writes ``folder`` (``{rate}.npy`` and ``meta.json``) for one track, atomically.

    Sources are read one at a time; memory holds the float32 track at all rates (about
    1 GB for a 10-minute track at 8+16+32 kHz) and is released on return.
    """
    source_rate = track.rate
    if not source_rate:
        raise PrepareError(f"{root}: track {track.name!r} ({split} split) is unreadable "
                           f"(no sample rate; is its mixture missing?)")
    source_rate = int(source_rate)
    outputs = None  # {rate: (frames_at_rate, 4, 2) float32}
    for index, source in enumerate(SOURCES):
        audio = _load_source(track, source, split, root)  # (frames, 2)
        if outputs is None:
            base_frames = int(round(len(audio) * rates[0] / source_rate))
            frames = [base_frames * rate // rates[0] for rate in rates]
            outputs = {rate: np.zeros((count, len(SOURCES), 2), np.float32)
                       for rate, count in zip(rates, frames)}
        for rate, output in outputs.items():
            converted = resample(audio, source_rate, rate)  # (about frames * rate / source_rate, 2)
            count = min(len(converted), len(output))
            output[:count, index] = converted[:count]  # cut, or leave zero padding at the end
            del converted
        del audio
    peak = max(float(np.max(np.abs(output), initial=0.0)) for output in outputs.values())
    scale = max(peak, 1e-8)
    mixture_std = [float(output.sum(axis=1, dtype=np.float64).mean(axis=1).std())  # mono mixture
                   for output in outputs.values()]
    meta = {"track": track.name, "split": split, "source_rate": source_rate, "rates": list(rates),
            "scale": scale, "mixture_std": mixture_std, "frames": frames,
            "musdb_root": root, "is_wav": bool(is_wav)}

    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        for rate in rates:
            output = outputs.pop(rate)
            np.multiply(output, INT16_PEAK / scale, out=output)
            np.rint(output, out=output)
            np.clip(output, -INT16_PEAK, INT16_PEAK, out=output)
            np.save(os.path.join(temporary, f"{rate}.npy"), output.astype(np.int16))  # (frames, 4, 2)
            del output
        _write_json(os.path.join(temporary, "meta.json"), meta)
        if os.path.exists(folder):  # an outdated version (other rates or MUSDB18 copy)
            old = tempfile.mkdtemp(prefix=".old-", dir=parent)
            os.replace(folder, os.path.join(old, "track"))
            os.replace(temporary, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


# --- phase 2: the TFDS dataset --------------------------------------------------------------

class _TfdsNoiseFilter(logging.Filter):
    """Drops two TFDS warnings that say nothing to a user: that a builder config is not one of
    the predefined ones, and TFDS's own use of the deprecated ``FeatureConnector.dtype``."""

    NOISE = ("Using custom data configuration", "`FeatureConnector.dtype` is deprecated")

    def filter(self, record):
        return not record.getMessage().startswith(self.NOISE)


@contextlib.contextmanager
def _quiet_tfds():
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


def _make_builder(cache_dir: str, rates, crop_seconds: float):
    """A ``MusdbMultirate`` builder for ``cache_dir`` (the predefined config by name if it is one)."""
    from tf_metatasnet.data.musdb_multirate import MusdbMultirate, MusdbMultirateConfig

    config = MusdbMultirateConfig(rates=rates, crop_seconds=crop_seconds)
    with _quiet_tfds():
        return MusdbMultirate(config=config.name if config.name in MusdbMultirate.builder_configs
                              else config, data_dir=cache_dir)


def _already_prepared(cache_dir, root, is_wav, rates, crop_seconds, splits):
    """The cache's :class:`PreparedDataset` if it was built from these arguments, else None."""
    try:
        with open(os.path.join(cache_dir, PREPARED_JSON), encoding="utf-8") as file:
            record = json.load(file)
        same = (record.get("format_version") == FORMAT_VERSION and record.get("musdb_root") == root
                and record.get("is_wav") == bool(is_wav) and record.get("rates") == list(rates)
                and record.get("crop_seconds") == crop_seconds
                and tuple(record.get("splits", {})) == tuple(splits))
        return open_prepared(cache_dir) if same else None
    except (OSError, ValueError):
        return None


def _remove_prepared_json_of(cache_dir: str, name: str) -> None:
    """Deletes ``prepared.json`` if it describes config ``name``, whose dataset is rebuilt."""
    path = os.path.join(cache_dir, PREPARED_JSON)
    try:
        with open(path, encoding="utf-8") as file:
            described = json.load(file).get("config_name")
    except (OSError, ValueError, AttributeError):
        described = name if os.path.exists(path) else None
    if described == name:
        os.remove(path)


def _build(cache_dir: str, resampled: str, rates, crop_seconds: float, tracks: dict, report):
    """Builds (or rebuilds) the TFDS dataset of config ``(rates, crop_seconds)``; returns its builder."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.utils import tqdm_utils

    config_dir = os.path.join(cache_dir, BUILDER_NAME, _config_name(rates, crop_seconds))
    if os.path.isdir(config_dir):  # a previous build (other tracks or splits) or TFDS leftovers
        for entry in os.listdir(config_dir):
            if entry == BUILDER_VERSION or entry.startswith("incomplete."):
                shutil.rmtree(os.path.join(config_dir, entry))
    builder = _make_builder(cache_dir, rates, crop_seconds)
    total = sum(len(found) for found in tracks.values())
    offsets, offset = {}, 0
    for split, found in tracks.items():
        offsets[split] = offset
        offset += len(found)
    report("build", 0, total)
    builder.progress = lambda split, done, _: report("build", offsets[split] + done, total)
    downloads = tempfile.mkdtemp(prefix=".tmp-tfds-", dir=cache_dir)  # TFDS wants one; unused
    shown = getattr(tqdm_utils, "_active", True)
    tfds.display_progress_bar(False)  # TFDS's own bars would print from library code
    try:
        builder.download_and_prepare(
            download_dir=downloads,
            download_config=tfds.download.DownloadConfig(manual_dir=resampled))
    finally:
        tfds.display_progress_bar(shown)
        builder.progress = None
        shutil.rmtree(downloads, ignore_errors=True)
    return builder


# --- small helpers --------------------------------------------------------------------------

@contextlib.contextmanager
def _progress_reporter(progress):
    """``report(stage, done, total)`` from the ``progress`` argument (a callable or a bool)."""
    if callable(progress):
        yield progress
        return
    if not progress:
        yield lambda stage, done, total: None
        return
    from tqdm import tqdm

    bars = {}

    def report(stage, done, total):
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(total=total, unit="track", desc=f"prepare: {stage}")
        bars[stage].update(done - bars[stage].n)

    try:
        yield report
    finally:
        for bar in bars.values():
            bar.close()


def _write_json(path: str, record: dict) -> None:
    """Writes ``record`` as JSON to ``path`` through a temporary file renamed into place."""
    write_text_atomically(path, json.dumps(record, indent=2) + "\n")


def _folder_bytes(folder: str) -> int:
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(parent, name))
    return total
