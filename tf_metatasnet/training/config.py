"""A training run's configuration: ``TrainConfig`` (with ``OptimizerConfig`` and the data
pipeline's ``DataConfig``), read from and written to the YAML recipes of ``training/configs``."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import yaml

from tf_metatasnet.atomic import write_text_atomically
from tf_metatasnet.config import MetaTasNetConfig
from tf_metatasnet.data.pipeline import DataConfig
from tf_metatasnet.presets import PRESETS, get_config

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


def write_train_config(config: TrainConfig, path: "str | os.PathLike") -> None:
    """Writes ``config`` as the YAML ``load_train_config`` reads, atomically."""
    write_text_atomically(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
