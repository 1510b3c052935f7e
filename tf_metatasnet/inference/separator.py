"""Whole-song separation, as the authors' evaluation does it, streaming from file to file.

:class:`Separator` wraps a model (which maps one segment to stems; in this process, on a
TF Serving server or as a TFLite model: a backend, ``tf_metatasnet.inference.backends``)
with everything a song needs: each channel separated on its own, very-high-quality resampling to the stages'
rates, normalisation by each stage signal's standard deviation, chunks with context
(:func:`tf_metatasnet.inference.apply.apply_chunked`), resampling back to the input's rate and
length, and the per-channel least-squares rescaling of the four estimates to the mixture
(``lstsq([drums bass other vocals], mixture)``), which restores the scale lost by the
normalisation.

It runs in three passes so that memory is bounded by the chunk size, not by the song:

1. read the input once, check it, resample it to the stage rates into temporary files and
   take each stage signal's standard deviation;
2. separate window by window, resample the estimates back to the input rate into a
   temporary file, and accumulate the least-squares normal equations against the mixture;
3. solve them per channel and write the rescaled stems, each to a temporary file that is
   renamed into place only when the whole song succeeded.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from tf_metatasnet.audio import AudioError, AudioReader, AudioWriter, StreamResampler
from tf_metatasnet.checkpoints.pretrained import from_preset
from tf_metatasnet.errors import write_failure
from tf_metatasnet.inference.apply import (
    CHUNK_SECONDS,
    CONTEXT_SECONDS,
    apply_chunked,
    default_overlap,
    window_alignment,
)
from tf_metatasnet.inference.backends.base import Backend
from tf_metatasnet.inference.backends.factory import make_backend
from tf_metatasnet.inference.backends.keras import KerasBackend
from tf_metatasnet.inference.backends.tflite import TFLiteBackend
from tf_metatasnet.inference.outputs import OutputError, check_writable, plan_outputs, remove_empty
from tf_metatasnet.inference.readers import BLOCK, ArrayReader, DownmixReader, with_last


class SeparationError(ValueError):
    """A song could not be separated; the message names the file and the problem."""


@dataclass
class _Analysis:
    """What pass 1 learnt about the input."""

    frames: int
    rate: int
    channels: int
    length: int          # padded length in base samples
    stds: np.ndarray     # (stages, channels) standard deviation of each stage signal


class Separator:
    """Separates whole songs with a Meta-TasNet model or another backend.

    Args:
        model: a ``MetaTasNet`` (e.g. from ``tf_metatasnet.load_model``; run by a
            :class:`~tf_metatasnet.inference.backends.keras.KerasBackend`), or any
            :class:`~tf_metatasnet.inference.backends.base.Backend`, e.g. a TF Serving client
            or a TFLite model (see :func:`make_separator`).
        chunk_seconds: length of the region each model call keeps (default 20 s).
        context_seconds: extra audio given to the model on each side of it (default 4 s;
            the authors' evaluation uses 8 s). Larger chunks and context bring the result
            closer to separating the song in one piece, at the cost of memory. A backend
            with a fixed ``window`` needs ``chunk + 2 * context`` equal to it.
        overlap_seconds: crossfade between neighbouring regions (default: 1 s or a quarter
            of the chunk, whichever is shorter; 0 reproduces the original's concatenation).
        batch_size: windows per model call (each times the number of channels).
        jit_compile: compile the model with XLA (a ``MetaTasNet`` only).
        device: a TensorFlow device such as ``"/CPU:0"`` or ``"/GPU:0"`` (a ``MetaTasNet``
            only; default: TF's choice).
        downmix: average inputs of more than two channels to mono (their stems are then
            mono); without it such inputs are an error. The model is mono: mono and stereo
            inputs keep their channels, each separated on its own.
    """

    def __init__(self, model, chunk_seconds: float = CHUNK_SECONDS, context_seconds: float = CONTEXT_SECONDS,
                 overlap_seconds: "float | None" = None, batch_size: int = 1, jit_compile: bool = True,
                 device: "str | None" = None, downmix: bool = False):
        if overlap_seconds is None:
            overlap_seconds = default_overlap(chunk_seconds)
        if chunk_seconds <= 0 or context_seconds < 0 or not 0 <= 2 * overlap_seconds <= chunk_seconds:
            raise ValueError("need chunk_seconds > 0, context_seconds >= 0 and "
                             "0 <= overlap_seconds <= chunk_seconds / 2")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.backend = (model if isinstance(model, Backend)
                        else KerasBackend(model, jit_compile, device)).check()
        self.model = getattr(self.backend, "model", None)
        self.chunk_seconds = chunk_seconds
        self.context_seconds = context_seconds
        self.overlap_seconds = overlap_seconds
        self.batch_size = batch_size
        self.downmix = downmix
        self.rates = list(self.backend.rates)
        self.base_rate = self.rates[0]
        self.factors = [rate // self.base_rate for rate in self.rates]
        self.align = window_alignment(self.base_rate, self.backend.stride)
        # A fixed-window backend pads a short song to one window (the TFLite contract).
        self.min_frames = self.backend.stride if self.backend.window is None else 1
        self.chunk, self.context, self.overlap = (
            int(round(seconds * self.base_rate))
            for seconds in (chunk_seconds, context_seconds, overlap_seconds))
        window = self.backend.window
        if window is not None and self.chunk + 2 * self.context != window:
            raise ValueError(f"the backend takes windows of {window} samples at {self.base_rate} Hz; "
                             f"chunk + 2 * context is {self.chunk + 2 * self.context}")

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.backend.sources)

    # ------------------------------------------------------------------ public API
    def separate(self, audio: np.ndarray, rate: int,
                 progress: "Callable[[float, float], None] | None" = None) -> dict[str, np.ndarray]:
        """Separates in-memory audio ``(frames, channels)`` (or ``(frames,)``) at ``rate`` Hz.

        Returns ``{source: (frames, channels) float32}`` at the input's rate and length.
        """
        try:
            reader = self._check_channels(ArrayReader(audio, rate))
        except ValueError as error:
            raise SeparationError(str(error)) from None
        with tempfile.TemporaryDirectory(prefix="metatasnet-") as work:
            estimates, coefficients = self._run(reader, work, progress)
            scaled = np.fromfile(estimates, np.float32).reshape(reader.frames, reader.channels,
                                                                 len(self.sources))
            scaled = scaled * coefficients  # (frames, channels, sources)
            return {name: np.ascontiguousarray(scaled[..., k]) for k, name in enumerate(self.sources)}

    def separate_file(self, path: "str | os.PathLike", output_dir: "str | os.PathLike",
                      stems: "Sequence[str] | None" = None, fmt: str = "wav",
                      filename: str = "{track}/{stem}.{ext}", two_stems: "str | None" = None,
                      bitrate: int = 320,
                      progress: "Callable[[float, float], None] | None" = None) -> list[str]:
        """Separates one audio file and writes one file per stem; returns their paths.

        Args:
            path: any file soundfile or ffmpeg can decode, at any rate, mono or stereo.
            output_dir: where the stems go (created if needed).
            stems: the sources to write (default: all four).
            fmt: ``wav`` (32-bit float), ``flac`` (24-bit) or ``mp3``.
            filename: naming template with ``{track}`` (the input's name without
                extension), ``{stem}`` and ``{ext}``; every path must stay inside
                ``output_dir`` and not be ``path`` (``outputs.plan_outputs``).
            two_stems: write this source and the sum of the others (``no_<source>``).
            bitrate: mp3 bitrate in kbit/s.
            progress: called as ``progress(seconds_done, seconds_total)``.

        Nothing is written unless the whole song succeeded.

        Raises:
            SeparationError: one line naming the file and the problem.
        """
        path = os.fspath(path)
        names = self.output_names(stems, two_stems)
        try:
            targets = plan_outputs([path], os.fspath(output_dir), names, filename, fmt)[path]
            created = check_writable(targets.values())
        except OutputError as error:
            raise SeparationError(str(error)) from None
        reader, writers = None, []
        try:
            reader = self._check_channels(AudioReader(path))
            with tempfile.TemporaryDirectory(prefix="metatasnet-") as work:
                estimates, coefficients = self._run(reader, work, progress)
                for target in targets.values():
                    writers.append(AudioWriter(target, reader.rate, reader.channels, fmt, bitrate))
                self._write_stems(estimates, coefficients, reader, names, writers, two_stems)
                for writer in writers:
                    writer.commit()
                writers = []
        except BaseException as error:
            for writer in writers:             # no partial stem is left, whatever stopped it
                writer.abort()
            remove_empty(created)
            if isinstance(error, SeparationError):
                raise
            if isinstance(error, AudioError):
                raise SeparationError(str(error)) from None
            if isinstance(error, OSError):     # a full disk, a folder gone read-only...
                where = error.filename or tempfile.gettempdir()
                raise SeparationError(f"{path}: cannot be separated: {write_failure(error, where)} "
                                      f"({where})") from None
            raise
        finally:
            if reader is not None:
                reader.close()
        return list(targets.values())

    # ------------------------------------------------------------------ internals
    def output_names(self, stems: "Sequence[str] | None" = None, two_stems: "str | None" = None) -> list[str]:
        """The names of the files ``separate_file`` writes: ``stems`` (default: every source), or
        ``two_stems`` and ``no_<two_stems>``."""
        if two_stems is not None:
            if len(self.sources) < 2:
                raise ValueError(f"--two-stems needs a model of several stems; this one gives only "
                                 f"{', '.join(self.sources)}")
            if two_stems not in self.sources:
                raise ValueError(f"--two-stems must be one of {', '.join(self.sources)}, got {two_stems!r}")
            return [two_stems, f"no_{two_stems}"]
        stems = list(stems) if stems else list(self.sources)
        unknown = [s for s in stems if s not in self.sources]
        if unknown:
            raise ValueError(f"unknown stem(s) {', '.join(unknown)} (choose from {', '.join(self.sources)})")
        return stems

    def _check_channels(self, reader):
        if reader.channels > 2:
            if not self.downmix:
                reader.close()
                raise SeparationError(
                    f"{reader.path}: has {reader.channels} channels; only mono and stereo are "
                    "supported (the downmix option mixes more channels down to mono)")
            return DownmixReader(reader)
        return reader

    def _analyse(self, reader, work: str) -> _Analysis:
        """Pass 1: checks the input, resamples it to each stage rate into ``work``."""
        if reader.channels < 1:
            raise SeparationError(f"{reader.path}: has no audio channels")
        resamplers = [StreamResampler(reader.rate, rate, reader.channels) for rate in self.rates]
        files = [open(os.path.join(work, f"stage{i}.f32"), "wb") for i in range(len(self.rates))]
        sums = np.zeros((len(self.rates), 2, reader.channels))  # (stages, [sum, sum of squares], C)
        counts = np.zeros(len(self.rates), np.int64)
        frames, peak = 0, 0.0
        try:
            for last, block in with_last(reader.blocks(BLOCK)):
                if not np.isfinite(block).all():
                    raise SeparationError(f"{reader.path}: contains NaN or infinite samples")
                frames += len(block)
                peak = max(peak, float(np.abs(block).max(initial=0.0)))
                for i, (resampler, file) in enumerate(zip(resamplers, files)):
                    out = resampler(block, last=last)                  # (frames_i, C)
                    sums[i, 0] += out.sum(0, dtype=np.float64)
                    sums[i, 1] += np.square(out, dtype=np.float64).sum(0)
                    counts[i] += len(out)
                    out.tofile(file)
        finally:
            for file in files:
                file.close()
        if frames == 0:
            raise SeparationError(f"{reader.path}: contains no audio samples")
        minimum = int(np.ceil(self.min_frames * reader.rate / self.base_rate))
        if counts[0] < self.min_frames:
            raise SeparationError(f"{reader.path}: too short ({frames} samples); the model needs "
                                  f"at least one frame, {minimum} samples at {reader.rate} Hz")
        if peak == 0.0:
            raise SeparationError(f"{reader.path}: is silent (all samples are zero)")
        means = sums[:, 0] / counts[:, None]
        variances = np.maximum(sums[:, 1] / counts[:, None] - means ** 2, 0.0)
        # A silent channel next to a sounding one: any positive scale works (lstsq zeroes it).
        stds = np.where(variances > 0, np.sqrt(variances), 1.0)  # (stages, C)
        base = max(count / factor for count, factor in zip(counts, self.factors))
        length = int(np.ceil(base / self.align) * self.align)
        if self.backend.window is not None:  # a fixed-size model: a short song is one padded window
            length = max(length, self.backend.window)
        return _Analysis(frames, reader.rate, reader.channels, length, stds)

    def _run(self, reader, work: str, progress) -> tuple[str, np.ndarray]:
        """Passes 1 and 2: returns the unscaled estimates' file and the lstsq coefficients."""
        info = self._analyse(reader, work)
        channels, sources = info.channels, len(self.sources)
        stage_files = [open(os.path.join(work, f"stage{i}.f32"), "rb") for i in range(len(self.rates))]
        stage_lengths = [os.path.getsize(f.name) // (4 * channels) for f in stage_files]

        def read(start: int, stop: int) -> list:
            """The normalised stage signals between two base positions: per stage (C, n_i)."""
            signals = []
            for i, (file, factor) in enumerate(zip(stage_files, self.factors)):
                first, last = start * factor, stop * factor
                available = max(0, min(last, stage_lengths[i]) - first)
                file.seek(first * 4 * channels)
                data = np.fromfile(file, np.float32, available * channels).reshape(available, channels)
                window = np.zeros((last - first, channels), np.float32)
                window[:available] = data / info.stds[i]
                signals.append(window.T)                                 # (C, n_i)
            return signals

        base_rate = self.base_rate
        back = StreamResampler(self.rates[-1], info.rate, channels * sources)
        estimates_path = os.path.join(work, "estimates.f32")
        normal_matrix = np.zeros((channels, sources, sources))            # A^T A per channel
        normal_vector = np.zeros((channels, sources))                     # A^T y per channel
        written = 0
        reader.seek(0)

        def consume(block: np.ndarray, file) -> None:
            """Stores estimates at the input rate and accumulates the normal equations."""
            nonlocal written
            block = block[:info.frames - written]                         # cut to the input length
            if not len(block):
                return
            estimate = block.reshape(len(block), channels, sources)       # (frames, C, S)
            mixture = reader.read(len(block))                             # (frames, C)
            estimate64 = estimate.astype(np.float64)
            normal_matrix[...] += np.einsum("tcs,tcr->csr", estimate64, estimate64)
            normal_vector[...] += np.einsum("tcs,tc->cs", estimate64, mixture.astype(np.float64))
            estimate.tofile(file)
            written += len(block)

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(min(done, total) / base_rate, total / base_rate)

        try:
            with open(estimates_path, "wb") as file:
                for block in apply_chunked(self.backend, read, info.length, chunk=self.chunk,
                                           context=self.context, overlap=self.overlap,
                                           factors=self.factors,
                                           out_factor=self.factors[-1], align=self.align,
                                           batch_size=self.batch_size, progress=report):
                    # (C, S, n) at the last stage's rate -> (n, C * S) for the resampler
                    flat = np.ascontiguousarray(block.transpose(2, 0, 1)).reshape(-1, channels * sources)
                    consume(back(flat), file)
                consume(back.flush(), file)
                if written < info.frames:  # resampling rounding: pad the last samples
                    consume(np.zeros((info.frames - written, channels * sources), np.float32), file)
        finally:
            for file in stage_files:
                file.close()
        if self.backend.rescale == "std":  # undo the normalisation of the last stage's input
            return estimates_path, np.repeat(info.stds[-1][:, None], sources, 1).astype(np.float32)
        coefficients = np.stack([np.linalg.lstsq(normal_matrix[c], normal_vector[c], rcond=None)[0]
                                 for c in range(channels)]).astype(np.float32)  # (C, S)
        return estimates_path, coefficients

    def _write_stems(self, estimates_path, coefficients, reader, names, writers, two_stems):
        """Pass 3: rescales the estimates block by block into the stem writers."""
        channels, sources = reader.channels, len(self.sources)
        index = {name: k for k, name in enumerate(self.sources)}
        with open(estimates_path, "rb") as file:
            while True:
                block = np.fromfile(file, np.float32, BLOCK * channels * sources)
                if not len(block):
                    break
                block = block.reshape(-1, channels, sources) * coefficients  # (frames, C, S)
                for name, writer in zip(names, writers):
                    if two_stems is not None and name != two_stems:
                        others = [index[s] for s in self.sources if s != two_stems]
                        writer.write(block[..., others].sum(-1))
                    else:
                        writer.write(block[..., index[name]])


def make_separator(backend: str = "keras", model=None, **options) -> Separator:
    """A :class:`Separator` whose model runs on the backend called ``backend``.

    Args:
        backend: ``keras``, ``serving`` or ``tflite`` (``tf_metatasnet.inference.backends``).
        model: for ``keras`` a ``MetaTasNet`` (default: the bundled default model); for
            ``serving`` the server's URL; for ``tflite`` the ``.tflite`` file, whose
            metadata also fixes the chunking.
        **options: the ``Separator``'s (``chunk_seconds``, ``batch_size``, ``downmix``...);
            ``jit_compile`` and ``device`` go to a Keras backend, ``num_threads`` to a
            TFLite one.

    Raises:
        ValueError: an unknown backend, a missing ``model``, or chunking options for a
            TFLite model (its windows are fixed).
    """
    backend_options = {key: options.pop(key) for key in ("jit_compile", "device", "num_threads", "sources")
                       if key in options}
    if backend == "keras":
        if model is None:
            model = from_preset("default")
        return Separator(make_backend("keras", model, **backend_options), **options)
    if model is None:
        raise ValueError(f"the {backend} backend needs a model: "
                         + ("the server's URL" if backend == "serving" else "a .tflite file"))
    runner = make_backend(backend, model, **backend_options)
    if isinstance(runner, TFLiteBackend):
        fixed = [key for key in ("chunk_seconds", "context_seconds", "overlap_seconds")
                 if options.get(key) is not None]
        if fixed:
            raise ValueError(f"{runner}: a TFLite model's windows are fixed by its metadata; "
                             f"{', '.join(fixed)} cannot be changed")
        options = {**options, **runner.chunking_seconds()}
    return Separator(runner, **options)


def serving_separator(url: str, sources: "Sequence[str] | None" = None, **options) -> Separator:
    """``make_separator("serving", url, ...)`` (the name of earlier versions)."""
    return make_separator("serving", url, sources=sources, **options)


def load_tflite_separator(path: "str | os.PathLike", num_threads: int = 1, downmix: bool = False) -> Separator:
    """``make_separator("tflite", path, ...)`` (the name of earlier versions)."""
    return make_separator("tflite", path, num_threads=num_threads, downmix=downmix)


