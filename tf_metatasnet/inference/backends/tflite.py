"""Running an exported per-instrument TFLite model over whole songs, as the apps do.

:class:`TFLiteBackend` is a :class:`~tf_metatasnet.inference.separator.Separator` backend: the
separator resamples the song to the model's rates, divides each by its standard
deviation, cuts it into the fixed windows of the metadata with
:func:`tf_metatasnet.inference.apply.apply_chunked` and multiplies the output back by the 32 kHz
standard deviation (the ``tf_metatasnet.tflite/1`` contract, ``tf_metatasnet.export.tflite``).

    separator = load_tflite_separator("vocals_dynamic.tflite")
    stems = separator.separate(audio, rate)          # {"vocals": (frames, channels)}
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tf_metatasnet.inference.backends.base import Backend

#: The metadata format this backend reads (and ``tf_metatasnet.export.tflite`` writes).
FORMAT = "tf_metatasnet.tflite/1"


#: Fields the runner (and the Android core) read.
_REQUIRED = ("instrument", "base_rate", "chunk", "context", "overlap", "window", "align",
             "inputs", "output")


def read_metadata(path: "str | os.PathLike") -> dict:
    """The metadata JSON beside a ``.tflite`` file (``x.tflite`` -> ``x.json``)."""
    json_path = os.path.splitext(os.fspath(path))[0] + ".json"
    try:
        with open(json_path, encoding="utf-8") as file:
            metadata = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"{json_path}: cannot read the model's metadata ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise ValueError(f"{json_path}: not {FORMAT} metadata (format {found!r})")
    missing = [key for key in _REQUIRED if key not in metadata]
    if missing:
        raise ValueError(f"{json_path}: missing field(s) {', '.join(missing)}")
    return metadata


class TFLiteBackend(Backend):
    """One instrument's TFLite model in ``ai_edge_litert``'s interpreter (batch 1, fixed window).

    Args:
        path: the ``.tflite`` file; its metadata JSON must be beside it.
        num_threads: interpreter threads (default 1).
    """

    name = "tflite"
    rescale = "std"

    def __init__(self, path: "str | os.PathLike", num_threads: int = 1):
        self.path = os.fspath(path)
        self.metadata = metadata = read_metadata(self.path)
        inputs = sorted(metadata["inputs"], key=lambda item: item["factor"])
        self.rates = tuple(item["sample_rate"] for item in inputs)
        self.stride = metadata["align"]
        self.sources = (metadata["instrument"],)
        self.window = metadata["window"]
        self.interpreter = Interpreter(model_path=self.path, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        details = self.interpreter.get_input_details()
        self._inputs = [details[item["index"]]["index"] for item in inputs]      # by rate
        self._output = self.interpreter.get_output_details()[metadata["output"]["index"]]["index"]
        self.check()

    def __str__(self) -> str:
        return self.path

    def chunking_seconds(self) -> dict:
        """The metadata's chunking, as the ``Separator``'s ``*_seconds`` options."""
        base = self.metadata["base_rate"]
        return {"chunk_seconds": self.metadata["chunk"] / base,
                "context_seconds": self.metadata["context"] / base,
                "overlap_seconds": self.metadata["overlap"] / base}

    def run_window(self, window: list) -> np.ndarray:
        """One window: per rate ``(1, window * factor)`` -> ``(1, window * out_factor)``."""
        for tensor, signal in zip(self._inputs, window):
            self.interpreter.set_tensor(tensor, np.ascontiguousarray(signal, np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)

    def separate_chunk(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        # inputs: per rate (n, samples_i); the model takes one item at a time.
        outputs = [self.run_window([x[k:k + 1] for x in inputs]) for k in range(len(inputs[0]))]
        return np.stack(outputs)  # (n, 1, samples_last)
