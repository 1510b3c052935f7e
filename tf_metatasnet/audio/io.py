"""Audio files in and out.

Reading goes through ``soundfile`` (libsndfile: wav, flac, ogg, aiff, mp3) and falls back to
``ffmpeg`` (a system package) for everything else (m4a/aac, opus, ...), which decodes to a
temporary float WAV that is then streamed like any other file, so that a song never has to
be in memory at once. (``tensorflow-io`` is not used: its last release cannot load its ops
with TensorFlow >= 2.18.)

Every error is an :class:`AudioError` whose message names the file and the problem in one line.
Writers put their output under a temporary name and rename it into place on ``commit()``,
so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Iterator

import numpy as np
import soundfile

from tf_metatasnet.atomic import PendingFile
from tf_metatasnet.programs import find_program

#: Output formats and their soundfile subtype (mp3 is encoded by ffmpeg).
FORMATS = {"wav": "FLOAT", "flac": "PCM_24", "mp3": None}


class AudioError(ValueError):
    """A file could not be read or written; the message says which and why."""


def _ffmpeg() -> str:
    try:
        return find_program("ffmpeg", "this format")
    except FileNotFoundError as error:
        raise AudioError(str(error)) from None


class AudioReader:
    """Streams an audio file as float32 blocks ``(frames, channels)``.

    Use as a context manager. ``rate``, ``channels`` and ``frames`` describe the file.
    Files libsndfile cannot open are decoded by ffmpeg to a temporary WAV first.
    """

    def __init__(self, path: "str | os.PathLike"):
        self.path = os.fspath(path)
        self._tmpdir = None
        if not os.path.exists(self.path):
            raise AudioError(f"{self.path}: no such file")
        if os.path.isdir(self.path):
            raise AudioError(f"{self.path}: is a directory, not an audio file")
        try:
            self._file = soundfile.SoundFile(self.path)
        except (soundfile.LibsndfileError, RuntimeError, TypeError):
            self._file = self._decode_with_ffmpeg()
        self.rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames)

    def _decode_with_ffmpeg(self):
        self._tmpdir = tempfile.mkdtemp(prefix="metatasnet-decode-")
        wav = os.path.join(self._tmpdir, "decoded.wav")
        command = [_ffmpeg(), "-nostdin", "-v", "error", "-y", "-i", self.path,
                   "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", wav]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not os.path.exists(wav):
            self.close()
            message = (result.stderr.strip().splitlines() or ["unknown format"])[-1]
            raise AudioError(f"{self.path}: not a readable audio file ({message})")
        try:
            return soundfile.SoundFile(wav)
        except (soundfile.LibsndfileError, RuntimeError) as error:
            self.close()
            raise AudioError(f"{self.path}: not a readable audio file ({error})") from None

    def blocks(self, blocksize: int = 65536) -> Iterator[np.ndarray]:
        """Yields the file from its start in float32 blocks of ``(frames, channels)``."""
        self._file.seek(0)
        while True:
            block = self._file.read(blocksize, dtype="float32", always_2d=True)
            if len(block) == 0:
                return
            yield block

    def read(self, frames: int) -> np.ndarray:
        """Reads the next ``frames`` frames (fewer at the end) as ``(frames, channels)``."""
        return self._file.read(frames, dtype="float32", always_2d=True)

    def seek(self, frame: int) -> None:
        self._file.seek(frame)

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_audio(path: "str | os.PathLike") -> tuple[np.ndarray, int]:
    """Reads a whole file: returns ``(audio (frames, channels) float32, sample rate)``."""
    with AudioReader(path) as reader:
        blocks = list(reader.blocks())
        audio = np.concatenate(blocks) if blocks else np.zeros((0, reader.channels), np.float32)
        return audio, reader.rate


class AudioWriter:
    """Writes a file block by block; it appears under its name only on :meth:`commit`.

    ``fmt`` is ``wav`` (32-bit float), ``flac`` (24-bit) or ``mp3`` (``bitrate`` kbit/s, via
    ffmpeg). Without ``commit`` (an exception, ``abort``) nothing is left behind.
    """

    def __init__(self, path: "str | os.PathLike", rate: int, channels: int, fmt: str = "wav",
                 bitrate: int = 320):
        if fmt not in FORMATS:
            raise AudioError(f"{path}: unknown output format {fmt!r} (one of {', '.join(FORMATS)})")
        self.path = os.fspath(path)
        self.rate = int(rate)
        self.channels = int(channels)
        self.fmt = fmt
        self.bitrate = int(bitrate)
        try:
            self._pending = PendingFile(self.path)
            # mp3: a float WAV first, which ffmpeg encodes on commit.
            self._samples = PendingFile(self.path, ".wav") if fmt == "mp3" else self._pending
            subtype, container = ("FLOAT", "WAV") if fmt == "mp3" else (FORMATS[fmt], fmt.upper())
            self._file = soundfile.SoundFile(self._samples.temporary, "w", self.rate, self.channels,
                                             subtype=subtype, format=container)
        except (OSError, soundfile.LibsndfileError) as error:
            raise AudioError(f"{self.path}: cannot write here "
                             f"({getattr(error, 'strerror', None) or error})") from None

    def write(self, block: np.ndarray) -> None:
        """Appends ``(frames, channels)`` samples."""
        self._file.write(np.asarray(block, np.float32))

    def commit(self) -> None:
        """Finishes the file and renames it into place."""
        self._file.close()
        try:
            if self.fmt == "mp3":
                command = [_ffmpeg(), "-nostdin", "-v", "error", "-y", "-i", self._samples.temporary,
                           "-c:a", "libmp3lame", "-b:a", f"{self.bitrate}k", self._pending.temporary]
                result = subprocess.run(command, capture_output=True, text=True)
                self._samples.discard()
                if result.returncode != 0:
                    raise AudioError(f"{self.path}: mp3 encoding failed ({result.stderr.strip()})")
            self._pending.commit()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Closes and deletes the temporary files; the destination is untouched."""
        if not self._file.closed:
            self._file.close()
        self._samples.discard()
        self._pending.discard()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_audio(path: "str | os.PathLike", audio: np.ndarray, rate: int, fmt: "str | None" = None,
                bitrate: int = 320) -> None:
    """Writes ``audio (frames, channels)`` atomically; the format defaults to the extension."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]  # (frames, 1)
    fmt = fmt or os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    with AudioWriter(path, rate, audio.shape[1], fmt, bitrate) as writer:
        writer.write(audio)
