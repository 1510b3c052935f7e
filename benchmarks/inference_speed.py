"""Inference speed of Meta-TasNet: seconds of mono audio separated per second of compute.

All stages, four instruments, one ``--seconds`` long input (10 s), warm (the first call,
which traces and compiles, is not timed), median of ``--runs`` runs; the peak resident
memory of each measured process. Each mode runs in its own process so its peak RSS is
its own:

- ``eager``: the Keras model in a ``tf.function`` (TensorFlow graph, no XLA);
- ``xla``: the same with ``jit_compile=True``;
- ``torch``: the independent PyTorch implementation of the authors' model in
  ``tests/support/official_reference.py`` (same architecture, their inference procedure), as the
  baseline, when PyTorch is installed.

The model is separated with ``MetaTasNet.separate`` (all stages, only the last stage's
waveforms decoded, which is all a separation needs); ``--all-outputs`` decodes every
stage as ``model(mixtures)`` does.

    python benchmarks/inference_speed.py                # paper preset, 10 s, 5 runs
    python benchmarks/inference_speed.py --preset small --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET = 3.0  # seconds of audio per second, from the issue (1.5x the authors' quoted 2 s/s)


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
    if args.mode == "torch":
        import torch

        sys.path.insert(0, str(ROOT / "tests" / "support"))
        from official_reference import OfficialMetaTasNet, official_args_for

        from tf_metatasnet.presets import get_config

        config = get_config(args.preset)
        model = OfficialMetaTasNet(official_args_for(config)).eval()
        mixtures = [torch.randn(1, 1, int(rates_seconds * r)) for r in config.stage_rates]

        def run():
            with torch.no_grad():
                return model.inference(mixtures)[-1].numpy()
        threads = torch.get_num_threads()
    else:
        import tensorflow as tf

        import tf_metatasnet as tm

        model = tm.build_model(args.preset)
        config = model.config
        mixtures = [tf.constant(np.random.default_rng(0).standard_normal((1, int(rates_seconds * r))), tf.float32)
                    for r in config.stage_rates]
        forward = (lambda x: model(x)[-1]) if args.all_outputs else model.separate
        compiled = tf.function(forward, jit_compile=args.mode == "xla")

        def run():
            return compiled(mixtures).numpy()
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
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": threads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", default="eager,xla,torch")
    parser.add_argument("--all-outputs", action="store_true", help="decode every stage, as model(mixtures)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode here
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(worker(args)))
        return 0

    from tf_metatasnet.presets import get_config

    config = get_config(args.preset)
    gflop = matmul_gflop_per_audio_second(config, args.all_outputs)
    results = []
    for mode in args.modes.split(","):
        if mode == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                print("torch: not installed, baseline skipped (pip install 'tf-metatasnet[torch]')")
                continue
        command = [sys.executable, __file__, "--mode", mode, "--preset", args.preset,
                   "--seconds", str(args.seconds), "--runs", str(args.runs)]
        if args.all_outputs:
            command.append("--all-outputs")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
        output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{mode:6s} {r['audio_s_per_s']:6.2f} s/s  median {r['median_s']:.2f} s of "
              f"{', '.join(f'{t:.2f}' for t in r['times_s'])}  first call {r['first_call_s']:.1f} s  "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB  ({gflop * r['audio_s_per_s']:.0f} GFLOP/s)",
              flush=True)
    print(f"\npreset {args.preset}: {gflop:.1f} GFLOP of matrix products per second of audio, "
          f"{args.seconds:g} s input, {os.cpu_count()} CPU cores")
    base = {r["mode"]: r["audio_s_per_s"] for r in results}
    for mode in ("eager", "xla"):
        if mode in base:
            verdict = "meets" if base[mode] >= TARGET else "misses"
            line = f"{mode}: {base[mode]:.2f} s/s {verdict} the target of {TARGET:g} s/s"
            if "torch" in base:
                line += f"; {base[mode] / base['torch']:.2f}x the PyTorch baseline"
            print(line)
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "gflop_per_audio_s": gflop,
                                               "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
