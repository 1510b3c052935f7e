"""Finding the external programs, and the one line that says how to install a missing one."""

import os
import subprocess

import pytest

from tf_metatasnet.errors import one_line
from tf_metatasnet.programs import find_program


def test_a_program_on_the_path_is_found(tmp_path, monkeypatch):
    program = tmp_path / "ffmpeg"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_program("ffmpeg", "mp3 files") == str(program)


def test_a_missing_program_says_what_needs_it_and_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        find_program("fluidsynth", "the fluidsynth renderer")
    assert str(error.value) == ("fluidsynth is not installed (needed for the fluidsynth renderer; "
                                "e.g. apt-get install fluidsynth)")
    with pytest.raises(FileNotFoundError, match="apt-get install fluid-soundfont-gm"):
        find_program("sf2", "sounds", package="fluid-soundfont-gm")


def test_one_line_prefers_the_last_line_a_program_printed():
    failed = subprocess.CalledProcessError(1, ["ffmpeg"], stderr=b"reading\nInvalid data found\n")
    assert one_line(failed) == "Invalid data found"
    assert one_line(ValueError("first line\nsecond line")) == "first line"
    assert one_line(KeyError()) == "KeyError" and one_line(OSError(os.strerror(2))) == "No such file or directory"
