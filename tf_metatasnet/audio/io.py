"""Audio files in and out, and sample-rate conversion.

Reading goes through ``soundfile`` (libsndfile: wav, flac, ogg, aiff, mp3) and falls back to
``ffmpeg`` (a system package) for everything else (m4a/aac, opus, ...), which decodes to a
temporary float WAV that is then streamed like any other file. Resampling is ``soxr``'s
very-high-quality sinc resampler, used as a stream so that a song never has to be in
memory at once. (``tensorflow-io`` is not used: its last release cannot load its ops with
TensorFlow >= 2.18.)

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
import soxr

#: soxr quality used everywhere (very high quality sinc).
RESAMPLE_QUALITY = "VHQ"
#: Output formats and their soundfile subtype (mp3 is encoded by ffmpeg).
FORMATS = {"wav": "FLOAT", "flac": "PCM_24", "mp3": None}


class AudioError(ValueError):
    """A file could not be read or written; the message says which and why."""


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise AudioError("ffmpeg is not installed (needed for this format; e.g. apt-get install ffmpeg)")
    return path


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
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            handle, self._temporary = tempfile.mkstemp(
                prefix=".tmp-", suffix=".wav" if fmt == "mp3" else f".{fmt}", dir=directory)
            os.close(handle)
        except OSError as error:
            raise AudioError(f"{self.path}: cannot write here ({error.strerror})") from None
        if fmt == "mp3":
            # Float WAV first; ffmpeg encodes it on commit.
            self._file = soundfile.SoundFile(self._temporary, "w", self.rate, self.channels,
                                             subtype="FLOAT", format="WAV")
        else:
            self._file = soundfile.SoundFile(self._temporary, "w", self.rate, self.channels,
                                             subtype=FORMATS[fmt], format=fmt.upper())

    def write(self, block: np.ndarray) -> None:
        """Appends ``(frames, channels)`` samples."""
        self._file.write(np.asarray(block, np.float32))

    def commit(self) -> None:
        """Finishes the file and renames it into place."""
        self._file.close()
        try:
            if self.fmt == "mp3":
                encoded = self._temporary[:-4] + ".mp3"
                command = [_ffmpeg(), "-nostdin", "-v", "error", "-y", "-i", self._temporary,
                           "-c:a", "libmp3lame", "-b:a", f"{self.bitrate}k", encoded]
                result = subprocess.run(command, capture_output=True, text=True)
                os.remove(self._temporary)
                self._temporary = encoded
                if result.returncode != 0:
                    raise AudioError(f"{self.path}: mp3 encoding failed ({result.stderr.strip()})")
            os.replace(self._temporary, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Closes and deletes the temporary file; the destination is untouched."""
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self._temporary):
            os.remove(self._temporary)

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
