"""The callbacks every run uses: the resume checkpoint and best model, and heap release."""

from __future__ import annotations

import json
import os
import tempfile

import keras
import numpy as np

from tf_metatasnet.atomic import write_atomically, write_json_atomically
from tf_metatasnet.checkpoints.saving import save_model
from tf_metatasnet.training.memory import release_free_memory


# ------------------------------------------------------------------ checkpoints
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
        write_json_atomically(os.path.join(checkpoints, "state.json"), state)
        for old in os.listdir(checkpoints):  # keep only the checkpoint the state points to
            if old.startswith("last-epoch") and old != name:
                os.remove(os.path.join(checkpoints, old))
