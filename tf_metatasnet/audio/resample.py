"""Sample-rate conversion with soxr's very-high-quality sinc resampler, whole or streaming.

The stream form lets a song pass through block by block, so it never has to be in memory
at once. (``tf_metatasnet.audio.sinc`` is the windowed-sinc resampler that the Android
core mirrors.)
"""

from __future__ import annotations

import numpy as np
import soxr

#: soxr quality used everywhere (very high quality sinc).
RESAMPLE_QUALITY = "VHQ"


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resamples ``(frames,)`` or ``(frames, channels)`` float audio with soxr (VHQ)."""
    audio = np.asarray(audio, np.float32)
    if rate_in == rate_out:
        return audio.copy()
    return soxr.resample(audio, rate_in, rate_out, quality=RESAMPLE_QUALITY)


class StreamResampler:
    """soxr's streaming resampler for ``(frames, channels)`` blocks.

    Feeding a signal block by block and ending with ``flush()`` gives the same samples as
    :func:`resample` on the whole signal, with memory bounded by the block size.
    """

    def __init__(self, rate_in: int, rate_out: int, channels: int):
        self.rate_in, self.rate_out, self.channels = int(rate_in), int(rate_out), int(channels)
        self._stream = None
        if self.rate_in != self.rate_out:
            self._stream = soxr.ResampleStream(self.rate_in, self.rate_out, self.channels,
                                               dtype="float32", quality=RESAMPLE_QUALITY)

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, np.float32).reshape(-1, self.channels)
        if self._stream is None:
            return block.copy()
        return self._stream.resample_chunk(block, last=last).reshape(-1, self.channels)

    def flush(self) -> np.ndarray:
        return self(np.zeros((0, self.channels), np.float32), last=True)
