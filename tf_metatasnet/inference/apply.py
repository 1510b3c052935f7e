"""Chunked inference: the one place that cuts a long signal into model-sized windows.

Everything that runs a model over a whole song uses :func:`apply_chunked`: the
:class:`~tf_metatasnet.inference.separator.Separator` (and with it ``separate`` and ``evaluate``), the
TF Serving client and the TFLite runner; the Android core mirrors it. The model itself maps
one segment to stems and knows nothing of this.

Positions are counted in *base samples*: samples at the first stage's rate (8 kHz for the
paper model); stage ``i`` sees ``factors[i]`` samples per base sample and the output has
``out_factor``. Each model call sees a fixed-size *window* of ``chunk + 2 * context`` base
samples and keeps a *region* of it: in the middle of the song ``chunk`` samples with
``context`` on both sides, as the authors' evaluation does. Windows lie inside the song
rather than being padded at its ends, so the model's normalisation statistics never see
padding; the first and the last window, which need no context towards the song's ends,
keep that side too (up to ``chunk + context``), and the regions are centred so both ends
share the slack. So a song of ``length`` samples takes the fewest windows that keep
``context`` at every inner border: ``ceil((length - window) / (chunk - overlap)) + 1``
(three 28-s windows for a 60-s song with the defaults). Where two regions overlap (by
``overlap``), complementary linear fades (summing to exactly one) join them, so chunk
borders are inaudible; with ``overlap=0`` regions are simply concatenated, as in the
original.

A song no longer than one window is separated in one piece: chunking changes nothing then.
Memory is bounded by the window and ``batch_size``, never by the song's length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

#: Whole-song defaults (the ``Separator``'s and ``metatasnet separate``'s): regions of 20 s
#: kept from each model call, with 4 s of context on each side (the authors' evaluation
#: uses 8), joined by a crossfade of :func:`default_overlap`.
CHUNK_SECONDS, CONTEXT_SECONDS = 20.0, 4.0


def default_overlap(chunk_seconds: float) -> float:
    """The crossfade between regions when none is given: 1 s, or a quarter of the chunk."""
    return min(1.0, chunk_seconds / 4)


@dataclass(frozen=True)
class Window:
    """One model call's piece of the song, in base samples."""

    start: int        # first sample of the window given to the model
    size: int         # window length
    keep_start: int   # first sample of the kept region (absolute)
    keep_stop: int    # end of the kept region (absolute, exclusive)
    fade_in: bool     # the kept region starts with a fade (it overlaps the previous one)
    fade_out: bool    # the kept region ends with a fade (it overlaps the next one)


def window_alignment(base_rate: int, stride: int) -> int:
    """Where windows may start, in base samples: on a common frame of the encoder (its
    ``stride``) and of the spectrogram branch (STFT hop ``256 * base_rate / 8000``), so that
    a window sees the same frames as the whole song would."""
    return math.lcm(stride, 256 * max(1, base_rate // 8000))


def _round_up(value: int, align: int) -> int:
    return int(math.ceil(value / align) * align)


def plan_windows(length: int, chunk: int, context: int, overlap: int = 0,
                 align: int = 1) -> list[Window]:
    """The windows that cover ``[0, length)`` base samples; see the module docstring.

    ``chunk``, ``context`` and ``overlap`` are rounded up to multiples of ``align`` (the
    model's stride), so every window starts on a model frame. Inner regions are exactly
    ``chunk`` long and begin one every ``chunk - overlap``; the first and last regions take
    what is left, centred, each at most ``chunk + context``.
    """
    if length <= 0 or length % align:
        raise ValueError(f"length must be a positive multiple of {align}, got {length}")
    chunk, context, overlap = (_round_up(v, align) for v in (chunk, context, overlap))
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    if not 0 <= 2 * overlap <= chunk:
        raise ValueError(f"overlap ({overlap}) must be at most half the chunk ({chunk}): "
                         "a region's two crossfades must not overlap")
    size = chunk + 2 * context
    if length <= size:
        return [Window(0, length, 0, length, False, False)]
    hop = chunk - overlap
    count = math.ceil((length - size) / hop) + 1
    # The inner borders (each the start of a crossfade of ``overlap``) one every ``hop``,
    # with the slack split between the first and the last region.
    first = (length - overlap - (count - 2) * hop) // (2 * align) * align
    borders = [first + k * hop for k in range(count - 1)]
    windows = []
    for k in range(count):
        keep_start = borders[k - 1] if k > 0 else 0
        keep_stop = borders[k] + overlap if k < count - 1 else length
        if k == 0:
            start = 0
        elif k == count - 1:
            start = length - size
        else:
            start = keep_start - context
        windows.append(Window(start, size, keep_start, keep_stop, k > 0 and overlap > 0,
                              k < count - 1 and overlap > 0))
    return windows


def fade_weights(size: int, overlap: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """Weights of a kept region of ``size`` samples: linear fades over ``overlap`` samples
    at the ends that overlap a neighbour; the fades of two neighbours sum to exactly one."""
    weights = np.ones(size, np.float32)
    if overlap:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if fade_in:
            weights[:overlap] *= ramp
        if fade_out:
            weights[-overlap:] *= ramp[::-1]
    return weights


def apply_chunked(segment_fn: Callable[[list], np.ndarray],
                  read: Callable[[int, int], list],
                  length: int, *, chunk: int, context: int, overlap: int = 0,
                  factors: Sequence[int] = (1, 2, 4), out_factor: int = 4, align: int = 1,
                  batch_size: int = 1,
                  progress: "Callable[[int, int], None] | None" = None) -> Iterator[np.ndarray]:
    """Runs ``segment_fn`` over a long signal window by window; yields the output in order.

    Args:
        segment_fn: maps one batch of windows, a list with one ``(n, size * factors[i])``
            float32 array per model input, to ``(n, sources, size * out_factor)``.
        read: ``read(start, stop)`` returns the signal between two base positions: a list
            with one ``(channels, (stop - start) * factors[i])`` array per model input. Each
            channel is separated on its own (it becomes one batch item).
        length: the signal's length in base samples, a multiple of ``align``.
        chunk, context, overlap: kept region, context on each side, and crossfade length,
            in base samples (see :func:`plan_windows`).
        factors, out_factor: samples per base sample of each input and of the output.
        align: the model's stride in base samples.
        batch_size: windows per ``segment_fn`` call (times the number of channels).
        progress: called as ``progress(done, length)`` in base samples after each batch.

    Yields:
        Consecutive blocks ``(channels, sources, samples)`` at the output resolution, which
        together cover ``length * out_factor`` samples.
    """
    windows = plan_windows(length, chunk, context, overlap, align)
    overlap_out = _round_up(overlap, align) * out_factor if len(windows) > 1 else 0
    pending = None   # (channels, sources, overlap_out): the faded tail awaiting the next region
    for first in range(0, len(windows), batch_size):
        batch = windows[first:first + batch_size]
        pieces = [read(w.start, w.start + w.size) for w in batch]  # per window: per input (C, n_i)
        channels = pieces[0][0].shape[0]
        inputs = [np.concatenate([piece[i] for piece in pieces]).astype(np.float32, copy=False)
                  for i in range(len(factors))]                     # per input: (windows * C, n_i)
        estimates = np.asarray(segment_fn(inputs), np.float32)      # (windows * C, S, size * out)
        estimates = estimates.reshape(len(batch), channels, *estimates.shape[1:])  # (W, C, S, n)
        for window, estimate in zip(batch, estimates):
            offset = (window.keep_start - window.start) * out_factor
            kept = estimate[..., offset:offset + (window.keep_stop - window.keep_start) * out_factor]
            kept = kept * fade_weights(kept.shape[-1], overlap_out, window.fade_in,
                                       window.fade_out)                   # (C, S, kept)
            if pending is not None:
                kept[..., :overlap_out] += pending
                pending = None
            if window.fade_out:
                pending = kept[..., -overlap_out:].copy()
                kept = kept[..., :-overlap_out]
            yield kept
        if progress is not None:
            progress(batch[-1].keep_stop, length)


def apply_to_arrays(segment_fn: Callable[[list], np.ndarray], signals: Sequence[np.ndarray], *,
                    chunk: int, context: int, overlap: int = 0, factors: Sequence[int] = (1, 2, 4),
                    out_factor: int = 4, align: int = 1, batch_size: int = 1) -> np.ndarray:
    """:func:`apply_chunked` over in-memory signals ``(channels, length * factors[i])``.

    The signals are zero-padded to a multiple of ``align`` base samples; returns
    ``(channels, sources, length * out_factor)`` for that padded length.
    """
    length = _round_up(max(s.shape[-1] / f for s, f in zip(signals, factors)), align)
    padded = [np.pad(s, [(0, 0), (0, length * f - s.shape[-1])]) for s, f in zip(signals, factors)]

    def read(start, stop):
        return [p[:, start * f:stop * f] for p, f in zip(padded, factors)]

    blocks = apply_chunked(segment_fn, read, length, chunk=chunk, context=context,
                           overlap=overlap, factors=factors, out_factor=out_factor, align=align,
                           batch_size=batch_size)
    return np.concatenate(list(blocks), axis=-1)
