"""The synthetic MUSDB18 (``tf_metatasnet.data.synth.toy`` songs, ``.dataset`` layouts), read back through the real musdb package."""

import math

import musdb
import numpy as np
import pytest
import soundfile
import stempeg

from tf_metatasnet.cli import main
from tf_metatasnet.data.synth import toy
from tf_metatasnet.data.synth.dataset import make_toy_dataset, track_names, validation_track_names
from tf_metatasnet.data.synth.toy import synthesize_track
from tf_metatasnet.sources import SOURCES, STEMS

RATE = 44100
SECONDS = 6  # the conftest datasets: 3 training tracks (1 in the valid split), 2 test tracks


def _band_fraction(signal, low, high, rate=RATE):
    """Share of the energy of a ``(samples, channels)`` signal between ``low`` and ``high`` Hz."""
    power = np.abs(np.fft.rfft(signal, axis=0)) ** 2
    frequencies = np.fft.rfftfreq(len(signal), 1 / rate)
    return power[(frequencies >= low) & (frequencies < high)].sum() / power.sum()


def _snr(reference, estimate):
    return 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - estimate) ** 2))


def _longest_silence(signal):
    """Longest run of exactly zero samples (all channels), in samples."""
    silent = np.concatenate([[0], np.all(signal == 0, axis=1).astype(int), [0]])
    edges = np.diff(silent)
    return int(np.max(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1), initial=0))


def _wav_stems(root, subset, name):
    return {stem: soundfile.read(root / subset / name / f"{stem}.wav", dtype="float64")[0] for stem in STEMS}


@pytest.mark.parametrize("layout", ["wav", pytest.param("stem", marks=pytest.mark.slow)])
def test_musdb_reads_the_train_valid_and_test_splits(layout, request):
    root = request.getfixturevalue(f"toy_musdb_{layout}")
    is_wav = layout == "wav"
    train = musdb.DB(root=root, is_wav=is_wav, subsets="train", split="train")
    valid = musdb.DB(root=root, is_wav=is_wav, subsets="train", split="valid")
    test = musdb.DB(root=root, is_wav=is_wav, subsets="test")
    assert [len(train), len(valid), len(test)] == [2, 1, 2]
    assert valid[0].name in validation_track_names()
    assert all(track.name.startswith("Toy Artist - ") for track in list(train) + list(test))

    samples = SECONDS * RATE
    for track in list(train) + list(valid) + list(test):
        mixture = track.audio
        assert track.rate == RATE and mixture.ndim == 2 and mixture.shape[1] == 2
        if is_wav:
            assert mixture.shape[0] == samples
        else:  # AAC codes whole 1024-sample frames; ffmpeg keeps the padding at the end
            assert samples <= mixture.shape[0] < samples + 1024
        sources = {name: track.sources[name].audio for name in SOURCES}
        assert all(audio.shape == mixture.shape for audio in sources.values())
        linear = sum(sources.values())
        if is_wav:  # the stems are on the 16-bit grid and the mixture is their exact sum
            np.testing.assert_array_equal(linear, mixture)
        else:  # five independently AAC-coded streams
            assert _snr(mixture, linear) > 15
            assert np.corrcoef(mixture.ravel(), linear.ravel())[0, 1] > 0.99
        assert np.abs(mixture).max() < 1


@pytest.mark.slow  # writes and decodes the AAC stems (about 8 s)
def test_stem_file_streams_are_the_wav_stems_in_musdb_order(toy_musdb_wav, toy_musdb_stem):
    # Both conftest datasets use the same seed, so they hold the same songs.
    name = "Toy Artist - Toy Test Song 001"
    streams, rate = stempeg.read_stems(str(toy_musdb_stem / "test" / f"{name}.stem.mp4"))
    assert rate == RATE and streams.shape[0] == 5
    wav = _wav_stems(toy_musdb_wav, "test", name)
    for index, stem in enumerate(STEMS):  # mixture, drums, bass, other, vocals
        decoded = streams[index, :len(wav[stem])]
        assert _snr(wav[stem], decoded) > 12, stem  # aligned (no codec delay left) and in place


def test_stems_sound_like_their_instruments(toy_musdb_wav):
    tracks = [("train", name) for name in track_names(3, 2)[0]] + [("test", name) for name in track_names(3, 2)[1]]
    for subset, name in tracks:
        stems = _wav_stems(toy_musdb_wav, subset, name)
        for source in SOURCES:  # some sections may be silent, never the whole track
            frames = stems[source][:len(stems[source]) // 2205 * 2205].reshape(-1, 2205, 2)  # 50 ms
            assert np.abs(stems[source]).max() > 0.02, (name, source)
            assert np.mean(np.abs(frames).max(axis=(1, 2)) > 1e-3) > 0.1, (name, source)
            left, right = stems[source].T  # stereo with a little width, not two copies
            assert not np.array_equal(left, right), (name, source)
        assert _band_fraction(stems["bass"], 0, 300) > 0.9, name  # low notes
        assert _band_fraction(stems["drums"], 4000, RATE / 2) > 0.01, name  # hi-hats: broadband
        assert _band_fraction(stems["bass"], 4000, RATE / 2) < 1e-3, name
        assert _band_fraction(stems["other"], 100, 5000) > 0.9, name  # harmonic chords
        assert _band_fraction(stems["vocals"], 100, 5000) > 0.9, name  # a voice's range
        assert _longest_silence(stems["vocals"]) > 0.2 * RATE, name  # the singer breathes
        correlation = np.corrcoef(*stems["vocals"].T)[0, 1]
        assert 0.5 < correlation < 1.0, name  # a centred voice


def test_songs_differ_between_tracks():
    first, second = (synthesize_track(2.0, seed=(0, 0, index)) for index in (0, 1))
    for source in SOURCES:
        assert not np.array_equal(first[source], second[source])


def test_same_seed_gives_the_same_files_another_seed_other_audio(tmp_path):
    def wav(folder):
        return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*.wav"))}

    make_toy_dataset(tmp_path / "a", tracks=2, test_tracks=1, seconds=1.0, seed=3)
    make_toy_dataset(tmp_path / "b", tracks=2, test_tracks=1, seconds=1.0, seed=3)
    make_toy_dataset(tmp_path / "c", tracks=2, test_tracks=1, seconds=1.0, seed=4)
    assert len(wav(tmp_path / "a")) == 3 * 5
    assert wav(tmp_path / "a") == wav(tmp_path / "b")
    other = wav(tmp_path / "c")
    assert set(other) == set(wav(tmp_path / "a"))
    assert all(other[path] != content for path, content in wav(tmp_path / "a").items())

    # A track does not depend on how many tracks are made.
    make_toy_dataset(tmp_path / "d", tracks=1, test_tracks=0, seconds=1.0, seed=3)
    name = "train/Toy Artist - Toy Song 001/vocals.wav"
    assert (tmp_path / "d" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()

    for layout in ("e", "f"):
        make_toy_dataset(tmp_path / layout, tracks=1, test_tracks=0, seconds=1.0, fmt="stem", seed=3)
    stem = "train/Toy Artist - Toy Song 001.stem.mp4"
    first, second = (stempeg.read_stems(str(tmp_path / layout / stem))[0] for layout in ("e", "f"))
    np.testing.assert_array_equal(first, second)


def test_rerun_rewrites_the_same_dataset_and_leaves_no_temporary_files(tmp_path):
    calls = []
    first = make_toy_dataset(tmp_path, tracks=2, test_tracks=1, seconds=1.0,
                             progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert first == [tmp_path / "train" / "Toy Artist - Toy Song 001", tmp_path / "train" / validation_track_names()[0],
                     tmp_path / "test" / "Toy Artist - Toy Test Song 001"]
    before = {path: path.read_bytes() for path in tmp_path.rglob("*.wav")}
    (first[2] / "bass.wav").unlink()  # as if a run had been interrupted
    assert make_toy_dataset(tmp_path, tracks=2, test_tracks=1, seconds=1.0) == first
    assert {path: path.read_bytes() for path in tmp_path.rglob("*.wav")} == before
    assert not [path for path in tmp_path.rglob("*") if path.name.startswith(".")]
    assert sorted(path.name for path in first[0].iterdir()) == sorted(f"{stem}.wav" for stem in STEMS)


def test_track_names_take_a_quarter_from_musdbs_validation_list():
    validation = validation_track_names()
    assert validation[0] == "Actions - One Minute Smile" and len(validation) == 14
    for tracks, expected in ((1, 0), (2, 1), (3, 1), (4, 1), (6, 2), (8, 2), (12, 3), (100, 14)):
        train, test = track_names(tracks, 2)
        assert len(train) == len(set(train)) == tracks
        assert sum(name in validation for name in train) == expected, tracks
        assert test == ["Toy Artist - Toy Test Song 001", "Toy Artist - Toy Test Song 002"]


@pytest.mark.parametrize("kwargs,message", [
    ({"tracks": 0}, "tracks must be an integer >= 1"),
    ({"tracks": 2.5}, "tracks must be an integer >= 1"),
    ({"tracks": True}, "tracks must be an integer >= 1"),
    ({"test_tracks": -1}, "test_tracks must be an integer >= 0"),
    ({"seconds": 0}, "seconds must be a positive number"),
    ({"seconds": -1.0}, "seconds must be a positive number"),
    ({"seconds": math.nan}, "seconds must be a positive number"),
    ({"seconds": math.inf}, "seconds must be a positive number"),
    ({"fmt": "mp3"}, "fmt must be one of wav, stem"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"rate": 0}, "rate must be an integer"),
    ({"renderer": "timidity"}, "renderer must be one of numpy, fluidsynth"),
    ({"soundfont": "/usr/share/sounds/sf2/FluidR3_GM.sf2"}, "a soundfont needs renderer='fluidsynth'"),
])
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_toy_dataset(tmp_path / "dataset", **kwargs)
    assert not (tmp_path / "dataset").exists()


def test_output_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError, match="file: exists and is not a folder"):
        make_toy_dataset(tmp_path / "file", tracks=1, seconds=0.5)


def test_very_short_tracks_still_have_every_stem():
    for seconds in (0.01, 0.3):
        stems = synthesize_track(seconds, seed=7)
        for name in STEMS:
            assert stems[name].shape == (round(seconds * RATE), 2) and np.any(stems[name] != 0), (seconds, name)


def test_cli_writes_a_readable_dataset(tmp_path, capsys):
    root = tmp_path / "toy"
    status = main(["make-toy-dataset", "-o", str(root), "--tracks", "2", "--test-tracks", "1",
                   "--seconds", "1", "--format", "wav", "--seed", "2"])
    out = capsys.readouterr().out
    assert status == 0
    assert "2 training (1 in musdb's valid split) and 1 test tracks of 1 s" in out
    assert len(musdb.DB(root=root, is_wav=True, subsets="train", split="train")) == 1
    assert len(musdb.DB(root=root, is_wav=True, subsets="train", split="valid")) == 1
    assert musdb.DB(root=root, is_wav=True, subsets="test")[0].audio.shape == (RATE, 2)

    assert main(["make-toy-dataset", "-o", str(tmp_path / "bad"), "--tracks", "0"]) == 1
    assert "metatasnet: error: tracks must be an integer >= 1" in capsys.readouterr().err


def test_mix_and_quantize_scales_the_song_by_one_factor_onto_the_16_bit_grid():
    rng = np.random.default_rng(4)
    stems = {name: rng.normal(0.0, scale, (3000, 2)) for name, scale in zip(SOURCES, (0.5, 2.0, 1.0, 0.1))}
    audio = toy.mix_and_quantize(stems, np.random.default_rng(8))
    assert set(audio) == set(STEMS)
    peak = max(np.max(np.abs(stems[name])) for name in SOURCES)
    peak = max(peak, np.max(np.abs(sum(stems[name] for name in SOURCES))))
    scale = np.random.default_rng(8).uniform(0.5, 0.8) / peak * 32768.0
    for name in SOURCES:
        assert audio[name].dtype == np.float32
        np.testing.assert_array_equal(audio[name] * 32768.0, np.round(stems[name] * scale))
    np.testing.assert_array_equal(audio["mixture"], sum(audio[name] for name in SOURCES))
    assert 0.5 - 1e-4 <= max(np.max(np.abs(audio[name])) for name in STEMS) <= 0.8 + 1e-4
