"""Audio reading, writing and resampling, with real soundfile, ffmpeg and soxr."""

import os
import subprocess

import numpy as np
import pytest
import soundfile

from tf_metatasnet.audio import AudioError, AudioReader, AudioWriter, StreamResampler, read_audio, resample, write_audio


def _tone(rate=44100, seconds=1.0, channels=2, frequency=440.0):
    t = np.arange(int(rate * seconds)) / rate
    audio = np.stack([0.5 * np.sin(2 * np.pi * frequency * (1 + 0.5 * c) * t)
                      for c in range(channels)], axis=1)
    return audio.astype("float32")  # (frames, channels)


def _dominant_frequency(signal, rate):
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return np.fft.rfftfreq(len(signal), 1 / rate)[spectrum.argmax()]


def test_wav_round_trip_is_exact_and_flac_is_24_bit(tmp_path):
    audio = _tone()
    write_audio(tmp_path / "a.wav", audio, 44100)
    back, rate = read_audio(tmp_path / "a.wav")
    assert rate == 44100 and back.dtype == np.float32
    np.testing.assert_array_equal(back, audio)
    write_audio(tmp_path / "a.flac", audio, 44100)
    back, _ = read_audio(tmp_path / "a.flac")
    np.testing.assert_allclose(back, audio, atol=2.0 ** -22)


@pytest.mark.parametrize("extension,codec", [("mp3", "libmp3lame"), ("m4a", "aac"), ("ogg", "libvorbis")])
def test_compressed_formats_decode_with_rate_channels_and_pitch(tmp_path, extension, codec):
    source = tmp_path / "source.wav"
    soundfile.write(source, _tone(rate=22050, seconds=2.0), 22050)
    encoded = tmp_path / f"song.{extension}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", source, "-c:a", codec, encoded], check=True)
    audio, rate = read_audio(encoded)
    assert rate == 22050 and audio.shape[1] == 2
    assert abs(len(audio) - 2 * 22050) < 0.1 * 22050      # encoder padding only
    assert abs(_dominant_frequency(audio[:, 0], rate) - 440) < 5
    assert abs(_dominant_frequency(audio[:, 1], rate) - 660) < 5


def test_mp3_writer_uses_the_bitrate(tmp_path):
    audio = _tone(seconds=4.0)
    write_audio(tmp_path / "low.mp3", audio, 44100, bitrate=64)
    write_audio(tmp_path / "high.mp3", audio, 44100, bitrate=256)
    assert os.path.getsize(tmp_path / "high.mp3") > 2.5 * os.path.getsize(tmp_path / "low.mp3")
    back, rate = read_audio(tmp_path / "high.mp3")
    assert rate == 44100 and back.shape[1] == 2
    assert sorted(os.listdir(tmp_path)) == ["high.mp3", "low.mp3"]  # no temporary files left


def test_reader_streams_blocks_and_rereads(tmp_path):
    audio = _tone(seconds=1.5)
    write_audio(tmp_path / "a.wav", audio, 44100)
    with AudioReader(tmp_path / "a.wav") as reader:
        assert (reader.rate, reader.channels, reader.frames) == (44100, 2, len(audio))
        blocks = list(reader.blocks(10000))
        assert max(len(b) for b in blocks) == 10000
        np.testing.assert_array_equal(np.concatenate(blocks), audio)
        reader.seek(100)
        np.testing.assert_array_equal(reader.read(50), audio[100:150])


def test_writer_leaves_nothing_without_commit(tmp_path):
    target = tmp_path / "out" / "stem.wav"
    writer = AudioWriter(target, 44100, 2, "wav")
    writer.write(_tone())
    writer.abort()
    assert not target.exists() and os.listdir(tmp_path / "out") == []
    with pytest.raises(RuntimeError):
        with AudioWriter(target, 44100, 2, "flac") as writer:
            writer.write(_tone())
            raise RuntimeError("crash in the middle")
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("content,message", [(None, "no such file"), (b"this is not audio" * 50, "not a readable audio file"),
                                             ("dir", "is a directory")])
def test_unreadable_inputs_name_the_file(tmp_path, content, message):
    path = tmp_path / "input.wav"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as error:
        read_audio(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_unknown_output_format_is_an_error(tmp_path):
    with pytest.raises(AudioError, match="unknown output format"):
        AudioWriter(tmp_path / "a.xyz", 44100, 2, "xyz")


@pytest.mark.parametrize("rate_out", [8000, 16000, 32000, 48000])
def test_resampling_keeps_pitch_and_length_and_streams_identically(rate_out):
    audio = _tone(rate=44100, seconds=2.0, frequency=1000.0)
    out = resample(audio, 44100, rate_out)
    assert abs(len(out) - 2 * rate_out) <= 1
    assert abs(_dominant_frequency(out[:, 0], rate_out) - 1000) < 2
    stream = StreamResampler(44100, rate_out, 2)
    pieces = [stream(audio[i:i + 7000]) for i in range(0, len(audio), 7000)] + [stream.flush()]
    np.testing.assert_array_equal(np.concatenate(pieces), out)


def test_resampling_removes_content_above_the_new_nyquist():
    audio = _tone(rate=44100, seconds=1.0, channels=1, frequency=6000.0)
    out = resample(audio, 44100, 8000)  # 6 kHz is above 4 kHz: must vanish, not alias to 2 kHz
    assert np.sqrt(np.mean(out[2000:-2000] ** 2)) < 1e-3
