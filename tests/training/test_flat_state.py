"""The flat layout of optimizer state: buckets, flattening and re-cutting, against NumPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_metatasnet.training import flat_state


def _variables(specs):
    return [keras.Variable(np.zeros(shape, dtype), dtype=dtype) for shape, dtype in specs]


def test_plan_buckets_groups_consecutive_variables_of_one_dtype_up_to_the_size():
    variables = _variables([((2, 3), "float32"), ((4,), "float32"), ((), "float32"),
                            ((10,), "float32"), ((2,), "float16"), ((3,), "float16"),
                            ((1,), "float32")])
    buckets = flat_state.plan_buckets(variables, max_size=11)
    assert [b.indices for b in buckets] == [(0, 1, 2), (3,), (4, 5), (6,)]
    assert [b.dtype for b in buckets] == ["float32", "float32", "float16", "float32"]
    assert buckets[0].shapes == ((2, 3), (4,), ())
    assert buckets[0].sizes == (6, 4, 1) and buckets[0].size == 11
    big = flat_state.plan_buckets(_variables([((3,), "float32"), ((20,), "float32"),
                                              ((3,), "float32")]), max_size=5)
    assert [b.indices for b in big] == [(0,), (1,), (2,)]  # a larger variable stands alone
    assert [b.indices for b in flat_state.plan_buckets(variables)] == [(0, 1, 2, 3), (4, 5), (6,)]
    with pytest.raises(ValueError, match="max_size"):
        flat_state.plan_buckets(variables, max_size=0)


def test_flatten_and_unflatten_match_numpy():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in [(2, 3), (4,), (), (1, 2, 2)]]
    variables = [keras.Variable(a) for a in arrays]
    bucket = flat_state.plan_buckets(variables)[0]
    flat = flat_state.flatten([tf.constant(a) for a in arrays])
    np.testing.assert_array_equal(flat.numpy(), np.concatenate([a.ravel() for a in arrays]))
    for got, want in zip(flat_state.unflatten(flat, bucket), arrays):
        np.testing.assert_array_equal(got.numpy(), want)
    single = flat_state.plan_buckets(variables[:1])[0]
    (alone,) = flat_state.unflatten(flat_state.flatten([tf.constant(arrays[0])]), single)
    np.testing.assert_array_equal(alone.numpy(), arrays[0])


def test_regroup_recuts_the_concatenation_or_says_none():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(shape) for shape in [(2, 3), (4,), (5,)]]
    whole = np.concatenate([a.ravel() for a in arrays])
    parts = flat_state.regroup(arrays, [10, 5])
    np.testing.assert_array_equal(parts[0], whole[:10])
    np.testing.assert_array_equal(parts[1], whole[10:])
    assert [p.shape for p in flat_state.regroup([whole], [6, 4, 5])] == [(6,), (4,), (5,)]
    assert flat_state.regroup(arrays, [10, 4]) is None
    assert flat_state.regroup([], []) == []
