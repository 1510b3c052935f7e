"""The one module that reaches into internals of our dependencies.

Everywhere else the package uses public APIs of TensorFlow, Keras, LiteRT and TFDS only
(``tests/test_architecture.py`` checks the package for it). What has no public API is here, one
function or class each, saying what it touches and why nothing public does it; the
tests of this module check that each internal still exists with the form used here and
fail with a message naming it, the dependency and the pinned version the day it changes
(``setup.py`` pins TensorFlow, Keras and ai-edge-litert to the minor versions tested).
"""

from __future__ import annotations

import inspect
import logging

import keras
import tensorflow_datasets as tfds
from etils import epath

# TensorFlow 2 has no public API for freezing variables into constants; the TFLite
# converter and TF Serving graphs need it (see ``freeze``).
from tensorflow.python.framework import convert_to_constants
from tensorflow_datasets.core import utils as tfds_utils
from tensorflow_datasets.core.utils import tqdm_utils

#: Every internal used below, as ``(owner, attribute)``; ``tests/test_compat.py`` checks them.
INTERNALS = (
    (convert_to_constants, "convert_variables_to_constants_v2"),
    (keras.optimizers.Optimizer, "_get_variable_index"),
    (keras.Model, "_maybe_symbolic_build"),
    (tqdm_utils, "_active"),
    (tfds.core.DatasetBuilder, "_log_download_bytes"),
    (tfds.core.DatasetBuilder, "_log_download_done"),
    (tfds_utils, "classproperty"),
)


def freeze(concrete_function):
    """``concrete_function`` with its variables turned into constants.

    Uses ``convert_variables_to_constants_v2`` (``tensorflow.python``): the TFLite converter
    keeps Keras 3 weights as resource variables (``VAR_HANDLE`` / ``READ_VARIABLE`` ops that
    read uninitialised values in the interpreter) unless the graph is frozen first, and a
    frozen SavedModel needs no variables.
    """
    return convert_to_constants.convert_variables_to_constants_v2(concrete_function)


def optimizer_variable_index(optimizer: keras.optimizers.Optimizer, variable) -> int:
    """The position of ``variable`` among the variables ``optimizer`` was built with.

    Keras's own optimizers find a variable's slots with ``_get_variable_index`` inside
    ``update_step``; it also maps the per-device copies of a distributed variable, which
    only TensorFlow's private ``_distributed_container`` can do.
    """
    return optimizer._get_variable_index(variable)  # noqa: SLF001


class SelfBuildingModelMixin:
    """For a ``keras.Model`` that builds all its weights in ``__init__``: skips the symbolic
    build that ``fit`` / ``evaluate`` run under a ``tf.distribute`` strategy.

    Keras's TensorFlow trainer (``_maybe_symbolic_build``) takes a batch from the
    distributed iterator to build the model symbolically; with
    ``MultiWorkerMirroredStrategy`` it reduces the per-replica batch, which fails. A model
    that is built needs it only for an optimizer that is not built yet.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.optimizer is not None and not self.optimizer.built:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        return None


def tfds_progress_bar_shown() -> bool:
    """Whether TFDS shows its progress bars (``tfds.display_progress_bar`` sets it; nothing
    public reads it back, and a library must put it back as it found it)."""
    return bool(getattr(tqdm_utils, "_active", True))


#: ``tensorflow_datasets.core.utils.classproperty``: TFDS builders declare ``code_path``
#: with it; no public alias exists.
classproperty = tfds_utils.classproperty


class QuietBuilderMixin:
    """For a TFDS builder: logs the two messages TFDS prints with ``termcolor`` while
    building (library code must not print), and finds the builder's own file.

    ``_log_download_bytes`` / ``_log_download_done`` are TFDS internals without a public
    switch. ``code_path`` is overridden because TFDS's lookup needs ``importlib_resources``,
    which TFDS 4.9.10 declares only for Python < 3.9 (tensorflow/datasets#11212).
    """

    def _log_download_bytes(self) -> None:
        logging.getLogger(type(self).__module__).info(
            "building %s into %s", self.info.full_name, self.data_dir)

    def _log_download_done(self) -> None:
        logging.getLogger(type(self).__module__).info(
            "built %s into %s", self.info.full_name, self.data_dir)

    @classproperty
    @classmethod
    def code_path(cls):
        return epath.Path(inspect.getfile(cls))
