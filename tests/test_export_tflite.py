"""Per-instrument TFLite models: builtin ops only, equal to Keras in float32, metadata, runner."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import tf_metatasnet as tm
from tf_metatasnet.calibration import calibration_windows, generated_song, stage_signals
from tf_metatasnet.export_report import format_table, measure, si_sdr
from tf_metatasnet.folding import fold_generator
from tf_metatasnet.separator import Separator
from tf_metatasnet.tflite_export import QUANTIZATIONS, Chunking, export_tflite, op_report
from tf_metatasnet.tflite_runner import TFLiteBackend, load_tflite_separator, read_metadata

RATES = (8000, 16000, 32000)
CONTRACT_KEYS = {"format", "model_version", "instrument", "sources", "quantization", "base_rate",
                 "output_rate", "chunk", "context", "overlap", "window", "align", "inputs", "output",
                 "normalization", "channels", "resampling"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(7)
    model = tm.build_model("tiny")
    chunking = Chunking.from_seconds(8000, 20, chunk_seconds=0.64, context_seconds=0.32, overlap_seconds=0.16)
    calibration = calibration_windows(None, RATES, chunking.window, count=4)
    folder = tmp_path_factory.mktemp("tflite")
    paths = export_tflite(model, folder, ["vocals"], QUANTIZATIONS, chunking, calibration, version="test")
    return model, chunking, {path.rsplit("_", 1)[1][:-7]: path for path in paths}


def _window(chunking, noise=True, seed=0):
    if noise:
        rng = np.random.default_rng(seed)
        return [rng.standard_normal((1, chunking.window * r // 8000)).astype(np.float32) for r in RATES]
    return calibration_windows(None, RATES, chunking.window, count=1, seed=seed)[0]


def test_every_variant_has_only_builtin_ops_and_runs_without_flex(exported):
    _, chunking, paths = exported
    assert sorted(paths) == sorted(QUANTIZATIONS)
    for quantization, path in paths.items():
        with open(path, "rb") as file:
            report = op_report(file.read())
        assert report["builtin_only"] and report["select_tf_ops"] == [], (quantization, report)
        assert not any(op.startswith("Flex") for op in report["ops"])
        output = TFLiteBackend(path).run_window(_window(chunking))  # default resolver: no Flex delegate
        assert output.shape == (1, chunking.window * 4) and np.isfinite(output).all()


def test_float32_matches_keras(exported):
    model, chunking, paths = exported
    backend = TFLiteBackend(paths["float32"])
    for noise in (True, False):
        window = _window(chunking, noise)
        expected = model.separate(window).numpy()[:, 3]
        actual = backend.run_window(window)
        if noise:   # every STFT bin has energy: equal within float rounding
            np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)
        else:       # music has near-silent bins, where log10(|X|^2 + 1e-8) magnifies FFT rounding
            assert si_sdr(actual, expected) > 45


def test_metadata_follows_the_contract(exported):
    _, chunking, paths = exported
    for quantization, path in paths.items():
        with open(path[:-7] + ".json") as file:
            meta = json.load(file)
        assert set(meta) == CONTRACT_KEYS
        assert (meta["quantization"], meta["instrument"], meta["model_version"]) == (quantization, "vocals", "test")
        assert (meta["chunk"], meta["context"], meta["overlap"], meta["align"]) == (
            chunking.chunk, chunking.context, chunking.overlap, chunking.align) == (5120, 2560, 1280, 1280)
        assert meta["window"] == 10240 and meta["base_rate"] == 8000 and meta["output_rate"] == 32000
        assert sorted(i["index"] for i in meta["inputs"]) == [0, 1, 2]
        backend = TFLiteBackend(path)
        details = backend.interpreter.get_input_details()
        for item in meta["inputs"]:
            assert item["name"] == f"mixture_{item['sample_rate']}" and item["dtype"] == "float32"
            assert item["shape"] == [1, 10240 * item["factor"]] == list(details[item["index"]]["shape"])
        assert meta["output"] == {"name": "vocals", "index": 0, "sample_rate": 32000, "factor": 4,
                                  "shape": [1, 40960], "dtype": "float32"}


def test_runner_separates_songs_like_keras(exported):
    model, chunking, paths = exported
    folded = fold_generator(model)

    class KerasVocals:  # the float reference behind the same separator, chunking and padding
        rates, stride, sources, window, rescale = RATES, chunking.align, ("vocals",), chunking.window, "std"

        def __call__(self, inputs):
            return folded.separate(inputs).numpy()[:, 3:4]

    options = dict(chunk_seconds=0.64, context_seconds=0.32, overlap_seconds=0.16)
    # several windows; shorter than one window (zero-padded); shorter than one model frame
    for seconds in (3.3, 0.5, 0.1):
        song = np.stack([generated_song(seconds, seed=1), generated_song(seconds, seed=2)], axis=1)
        stems = load_tflite_separator(paths["float32"]).separate(song, 44100)
        reference = Separator(KerasVocals(), **options).separate(song, 44100)
        assert list(stems) == ["vocals"] and stems["vocals"].shape == song.shape
        assert si_sdr(stems["vocals"], reference["vocals"]) > 40


def test_report_measures_every_file(exported):
    model, _, paths = exported
    entries = measure(model, list(paths.values()), runs=1, threads=(1,))
    assert [e["quantization"] for e in entries] == list(paths)
    for entry in entries:
        assert entry["builtin_only"] and np.isfinite(entry["si_sdr_db"])
        assert entry["latency_s"]["1"] > 0 and entry["real_time_factor"]["1"] > 0
    assert entries[0]["si_sdr_db"] > 40          # float32
    assert "| vocals_float32.tflite |" in format_table(entries)


def test_metadata_and_option_errors_name_the_problem(exported, tmp_path):
    _, _, paths = exported
    source = Path(paths["float32"])
    meta = json.loads(source.with_suffix(".json").read_text())
    del meta["inputs"]
    broken = tmp_path / "vocals_float32.tflite"
    broken.write_bytes(source.read_bytes())
    broken.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"vocals_float32\.json: missing field\(s\) inputs"):
        read_metadata(broken)
    # One instrument cannot give "the others" of --two-stems.
    with pytest.raises(ValueError, match="needs a model of several stems"):
        load_tflite_separator(source).separate_file(tmp_path / "song.wav", tmp_path / "out",
                                                    two_stems="vocals")
