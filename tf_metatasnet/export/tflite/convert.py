"""TFLite models per instrument, for phones: generator folded, fixed window, builtin ops only.

``export_tflite`` writes, for each instrument and quantization, ``<instrument>_<quantization>.tflite``
and beside it ``<instrument>_<quantization>.json``, the metadata an app needs to run it
(the contract shared with the Android core, ``tf_metatasnet.tflite/1``: rates, input and
output names, indices, shapes and dtypes, chunk / context / overlap / window lengths,
quantization, model version; see ``tflite_metadata``).

Every model runs with TFLite's builtin operators only, no Select TF ops (the Flex
delegate would add tens of MB to an app); ``op_report`` checks that from the file's
operator list. Inputs and outputs are float32 in every variant:

- ``float32``: the Keras model's numbers;
- ``float16``: weights stored in float16, computed in float32;
- ``dynamic``: weights in int8, activations quantized on the fly (dynamic range); the
  constants the converter's quantizer leaves in float32 (those of ``PACK``, ``PAD``,
  ``MUL``...) are then stored in int8 as ``int8_weights`` stores them, and the window's
  int32 index tables in int16 (``tflite_weights.quantize_weights``); the decoder's and the
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
GPTQ (``tflite_weights.gptq_round``), from their inputs' second moments on short windows
of representative audio (``statistics_windows``, ``tflite_weights.fc_input_hessians``),
instead of to nearest; and in all three int8 variants the few constants of
``FLOAT16_PATTERNS`` (norm gains, depthwise taps, decoder filters) are stored in float16.
On the trained ``small`` model (vocals, demo song) that took ``dynamic`` from 36.6 to
42.0 dB of SI-SDR against Keras and ``int8_weights`` from 39.1 to 46.0 dB, at 29.8 and
30.0 % of the float32 file.

The graph is the folded model with export formulations of two layers
(``export_graph.make_exportable``: same values, constants that survive quantization).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from tf_metatasnet.atomic import write_bytes_atomically, write_text_atomically
from tf_metatasnet.inference.separator import window_alignment

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8_weights", "int8")
FORMAT = "tf_metatasnet.tflite/1"
#: Operators that mean a model needs TensorFlow's kernels (the Flex delegate).
_FLEX_PREFIXES = ("Flex", "FlexDelegate")


#: The phone models' default window, in seconds. The context covers the paper model's
#: receptive field (1.42 s each side, ``MetaTasNetConfig.receptive_field_seconds``); more
#: would only be recomputed in every window, and a long chunk spreads its cost: 33-s
#: windows that advance by 29 s. (Whole-song separation keeps 4 s of context.)
CHUNK_SECONDS, CONTEXT_SECONDS, OVERLAP_SECONDS = 30.0, 1.5, 1.0


@dataclasses.dataclass(frozen=True)
class Chunking:
    """How a song is cut for a fixed-window model, in base samples (see ``apply.plan_windows``).

    Attributes:
        chunk: kept region per window.
        context: context on each side.
        overlap: crossfade between neighbouring kept regions.
        align: where windows start (a common frame of the encoder and the STFT); the
            other three are multiples of it.
    """

    chunk: int
    context: int
    overlap: int
    align: int

    @property
    def window(self) -> int:
        """The model's fixed input length in base samples: ``chunk + 2 * context``."""
        return self.chunk + 2 * self.context

    @classmethod
    def from_seconds(cls, base_rate: int, stride: int, chunk_seconds: float = CHUNK_SECONDS,
                     context_seconds: float = CONTEXT_SECONDS,
                     overlap_seconds: float = OVERLAP_SECONDS) -> "Chunking":
        """Lengths in seconds rounded up to whole alignment units."""
        align = window_alignment(base_rate, stride)

        def units(seconds):
            return int(np.ceil(round(seconds * base_rate) / align)) * align

        chunk, context, overlap = units(chunk_seconds), units(context_seconds), units(overlap_seconds)
        if chunk <= 0 or not 0 <= overlap < chunk:
            raise ValueError(f"need a positive chunk longer than the overlap, got chunk {chunk}, "
                             f"overlap {overlap} samples at {base_rate} Hz")
        return cls(chunk, context, overlap, align)


def model_version(path: "str | os.PathLike") -> str:
    """The first 12 hex digits of the model file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


#: Parts kept in float in the int8 variant, as patterns of tensor names (``{last}``: the
#: last stage's index): the log-power spectrogram branch (int8 cannot hold its input's
#: range), the group norms (a variance summed over the whole window), the decoder and the
#: last stage's encoder (little after them absorbs their errors), and the element-wise
#: parts of the masking TCNs: depthwise taps, PReLUs and the residual and skip sums
#: (every int8 element-wise op rounds its output once more). Every matmul of the masking
#: networks, most of the work, stays int8 with int8 activations. The float parts' weights
#: are stored small either way (``tflite_weights.quantize_weights``: int8, or float16 for
#: ``INT8_FLOAT16_PATTERNS``), so the file is no larger. On the trained ``small`` model
#: (vocals, 4-s windows of the demo song, activation ranges of ``tflite_ranges``): 22.3 dB
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

#: How ``dynamic`` and ``int8_weights`` round their ``FULLY_CONNECTED`` weights: ``gptq``
#: (``tflite_weights.gptq_round``, from the float model's inputs to each layer) or
#: ``nearest``. GPTQ's statistics come from ``GPTQ_WINDOWS`` windows of
#: ``GPTQ_WINDOW_SECONDS``, cut from the calibration windows (generated songs without
#: them): short, because every intermediate tensor of the model is kept to read them.
WEIGHT_ROUNDINGS = ("gptq", "nearest")
GPTQ_WINDOWS, GPTQ_WINDOW_SECONDS = 8, 2.0


def check_weight_rounding(weight_rounding: str) -> None:
    """Raises a one-line ``ValueError`` unless ``weight_rounding`` is one of ``WEIGHT_ROUNDINGS``."""
    if weight_rounding not in WEIGHT_ROUNDINGS:
        raise ValueError(f"unknown weight rounding {weight_rounding!r} (choose from {', '.join(WEIGHT_ROUNDINGS)})")


def _float_tensors(model_content: bytes, patterns=INT8_FLOAT_PATTERNS) -> list[str]:
    """Names of the float model's tensors that match ``patterns`` (``{last}``: the last stage)."""
    from ai_edge_litert.interpreter import Interpreter

    names = [detail["name"] for detail in Interpreter(model_content=model_content).get_tensor_details()]
    last = max((int(found.group(1)) for found in map(re.compile(r"stage_(\d+)").match, names) if found),
               default=0)
    patterns = [pattern.format(last=last) for pattern in patterns]
    return [name for name in names if any(re.search(pattern, name) for pattern in patterns)]


def _constants(model_content: bytes, patterns: Sequence[str]) -> dict[str, np.ndarray]:
    """The float32 constants of a TFLite model whose names match ``patterns``, by name."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
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


def float_compute_weights(float_content: bytes) -> dict[str, np.ndarray]:
    """The float32 values of the weights ``FLOAT_COMPUTE_PATTERNS`` names, by name."""
    from tensorflow.lite.tools import flatbuffer_utils

    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(float_content)).subgraphs[0]
    stages = [int(found.group(1)) for found in (re.match(rb"stage_(\d+)", tensor.name or b"")
                                                for tensor in graph.tensors) if found]
    last = max(stages, default=0)
    return _constants(float_content, [pattern.format(last=last) for pattern in FLOAT_COMPUTE_PATTERNS])


def gptq_rounding(float_content: bytes, hessians: "dict[str, np.ndarray] | None") -> dict:
    """GPTQ's int8 rounding (``tflite_weights.gptq_round``) of the ``FULLY_CONNECTED`` weights
    of the float32 model ``float_content`` that ``hessians`` has statistics for, by name."""
    from tf_metatasnet.export.tflite.weights import MIN_ELEMENTS, gptq_round

    if not hessians:
        return {}
    weights = _constants(float_content, [f"^{re.escape(name)}$" for name in hessians])
    return {name: gptq_round(values, hessians[name]) for name, values in weights.items()
            if values.ndim == 2 and values.size >= MIN_ELEMENTS}


def convert(saved_model_dir: str, quantization: str = "float32",
            representative: "Callable[[], object] | None" = None,
            hessians: "dict[str, np.ndarray] | None" = None,
            statistics: "tuple[bytes, list] | None" = None) -> bytes:
    """Converts a fixed-shape SavedModel (``export_graph``) to a TFLite flatbuffer.

    Args:
        saved_model_dir: a SavedModel with one ``serving_default`` signature.
        quantization: one of ``QUANTIZATIONS``.
        representative: for ``int8``, a function returning an iterable of input dicts
            ``{input name: array}`` (TFLite's ``representative_dataset``).
        hessians: for ``dynamic`` and ``int8_weights``, the second moments of the
            ``FULLY_CONNECTED`` weights' inputs (``tflite_weights.fc_input_hessians``, by
            weight name): those weights are rounded by GPTQ instead of to nearest.
        statistics: for ``int8``, ``(float32 model, feeds)``: the activations' ranges are
            then the ones that round them best on those feeds (``tflite_ranges``), not the
            calibration's min/max. The model may be traced for shorter windows.
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r} (choose from {', '.join(QUANTIZATIONS)})")

    def converter():
        result = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        result.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return result

    from tf_metatasnet.export.tflite.weights import quantize_weights

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
        from tf_metatasnet.export.tflite.ranges import mse_ranges, with_ranges

        calibrated = bytes(debugger.calibrated_model)
        debugger.calibrated_model = with_ranges(calibrated, mse_ranges(calibrated, *statistics))
    return quantize_weights(debugger.get_nondebug_quantized_model(), float16=INT8_FLOAT16_PATTERNS)


def op_report(model_content: bytes) -> dict:
    """The model's operators and whether they are all TFLite builtins.

    Returns ``{"ops": {name: count}, "select_tf_ops": [...], "builtin_only": bool}``;
    ``select_tf_ops`` lists Flex (Select TF) and custom operators.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content)
    ops = Counter(detail["op_name"] for detail in interpreter._get_ops_details())  # noqa: SLF001
    # DELEGATE nodes stand for builtin ops XNNPACK took over; the list above is the model's.
    select = sorted(name for name in ops if name.startswith(_FLEX_PREFIXES) or name == "CUSTOM")
    return {"ops": dict(sorted(ops.items())), "select_tf_ops": select, "builtin_only": not select}


def statistics_windows(calibration: "list | None", rates: Sequence[int], window: int,
                       count: int = GPTQ_WINDOWS) -> list:
    """``count`` windows of ``window`` base samples for GPTQ's statistics: pieces cut from the
    ``calibration`` windows (spread over them), or windows of generated songs without any."""
    from tf_metatasnet.export.calibration import calibration_windows

    if not calibration:
        return calibration_windows(None, rates, window, count)
    factors = [rate // rates[0] for rate in rates]
    pieces = [[np.asarray(stage)[..., k * window * f:(k + 1) * window * f] for stage, f in zip(item, factors)]
              for item in calibration for k in range(np.shape(item[0])[-1] // window)]
    if not pieces:
        raise ValueError(f"calibration windows are shorter than GPTQ's statistics window "
                         f"({window / rates[0]:.2f} s)")
    chosen = np.linspace(0, len(pieces) - 1, min(count, len(pieces))).round().astype(int)
    return [pieces[i] for i in chosen]


def tflite_metadata(model_content: bytes, instrument: str, sources: Sequence[str], rates: Sequence[int],
                    chunking: Chunking, quantization: str, version: str,
                    weight_rounding: str = "nearest") -> dict:
    """The JSON written beside a ``.tflite`` (the ``tf_metatasnet.tflite/1`` contract).

    ``weight_rounding`` (``WEIGHT_ROUNDINGS``) is recorded for the variants with int8 weights.
    """
    from ai_edge_litert.interpreter import Interpreter

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


def export_tflite(model, output_dir: "str | os.PathLike", instruments: "Sequence[str] | None" = None,
                  quantizations: Sequence[str] = ("float32",), chunking: "Chunking | None" = None,
                  calibration: "list | None" = None, version: str = "unversioned",
                  progress: "Callable[[str], None] | None" = None,
                  weight_rounding: str = "gptq") -> list[str]:
    """Writes one TFLite model and its metadata per instrument and quantization.

    Args:
        model: a ``MetaTasNet`` (generated or static; the generator is folded).
        output_dir: folder of the ``.tflite`` / ``.json`` pairs (created if needed).
        instruments: default all four.
        quantizations: any of ``QUANTIZATIONS``.
        chunking: window lengths (default ``Chunking.from_seconds``: 30 s chunk, 1.5 s
            context, 1 s overlap).
        calibration: windows from ``calibration.calibration_windows``: needed for ``int8``;
            for ``dynamic`` and ``int8_weights``, GPTQ's statistics are cut from them
            (``statistics_windows``; generated songs without them).
        version: the ``model_version`` recorded in the metadata.
        progress: called with a message after each file.
        weight_rounding: ``gptq`` or ``nearest`` (see ``WEIGHT_ROUNDINGS``); ``int8`` always
            rounds to nearest (its integer kernels' biases are tied to the converter's scales).

    Returns:
        the paths of the ``.tflite`` files written.
    """
    from tf_metatasnet.export.graph import (input_name, instrument_signature, make_exportable,
                                            save_signature)
    from tf_metatasnet.export.folding import fold_generator
    from tf_metatasnet.export.tflite.weights import fc_input_hessians

    config = model.config
    instruments = list(model.sources if instruments is None else instruments)
    unknown = [q for q in quantizations if q not in QUANTIZATIONS]
    if unknown:
        raise ValueError(f"unknown quantization(s) {', '.join(unknown)} "
                         f"(choose from {', '.join(QUANTIZATIONS)})")
    if "int8" in quantizations and not calibration:
        raise ValueError("int8 quantization needs calibration windows")
    check_weight_rounding(weight_rounding)
    chunking = chunking or Chunking.from_seconds(config.stage_rates[0], config.stride(0))
    names = [input_name(rate) for rate in config.stage_rates]

    def representative():
        for window in calibration:
            yield dict(zip(names, window))

    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    folded = make_exportable(fold_generator(model))
    gptq = weight_rounding == "gptq" and any(q in ("dynamic", "int8_weights") for q in quantizations)
    if gptq or "int8" in quantizations:  # statistics of a short-window float model
        seconds = min(GPTQ_WINDOW_SECONDS, chunking.window / config.stage_rates[0])  # no longer than a window
        short = Chunking.from_seconds(config.stage_rates[0], config.stride(0), seconds, 0.0, 0.0)
        feeds = [dict(zip(names, window))
                 for window in statistics_windows(calibration, config.stage_rates, short.window)]
    written = []
    for instrument in instruments:
        signature = instrument_signature(folded, instrument, window=chunking.window, batch=1)
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=output_dir) as work:
            saved = save_signature(os.path.join(work, "saved_model"), signature)
            hessians = statistics = None
            if gptq or "int8" in quantizations:   # on short windows (every tensor is kept)
                statistics = (convert(save_signature(os.path.join(work, "statistics"), instrument_signature(
                    folded, instrument, window=short.window, batch=1))), feeds)
                hessians = fc_input_hessians(*statistics) if gptq else None
            for quantization in quantizations:
                content = convert(saved, quantization, representative, hessians, statistics)
                stem = os.path.join(output_dir, f"{instrument}_{quantization}")
                metadata = tflite_metadata(content, instrument, model.sources, config.stage_rates,
                                           chunking, quantization, version,
                                           weight_rounding if quantization != "int8" else "nearest")
                write_bytes_atomically(stem + ".tflite", content)
                write_text_atomically(stem + ".json", json.dumps(metadata, indent=2) + "\n")
                written.append(stem + ".tflite")
                if progress is not None:
                    progress(f"{stem}.tflite: {len(content) / 2**20:.1f} MiB")
    return written
