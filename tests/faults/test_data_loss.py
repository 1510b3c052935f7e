"""Nothing a user asks for overwrites an input, another output, or anything outside -o:
the whole call is refused before a byte is written."""

import os
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snapshot import leftovers, one_line_error, snapshot

from tf_metatasnet.cli import main
from tf_metatasnet.inference.outputs import OutputError, plan_outputs, track_name

STEMS = ("drums", "bass", "other", "vocals")


def _refused(capsys, argv, tmp_path, *names):
    before = snapshot(tmp_path)
    assert main(argv) == 1
    message = one_line_error(capsys, *names)
    assert snapshot(tmp_path) == before, "a refused call changed files"
    assert not leftovers(tmp_path)
    return message


@pytest.mark.parametrize("template, message", [
    ("{stem}/../{track}.{ext}", "over this input"),                    # the input itself
    ("../{track}/{stem}.{ext}", "outside the output folder"),          # a sibling of -o
    ("/tmp/{track}-{stem}.{ext}", "outside the output folder"),        # an absolute path
    ("{stem}/..", "outside the output folder"),                        # -o itself
    ("{track}/{stem}/..", "would be written there"),                   # one folder for all stems
    ("{track}.{ext}", "has no {stem}"),                                # every stem on one file
    ("{unknown}/{stem}.{ext}", "unknown field {unknown}"),
    ("{stem.__class__}.{ext}", "unknown field {stem.__class__}"),
    ("{stem", "not a template"),
    ("", "the template is empty"),
])
def test_templates_that_would_lose_data_are_refused(template, message, song, tiny_model_file, tmp_path,
                                                   capsys):
    argv = ["separate", str(song), "-o", str(song.parent), "--model", str(tiny_model_file),
            "--filename", template]
    assert message in _refused(capsys, argv, tmp_path)


def test_two_songs_on_one_path_are_refused(song, tiny_model_file, tmp_path, capsys):
    other = song.parent / "other.wav"
    other.write_bytes(song.read_bytes())
    argv = ["separate", str(song), str(other), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file),
            "--filename", "{stem}.{ext}"]
    error = _refused(capsys, argv, tmp_path, song, other, tmp_path / "out" / "drums.wav")
    assert "would be written there" in error and not (tmp_path / "out").exists()


def test_a_name_that_is_no_track_name_is_refused(song, tiny_model_file, tmp_path, capsys):
    dots = song.parent / "...stem.wav"          # track name ".." would write beside -o
    song.rename(dots)
    argv = ["separate", str(dots), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file)]
    assert "track name '..'" in _refused(capsys, argv, tmp_path, dots)


@pytest.mark.slow
def test_rerunning_replaces_ones_own_stems(song, tiny_model_file, tmp_path):
    argv = ["separate", str(song), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file), "--no-xla",
            "--stems", "vocals"]
    assert main(argv) == 0
    vocals = tmp_path / "out" / "song" / "vocals.wav"
    vocals.write_bytes(b"stale")
    assert main(argv) == 0 and vocals.read_bytes()[:4] == b"RIFF"
    assert not leftovers(tmp_path)


_PIECES = st.sampled_from(["{track}", "{stem}", "{ext}", "/", "..", ".", "a", "-", "_", "x.y", "./", "../"])
_NAMES = st.text(alphabet=string.ascii_letters + string.digits + ". -_", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(_PIECES, min_size=1, max_size=8), names=st.lists(_NAMES, min_size=1, max_size=3),
       nested=st.booleans())
def test_no_planned_path_leaves_the_output_folder_or_lands_on_an_input(pieces, names, nested, tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    output = root / "out"
    inputs = [str((output if nested else root) / f"{name}.wav") for name in names]
    template = "".join(pieces)
    try:
        plan = plan_outputs(inputs, str(output), STEMS, template, "wav")
    except OutputError as error:
        assert "\n" not in str(error)
        return
    paths = [path for targets in plan.values() for path in targets.values()]
    assert len(set(paths)) == len(paths) == len(set(inputs)) * len(STEMS)
    real_output = str(output.resolve())
    real_inputs = {str(Path(path).resolve()) for path in inputs}
    for path in paths:
        resolved = str(Path(path).resolve())
        assert resolved.startswith(real_output + os.sep) and resolved not in real_inputs
    assert all(track_name(path) not in ("", ".", "..") for path in inputs)
