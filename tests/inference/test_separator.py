"""Whole-song separation: files in, stems out, the original's inference, and bad input."""

import os

import numpy as np
import pytest
import soundfile

import tf_metatasnet as tm
from tf_metatasnet.audio import read_audio
from tf_metatasnet.cli import main
from tf_metatasnet.inference.separator import SeparationError, Separator

SOURCES = ("drums", "bass", "other", "vocals")
#: Least SNR (dB) of the sum of the default model's stems against the mixture (measured:
#: 13.3 and 13.1 dB on the demo song's two channels).
SUM_BACK_SNR_DB = 10.0


@pytest.fixture(scope="module")
def tiny_model():
    return tm.build_model("tiny")


@pytest.fixture(scope="module")
def model_file(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tm.save_model(tiny_model, path)
    return str(path)


def music(seconds, rate=44100, channels=2, seed=0):
    """A short music-like mixture: a plucked melody, a bass note, noise hits."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    notes = 220 * 2 ** (rng.integers(0, 12, size=int(seconds * 4) + 1) / 12)
    melody = 0.3 * np.sin(2 * np.pi * np.cumsum(notes[(t * 4).astype(int)]) / rate) * np.exp(-4 * (t % 0.25))
    bass = 0.2 * np.sin(2 * np.pi * 55 * t)
    hits = 0.2 * rng.standard_normal(len(t)) * np.exp(-40 * (t % 0.5))
    mono = melody + bass + hits
    return np.stack([mono * (1 - 0.3 * c) + 0.01 * c * rng.standard_normal(len(t))
                     for c in range(channels)], axis=1).astype("float32")  # (frames, channels)


def si_sdr(reference, estimate):
    scale = np.sum(estimate * reference) / np.sum(reference * reference)
    return 10 * np.log10(np.sum((scale * reference) ** 2) / np.sum((estimate - scale * reference) ** 2))


@pytest.mark.parametrize("rate,channels,fmt", [(44100, 2, "wav"), (22050, 1, "flac"), (48000, 2, "mp3")])
def test_separate_file_writes_every_stem_like_the_input(tiny_model, tmp_path, rate, channels, fmt):
    song = tmp_path / "My Song.wav"
    audio = music(3.3, rate, channels)
    soundfile.write(song, audio, rate)
    separator = Separator(tiny_model, chunk_seconds=1.5, context_seconds=0.5, jit_compile=False)
    seen = []
    written = separator.separate_file(song, tmp_path / "out", fmt=fmt,
                                      progress=lambda done, total: seen.append((done, total)))
    assert sorted(os.path.basename(p) for p in written) == sorted(f"{s}.{fmt}" for s in SOURCES)
    for path in written:
        assert os.path.dirname(path) == str(tmp_path / "out" / "My Song")
        stem, stem_rate = read_audio(path)
        assert stem_rate == rate and stem.shape[1] == channels
        if fmt == "mp3":  # the mp3 encoder adds its own padding
            assert abs(len(stem) - len(audio)) < 0.06 * rate
        else:
            assert len(stem) == len(audio)
    assert seen[-1][0] == pytest.approx(seen[-1][1]) and seen[-1][1] >= 3.3
    assert not [f for f in os.listdir(tmp_path / "out" / "My Song") if f.startswith(".tmp")]


def test_stems_are_the_least_squares_fit_of_the_mixture(tiny_model):
    """After the original's rescaling, no other weighting of the stems is closer to the
    mixture: NumPy's lstsq on the written stems must give weights of one, per channel."""
    audio = music(4.0)
    stems = Separator(tiny_model, chunk_seconds=2.0, context_seconds=0.5,
                      jit_compile=False).separate(audio, 44100)
    assert set(stems) == set(SOURCES)
    for channel in range(2):
        matrix = np.stack([stems[s][:, channel] for s in SOURCES], axis=1).astype(np.float64)
        weights = np.linalg.lstsq(matrix, audio[:, channel].astype(np.float64), rcond=None)[0]
        np.testing.assert_allclose(weights, 1.0, atol=1e-3)
        residual = audio[:, channel] - matrix.sum(1)
        np.testing.assert_allclose(matrix.T @ residual / len(residual), 0.0,
                                   atol=1e-5 * np.mean(audio[:, channel] ** 2))


def test_in_memory_and_file_separation_agree(tiny_model, tmp_path):
    audio = music(2.0)
    soundfile.write(tmp_path / "a.wav", audio, 44100, subtype="FLOAT")
    separator = Separator(tiny_model, chunk_seconds=1.0, context_seconds=0.5, jit_compile=False)
    in_memory = separator.separate(audio, 44100)
    for path in separator.separate_file(tmp_path / "a.wav", tmp_path / "out"):
        stem = os.path.splitext(os.path.basename(path))[0]
        np.testing.assert_allclose(read_audio(path)[0], in_memory[stem], atol=1e-6)


@pytest.mark.slow
def test_xla_and_graph_separation_agree(tiny_model):
    audio = music(2.0, channels=1)
    eager = Separator(tiny_model, chunk_seconds=1.0, jit_compile=False).separate(audio, 44100)
    xla = Separator(tiny_model, chunk_seconds=1.0, jit_compile=True).separate(audio, 44100)
    for s in SOURCES:
        assert si_sdr(eager[s], xla[s]) > 60


@pytest.mark.slow
def test_chunking_adds_no_error_of_its_own(tiny_model):
    """Chunk borders: with a song shorter than one window the result is exactly the
    unchunked one; on a song whose statistics are the same in every window (a loop)
    chunking stays close. (Meta-TasNet's group norms take statistics over the whole input,
    so on real music every chunking changes the result a little; see the README.)"""
    loop = music(1.0, seed=3)
    audio = np.tile(loop, (12, 1))                                         # 12 s of a 1 s loop
    whole = Separator(tiny_model, chunk_seconds=30, context_seconds=0,
                      jit_compile=False).separate(audio, 44100)
    one_window = Separator(tiny_model, chunk_seconds=12, context_seconds=4, overlap_seconds=1,
                           jit_compile=False).separate(audio, 44100)
    chunked = Separator(tiny_model, chunk_seconds=2.56, context_seconds=1.28, overlap_seconds=0.64,
                        jit_compile=False).separate(audio, 44100)
    for s in SOURCES:
        np.testing.assert_allclose(one_window[s], whole[s], atol=1e-6 * np.abs(whole[s]).max())
        assert si_sdr(whole[s], chunked[s]) > 20, s


@pytest.mark.slow
def test_two_stems_stem_selection_and_name_template(tiny_model, tmp_path):
    song = tmp_path / "song.flac"
    soundfile.write(song, music(2.0), 44100)
    separator = Separator(tiny_model, chunk_seconds=1.0, jit_compile=False)
    written = separator.separate_file(song, tmp_path / "karaoke", two_stems="vocals",
                                      filename="{track}_{stem}.{ext}")
    assert [os.path.basename(p) for p in written] == ["song_vocals.wav", "song_no_vocals.wav"]
    full = separator.separate_file(song, tmp_path / "all")
    parts = {os.path.splitext(os.path.basename(p))[0]: read_audio(p)[0] for p in full}
    np.testing.assert_allclose(read_audio(written[1])[0], parts["drums"] + parts["bass"] + parts["other"],
                               atol=1e-6)
    only = separator.separate_file(song, tmp_path / "only", stems=["bass"])
    assert [os.path.basename(p) for p in only] == ["bass.wav"]
    with pytest.raises(ValueError, match="unknown stem"):
        separator.separate_file(song, tmp_path / "x", stems=["guitar"])


def _bad_input(kind, path):
    if kind == "not audio":
        path.write_text("hello, I am a text file\n" * 100)
    elif kind == "empty":
        soundfile.write(path, np.zeros((0, 2), "float32"), 44100)
    elif kind == "zero bytes":
        path.write_bytes(b"")
    elif kind == "too short":
        soundfile.write(path, np.full((50, 2), 0.1, "float32"), 44100)
    elif kind == "silent":
        soundfile.write(path, np.zeros((44100, 2), "float32"), 44100)
    elif kind == "nan":
        audio = music(1.0)
        audio[1000, 0] = np.nan
        soundfile.write(path, audio, 44100, subtype="FLOAT")
    elif kind == "inf":
        audio = music(1.0)
        audio[-1, 1] = np.inf
        soundfile.write(path, audio, 44100, subtype="FLOAT")
    elif kind == "six channels":
        soundfile.write(path, np.tile(music(1.0, channels=1), (1, 6)), 44100)


BAD = {"not audio": "not a readable audio file", "empty": "no audio samples",
       "zero bytes": "not a readable audio file", "too short": "too short", "silent": "silent",
       "nan": "NaN or infinite", "inf": "NaN or infinite", "six channels": "6 channels"}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_is_one_clear_error_and_writes_nothing(tiny_model, tmp_path, kind):
    path = tmp_path / "bad.wav"
    _bad_input(kind, path)
    separator = Separator(tiny_model, chunk_seconds=1.0, jit_compile=False)
    with pytest.raises(SeparationError, match=BAD[kind]) as error:
        separator.separate_file(path, tmp_path / "out")
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    assert not (tmp_path / "out").exists() or not any(files for _, _, files in os.walk(tmp_path / "out"))


@pytest.mark.slow
def test_downmix_option_separates_many_channels_to_mono(tiny_model, tmp_path):
    path = tmp_path / "surround.wav"
    _bad_input("six channels", path)
    separator = Separator(tiny_model, chunk_seconds=1.0, jit_compile=False, downmix=True)
    written = separator.separate_file(path, tmp_path / "out")
    stem, rate = read_audio(written[0])
    assert stem.shape == (44100, 1) and rate == 44100


def test_unwritable_output_folder_fails_before_any_work(tiny_model, tmp_path):
    song = tmp_path / "song.wav"
    soundfile.write(song, music(1.0), 44100)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SeparationError, match="cannot create the output folder") as error:
        Separator(tiny_model, jit_compile=False).separate_file(song, blocker / "out")
    assert str(blocker) in str(error.value)


@pytest.mark.slow
def test_cli_separates_many_files_and_reports_each_bad_one(model_file, tmp_path, capsys):
    good_a, good_b, bad = tmp_path / "a.wav", tmp_path / "b.ogg", tmp_path / "c.wav"
    soundfile.write(good_a, music(1.5), 44100)
    soundfile.write(good_b, music(1.5, rate=32000, channels=1), 32000)
    _bad_input("silent", bad)
    status = main(["separate", str(good_a), str(bad), str(good_b), "-o", str(tmp_path / "out"),
                   "--model", model_file, "--chunk-seconds", "1", "--no-xla", "--format", "flac",
                   "--jobs", "2"])
    captured = capsys.readouterr()
    assert status == 1
    assert f"{bad}: is silent" in captured.err and "metatasnet: 1 of 3 files failed" in captured.err
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "b"]
    assert read_audio(tmp_path / "out" / "b" / "vocals.flac")[0].shape == (48000, 1)


def test_cli_missing_model_is_one_line_error(tmp_path, capsys):
    song = tmp_path / "a.wav"
    soundfile.write(song, music(1.0), 44100)
    status = main(["separate", str(song), "-o", str(tmp_path / "out"), "--model",
                   str(tmp_path / "missing.keras")])
    err = capsys.readouterr().err.strip()
    assert status == 1 and "missing.keras: no such model file" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_default_model_stems_sum_back_to_the_mixture(tmp_path):
    """`metatasnet separate` without --model uses the bundled default model, and with a
    trained model the least-squares-rescaled stems add up to the mixture: what the
    decoder does not reconstruct is small (a random model's sum is only the projection)."""
    from tf_metatasnet.assets import demo_song_dir
    from tf_metatasnet.data.musdb import read_stem_folder

    _, mixture, rate = read_stem_folder(demo_song_dir())
    soundfile.write(tmp_path / "song.wav", mixture, rate, subtype="FLOAT")
    assert main(["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "out"), "--no-xla"]) == 0
    stems = {s: read_audio(tmp_path / "out" / "song" / f"{s}.wav")[0] for s in SOURCES}
    total = sum(stems[s].astype(np.float64) for s in SOURCES)
    assert total.shape == mixture.shape
    for channel in range(mixture.shape[1]):
        error = total[:, channel] - mixture[:, channel]
        snr = 10 * np.log10(np.sum(mixture[:, channel].astype(np.float64) ** 2) / np.sum(error ** 2))
        assert snr > SUM_BACK_SNR_DB, (channel, snr)
