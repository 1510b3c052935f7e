"""The JSON written beside each ``.tflite``: the ``tf_metatasnet.tflite/1`` contract that the
TFLite backend (``tf_metatasnet.inference.backends.tflite``) and the Android core read.
"""

from __future__ import annotations

import hashlib
import os
from typing import Sequence

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tf_metatasnet.export.tflite.options import Chunking
from tf_metatasnet.inference.backends.tflite import FORMAT


def model_version(path: "str | os.PathLike") -> str:
    """The first 12 hex digits of the model file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def tflite_metadata(model_content: bytes, instrument: str, sources: Sequence[str], rates: Sequence[int],
                    chunking: Chunking, quantization: str, version: str,
                    weight_rounding: str = "nearest") -> dict:
    """The JSON written beside a ``.tflite`` (the ``tf_metatasnet.tflite/1`` contract).

    ``weight_rounding`` (``WEIGHT_ROUNDINGS``) is recorded for the variants with int8 weights.
    """
    interpreter = Interpreter(model_content=model_content)
    runner_inputs = interpreter.get_signature_list()["serving_default"]
    base = rates[0]

    def tensor(detail, name, index):
        rate = int(name.rsplit("_", 1)[1]) if name.startswith("mixture_") else rates[-1]
        return {"name": name, "index": index, "sample_rate": rate, "factor": rate // base,
                "shape": [int(d) for d in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name}

    by_tensor = {f"serving_default_{name}:0": name for name in runner_inputs["inputs"]}
    inputs = [tensor(detail, by_tensor[detail["name"]], index)
              for index, detail in enumerate(interpreter.get_input_details())]
    output = tensor(interpreter.get_output_details()[0], instrument, 0)
    return {
        "format": FORMAT, "model_version": version, "instrument": instrument,
        "sources": list(sources), "quantization": quantization,
        "weight_rounding": weight_rounding if quantization in ("dynamic", "int8_weights", "int8") else None,
        "base_rate": base, "output_rate": rates[-1],
        "chunk": chunking.chunk, "context": chunking.context, "overlap": chunking.overlap,
        "window": chunking.window, "align": chunking.align,
        "inputs": inputs, "output": output,
        "normalization": "std",
        "channels": "each channel of the song is separated on its own (batch 1)",
        "resampling": f"outside the model: song rate -> {'/'.join(str(r // 1000) for r in rates)} kHz, "
                      f"and {rates[-1] // 1000} kHz -> song rate",
    }
