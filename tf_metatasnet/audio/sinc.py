"""A band-limited resampler in plain NumPy: the reference that the Android core mirrors.

The separator resamples with soxr, which has no Java port. The Android demo
(``android_demo/core``, class ``SincResampler``) therefore uses this algorithm, written
twice: here in NumPy and there in Java, step for step, so that the shared test vectors
(``android_demo/tools/make_test_vectors.py``) can check the Java code sample for sample.
Its quality is tested against soxr (``tests/audio/test_sinc.py``).

Algorithm: Kaiser-windowed sinc interpolation with exact rational ratios (polyphase).
With ``g = gcd(rate_in, rate_out)``, ``up = rate_out / g`` and ``down = rate_in / g``,
output sample ``n`` lies at input time ``t = n * down / up`` (in input samples), so
``t = i + p / up`` with ``i = (n * down) // up`` and phase ``p = (n * down) % up``.
The output is

    y[n] = sum_j h(p / up - j) * x[i + j]          for j = -K .. K + 1

with the low-pass kernel ``h(tau) = cutoff * sinc(cutoff * tau) * kaiser(tau / half)``
(``sinc(x) = sin(pi x) / (pi x)``). ``cutoff`` is ``ROLLOFF * min(1, rate_out / rate_in)``
of the input's Nyquist frequency, ``half = ZEROS / cutoff`` input samples is the kernel's
half length (``ZEROS`` zero crossings on each side) and ``K = ceil(half)``. Samples outside
the signal are zeros. The kernel is linear phase and centred, so there is no delay; the
output has ``ceil(len(x) * up / down)`` samples. Kernel values are computed in float64,
products are summed in float64 in order of ``j``, and the result is rounded to float32.
"""

from __future__ import annotations

import math

import numpy as np

#: Zero crossings of the sinc on each side of the kernel (its length in output periods
#: of the lower rate): sets the transition band's width.
ZEROS = 48
#: Kaiser window shape: about 100 dB of stop-band attenuation.
BETA = 10.0
#: Cut-off as a fraction of the lower rate's Nyquist frequency; with ``ZEROS`` and
#: ``BETA`` the stop band starts just below Nyquist, so aliasing stays under ~-90 dB.
ROLLOFF = 0.94


def ratio(rate_in: int, rate_out: int) -> tuple[int, int]:
    """``(up, down)``: the ratio ``rate_out / rate_in`` in lowest terms."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
    g = math.gcd(int(rate_in), int(rate_out))
    return int(rate_out) // g, int(rate_in) // g


def output_length(frames: int, rate_in: int, rate_out: int) -> int:
    """Number of output samples for ``frames`` input samples: ``ceil(frames * up / down)``."""
    up, down = ratio(rate_in, rate_out)
    return -(-frames * up // down)


def kernel_table(rate_in: int, rate_out: int) -> tuple[np.ndarray, int]:
    """The polyphase filter: ``(table, K)`` with ``table[p, j + K] = h(p / up - j)``.

    ``table`` is ``(up, 2 * K + 2)`` float64, one row per phase.
    """
    up, down = ratio(rate_in, rate_out)
    cutoff = ROLLOFF * min(1.0, up / down)
    half = ZEROS / cutoff                                   # kernel half length, input samples
    taps = int(math.ceil(half))
    offsets = np.arange(-taps, taps + 2, dtype=np.float64)   # j = -K .. K + 1
    tau = np.arange(up, dtype=np.float64)[:, None] / up - offsets[None, :]   # (up, 2K + 2)
    u = tau / half
    inside = np.abs(u) < 1.0
    window = np.where(inside, np.i0(BETA * np.sqrt(np.maximum(1.0 - u * u, 0.0))) / np.i0(BETA),
                      0.0)
    return cutoff * np.sinc(cutoff * tau) * window, taps


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resamples ``(frames,)`` or ``(frames, channels)`` audio; returns float32.

    The output has ``output_length(frames, rate_in, rate_out)`` frames.
    """
    audio = np.asarray(audio, np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be (frames,) or (frames, channels), got {audio.shape}")
    if rate_in == rate_out:
        return audio.copy()
    up, down = ratio(rate_in, rate_out)
    table, taps = kernel_table(rate_in, rate_out)
    frames = audio.shape[0]
    count = output_length(frames, rate_in, rate_out)
    x = audio.reshape(frames, -1).astype(np.float64)                  # (frames, C)
    padded = np.concatenate([np.zeros((taps, x.shape[1])), x, np.zeros((taps + 2, x.shape[1]))])
    out = np.empty((count, x.shape[1]), np.float32)
    block = 4096
    width = table.shape[1]
    for first in range(0, count, block):
        n = np.arange(first, min(first + block, count), dtype=np.int64)
        base = (n * down) // up                       # i: input sample at or before t
        phase = (n * down) % up                       # p
        index = base[:, None] + np.arange(width)[None, :]          # padded index of x[i + j]
        gathered = padded[index]                                    # (n, 2K + 2, C)
        out[first:first + len(n)] = np.einsum("nj,njc->nc", table[phase], gathered)
    return out.reshape((count,) + audio.shape[1:])
