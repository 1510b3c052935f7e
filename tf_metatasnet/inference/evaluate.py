"""Evaluation on MUSDB18 as in the paper: BSS Eval v4 with ``museval``.

Each track of a musdb subset is separated with the :class:`~tf_metatasnet.inference.separator.Separator`
(the same chunked inference as ``metatasnet separate``) and scored by
``museval.eval_mus_track``; its per-track JSON is written here, atomically, where museval
would put it (``<output_dir>/<subset>/<track>.json``). The paper's table is SDR (and SIR,
SAR, ISR) per instrument, the median over each track's one-second frames, then the median
over tracks.

Every output path is planned and checked before the first track is separated
(:func:`plan_evaluation`), and each track's stems are checked (present, readable, as long
as its mixture) before it is separated: a bad track stops the evaluation with one line
naming it, and leaves no empty or partial JSON.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import museval
import numpy as np

from tf_metatasnet.atomic import write_atomically, write_json_atomically, write_text_atomically
from tf_metatasnet.errors import one_line
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


class EvaluationError(ValueError):
    """A track or an output path that cannot be evaluated; one line naming it."""


def plan_evaluation(tracks, output_dir: "str | os.PathLike") -> dict[str, str]:
    """``{track name: JSON path}``: museval's ``<output_dir>/<subset>/<track>.json``, each
    checked to be inside ``output_dir``, planned once, and not one of the tracks' files.

    Raises:
        EvaluationError: naming the track and the path.
    """
    folder = os.path.realpath(os.fspath(output_dir))
    inputs = {os.path.realpath(path) for track in tracks for path in _track_files(track)}
    plan, seen = {}, {}
    for track in tracks:
        path = os.path.join(os.fspath(output_dir), track.subset, f"{track.name}.json")
        real = os.path.realpath(path)
        if os.path.commonpath([real, folder]) != folder or real == folder:
            raise EvaluationError(f"{track.name}: its scores would go to {path}, outside {output_dir}")
        if real in seen:
            raise EvaluationError(f"{path}: the scores of both {seen[real]!r} and {track.name!r} would be written there")
        if real in inputs:
            raise EvaluationError(f"{path}: is a file of the dataset; its scores would overwrite it")
        seen[real], plan[track.name] = track.name, path
    return plan


def _track_files(track) -> list[str]:
    """The files of a musdb track: its stem file, or its folder's wav files."""
    paths = [track.path] + [getattr(source, "path", None) or "" for source in (track.sources or {}).values()]
    return [path for path in paths if path]


def load_references(track) -> None:
    """Reads each source of ``track`` once, checks it, and keeps it in memory for scoring.

    Raises:
        EvaluationError: a source missing, unreadable or not as long as the mixture.
    """
    mixture = np.asarray(track.audio)
    for name in SOURCES:
        source = (track.sources or {}).get(name)
        if source is None:
            raise EvaluationError(f"{track.name}: has no {name} stem ({track.path})")
        try:
            audio = np.asarray(source.audio)
        except Exception as error:  # musdb, stempeg and soundfile raise many kinds; all mean this
            raise EvaluationError(f"{track.name}: its {name} stem cannot be read ({one_line(error)})") from None
        if audio.shape != mixture.shape:
            raise EvaluationError(f"{track.name}: its {name} stem has shape {audio.shape}, the mixture "
                                  f"{mixture.shape}; the stems must be as long as the mixture")
        source.audio = audio                       # musdb keeps it: read once


def release_references(track) -> None:
    """Forgets the sources :func:`load_references` kept."""
    for source in (track.sources or {}).values():
        source.audio = None


def _score(track, estimates: dict):
    scores = museval.eval_mus_track(track, estimates)
    scores.validate()
    return scores


def evaluate_tracks(separator, tracks, output_dir: "str | os.PathLike | None" = None,
                    jobs: int = 1, progress: "Callable[[str, int, int], None] | None" = None):
    """Separates and scores musdb ``tracks``; returns a ``museval.EvalStore``.

    Args:
        separator: anything with ``separate(audio (frames, channels), rate) -> {source:
            (frames, channels)}``: a :class:`~tf_metatasnet.inference.separator.Separator`, a
            :class:`BaselineSeparator`.
        tracks: musdb ``Track`` objects (e.g. from :func:`load_musdb`).
        output_dir: where each track's ``<subset>/<track>.json`` (museval's format) goes,
            and ``results.pandas`` and ``scores.json``; nothing is written without it.
        jobs: processes scoring tracks in parallel with the next separation (BSS Eval is
            slow; separation runs in this process).
        progress: called as ``progress(track_name, done, total)`` after each scored track.
    """
    output_dir = os.fspath(output_dir) if output_dir is not None else None
    plan = plan_evaluation(tracks, output_dir) if output_dir is not None else {}
    store = museval.EvalStore(frames_agg="median", tracks_agg="median")
    executor = ProcessPoolExecutor(jobs) if jobs > 1 else None

    def keep(name, scores, done):
        store.add_track(scores)
        if output_dir is not None:
            write_text_atomically(plan[name], scores.json)
        if progress:
            progress(name, done, len(tracks))

    try:
        futures = []
        for track in tracks:
            load_references(track)
            audio = np.asarray(track.audio, np.float32)           # (frames, channels)
            estimates = separator.separate(audio, track.rate)      # {source: (frames, channels)}
            if executor is None:
                keep(track.name, _score(track, estimates), len(futures) + 1)
                futures.append(track.name)
                release_references(track)
            else:
                release_references(track)                          # the worker reads them again
                futures.append((track.name, executor.submit(_score, track, estimates)))
        if executor is not None:
            for done, (name, future) in enumerate(futures, 1):
                keep(name, future.result(), done)
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
