"""The one-command demo: separate a song the model never heard and show how well it did.

:func:`run_demo` takes the bundled demo song (its four true stems; the mixture is their
sum), separates the mixture with the bundled default model (or any model), and writes to
one folder everything a newcomer needs to see the project work:

- ``mixture.wav`` and ``stems/{drums,bass,other,vocals}.wav`` (32-bit float);
- ``scores.json``: BSS Eval v4 (museval) per instrument, the median over one-second
  frames of SDR, SIR, SAR and ISR, beside the SDR of two trivial estimates (the mixture
  itself, and a quarter of it) that any model must beat;
- ``spectrograms.png``: the mixture's spectrogram, then each stem's estimate beside its
  ground truth;
- ``tflite/``: the model's per-instrument TFLite files, the Android demo's assets.

The song is rendered in advance by :func:`render_demo_song` (generated MIDI and FluidSynth,
``tf_metatasnet.data.synth.midi_songs``) and shipped as FLAC, so the demo needs no synthesizer and no
network. Its seed uses subset code 2, which no dataset split uses (``dataset.make_toy_dataset``
draws training songs with code 0 and test songs with code 1), so no model trained on
generated songs has seen it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import museval
import numpy as np
import soundfile

from tf_metatasnet import assets
from tf_metatasnet.atomic import write_atomically, write_json_atomically
from tf_metatasnet.audio import write_audio
from tf_metatasnet.checkpoints.saving import load_model
from tf_metatasnet.data.musdb import read_stem_folder
from tf_metatasnet.data.synth.midi_songs import render_track
from tf_metatasnet.export.tflite.export import export_tflite
from tf_metatasnet.export.tflite.metadata import model_version
from tf_metatasnet.export.tflite.options import UNCALIBRATED_QUANTIZATIONS, check_weight_rounding
from tf_metatasnet.inference.evaluate import BASELINE_GAINS as BASELINES
from tf_metatasnet.inference.evaluate import METRICS
from tf_metatasnet.inference.separator import Separator
from tf_metatasnet.models.size import DEFAULT_LIMIT_GIB
from tf_metatasnet.sources import SOURCES

#: The demo song's sample rate and the seed and length it was rendered with.
RATE = 44100
DEMO_SEED = (0, 2, 0)
DEMO_SECONDS = 8.0  # the four FLAC stems stay under 2 MB
#: The demo exports these TFLite variants (the others need calibration data).
#: The figure's size in inches and its resolution (the PNG is 1000 x 1200 pixels).
FIGURE_INCHES = (10.0, 12.0)
FIGURE_DPI = 100
#: Spectrogram analysis: Hann window, FFT size and hop in samples, dynamic range in dB.
N_FFT, HOP, DYNAMIC_RANGE_DB = 2048, 512, 80.0


@dataclass
class DemoResult:
    """What :func:`run_demo` wrote and measured.

    Attributes:
        output_dir: the demo folder.
        mixture: path of ``mixture.wav``.
        stems: ``{source: path of stems/<source>.wav}``.
        scores: path of ``scores.json``.
        figure: path of ``spectrograms.png``.
        tflite: paths of the ``.tflite`` files (empty without TFLite export).
        table: ``{source: {"SDR", "SIR", "SAR", "ISR", "SDR mixture", "SDR mixture/4": dB}}``,
            the content of ``scores.json``; ``None`` where every frame was undefined
            (a silent reference).
        seconds: the song's length.
    """

    output_dir: str
    mixture: str
    stems: dict[str, str]
    scores: str
    figure: str
    tflite: list[str] = field(default_factory=list)
    table: dict[str, dict[str, "float | None"]] = field(default_factory=dict)
    seconds: float = 0.0


def render_demo_song(output_dir: "str | os.PathLike", seconds: float = DEMO_SECONDS,
                     seed=DEMO_SEED, soundfont=None) -> list[str]:
    """Renders the demo song's stems as 16-bit FLAC: ``<output_dir>/<source>.flac``.

    Needs ``fluidsynth`` and a GM SoundFont (``tf_metatasnet.data.synth.midi_songs``). The defaults
    reproduce the shipped song. The stems are on the 16-bit grid, so FLAC keeps them
    exactly and their sum is the song's mixture.

    Args:
        output_dir: created if needed; each file is renamed into place when complete.
        seconds: the song's length.
        seed: ``midi_songs.render_track``'s seed (default ``(0, 2, 0)``: subset code 2,
            used by no dataset split).
        soundfont: a ``.sf2`` (default: the installed GM SoundFont).

    Returns:
        the four paths, in ``SOURCES`` order.
    """
    audio = render_track(seconds, RATE, seed=seed, soundfont=soundfont)
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for name in SOURCES:
        path = os.path.join(output_dir, f"{name}.flac")
        write_atomically(path, lambda temporary, stem=audio[name]: soundfile.write(
            temporary, stem, RATE, subtype="PCM_16", format="FLAC", compression_level=1.0))
        paths.append(path)
    return paths


def run_demo(output_dir: "str | os.PathLike", model=None, song_dir: "str | os.PathLike | None" = None,
             tflite: bool = True, quantization: str = "dynamic",
             progress: "Callable[[str, float, float], None] | None" = None,
             jit_compile: bool = False, weight_rounding: str = "gptq",
             max_gib: "float | None" = DEFAULT_LIMIT_GIB) -> DemoResult:
    """Separates the demo song, scores it, draws it and exports the model for phones.

    Args:
        output_dir: the demo folder (created if needed); every file in it is written to a
            temporary name and renamed into place.
        model: a ``MetaTasNet`` or the path of a model file (default: the bundled default
            model, ``assets.default_model_path()``).
        song_dir: a folder of ``<source>.flac`` true stems (default: the bundled demo song).
        tflite: also export the per-instrument TFLite files into ``output_dir/tflite``.
        quantization: their variant: ``float32``, ``float16``, ``dynamic`` or ``int8_weights`` (int8 needs
            calibration, which the demo skips; ``metatasnet export tflite`` does it).
        progress: called as ``progress(stage, done, total)``, the stage one of
            ``loading``, ``separating`` (in seconds of audio), ``scoring``, ``figure``,
            ``tflite``.
        jit_compile: compile the model with XLA (pays off on long songs only).
        weight_rounding: how the TFLite files' int8 weights are rounded, ``gptq`` (the
            export's default, on generated music) or ``nearest`` (about half the export time).
        max_gib: the largest model file loaded, in GiB of estimated memory (``load_model``).

    Returns:
        a :class:`DemoResult`.
    """
    if tflite and quantization not in UNCALIBRATED_QUANTIZATIONS:
        raise ValueError(f"the demo exports {', '.join(UNCALIBRATED_QUANTIZATIONS)} TFLite models, "
                         f"got {quantization!r}")
    if tflite:
        check_weight_rounding(weight_rounding)
    report = progress or (lambda stage, done, total: None)
    output_dir = os.fspath(output_dir)
    report("loading", 0, 1)
    song_dir = os.fspath(song_dir) if song_dir is not None else assets.demo_song_dir()
    references, mixture, rate = read_stem_folder(song_dir)  # (S, T, C), (T, C)
    model_path = None
    if model is None or isinstance(model, (str, os.PathLike)):
        model_path = os.fspath(model) if model is not None else assets.default_model_path()
        model = load_model(model_path, max_gib)
    report("loading", 1, 1)

    report("separating", 0, len(mixture) / rate)
    separator = Separator(model, jit_compile=jit_compile)
    estimates = separator.separate(mixture, rate, progress=lambda done, total: report("separating", done, total))
    estimates = np.stack([estimates[name] for name in SOURCES])  # (S, T, C)
    os.makedirs(os.path.join(output_dir, "stems"), exist_ok=True)
    result = DemoResult(output_dir=output_dir, mixture=os.path.join(output_dir, "mixture.wav"),
                        stems={name: os.path.join(output_dir, "stems", f"{name}.wav") for name in SOURCES},
                        scores=os.path.join(output_dir, "scores.json"),
                        figure=os.path.join(output_dir, "spectrograms.png"), seconds=len(mixture) / rate)
    write_audio(result.mixture, mixture, rate)
    for k, name in enumerate(SOURCES):
        write_audio(result.stems[name], estimates[k], rate)

    result.table = score(references, estimates, mixture, rate,
                         progress=lambda done, total: report("scoring", done, total))
    write_json_atomically(result.scores, result.table, allow_nan=False)

    report("figure", 0, 1)
    write_figure(result.figure, mixture, references, estimates, rate)
    report("figure", 1, 1)

    if tflite:
        result.tflite = _export_tflite(model, os.path.join(output_dir, "tflite"), quantization,
                                       weight_rounding, model_path, report)
    return result


def score(references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray, rate: int = RATE,
          progress: "Callable[[int, int], None] | None" = None) -> dict[str, dict[str, "float | None"]]:
    """BSS Eval v4 of ``estimates`` and of the trivial baselines, per instrument.

    Args:
        references, estimates: ``(sources, frames, channels)`` in ``SOURCES`` order.
        mixture: ``(frames, channels)``.
        rate: their sample rate; museval's frames are one second long.
        progress: called as ``progress(done, total)`` before the first museval run and
            after each.

    Returns:
        ``{source: {"SDR", "SIR", "SAR", "ISR", "SDR mixture", "SDR mixture/4": dB}}``:
        museval's one-second frames (``win = hop = rate``), their NaN-aware median;
        ``None`` if every frame is undefined.
    """
    runs = [("", estimates)] + [(f" {name}", np.broadcast_to(mixture * gain, estimates.shape))
                                for name, gain in BASELINES.items()]
    table = {name: {} for name in SOURCES}
    if progress is not None:
        progress(0, len(runs))
    for done, (suffix, estimate) in enumerate(runs, 1):
        sdr, isr, sir, sar = museval.evaluate(references, estimate, win=int(rate), hop=int(rate))  # each (S, frames)
        metrics = dict(zip(METRICS, (sdr, sir, sar, isr))) if not suffix else {"SDR": sdr}
        for metric, values in metrics.items():
            for k, name in enumerate(SOURCES):
                table[name][metric + suffix] = _median(values[k])
        if progress is not None:
            progress(done, len(runs))
    return table


def _median(frames: np.ndarray) -> "float | None":
    frames = np.asarray(frames, np.float64)
    finite = frames[np.isfinite(frames)]
    return float(np.median(finite)) if finite.size else None


def format_demo_table(result: "DemoResult | dict") -> str:
    """A plain-text table of the scores (dB): one row per instrument, the model's SDR, SIR,
    SAR, ISR, then the SDR of the baselines."""
    table = result.table if isinstance(result, DemoResult) else result
    columns = list(METRICS) + [f"SDR {name}" for name in BASELINES]
    width = max(len(column) for column in columns) + 2
    lines = ["source".ljust(8) + "".join(column.rjust(width) for column in columns)]
    for name, scores in table.items():
        cells = ["n/a" if scores.get(column) is None else f"{scores[column]:.2f}" for column in columns]
        lines.append(name.ljust(8) + "".join(cell.rjust(width) for cell in cells))
    return "\n".join(lines)


def spectrogram_db(audio: np.ndarray) -> np.ndarray:
    """The log-magnitude STFT in dB of the channel mean of ``(frames, channels)`` audio.

    Returns ``(bins, stft frames)``: ``N_FFT // 2 + 1`` bins, a Hann window every ``HOP``
    samples, ``20 log10(|X| + 1e-10)``.
    """
    mono = np.asarray(audio, np.float64).mean(axis=1)                     # (frames,)
    mono = np.pad(mono, (N_FFT // 2, N_FFT // 2))
    count = 1 + max(0, (len(mono) - N_FFT) // HOP)
    starts = np.arange(count)[:, None] * HOP + np.arange(N_FFT)[None, :]  # (stft frames, N_FFT)
    spectrum = np.fft.rfft(mono[starts] * np.hanning(N_FFT), axis=1)      # (stft frames, bins)
    return 20.0 * np.log10(np.abs(spectrum).T + 1e-10)                    # (bins, stft frames)


def write_figure(path: "str | os.PathLike", mixture: np.ndarray, references: np.ndarray,
                 estimates: np.ndarray, rate: int) -> None:
    """Writes the spectrogram figure as PNG (``FIGURE_INCHES`` at ``FIGURE_DPI``), atomically.

    First row the mixture (across both columns), then one row per instrument: the estimate
    on the left, the ground truth on the right; one colour scale for all, the top
    ``DYNAMIC_RANGE_DB`` dB below the loudest bin of any panel.
    """
    # Imported here: matplotlib is slow to import and only the figure needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = {"mixture": spectrogram_db(mixture)}
    for k, name in enumerate(SOURCES):
        panels[f"{name}: estimate"] = spectrogram_db(estimates[k])
        panels[f"{name}: ground truth"] = spectrogram_db(references[k])
    top = max(float(values.max()) for values in panels.values())
    extent = (0.0, len(mixture) / rate, 0.0, rate / 2000.0)  # seconds, kHz

    figure = Figure(figsize=FIGURE_INCHES, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(1 + len(SOURCES), 2)
    axes = [figure.add_subplot(grid[0, :])]
    axes += [figure.add_subplot(grid[1 + k, column]) for k in range(len(SOURCES)) for column in (0, 1)]
    for axis, (title, values) in zip(axes, panels.items()):
        image = axis.imshow(values, origin="lower", aspect="auto", extent=extent, cmap="magma",
                            vmin=top - DYNAMIC_RANGE_DB, vmax=top, interpolation="nearest")
        axis.set_title(title, fontsize=10)
        axis.set_ylabel("frequency (kHz)")
    for axis in axes[-2:]:
        axis.set_xlabel("time (s)")
    figure.colorbar(image, ax=axes, label="magnitude (dB)", shrink=0.6)
    figure.suptitle("Spectrograms of the demo song: separated (left) and true (right) stems")
    write_atomically(os.fspath(path), lambda temporary: figure.savefig(temporary, format="png", dpi=FIGURE_DPI))


def _export_tflite(model, folder: str, quantization: str, weight_rounding: str, model_path,
                   report) -> list[str]:
    """The per-instrument TFLite files at the export CLI's default windows, no calibration."""
    total = len(model.sources)
    version = model_version(model_path) if model_path is not None else "unversioned"
    done = 0

    def exported(message: str) -> None:
        nonlocal done
        done += 1
        report("tflite", done, total)

    report("tflite", 0, total)
    return export_tflite(model, folder, quantizations=(quantization,), version=version, progress=exported,
                         weight_rounding=weight_rounding)
