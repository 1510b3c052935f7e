"""Training with ``keras.Model.fit``: ``train(config)``, the run from start (or resume) to end.

``train(config)`` reproduces the paper's recipe from a cache
written by ``metatasnet prepare``:

1. builds the model (a preset plus overrides) and the optimizer (Ranger with cosine warm
   restarts and gradient clipping, or AdamW) inside a ``tf.distribute`` strategy's scope;
2. computes the spectrogram mean/std of every stage from training examples and stores
   them in the model (non-trainable weights, saved with it);
3. runs ``fit`` on the training pipeline (``tf_metatasnet.data.pipeline``) with validation on every
   segment of the validation tracks, logging the loss and every stage's per-instrument
   SI-SNR to the progress bar, ``history.csv`` and TensorBoard;
4. after every epoch writes ``checkpoints/last-epochNNNN.weights.h5`` (weights and the
   optimizer's whole state, step included) and ``checkpoints/state.json`` pointing to it,
   and ``best.keras`` when the validation SI-SNR (last stage, mean over instruments)
   improves. Every file is written to a temporary name and renamed into place.

``train(config, resume=True)`` continues a run that stopped for any reason, SIGKILL
included, exactly: it rebuilds the model and optimizer, restores the last checkpoint
(weights, optimizer moments, Lookahead weights, step and with it the schedule, dropout's
random states, the metric history) and repeats the interrupted epoch. Every epoch's
training batches come from a pipeline seeded by the run's seed and the epoch alone
(``epoch_seed``), in interrupted and uninterrupted runs alike, so the resumed run's weights
and loss history are bit-identical to an uninterrupted run's (on the same machine and
software). A run that is resumed before its first checkpoint starts from the beginning.

Output folder::

    OUTPUT_DIR/config.yaml            the configuration used
    OUTPUT_DIR/best.keras             best model (validation SI-SNR)
    OUTPUT_DIR/last.keras             model after the last finished epoch
    OUTPUT_DIR/history.csv            one line of metrics per epoch
    OUTPUT_DIR/logs/                  TensorBoard
    OUTPUT_DIR/checkpoints/           resume state
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from tf_metatasnet.data.cache import open_prepared
from tf_metatasnet.data.pipeline import train_dataset, validation_dataset
from tf_metatasnet.models.metatasnet import MetaTasNet
from tf_metatasnet.training.callbacks import (
    HISTORY_CSV,
    Checkpointer,
    ReleaseMemory,
    load_checkpoint,
    read_state,
    write_history,
)
from tf_metatasnet.training.config import OptimizerConfig, TrainConfig, TrainError, write_train_config
from tf_metatasnet.training.fine_tuning import load_initial_weights
from tf_metatasnet.training.optimizers import build_optimizer
from tf_metatasnet.training.statistics import compute_spectrogram_statistics, set_spectrogram_statistics
from tf_metatasnet.training.strategies import dtype_policy, is_chief, make_strategy


# ------------------------------------------------------------------ building
def build_optimizer_from_config(config: OptimizerConfig):
    """The optimizer of ``config`` (``tf_metatasnet.training.optimizers.build_optimizer``)."""
    extra = {}
    if config.name == "ranger":
        extra = {"lookahead_steps": config.lookahead_steps, "lookahead_alpha": config.lookahead_alpha}
    return build_optimizer(
        config.name, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        clipnorm=config.clipnorm, period=config.restart_period, peak_decay=config.restart_decay,
        minimum=config.minimum_learning_rate, beta_1=config.beta_1, beta_2=config.beta_2,
        epsilon=config.epsilon, **extra)


def build_training_model(config: TrainConfig) -> MetaTasNet:
    """A compiled ``MetaTasNet`` with its optimizer built (so a checkpoint can be loaded).

    Call inside the strategy's scope; the dtype policy must already be set.
    """
    keras.utils.set_random_seed(config.seed)
    model = MetaTasNet(config.model_config())
    model.compile(optimizer=build_optimizer_from_config(config.optimizer),
                  jit_compile=config.jit_compile)
    model.optimizer.build(model.trainable_variables)
    return model


# ------------------------------------------------------------------ training
@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: the model, Keras's history and where things were written."""

    model: MetaTasNet
    history: dict
    output_dir: str
    initial_epoch: int
    best: "float | None"


def train(config: TrainConfig, *, resume: bool = False, verbose: int = 0, callbacks=(),
          prepared=None) -> TrainResult:
    """Trains (or resumes) a model as ``config`` says; see the module docstring.

    Args:
        config: the run's ``TrainConfig``.
        resume: continue the run in ``config.output_dir`` from its last checkpoint. Without
            it, an output folder that already holds a checkpoint is an error (nothing is
            overwritten by accident).
        verbose: Keras's ``fit`` verbosity (0 silent, 1 progress bar, 2 a line per epoch).
        callbacks: more Keras callbacks.
        prepared: an opened cache (default: ``open_prepared(config.data.cache_dir)``).
    """
    output_dir = config.output_dir
    state = read_state(output_dir)
    if state and not resume:
        raise TrainError(f"{output_dir}: already holds a training run; pass --resume to continue "
                         f"it or choose another output directory")
    if not state and config.initial_weights and not os.path.isfile(config.initial_weights):
        raise TrainError(f"{config.initial_weights}: no such model file (initial_weights)")
    prepared = prepared or open_prepared(config.data.cache_dir)
    model_config = config.model_config()
    rates, stride = model_config.stage_rates, model_config.W

    with dtype_policy(config.precision):
        strategy = make_strategy(config.strategy)
        chief = is_chief(strategy)
        if chief:
            os.makedirs(output_dir, exist_ok=True)
            write_train_config(config, os.path.join(output_dir, "config.yaml"))
        initial_epoch = int(state["epoch"]) if state else 0
        if initial_epoch >= config.epochs:
            raise TrainError(f"{output_dir}: already trained for {initial_epoch} of {config.epochs} epochs")
        replicas = strategy.num_replicas_in_sync
        if config.data.batch_size % replicas:
            raise TrainError(f"data.batch_size {config.data.batch_size} is not divisible by the "
                             f"{replicas} replicas")

        def epoch_data(epoch: int):
            """Epoch ``epoch``'s batches: a pipeline seeded by the run's seed and the epoch
            alone, so that a resumed epoch sees exactly the batches it saw before."""
            seed = epoch_seed(config.seed, epoch)

            def dataset_fn(context: tf.distribute.InputContext):
                return train_dataset(prepared, config.data, rates, stride,
                                     batch_size=context.get_per_replica_batch_size(config.data.batch_size),
                                     seed=seed + 104729 * context.input_pipeline_id)

            if config.strategy == "default":
                return dataset_fn(tf.distribute.InputContext())
            return strategy.distribute_datasets_from_function(dataset_fn)

        with strategy.scope():
            model = build_training_model(config)
            if state:
                load_checkpoint(model, output_dir, state)
            elif config.initial_weights:
                load_initial_weights(model, config.initial_weights)
            else:
                statistics_data = train_dataset(prepared, config.data, rates, stride, seed=config.seed + 1)
                set_spectrogram_statistics(model, compute_spectrogram_statistics(
                    model, statistics_data, config.data.statistics_examples))

        validation = None
        if config.validation_steps != 0 and prepared.splits.get("valid"):
            validation = validation_dataset(prepared, rates, stride,
                                            batch_size=config.data.validation_batch_size,
                                            threshold=config.data.silence_threshold)
            if config.validation_steps:
                validation = validation.take(config.validation_steps)
        monitor = "val_si_snr" if validation is not None else "si_snr"
        checkpointer = Checkpointer(output_dir, monitor, state, chief)
        if chief and state:   # rows written after the last commit (a kill) are dropped
            write_history(os.path.join(output_dir, HISTORY_CSV), checkpointer.history)
        standard = [checkpointer, keras.callbacks.TerminateOnNaN(), ReleaseMemory(), _OneEpoch()]
        if chief:
            standard.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"),
                                                        update_freq=config.tensorboard_update_freq))
        history = {}
        # One fit call per epoch (each with its epoch's pipeline); the compiled step is reused.
        for epoch in range(initial_epoch, config.epochs):
            logs = model.fit(epoch_data(epoch), epochs=config.epochs, initial_epoch=epoch,
                             steps_per_epoch=config.steps_per_epoch, validation_data=validation,
                             validation_freq=config.validation_freq, verbose=verbose,
                             shuffle=False,  # the tf.data pipeline shuffles; Keras would only warn
                             callbacks=[*standard, *callbacks]).history
            for name, values in logs.items():
                history.setdefault(name, []).extend(values)
            if not np.isfinite(logs.get("loss", [0.0])[-1]):   # TerminateOnNaN stopped the epoch
                break
    return TrainResult(model, history, output_dir, initial_epoch, checkpointer.best)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s training pipeline in a run seeded ``seed``."""
    return seed + 7919 * epoch


class _OneEpoch(keras.callbacks.Callback):
    """Ends a ``fit`` call after one epoch (``train`` runs one call per epoch)."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True
