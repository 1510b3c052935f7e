"""Audio inputs are untrusted: their headers are bounded before anything is sized by them,
only regular files are read, any name is a file name, and outputs honour the umask."""

import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from snapshot import leftovers, snapshot

from tf_metatasnet.audio import AudioError
from tf_metatasnet.audio.io import MAX_SECONDS, check_format
from tf_metatasnet.cli import main

RATE = 22050


def _separate(capsys, tiny_model_file, tmp_path, *inputs, status=1):
    before = snapshot(*{os.path.dirname(str(path)) for path in inputs})
    argv = ["separate", *map(str, inputs), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file),
            "--no-xla"]
    assert main(argv) == status
    assert snapshot(*{os.path.dirname(str(path)) for path in inputs}) == before
    # (TensorFlow's autograph keeps its generated modules in TMPDIR until the process exits.)
    assert not leftovers(tmp_path)
    assert [name for name in os.listdir(tmp_path / "tmp") if not name.startswith("__autograph")] == []
    return capsys.readouterr()


def _with_rate(song, path, rate):
    """A copy of the WAV ``song`` whose header claims ``rate`` Hz (and a matching byte rate)."""
    data = bytearray(song.read_bytes())
    assert data[:4] == b"RIFF" and data[12:16] == b"fmt "
    channels, bits = struct.unpack_from("<H", data, 22)[0], struct.unpack_from("<H", data, 34)[0]
    struct.pack_into("<I", data, 24, rate)
    struct.pack_into("<I", data, 28, rate * channels * bits // 8)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rate", [1, 1_000_000_000])
def test_a_header_rate_outside_the_bounds_is_one_line(rate, song, tiny_model_file, tmp_path, capsys):
    bad = _with_rate(song, song.parent / f"rate{rate}.wav", rate)
    out = _separate(capsys, tiny_model_file, tmp_path, bad)
    assert f"{bad}: sample rate {rate} Hz is outside 1000-768000 Hz" in out.err
    assert "metatasnet: 1 of 1 files failed" in out.err


def test_too_many_channels_and_too_long_are_refused(song, tiny_model_file, tmp_path, capsys):
    wide = song.parent / "wide.wav"
    soundfile.write(wide, np.zeros((RATE, 65), np.float32), RATE)
    assert f"{wide}: 65 channels (1 to 64 are read)" in _separate(capsys, tiny_model_file, tmp_path, wide).err
    with pytest.raises(AudioError, match=r"long.wav: 3.5 hours long, more than the 3 hours"):
        check_format("long.wav", 8000, 2, int(3.5 * 3600 * 8000))
    check_format("long.wav", 8000, 2, MAX_SECONDS * 8000)


@pytest.mark.slow  # starts the command in processes (6-10 s)
def test_special_files_are_refused_without_blocking(song, tmp_path, tiny_model_file):
    fifo = song.parent / "fifo.wav"
    os.mkfifo(fifo)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "tf_metatasnet.cli", "separate", str(fifo), "/dev/zero",
                           str(song.parent), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1
    assert f"metatasnet: error: {fifo}: is not a regular file (a FIFO, socket or device)" in done.stderr
    assert "metatasnet: error: /dev/zero: is not a regular file" in done.stderr
    assert f"metatasnet: error: {song.parent}: is a directory" in done.stderr
    assert "metatasnet: 3 of 3 files failed" in done.stderr


def test_a_damaged_file_is_one_line_and_the_batch_goes_on(song, tiny_model_file, tmp_path, capsys):
    corrupt = song.parent / "corrupt.mp3"
    corrupt.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + os.urandom(4000))
    out = _separate(capsys, tiny_model_file, tmp_path, corrupt, song)
    errors = [line for line in out.err.splitlines() if line.startswith("metatasnet: error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"metatasnet: error: {corrupt}: not a readable audio file")
    assert "metatasnet: 1 of 2 files failed; the others were separated" in out.err
    assert sorted(os.listdir(tmp_path / "out" / "song")) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]


@pytest.mark.slow  # starts the command in processes (6-10 s)
def test_a_name_like_a_url_is_read_as_a_file_and_outputs_follow_the_umask(song, tiny_model_file, tmp_path,
                                                                         capsys):
    named = song.parent / "song:v2.m4a"           # ffmpeg would take "song:" as a protocol
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(song), "-c:a", "aac", str(named)], check=True)
    previous = os.umask(0o022)
    try:
        for fmt in ("wav", "mp3"):
            assert main(["separate", f"./{os.path.relpath(named)}", "-o", str(tmp_path / fmt), "--model",
                         str(tiny_model_file), "--no-xla", "--format", fmt, "--stems", "vocals"]) == 0
            written = tmp_path / fmt / "song:v2" / f"vocals.{fmt}"
            assert written.is_file() and written.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(previous)
    assert not leftovers(tmp_path)
