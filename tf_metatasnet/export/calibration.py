"""Model-input windows from audio: for int8 calibration and for measuring exported models.

A window is what one model call sees: one ``(1, window * rate / base_rate)`` float32 array
per stage rate, the mono mixture resampled to that rate and divided by its standard
deviation (as the separator and the apps do). Windows come from

- the training pipeline over a prepared cache (``metatasnet prepare``): the paper's
  augmented mixtures, the closest thing to what the model sees;
- audio files (any format ``tf_metatasnet.audio.io`` reads);
- generated music (``tf_metatasnet.data.synth.toy``), when nothing else is at hand.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np

from tf_metatasnet.audio import read_audio, resample
from tf_metatasnet.data.cache import open_prepared
from tf_metatasnet.data.pipeline import DataConfig, train_dataset
from tf_metatasnet.data.synth.toy import synthesize_track


def stage_signals(audio: np.ndarray, rate: int, rates: Sequence[int]) -> list[np.ndarray]:
    """A mono signal ``(frames,)`` at ``rate`` resampled to each of ``rates`` and divided by
    its standard deviation there: per rate ``(samples_i,)`` float32."""
    signals = []
    for target in rates:
        signal = resample(np.asarray(audio, np.float32)[:, None], rate, target)[:, 0]
        signals.append((signal / max(float(signal.std()), 1e-8)).astype(np.float32))
    return signals


def generated_song(seconds: float, seed: int = 0, rate: int = 44100) -> np.ndarray:
    """A mono synthetic song ``(frames,)`` (drums, bass, chords, a sung-like melody)."""
    return synthesize_track(seconds, rate, seed=(0xE4, seed))["mixture"].mean(axis=1)


def _cut(signals: list[np.ndarray], rates: Sequence[int], window: int) -> Iterator[list]:
    """Consecutive whole windows of per-rate signals (the last partial one dropped)."""
    factors = [rate // rates[0] for rate in rates]
    count = min(len(s) // (window * f) for s, f in zip(signals, factors))
    for k in range(count):
        yield [s[None, k * window * f:(k + 1) * window * f] for s, f in zip(signals, factors)]


def _pipeline_windows(cache_dir: str, rates, stride: int, window: int, seed: int) -> Iterator[list]:
    """Training-pipeline mixtures (batch 1), concatenated in time to whole windows."""
    prepared = open_prepared(cache_dir)
    config = DataConfig(cache_dir=cache_dir, batch_size=1, crop_seconds=prepared.crop_seconds,
                        shuffle_buffer=4, seed=seed)
    pending, filled = [[] for _ in rates], 0
    for mixtures, _, _ in train_dataset(prepared, config, rates, stride).as_numpy_iterator():
        for i, mixture in enumerate(mixtures):
            pending[i].append(mixture[0])                     # (samples_i,)
        filled += mixtures[0].shape[-1]
        if filled >= window:
            yield from _cut([np.concatenate(p) for p in pending], rates, window)
            pending, filled = [[] for _ in rates], 0


def calibration_windows(source: "str | Sequence[str] | None", rates: Sequence[int], window: int,
                        count: int, stride: int = 20, seed: int = 0) -> list[list[np.ndarray]]:
    """``count`` model-input windows (see the module docstring).

    Args:
        source: a prepared cache folder, audio file(s), or ``None`` for generated songs.
        rates: the stage rates, base rate first.
        window: window length in base samples.
        count: windows wanted (fewer if audio files are too short for more).
        stride: the model's stride in base samples (for pipeline crops).
        seed: seed of the pipeline or of the generated songs.

    Returns:
        a list of windows, each a list with one ``(1, window * rate / rates[0])`` array per rate.
    """
    windows = []
    if source is None:
        song = 0
        while len(windows) < count:
            audio = generated_song(window / rates[0] * 2, seed=seed + song)
            windows.extend(_cut(stage_signals(audio, 44100, rates), rates, window))
            song += 1
    elif isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        for item in _pipeline_windows(os.fspath(source), tuple(rates), stride, window, seed):
            windows.append(item)
            if len(windows) >= count:
                break
    else:
        for path in [source] if isinstance(source, (str, os.PathLike)) else source:
            audio, rate = read_audio(path)                      # (frames, channels)
            windows.extend(_cut(stage_signals(audio.mean(axis=1), rate, rates), rates, window))
            if len(windows) >= count:
                break
        if not windows:
            raise ValueError(f"{source}: too short for one calibration window of "
                             f"{window / rates[0]:.2f} s")
    return windows[:count]
