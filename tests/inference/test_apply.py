"""The chunking / overlap-add function, against direct NumPy computations."""

import numpy as np
import pytest

from tf_metatasnet.inference.apply import apply_chunked, apply_to_arrays, fade_weights, plan_windows


@pytest.mark.parametrize("length,chunk,context,overlap", [
    (1000, 300, 50, 60), (1000, 300, 0, 0), (2000, 400, 200, 100), (400, 300, 100, 20),
    (200, 300, 50, 20), (20000, 1280, 2560, 640), (5000, 400, 100, 0), (5020, 400, 100, 140)])
def test_windows_cover_the_signal_once_with_fixed_aligned_windows(length, chunk, context, overlap):
    align = 20
    windows = plan_windows(length, chunk, context, overlap, align)
    coverage = np.zeros(length)
    for k, w in enumerate(windows):
        assert 0 <= w.start and w.start + w.size <= length            # slid inside, never padded
        assert w.start <= w.keep_start < w.keep_stop <= w.start + w.size
        assert w.start % align == 0 and w.size % align == 0
        if k > 0:                                                      # context at inner borders
            assert w.keep_start - w.start >= context
            assert windows[k - 1].keep_stop - w.keep_start == overlap  # neighbours overlap by the fade
        if k < len(windows) - 1:
            assert w.start + w.size - w.keep_stop >= context
        coverage[w.keep_start:w.keep_stop] += fade_weights(w.keep_stop - w.keep_start,
                                                           overlap, w.fade_in, w.fade_out)
    assert len({w.size for w in windows}) == 1                         # one shape: one compilation
    np.testing.assert_allclose(coverage, 1.0, atol=1e-6)               # fades sum to one
    size = chunk + 2 * context
    if length <= size:
        assert len(windows) == 1 and windows[0].size == length
    else:                                                              # the fewest windows
        assert len(windows) == -(-(length - size) // (chunk - overlap)) + 1


def test_a_minute_takes_three_default_windows():
    """60 s with 20-s regions, 4 s of context and a 1-s crossfade: the first and last windows
    keep their outer context too, so three 28-s windows do (four when every window kept only
    its 20-s region)."""
    rate = 8000
    windows = plan_windows(60 * rate, 20 * rate, 4 * rate, 1 * rate, 256)
    assert [w.start / rate for w in windows] == [0.0, 16.0, 32.0]
    assert windows[1].keep_start / rate == 20.0 and windows[1].keep_stop - windows[1].keep_start == 20 * rate


def test_plan_windows_rejects_bad_arguments():
    with pytest.raises(ValueError, match="multiple of 20"):
        plan_windows(1001, 300, 0, 0, 20)
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(1000, 300, 0, 300, 1)
    with pytest.raises(ValueError, match="at most half the chunk"):
        plan_windows(1000, 300, 0, 151, 1)
    with pytest.raises(ValueError, match="chunk"):
        plan_windows(1000, 0, 0, 0, 1)


def _signals(length, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((channels, length * f)).astype("float32") for f in (1, 2, 4)]


@pytest.mark.parametrize("overlap,batch_size", [(0, 1), (40, 1), (100, 3), (0, 4)])
def test_pointwise_model_is_reproduced_exactly(overlap, batch_size):
    """A model without memory must come out of chunking unchanged: no sample lost, doubled
    or shifted, fades summing to one."""
    signals = _signals(2000)

    def model(inputs):  # (n, samples_i) per stage -> (n, 4, samples_last)
        return np.stack([np.tanh(inputs[2] * (k + 1)) for k in range(4)], axis=1)

    expected = np.stack([np.tanh(signals[2] * (k + 1)) for k in range(4)], axis=1)
    output = apply_to_arrays(model, signals, chunk=300, context=60, overlap=overlap, align=20,
                             batch_size=batch_size)
    np.testing.assert_allclose(output, expected, atol=1e-6)


def test_context_makes_a_local_model_exact():
    """With context at least the receptive field, a convolutional model is exact; without
    context, chunk borders show."""
    signals = _signals(3000, channels=1, seed=1)
    kernel = np.hanning(41).astype("float32")  # receptive field: 20 output samples each side

    def model(inputs):
        smooth = np.stack([np.convolve(row, kernel, mode="same") for row in inputs[2]])
        return np.stack([smooth, -smooth], axis=1)  # (n, 2, samples)

    expected = model([None, None, signals[2]])
    exact = apply_to_arrays(model, signals, chunk=400, context=20, overlap=0, align=20)
    np.testing.assert_allclose(exact, expected, atol=1e-5)
    cut = apply_to_arrays(model, signals, chunk=400, context=0, overlap=0, align=20)
    assert np.abs(cut - expected).max() > 1e-2


def test_streaming_yields_ordered_blocks_and_reports_progress():
    signals = _signals(1000, channels=1)
    calls, reads = [], []

    def read(start, stop):
        reads.append((start, stop))
        return [s[:, start * f:stop * f] for s, f in zip(signals, (1, 2, 4))]

    def model(inputs):
        return inputs[2][:, None, :]

    blocks = list(apply_chunked(model, read, 1000, chunk=200, context=40, overlap=40, align=20,
                                progress=lambda done, total: calls.append((done, total))))
    output = np.concatenate(blocks, axis=-1)
    np.testing.assert_allclose(output[:, 0], signals[2], atol=1e-6)
    assert all(stop - start == reads[0][1] - reads[0][0] for start, stop in reads)
    assert calls[-1] == (1000, 1000) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_input_not_a_multiple_of_align_is_padded():
    signals = [s[:, :-7 * f] for s, f in zip(_signals(1000, channels=1), (1, 2, 4))]
    output = apply_to_arrays(lambda x: x[2][:, None], signals, chunk=200, context=20, align=20)
    assert output.shape == (1, 1, 1000 * 4)
    np.testing.assert_allclose(output[0, 0, :signals[2].shape[1]], signals[2][0], atol=1e-6)
