"""Songs with their true stems, as ``musdb`` reads MUSDB18 and MUSDB18-HQ, and stem folders.

- :func:`load_musdb`: the tracks of a subset (``train`` / ``test``), for evaluation;
- :func:`list_split_tracks`: the tracks of musdb's ``train`` / ``valid`` / ``test`` split,
  with a one-line error naming an unreadable track, for ``metatasnet prepare``;
- :func:`read_stem_folder`: a folder of ``<source>.flac`` stems (the bundled demo song).
"""

from __future__ import annotations

import os
from typing import Sequence

import musdb
import numpy as np
import soundfile
import stempeg

from tf_metatasnet.data.cache import PrepareError
from tf_metatasnet.errors import one_line
from tf_metatasnet.sources import SOURCES


def load_musdb(root: "str | os.PathLike", is_wav: bool = False, subset: str = "test",
               tracks: "Sequence[str] | None" = None):
    """The tracks of a local MUSDB18 (``is_wav=False``) or MUSDB18-HQ copy, read by ``musdb``.

    ``subset`` is ``train`` or ``test``; ``tracks`` optionally selects tracks by name.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such MUSDB18 folder")
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    database = musdb.DB(root=root, is_wav=is_wav, subsets=subset)
    found = list(database.tracks)
    if tracks:
        names = {track.name: track for track in found}
        missing = [name for name in tracks if name not in names]
        if missing:
            raise ValueError(f"{root}: no track named {missing[0]!r} in the {subset} subset")
        found = [names[name] for name in tracks]
    if not found:
        layout = "wav folders (MUSDB18-HQ)" if is_wav else ".stem.mp4 files (MUSDB18)"
        raise ValueError(f"{root}: no {layout} in the {subset} subset"
                         + ("" if is_wav else "; use --is-wav for MUSDB18-HQ"))
    return found


def list_split_tracks(root: str, is_wav: bool, split: str) -> list:
    """musdb ``Track`` objects of one split (musdb's own train/valid split of ``train``).

    Raises:
        PrepareError: the split has no tracks or an unreadable one (naming it and why).
    """
    subset = "test" if split == "test" else "train"
    kwargs = {"subsets": "test"} if split == "test" else {"subsets": "train", "split": split}
    try:
        found = list(musdb.DB(root=root, is_wav=is_wav, **kwargs).tracks)
    except Exception as error:  # musdb probes every file with ffprobe while listing
        name, reason = find_unreadable(os.path.join(root, subset), is_wav)
        if name is None:
            raise PrepareError(f"{root}: cannot list the {split} split ({one_line(error)})") from error
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


def find_unreadable(folder: str, is_wav: bool):
    """``(track name, reason)`` of the first file in ``folder`` that ffprobe cannot read."""
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
            return name, one_line(error)
    return None, None


def read_stem_folder(song_dir: "str | os.PathLike") -> tuple[np.ndarray, np.ndarray, int]:
    """The true stems of a song folder (``<source>.flac``, as the bundled demo song) and
    their mixture.

    Returns:
        ``(stems (sources, frames, channels), mixture (frames, channels), rate)``,
        float32; the mixture is the sample-wise sum of the stems.
    """
    stems, rates = [], set()
    for name in SOURCES:
        path = os.path.join(os.fspath(song_dir), f"{name}.flac")
        try:
            audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as error:
            raise OSError(f"{path}: cannot read the stem ({error})") from None
        stems.append(audio)
        rates.add(rate)
    if len(rates) != 1 or len({stem.shape for stem in stems}) != 1:
        raise ValueError(f"{song_dir}: the stems differ in rate, length or channels")
    stems = np.stack(stems)  # (sources, frames, channels)
    return stems, stems.sum(axis=0), rates.pop()
