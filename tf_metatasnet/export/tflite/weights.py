"""int8 weights for a float32 TFLite model: only the weights are rounded, compute stays float32.

The converter's quantizers either quantize activations too (``dynamic``: hybrid kernels
quantize each layer's input on the fly, about 1 % error a layer; ``int8``: calibrated) or
leave the constants of operators they do not handle (``PACK``, ``CONCATENATION``,
``PAD``, ``MUL``...) in float32. No converter option stores the weights in int8 and
computes in float32, so :func:`quantize_weights` does it on the float32 flatbuffer:

- every constant float32 tensor of at least ``min_elements`` elements that an operator
  reads becomes an int8 tensor with symmetric scales (zero points 0) in the file;
- a builtin ``DEQUANTIZE`` operator, inserted just before the tensor's first user, turns
  it back into a new float32 tensor, which every user then reads;
- the float32 data is dropped from the file;
- int32 constants as large whose values fit in int16 (the gather indices and positions
  of the fixed window, which grow with it: 2 % of the ``small`` model's file at 28-s
  windows) are stored in int16 and ``CAST`` back to int32, exactly;
- in a model with hybrid kernels (``dynamic``), weights given in ``float_weights`` (the
  few whose operators cost the output most, ``tflite_export.FLOAT_COMPUTE_PATTERNS``) are
  stored the same way instead, so those operators compute in float32;
- a constant stored small whose ends are all-zero slices (the converter folds the zero
  padding of the encoders' and decoder's shorter filters into them) is stored without
  them, and a ``PAD`` after the ``DEQUANTIZE`` puts the zeros back (:func:`zero_border`);
- matmul weights may come rounded by GPTQ (:func:`gptq_round`, from the second moments of
  their inputs, :func:`fc_input_hessians`), including a hybrid kernel's, in place;
- constants named in ``float16`` are stored in float16 (``DEQUANTIZE`` to float32 too).

LiteRT's ``DEQUANTIZE`` kernel takes per-channel int8 (op version 5) and, for a constant
input, writes its output to a persistent tensor on the first invocation and skips on
the next ones (``tflite/kernels/dequantize.cc``). So the weights are rounded once, take
float32 room again in memory, and every other operator is the float32 model's. The
only error is the weights' rounding: half a step ``max|slice| / 127`` a weight at most when
rounded to nearest; GPTQ moves single weights further to make the layer's output closer.

Scales are per slice along the axis that rounds the tensor with the least squared
error (a 2-D weight's rows or columns: with float32 compute any axis works), among the
axes whose slices hold at least ``min_slice`` elements, or one scale for the tensor if
that rounds better or no axis qualifies: a slice's scale costs 4 bytes (its zero point
is shared, see ``flatbuffer.SymmetricParameters``).
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from tf_metatasnet.export.tflite.flatbuffer import (AlignedBuffer, SymmetricParameters, read_model, schema,
                                                   write_model)

#: Constant tensors of at least this many elements are stored small; smaller ones (biases,
#: scalars) stay as they are. At 512 rather than 1024, the per-instrument norm and
#: depthwise parameters (4 x 128 in the ``small`` preset) are int8 too: on the trained
#: ``small`` model, 29.8 % of the float32 file instead of 31.1 %, for 0.5 dB less SI-SDR
#: against the float32 model (39.4 instead of 39.9 dB on two generated windows).
MIN_ELEMENTS = 512
#: Per-slice scales only along axes whose slices hold at least this many elements (a
#: scale costs 4 bytes, 6 % of a 64-element slice).
MIN_SLICE = 64


def quantize_int8(values: np.ndarray, axis: "int | None"):
    """``values`` (float32) as symmetric int8 with one scale per slice along ``axis``.

    Returns ``(q, scales)``: ``q`` int8 of ``values``' shape in [-127, 127] and the float32
    scales ``max|slice| / 127`` (one per slice along ``axis``, or one if ``axis`` is
    ``None``; 1 for an all-zero slice). ``q * scales``, broadcast along ``axis``, is what
    ``DEQUANTIZE`` gives back (:func:`dequantize_int8`).
    """
    values = np.asarray(values, np.float32)
    others = tuple(d for d in range(values.ndim) if d != axis) if axis is not None else None
    peak = np.abs(values).max(axis=others).reshape(-1)
    scales = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(values / _along(scales, axis, values.ndim)), -127, 127).astype(np.int8)
    return q, scales


def dequantize_int8(q: np.ndarray, scales: np.ndarray, axis: "int | None") -> np.ndarray:
    """``q * scales`` in float32, ``scales`` broadcast along ``axis`` (TFLite's ``DEQUANTIZE``)."""
    return q.astype(np.float32) * _along(np.asarray(scales, np.float32), axis, q.ndim)


def _along(scales: np.ndarray, axis: "int | None", ndim: int) -> np.ndarray:
    shape = [1] * ndim
    if axis is not None:
        shape[axis] = -1
    return scales.reshape(shape) if ndim else scales.reshape(())


def scale_axis(values: np.ndarray, min_slice: int = MIN_SLICE) -> "int | None":
    """The axis of ``values``' scales that rounds them with the least squared error
    (see the module docstring); ``None`` for one scale."""
    candidates = [None] + [axis for axis in range(values.ndim)
                           if values.shape[axis] > 1 and values.size // values.shape[axis] >= min_slice]
    errors = [float(np.sum(np.square(dequantize_int8(*quantize_int8(values, axis), axis) - values)))
              for axis in candidates]
    return candidates[int(np.argmin(errors))]


def gptq_round(weights: np.ndarray, hessian: np.ndarray, damping: float = 0.01,
               block: int = 128) -> "tuple[np.ndarray, np.ndarray]":
    """A ``FULLY_CONNECTED`` weight ``(out, in)`` in int8 with one scale a row, rounded by GPTQ.

    GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
    Pre-trained Transformers", ICLR 2023) rounds the columns one after another and spreads
    each column's rounding error over the columns not yet rounded, so as to minimise the
    layer's output error ``trace((Q - W) H (Q - W)^T)`` for inputs with second moments
    ``H = X^T X`` (:func:`fc_input_hessians`), where rounding to nearest ignores how the
    inputs correlate. The scales are round-to-nearest's (``max|row| / 127``): same size.
    With a diagonal ``H`` the result is round-to-nearest's.

    Args:
        weights: float32 ``(out, in)``.
        hessian: ``(in, in)``, symmetric positive semi-definite.
        damping: added to ``H``'s diagonal, as a fraction of its mean (the paper's 1 %).
        block: columns updated together (speed only).

    Returns:
        ``(q, scales)`` as :func:`quantize_int8` with ``axis=0`` returns them.
    """
    weights = np.asarray(weights, np.float32)
    _, scales = quantize_int8(weights, 0)
    hessian = np.array(hessian, np.float64)
    if weights.ndim != 2 or hessian.shape != (weights.shape[1],) * 2:
        raise ValueError(f"GPTQ needs a 2-D weight and a square second-moment matrix of its "
                         f"input size, got {weights.shape} and {hessian.shape}")
    unused = np.diag(hessian) <= 0                 # inputs that were always 0: no error to spread
    hessian[unused, unused] = 1.0
    hessian[np.diag_indices_from(hessian)] += damping * np.mean(np.diag(hessian))
    # The upper Cholesky factor of H^-1: row j gives column j's error spread over j+1, j+2...
    spread = np.linalg.cholesky(np.linalg.inv(hessian)).T  # (in, in)
    w = weights.astype(np.float64)                 # (out, in), updated as columns are rounded
    step = scales.astype(np.float64)[:, None]      # (out, 1)
    q = np.zeros(weights.shape, np.int8)
    for start in range(0, w.shape[1], block):
        stop = min(start + block, w.shape[1])
        errors = np.zeros((w.shape[0], stop - start))  # (out, block)
        for j in range(start, stop):
            column = np.clip(np.rint(w[:, j] / step[:, 0]), -127, 127)
            q[:, j] = column
            errors[:, j - start] = (w[:, j] - column * step[:, 0]) / spread[j, j]
            w[:, j + 1:stop] -= np.outer(errors[:, j - start], spread[j, j + 1:stop])
        w[:, stop:] -= errors @ spread[start:stop, stop:]
    return q, scales


def fully_connected_weights(model_content: bytes) -> "dict[str, tuple[int, list[int]]]":
    """The ``FULLY_CONNECTED`` operators' constant float32 weights ``(out, in)`` of a TFLite
    model: ``{weight tensor name: (in, [input tensor index of each operator using it])}``."""
    model = read_model(model_content)
    graph = model.subgraphs[0]
    codes = [code.builtinCode or code.deprecatedBuiltinCode for code in model.operatorCodes]
    found = {}
    for operator in graph.operators:
        if codes[operator.opcodeIndex] != schema.BuiltinOperator.FULLY_CONNECTED:
            continue
        weight = int(operator.inputs[1])
        tensor = graph.tensors[weight]
        if (tensor.buffer and model.buffers[tensor.buffer].data is not None
                and tensor.type == schema.TensorType.FLOAT32 and len(tensor.shape) == 2):
            found.setdefault(tensor.name.decode(), (int(tensor.shape[1]), []))[1].append(int(operator.inputs[0]))
    return found


def run_keeping_tensors(model_content: bytes, feeds):
    """Runs a float TFLite model (LiteRT, no delegate, every intermediate tensor kept) on
    each feed and yields the interpreter after each run, to read its tensors.

    Args:
        model_content: a TFLite flatbuffer.
        feeds: dicts ``{signature input name: array}``, or sequences of arrays in the
            model's input order.
    """
    interpreter = Interpreter(model_content=model_content, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    runner = None   # made at the first dict feed: a signature runner blocks plain invoke()
    for feed in feeds:
        if isinstance(feed, Mapping):
            runner = runner or interpreter.get_signature_runner()
            runner(**feed)
        else:
            for detail, value in zip(interpreter.get_input_details(), feed):
                interpreter.set_tensor(detail["index"], np.asarray(value, detail["dtype"]))
            interpreter.invoke()
        yield interpreter


def fc_input_hessians(model_content: bytes, feeds) -> "dict[str, np.ndarray]":
    """The inputs' second moments ``X^T X`` of a float32 model's ``FULLY_CONNECTED`` weights.

    Runs the model (LiteRT, no delegate, every intermediate tensor kept) on each feed and
    sums, for every constant float32 weight ``(out, in)``, ``X^T X`` of the ``(rows, in)``
    inputs of the operators that use it: what :func:`gptq_round` needs.

    Args:
        model_content: a float32 TFLite flatbuffer with one signature.
        feeds: dicts ``{signature input name: array}`` (e.g. calibration windows), or
            sequences of arrays in the model's input order.

    Returns:
        ``{weight tensor name: (in, in) float64 array}``.
    """
    weights = fully_connected_weights(model_content)
    hessians = {name: np.zeros((size, size)) for name, (size, _) in weights.items()}
    for interpreter in run_keeping_tensors(model_content, feeds):
        for name, (size, inputs) in weights.items():
            for index in inputs:
                x = interpreter.get_tensor(index).reshape(-1, size).astype(np.float32)  # (rows, in)
                hessians[name] += x.T @ x
    return hessians


def zero_border(values: np.ndarray, min_elements: int = MIN_ELEMENTS) -> "list[tuple[int, int]] | None":
    """The all-zero slices at both ends of every axis of ``values``, as ``(before, after)``
    per axis, or ``None`` when they hold fewer than ``min_elements`` values (or the array has
    over 4 axes, more than ``PAD`` takes).

    The converter folds zero padding into constants: the encoder's and decoder's filters
    of every resolution are padded to the longest kernel, half zeros in all. Outside the
    inner block every value lies on an all-zero slice, so the block and the border give
    the array back exactly.
    """
    if values.ndim == 0 or values.ndim > 4 or not values.size:
        return None
    border = []
    for axis in range(values.ndim):
        nonzero = np.flatnonzero(np.any(np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1), axis=1))
        if not len(nonzero):
            return None                                    # all zeros: nothing to gain
        border.append((int(nonzero[0]), int(values.shape[axis] - 1 - nonzero[-1])))
    kept = int(np.prod([n - a - b for n, (a, b) in zip(values.shape, border)]))
    return border if values.size - kept >= min_elements else None


def inside(values: np.ndarray, border: "list[tuple[int, int]] | None") -> np.ndarray:
    """``values`` without their zero ``border`` (see :func:`zero_border`)."""
    if border is None:
        return values
    return values[tuple(slice(a, n - b) for n, (a, b) in zip(values.shape, border))]


def quantize_weights(model_content: bytes, min_elements: int = MIN_ELEMENTS,
                     min_slice: int = MIN_SLICE,
                     float_weights: "Mapping[str, np.ndarray] | None" = None,
                     rounding: "Mapping[str, tuple[np.ndarray, np.ndarray]] | None" = None,
                     float16: "Sequence[str]" = ()) -> bytes:
    """The float32 flatbuffer ``model_content`` with its large constants stored small.

    Float32 constants become int8 and ``DEQUANTIZE`` (see the module docstring); int32
    constants of at least ``min_elements`` whose values fit in int16 (the gather indices
    of the fixed window, which grow with it) become int16 and a ``CAST`` back to int32,
    exactly. Inputs, outputs, signatures and all other tensors are kept; so are constants
    that are graph outputs or variables.

    Args:
        model_content: a TFLite flatbuffer: a float32 one, or a converter's quantized one,
            whose float32 and int32 constants read by float operators are stored small.
        min_elements: the smallest constant stored small (default ``MIN_ELEMENTS``).
        min_slice: the smallest slice with a scale of its own (default ``MIN_SLICE``).
        float_weights: float32 values, by tensor name, of constants that a quantizer
            stored as integers (a hybrid kernel's int8 weights; pass the float model's
            values). They are stored again as the float32 constants are: int8 along the
            axis that rounds them best, read through ``DEQUANTIZE``. So the operators that
            read them compute in float32, their inputs no longer quantized on the fly.
        rounding: int8 values and row scales ``(q, scales)``, by tensor name, of 2-D weights
            rounded elsewhere (:func:`gptq_round`), used instead of rounding to nearest: a
            float32 constant (or one of ``float_weights``) is stored with them, scales along
            axis 0; a hybrid kernel's int8 weights are replaced by them in place (the kernel
            stays hybrid).
        float16: patterns (``re.search``) of the names of float32 constants to store in
            float16 rather than int8 (``DEQUANTIZE`` turns them back into float32 too): small
            tensors whose int8 rounding costs much, such as the norms' per-channel gains.

    Returns:
        the new flatbuffer.
    """
    types, builtin = schema.TensorType, schema.BuiltinOperator
    float_weights, rounding = dict(float_weights or {}), dict(rounding or {})
    float16 = [re.compile(pattern) for pattern in float16]
    model = read_model(model_content)
    parameters = SymmetricParameters
    zero_vectors, codes = {}, {}
    stored = {}                                  # (old buffer, shape, axis) -> (new buffer, scales)

    def operator_code(builtin_code, version):
        if (builtin_code, version) not in codes:
            code = schema.OperatorCodeT()
            code.builtinCode = code.deprecatedBuiltinCode = builtin_code
            code.version = version
            model.operatorCodes.append(code)
            codes[(builtin_code, version)] = len(model.operatorCodes) - 1
        return codes[(builtin_code, version)]

    def store(tensor, values, axis=None, rounded=None):
        """The index of a new buffer with ``values``, shared by equal constants (the converter
        shares equal constants' buffers), and the int8 scales (``None`` for int16);
        ``rounded``: the int8 values and scales to store instead of rounding ``values``."""
        key = (tensor.buffer, values.shape, values.dtype.str, axis, None if rounded is None else tensor.name)
        if key not in stored:
            scales = None
            if rounded is not None:
                values, scales = np.asarray(rounded[0], np.int8), np.asarray(rounded[1], np.float32)
            elif axis == "float16":
                values = values.astype(np.float16)
            elif values.dtype == np.float32:
                values, scales = quantize_int8(values, axis)
            buffer = schema.BufferT()
            buffer.data = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
            model.buffers.append(buffer)
            stored[key] = (len(model.buffers) - 1, scales)
        return stored[key]

    for graph in model.subgraphs:
        read, written = set(), set()
        for operator in graph.operators:
            read.update(int(t) for t in (operator.inputs if operator.inputs is not None else []))
            written.update(int(t) for t in (operator.outputs if operator.outputs is not None else []))
        kept = written | {int(t) for t in graph.inputs} | {int(t) for t in graph.outputs}
        restored = {}                    # stored tensor -> (restored tensor, operators; None once placed)

        def new_tensor(shape, tensor_type, name, buffer=0):
            tensor = schema.TensorT()
            tensor.shape, tensor.type, tensor.buffer, tensor.name = list(shape), tensor_type, buffer, name
            graph.tensors.append(tensor)
            return len(graph.tensors) - 1

        def restore(index, tensor, buffer, output_type, operator, border=None):
            """Points ``tensor`` at its stored ``buffer`` and makes ``operator`` turn it back
            into a new ``output_type`` tensor, which every old user will read. With a zero
            ``border`` ((before, after) per axis), the buffer holds the values inside it
            and a ``PAD`` puts the zeros back."""
            shape, name = [int(d) for d in tensor.shape], tensor.name or b""
            tensor.buffer = buffer
            operator.inputs = [index]
            operators = [operator]
            if border is not None:
                tensor.shape = np.asarray([n - a - b for n, (a, b) in zip(shape, border)], np.int32)
                tensor.shapeSignature = None
                operator.outputs = [new_tensor(tensor.shape, output_type, name + b"/trimmed")]
                paddings = schema.BufferT()
                paddings.data = np.asarray(border, np.int32).reshape(-1).view(np.uint8)
                model.buffers.append(paddings)
                pad = schema.OperatorT()
                pad.opcodeIndex = operator_code(builtin.PAD, 1)
                pad.builtinOptionsType = schema.BuiltinOptions.PadOptions
                pad.builtinOptions = schema.PadOptionsT()
                pad.inputs = [operator.outputs[0], new_tensor((len(shape), 2), types.INT32, name + b"/paddings",
                                                              len(model.buffers) - 1)]
                operators.append(pad)
            operators[-1].outputs = [new_tensor(shape, output_type, name + b"/restored")]
            restored[index] = (operators[-1].outputs[0], operators)
        for index, tensor in enumerate(list(graph.tensors)):
            name = (tensor.name or b"").decode()
            data = model.buffers[tensor.buffer].data if tensor.buffer else None
            rounded = rounding.get(name)
            if rounded is not None and list(np.shape(rounded[0])) != [int(d) for d in tensor.shape]:
                raise ValueError(f"rounded values for {name!r} have shape {np.shape(rounded[0])}, "
                                 f"the tensor {[int(d) for d in tensor.shape]}")
            if name in float_weights and data is not None and index in read and index not in kept:
                values = np.asarray(float_weights[name], np.float32)     # in place of a quantizer's int8
                if list(values.shape) != [int(d) for d in tensor.shape]:
                    raise ValueError(f"float values for {name!r} have shape {values.shape}, "
                                     f"the tensor {[int(d) for d in tensor.shape]}")
                tensor.type, tensor.quantization, dtype = types.FLOAT32, None, np.float32
            else:
                if parameters.shares(tensor.quantization):          # the converter's int8 weights
                    if rounded is not None and data is not None and index not in kept:
                        tensor.buffer, scales = store(tensor, np.asarray(rounded[0], np.int8), 0, rounded)
                        tensor.quantization = parameters(scales, 0, zero_vectors)  # still hybrid
                        continue
                    tensor.quantization = parameters(tensor.quantization.scale,
                                                     tensor.quantization.quantizedDimension, zero_vectors)
                scales = tensor.quantization.scale if tensor.quantization is not None else None
                quantized = scales is not None and len(scales) > 0   # an integer kernel's (int32 bias...)
                if (index in kept or index not in read or tensor.isVariable or tensor.shape is None
                        or quantized or tensor.type not in (types.FLOAT32, types.INT32) or data is None
                        or len(data) < 4 * min_elements):
                    continue
                dtype = np.float32 if tensor.type == types.FLOAT32 else np.int32
                values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtype)
                values = values.reshape([int(d) for d in tensor.shape])
            operator, border = schema.OperatorT(), None
            if dtype == np.float32 and any(pattern.search(name) for pattern in float16):
                buffer, _ = store(tensor, values, "float16")    # float16 and DEQUANTIZE (3)
                tensor.type, output_type = types.FLOAT16, types.FLOAT32
                operator.opcodeIndex = operator_code(builtin.DEQUANTIZE, 3)
                operator.builtinOptionsType = schema.BuiltinOptions.DequantizeOptions
                operator.builtinOptions = schema.DequantizeOptionsT()
            elif dtype == np.float32:            # int8 and DEQUANTIZE (2: per tensor, 5: per channel)
                if rounded is not None:
                    axis = 0
                    buffer, scales = store(tensor, values, axis, rounded)
                else:
                    border = zero_border(values, min_elements)
                    values = inside(values, border)
                    axis = scale_axis(values, min_slice)
                    buffer, scales = store(tensor, values, axis)
                tensor.quantization = parameters(scales, 0 if axis is None else axis, zero_vectors)
                tensor.type, output_type = types.INT8, types.FLOAT32
                operator.opcodeIndex = operator_code(builtin.DEQUANTIZE, 2 if axis is None else 5)
                operator.builtinOptionsType = schema.BuiltinOptions.DequantizeOptions
                operator.builtinOptions = schema.DequantizeOptionsT()
            elif np.iinfo(np.int16).min <= values.min() and values.max() <= np.iinfo(np.int16).max:
                buffer, _ = store(tensor, values.astype(np.int16))   # int16 and CAST
                tensor.type, output_type = types.INT16, types.INT32
                operator.opcodeIndex = operator_code(builtin.CAST, 1)
                operator.builtinOptionsType = schema.BuiltinOptions.CastOptions
                operator.builtinOptions = options = schema.CastOptionsT()
                options.inDataType, options.outDataType = types.INT16, types.INT32
            else:
                continue
            restore(index, tensor, buffer, output_type, operator, border)

        operators = []                           # each new operator just before its tensor's first user
        for operator in graph.operators:
            if operator.inputs is not None:
                inputs = [int(t) for t in operator.inputs]
                for position, tensor in enumerate(inputs):
                    if tensor in restored:
                        output, placing = restored[tensor]
                        if placing is not None:
                            operators.extend(placing)
                            restored[tensor] = (output, None)
                        inputs[position] = output
                operator.inputs = inputs
            operators.append(operator)
        graph.operators = operators

    referenced = {t.buffer for graph in model.subgraphs for t in graph.tensors}
    referenced.update(entry.buffer for entry in model.metadata or [])
    for index, buffer in enumerate(model.buffers):
        packed = AlignedBuffer()
        packed.data = buffer.data if index in referenced else None   # replaced float32 data dropped
        # (Buffers stored outside the flatbuffer, offset/size, of models over 2 GB: not supported.)
        model.buffers[index] = packed
    return write_model(model)
