"""The quantizations of one instrument's graph: a fixed-shape SavedModel to TFLite bytes.

Every model runs with TFLite's builtin operators only, no Select TF ops (the Flex
delegate would add tens of MB to an app); ``op_report`` checks that from the file's
operator list. Inputs and outputs are float32 in every variant:

- ``float32``: the Keras model's numbers;
- ``float16``: weights stored in float16, computed in float32;
- ``dynamic``: weights in int8, activations quantized on the fly (dynamic range); the
  constants the converter's quantizer leaves in float32 (those of ``PACK``, ``PAD``,
  ``MUL``...) are then stored in int8 as ``int8_weights`` stores them, and the window's
  int32 index tables in int16 (``weights.quantize_weights``); the decoder's and the
  last encoder's matmuls compute in float32 (``FLOAT_COMPUTE_PATTERNS``);
- ``int8_weights``: weights in int8 (per-channel scales), turned back into float32 once by
  builtin ``DEQUANTIZE`` ops, all computation in float32: only the weights' rounding
  error (``tf_metatasnet.export.tflite.weights``, a pass over the float32 file, since no
  converter option does this; it also stores the constants of ``PACK``, ``PAD``... in
  int8, which the converter's quantizers leave in float32);
- ``int8``: weights and activations in int8, calibrated on representative windows
  (``tf_metatasnet.export.calibration``), except ``INT8_FLOAT_PATTERNS``, kept in float: the
  encoder's log-power spectrogram branch (int8 cannot hold ``log10(|STFT|^2 + 1e-8)``'s
  input range), the group norms, the decoder, the last stage's encoder and the masking
  TCNs' element-wise ops (every matmul of the masking networks is int8); their
  constants, and the index tables, are then stored small as in ``dynamic``. Each
  activation's int8 range is the one that rounds its values on short windows of the
  representative audio best (``tf_metatasnet.export.tflite.ranges``), not the calibration's
  min/max.

In ``dynamic`` and ``int8_weights`` the matmul (``FULLY_CONNECTED``) weights are rounded by
GPTQ (``weights.gptq_round``), from their inputs' second moments on short windows
of representative audio (``statistics_windows``, ``weights.fc_input_hessians``),
instead of to nearest; and in all three int8 variants the few constants of
``FLOAT16_PATTERNS`` (norm gains, depthwise taps, decoder filters) are stored in float16.
On the trained ``small`` model (vocals, demo song) that took ``dynamic`` from 36.6 to
42.0 dB of SI-SDR against Keras and ``int8_weights`` from 39.1 to 46.0 dB, at 29.8 and
30.0 % of the float32 file.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from tf_metatasnet.export.tflite.flatbuffer import constants, operator_names, read_model, schema
from tf_metatasnet.export.tflite.options import QUANTIZATIONS
from tf_metatasnet.export.tflite.ranges import mse_ranges, with_ranges
from tf_metatasnet.export.tflite.weights import MIN_ELEMENTS, gptq_round, quantize_weights

#: Operators that mean a model needs TensorFlow's kernels (the Flex delegate).
_FLEX_PREFIXES = ("Flex", "FlexDelegate")


#: Parts kept in float in the int8 variant, as patterns of tensor names (``{last}``: the
#: last stage's index): the log-power spectrogram branch (int8 cannot hold its input's
#: range), the group norms (a variance summed over the whole window), the decoder and the
#: last stage's encoder (little after them absorbs their errors), and the element-wise
#: parts of the masking TCNs: depthwise taps, PReLUs and the residual and skip sums
#: (every int8 element-wise op rounds its output once more). Every matmul of the masking
#: networks, most of the work, stays int8 with int8 activations. The float parts' weights
#: are stored small either way (``weights.quantize_weights``: int8, or float16 for
#: ``INT8_FLOAT16_PATTERNS``), so the file is no larger. On the trained ``small`` model
#: (vocals, 4-s windows of the demo song, activation ranges of ``ranges``): 22.3 dB
#: of SI-SDR against float32 with the first two, 24.3 with the decoder and encoder, 25.4
#: with all; at the default 33.28-s windows, 25.2 dB at 29.7 % of the float32 file.
INT8_FLOAT_PATTERNS = (r"spectrogram", r"/norm_", r"^decoder", r"^stage_{last}(_\d+)?/encoder",
                       r"dconv", r"prelu", r"mask_\d+/add")

#: Operators that ``dynamic`` computes in float32, as patterns of their weights' tensor
#: names (``{last}``: the last stage's index): the decoder's bottleneck matmul and the last
#: stage encoder's matmuls. Their errors reach the waveform with little after them to
#: absorb them; hybrid, they cost the most of all. Their weights stay int8 (read through
#: ``DEQUANTIZE``): the same size. On the trained ``small`` model (vocals, demo song) the
#: decoder's took ``dynamic`` from 35.2 to 36.6 dB, and the encoder's, with the rest of
#: this file's measures, from 39.9 to 42.0 dB.
FLOAT_COMPUTE_PATTERNS = (r"^decoder(_\d+)?/MatMul$", r"^stage_{last}(_\d+)?/encoder(_\d+)?/MatMul(_\d+)?$")

#: Constants that the int8 variants store in float16 rather than int8, as patterns of their
#: names: the norms' per-channel gains and biases, the depthwise convolutions' taps and the
#: decoder's filter banks. Small (2.6 % of the ``small`` model's values) but costly in int8:
#: on the trained ``small`` model, ``int8_weights`` 41.8 -> 46.3 dB and ``dynamic`` 38.4 ->
#: 39.9 dB, for 1.1 % of the float32 file more.
FLOAT16_PATTERNS = (r"/norm_", r"dconv", r"^decoder(_\d+)?/Pad")
#: ``int8``'s: the same but the decoder's filters, which stay int8 there. Its error is
#: dominated by the int8 activations, and the float16 filters (decoder kept in float)
#: would cost 0.5 % of the float32 file.
INT8_FLOAT16_PATTERNS = (r"/norm_", r"dconv")


def _float_tensors(model_content: bytes, patterns=INT8_FLOAT_PATTERNS) -> list[str]:
    """Names of the float model's tensors that match ``patterns`` (``{last}``: the last stage)."""
    names = [detail["name"] for detail in Interpreter(model_content=model_content).get_tensor_details()]
    last = max((int(found.group(1)) for found in map(re.compile(r"stage_(\d+)").match, names) if found),
               default=0)
    patterns = [pattern.format(last=last) for pattern in patterns]
    return [name for name in names if any(re.search(pattern, name) for pattern in patterns)]


def float_compute_weights(float_content: bytes) -> dict[str, np.ndarray]:
    """The float32 values of the weights ``FLOAT_COMPUTE_PATTERNS`` names, by name."""
    graph = read_model(float_content).subgraphs[0]
    stages = [int(found.group(1)) for found in (re.match(rb"stage_(\d+)", tensor.name or b"")
                                                for tensor in graph.tensors) if found]
    last = max(stages, default=0)
    return constants(float_content, [pattern.format(last=last) for pattern in FLOAT_COMPUTE_PATTERNS])


def gptq_rounding(float_content: bytes, hessians: "dict[str, np.ndarray] | None") -> dict:
    """GPTQ's int8 rounding (``weights.gptq_round``) of the ``FULLY_CONNECTED`` weights
    of the float32 model ``float_content`` that ``hessians`` has statistics for, by name."""
    if not hessians:
        return {}
    weights = constants(float_content, [f"^{re.escape(name)}$" for name in hessians])
    return {name: gptq_round(values, hessians[name]) for name, values in weights.items()
            if values.ndim == 2 and values.size >= MIN_ELEMENTS}


def convert(saved_model_dir: str, quantization: str = "float32",
            representative: "Callable[[], object] | None" = None,
            hessians: "dict[str, np.ndarray] | None" = None,
            statistics: "tuple[bytes, list] | None" = None) -> bytes:
    """Converts a fixed-shape SavedModel (``tf_metatasnet.export.graph``) to a TFLite flatbuffer.

    Args:
        saved_model_dir: a SavedModel with one ``serving_default`` signature.
        quantization: one of ``QUANTIZATIONS``.
        representative: for ``int8``, a function returning an iterable of input dicts
            ``{input name: array}`` (TFLite's ``representative_dataset``).
        hessians: for ``dynamic`` and ``int8_weights``, the second moments of the
            ``FULLY_CONNECTED`` weights' inputs (``weights.fc_input_hessians``, by
            weight name): those weights are rounded by GPTQ instead of to nearest.
        statistics: for ``int8``, ``(float32 model, feeds)``: the activations' ranges are
            then the ones that round them best on those feeds (``ranges``), not the
            calibration's min/max. The model may be traced for shorter windows.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r} (choose from {', '.join(QUANTIZATIONS)})")

    def converter():
        result = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        result.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return result

    if quantization == "float32":
        return converter().convert()
    if quantization == "int8_weights":
        plain = converter().convert()
        return quantize_weights(plain, rounding=gptq_rounding(plain, hessians), float16=FLOAT16_PATTERNS)
    if quantization == "float16":
        quantizing = converter()
        quantizing.optimizations = [tf.lite.Optimize.DEFAULT]
        quantizing.target_spec.supported_types = [tf.float16]
        return quantizing.convert()
    if quantization == "dynamic":
        quantizing = converter()
        quantizing.optimizations = [tf.lite.Optimize.DEFAULT]
        # The constants the quantizer left in float32 are stored small; FLOAT_COMPUTE_PATTERNS'
        # weights, which it made hybrid, are stored again from the float model's values; and
        # the hybrid kernels' weights are rounded again by GPTQ where there are statistics.
        plain = converter().convert()
        return quantize_weights(quantizing.convert(), float_weights=float_compute_weights(plain),
                                rounding=gptq_rounding(plain, hessians), float16=FLOAT16_PATTERNS)
    if representative is None:
        raise ValueError("int8 quantization needs representative windows")
    keep_float = _float_tensors(converter().convert())
    quantizing = converter()
    quantizing.optimizations = [tf.lite.Optimize.DEFAULT]
    quantizing.representative_dataset = representative
    quantizing.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                            tf.lite.OpsSet.TFLITE_BUILTINS]
    # Selective quantization: the debugger's denylist keeps those tensors' ops in float.
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=quantizing, debug_dataset=representative,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=keep_float, fully_quantize=False))
    if statistics is not None:
        calibrated = bytes(debugger.calibrated_model)
        debugger.calibrated_model = with_ranges(calibrated, mse_ranges(calibrated, *statistics))
    return quantize_weights(debugger.get_nondebug_quantized_model(), float16=INT8_FLOAT16_PATTERNS)


def op_report(model_content: bytes) -> dict:
    """The model's operators and whether they are all TFLite builtins.

    Returns ``{"ops": {name: count}, "select_tf_ops": [...], "builtin_only": bool}``;
    ``select_tf_ops`` lists Flex (Select TF) and custom operators.
    """
    ops = operator_names(model_content)  # custom operators (Flex ones too) by their code
    builtin = set(vars(schema.BuiltinOperator))
    select = sorted(name for name in ops if name.startswith(_FLEX_PREFIXES) or name not in builtin)
    return {"ops": dict(sorted(ops.items())), "select_tf_ops": select, "builtin_only": not select}


