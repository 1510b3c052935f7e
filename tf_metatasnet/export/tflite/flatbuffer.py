"""Reading and editing TFLite flatbuffers through LiteRT's own Python schema.

``ai_edge_litert`` ships the generated object API of the TFLite schema
(``ai_edge_litert.schema_py_generated``) and its ``tools.flatbuffer_utils``; every part
of the export that looks into or edits a ``.tflite`` file does it through this module.
(TensorFlow's copies live under ``tensorflow.lite.python``, outside TF's public API.)
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

#: The schema's alignment of buffer data (``force_align: 16``), which the Python
#: flatbuffer builder does not apply by itself.
ALIGN = 16

#: Builtin operator codes to their names (``FULLY_CONNECTED`` ...).
_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                  if not name.startswith("_")}


def read_model(content: bytes) -> "schema.ModelT":
    """The object form of a ``.tflite`` flatbuffer, to read or edit."""
    return flatbuffer_utils.read_model_from_bytearray(bytearray(content))


def write_model(model: "schema.ModelT") -> bytes:
    """The flatbuffer of ``model`` (the object form :func:`read_model` gives)."""
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def operator_names(content: bytes) -> Counter:
    """How many times each operator occurs in the model: builtins by name (``CONV_2D``),
    custom operators (Flex ones included, ``FlexConv2D``) by their custom code."""
    model = read_model(content)
    names = []
    for code in model.operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.append((code.customCode or b"CUSTOM").decode())
        else:
            names.append(_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    return Counter(names[operator.opcodeIndex] for graph in model.subgraphs for operator in graph.operators)


def constants(content: bytes, patterns: Sequence[str]) -> dict[str, np.ndarray]:
    """The float32 constants of a TFLite model whose names match ``patterns``
    (``re.search``), by name, in their shapes."""
    model = read_model(content)
    found = {}
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            name = (tensor.name or b"").decode()
            data = model.buffers[tensor.buffer].data if tensor.buffer else None
            if (data is not None and tensor.type == schema.TensorType.FLOAT32
                    and any(re.search(pattern, name) for pattern in patterns)):
                values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32)
                found[name] = values.reshape([int(d) for d in tensor.shape])
    return found


class AlignedBuffer(schema.BufferT):
    """A buffer whose data is packed ``ALIGN``-byte aligned, as the converter writes it."""

    def Pack(self, builder: flatbuffers.Builder):  # noqa: N802 (the schema's name)
        data = None
        if self.data is not None and len(self.data):
            raw = np.frombuffer(np.asarray(self.data, np.uint8).tobytes(), np.uint8)
            builder.Prep(ALIGN, len(raw))  # the vector's first byte lands ALIGN-aligned
            data = builder.CreateNumpyVector(raw)
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


class SymmetricParameters(schema.QuantizationParametersT):
    """Per-channel int8 scales with all-zero zero points, packed small.

    The zero points (int64, all 0) would take 8 bytes a channel, twice the scales: one
    vector per length is written and pointed to by every tensor with that many channels
    (a flatbuffer may refer to a vector many times; the interpreter only needs as many
    zero points as scales).

    Args:
        scales: one per slice along ``axis``.
        axis: the quantized dimension.
        zero_vectors: the shared ``{(id(builder), length): vector offset}`` of one model.
    """

    def __init__(self, scales: np.ndarray, axis: int, zero_vectors: dict):
        super().__init__()
        self.scale, self.quantizedDimension = np.asarray(scales, np.float32), axis
        self.zeroPoint = np.zeros(len(scales), np.int64)
        self.zero_vectors = zero_vectors

    @classmethod
    def shares(cls, parameters) -> bool:
        """Whether ``parameters`` (a converter's) are symmetric scales and nothing else."""
        return (parameters is not None and parameters.scale is not None
                and len(parameters.scale) > 0 and parameters.zeroPoint is not None
                and len(parameters.zeroPoint) == len(parameters.scale)
                and not np.any(parameters.zeroPoint) and parameters.min is None
                and parameters.max is None and not parameters.detailsType)

    def Pack(self, builder: flatbuffers.Builder):  # noqa: N802
        scale = builder.CreateNumpyVector(self.scale)
        key = (id(builder), len(self.scale))
        if key not in self.zero_vectors:
            self.zero_vectors[key] = builder.CreateNumpyVector(self.zeroPoint)
        schema.QuantizationParametersStart(builder)
        schema.QuantizationParametersAddScale(builder, scale)
        schema.QuantizationParametersAddZeroPoint(builder, self.zero_vectors[key])
        schema.QuantizationParametersAddQuantizedDimension(builder, self.quantizedDimension)
        return schema.QuantizationParametersEnd(builder)
