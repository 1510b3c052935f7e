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
from tf_metatasnet.tflite_weights import MIN_ELEMENTS, quantize_weights

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
    return model, chunking, {Path(path).stem.split("_", 1)[1]: path for path in paths}


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


def _constants(content):
    """``{tensor index: (tensor, its data as bytes)}`` of the flatbuffer's constant tensors."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    return {i: (t, model.buffers[t.buffer].data.tobytes()) for i, t in enumerate(model.subgraphs[0].tensors)
            if t.buffer and model.buffers[t.buffer].data is not None}


def _run(content, window):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner()
    return runner(**{f"mixture_{rate}": x for rate, x in zip(RATES, window)})["vocals"]


def test_int8_weights_stores_int8_and_computes_float32(exported):
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model, chunking, paths = exported
    float_content = Path(paths["float32"]).read_bytes()
    content = Path(paths["int8_weights"]).read_bytes()
    ops = op_report(content)["ops"]
    assert ops["DEQUANTIZE"] > 10 and ops["CAST"] >= 1
    floats, stored = _constants(float_content), _constants(content)
    types = schema.TensorType
    int8 = {i: (t, data) for i, (t, data) in stored.items() if t.type == types.INT8}
    assert len(int8) > 10 and not any(len(data) >= 4 * MIN_ELEMENTS and t.type == types.FLOAT32
                                      for t, data in stored.values())
    int16 = {i: data for i, (t, data) in stored.items() if t.type == types.INT16}
    assert int16 and all(np.array_equal(np.frombuffer(data, np.int16), np.frombuffer(floats[i][1], np.int32))
                         for i, data in int16.items())   # window indices, stored exactly
    # Independent expectation: the float32 model with every int8 weight rounded as stored
    # (each within half a step of the float32 weight) gives the same numbers.
    rounded = flatbuffer_utils.read_model_from_bytearray(bytearray(float_content))
    for index, (tensor, data) in int8.items():
        params = tensor.quantization
        assert params.zeroPoint is not None and not np.any(params.zeroPoint)
        shape = [int(d) for d in tensor.shape]
        scales = np.asarray(params.scale, np.float32)
        broadcast = [1] * len(shape)
        if len(scales) > 1:
            broadcast[params.quantizedDimension] = -1
        values = np.frombuffer(data, np.int8).reshape(shape) * scales.reshape(broadcast)
        original = np.frombuffer(floats[index][1], np.float32).reshape(shape)
        assert np.all(np.abs(values - original) <= 0.5001 * scales.reshape(broadcast)), tensor.name
        rounded.buffers[rounded.subgraphs[0].tensors[index].buffer].data = np.frombuffer(
            values.astype(np.float32).tobytes(), np.uint8)
    rounded_content = bytes(flatbuffer_utils.convert_object_to_bytearray(rounded))
    for noise in (True, False):
        window = _window(chunking, noise)
        np.testing.assert_allclose(_run(content, window), _run(rounded_content, window), atol=1e-5, rtol=0)
    music = _window(chunking, noise=False, seed=3)   # 37 to 38 dB over seeds 0 to 3
    assert si_sdr(_run(content, music), model.separate(music).numpy()[:, 3]) > 33


def test_int8_weights_is_under_30_percent_of_float32_where_weights_dominate():
    """The tiny model's file is mostly graph (int8 weights leave 53 % of it); where weights
    dominate, int8 storage leaves about a quarter (the ``small`` preset's vocals: 30 %)."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    kernels = [tf.constant(rng.uniform(-0.1, 0.1, shape).astype(np.float32))
               for shape in ((256, 384), (384, 384), (384, 128))]
    basis = tf.constant(rng.standard_normal((128, 64)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((8, 256), tf.float32)])
    def net(x):
        for kernel in kernels:
            x = tf.nn.leaky_relu(x @ kernel)
        return tf.concat([x, tf.transpose(basis)[:8]], axis=1)  # a constant that no quantizer takes

    converter = tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()], net)
    float_content = converter.convert()
    content = quantize_weights(float_content)
    assert len(content) <= 0.3 * len(float_content)
    assert op_report(content)["builtin_only"]
    x = rng.standard_normal((8, 256)).astype(np.float32)
    outputs = []
    for model in (float_content, content):
        interpreter = Interpreter(model_content=model)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    assert si_sdr(outputs[1], outputs[0]) > 35


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


def test_scale_axis_picks_the_axis_of_very_different_slices():
    """Rows of magnitudes 1e-3 ... 1: one scale per row rounds them far better than one
    scale for the tensor, and better than one per column; NumPy decides independently."""
    from tf_metatasnet.tflite_weights import dequantize_int8, quantize_int8, scale_axis

    rng = np.random.default_rng(0)
    values = (rng.standard_normal((64, 128)) * np.logspace(-3, 0, 64)[:, None]).astype(np.float32)
    errors = {}
    for axis in (None, 0, 1):
        q, scales = quantize_int8(values, axis)
        assert q.dtype == np.int8 and np.abs(q).max() <= 127
        assert scales.shape == ((1,) if axis is None else (values.shape[axis],))
        errors[axis] = float(np.sum((dequantize_int8(q, scales, axis) - values) ** 2))
    assert scale_axis(values) == 0 == min(errors, key=errors.get)
    assert errors[0] < errors[None] / 5
    # Slices shorter than MIN_SLICE get no scales of their own: one for the tensor.
    assert scale_axis(values[:, :8]) in (None, 1)
    assert scale_axis(np.zeros((4, 4), np.float32)) is None
