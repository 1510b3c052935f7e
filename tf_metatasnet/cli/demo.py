"""``metatasnet demo``: separate, score, draw and export the bundled demo song."""

from __future__ import annotations

import os

from tqdm import tqdm

from tf_metatasnet.cli.options import add_model_limit_option
from tf_metatasnet.export.tflite.options import UNCALIBRATED_QUANTIZATIONS


def register(commands) -> None:
    parser = commands.add_parser(
        "demo", help="separate the bundled demo song, score it, draw it, export for Android",
        description="Separate a short song shipped with the package (never seen in training) "
                    "with the bundled default model (or --model), and write to the output folder "
                    "the mixture, the four separated stems, a figure of their spectrograms beside "
                    "the true stems', scores.json (BSS Eval v4) and the per-instrument TFLite "
                    "models of the Android demo. Prints the scores. Needs no network.")
    parser.add_argument("-o", "--output", default="metatasnet-demo",
                        help="output folder (default: metatasnet-demo)")
    parser.add_argument("--model", default=None,
                        help="a .keras model or an authors' .pt checkpoint (default: the bundled default model)")
    add_model_limit_option(parser)
    parser.add_argument("--no-tflite", dest="tflite", action="store_false",
                        help="skip the TFLite export (the slowest step)")
    parser.add_argument("--quantization", choices=UNCALIBRATED_QUANTIZATIONS, default="dynamic",
                        help="TFLite variant (default: dynamic; int8 needs calibration: "
                             "metatasnet export tflite)")
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
    from tf_metatasnet.demo import format_demo_table, run_demo

    labels = {"loading": "loading", "separating": "separating", "scoring": "scoring (museval)",
              "figure": "spectrograms", "tflite": f"TFLite ({args.quantization})"}
    bars = {}

    def progress(stage, done, total):
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(total=total, desc=f"{labels.get(stage, stage):<18}", leave=True,
                               bar_format="{desc} {percentage:3.0f}%|{bar:20}| [{elapsed}]")
        bar = bars[stage]
        bar.total, bar.n = total, done
        bar.refresh()

    try:
        result = run_demo(args.output, model=args.model, tflite=args.tflite, max_gib=args.max_model_gib,
                          quantization=args.quantization, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    model = args.model or "the bundled default model"
    print(f"The demo song ({result.seconds:g} s, never seen in training) separated by {model}.")
    print("BSS Eval v4 (museval), median over one-second frames, dB; the last two columns are the "
          "SDR of trivial estimates (every stem = the mixture, or a quarter of it):")
    print(format_demo_table(result))
    print(f"{result.mixture}: the mixture")
    print(f"{os.path.join(result.output_dir, 'stems')}: the separated stems "
          f"({', '.join(os.path.basename(path) for path in result.stems.values())})")
    print(f"{result.figure}: spectrograms, estimate beside ground truth")
    print(f"{result.scores}: the scores")
    if result.tflite:
        print(f"{os.path.dirname(result.tflite[0])}: the TFLite models for the Android demo "
              f"(copy them with their .json into android_demo/app/src/main/assets)")
    return 0
