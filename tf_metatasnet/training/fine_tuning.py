"""Fine-tuning: a run that starts from a saved model's weights (``initial_weights``)."""

from __future__ import annotations

import os

from tf_metatasnet.checkpoints.saving import load_model
from tf_metatasnet.models.metatasnet import MetaTasNet
from tf_metatasnet.training.config import TrainError

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
