"""``export_tflite``: one TFLite model per instrument and quantization, with its metadata.

For each instrument and quantization it writes ``<instrument>_<quantization>.tflite`` and
beside it ``<instrument>_<quantization>.json``, the metadata an app needs to run it (the
contract shared with the Android core, ``tf_metatasnet.tflite/1``: rates, input and
output names, indices, shapes and dtypes, chunk / context / overlap / window lengths,
quantization, model version; see ``metadata.tflite_metadata``).

The graph is the folded model (``tf_metatasnet.export.folding``) with the export
formulations of two layers (``tf_metatasnet.export.graph.make_exportable``: same values,
constants that survive quantization), traced for one fixed window; ``convert`` makes each
quantization of it.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Sequence

import numpy as np

from tf_metatasnet.atomic import write_bytes_atomically, write_json_atomically
from tf_metatasnet.export.calibration import calibration_windows
from tf_metatasnet.export.folding import fold_generator
from tf_metatasnet.export.graph import input_name, instrument_signature, make_exportable, save_signature
from tf_metatasnet.export.tflite.convert import convert
from tf_metatasnet.export.tflite.metadata import tflite_metadata
from tf_metatasnet.export.tflite.options import (
    GPTQ_WINDOW_SECONDS,
    GPTQ_WINDOWS,
    QUANTIZATIONS,
    Chunking,
    check_weight_rounding,
)
from tf_metatasnet.export.tflite.weights import fc_input_hessians


def statistics_windows(calibration: "list | None", rates: Sequence[int], window: int,
                       count: int = GPTQ_WINDOWS) -> list:
    """``count`` windows of ``window`` base samples for GPTQ's statistics: pieces cut from the
    ``calibration`` windows (spread over them), or windows of generated songs without any."""
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
                write_json_atomically(stem + ".json", metadata)
                written.append(stem + ".tflite")
                if progress is not None:
                    progress(f"{stem}.tflite: {len(content) / 2**20:.1f} MiB")
    return written
