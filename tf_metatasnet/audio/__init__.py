"""Audio: reading and writing files of any format, and resampling.

- ``io``: :class:`AudioReader` / :func:`read_audio` (soundfile, ffmpeg for the rest) and
  :class:`AudioWriter` / :func:`write_audio` (atomic: wav, flac, mp3);
- ``resample``: soxr's very-high-quality resampler, whole (:func:`resample`) or as a stream
  (:class:`StreamResampler`);
- ``sinc``: the windowed-sinc resampler that the Android core mirrors sample for sample.
"""

from tf_metatasnet.audio.io import FORMATS, AudioError, AudioReader, AudioWriter, read_audio, write_audio
from tf_metatasnet.audio.resample import RESAMPLE_QUALITY, StreamResampler, resample

__all__ = ["FORMATS", "RESAMPLE_QUALITY", "AudioError", "AudioReader", "AudioWriter", "StreamResampler",
           "read_audio", "resample", "write_audio"]
