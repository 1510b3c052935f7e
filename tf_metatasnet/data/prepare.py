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
import json
import math
import os
import shutil
import tempfile
from typing import Callable, Sequence

import numpy as np
import tensorflow_datasets as tfds
from tqdm import tqdm

from tf_metatasnet import compat
from tf_metatasnet.atomic import write_directory_atomically, write_json_atomically
from tf_metatasnet.audio import resample
from tf_metatasnet.data.cache import (
    FORMAT_VERSION,
    PREPARED_JSON,
    PreparedDataset,
    PrepareError,
    make_builder,
    open_prepared,
)
from tf_metatasnet.data.musdb import list_split_tracks
from tf_metatasnet.data.musdb_multirate import (
    INT16_PEAK,
    MusdbMultirate,
    config_name,
    read_meta,
    segment_starts,
    track_folders,
)
from tf_metatasnet.data.splits import SPLITS, TFDS_SPLITS
from tf_metatasnet.errors import one_line
from tf_metatasnet.sources import SOURCES

RESAMPLED = "resampled"


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
        tracks = {split: list_split_tracks(root, is_wav, split) for split in splits}
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
        dataset_config = config_name(rates, crop_seconds)
        _remove_prepared_json_of(cache_dir, dataset_config)
        builder = _build(cache_dir, resampled, rates, crop_seconds, tracks, report)

    config = builder.builder_config
    counts = {split: {name: len(segment_starts(
        int(read_meta(os.path.join(resampled, split, name))["frames"][0]), config.crop_frames,
        config.segment_frames, overlap=split == "train"))
        for name in track_folders(os.path.join(resampled, split))} for split in splits}
    record = {
        "format_version": FORMAT_VERSION,
        "builder": MusdbMultirate.name,
        "version": str(MusdbMultirate.VERSION),
        "config_name": dataset_config,
        "musdb_root": root,
        "is_wav": bool(is_wav),
        "sources": list(SOURCES),
        "rates": list(rates),
        "crop_seconds": crop_seconds,
        "crop_frames": config.crop_frames,
        "segment_frames": config.segment_frames,
        "splits": {split: {"tfds_split": TFDS_SPLITS[split], "tracks": sorted(counts[split]),
                           "segments": int(builder.info.splits[TFDS_SPLITS[split]].num_examples),
                           "track_segments": counts[split]}
                   for split in splits},
    }
    write_json_atomically(os.path.join(cache_dir, PREPARED_JSON), record)
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


# --- phase 1: resampling --------------------------------------------------------------------


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
                           f"({one_line(error)})") from error
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

    def write(temporary: str) -> None:
        for rate in rates:
            output = outputs.pop(rate)
            np.multiply(output, INT16_PEAK / scale, out=output)
            np.rint(output, out=output)
            np.clip(output, -INT16_PEAK, INT16_PEAK, out=output)
            np.save(os.path.join(temporary, f"{rate}.npy"), output.astype(np.int16))  # (frames, 4, 2)
            del output
        write_json_atomically(os.path.join(temporary, "meta.json"), meta)

    # An outdated version of the track (other rates or MUSDB18 copy) is replaced.
    write_directory_atomically(folder, write)


# --- phase 2: the TFDS dataset --------------------------------------------------------------


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
    config_dir = os.path.join(cache_dir, MusdbMultirate.name, config_name(rates, crop_seconds))
    if os.path.isdir(config_dir):  # a previous build (other tracks or splits) or TFDS leftovers
        for entry in os.listdir(config_dir):
            if entry == str(MusdbMultirate.VERSION) or entry.startswith("incomplete."):
                shutil.rmtree(os.path.join(config_dir, entry))
    builder = make_builder(cache_dir, rates, crop_seconds)
    total = sum(len(found) for found in tracks.values())
    offsets, offset = {}, 0
    for split, found in tracks.items():
        offsets[split] = offset
        offset += len(found)
    report("build", 0, total)
    builder.progress = lambda split, done, _: report("build", offsets[split] + done, total)
    downloads = tempfile.mkdtemp(prefix=".tmp-tfds-", dir=cache_dir)  # TFDS wants one; unused
    shown = compat.tfds_progress_bar_shown()
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


