"""``evaluate`` names a damaged track in one line and leaves no empty or partial scores."""

import json

import numpy as np
import pytest
import soundfile
from snapshot import leftovers, one_line_error, snapshot

from tf_metatasnet.cli import main
from tf_metatasnet.data.synth.dataset import make_toy_dataset


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "musdb"
    make_toy_dataset(root, tracks=1, test_tracks=2, seconds=2.0, seed=4)
    return root


def _evaluate(dataset, out):
    return main(["evaluate", "--musdb", str(dataset), "--is-wav", "--baseline", "mixture/4", "-o", str(out)])


@pytest.mark.slow  # evaluates a whole toy dataset (about 10 s)
def test_a_missing_stem_is_named_and_no_empty_score_is_left(dataset, tmp_path, capsys):
    second = dataset / "test" / "Toy Artist - Toy Test Song 002"
    (second / "other.wav").unlink()
    before = snapshot(dataset)
    assert _evaluate(dataset, tmp_path / "out") == 1
    error = one_line_error(capsys, "Toy Test Song 002")
    assert "other" in error and snapshot(dataset) == before
    scores = sorted(p.name for p in (tmp_path / "out").rglob("*.json"))
    assert scores == ["Toy Artist - Toy Test Song 001.json"]             # the good track, whole
    json.loads((tmp_path / "out" / "test" / scores[0]).read_text())
    assert not leftovers(tmp_path)


def test_a_stem_of_another_length_is_named(dataset, tmp_path, capsys):
    first = dataset / "test" / "Toy Artist - Toy Test Song 001"
    audio, rate = soundfile.read(first / "bass.wav")
    soundfile.write(first / "bass.wav", np.concatenate([audio, audio[:100]]), rate, subtype="PCM_16")
    assert _evaluate(dataset, tmp_path / "out") == 1
    error = one_line_error(capsys, "Toy Test Song 001")
    assert "its bass stem has shape (88300, 2), the mixture (88200, 2)" in error
    assert not list((tmp_path / "out").rglob("*.json")) and not leftovers(tmp_path)
