"""int8 activation ranges (``tf_metatasnet.export.tflite.ranges``), against NumPy's rounding."""

import numpy as np
import pytest

from tf_metatasnet.export.report import si_sdr
from tf_metatasnet.export.tflite.ranges import (
    activation_histograms,
    calibrated_bounds,
    mse_range,
    mse_ranges,
    with_ranges,
)


def _rounding_error(values, low, high, levels=256):
    """Mean squared error of rounding ``values`` to ``levels`` steps over ``[low, high]``, clipped."""
    step = (high - low) / (levels - 1)
    rounded = np.clip(np.round((values - low) / step), 0, levels - 1) * step + low
    return float(np.mean((rounded - values) ** 2))


def _histogram(values, low, high, bins=2048):
    counts, edges = np.histogram(np.clip(values, low, high), bins=bins, range=(low, high))
    return counts, edges


def test_mse_range_keeps_a_uniform_range_and_clips_heavy_tails():
    rng = np.random.default_rng(0)
    uniform = rng.uniform(-1, 3, 200_000)
    low, high = mse_range(*_histogram(uniform, -1, 3))
    assert (low, high) == pytest.approx((-1, 3), rel=0.03)
    # Laplace values with a few far outliers: min/max wastes the levels on the tails.
    tailed = np.concatenate([rng.laplace(0, 1, 200_000), [-60.0, 80.0]])
    full = (float(tailed.min()), float(tailed.max()))
    low, high = mse_range(*_histogram(tailed, *full))
    assert full[0] < low < 0 < high < full[1] and high / low == pytest.approx(full[1] / full[0])  # zero on the grid
    clipped, plain = _rounding_error(tailed, low, high), _rounding_error(tailed, *full)
    assert clipped < plain / 1.3, (clipped, plain)
    # ...and no range tried rounds better (checked by rounding for real, not by the model).
    errors = [_rounding_error(tailed, a * full[0], a * full[1]) for a in np.linspace(0.1, 1, 46)]
    assert clipped <= min(errors) * 1.02
    with pytest.raises(ValueError, match="need counts"):
        mse_range(np.ones(4), np.linspace(-1, 1, 4))


def _heavy_tailed_saved_model(folder):
    """A SavedModel of two dense layers with a leaky ReLU between them."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    first = tf.constant(rng.uniform(-0.1, 0.1, (256, 128)).astype(np.float32))
    second = tf.constant(rng.uniform(-0.1, 0.1, (128, 64)).astype(np.float32))

    class Net(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((8, 256), tf.float32, name="x")])
        def serve(self, x):
            hidden = tf.nn.leaky_relu(x @ first)
            return {"y": hidden @ second}

    net = Net()
    tf.saved_model.save(net, str(folder), signatures={"serving_default": net.serve})
    return str(folder)


def _inputs(seed, burst=False):
    """Laplace inputs; a ``burst`` window (a drum hit, say) also has a few values of 40."""
    rng = np.random.default_rng(seed)
    x = rng.laplace(0, 1, (8, 256)).astype(np.float32)
    if burst:
        x[rng.integers(0, 8, 4), rng.integers(0, 256, 4)] = 40.0
    return {"x": x}


def _calibrated(saved, representative):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(fully_quantize=False))
    return bytes(debugger.calibrated_model)


def test_histograms_bounds_and_ranges_of_a_calibrated_model(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from tf_metatasnet.export.tflite.convert import convert

    saved = _heavy_tailed_saved_model(tmp_path / "net")
    feeds = [_inputs(seed) for seed in range(6)]
    calibrated = _calibrated(saved, lambda: iter(feeds))
    bounds = calibrated_bounds(calibrated)
    x = np.concatenate([feed["x"] for feed in feeds])
    name = next(n for n in bounds if "x" in n and "serving_default" in n)      # the input's range
    assert bounds[name] == pytest.approx((min(x.min(), 0), max(x.max(), 0)), rel=1e-5)

    plain = convert(saved)
    histograms = activation_histograms(plain, feeds, bounds, bins=512)
    assert name in histograms and len(histograms) >= 3
    counts, edges = histograms[name]
    np.testing.assert_array_equal(counts, _histogram(x, edges[0], edges[-1], bins=512)[0])
    ranges = mse_ranges(calibrated, plain, feeds, bins=512)
    assert ranges[name] == mse_range(*_histogram(x, edges[0], edges[-1], bins=512))
    assert bounds[name][0] <= ranges[name][0] <= 0 <= ranges[name][1] <= bounds[name][1]

    rewritten = with_ranges(calibrated, {name: (-1.0, 2.0)})
    assert calibrated_bounds(rewritten) == {**bounds, name: (-1.0, 2.0)}
    interpreter = Interpreter(model_content=rewritten)                          # still a valid model
    interpreter.allocate_tensors()


def test_int8_with_mse_ranges_is_closer_to_float_than_with_min_max(tmp_path):
    """``convert(..., "int8", statistics=...)`` against the calibration's min/max: one
    calibration window with a burst sets min/max; the statistics' typical windows set the
    ranges that round the typical inputs, on which both are scored, best."""
    from ai_edge_litert.interpreter import Interpreter

    from tf_metatasnet.export.tflite.convert import convert

    saved = _heavy_tailed_saved_model(tmp_path / "net")
    typical = [_inputs(seed) for seed in range(6)]
    calibration = typical + [_inputs(6, burst=True)]
    plain = convert(saved)
    min_max = convert(saved, "int8", lambda: iter(calibration))
    mse = convert(saved, "int8", lambda: iter(calibration), statistics=(plain, typical))

    def run(content, feed):
        runner = Interpreter(model_content=content).get_signature_runner()
        return runner(**feed)["y"]

    tests = [_inputs(seed) for seed in range(10, 14)]
    scores = {name: np.median([si_sdr(run(content, feed), run(plain, feed)) for feed in tests])
              for name, content in (("min/max", min_max), ("mse", mse))}
    assert scores["mse"] > scores["min/max"] + 1.5, scores   # measured: 26.4 and 28.9 dB


def test_run_keeping_tensors_runs_each_feed_by_signature_or_by_position(tmp_path):
    from tf_metatasnet.export.tflite.convert import convert
    from tf_metatasnet.export.tflite.weights import run_keeping_tensors

    plain = convert(_heavy_tailed_saved_model(tmp_path / "net"))
    feeds = [_inputs(seed) for seed in range(3)]
    for given in (feeds, [[feed["x"]] for feed in feeds]):       # dicts, then sequences
        seen = []
        for interpreter in run_keeping_tensors(plain, given):
            index = interpreter.get_input_details()[0]["index"]
            hidden = [d["index"] for d in interpreter.get_tensor_details() if d["name"] == "LeakyRelu"]
            seen.append((interpreter.get_tensor(index).copy(), interpreter.get_tensor(hidden[0]).copy()))
        assert len(seen) == 3
        for (x, hidden), feed in zip(seen, feeds):
            np.testing.assert_array_equal(x, feed["x"])
            assert hidden.shape == (8, 128) and np.abs(hidden).max() > 0   # an intermediate, kept
