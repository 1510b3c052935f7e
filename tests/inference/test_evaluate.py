"""`metatasnet evaluate` on a toy MUSDB18, against museval called directly."""

import json
import os

import museval
import numpy as np
import pytest

import tf_metatasnet as tm
from tf_metatasnet.cli import main
from tf_metatasnet.data.musdb import load_musdb
from tf_metatasnet.inference.evaluate import METRICS, evaluate_tracks, format_table, score_table
from tf_metatasnet.inference.separator import Separator

SOURCES = ("drums", "bass", "other", "vocals")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = tm.build_model("tiny")
    path = tmp_path_factory.mktemp("eval-model") / "tiny.keras"
    tm.save_model(model, path)
    return model, str(path)


def _separator(model):
    return Separator(model, chunk_seconds=3.0, context_seconds=1.0, jit_compile=False)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["wav", "stem"])
def test_table_equals_museval_on_the_same_estimates(tiny, layout, request, tmp_path):
    root = request.getfixturevalue(f"toy_musdb_{layout}")
    model, _ = tiny
    tracks = load_musdb(root, is_wav=layout == "wav", subset="test")
    assert len(tracks) == 2
    if layout == "stem":  # BSS Eval is slow: one track is enough for the second layout
        tracks = tracks[:1]
    store = evaluate_tracks(_separator(model), tracks, output_dir=tmp_path, jobs=1)
    table = score_table(store)

    # Independent: separate again, score with museval directly, aggregate with pandas.
    direct = museval.EvalStore(frames_agg="median", tracks_agg="median")
    for track in load_musdb(root, is_wav=layout == "wav", subset="test")[:len(tracks)]:
        estimates = _separator(model).separate(np.asarray(track.audio, np.float32), track.rate)
        direct.add_track(museval.eval_mus_track(track, estimates))
    frames = direct.df.groupby(["track", "target", "metric"])["score"].median()
    expected = frames.groupby(["target", "metric"]).median()
    assert set(table) == set(SOURCES)
    for source in SOURCES:
        for metric in METRICS:
            assert table[source][metric] == pytest.approx(expected[(source, metric)], abs=1e-6)
            assert np.isfinite(table[source][metric])

    for track in tracks:  # museval's per-track JSON
        with open(tmp_path / "test" / f"{track.name}.json") as file:
            scores = json.load(file)
        assert {target["name"] for target in scores["targets"]} == set(SOURCES)
    with open(tmp_path / "scores.json") as file:
        assert json.load(file) == table
    assert os.path.exists(tmp_path / "results.pandas")


@pytest.mark.slow
def test_cli_prints_and_saves_the_table(tiny, toy_musdb_wav, tmp_path, capsys):
    _, model_path = tiny
    tracks = load_musdb(toy_musdb_wav, is_wav=True, subset="test")
    status = main(["evaluate", "--musdb", str(toy_musdb_wav), "--is-wav", "--model", model_path,
                   "--tracks", tracks[0].name, "-o", str(tmp_path / "eval"), "--no-xla",
                   "--chunk-seconds", "3", "--jobs", "2"])
    out = capsys.readouterr().out
    assert status == 0
    assert "| source | SDR | SIR | SAR | ISR |" in out and "| vocals |" in out
    with open(tmp_path / "eval" / "scores.json") as file:
        saved = json.load(file)
    assert format_table(saved) in out
    assert os.listdir(tmp_path / "eval" / "test") == [f"{tracks[0].name}.json"]


def test_missing_dataset_track_or_layout_is_a_clear_error(toy_musdb_wav, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such MUSDB18 folder"):
        load_musdb(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no track named 'Nope'"):
        load_musdb(toy_musdb_wav, is_wav=True, tracks=["Nope"])
    with pytest.raises(ValueError, match="--is-wav"):
        load_musdb(toy_musdb_wav, is_wav=False)


@pytest.mark.slow
def test_cli_baseline_scores_the_mixture_as_every_stem(toy_musdb_wav, tmp_path, capsys):
    """`--baseline` scores gain * mixture for every stem, as museval does on those estimates."""
    track = load_musdb(toy_musdb_wav, is_wav=True, subset="test")[0]
    status = main(["evaluate", "--musdb", str(toy_musdb_wav), "--is-wav", "--baseline", "mixture/4",
                   "--tracks", track.name, "-o", str(tmp_path / "eval")])
    out = capsys.readouterr().out
    assert status == 0 and "the baseline 'mixture/4'" in out
    with open(tmp_path / "eval" / "scores.json") as file:
        saved = json.load(file)
    quarter = np.asarray(track.audio, np.float32) * 0.25
    direct = museval.EvalStore(frames_agg="median", tracks_agg="median")
    direct.add_track(museval.eval_mus_track(track, {source: quarter for source in SOURCES}))
    expected = direct.df.groupby(["target", "metric"])["score"].median()
    for source in SOURCES:
        assert saved[source]["SDR"] == pytest.approx(expected[(source, "SDR")], abs=1e-6)
    assert main(["evaluate", "--musdb", str(toy_musdb_wav), "--is-wav", "--baseline", "mixture",
                 "--model", "m.keras", "-o", str(tmp_path / "x")]) == 1
    assert "give a model (--model, --server) or --baseline, not both" in capsys.readouterr().err
