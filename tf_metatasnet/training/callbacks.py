"""The callbacks every run uses: the resume checkpoint, the best model, the history, and
heap release; and reading a checkpoint back.

A run's resume state is ``checkpoints/state.json``, written last at the end of every
epoch (the commit point): it names the weights file of that epoch (weights and the
optimizer's whole state), and holds what ``save_weights`` does not: the random states of
the model's ``SeedGenerator`` s (dropout) and the whole metric history, from which
``history.csv`` is rewritten. A run killed at any moment resumes from the last commit and
repeats the interrupted epoch exactly (``tf_metatasnet.training.loop``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile

import keras
import numpy as np

from tf_metatasnet.atomic import write_atomically, write_json_atomically, write_text_atomically
from tf_metatasnet.checkpoints.saving import save_model
from tf_metatasnet.layers.traversal import sublayers
from tf_metatasnet.memory import release_free_memory

#: The run folder's files.
STATE_JSON, HISTORY_CSV = os.path.join("checkpoints", "state.json"), "history.csv"


# ------------------------------------------------------------------ checkpoints
def _atomic_weights(model, path):
    write_atomically(path, lambda temporary: model.save_weights(temporary, overwrite=True))


def read_state(output_dir) -> "dict | None":
    """The resume state of a run folder (``None`` when it has none)."""
    path = os.path.join(output_dir, STATE_JSON)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def random_states(model) -> list:
    """The state variables of the ``keras.random.SeedGenerator`` s of ``model``'s layers
    (its dropout's), in a fixed order; ``save_weights`` does not save them."""
    states = []
    for layer in [model, *sublayers(model)]:
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                states.append(value.state)
    return states


def load_checkpoint(model, output_dir, state: dict) -> None:
    """Restores ``model`` (built, its optimizer too) to the checkpoint ``state`` names:
    weights, optimizer state and random states."""
    model.load_weights(os.path.join(output_dir, "checkpoints", state["weights"]))
    for variable, value in zip(random_states(model), state.get("random_states", [])):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def write_history(path, history: list) -> None:
    """Writes the per-epoch metrics as CSV (Keras's ``CSVLogger`` layout: ``epoch`` from 0,
    then the metrics in name order), atomically."""
    names = sorted({name for row in history for name in row if name != "epoch"})
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["epoch", *names])
    for row in history:
        writer.writerow([row["epoch"], *(repr(row[name]) if name in row else "" for name in names)])
    write_text_atomically(path, text.getvalue())


class ReleaseMemory(keras.callbacks.Callback):
    """Returns the C heap's free memory to the system after every training batch.

    Without it glibc's heaps fragment and the process grows step after step (see
    ``tf_metatasnet.memory``); with it the peak stays at one step's working set.
    """

    def on_train_batch_end(self, batch, logs=None):
        release_free_memory()


class Checkpointer(keras.callbacks.Callback):
    """Writes the resume checkpoint, ``history.csv`` and ``last.keras`` every epoch, and
    ``best.keras`` on improvement; ``state.json`` last.

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
        self.history = list((state or {}).get("history", []))
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
        metrics = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in logs.items() if np.size(v) == 1}
        self.history = [row for row in self.history if row["epoch"] < epoch] + [{"epoch": epoch, **metrics}]
        write_history(os.path.join(self.directory, HISTORY_CSV), self.history)
        state = {"epoch": epoch + 1, "step": int(self.model.optimizer.iterations.numpy()),
                 "weights": name, "monitor": self.monitor, "best": self.best,
                 "best_epoch": self.best_epoch, "metrics": metrics, "history": self.history,
                 "random_states": [variable.numpy().tolist() for variable in random_states(self.model)]}
        write_json_atomically(os.path.join(self.directory, STATE_JSON), state)  # the commit point
        for old in os.listdir(checkpoints):  # keep only the checkpoint the state points to
            if old.startswith("last-epoch") and old != name:
                os.remove(os.path.join(checkpoints, old))
