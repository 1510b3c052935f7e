"""Evaluation on MUSDB18 as in the paper: BSS Eval v4 with ``museval``.

Each track of a musdb subset is separated with the :class:`~tf_metatasnet.inference.separator.Separator`
(the same chunked inference as ``metatasnet separate``) and scored by
``museval.eval_mus_track``, which also writes museval's per-track JSON. The paper's table is
SDR (and SIR, SAR, ISR) per instrument, the median over each track's one-second frames, then
the median over tracks.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import museval
import numpy as np

from tf_metatasnet.atomic import write_atomically, write_json_atomically
from tf_metatasnet.sources import SOURCES

METRICS = ("SDR", "SIR", "SAR", "ISR")
#: Trivial estimates any model must beat: every stem is the mixture times this gain.
BASELINE_GAINS = {"mixture": 1.0, "mixture/4": 0.25}


class BaselineSeparator:
    """A trivial "separator" for :func:`evaluate_tracks`: every stem is ``gain * mixture``.

    BSS Eval v4 allows a distortion filter but not an arbitrary gain per frame, so the
    mixture and a quarter of it score differently; both are the floor a model must beat.
    """

    def __init__(self, gain: float):
        self.gain = float(gain)

    def separate(self, audio: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        estimate = np.asarray(audio, np.float32) * self.gain  # (frames, channels)
        return {source: estimate.copy() for source in SOURCES}


def _score(track, estimates: dict, output_dir: "str | None"):
    return museval.eval_mus_track(track, estimates, output_dir=output_dir)


def evaluate_tracks(separator, tracks, output_dir: "str | os.PathLike | None" = None,
                    jobs: int = 1, progress: "Callable[[str, int, int], None] | None" = None):
    """Separates and scores musdb ``tracks``; returns a ``museval.EvalStore``.

    Args:
        separator: anything with ``separate(audio (frames, channels), rate) -> {source:
            (frames, channels)}``: a :class:`~tf_metatasnet.inference.separator.Separator`, a
            :class:`BaselineSeparator`.
        tracks: musdb ``Track`` objects (e.g. from :func:`load_musdb`).
        output_dir: where museval writes ``<subset>/<track>.json`` (and this function
            ``results.pandas`` and ``scores.json``); nothing is written without it.
        jobs: processes scoring tracks in parallel with the next separation (BSS Eval is
            slow; separation runs in this process).
        progress: called as ``progress(track_name, done, total)`` after each scored track.
    """
    output_dir = os.fspath(output_dir) if output_dir is not None else None
    store = museval.EvalStore(frames_agg="median", tracks_agg="median")
    executor = ProcessPoolExecutor(jobs) if jobs > 1 else None
    try:
        futures = []
        for track in tracks:
            audio = np.asarray(track.audio, np.float32)           # (frames, channels)
            estimates = separator.separate(audio, track.rate)      # {source: (frames, channels)}
            if executor is None:
                futures.append((track.name, _score(track, estimates, output_dir)))
                if progress:
                    progress(track.name, len(futures), len(tracks))
            else:
                futures.append((track.name, executor.submit(_score, track, estimates, output_dir)))
        for done, (name, result) in enumerate(futures, 1):
            store.add_track(result if executor is None else result.result())
            if executor is not None and progress:
                progress(name, done, len(tracks))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    if output_dir is not None:
        save_scores(store, output_dir)
    return store


def score_table(store) -> dict[str, dict[str, float]]:
    """``{source: {metric: median over frames, then median over tracks}}``, the paper's table."""
    aggregated = store.agg_frames_tracks_scores().unstack()  # rows: target, columns: metric
    return {source: {metric: float(aggregated.loc[source, metric]) for metric in METRICS}
            for source in SOURCES if source in aggregated.index}


def format_table(table: dict[str, dict[str, float]]) -> str:
    """A Markdown table of :func:`score_table`'s result (dB)."""
    lines = ["| source | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for source, scores in table.items():
        lines.append(f"| {source} | " + " | ".join(f"{scores[m]:.2f}" for m in METRICS) + " |")
    return "\n".join(lines)


def save_scores(store, output_dir: "str | os.PathLike") -> None:
    """Writes ``results.pandas`` (museval's store) and ``scores.json`` (the table), atomically."""
    write_atomically(os.path.join(output_dir, "results.pandas"), store.save)
    write_json_atomically(os.path.join(output_dir, "scores.json"), score_table(store))
