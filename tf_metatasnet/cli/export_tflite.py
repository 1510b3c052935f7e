"""``metatasnet export tflite``: one TFLite model per instrument, measured into a report."""

from __future__ import annotations

import math
import os

from tf_metatasnet.cli.options import SOURCE_CHOICES, add_model_limit_option, non_negative_float
from tf_metatasnet.export.tflite.options import (
    CHUNK_SECONDS,
    CONTEXT_SECONDS,
    GPTQ_WINDOW_SECONDS,
    GPTQ_WINDOWS,
    OVERLAP_SECONDS,
    QUANTIZATIONS,
    WEIGHT_ROUNDINGS,
    Chunking,
)


def register(formats) -> None:
    parser = formats.add_parser(
        "tflite", help="one TFLite model per instrument (builtin ops only) with metadata JSON",
        description="Write INSTRUMENT_QUANTIZATION.tflite and .json per instrument and "
                    "quantization (generator folded, fixed window, TFLite builtin ops only), "
                    "then measure them into DIR/export_report.json and print the table.")
    parser.add_argument("--model", required=True, help="a .keras model or an authors' .pt checkpoint")
    add_model_limit_option(parser)
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("--instrument", nargs="+", choices=SOURCE_CHOICES, default=None,
                        help="instruments (default: all four)")
    parser.add_argument("--quantization", nargs="+", default=list(QUANTIZATIONS), choices=QUANTIZATIONS,
                        help="variants to write (default: all five)")
    parser.add_argument("--chunk-seconds", type=non_negative_float, default=CHUNK_SECONDS,
                        help=f"kept audio per window (default: {CHUNK_SECONDS:g})")
    parser.add_argument("--context-seconds", type=non_negative_float, default=CONTEXT_SECONDS,
                        help=f"context on each side (default: {CONTEXT_SECONDS:g}, the paper "
                             "model's receptive field)")
    parser.add_argument("--overlap-seconds", type=non_negative_float, default=None,
                        help=f"crossfade between windows, at most half the chunk (default: "
                             f"{OVERLAP_SECONDS:g}, or a quarter of a chunk shorter than {4 * OVERLAP_SECONDS:g})")
    parser.add_argument("--calibration", nargs="+", default=None,
                        help="representative audio, a prepared cache folder or audio files: int8's "
                             "calibration and the statistics of GPTQ's weight rounding (default: "
                             "generated music)")
    parser.add_argument("--calibration-windows", type=int, default=16,
                        help="windows used for int8 calibration (default: 16)")
    parser.add_argument("--weight-rounding", choices=WEIGHT_ROUNDINGS, default="gptq",
                        help="how dynamic and int8_weights round their matmul weights to int8: gptq "
                             "(from the layers' inputs on representative audio, default) or nearest")
    parser.add_argument("--model-version", default=None,
                        help="recorded in the metadata (default: sha256 of the model file, 12 digits)")
    parser.add_argument("--no-report", dest="report", action="store_false",
                        help="skip the measurements (export_report.json)")
    parser.add_argument("--report-audio", metavar="FILE",
                        help="the song the report separates to measure SI-SDR against the Keras "
                             "model (default: the bundled demo song, repeated)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per latency (default: 3)")
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
    from tf_metatasnet.checkpoints.saving import load_model
    from tf_metatasnet.export.calibration import calibration_windows
    from tf_metatasnet.export.report import format_table, measure, report_song, write_report
    from tf_metatasnet.export.tflite.export import export_tflite
    from tf_metatasnet.export.tflite.metadata import model_version

    model = load_model(args.model, args.max_model_gib)
    config = model.config
    chunking = Chunking.from_seconds(config.stage_rates[0], config.stride(0), args.chunk_seconds,
                                     args.context_seconds, args.overlap_seconds)
    song = report_song(args.report_audio) if args.report else None   # read first: fail early
    calibration = None
    gptq = args.weight_rounding == "gptq" and {"dynamic", "int8_weights"} & set(args.quantization)
    if "int8" in args.quantization or (gptq and args.calibration):
        source = args.calibration
        if source and len(source) == 1:
            source = source[0]
        # Without int8, only GPTQ's few short statistics windows are cut from them.
        count = args.calibration_windows if "int8" in args.quantization else math.ceil(
            GPTQ_WINDOWS * GPTQ_WINDOW_SECONDS * config.stage_rates[0] / chunking.window)
        calibration = calibration_windows(source, config.stage_rates, chunking.window,
                                          count, stride=config.stride(0))
    paths = export_tflite(model, args.output, args.instrument, args.quantization, chunking,
                          calibration, version=args.model_version or model_version(args.model),
                          progress=print, weight_rounding=args.weight_rounding)
    if args.report:
        audio, rate, described = song
        entries = measure(model, paths, song=(audio, rate), runs=args.runs)
        report = os.path.join(args.output, "export_report.json")
        write_report(entries, report, model=os.path.abspath(args.model), audio=described)
        print(format_table(entries))
        print(f"{report}: written")
    return 0
