"""Inference speed of Meta-TasNet: seconds of mono audio separated per second of compute.

All stages, four instruments, one ``--seconds`` long input (10 s), warm (the first call,
which traces and compiles, is not timed), median of ``--runs`` runs; the peak resident
memory of each measured process. Each mode runs in its own process so its peak RSS is
its own:

- ``eager``: the Keras model in a ``tf.function`` (TensorFlow graph, no XLA);
- ``xla``: the same with ``jit_compile=True``;
- ``authors``: the authors' own PyTorch code, run as it is: ``inference_reference.py``
  from ``--reference`` (default ``../shared/reference`` beside the clone, or
  ``$METATASNET_REFERENCE``), their ``MultiTasNet.inference`` on the paper configuration,
  2 threads, best of 3 warm calls. Ours is reported the same way (best warm call) for the
  ratio, and as a median.

The whole comparison is repeated ``--repeats`` times (fresh processes, the sides
alternating) and the medians of the repeats are quoted.

The model runs as a separation runs it: the Keras backend (``KerasBackend``: the
generators' outputs computed once, then ``MetaTasNet.separate``, all stages, only the
last stage's waveforms decoded); ``--all-outputs`` decodes every stage as
``model(mixtures)`` does, generators in the graph.

    python benchmarks/inference_speed.py                # paper preset, 10 s, XLA vs authors, 3 repeats
    python benchmarks/inference_speed.py --preset small --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_REFERENCE, PEAK_GFLOPS, measure_peak_gflops, percent_of_peak, reference_script, run_child  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.5  # at least 1.5x the authors' throughput


def matmul_gflop_per_audio_second(config, all_outputs: bool) -> float:
    """Multiply-add work of the matrix products per second of audio, in GFLOP (2 per MAC)."""
    frames = config.sampling_rate / config.W  # latent frames per second, equal in every stage
    macs = 0.0
    for i in range(config.stages_num):
        n, k_max = config.stage_channels(i), config.kernel_size(i) * 2 ** (config.filters - 1)
        features = n // 4 * config.filters + config.num_mels
        macs += k_max * (n // 4 * config.filters) + features * n + n * n  # encoder
        bins = 1024 * config.stage_rate(i) // 8000 // 2 + 1
        macs += bins * config.num_mels / 4  # spectrogram projection (hop = 4 frames)
        inputs = n + (config.stage_channels(i - 1) if i else 0)
        tcn = config.layers * config.stack
        per_instrument = inputs * config.B + config.B * n  # in_conv, mask_output
        per_instrument += tcn * (config.B * config.H + config.kernel * config.H + 2 * config.H * config.B)
        per_instrument -= config.H * config.B  # the last layer's unused residual
        macs += 4 * per_instrument
        if all_outputs or i == config.stages_num - 1:
            widths = sum(n // 2 ** (l + 1) for l in range(config.filters))
            macs += 4 * (n * widths + widths * k_max)  # decoder
    return 2 * macs * frames / 1e9


def worker(args) -> dict:
    """Runs one mode in this process and returns its figures."""
    rates_seconds = args.seconds
    import tensorflow as tf

    import tf_metatasnet as tm

    model = tm.build_model(args.preset)
    config = model.config
    mixtures = [tf.constant(np.random.default_rng(0).standard_normal((1, int(rates_seconds * r))), tf.float32)
                for r in config.stage_rates]
    if args.all_outputs:
        compiled = tf.function(lambda x: model(x)[-1], jit_compile=args.mode == "xla")

        def run():
            return compiled(mixtures).numpy()
    else:  # what a separation runs: the Keras backend (generators computed once)
        from tf_metatasnet.inference.backends.keras import KerasBackend

        backend = KerasBackend(model, jit_compile=args.mode == "xla")
        arrays = [m.numpy() for m in mixtures]

        def run():
            return backend(arrays)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {
        "mode": args.mode, "first_call_s": first, "times_s": times,
        "median_s": float(np.median(times)), "audio_s_per_s": args.seconds / float(np.median(times)),
        "best_audio_s_per_s": args.seconds / min(times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": threads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3, help="warm calls per process (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per side (default 3)")
    parser.add_argument("--modes", default="xla,authors",
                        help="comma-separated: eager (graph, no XLA), xla, authors (default %(default)s)")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                        help="the folder of the authors' timing scripts (default: %(default)s)")
    parser.add_argument("--peak-gflops", type=float, default=PEAK_GFLOPS,
                        help="the CPU's float32 peak for the percentages (default: measured)")
    parser.add_argument("--all-outputs", action="store_true", help="decode every stage, as model(mixtures)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode here
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(worker(args)))
        return 0

    if args.peak_gflops is None:
        args.peak_gflops = measure_peak_gflops()
        print(f"float32 peak measured here (best 2048x2048 TensorFlow matmul): {args.peak_gflops:.0f} GFLOP/s")
    from tf_metatasnet.presets import get_config

    config = get_config(args.preset)
    gflop = matmul_gflop_per_audio_second(config, args.all_outputs)
    modes = args.modes.split(",")
    script = None
    if "authors" in modes:
        modes.remove("authors")
        script = reference_script(args.reference, "inference_reference.py")
        if script is None:
            print(f"authors' code: {args.reference / 'inference_reference.py'} not found (--reference DIR); skipped")
        elif args.preset != "paper" or args.all_outputs:
            print("authors' code: their script times the paper configuration's separation only; skipped")
            script = None
    print(f"machine: {os.cpu_count()} CPU cores; preset {args.preset}, {args.seconds:g} s of mono audio, "
          f"{gflop:.1f} GFLOP of matrix products per second of audio; {args.repeats} repeat(s)", flush=True)
    results = {mode: [] for mode in modes}
    if script is not None:
        results["authors"] = []
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    for repeat in range(args.repeats):
        for mode in modes:
            command = [sys.executable, __file__, "--mode", mode, "--preset", args.preset,
                       "--seconds", str(args.seconds), "--runs", str(args.runs)]
            if args.all_outputs:
                command.append("--all-outputs")
            output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
            r = json.loads(output.strip().splitlines()[-1])
            results[mode].append(r)
            print(f"[{repeat + 1}] {mode:7s} {r['audio_s_per_s']:6.2f} s/s median, {r['best_audio_s_per_s']:.2f} best, "
                  f"of {', '.join(f'{t:.2f}' for t in r['times_s'])} s  first call {r['first_call_s']:.1f} s  "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
        if script is not None:
            wall, peak, out = run_child([sys.executable, str(script), str(args.seconds)])
            speed = float(out.strip().splitlines()[-1])
            results["authors"].append({"best_audio_s_per_s": speed, "audio_s_per_s": speed, "peak_rss_mib": peak})
            print(f"[{repeat + 1}] authors {speed:6.2f} s/s best of 3 (inference_reference.py)  "
                  f"peak RSS {peak:.0f} MiB", flush=True)

    print(f"\n| implementation | s of audio per s (median of {args.repeats}) | best call | "
          f"% of {args.peak_gflops:.0f} GFLOP/s | peak RSS |")
    print("|---|---|---|---|---|")
    summary = {}
    for mode, runs in results.items():
        median = statistics.median(r["audio_s_per_s"] for r in runs)
        best = statistics.median(r["best_audio_s_per_s"] for r in runs)
        summary[mode] = best
        name = "authors' code (PyTorch)" if mode == "authors" else f"tf_metatasnet ({mode})"
        print(f"| {name} | {median:.2f} | {best:.2f} | {percent_of_peak(gflop * best, 1.0, args.peak_gflops):.0f} % "
              f"| {max(r['peak_rss_mib'] for r in runs):.0f} MiB |")
    if "authors" in summary:
        for mode in modes:
            ratio = summary[mode] / summary["authors"]
            print(f"{mode}: {ratio:.2f}x the authors' throughput (best calls, median of {args.repeats}); "
                  f"goal >= {TARGET_RATIO:g}x: {'met' if ratio >= TARGET_RATIO else 'missed'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "gflop_per_audio_s": gflop,
                                               "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
