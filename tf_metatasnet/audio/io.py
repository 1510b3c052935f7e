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
import stat
import subprocess
import tempfile
from typing import Iterator

import numpy as np
import soundfile

from tf_metatasnet.atomic import PendingFile
from tf_metatasnet.errors import one_line, write_failure
from tf_metatasnet.programs import find_program

#: Output formats and their soundfile subtype (mp3 is encoded by ffmpeg).
FORMATS = {"wav": "FLOAT", "flac": "PCM_24", "mp3": None}

#: What an input file may be: its header is untrusted and is checked against these before
#: any buffer is sized by it. Rates from 1 kHz to 768 kHz; up to 64 channels (more than two
#: are separated only when mixed down); up to 3 hours (the separator keeps the song's stage
#: signals and estimates in temporary files: about 0.9 GB per stereo hour at the default rates).
MIN_RATE, MAX_RATE = 1_000, 768_000
MAX_CHANNELS = 64
MAX_SECONDS = 3 * 3600


class AudioError(ValueError):
    """A file could not be read or written; the message says which and why."""


def _ffmpeg() -> str:
    try:
        return find_program("ffmpeg", "this format")
    except FileNotFoundError as error:
        raise AudioError(str(error)) from None


def check_input_file(path: str) -> None:
    """Raises :class:`AudioError` unless ``path`` is a regular file (or a link to one):
    folders, FIFOs, sockets and devices are refused without being opened, so that reading
    never blocks on them."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except OSError as error:
        raise AudioError(f"{path}: cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        raise AudioError(f"{path}: is not a regular file (a FIFO, socket or device); "
                         f"only audio files are read")


def check_format(path: str, rate: int, channels: int, frames: int) -> None:
    """Raises :class:`AudioError` if a file's header describes audio outside the bounds
    (``MIN_RATE``, ``MAX_RATE``, ``MAX_CHANNELS``, ``MAX_SECONDS``)."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{path}: sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{path}: {channels} channels (1 to {MAX_CHANNELS} are read)")
    if frames > MAX_SECONDS * rate:
        raise AudioError(f"{path}: {frames / rate / 3600:.1f} hours long, more than the "
                         f"{MAX_SECONDS // 3600} hours a song may be")


class AudioReader:
    """Streams an audio file as float32 blocks ``(frames, channels)``.

    Use as a context manager. ``rate``, ``channels`` and ``frames`` describe the file.
    Files libsndfile cannot open are decoded by ffmpeg to a temporary WAV first.
    """

    def __init__(self, path: "str | os.PathLike"):
        self.path = os.fspath(path)
        self._tmpdir = None
        self._file = None
        check_input_file(self.path)
        try:
            self._file = soundfile.SoundFile(self.path)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, OSError):
            self._file = self._decode_with_ffmpeg()
        self.rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames)
        try:
            check_format(self.path, self.rate, self.channels, self.frames)
        except AudioError:
            self.close()
            raise

    def _decode_with_ffmpeg(self):
        self._tmpdir = tempfile.mkdtemp(prefix="metatasnet-decode-")
        wav = os.path.join(self._tmpdir, "decoded.wav")
        # file: and an absolute path, so that a name like "song:v2.m4a" is a file, never a
        # protocol URL.
        command = [_ffmpeg(), "-nostdin", "-v", "error", "-y", "-i", "file:" + os.path.abspath(self.path),
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
        """Yields the file from its start in float32 blocks of ``(frames, channels)``.

        Raises:
            AudioError: a block holds NaN or infinite samples, or the file is damaged.
        """
        self._file.seek(0)
        while True:
            try:
                block = self._file.read(blocksize, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as error:
                raise AudioError(f"{self.path}: not a readable audio file ({one_line(error)})") from None
            if len(block) == 0:
                return
            if not np.isfinite(block).all():
                raise AudioError(f"{self.path}: contains NaN or infinite samples")
            yield block

    def read(self, frames: int) -> np.ndarray:
        """Reads the next ``frames`` frames (fewer at the end) as ``(frames, channels)``."""
        try:
            return self._file.read(frames, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as error:
            raise AudioError(f"{self.path}: not a readable audio file ({one_line(error)})") from None

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
        """Appends ``(frames, channels)`` samples.

        Raises:
            AudioError: the samples cannot be written (a full disk...), naming the file.
        """
        try:
            self._file.write(np.asarray(block, np.float32))
        except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
            raise AudioError(f"{self.path}: cannot be written ({write_failure(error, self._samples.temporary)})") from None

    def commit(self) -> None:
        """Finishes the file and renames it into place."""
        try:
            self._file.close()
        except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
            self.abort()
            raise AudioError(f"{self.path}: cannot be written ({write_failure(error, self._samples.temporary)})") from None
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
            try:
                self._file.close()
            except (soundfile.LibsndfileError, RuntimeError, OSError):
                pass  # a full disk: the file is deleted anyway
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
