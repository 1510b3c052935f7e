"""Atomic writes: the file appears whole or not at all."""

import json
import os

import pytest

from tf_metatasnet.atomic import (
    PendingFile,
    write_atomically,
    write_bytes_atomically,
    write_json_atomically,
    write_text_atomically,
)


def test_a_write_replaces_the_file_only_once_it_is_complete(tmp_path):
    path = tmp_path / "sub" / "out.json"
    write_bytes_atomically(path, b"first")
    assert path.read_bytes() == b"first"
    seen = []

    def write(temporary):
        seen.append(temporary)
        assert temporary.endswith(".json") and os.path.dirname(temporary) == str(path.parent)
        with open(temporary, "wb") as file:
            file.write(b"second")
        assert path.read_bytes() == b"first"       # not yet replaced

    write_atomically(path, write)
    assert path.read_bytes() == b"second" and not os.path.exists(seen[0])
    assert sorted(os.listdir(path.parent)) == ["out.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def fail(temporary):
        with open(temporary, "wb") as file:
            file.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(path, fail)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_the_temporary_keeps_the_whole_name_so_keras_weights_files_can_be_written(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = tmp_path / "best.weights.h5"
    write_atomically(path, lambda temporary: model.save_weights(temporary))   # Keras checks the suffix
    restored = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    restored.load_weights(path)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        assert (a == b).all()
    assert os.listdir(tmp_path) == ["best.weights.h5"]


def test_text_is_written_as_utf8(tmp_path):
    path = tmp_path / "scores.json"
    write_text_atomically(path, "{\"other\": \"\u00e9\"}\n")
    assert path.read_bytes() == "{\"other\": \"\u00e9\"}\n".encode("utf-8")


def test_a_pending_file_commits_or_discards_and_keeps_the_umasks_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with PendingFile(tmp_path / "song" / "drums.stem.mp4", suffix=".part.mp4") as pending:
            assert pending.temporary.endswith("drums.stem.mp4.part.mp4")
            assert os.path.basename(pending.temporary).startswith(".tmp-")
            with open(pending.temporary, "wb") as file:
                file.write(b"stem")
        assert (tmp_path / "song" / "drums.stem.mp4").read_bytes() == b"stem"
        assert os.stat(tmp_path / "song" / "drums.stem.mp4").st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
    with pytest.raises(RuntimeError):
        with PendingFile(tmp_path / "song" / "bass.wav") as pending:
            open(pending.temporary, "wb").close()
            raise RuntimeError("interrupted")
    assert sorted(os.listdir(tmp_path / "song")) == ["drums.stem.mp4"]
    pending = PendingFile(tmp_path / "song" / "other.wav")
    pending.discard()                                   # nothing written: nothing to remove
    assert sorted(os.listdir(tmp_path / "song")) == ["drums.stem.mp4"]


def test_json_is_indented_with_a_final_newline_and_can_refuse_nan(tmp_path):
    write_json_atomically(tmp_path / "scores.json", {"drums": 1.5})
    assert (tmp_path / "scores.json").read_text() == '{\n  "drums": 1.5\n}\n'
    with pytest.raises(ValueError):
        write_json_atomically(tmp_path / "scores.json", {"drums": float("nan")}, allow_nan=False)
    assert json.loads((tmp_path / "scores.json").read_text()) == {"drums": 1.5}
    assert os.listdir(tmp_path) == ["scores.json"]
