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
  few whose operators cost the output most, ``convert.FLOAT_COMPUTE_PATTERNS``) are
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

from tf_metatasnet.export.tflite.flatbuffer import AlignedBuffer, SymmetricParameters, read_model, schema, write_model

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
    float16 = [re.compile(pattern) for pattern in float16]
    model = read_model(model_content)
    store = _Store(model)
    for graph in model.subgraphs:
        rewrite = _GraphRewrite(store, graph)
        for index, tensor in enumerate(list(graph.tensors)):
            rewrite.tensor(index, tensor, min_elements, min_slice, dict(float_weights or {}),
                           dict(rounding or {}), float16)
        rewrite.place_restorers()
    _drop_replaced_data(model)
    return write_model(model)


class _Store:
    """A model being rewritten: the operator codes and stored buffers its graphs share.

    Equal constants share a buffer in the converter's output; their stored forms do too.
    """

    def __init__(self, model):
        self.model = model
        self.codes = {}                # (builtin code, version) -> operator code index
        self.stored = {}               # (old buffer, shape, dtype, axis, name) -> (new buffer, scales)
        self.zero_vectors = {}         # SymmetricParameters' shared zero points

    def operator_code(self, builtin_code: int, version: int) -> int:
        """The index of the model's operator code for ``builtin_code`` at ``version`` (added if new)."""
        if (builtin_code, version) not in self.codes:
            code = schema.OperatorCodeT()
            code.builtinCode = code.deprecatedBuiltinCode = builtin_code
            code.version = version
            self.model.operatorCodes.append(code)
            self.codes[(builtin_code, version)] = len(self.model.operatorCodes) - 1
        return self.codes[(builtin_code, version)]

    def buffer(self, values: np.ndarray) -> int:
        """The index of a new buffer holding ``values``' bytes."""
        buffer = schema.BufferT()
        buffer.data = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
        self.model.buffers.append(buffer)
        return len(self.model.buffers) - 1

    def store(self, tensor, values: np.ndarray, axis=None, rounded=None):
        """``(buffer index, int8 scales or None)`` of ``values`` stored small: int8 along
        ``axis`` (float32 values), float16 (``axis="float16"``) or as given (int16);
        ``rounded``: the int8 values and scales to store instead of rounding ``values``."""
        key = (tensor.buffer, values.shape, values.dtype.str, axis, None if rounded is None else tensor.name)
        if key not in self.stored:
            scales = None
            if rounded is not None:
                values, scales = np.asarray(rounded[0], np.int8), np.asarray(rounded[1], np.float32)
            elif axis == "float16":
                values = values.astype(np.float16)
            elif values.dtype == np.float32:
                values, scales = quantize_int8(values, axis)
            self.stored[key] = (self.buffer(values), scales)
        return self.stored[key]

    def parameters(self, scales, axis) -> SymmetricParameters:
        return SymmetricParameters(scales, axis, self.zero_vectors)


class _GraphRewrite:
    """One graph's constants stored small, each read back through a new operator."""

    def __init__(self, store: _Store, graph):
        self.store, self.graph = store, graph
        read, written = set(), set()
        for operator in graph.operators:
            read.update(int(t) for t in (operator.inputs if operator.inputs is not None else []))
            written.update(int(t) for t in (operator.outputs if operator.outputs is not None else []))
        self.read = read
        self.kept = written | {int(t) for t in graph.inputs} | {int(t) for t in graph.outputs}
        self.restored = {}   # stored tensor -> (restored tensor, its operators; None once placed)

    # ---------------------------------------------------------------- step 1: choose
    def tensor(self, index, tensor, min_elements, min_slice, float_weights, rounding, float16) -> None:
        """Stores ``tensor`` small if it is a large constant that an operator reads."""
        types, shape = schema.TensorType, [int(d) for d in tensor.shape] if tensor.shape is not None else None
        name = (tensor.name or b"").decode()
        data = self.store.model.buffers[tensor.buffer].data if tensor.buffer else None
        rounded = rounding.get(name)
        if rounded is not None and list(np.shape(rounded[0])) != shape:
            raise ValueError(f"rounded values for {name!r} have shape {np.shape(rounded[0])}, "
                             f"the tensor {shape}")
        constant = data is not None and index in self.read and index not in self.kept
        if name in float_weights and constant:
            values = np.asarray(float_weights[name], np.float32)     # in place of a quantizer's int8
            if list(values.shape) != shape:
                raise ValueError(f"float values for {name!r} have shape {values.shape}, the tensor {shape}")
            tensor.type, tensor.quantization = types.FLOAT32, None
        else:
            if SymmetricParameters.shares(tensor.quantization):      # the converter's int8 weights
                if rounded is not None and constant:
                    tensor.buffer, scales = self.store.store(tensor, np.asarray(rounded[0], np.int8), 0, rounded)
                    tensor.quantization = self.store.parameters(scales, 0)   # still hybrid
                    return
                tensor.quantization = self.store.parameters(tensor.quantization.scale,
                                                            tensor.quantization.quantizedDimension)
            scales = tensor.quantization.scale if tensor.quantization is not None else None
            quantized = scales is not None and len(scales) > 0   # an integer kernel's (int32 bias...)
            if (not constant or tensor.isVariable or shape is None or quantized
                    or tensor.type not in (types.FLOAT32, types.INT32) or len(data) < 4 * min_elements):
                return
            dtype = np.float32 if tensor.type == types.FLOAT32 else np.int32
            values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtype).reshape(shape)
        if values.dtype == np.float32 and any(pattern.search(name) for pattern in float16):
            self._as_float16(index, tensor, values)
        elif values.dtype == np.float32:
            self._as_int8(index, tensor, values, min_elements, min_slice, rounded)
        elif np.iinfo(np.int16).min <= values.min() and values.max() <= np.iinfo(np.int16).max:
            self._as_int16(index, tensor, values)

    # ---------------------------------------------------------------- step 2: store
    def _as_float16(self, index, tensor, values) -> None:
        """float16, and ``DEQUANTIZE`` (version 3) back to float32."""
        buffer, _ = self.store.store(tensor, values, "float16")
        tensor.type = schema.TensorType.FLOAT16
        operator = self._operator(schema.BuiltinOperator.DEQUANTIZE, 3, "DequantizeOptions")
        self._restore(index, tensor, buffer, schema.TensorType.FLOAT32, operator)

    def _as_int8(self, index, tensor, values, min_elements, min_slice, rounded) -> None:
        """int8 with per-slice scales (or GPTQ's), and ``DEQUANTIZE`` (2: per tensor, 5: per
        channel) back to float32; all-zero border slices dropped and padded back."""
        border = None
        if rounded is not None:
            axis = 0
            buffer, scales = self.store.store(tensor, values, axis, rounded)
        else:
            border = zero_border(values, min_elements)
            values = inside(values, border)
            axis = scale_axis(values, min_slice)
            buffer, scales = self.store.store(tensor, values, axis)
        tensor.quantization = self.store.parameters(scales, 0 if axis is None else axis)
        tensor.type = schema.TensorType.INT8
        operator = self._operator(schema.BuiltinOperator.DEQUANTIZE, 2 if axis is None else 5,
                                  "DequantizeOptions")
        self._restore(index, tensor, buffer, schema.TensorType.FLOAT32, operator, border)

    def _as_int16(self, index, tensor, values) -> None:
        """int16, and ``CAST`` back to int32 (exact)."""
        buffer, _ = self.store.store(tensor, values.astype(np.int16))
        tensor.type = schema.TensorType.INT16
        operator = self._operator(schema.BuiltinOperator.CAST, 1, "CastOptions")
        operator.builtinOptions.inDataType = schema.TensorType.INT16
        operator.builtinOptions.outDataType = schema.TensorType.INT32
        self._restore(index, tensor, buffer, schema.TensorType.INT32, operator)

    def _operator(self, builtin_code: int, version: int, options: str):
        """A new operator of ``builtin_code`` with empty options of the schema's ``options`` table."""
        operator = schema.OperatorT()
        operator.opcodeIndex = self.store.operator_code(builtin_code, version)
        operator.builtinOptionsType = getattr(schema.BuiltinOptions, options)
        operator.builtinOptions = getattr(schema, f"{options}T")()
        return operator

    def _new_tensor(self, shape, tensor_type, name, buffer=0) -> int:
        tensor = schema.TensorT()
        tensor.shape, tensor.type, tensor.buffer, tensor.name = list(shape), tensor_type, buffer, name
        self.graph.tensors.append(tensor)
        return len(self.graph.tensors) - 1

    def _restore(self, index, tensor, buffer, output_type, operator, border=None) -> None:
        """Points ``tensor`` at its stored ``buffer`` and makes ``operator`` turn it back into a
        new ``output_type`` tensor, which every old user will read. With a zero ``border``
        ((before, after) per axis), the buffer holds the values inside it and a ``PAD`` puts
        the zeros back."""
        shape, name = [int(d) for d in tensor.shape], tensor.name or b""
        tensor.buffer = buffer
        operator.inputs = [index]
        operators = [operator]
        if border is not None:
            tensor.shape = np.asarray([n - a - b for n, (a, b) in zip(shape, border)], np.int32)
            tensor.shapeSignature = None
            operator.outputs = [self._new_tensor(tensor.shape, output_type, name + b"/trimmed")]
            paddings = self.store.buffer(np.asarray(border, np.int32))
            pad = self._operator(schema.BuiltinOperator.PAD, 1, "PadOptions")
            pad.inputs = [operator.outputs[0], self._new_tensor((len(shape), 2), schema.TensorType.INT32,
                                                                name + b"/paddings", paddings)]
            operators.append(pad)
        operators[-1].outputs = [self._new_tensor(shape, output_type, name + b"/restored")]
        self.restored[index] = (operators[-1].outputs[0], operators)

    # ---------------------------------------------------------------- step 3: place
    def place_restorers(self) -> None:
        """Puts each new operator just before its tensor's first user, and points every user
        at the restored tensor."""
        operators = []
        for operator in self.graph.operators:
            if operator.inputs is not None:
                inputs = [int(t) for t in operator.inputs]
                for position, tensor in enumerate(inputs):
                    if tensor in self.restored:
                        output, placing = self.restored[tensor]
                        if placing is not None:
                            operators.extend(placing)
                            self.restored[tensor] = (output, None)
                        inputs[position] = output
                operator.inputs = inputs
            operators.append(operator)
        self.graph.operators = operators


def _drop_replaced_data(model) -> None:
    """Step 4: empties the buffers no tensor reads any more (the replaced float32 data) and
    makes every buffer pack aligned."""
    referenced = {t.buffer for graph in model.subgraphs for t in graph.tensors}
    referenced.update(entry.buffer for entry in model.metadata or [])
    for index, buffer in enumerate(model.buffers):
        packed = AlignedBuffer()
        packed.data = buffer.data if index in referenced else None
        # (Buffers stored outside the flatbuffer, offset/size, of models over 2 GB: not supported.)
        model.buffers[index] = packed
