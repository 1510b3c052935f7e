"""Latency of one instrument's TFLite model in the LiteRT interpreter, as a real-time factor.

Builds a preset with random weights (``--preset paper`` by default: the latency depends
on the sizes, not the values), exports ``--instrument`` with the requested quantizations
and the default phone chunking (``--chunk-seconds 30 --context-seconds 1.5
--overlap-seconds 1``: windows of 33 s that advance by 29 s), then times one window
``--runs`` times per thread count after a warm-up and prints, per file, the median
seconds per window and the real-time factor (seconds per window / seconds each window
advances; below 1 is faster than real time) as one JSON line per file and a table.

    python benchmarks/export_tflite.py                                  # paper, dynamic, 1 and 2 threads
    python benchmarks/export_tflite.py --quantization float32 dynamic --runs 5 -o /tmp/paper-tflite
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    from tf_metatasnet.export.tflite.options import CHUNK_SECONDS, CONTEXT_SECONDS, OVERLAP_SECONDS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--instrument", default="vocals")
    parser.add_argument("--quantization", nargs="+", default=["dynamic"])
    parser.add_argument("--chunk-seconds", type=float, default=CHUNK_SECONDS)
    parser.add_argument("--context-seconds", type=float, default=CONTEXT_SECONDS)
    parser.add_argument("--overlap-seconds", type=float, default=OVERLAP_SECONDS)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-o", "--output", default=None, help="keep the files here (default: temporary)")
    args = parser.parse_args()

    import tf_metatasnet as tm
    from tf_metatasnet.export.calibration import calibration_windows
    from tf_metatasnet.export.tflite.export import export_tflite
    from tf_metatasnet.export.tflite.options import Chunking
    from tf_metatasnet.inference.backends.tflite import TFLiteBackend

    model = tm.build_model(args.preset)
    config = model.config
    chunking = Chunking.from_seconds(config.stage_rates[0], config.stride(0), args.chunk_seconds,
                                     args.context_seconds, args.overlap_seconds)
    window = calibration_windows(None, config.stage_rates, chunking.window, count=1)[0]
    calibration = [window] if "int8" in args.quantization else None
    hop = (chunking.chunk - chunking.overlap) / config.stage_rates[0]
    with tempfile.TemporaryDirectory() as scratch:
        output = args.output or scratch
        start = time.perf_counter()
        paths = export_tflite(model, output, [args.instrument], args.quantization, chunking, calibration)
        export_seconds = time.perf_counter() - start
        rows = []
        for path in paths:
            for threads in args.threads:
                backend = TFLiteBackend(path, num_threads=threads)
                backend.run_window(window)  # warm-up
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    backend.run_window(window)
                    times.append(time.perf_counter() - start)
                row = {"file": os.path.basename(path), "preset": args.preset, "threads": threads,
                       "size_mib": os.path.getsize(path) / 2 ** 20,
                       "window_seconds": chunking.window / config.stage_rates[0], "hop_seconds": hop,
                       "seconds_per_window": float(np.median(times)), "runs": times,
                       "real_time_factor": float(np.median(times)) / hop,
                       "export_seconds": export_seconds}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("| file | threads | MiB | s / window (median) | real-time factor |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['file']} | {row['threads']} | {row['size_mib']:.1f} | "
              f"{row['seconds_per_window']:.2f} | {row['real_time_factor']:.3f} |")
    for row in rows:
        if row["threads"] == 1 and row["file"].endswith("_dynamic.tflite"):
            verdict = "met" if row["real_time_factor"] < 1 else "missed"
            print(f"target (issue 5): the {args.preset} preset's dynamic-range model faster than real "
                  f"time on one core: real-time factor {row['real_time_factor']:.3f} < 1, {verdict}")


if __name__ == "__main__":
    main()
