"""What every fault test shares: a tiny model file, a short song, a private temporary
folder (so that leftovers of the process can be seen) and the one-line error check."""

import keras
import pytest
import soundfile

import tf_metatasnet as tm
from tf_metatasnet.data.synth.toy import synthesize_track

RATE = 22050


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    keras.utils.set_random_seed(11)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tm.save_model(tm.build_model("tiny"), path)
    return path


@pytest.fixture
def song(tmp_path):
    """``tmp_path/in/song.wav``: one second of a stereo synthetic song."""
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "song.wav"
    soundfile.write(path, synthesize_track(1.0, RATE, seed=2)["mixture"], RATE)
    return path


@pytest.fixture(autouse=True)
def private_tmpdir(tmp_path, monkeypatch):
    """The process's temporary files go to ``tmp_path/tmp``, checked empty by the tests."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder
