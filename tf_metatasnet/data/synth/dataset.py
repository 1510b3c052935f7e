"""A synthetic MUSDB18: small, music-like, deterministic datasets for tests and smoke runs.

``make_toy_dataset`` writes the real MUSDB18 layouts, which the ``musdb`` package reads
back unchanged:

* ``fmt="wav"`` (MUSDB18-HQ): ``{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav``,
  stereo 16-bit PCM. The mixture is the exact sample-wise sum of the four stems.
* ``fmt="stem"`` (MUSDB18): ``{train,test}/<track>.stem.mp4``, five AAC streams in MUSDB18's
  order (mixture, drums, bass, other, vocals), written by ``stempeg`` through ffmpeg.

Each track is a song of ``tf_metatasnet.data.synth.toy`` (NumPy) or
``tf_metatasnet.data.synth.midi_songs`` (generated MIDI rendered by FluidSynth).

For a given length and rate, track ``i`` of a subset depends only on ``(seed, subset, i)``,
not on how many tracks are made. About a quarter of the training tracks take their names
from musdb's own validation list (``validation_tracks`` in ``musdb/configs/mus.yaml``), so
that ``musdb.DB(..., subsets="train", split="valid")`` finds them and ``split="train"``
the others.

Stem files decode (through musdb/stempeg) about a thousand samples longer than asked: AAC
codes whole 1024-sample frames and ffmpeg does not trim the encoder's padding at the end.
The extra samples are near-silent and the same in all five streams.
"""

from __future__ import annotations

import math
import numbers
import os
import pathlib
from typing import Callable

import musdb
import numpy as np
import soundfile
import stempeg
import yaml

from tf_metatasnet.atomic import write_atomically
from tf_metatasnet.data.synth import midi_songs
from tf_metatasnet.data.synth.toy import synthesize_track
from tf_metatasnet.programs import find_program
from tf_metatasnet.sources import SOURCES, STEMS

FORMATS = ("wav", "stem")
#: How songs are made: pure NumPy synthesis, or generated MIDI rendered by FluidSynth.
RENDERERS = ("numpy", "fluidsynth")
#: MUSDB18 stem files are AAC at 256 kbit/s.
STEM_BITRATE = 256000


def validation_track_names() -> list[str]:
    """MUSDB18's validation tracks, from musdb's own ``configs/mus.yaml``."""
    path = os.path.join(os.path.dirname(musdb.__file__), "configs", "mus.yaml")
    with open(path, encoding="utf-8") as file:
        return list(yaml.safe_load(file)["validation_tracks"])


def track_names(tracks: int, test_tracks: int) -> tuple[list[str], list[str]]:
    """Names of the training and test tracks.

    About a quarter of the training tracks (at least one when ``tracks >= 2``, none when
    ``tracks == 1`` so that the training split is never empty) take the first names of
    musdb's validation list; the others are "Toy Artist - Toy Song 001" and so on.
    """
    validation = validation_track_names()
    count = 0 if tracks < 2 else min(max(1, int(tracks / 4 + 0.5)), len(validation))
    train = [f"Toy Artist - Toy Song {i + 1:03d}" for i in range(tracks - count)] + validation[:count]
    test = [f"Toy Artist - Toy Test Song {i + 1:03d}" for i in range(test_tracks)]
    return train, test


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _write_wav(path, audio, rate):
    pcm = np.round(audio.astype(np.float64) * 32768.0).astype(np.int16)
    write_atomically(path, lambda temporary: soundfile.write(temporary, pcm, rate, subtype="PCM_16",
                                                             format="WAV"))


def _write_stem(path, audio, rate):
    data = np.stack([audio[name] for name in STEMS])  # (stems, samples, channels)

    def write(temporary):
        writer = stempeg.StreamsWriter(codec="aac", bitrate=STEM_BITRATE, stem_names=list(STEMS))
        try:
            stempeg.write_stems(temporary, data, sample_rate=rate, writer=writer)
        except RuntimeError as error:
            raise OSError(f"{path}: ffmpeg could not write the stem file ({error})") from None

    # The temporary name must end in .mp4 for ffmpeg to pick the container, but not in
    # .stem.mp4, or musdb would list it as a track.
    write_atomically(path, write, suffix=".part.mp4")


def make_toy_dataset(output_dir: "str | os.PathLike", tracks: int = 4, seconds: float = 10.0,
                     fmt: str = "wav", test_tracks: "int | None" = None, seed: int = 0,
                     rate: int = 44100, renderer: str = "numpy", soundfont=None,
                     progress: "Callable[[int, int], None] | None" = None) -> list[pathlib.Path]:
    """Writes a synthetic MUSDB18 (``fmt="stem"``) or MUSDB18-HQ (``fmt="wav"``) under ``output_dir``.

    Every file goes to a temporary name in its own folder and is renamed into place, so an
    interrupted run leaves no half-written file. Running again over an existing dataset
    rewrites every track it makes (the same arguments give the same audio), and leaves any
    other file or track in ``output_dir`` alone.

    Args:
        output_dir: the dataset root; ``train/`` and ``test/`` are made in it.
        tracks: training tracks (>= 1, default 4); see ``track_names`` for the validation split.
        seconds: length of every track (> 0, default 10).
        fmt: ``"wav"`` (default) or ``"stem"``.
        test_tracks: test tracks (>= 0; default ``max(1, tracks // 2)``).
        seed: the dataset's seed (default 0); track ``i`` of a subset uses ``(seed, subset, i)``.
        rate: sample rate in Hz (default 44100, MUSDB18's).
        renderer: ``"numpy"`` (default; ``synthesize_track``, no dependency) or
            ``"fluidsynth"`` (``midi_songs.render_track``: generated MIDI rendered with
            sampled General MIDI instruments; needs the ``fluidsynth`` program and a
            SoundFont).
        soundfont: the ``.sf2`` file of the ``fluidsynth`` renderer (default: the
            installed ``fluid-soundfont-gm``).
        progress: called as ``progress(tracks_done, tracks_total)``, first with 0 done.

    Returns:
        One path per track, training tracks first: the track's folder (wav) or its
        ``.stem.mp4`` file (stem).
    """
    if not _is_integer(tracks) or tracks < 1:
        raise ValueError(f"tracks must be an integer >= 1, got {tracks!r}")
    if test_tracks is None:
        test_tracks = max(1, tracks // 2)
    if not _is_integer(test_tracks) or test_tracks < 0:
        raise ValueError(f"test_tracks must be an integer >= 0, got {test_tracks!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not (
            seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not _is_integer(rate) or rate < 8000:
        raise ValueError(f"rate must be an integer of at least 8000 Hz, got {rate!r}")
    if not _is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}, got {renderer!r}")
    if soundfont is not None and renderer != "fluidsynth":
        raise ValueError("a soundfont needs renderer='fluidsynth'")
    if renderer == "fluidsynth":
        midi_songs.find_fluidsynth()
        soundfont = midi_songs.find_soundfont(soundfont)
    if fmt == "stem":
        find_program("ffmpeg", f"writing .stem.mp4 files to {output_dir}")
    root = pathlib.Path(output_dir)
    if root.exists() and not root.is_dir():
        raise OSError(f"{root}: exists and is not a folder")
    train, test = track_names(int(tracks), int(test_tracks))
    jobs = ([("train", 0, i, name) for i, name in enumerate(train)]
            + [("test", 1, i, name) for i, name in enumerate(test)])
    written = []
    for subset in ("train", "test"):
        (root / subset).mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress(0, len(jobs))
    for done, (subset, code, index, name) in enumerate(jobs, start=1):
        if renderer == "numpy":
            audio = synthesize_track(float(seconds), int(rate), seed=(int(seed), code, index))
        else:
            audio = midi_songs.render_track(float(seconds), int(rate), seed=(int(seed), code, index),
                                            soundfont=soundfont)
        if fmt == "wav":
            folder = root / subset / name
            folder.mkdir(exist_ok=True)
            # The mixture last: a folder with a mixture.wav has all its stems.
            for stem in SOURCES + ("mixture",):
                _write_wav(folder / f"{stem}.wav", audio[stem], rate)
            written.append(folder)
        else:
            path = root / subset / f"{name}.stem.mp4"
            _write_stem(path, audio, rate)
            written.append(path)
        if progress is not None:
            progress(done, len(jobs))
    return written
