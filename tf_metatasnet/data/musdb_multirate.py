"""MUSDB18 at several sample rates as a TensorFlow Datasets dataset (``musdb_multirate``).

``metatasnet prepare`` (:func:`tf_metatasnet.data.prepare.prepare_musdb`) first resamples every
track once into ``CACHE_DIR/resampled/{train,valid,test}/<track>/`` (``{rate}.npy``: int16
``(frames_at_rate, 4, 2)``, and ``meta.json``), then builds this dataset from those folders
(its manual directory) into ``CACHE_DIR/musdb_multirate/<config>/1.0.0/``.

An example is a fixed-length segment of one track, ``segment_frames = 2 * crop_frames`` at
the first (base) rate and ``segment_frames * rate // rates[0]`` at the others, so that frame
``p`` at the base rate is frame ``p * rate // rates[0]`` at every rate: a crop taken at the
same base-rate position is aligned across rates.

* ``train``: segments start at ``0, crop, 2 * crop, ...`` (they overlap by half), plus one
  ending at the track's end when those miss it. A random crop of ``crop_frames`` at a random
  offset in ``[0, segment - crop]`` of a random segment can then land on any position of the
  track while every example stays the same size (fixed shapes batch without padding).
* ``validation`` and ``test``: consecutive segments (no overlap) that cover the whole track,
  the last one zero-padded; ``num_frames`` says how much of a segment is audio, and
  ``track_id``, ``segment`` and ``track_segments`` let a reader put whole tracks back together.

Sources are stored as int16 scaled by the track's peak (``scale``, see ``int16 * scale /
32767``) rather than float32: half the disk, and 16 bits are MUSDB18's own precision. The
mixture is not stored: training rebuilds it as the sum of (randomly gained) sources. Each
track's ``mixture_std`` (std of its mono mixture at each rate) is stored for normalisation.
"""

from __future__ import annotations

import json
import os
from typing import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from tf_metatasnet.compat import QuietBuilderMixin
from tf_metatasnet.data.splits import TFDS_SPLITS
from tf_metatasnet.sources import SOURCES

#: Largest int16 magnitude used by the quantisation (symmetric: -32767 .. 32767).
INT16_PEAK = 32767
#: The default rates (Meta-TasNet's three stages) and crop (the paper's 8 s).
DEFAULT_RATES = (8000, 16000, 32000)
DEFAULT_CROP_SECONDS = 8.0


def config_name(rates: Sequence[int], crop_seconds: float) -> str:
    """A config name from its values, e.g. ``r8000-16000-32000_crop8`` (``0.5`` s: ``crop0p5``)."""
    crop = f"{float(crop_seconds):g}".replace(".", "p")
    return f"r{'-'.join(str(int(rate)) for rate in rates)}_crop{crop}"


def segment_starts(length: int, crop_frames: int, segment_frames: int, overlap: bool) -> list[int]:
    """Start frames (base rate) of a track's segments.

    ``overlap=True`` (train): hop ``crop_frames``, plus a last segment at ``length -
    segment_frames`` if the track's end is not covered; a track shorter than a segment gives
    one (zero-padded) segment. ``overlap=False`` (validation, test): hop ``segment_frames``
    until the whole track is covered, the last segment zero-padded.
    """
    if length <= segment_frames:
        return [0]
    if not overlap:
        return list(range(0, length, segment_frames))
    starts = list(range(0, length - segment_frames + 1, crop_frames))
    if starts[-1] + segment_frames < length:
        starts.append(length - segment_frames)
    return starts


class MusdbMultirateConfig(tfds.core.BuilderConfig):
    """A ``musdb_multirate`` configuration: the sample rates and the training crop length.

    Args:
        rates: increasing sample rates in Hz, each a multiple of the first (the base rate).
        crop_seconds: the training crop; segments are twice as long.
        **kwargs: passed to ``tfds.core.BuilderConfig`` (``name`` defaults to
            :func:`config_name` of the values).
    """

    def __init__(self, *, rates: Sequence[int] = DEFAULT_RATES,
                 crop_seconds: float = DEFAULT_CROP_SECONDS, **kwargs):
        rates = tuple(int(rate) for rate in rates)
        kwargs.setdefault("name", config_name(rates, crop_seconds))
        kwargs.setdefault("description", f"sources at {', '.join(map(str, rates))} Hz, "
                                         f"segments of 2 x {float(crop_seconds):g} s")
        super().__init__(**kwargs)
        self.rates = rates
        self.crop_seconds = float(crop_seconds)
        self.crop_frames = int(round(self.crop_seconds * rates[0]))
        self.segment_frames = 2 * self.crop_frames

    def frames(self, rate: int) -> int:
        """A segment's length at ``rate``."""
        return self.segment_frames * int(rate) // self.rates[0]


class MusdbMultirate(QuietBuilderMixin, tfds.core.GeneratorBasedBuilder):
    """MUSDB18 sources resampled to several rates, in fixed-length int16 segments."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [MusdbMultirateConfig()]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Run `metatasnet prepare --musdb MUSDB_ROOT [--is-wav] -o CACHE_DIR`: it resamples "
        "MUSDB18 (or MUSDB18-HQ) into CACHE_DIR/resampled, the manual directory of this "
        "dataset, and builds it into CACHE_DIR.")

    #: Called as ``progress(split_folder, done, total)`` after each track while generating
    #: (``split_folder``: ``train``, ``valid`` or ``test``); set on an instance by prepare.
    progress = None

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        sources = {f"sources_{rate}": tfds.features.Tensor(
            shape=(config.frames(rate), len(SOURCES), 2), dtype=np.int16,
            encoding=tfds.features.Encoding.BYTES)  # raw bytes: no upcast to int64
            for rate in config.rates}
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "MUSDB18 (or MUSDB18-HQ) sources (drums, bass, other, vocals; stereo) "
                "resampled with soxr (VHQ) to several rates, as fixed-length int16 segments "
                "aligned across rates. Train segments overlap by half, validation and test "
                "segments tile each track."),
            features=tfds.features.FeaturesDict({
                "track": tfds.features.Text(),
                "track_id": tfds.features.Scalar(dtype=np.int32),
                "segment": tfds.features.Scalar(dtype=np.int32),
                "track_segments": tfds.features.Scalar(dtype=np.int32),
                "start": tfds.features.Scalar(dtype=np.int64),
                "num_frames": tfds.features.Scalar(dtype=np.int32),
                "scale": tfds.features.Scalar(dtype=np.float32),
                "mixture_std": tfds.features.Tensor(shape=(len(config.rates),), dtype=np.float32),
                **sources,
            }),
            homepage="https://sigsep.github.io/datasets/musdb.html",
            citation=(
                "@misc{musdb18, author = {Rafii, Zafar and Liutkus, Antoine and St{\\\"o}ter, "
                "Fabian-Robert and Mimilakis, Stylianos Ioannis and Bittner, Rachel}, title = "
                "{The {MUSDB18} corpus for music separation}, year = 2017, "
                "doi = {10.5281/zenodo.1117372}}"),
        )

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        splits = {tfds_split: self._generate_examples(os.path.join(root, folder),
                                                      overlap=folder == "train")
                  for folder, tfds_split in TFDS_SPLITS.items()
                  if os.path.isdir(os.path.join(root, folder))}
        if not splits:
            raise ValueError(f"{root}: no {', '.join(TFDS_SPLITS)} folder (run metatasnet prepare)")
        return splits

    def _generate_examples(self, split_dir: str, overlap: bool) -> Iterator[tuple[str, dict]]:
        """Yields ``(f"{track}/{segment:05d}", example)`` for every segment of every track.

        Tracks are the folders of ``split_dir`` (hidden ones are unfinished writes), sorted;
        ``track_id`` is the index in that order. The ``.npy`` files are memory-mapped, so
        memory holds one segment at a time, not a track.
        """
        config = self.builder_config
        names = track_folders(split_dir)
        for track_id, name in enumerate(names):
            folder = os.path.join(split_dir, name)
            meta = read_meta(folder)
            if tuple(meta["rates"]) != config.rates:
                raise ValueError(f"{folder}: resampled at {meta['rates']} Hz, not {list(config.rates)}")
            length = int(meta["frames"][0])
            starts = segment_starts(length, config.crop_frames, config.segment_frames, overlap)
            arrays = {rate: np.load(os.path.join(folder, f"{rate}.npy"), mmap_mode="r")
                      for rate in config.rates}  # {rate: (frames_at_rate, 4, 2) int16}
            for index, start in enumerate(starts):
                example = {
                    "track": name,
                    "track_id": np.int32(track_id),
                    "segment": np.int32(index),
                    "track_segments": np.int32(len(starts)),
                    "start": np.int64(start),
                    "num_frames": np.int32(min(config.segment_frames, length - start)),
                    "scale": np.float32(meta["scale"]),
                    "mixture_std": np.asarray(meta["mixture_std"], np.float32),
                }
                for rate, array in arrays.items():
                    factor = rate // config.rates[0]
                    segment = np.zeros((config.frames(rate), len(SOURCES), 2), np.int16)
                    chunk = array[start * factor:(start + config.segment_frames) * factor]
                    segment[:len(chunk)] = chunk  # the rest stays zero: padding at the end
                    example[f"sources_{rate}"] = segment
                yield f"{name}/{index:05d}", example
            del arrays  # unmaps the track
            if self.progress is not None:
                self.progress(os.path.basename(split_dir), track_id + 1, len(names))


def track_folders(split_dir: "str | os.PathLike") -> list[str]:
    """Finished track folders of a ``resampled/{split}`` folder, sorted (hidden ones skipped)."""
    if not os.path.isdir(split_dir):
        return []
    return sorted(name for name in os.listdir(split_dir)
                  if not name.startswith(".") and os.path.isdir(os.path.join(split_dir, name)))


def read_meta(folder: "str | os.PathLike") -> dict:
    """A resampled track's ``meta.json``; a ``ValueError`` naming the folder if unreadable."""
    path = os.path.join(folder, "meta.json")
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable track metadata ({error})") from None
