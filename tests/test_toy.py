"""The synthetic MUSDB18, read back through the real musdb package."""

import musdb
import numpy as np
import pytest
import soundfile

from tf_metatasnet.cli import main
from tf_metatasnet.toy import make_toy_dataset, synthesize_track

SOURCES = ("drums", "bass", "other", "vocals")


@pytest.mark.parametrize("layout", ["wav", "stem"])
def test_musdb_reads_train_valid_and_test_splits(layout, request):
    root = request.getfixturevalue(f"toy_musdb_{layout}")
    is_wav = layout == "wav"
    counts = {split: len(musdb.DB(root=root, is_wav=is_wav, subsets="train", split=split).tracks)
              for split in ("train", "valid")}
    assert counts == {"train": 2, "valid": 1}
    test = musdb.DB(root=root, is_wav=is_wav, subsets="test").tracks
    assert len(test) == 2
    track = test[0]
    assert track.rate == 44100 and track.audio.shape[1] == 2
    assert abs(track.audio.shape[0] - 6 * 44100) < 0.02 * 44100  # AAC adds a little padding
    linear = sum(track.targets[s].audio for s in SOURCES)
    error = np.sum((linear - track.audio) ** 2) / np.sum(track.audio ** 2)
    assert error < (1e-6 if is_wav else 1e-2)                    # PCM16 rounding / AAC coding


def _band_fraction(signal, low, high, rate=44100):
    spectrum = np.abs(np.fft.rfft(signal)) ** 2
    frequencies = np.fft.rfftfreq(len(signal), 1 / rate)
    return spectrum[(frequencies >= low) & (frequencies < high)].sum() / spectrum.sum()


def test_stems_sound_like_their_instruments():
    stems = synthesize_track(8.0, seed=5)
    np.testing.assert_allclose(sum(stems[s] for s in SOURCES), stems["mixture"], atol=1e-6)
    assert np.abs(stems["mixture"]).max() < 1.0
    assert _band_fraction(stems["bass"][:, 0], 0, 300) > 0.8           # low notes
    assert _band_fraction(stems["drums"][:, 0], 4000, 22050) > 0.01    # broadband hits
    assert _band_fraction(stems["vocals"][:, 0], 200, 2000) > 0.8      # a voice's range
    frames = stems["vocals"][:, 0].reshape(-1, 2205)                   # 50 ms frames
    loudness = np.sqrt((frames ** 2).mean(1))
    assert (loudness < 1e-3 * loudness.max()).mean() > 0.05            # the singer pauses
    for source in SOURCES:
        assert np.abs(stems[source]).max() > 0.01


def test_same_seed_same_songs_and_another_seed_other_songs(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        make_toy_dataset(tmp_path / name, tracks=1, test_tracks=0, seconds=1.0, seed=seed)
    read = lambda name: soundfile.read(tmp_path / name / "train" / "Toy Artist - Toy Song 001" / "vocals.wav")[0]
    np.testing.assert_array_equal(read("a"), read("b"))
    assert not np.array_equal(read("a"), read("c"))


def test_rerun_completes_an_interrupted_dataset_and_leaves_no_temporary_files(tmp_path):
    first = make_toy_dataset(tmp_path, tracks=1, test_tracks=1, seconds=1.0)
    before = soundfile.read(first[1] / "bass.wav")[0]
    (first[1] / "bass.wav").unlink()                                   # an interrupted run
    make_toy_dataset(tmp_path, tracks=1, test_tracks=1, seconds=1.0)
    np.testing.assert_array_equal(soundfile.read(first[1] / "bass.wav")[0], before)
    assert not list(tmp_path.rglob(".tmp-*"))


@pytest.mark.parametrize("kwargs,message", [({"tracks": 0}, "tracks"), ({"seconds": 0}, "seconds"),
                                            ({"fmt": "mp3"}, "fmt")])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_toy_dataset(tmp_path, **kwargs)


def test_cli_writes_a_dataset(tmp_path, capsys):
    assert main(["make-toy-dataset", "-o", str(tmp_path), "--tracks", "2", "--seconds", "1"]) == 0
    assert "3 synthetic tracks" in capsys.readouterr().out
    assert len(musdb.DB(root=tmp_path, is_wav=True, subsets="train").tracks) == 2
