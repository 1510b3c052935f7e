"""Sources of a song for the separator: a file (``tf_metatasnet.audio.AudioReader``), an
array in memory, or either mixed down to mono; all with the same streaming interface
(``rate``, ``channels``, ``frames``, ``blocks()``, ``seek()``, ``read()``, ``close()``)."""

from __future__ import annotations

import numpy as np

#: Frames per read / write block of a song.
BLOCK = 1 << 16


class ArrayReader:
    """An in-memory signal with :class:`~tf_metatasnet.audio.io.AudioReader`'s interface."""

    def __init__(self, audio: np.ndarray, rate: int, name: str = "<array>"):
        audio = np.asarray(audio, np.float32)
        if audio.ndim == 1:
            audio = audio[:, None]  # (frames, 1)
        if audio.ndim != 2:
            raise ValueError(f"{name}: audio must be (frames,) or (frames, channels), "
                                  f"got shape {audio.shape}")
        self.path, self.audio, self.rate = name, audio, int(rate)
        self.frames, self.channels = audio.shape
        self._position = 0

    def blocks(self, blocksize: int = BLOCK):
        for start in range(0, self.frames, blocksize):
            yield self.audio[start:start + blocksize]

    def seek(self, frame: int) -> None:
        self._position = frame

    def read(self, frames: int) -> np.ndarray:
        block = self.audio[self._position:self._position + frames]
        self._position += len(block)
        return block

    def close(self) -> None:
        pass


class DownmixReader:
    """Averages all channels of a reader to one (the documented ``downmix`` option)."""

    def __init__(self, reader):
        self._reader, self.path, self.rate = reader, reader.path, reader.rate
        self.frames, self.channels = reader.frames, 1

    def blocks(self, blocksize: int = BLOCK):
        for block in self._reader.blocks(blocksize):
            yield block.mean(axis=1, keepdims=True)  # (frames, 1)

    def seek(self, frame: int) -> None:
        self._reader.seek(frame)

    def read(self, frames: int) -> np.ndarray:
        return self._reader.read(frames).mean(axis=1, keepdims=True)

    def close(self) -> None:
        self._reader.close()


def with_last(iterable):
    """Yields ``(is_last, item)`` pairs."""
    iterator = iter(iterable)
    try:
        item = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield False, item
        item = following
    yield True, item
