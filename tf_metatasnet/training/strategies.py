"""Where training runs: ``tf.distribute`` strategies by name, the chief worker, the precision."""

from __future__ import annotations

import contextlib
import os

import keras
import tensorflow as tf

from tf_metatasnet.training.config import STRATEGIES, TrainError


# ------------------------------------------------------------------ strategies
def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name`` (see ``TrainConfig.strategy``)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # Every GPU of this machine; without GPUs, every logical CPU device (tests and
        # CPU-only machines split the CPU with tf.config.set_logical_device_configuration).
        devices = ([d.name for d in tf.config.list_logical_devices("GPU")]
                   or [d.name for d in tf.config.list_logical_devices("CPU")])
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainError("strategy multi_worker needs the TF_CONFIG environment variable "
                             "(cluster and task of this worker)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def is_chief(strategy) -> bool:
    """Whether this worker writes the outputs (always, but for non-chief multi-worker tasks)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None) or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and
                                    "chief" not in resolver.cluster_spec().as_dict())


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras's global dtype policy set to ``name`` meanwhile (``float32``, ``mixed_float16`` ...)."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
