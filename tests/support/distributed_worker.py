"""Runs a few training steps under a tf.distribute strategy, or the single-device reference.

Used by ``test_train.py`` in subprocesses (logical devices and ``TF_CONFIG`` must be set
before TensorFlow starts)::

    python distributed_worker.py mirrored CACHE OUT.npz --cpu-devices 2
    TF_CONFIG=... python distributed_worker.py multi_worker CACHE OUT.npz

The reference (``reference_weights``) trains the same model on the same per-replica
batches on one device: each step sums the gradients of every replica's loss divided by
the number of replicas, which is what data-parallel training must compute.
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

#: Ten steps, Lookahead synchronising every other one. The replicas' gradients are computed
#: in other processes (or threads) than the reference's, with other float32 summation
#: orders; the runs differ by float32 rounding alone (6e-8 after 10 steps on a 2-core AMD
#: EPYC), because the recipe's clipping bounds every update. Without clipping the tiny
#: model's gradient spikes at step 3 (global norm 4e4) and the momentum step carries the
#: rounding into a 0.08 difference of one weight: that was the "departure at the third step".
STEPS = 10
GLOBAL_BATCH = 4


def make_config(cache_dir, strategy, output_dir):
    from tf_metatasnet.training.config import TrainConfig

    return TrainConfig.from_dict({
        "model": "tiny",
        "model_overrides": {"stages_num": 1},  # one stage: a third of the graph to build
        "data": {"cache_dir": str(cache_dir), "batch_size": GLOBAL_BATCH, "crop_seconds": 0.5,
                 "shuffle_buffer": 4, "statistics_examples": 4, "seed": 3},
        # The recipe's clipping (of the replicas' summed gradient, as the reference's), and
        # Lookahead synchronising every other step.
        "optimizer": {"name": "ranger", "clipnorm": 5.0, "lookahead_steps": 2, "learning_rate": 0.01},
        "output_dir": str(output_dir), "epochs": 1, "steps_per_epoch": STEPS,
        "validation_steps": 0, "strategy": strategy, "seed": 3,
    })


def _key(index, variable):
    """``index:path`` without the model's own name (a second model in a process is ``meta_tas_net_1``)."""
    return f"{index}:{variable.path.split('/', 1)[1]}"


def weights_of(model, variables=None):
    variables = model.trainable_variables if variables is None else variables
    return {_key(i, v): np.array(v.numpy()) for i, v in enumerate(variables)}


def reference_weights(cache_dir, replicas, pipelines, initial):
    """Single-device training on the batches the strategy's replicas get, from the
    distributed run's ``initial`` weights (every weight, by index)."""
    import keras
    import tensorflow as tf

    from tf_metatasnet.data.cache import open_prepared
    from tf_metatasnet.data.pipeline import train_dataset
    from tf_metatasnet.models.metatasnet import MetaTasNet
    from tf_metatasnet.training.loop import build_optimizer_from_config

    config = make_config(cache_dir, "default", tempfile.mkdtemp())
    prepared = open_prepared(cache_dir)
    model_config = config.model_config()
    rates, stride = model_config.stage_rates, model_config.W
    keras.utils.set_random_seed(config.seed)  # as train() does: the pipeline's shuffles use it
    model = MetaTasNet(model_config)
    for i, variable in enumerate(model.weights):  # spectrogram statistics included
        variable.assign(initial[_key(i, variable)])
    model.compile(optimizer=build_optimizer_from_config(config.optimizer))
    model.optimizer.build(model.trainable_variables)  # Lookahead's slow weights = initial
    per_replica = GLOBAL_BATCH // replicas
    iterators = [iter(train_dataset(prepared, config.data, rates, stride, batch_size=per_replica,
                                    seed=config.seed + 104729 * p)) for p in range(pipelines)]
    for _ in range(STEPS):
        batches = [next(iterators[r % pipelines]) for r in range(replicas)]
        total = None
        for mixtures, sources, masks in batches:
            with tf.GradientTape() as tape:
                loss, _ = model.compute_objective(mixtures, sources, masks, training=True)
                loss = loss / replicas
            grads = tape.gradient(loss, model.trainable_variables)
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
        model.optimizer.apply(total, model.trainable_variables)
    return weights_of(model)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("strategy", choices=["mirrored", "multi_worker"])
    parser.add_argument("cache")
    parser.add_argument("out")
    parser.add_argument("--cpu-devices", type=int, default=1)
    args = parser.parse_args(argv)
    import tensorflow as tf

    if args.cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)
    import keras

    from tf_metatasnet.training.loop import train

    initial = {}

    class Initial(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            initial.update(weights_of(self.model, self.model.weights))

    result = train(make_config(args.cache, args.strategy, tempfile.mkdtemp()), callbacks=[Initial()])
    np.savez(args.out, **weights_of(result.model))
    np.savez(args.out.replace(".npz", ".initial.npz"), **initial)
    return 0


if __name__ == "__main__":
    sys.exit(main())
