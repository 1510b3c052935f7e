"""``tf_metatasnet.compat``, the one module that uses internals of dependencies: each internal
still exists in the installed versions, in the form compat uses it, and does its job."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_metatasnet import compat


def _name(owner) -> str:
    return getattr(owner, "__qualname__", getattr(owner, "__name__", repr(owner)))


@pytest.mark.parametrize("owner, attribute", compat.INTERNALS,
                         ids=[f"{_name(owner)}.{attribute}" for owner, attribute in compat.INTERNALS])
def test_every_internal_still_exists(owner, attribute):
    assert hasattr(owner, attribute), (
        f"{_name(owner)}.{attribute} is gone: a dependency changed an internal that "
        f"tf_metatasnet/compat.py relies on (TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"TFDS {tfds.__version__}); adapt compat.py or pin the dependency back in setup.py")


def test_overridden_internals_keep_their_signatures():
    expected = {
        (keras.Model, "_maybe_symbolic_build"): ["self", "iterator", "data_batch"],
        (keras.optimizers.Optimizer, "_get_variable_index"): ["self", "variable"],
        (tfds.core.DatasetBuilder, "_log_download_bytes"): ["self"],
        (tfds.core.DatasetBuilder, "_log_download_done"): ["self"],
    }
    for (owner, attribute), parameters in expected.items():
        found = list(inspect.signature(getattr(owner, attribute)).parameters)
        assert found == parameters, (f"{_name(owner)}.{attribute} now takes {found}, not {parameters}: "
                                     f"adapt tf_metatasnet/compat.py")


def test_freeze_turns_variables_into_constants():
    weight = tf.Variable([[2.0, 0.5]])
    traced = tf.function(lambda x: tf.matmul(x, weight, transpose_b=True),
                         input_signature=[tf.TensorSpec((None, 2))]).get_concrete_function()
    frozen = compat.freeze(traced)
    assert traced.graph.variables and not frozen.graph.variables
    ops = {op.type for op in frozen.graph.get_operations()}
    assert "ReadVariableOp" not in ops and "VarHandleOp" not in ops
    np.testing.assert_allclose(frozen(tf.constant([[1.0, 4.0]]))[0].numpy(), [[4.0]])


def test_optimizer_variable_index_is_the_build_order():
    variables = [tf.Variable(tf.zeros((n,))) for n in (1, 2, 3)]
    optimizer = keras.optimizers.SGD()
    optimizer.build(variables)
    assert [compat.optimizer_variable_index(optimizer, v) for v in reversed(variables)] == [2, 1, 0]


def test_tfds_progress_bar_state_reads_back_what_was_set():
    shown = compat.tfds_progress_bar_shown()
    try:
        tfds.display_progress_bar(False)
        assert compat.tfds_progress_bar_shown() is False
        tfds.display_progress_bar(True)
        assert compat.tfds_progress_bar_shown() is True
    finally:
        tfds.display_progress_bar(shown)


def test_quiet_builder_finds_its_own_file():
    from tf_metatasnet.data.musdb_multirate import MusdbMultirate

    assert str(MusdbMultirate.code_path).endswith("musdb_multirate.py")
