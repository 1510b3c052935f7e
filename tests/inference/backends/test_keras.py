"""The Keras backend's own options: fixed generated weights and rows per model call."""

import numpy as np
import pytest
from signals import random_mixtures

import tf_metatasnet as tm
from tf_metatasnet.inference.backends.keras import KerasBackend


@pytest.fixture(scope="module")
def model():
    return tm.build_model("tiny")


def _inputs(model, rows):
    return [np.asarray(m, np.float32) for m in random_mixtures(model.config, batch=rows, frames=40)]


@pytest.mark.slow  # traces the tiny model four times (about 10 s)
def test_rows_run_one_at_a_time_by_default_with_the_same_estimates(model):
    inputs = _inputs(model, 3)
    one = KerasBackend(model, jit_compile=False)
    assert one.max_items == 1
    estimates = one(inputs)
    assert one._separate.experimental_get_tracing_count() == 1   # one shape: (1, samples)
    whole = KerasBackend(model, jit_compile=False, max_items=None)(inputs)
    pairs = KerasBackend(model, jit_compile=False, max_items=2)(inputs)   # 2 rows, then 1
    reference = model.separate(inputs).numpy()
    for result in (estimates, whole, pairs):
        assert result.shape == reference.shape
        np.testing.assert_allclose(result, reference, rtol=1e-4, atol=1e-5)


def test_a_gpu_device_runs_the_whole_batch_and_bad_sizes_are_refused(model):
    assert KerasBackend(model, jit_compile=False, device="/GPU:0").max_items is None
    assert KerasBackend(model, jit_compile=False, device="/CPU:0").max_items == 1
    with pytest.raises(ValueError, match="max_items must be positive or None, got 0"):
        KerasBackend(model, jit_compile=False, max_items=0)


@pytest.mark.slow  # builds a model and traces it three times (about 8 s)
def test_fixed_weights_are_a_snapshot_unless_asked_to_follow_the_model():
    model = tm.build_model("tiny")
    inputs = _inputs(model, 1)
    fixed = KerasBackend(model, jit_compile=False)
    live = KerasBackend(model, jit_compile=False, fix_generated=False)
    before = fixed(inputs)
    np.testing.assert_allclose(live(inputs), before, rtol=1e-4, atol=1e-5)
    embedding = model.stages[-1].instrument_embedding
    embedding.assign(embedding.numpy() + 1.0)
    np.testing.assert_array_equal(fixed(inputs), before)           # made before the change
    assert not np.allclose(live(inputs), before)                    # reads the weights
    np.testing.assert_allclose(KerasBackend(model, jit_compile=False)(inputs), live(inputs),
                               rtol=1e-4, atol=1e-5)


def test_every_model_call_hands_the_freed_heap_back(model, monkeypatch):
    """``release_free_memory`` (the real one, counted) runs after each model call, so a
    song's memory does not grow from window to window."""
    from tf_metatasnet.inference.backends import keras as backend_module
    calls = []
    real = backend_module.release_free_memory
    monkeypatch.setattr(backend_module, "release_free_memory",
                        lambda: calls.append(real()) or calls[-1])
    backend = KerasBackend(model, jit_compile=False)
    backend(_inputs(model, 2))   # one row per call: two calls
    assert len(calls) == 2 and all(isinstance(c, bool) for c in calls)
