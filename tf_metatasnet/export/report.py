"""How good and how fast exported TFLite models are: ``export_report.json`` and its table.

Per ``.tflite`` file: its size (and ratio to the float32 file of the same instrument),
the builtin-ops check, the SI-SDR of its separation of a song against the Keras float
model's (same windows, same chunking, :func:`tf_metatasnet.inference.apply.apply_to_arrays`),
and the latency of one window in the LiteRT interpreter with 1 and 2 threads, also as a
real-time factor: latency divided by the audio each window advances
(``chunk - overlap``); below 1 is faster than real time.

The song is music by default: the mixture of the demo song shipped in the package
(FluidSynth-rendered, not in any training split), repeated to two windows and a half;
any audio file can be given instead (:func:`report_song`). What it is matters: a
masking model's quantization error scales with the mixture, so a stem the model
leaves quiet (as with the pure-NumPy generated song, whose sounds the default model
never heard) has a lower SI-SDR against the float model than a stem it extracts.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np

from tf_metatasnet.assets import demo_song_dir
from tf_metatasnet.atomic import write_json_atomically
from tf_metatasnet.audio import read_audio
from tf_metatasnet.data.musdb import read_stem_folder
from tf_metatasnet.export.calibration import stage_signals
from tf_metatasnet.export.tflite.convert import op_report
from tf_metatasnet.inference.apply import apply_to_arrays
from tf_metatasnet.inference.backends.keras import KerasBackend
from tf_metatasnet.inference.backends.tflite import TFLiteBackend, read_metadata


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR in dB of ``estimate`` against ``reference`` (flattened)."""
    estimate, reference = np.ravel(estimate).astype(np.float64), np.ravel(reference).astype(np.float64)
    target = reference * (estimate @ reference) / max(reference @ reference, 1e-20)
    noise = estimate - target
    return float(10 * np.log10(max(target @ target, 1e-20) / max(noise @ noise, 1e-20)))


def report_song(path: "str | os.PathLike | None" = None) -> tuple[np.ndarray, int, str]:
    """The song the report separates: ``(mono audio (frames,), rate, description)``.

    ``path``: any audio file (its channels averaged); ``None``: the bundled demo song's
    mixture (``tf_metatasnet.assets.demo_song_dir``).
    """
    if path is None:
        _, mixture, rate = read_stem_folder(demo_song_dir())
        return mixture.mean(axis=1), rate, "the bundled demo song's mixture"
    audio, rate = read_audio(path)                     # (frames, channels)
    if len(audio) == 0:
        raise ValueError(f"{path}: no audio to measure with")
    return audio.mean(axis=1), rate, os.fspath(path)


def _keras_reference(model, index: int):
    """The Keras model's estimate of one instrument, as a ``segment_fn`` (no XLA)."""
    backend = KerasBackend(model, jit_compile=False)
    return lambda inputs: backend.separate_chunk(inputs)[:, index:index + 1]


def _latency(path: str, threads: int, window: list, runs: int) -> float:
    backend = TFLiteBackend(path, num_threads=threads)
    backend.run_window(window)  # warm-up (allocations, XNNPACK packing)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.run_window(window)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(model, paths: Sequence[str], song: "tuple[np.ndarray, int] | None" = None,
            song_seconds: "float | None" = None, runs: int = 3,
            threads: Sequence[int] = (1, 2)) -> list[dict]:
    """One report entry per ``.tflite`` file (see the module docstring).

    Args:
        model: the Keras model the files were exported from (the float reference).
        paths: ``.tflite`` files with their metadata beside them.
        song: ``(mono audio (frames,), rate)`` to separate (default: :func:`report_song`'s).
        song_seconds: the length separated, the song repeated as needed (default: two
            windows and a half).
        runs: timed runs per latency (the median is reported).
        threads: interpreter thread counts to time.
    """
    audio, rate = song if song is not None else report_song()[:2]
    audio = np.asarray(audio, np.float32)
    entries, references, songs = [], {}, {}
    float_sizes = {}
    for path in paths:
        meta = read_metadata(path)
        if meta["quantization"] == "float32":
            float_sizes[meta["instrument"]] = os.path.getsize(path)
    for path in paths:
        backend = TFLiteBackend(path)   # one interpreter at a time: a window's tensors are large
        meta = backend.metadata
        base, instrument = meta["base_rate"], meta["instrument"]
        chunking = dict(chunk=meta["chunk"], context=meta["context"], overlap=meta["overlap"],
                        factors=[r // base for r in backend.rates], out_factor=backend.rates[-1] // base,
                        align=meta["align"])
        key = (meta["window"], meta["chunk"], meta["context"], meta["overlap"])
        if key not in songs:
            seconds = song_seconds or 2.5 * meta["window"] / base
            looped = np.resize(audio, int(round(seconds * rate)))            # repeated to length
            signals = stage_signals(looped, rate, backend.rates)
            songs[key] = [s[None] for s in signals]                 # per rate (1, samples)
        signals = songs[key]
        if (key, instrument) not in references:
            references[(key, instrument)] = apply_to_arrays(
                _keras_reference(model, model.sources.index(instrument)), signals, **chunking)
        output = apply_to_arrays(backend, signals, **chunking)      # (1, 1, samples)
        window = [s[:, :meta["window"] * f] for s, f in zip(signals, chunking["factors"])]
        hop_seconds = (meta["chunk"] - meta["overlap"]) / base
        latency = {str(n): _latency(path, n, window, runs) for n in threads}
        with open(path, "rb") as file:
            ops = op_report(file.read())
        size = os.path.getsize(path)
        entries.append({
            "file": os.path.basename(path), "instrument": instrument,
            "quantization": meta["quantization"], "size_bytes": size,
            "size_vs_float32": size / float_sizes[instrument] if instrument in float_sizes else None,
            "builtin_only": ops["builtin_only"], "select_tf_ops": ops["select_tf_ops"],
            "si_sdr_db": si_sdr(output, references[(key, instrument)]),
            "window_seconds": meta["window"] / base, "hop_seconds": hop_seconds,
            "latency_s": latency,
            "real_time_factor": {n: value / hop_seconds for n, value in latency.items()},
        })
    return entries


def write_report(entries: list, path: "str | os.PathLike", **details) -> None:
    """Writes ``{"artifacts": entries, **details}`` as JSON, atomically."""
    write_json_atomically(path, {"artifacts": entries, **details})


def format_table(entries: list) -> str:
    """The report as a Markdown table."""
    threads = sorted({n for entry in entries for n in entry["latency_s"]}, key=int)
    header = ["file", "MiB", "vs float32", "builtin ops only", "SI-SDR vs Keras (dB)",
              *[f"s / window ({n} thr)" for n in threads], *[f"RTF ({n} thr)" for n in threads]]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in entries:
        ratio = "" if e["size_vs_float32"] is None else f"{100 * e['size_vs_float32']:.0f} %"
        rows.append("| " + " | ".join([
            e["file"], f"{e['size_bytes'] / 2**20:.2f}", ratio,
            "yes" if e["builtin_only"] else "NO: " + ", ".join(e["select_tf_ops"]),
            f"{e['si_sdr_db']:.1f}",
            *[f"{e['latency_s'][n]:.3f}" for n in threads],
            *[f"{e['real_time_factor'][n]:.3f}" for n in threads]]) + " |")
    return "\n".join(rows)
