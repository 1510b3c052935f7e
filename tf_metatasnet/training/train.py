"""Training with ``keras.Model.fit``: configuration, strategies, checkpoints and exact resume.

``train(config)`` reproduces the paper's recipe (``../shared/REFERENCE.md``) from a cache
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

``train(config, resume=True)`` rebuilds the same model and optimizer, loads the last
checkpoint (weights, optimizer moments, Lookahead weights, step, hence the schedule's
position) and continues at the next epoch. The training pipeline of a resumed run is
seeded from the run's seed and the epoch it resumes at, so resuming is reproducible.

Output folder::

    OUTPUT_DIR/config.yaml            the configuration used
    OUTPUT_DIR/best.keras             best model (validation SI-SNR)
    OUTPUT_DIR/last.keras             model after the last finished epoch
    OUTPUT_DIR/history.csv            one line of metrics per epoch
    OUTPUT_DIR/logs/                  TensorBoard
    OUTPUT_DIR/checkpoints/           resume state
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf

from tf_metatasnet.atomic import write_atomically, write_text_atomically
from tf_metatasnet.config import MetaTasNetConfig
from tf_metatasnet.presets import PRESETS, get_config
from tf_metatasnet.data.cache import open_prepared
from tf_metatasnet.data.pipeline import DataConfig, train_dataset, validation_dataset
from tf_metatasnet.training.memory import release_free_memory
from tf_metatasnet.models.metatasnet import MetaTasNet
from tf_metatasnet.checkpoints.saving import save_model

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class TrainError(ValueError):
    """A training configuration or output folder that cannot be used (one-line message)."""


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and schedule; the defaults are the paper's recipe.

    Args:
        name: ``"ranger"`` (RAdam + Lookahead, the paper) or ``"adamw"``.
        learning_rate: peak learning rate. Paper: 1e-3.
        weight_decay: decoupled weight decay. Paper: 5e-4.
        clipnorm: global gradient norm clip. Paper: 5.0 (``None``: no clipping).
        restart_period: steps of each cosine cycle. Paper: 200,000.
        restart_decay: each restart's peak is the previous one's times this. Paper: 0.85.
        minimum_learning_rate: the schedule's floor.
        beta_1, beta_2, epsilon: moment decays and epsilon. Paper: 0.95, 0.999, 1e-5.
        lookahead_steps, lookahead_alpha: Ranger's Lookahead ``k`` and ``alpha``. Paper: 6, 0.5.
    """

    name: str = "ranger"
    learning_rate: float = 1e-3
    weight_decay: float = 5e-4
    clipnorm: "float | None" = 5.0
    restart_period: int = 200_000
    restart_decay: float = 0.85
    minimum_learning_rate: float = 0.0
    beta_1: float = 0.95
    beta_2: float = 0.999
    epsilon: float = 1e-5
    lookahead_steps: int = 6
    lookahead_alpha: float = 0.5

    def __post_init__(self):
        if self.name not in ("ranger", "adamw"):
            raise TrainError(f"optimizer.name must be 'ranger' or 'adamw', got {self.name!r}")
        if self.learning_rate <= 0 or self.restart_period < 1:
            raise TrainError("optimizer.learning_rate and restart_period must be positive")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A whole training run. Recipes are YAML files of these fields (``training/configs``).

    Args:
        model: a preset name (``paper``, ``small``, ``tiny``).
        model_overrides: model config fields changed from the preset.
        data: ``DataConfig`` (the pipeline; ``data.cache_dir`` is required).
        optimizer: ``OptimizerConfig``.
        output_dir: where checkpoints, logs and the models go.
        epochs: number of epochs. Paper: 250.
        steps_per_epoch: training steps (batches) per epoch.
        validation_steps: validation batches per epoch; ``None``: all validation tracks,
            0: no validation (the best model is then chosen on the training SI-SNR).
        validation_freq: validate every this many epochs.
        precision: ``float32``, ``mixed_float16`` (GPUs) or ``mixed_bfloat16`` (TPUs, recent CPUs).
        jit_compile: compile the training step with XLA.
        strategy: ``default`` (one device), ``mirrored`` (several GPUs of one machine) or
            ``multi_worker`` (several machines, from ``TF_CONFIG``).
        tensorboard_update_freq: ``"epoch"`` or every this many batches.
        seed: seed of the pipeline and of the weights' initialisation.
        initial_weights: a saved model (``.keras``, or the authors' ``.pt`` checkpoint)
            whose weights, spectrogram statistics included, start the run instead of a
            random initialisation: fine-tuning. Its architecture must be the run's; the
            loss weights, dropout and ``recompute_tcn`` may differ. The optimizer starts
            afresh. A resumed run continues from its own checkpoint instead.
    """

    model: str = "paper"
    model_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    output_dir: str = "runs/metatasnet"
    epochs: int = 250
    steps_per_epoch: int = 1000
    validation_steps: "int | None" = None
    validation_freq: int = 1
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "default"
    tensorboard_update_freq: "str | int" = "epoch"
    seed: int = 0
    initial_weights: "str | None" = None

    def __post_init__(self):
        if self.model not in PRESETS:
            raise TrainError(f"model must be one of {', '.join(PRESETS)}, got {self.model!r}")
        if self.strategy not in STRATEGIES:
            raise TrainError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.precision not in PRECISIONS:
            raise TrainError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.epochs < 1 or self.steps_per_epoch < 1 or self.validation_freq < 1:
            raise TrainError("epochs, steps_per_epoch and validation_freq must be positive")
        if not self.data.cache_dir:
            raise TrainError("data.cache_dir is required (a folder written by metatasnet prepare)")
        if self.initial_weights is not None and not isinstance(self.initial_weights, str):
            raise TrainError(f"initial_weights must be the path of a saved model, "
                             f"got {self.initial_weights!r}")

    # ------------------------------------------------------------ construction
    def model_config(self) -> MetaTasNetConfig:
        try:
            return get_config(self.model).replace(**dict(self.model_overrides))
        except TypeError as error:
            raise TrainError(f"model_overrides: {error}") from None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        values = dict(values)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise TrainError(f"unknown setting(s): {', '.join(unknown)}")
        try:
            values["data"] = DataConfig.from_dict(values.get("data") or {})
            optimizer = dict(values.get("optimizer") or {})
            extra = sorted(set(optimizer) - {f.name for f in dataclasses.fields(OptimizerConfig)})
            if extra:
                raise TrainError(f"unknown optimizer setting(s): {', '.join(extra)}")
            values["optimizer"] = OptimizerConfig(**optimizer)
        except (TypeError, ValueError) as error:
            raise TrainError(str(error)) from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["model_overrides"] = dict(self.model_overrides)
        return values

    def replace(self, **changes) -> "TrainConfig":
        """A copy with top-level fields changed; ``data``/``optimizer`` may be dicts of changes."""
        for name, kind in (("data", DataConfig), ("optimizer", OptimizerConfig)):
            if isinstance(changes.get(name), Mapping):
                changes[name] = dataclasses.replace(getattr(self, name), **changes[name])
        return dataclasses.replace(self, **changes)


def load_train_config(path: "str | os.PathLike", **overrides) -> TrainConfig:
    """Reads a YAML (or JSON) recipe; ``overrides`` as in ``TrainConfig.replace``.

    A relative ``data.cache_dir`` or ``output_dir`` in the file stays relative to the
    current directory (where ``metatasnet train`` is run).
    """
    import yaml

    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
    except OSError as error:
        raise TrainError(f"{path}: cannot read the training config ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise TrainError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise TrainError(f"{path}: a training config must be a mapping of settings")
    try:
        config = TrainConfig.from_dict(values)
        return config.replace(**overrides) if overrides else config
    except (TrainError, ValueError, TypeError) as error:
        raise TrainError(f"{path}: {error}") from None


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


# ------------------------------------------------------------------ building
def build_optimizer_from_config(config: OptimizerConfig):
    """The optimizer of ``config`` (``tf_metatasnet.training.optimizers.build_optimizer``)."""
    from tf_metatasnet.training.optimizers import build_optimizer

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


#: Model config fields that only shape the training, not the weights: they may differ
#: between a run and the model its ``initial_weights`` come from.
TRAINING_ONLY_FIELDS = ("reconstruction_loss_weight", "dissimilarity_loss_weight",
                        "similarity_loss_weight", "instrument_loss_weights", "dropout",
                        "recompute_tcn")


def load_initial_weights(model: MetaTasNet, path: "str | os.PathLike") -> None:
    """Copies the weights of a saved model into ``model``, the start of a fine-tuning run.

    Ranger's Lookahead slow weights, copied from the random initialisation when the
    optimizer was built, are set to the loaded weights as well.

    Args:
        model: the run's built model.
        path: a ``.keras`` model of this project or the authors' ``.pt`` checkpoint, with
            the same architecture as ``model`` (``TRAINING_ONLY_FIELDS`` may differ).

    Raises:
        TrainError: naming the file, when it cannot be read or its architecture differs.
    """
    from tf_metatasnet.checkpoints.saving import load_model

    path = os.fspath(path)
    try:
        source = load_model(path)
    except (OSError, ValueError) as error:
        raise TrainError(f"initial_weights: {error}") from None
    ours, theirs = model.config.to_dict(), source.config.to_dict()
    for name, value in ours.items():
        if name not in TRAINING_ONLY_FIELDS and theirs[name] != value:
            raise TrainError(f"{path}: the model has {name}={theirs[name]!r} but the run's model "
                             f"has {name}={value!r}; initial_weights must have the same architecture")
    model.set_weights(source.get_weights())
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # mixed precision
    if hasattr(optimizer, "sync_slow_weights"):  # Ranger's Lookahead copies of the weights
        optimizer.sync_slow_weights(model.trainable_variables)


def compute_spectrogram_statistics(model: MetaTasNet, dataset, examples: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-frequency mean/std of every stage's log-power spectrogram over training mixtures.

    Args:
        model: the model whose stages' ``LogSpectrogram`` layers compute the spectra.
        dataset: training batches ``(mixtures, sources, masks)``.
        examples: number of examples to use (at least one batch).

    Returns:
        one ``(mean, std)`` pair of ``(bins,)`` float32 arrays per stage.
    """
    spectrograms = [stage.encoder.spectrogram for stage in model.stages]
    sums = [np.zeros(s.num_bins) for s in spectrograms]
    squares = [np.zeros(s.num_bins) for s in spectrograms]
    count = [0] * len(spectrograms)
    seen = 0

    @tf.function
    def log_powers(mixtures):
        return [tf.reshape(s.log_power(m), (-1, s.num_bins))  # (batch * stft_frames, bins)
                for s, m in zip(spectrograms, mixtures)]

    for mixtures, _, _ in dataset:
        for i, values in enumerate(log_powers(tuple(mixtures))):
            values = values.numpy().astype(np.float64)
            sums[i] += values.sum(axis=0)
            squares[i] += np.square(values).sum(axis=0)
            count[i] += values.shape[0]
        seen += int(mixtures[0].shape[0])
        if seen >= examples:
            break
    if not seen:
        raise TrainError("the training pipeline gave no examples for the spectrogram statistics")
    statistics = []
    for i in range(len(spectrograms)):
        mean = sums[i] / count[i]
        std = np.sqrt(np.maximum(squares[i] / count[i] - mean ** 2, 0.0))
        statistics.append((mean.astype(np.float32), np.maximum(std, 1e-5).astype(np.float32)))
    return statistics


def set_spectrogram_statistics(model: MetaTasNet, statistics) -> None:
    """Stores ``compute_spectrogram_statistics``'s result in the model's stages."""
    for stage, (mean, std) in zip(model.stages, statistics):
        stage.encoder.spectrogram.mean.assign(mean)
        stage.encoder.spectrogram.std.assign(std)


# ------------------------------------------------------------------ checkpoints
def _atomic_json(path, values):
    write_text_atomically(path, json.dumps(values, indent=2))


def _atomic_weights(model, path):
    write_atomically(path, lambda temporary: model.save_weights(temporary, overwrite=True))


def read_state(output_dir) -> "dict | None":
    """The resume state of a run folder (``None`` when it has none)."""
    path = os.path.join(output_dir, "checkpoints", "state.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class ReleaseMemory(keras.callbacks.Callback):
    """Returns the C heap's free memory to the system after every training batch.

    Without it glibc's heaps fragment and the process grows step after step (see
    ``tf_metatasnet.training.memory``); with it the peak stays at one step's working set.
    """

    def on_train_batch_end(self, batch, logs=None):
        release_free_memory()


class Checkpointer(keras.callbacks.Callback):
    """Writes the resume checkpoint every epoch and ``best.keras`` on improvement.

    Args:
        output_dir: the run folder (only the chief writes there; other workers write to
            a temporary folder, as ``MultiWorkerMirroredStrategy`` needs every worker to save).
        monitor: the metric to maximise (``val_si_snr``, or ``si_snr`` without validation).
        state: the resumed state (``best`` so far), or ``None``.
        chief: whether this worker is the chief.
    """

    def __init__(self, output_dir, monitor="val_si_snr", state=None, chief=True):
        super().__init__()
        self.output_dir = output_dir
        self.monitor = monitor
        self.chief = chief
        self.best = (state or {}).get("best")
        self.best_epoch = (state or {}).get("best_epoch")
        self.directory = output_dir if chief else tempfile.mkdtemp(prefix="metatasnet-worker-")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        checkpoints = os.path.join(self.directory, "checkpoints")
        os.makedirs(checkpoints, exist_ok=True)
        name = f"last-epoch{epoch + 1:04d}.weights.h5"
        _atomic_weights(self.model, os.path.join(checkpoints, name))
        value = logs.get(self.monitor)
        improved = value is not None and np.isfinite(value) and (self.best is None or value > self.best)
        if improved:
            self.best, self.best_epoch = float(value), epoch + 1
            save_model(self.model, os.path.join(self.directory, "best.keras"))
        save_model(self.model, os.path.join(self.directory, "last.keras"))
        state = {"epoch": epoch + 1, "step": int(self.model.optimizer.iterations.numpy()),
                 "weights": name, "monitor": self.monitor, "best": self.best,
                 "best_epoch": self.best_epoch,
                 "metrics": {k: float(v) for k, v in logs.items() if np.isscalar(v) or np.ndim(v) == 0}}
        _atomic_json(os.path.join(checkpoints, "state.json"), state)
        for old in os.listdir(checkpoints):  # keep only the checkpoint the state points to
            if old.startswith("last-epoch") and old != name:
                os.remove(os.path.join(checkpoints, old))


# ------------------------------------------------------------------ training
@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: the model, Keras's history and where things were written."""

    model: MetaTasNet
    history: dict
    output_dir: str
    initial_epoch: int
    best: "float | None"


@contextlib.contextmanager
def _dtype_policy(name):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


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
    if resume and not state:
        raise TrainError(f"{output_dir}: no checkpoint to resume from")
    if not state and config.initial_weights and not os.path.isfile(config.initial_weights):
        raise TrainError(f"{config.initial_weights}: no such model file (initial_weights)")
    prepared = prepared or open_prepared(config.data.cache_dir)
    model_config = config.model_config()
    rates, stride = model_config.stage_rates, model_config.W

    with _dtype_policy(config.precision):
        strategy = make_strategy(config.strategy)
        chief = is_chief(strategy)
        if chief:
            os.makedirs(output_dir, exist_ok=True)
            _write_config(config, os.path.join(output_dir, "config.yaml"))
        initial_epoch = int(state["epoch"]) if state else 0
        if initial_epoch >= config.epochs:
            raise TrainError(f"{output_dir}: already trained for {initial_epoch} of {config.epochs} epochs")
        replicas = strategy.num_replicas_in_sync
        if config.data.batch_size % replicas:
            raise TrainError(f"data.batch_size {config.data.batch_size} is not divisible by the "
                             f"{replicas} replicas")
        seed = config.seed + 7919 * initial_epoch

        def dataset_fn(context: tf.distribute.InputContext):
            return train_dataset(prepared, config.data, rates, stride,
                                 batch_size=context.get_per_replica_batch_size(config.data.batch_size),
                                 seed=seed + 104729 * context.input_pipeline_id)

        with strategy.scope():
            model = build_training_model(config)
            if state:
                model.load_weights(os.path.join(output_dir, "checkpoints", state["weights"]))
            elif config.initial_weights:
                load_initial_weights(model, config.initial_weights)
            else:
                statistics_data = train_dataset(prepared, config.data, rates, stride, seed=config.seed + 1)
                set_spectrogram_statistics(model, compute_spectrogram_statistics(
                    model, statistics_data, config.data.statistics_examples))

        if config.strategy == "default":
            data = dataset_fn(tf.distribute.InputContext())
        else:
            data = strategy.distribute_datasets_from_function(dataset_fn)
        validation = None
        if config.validation_steps != 0 and prepared.splits.get("valid"):
            validation = validation_dataset(prepared, rates, stride,
                                            batch_size=config.data.validation_batch_size,
                                            threshold=config.data.silence_threshold)
            if config.validation_steps:
                validation = validation.take(config.validation_steps)
        monitor = "val_si_snr" if validation is not None else "si_snr"
        checkpointer = Checkpointer(output_dir, monitor, state, chief)
        standard = [checkpointer, keras.callbacks.TerminateOnNaN(), ReleaseMemory()]
        if chief:
            standard += [
                keras.callbacks.CSVLogger(os.path.join(output_dir, "history.csv"), append=bool(state)),
                keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"),
                                            update_freq=config.tensorboard_update_freq),
            ]
        history = model.fit(data, epochs=config.epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=config.steps_per_epoch, validation_data=validation,
                            validation_freq=config.validation_freq, verbose=verbose,
                            shuffle=False,  # the tf.data pipeline shuffles; Keras would only warn
                            callbacks=[*standard, *callbacks])
    return TrainResult(model, history.history, output_dir, initial_epoch, checkpointer.best)


def _write_config(config: TrainConfig, path):
    import yaml

    write_text_atomically(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
