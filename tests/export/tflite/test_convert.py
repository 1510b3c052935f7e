"""Per-instrument TFLite models: builtin ops only, equal to Keras in float32, metadata, runner."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import tf_metatasnet as tm
from tf_metatasnet.cli import build_parser
from tf_metatasnet.export.calibration import calibration_windows, generated_song
from tf_metatasnet.export.folding import fold_generator
from tf_metatasnet.export.report import format_table, measure, report_song, si_sdr
from tf_metatasnet.export.tflite.convert import (
    FLOAT16_PATTERNS,
    INT8_FLOAT16_PATTERNS,
    float_compute_weights,
    op_report,
)
from tf_metatasnet.export.tflite.export import export_tflite, statistics_windows
from tf_metatasnet.export.tflite.flatbuffer import constants as named_constants
from tf_metatasnet.export.tflite.options import CHUNK_SECONDS, CONTEXT_SECONDS, OVERLAP_SECONDS, QUANTIZATIONS, Chunking
from tf_metatasnet.export.tflite.weights import (
    MIN_ELEMENTS,
    dequantize_int8,
    fc_input_hessians,
    fully_connected_weights,
    gptq_round,
    inside,
    quantize_int8,
    quantize_weights,
    zero_border,
)
from tf_metatasnet.inference.backends.base import Backend
from tf_metatasnet.inference.backends.tflite import TFLiteBackend, read_metadata
from tf_metatasnet.inference.separator import Separator, make_separator
from tf_metatasnet.presets import get_config

RATES = (8000, 16000, 32000)
CONTRACT_KEYS = {"format", "model_version", "instrument", "sources", "quantization", "base_rate",
                 "output_rate", "chunk", "context", "overlap", "window", "align", "inputs", "output",
                 "normalization", "channels", "resampling", "weight_rounding"}


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


def _padded_back(model, index, values):
    """``values`` of stored constant ``index`` with the zeros that a ``PAD`` after its
    ``DEQUANTIZE`` puts back (``weights.zero_border``), if any."""
    from tensorflow.lite.python import schema_py_generated as schema

    graph = model.subgraphs[0]

    def reader(tensor):
        (operator,) = [op for op in graph.operators if tensor in list(op.inputs)][:1]
        return operator, model.operatorCodes[operator.opcodeIndex].builtinCode

    dequantize, code = reader(index)
    assert code == schema.BuiltinOperator.DEQUANTIZE
    if not graph.tensors[int(dequantize.outputs[0])].name.endswith(b"/trimmed"):
        return values                                      # (a PAD reading it is the model's own)
    pad, code = reader(int(dequantize.outputs[0]))
    assert code == schema.BuiltinOperator.PAD
    paddings = graph.tensors[int(pad.inputs[1])]
    border = np.frombuffer(model.buffers[paddings.buffer].data.tobytes(), np.int32).reshape(-1, 2)
    return np.pad(values, border)


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
    # (each within half a step of the float32 weight, but the matmul weights, which GPTQ
    # rounds) and the float16 ones gives the same numbers.
    rounded = flatbuffer_utils.read_model_from_bytearray(bytearray(float_content))
    stored_model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    matmul = {name for name in fully_connected_weights(float_content)}
    halves = {i: data for i, (t, data) in stored.items() if t.type == types.FLOAT16}
    assert halves
    for index, data in halves.items():
        rounded.buffers[rounded.subgraphs[0].tensors[index].buffer].data = np.frombuffer(
            np.frombuffer(data, np.float16).astype(np.float32).tobytes(), np.uint8)
    trimmed = gptq = 0
    for index, (tensor, data) in int8.items():
        params = tensor.quantization
        assert params.zeroPoint is not None and not np.any(params.zeroPoint)
        shape = [int(d) for d in tensor.shape]
        scales = np.asarray(params.scale, np.float32)
        broadcast = [1] * len(shape)
        if len(scales) > 1:
            broadcast[params.quantizedDimension] = -1
        values = np.frombuffer(data, np.int8).reshape(shape) * scales.reshape(broadcast)
        half_step = np.broadcast_to(0.5001 * scales.reshape(broadcast), values.shape)
        values, half_step = _padded_back(stored_model, index, values), _padded_back(stored_model, index, half_step)
        trimmed += values.size > np.prod(shape)
        original = np.frombuffer(floats[index][1], np.float32).reshape(values.shape)
        if tensor.name.decode() in matmul:
            gptq += np.any(np.abs(values - original) > half_step)
        else:
            assert np.all(np.abs(values - original) <= half_step), tensor.name
        rounded.buffers[rounded.subgraphs[0].tensors[index].buffer].data = np.frombuffer(
            values.astype(np.float32).tobytes(), np.uint8)
    assert trimmed and gptq                          # the encoders' padded filters; GPTQ's rounding
    rounded_content = bytes(flatbuffer_utils.convert_object_to_bytearray(rounded))
    for noise in (True, False):
        window = _window(chunking, noise)
        np.testing.assert_allclose(_run(content, window), _run(rounded_content, window), atol=1e-5, rtol=0)
    music = _window(chunking, noise=False, seed=3)   # 37 to 38 dB over seeds 0 to 3
    assert si_sdr(_run(content, music), model.separate(music).numpy()[:, 3]) > 33


def test_int8_weights_and_dynamic_are_under_30_percent_of_float32_where_weights_dominate():
    """The tiny model's file is mostly graph (int8 weights leave 53 % of it); where weights
    dominate, int8 storage leaves about a quarter (the ``small`` preset's vocals: 29 %).
    The converter's dynamic range alone leaves the concatenated constant in float32, and
    8 bytes of zero point a channel."""
    import tensorflow as tf

    make, _ = _dense_net()
    float_content = make().convert()
    converter = make()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter_dynamic = converter.convert()
    x = np.random.default_rng(9).standard_normal((8, 256)).astype(np.float32)
    expected = _invoke(float_content, x)
    dynamic = quantize_weights(converter_dynamic)
    assert len(dynamic) < len(converter_dynamic) - 3 * 8 * 128   # the (folded) constant, zero points
    for content in (quantize_weights(float_content), dynamic):
        assert len(content) <= 0.3 * len(float_content)
        assert op_report(content)["builtin_only"]
        assert si_sdr(_invoke(content, x), expected) > 35


def test_dynamic_and_int8_store_the_constants_their_quantizers_leave_in_float32(exported):
    """The converter's ``dynamic`` and ``int8`` leave the constants of ``PACK``, ``PAD``...
    in float32; ``convert`` stores them small too, and packs the converter's own int8
    weights' all-zero zero points once per length."""
    from tensorflow.lite.python import schema_py_generated as schema

    types = schema.TensorType
    for quantization in ("dynamic", "int8"):
        content = Path(exported[2][quantization]).read_bytes()
        stored = _constants(content)
        assert not any(t.type == types.FLOAT32 and len(data) >= 4 * MIN_ELEMENTS
                       for t, data in stored.values()), quantization
        assert op_report(content)["ops"]["DEQUANTIZE"] > 0
        weights = [t for t, _ in stored.values() if t.type == types.INT8 and t.quantization is not None
                   and t.quantization.scale is not None and len(t.quantization.scale) > 1]
        assert weights and all(not np.any(t.quantization.zeroPoint) for t in weights)


def _dense_net(outputs=384):
    """A float32 TFLite model of three dense layers and a constant no quantizer takes, and
    a function making its representative inputs."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    kernels = [tf.constant(rng.uniform(-0.1, 0.1, shape).astype(np.float32))
               for shape in ((256, 384), (384, outputs), (outputs, 128))]
    biases = [tf.constant(rng.uniform(-0.1, 0.1, kernel.shape[1]).astype(np.float32)) for kernel in kernels]
    basis = tf.constant(rng.standard_normal((128, 64)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((8, 256), tf.float32)])
    def net(x):
        for kernel, bias in zip(kernels, biases):
            x = tf.nn.leaky_relu(x @ kernel + bias)
        return tf.concat([x, tf.transpose(basis)[:8]], axis=1)  # (8, 192)

    def converter():
        return tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()], net)

    def representative():
        for seed in range(4):
            yield [np.random.default_rng(seed).standard_normal((8, 256)).astype(np.float32)]

    return converter, representative


def _invoke(content, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_storing_a_quantized_models_constants_small_leaves_its_integer_kernels_alone():
    """In a full-integer model the int32 biases (here 640 of them, above ``MIN_ELEMENTS``)
    belong to int8 kernels: they stay constants; the output is the integer model's, bit for bit."""
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema

    make, representative = _dense_net(outputs=640)
    converter = make()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    integer = converter.convert()
    content = quantize_weights(integer)
    biases = [t for t, data in _constants(content).values()
              if t.type == schema.TensorType.INT32 and len(data) == 4 * 640]
    assert biases and "CAST" not in op_report(content)["ops"]
    x = next(representative())[0]
    np.testing.assert_array_equal(_invoke(content, x), _invoke(integer, x))
    assert len(content) < len(integer)       # the concatenated float32 constant, stored in int8


def test_hybrid_weights_given_as_floats_are_stored_as_int8_weights_and_computed_in_float():
    """``quantize_weights(float_weights=...)`` on a dynamic-range model: the hybrid
    kernels' int8 weights are stored again from the float model's values, as
    ``int8_weights`` stores them, behind ``DEQUANTIZE``: with all three given, the output
    is the weight-only int8 model's."""
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils


    converter, _ = _dense_net(outputs=320)
    plain = converter().convert()
    quantizing = converter()
    quantizing.optimizations = [tf.lite.Optimize.DEFAULT]
    dynamic = quantizing.convert()
    kernels = {name: values for name, values in named_constants(plain, [".*"]).items()
               if values.shape in ((384, 256), (320, 384), (128, 320))}   # (out, in), as FC stores them
    assert len(kernels) == 3
    mixed = quantize_weights(dynamic, float_weights=kernels)

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(mixed))
    graph = model.subgraphs[0]
    for index, tensor in enumerate(graph.tensors):
        if tensor.name.decode() in kernels:
            assert tensor.type == schema.TensorType.INT8
            (reader,) = [op for op in graph.operators if index in list(op.inputs)]
            assert model.operatorCodes[reader.opcodeIndex].builtinCode == schema.BuiltinOperator.DEQUANTIZE

    x = np.random.default_rng(9).standard_normal((8, 256)).astype(np.float32)
    weight_only = _invoke(quantize_weights(plain), x)
    np.testing.assert_allclose(_invoke(mixed, x), weight_only, atol=1e-6, rtol=0)
    assert np.abs(_invoke(quantize_weights(dynamic), x) - weight_only).max() > 1e-3   # hybrid differs
    with pytest.raises(ValueError, match="shape"):
        quantize_weights(dynamic, float_weights={name: values.T for name, values in kernels.items()})


def _output_error(q, scales, weights, x):
    """``|| x (Q - W)^T ||^2`` in NumPy: the layer's output error from rounding ``weights``."""
    return float(np.sum(np.square(x @ (dequantize_int8(q, scales, 0) - weights).T)))


def test_gptq_rounds_as_nearest_for_uncorrelated_inputs_and_better_for_correlated_ones():
    rng = np.random.default_rng(4)
    weights = rng.standard_normal((48, 96)).astype(np.float32) * rng.uniform(0.1, 2.0, (48, 1)).astype(np.float32)
    nearest, nearest_scales = quantize_int8(weights, 0)
    q, scales = gptq_round(weights, np.diag(rng.uniform(0.5, 2.0, 96)))
    np.testing.assert_array_equal(q, nearest)
    np.testing.assert_array_equal(scales, nearest_scales)
    # Correlated inputs, as a layer's inputs are: fewer sources than channels, plus a little noise.
    mixing = rng.standard_normal((24, 96))

    def inputs(rows):
        return rng.standard_normal((rows, 24)) @ mixing + 0.05 * rng.standard_normal((rows, 96))

    x = inputs(4000)
    q, scales = gptq_round(weights, x.T @ x)
    assert q.dtype == np.int8 and np.abs(q.astype(int)).max() <= 127
    np.testing.assert_array_equal(scales, nearest_scales)                    # same scales: same size
    unseen = inputs(1000)                                                     # rows it was not fitted on
    gain = 10 * np.log10(_output_error(nearest, scales, weights, unseen) / _output_error(q, scales, weights, unseen))
    assert gain > 6.0, gain
    with pytest.raises(ValueError, match="square second-moment matrix"):
        gptq_round(weights, np.eye(48))


def test_fc_input_hessians_are_the_second_moments_of_each_matmuls_input():
    """Checked against NumPy: the first layer's input is the model's, the second's the
    first layer's leaky-ReLU output."""

    converter, representative = _dense_net()
    plain = converter().convert()
    constants = named_constants(plain, [".*"])
    by_shape = {values.shape: name for name, values in constants.items()}
    first, second = by_shape[(384, 256)], by_shape[(384, 384)]    # (out, in), as FC stores them
    (name, bias), _, _ = _dense_layers(plain)
    assert name == first
    feeds = list(representative())[:2]                                       # [x] each: no signature
    hessians = fc_input_hessians(plain, feeds)
    assert {first, second} <= set(hessians) and len(hessians) == 3
    x = np.concatenate([feed[0] for feed in feeds]).astype(np.float64)
    np.testing.assert_allclose(hessians[first], x.T @ x, rtol=1e-4, atol=1e-3)
    hidden = x @ constants[first].T.astype(np.float64) + bias
    hidden = np.where(hidden > 0, hidden, 0.2 * hidden)                      # tf.nn.leaky_relu
    np.testing.assert_allclose(hessians[second], hidden.T @ hidden, rtol=1e-4, atol=1e-3)


def _dense_layers(content):
    """The ``FULLY_CONNECTED`` layers of a float32 model in order: (weight name, bias values)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    layers = []
    for op in graph.operators:
        if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.FULLY_CONNECTED:
            weight, bias = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
            layers.append((weight.name.decode(), np.frombuffer(bytes(model.buffers[bias.buffer].data), np.float32)))
    return layers


def test_given_rounding_is_stored_for_float_weights_and_in_place_of_hybrid_ones():
    """``quantize_weights(rounding=...)``: a float32 model's weights are stored as the given
    int8 values (the output is NumPy's with them); a dynamic-range model's hybrid kernels
    get the given values in place and stay hybrid."""
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils


    converter, representative = _dense_net()
    plain = converter().convert()
    quantizing = converter()
    quantizing.optimizations = [tf.lite.Optimize.DEFAULT]
    dynamic = quantizing.convert()
    kernels = {name: values for name, values in named_constants(plain, [".*"]).items()
               if values.shape in ((384, 256), (384, 384), (128, 384))}
    hessians = fc_input_hessians(plain, representative())
    rounding = {name: gptq_round(values, hessians[name]) for name, values in kernels.items()}
    assert any(np.any(q != quantize_int8(kernels[name], 0)[0]) for name, (q, _) in rounding.items())

    for content, reader in ((quantize_weights(plain, rounding=rounding), schema.BuiltinOperator.DEQUANTIZE),
                            (quantize_weights(dynamic, rounding=rounding), schema.BuiltinOperator.FULLY_CONNECTED)):
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
        graph = model.subgraphs[0]
        for index, tensor in enumerate(graph.tensors):
            if tensor.name.decode() in rounding:
                q, scales = rounding[tensor.name.decode()]
                stored = np.frombuffer(bytes(model.buffers[tensor.buffer].data), np.int8).reshape(q.shape)
                np.testing.assert_array_equal(stored, q)
                np.testing.assert_array_equal(tensor.quantization.scale, scales)
                (user,) = [op for op in graph.operators if index in list(op.inputs)]
                assert model.operatorCodes[user.opcodeIndex].builtinCode == reader

    x = np.random.default_rng(9).standard_normal((8, 256)).astype(np.float32)
    expected = x.astype(np.float64)
    for name, bias in _dense_layers(plain):                                  # NumPy, rounded weights
        expected = expected @ dequantize_int8(*rounding[name], 0).T.astype(np.float64) + bias
        expected = np.where(expected > 0, expected, 0.2 * expected)           # tf.nn.leaky_relu
    output = _invoke(quantize_weights(plain, rounding=rounding), x)
    np.testing.assert_allclose(output[:, :128], expected, rtol=1e-4, atol=1e-4)
    hybrid = _invoke(quantize_weights(dynamic, rounding=rounding), x)       # + its inputs' rounding
    assert si_sdr(hybrid[:, :128], expected) > 30.0
    with pytest.raises(ValueError, match="shape"):
        quantize_weights(plain, rounding={name: (q.T, s) for name, (q, s) in rounding.items()})


def test_dynamic_computes_the_decoder_and_last_encoder_matmuls_in_float32(exported):
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = set(float_compute_weights(Path(exported[2]["float32"]).read_bytes()))
    assert any(name.startswith("decoder") for name in names)
    assert any(name.startswith("stage_2") for name in names) and not any("stage_1" in n for n in names)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(Path(exported[2]["dynamic"]).read_bytes()))
    graph = model.subgraphs[0]
    codes = {i: model.operatorCodes[op.opcodeIndex].builtinCode for i, op in enumerate(graph.operators)}
    for index, tensor in enumerate(graph.tensors):
        if tensor.name.decode() in names:
            readers = [i for i, op in enumerate(graph.operators) if index in list(op.inputs)]
            assert [codes[i] for i in readers] == [schema.BuiltinOperator.DEQUANTIZE]


def test_float16_constants_are_stored_in_half_precision_behind_dequantize(exported):
    import re

    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    converter, _ = _dense_net()
    plain = converter().convert()
    layers = _dense_layers(plain)
    content = quantize_weights(plain, float16=[re.escape(name) for name, _ in layers])
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    kernels = {}
    for index, tensor in enumerate(graph.tensors):
        if tensor.name.decode() in dict(layers):
            assert tensor.type == schema.TensorType.FLOAT16
            (user,) = [op for op in graph.operators if index in list(op.inputs)]
            code = model.operatorCodes[user.opcodeIndex]
            assert (code.builtinCode, code.version) == (schema.BuiltinOperator.DEQUANTIZE, 3)
            kernels[tensor.name.decode()] = np.frombuffer(bytes(model.buffers[tensor.buffer].data), np.float16)
    assert len(kernels) == 3
    x = np.random.default_rng(2).standard_normal((8, 256)).astype(np.float32)
    expected = x.astype(np.float64)
    for name, bias in layers:                                                 # NumPy, float16 weights
        expected = expected @ kernels[name].reshape(-1, expected.shape[1]).T.astype(np.float64) + bias
        expected = np.where(expected > 0, expected, 0.2 * expected)
    np.testing.assert_allclose(_invoke(content, x)[:, :128], expected, rtol=1e-4, atol=1e-4)

    # In the exported int8 variants: the norms', depthwise taps' and (but in int8) decoder
    # filters' constants.
    def stored(model, patterns):
        return [tensor for tensor in model.subgraphs[0].tensors
                if any(re.search(pattern, tensor.name.decode()) for pattern in patterns)
                and tensor.buffer and model.buffers[tensor.buffer].data is not None
                and np.prod(tensor.shape) >= MIN_ELEMENTS]

    for quantization in ("dynamic", "int8_weights", "int8"):
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(Path(exported[2][quantization]).read_bytes()))
        patterns = INT8_FLOAT16_PATTERNS if quantization == "int8" else FLOAT16_PATTERNS
        types = {tensor.type for tensor in stored(model, patterns)}    # int8 kernels' own weights stay int8
        assert schema.TensorType.FLOAT16 in types and schema.TensorType.FLOAT32 not in types, quantization
        if quantization == "int8":
            decoder = stored(model, [r"^decoder(_\d+)?/Pad"])
            assert decoder and {tensor.type for tensor in decoder} == {schema.TensorType.INT8}


def test_metadata_follows_the_contract(exported):
    _, chunking, paths = exported
    for quantization, path in paths.items():
        with open(path[:-7] + ".json") as file:
            meta = json.load(file)
        assert set(meta) == CONTRACT_KEYS
        assert (meta["quantization"], meta["instrument"], meta["model_version"]) == (quantization, "vocals", "test")
        assert meta["weight_rounding"] == {"dynamic": "gptq", "int8_weights": "gptq", "int8": "nearest"}.get(quantization)
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

    class KerasVocals(Backend):  # the float reference behind the same separator, chunking and padding
        name, rates, stride, sources = "keras-vocals", RATES, chunking.align, ("vocals",)
        window, rescale = chunking.window, "std"

        def separate_chunk(self, inputs):
            return folded.separate(inputs).numpy()[:, 3:4]

    options = dict(chunk_seconds=0.64, context_seconds=0.32, overlap_seconds=0.16)
    # several windows; shorter than one window (zero-padded); shorter than one model frame
    for seconds in (3.3, 0.5, 0.1):
        song = np.stack([generated_song(seconds, seed=1), generated_song(seconds, seed=2)], axis=1)
        stems = make_separator("tflite", paths["float32"]).separate(song, 44100)
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


def test_report_separates_the_song_it_is_given(exported):
    model, _, paths = exported
    generated = (generated_song(6.0, seed=4), 44100)

    def int8_si_sdr(song):
        return measure(model, [paths["int8"]], song=song, runs=1, threads=(1,))[0]["si_sdr_db"]

    default = int8_si_sdr(None)                  # the bundled demo song
    assert default == int8_si_sdr(report_song()[:2])
    assert int8_si_sdr(generated) == int8_si_sdr(generated) != default


def test_report_song_is_the_demo_mixture_or_any_audio_file(tmp_path):
    import soundfile

    from tf_metatasnet.assets import demo_song_dir
    from tf_metatasnet.data.musdb import read_stem_folder

    audio, rate, described = report_song()
    _, mixture, demo_rate = read_stem_folder(demo_song_dir())
    assert rate == demo_rate and "demo song" in described
    np.testing.assert_allclose(audio, mixture.mean(axis=1))
    stereo = np.stack([np.linspace(-0.5, 0.5, 800), np.full(800, 0.25)], axis=1)
    path = tmp_path / "song.wav"
    soundfile.write(path, stereo, 16000, subtype="FLOAT")
    audio, rate, described = report_song(path)
    assert rate == 16000 and described == str(path)
    np.testing.assert_allclose(audio, stereo.mean(axis=1), atol=1e-7)
    with pytest.raises(Exception, match="missing.wav"):
        report_song(tmp_path / "missing.wav")


@pytest.mark.slow
def test_export_command_reports_on_the_audio_it_is_given(tmp_path, capsys):
    import soundfile

    from tf_metatasnet.cli import main

    keras.utils.set_random_seed(3)
    model_path = tmp_path / "tiny.keras"
    tm.save_model(tm.build_model("tiny"), model_path)
    song = tmp_path / "song.flac"
    soundfile.write(song, np.stack([generated_song(3.0, seed=5)] * 2, axis=1), 44100)
    output = tmp_path / "tflite"
    assert main(["export", "tflite", "--model", str(model_path), "-o", str(output), "--instrument", "bass",
                 "--quantization", "float32", "--chunk-seconds", "0.64", "--context-seconds", "0.32",
                 "--overlap-seconds", "0.16", "--runs", "1", "--report-audio", str(song)]) == 0
    report = json.loads((output / "export_report.json").read_text())
    assert report["audio"] == str(song) and report["artifacts"][0]["file"] == "bass_float32.tflite"
    assert "| bass_float32.tflite |" in capsys.readouterr().out
    assert main(["export", "tflite", "--model", str(model_path), "-o", str(output), "--instrument", "bass",
                 "--quantization", "float32", "--report-audio", str(tmp_path / "none.wav")]) != 0
    assert "none.wav" in capsys.readouterr().err


def test_statistics_windows_are_pieces_of_the_calibration_windows_or_generated():

    calibration = calibration_windows(None, RATES, 6400, count=2)       # two windows of 0.8 s
    pieces = statistics_windows(calibration, RATES, 1600, count=3)       # 8 pieces of 0.2 s, 3 spread
    assert len(pieces) == 3
    for piece, (window, k) in zip(pieces, [(0, 0), (1, 0), (1, 3)]):   # pieces 0, 4 and 7 of 8
        for stage, source, factor in zip(piece, calibration[window], (1, 2, 4)):
            np.testing.assert_array_equal(stage, source[..., k * 1600 * factor:(k + 1) * 1600 * factor])
    generated = statistics_windows(None, RATES, 1600, count=2)
    assert len(generated) == 2 and [np.shape(stage)[-1] for stage in generated[0]] == [1600, 3200, 6400]
    with pytest.raises(ValueError, match="shorter than GPTQ's statistics window"):
        statistics_windows(calibration, RATES, 8000)


def test_export_command_rounds_weights_as_asked(exported, tmp_path, capsys):
    """``--weight-rounding nearest`` on the fixture's model and windows: the metadata says so
    and the file differs from the fixture's GPTQ-rounded one."""
    from tf_metatasnet.cli import main

    model, _, paths = exported
    model_path = tmp_path / "tiny.keras"
    tm.save_model(model, model_path)
    output = tmp_path / "nearest"
    assert main(["export", "tflite", "--model", str(model_path), "-o", str(output), "--instrument", "vocals",
                 "--quantization", "int8_weights", "--weight-rounding", "nearest", "--chunk-seconds", "0.64",
                 "--context-seconds", "0.32", "--overlap-seconds", "0.16", "--no-report"]) == 0
    assert json.loads((output / "vocals_int8_weights.json").read_text())["weight_rounding"] == "nearest"
    content = (output / "vocals_int8_weights.tflite").read_bytes()
    assert content != Path(paths["int8_weights"]).read_bytes()
    float_content = Path(paths["float32"]).read_bytes()      # same model and window: same tensor indices
    floats, matmul = _constants(float_content), set(fully_connected_weights(float_content))
    checked = 0
    for index, (tensor, data) in _constants(content).items():
        if tensor.name.decode() in matmul and tensor.quantization is not None and tensor.quantization.scale is not None:
            scales = np.asarray(tensor.quantization.scale, np.float32)
            shape = [1] * len(tensor.shape)
            if len(scales) > 1:
                shape[tensor.quantization.quantizedDimension] = -1
            values = np.frombuffer(data, np.int8).reshape([int(d) for d in tensor.shape]) * scales.reshape(shape)
            original = np.frombuffer(floats[index][1], np.float32).reshape(values.shape)
            assert np.all(np.abs(values - original) <= 0.5001 * scales.reshape(shape)), tensor.name
            checked += 1
    assert checked                                            # every matmul weight rounded to nearest
    with pytest.raises(SystemExit):
        build_parser().parse_args(["export", "tflite", "--model", "m.keras", "-o", "x", "--weight-rounding", "best"])
    assert "invalid choice: 'best'" in capsys.readouterr().err


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
        make_separator("tflite", source).separate_file(tmp_path / "song.wav", tmp_path / "out",
                                                    two_stems="vocals")


def test_scale_axis_picks_the_axis_of_very_different_slices():
    """Rows of magnitudes 1e-3 ... 1: one scale per row rounds them far better than one
    scale for the tensor, and better than one per column; NumPy decides independently."""
    from tf_metatasnet.export.tflite.weights import dequantize_int8, quantize_int8, scale_axis

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


def test_zero_border_finds_the_padding_folded_into_a_filter_bank():
    rng = np.random.default_rng(0)
    filters = rng.standard_normal((80, 32)).astype(np.float32)
    padded = np.pad(filters, [(120, 120), (0, 0)])          # (320, 32), a short filter aligned
    padded[150, :] = 0                                      # a zero row inside stays
    border = zero_border(padded, min_elements=512)
    assert border == [(120, 120), (0, 0)]
    np.testing.assert_array_equal(inside(padded, border), padded[120:200])
    np.testing.assert_array_equal(np.pad(inside(padded, border), border), padded)
    corner = np.zeros((40, 50), np.float32)
    corner[3:10, 5:45] = 1.0
    assert zero_border(corner, min_elements=100) == [(3, 30), (5, 5)]
    assert zero_border(padded, min_elements=240 * 32 + 1) is None       # too little to gain
    assert zero_border(np.zeros((64, 64), np.float32)) is None
    assert zero_border(np.ones((2, 2, 2, 2, 2), np.float32), min_elements=0) is None   # PAD: 4 axes
    assert inside(filters, None) is filters


def test_default_phone_window_covers_the_paper_models_receptive_field():
    config = get_config("paper")
    base = config.stage_rates[0]
    chunking = Chunking.from_seconds(base, config.stride(0))
    assert chunking.context >= config.receptive_field_seconds() * base
    expected = [-(-round(seconds * base) // chunking.align) * chunking.align   # rounded up to whole units
                for seconds in (CHUNK_SECONDS, CONTEXT_SECONDS, OVERLAP_SECONDS)]
    assert [chunking.chunk, chunking.context, chunking.overlap] == expected
    args = build_parser().parse_args(["export", "tflite", "--model", "m.keras", "-o", "out"])
    assert (args.chunk_seconds, args.context_seconds) == (CHUNK_SECONDS, CONTEXT_SECONDS)
    # No --overlap-seconds: 1 s, or a quarter of a short chunk; for the default chunk, 1 s.
    assert Chunking.from_seconds(base, config.stride(0), args.chunk_seconds, args.context_seconds,
                                 args.overlap_seconds) == chunking
