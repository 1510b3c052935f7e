"""Throughput and peak memory of the training input pipeline, against what a GPU consumes.

For each ``--tracks N`` a synthetic MUSDB18-HQ whose musdb ``train`` split holds ``N``
tracks of ``--seconds`` (``tf_metatasnet.data.synth.dataset.make_toy_dataset``, wav, no test tracks; it
also writes about N/3 tracks with musdb's validation names, which are not read) is written and
prepared ONCE (``prepare_musdb``, crop 8 s, 8/16/32 kHz, ``train`` split) into ``--work``,
which later invocations reuse. Then, for each N and each of ``--runs`` runs, a FRESH
PROCESS (so that its peak RSS is that run's alone) builds the training pipeline with the
paper's recipe (``tf_metatasnet.data.pipeline.train_dataset``: batch 12 x 8 s at 8/16/32 kHz,
cross-track fraction 0.5, default shuffle buffer unless ``--shuffle-buffer``; a new seed
per run), pulls 2 warm-up batches, then times ``--batches`` batches. Reported: examples
per second (median over runs) and the process's peak RSS (``getrusage`` ``ru_maxrss``,
the largest over runs), besides its RSS once TensorFlow is imported and the cache is
opened (before the pipeline).

What the model consumes is estimated, not measured (one ``paper`` training step at
batch 12 x 8 s takes far too long on a CPU): the matrix-product FLOPs of one training
forward pass (every stage decoded, plus the loss's encoding of the 4 true sources and
decoding of the mixture latent), counted from the config as
``benchmarks/inference_speed.py`` counts inference, times 3 for forward + backward,
give the FLOPs of one 8 s example; at a sustained ``--gpu-tflops`` (default 100, an
H100/H200-class GPU in mixed precision; 30, a V100-class one, is shown too) that is the
examples per second a GPU can train on. Targets (from the issue): pipeline examples/s
at least 3x the GPU's consumption, and peak RSS with 4 and with 16 tracks about equal
(within 15 %).

    python benchmarks/pipeline_throughput.py                 # 4 and 16 tracks of 30 s, 3 runs
    python benchmarks/pipeline_throughput.py --tracks 4 16 --seconds 30 --batches 20 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_measurement  # noqa: E402
from inference_speed import matmul_gflop_per_audio_second  # noqa: E402

PRESET = "paper"
BATCH = 12
CROP_SECONDS = 8.0
CROSS_TRACK_FRACTION = 0.5
WARMUP_BATCHES = 2
MARGIN_TARGET = 3.0  # pipeline examples/s over the GPU's consumption
RSS_SPREAD_TARGET = 0.15  # peak RSS of the largest vs the smallest dataset
V100_TFLOPS = 30.0


def rss_mib(field: str = "VmRSS") -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from ``/proc/self/status``, MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def training_gflop_per_example(config, seconds: float) -> float:
    """Matrix-product GFLOP of one forward pass of the training objective on ``seconds`` of audio.

    ``MetaTasNet.compute_objective`` decodes every stage (``all_outputs=True`` in the
    inference count) and, in every stage, also encodes the 4 true sources and decodes the
    mixture latent (the reconstruction term); the backward pass is not included.
    """
    frames = config.sampling_rate / config.W  # latent frames per second, equal in every stage
    macs = 0.0
    for i in range(config.stages_num):
        n, k_max = config.stage_channels(i), config.kernel_size(i) * 2 ** (config.filters - 1)
        features = n // 4 * config.filters + config.num_mels
        bins = 1024 * config.stage_rate(i) // 8000 // 2 + 1
        encoder = k_max * (n // 4 * config.filters) + features * n + n * n + bins * config.num_mels / 4
        widths = sum(n // 2 ** (l + 1) for l in range(config.filters))
        decoder = n * widths + widths * k_max
        macs += 4 * encoder + decoder
    per_second = matmul_gflop_per_audio_second(config, all_outputs=True) + 2 * macs * frames / 1e9
    return per_second * seconds


def toy_tracks_for(train_tracks: int) -> int:
    """Tracks to ask ``make_toy_dataset`` for so that musdb's train split holds ``train_tracks``."""
    from tf_metatasnet.data.synth.dataset import track_names, validation_track_names

    valid = set(validation_track_names())
    tracks = train_tracks
    while sum(name not in valid for name in track_names(tracks, 0)[0]) < train_tracks:
        tracks += 1
    return tracks


def dataset_paths(work: Path, tracks: int, seconds: float) -> tuple[Path, Path]:
    name = f"toy_{tracks}train_{seconds:g}s"
    return work / name, work / f"{name}_cache"


def ensure_prepared(work: Path, tracks: int, seconds: float):
    """The prepared cache of ``tracks`` toy tracks, written and prepared on the first call only."""
    from tf_metatasnet.data.cache import open_prepared
    from tf_metatasnet.data.prepare import prepare_musdb
    from tf_metatasnet.data.synth.dataset import make_toy_dataset

    toy, cache = dataset_paths(work, tracks, seconds)
    if (cache / "prepared.json").exists():
        try:
            return open_prepared(cache), 0.0
        except Exception as error:  # a broken cache: make it again
            print(f"  {cache}: {error}; preparing again", flush=True)
    start = time.perf_counter()
    if not (toy / ".complete").exists():
        make_toy_dataset(toy, tracks=toy_tracks_for(tracks), seconds=seconds, fmt="wav",
                         test_tracks=0, seed=0)
        (toy / ".complete").touch()
    prepared = prepare_musdb(toy, cache, is_wav=True, crop_seconds=CROP_SECONDS,
                             rates=(8000, 16000, 32000), splits=("train",))
    return prepared, time.perf_counter() - start


def worker(args) -> dict:
    """One run in this (fresh) process: builds the pipeline and times ``--batches`` batches."""
    import tensorflow as tf  # noqa: F401

    from tf_metatasnet.data.cache import open_prepared
    from tf_metatasnet.data.pipeline import DataConfig, train_dataset
    from tf_metatasnet.presets import get_config

    config = get_config(PRESET)
    prepared = open_prepared(args.cache)
    baseline = rss_mib()
    extra = {} if args.shuffle_buffer is None else {"shuffle_buffer": args.shuffle_buffer}
    data_config = DataConfig(cache_dir=args.cache, batch_size=BATCH, crop_seconds=CROP_SECONDS,
                             cross_track_fraction=CROSS_TRACK_FRACTION, **extra)
    dataset = train_dataset(prepared, data_config, config.stage_rates, config.W, seed=args.seed)
    iterator = iter(dataset)
    start = time.perf_counter()
    for _ in range(WARMUP_BATCHES):
        mixtures, sources, masks = next(iterator)
    warmup = time.perf_counter() - start
    examples = 0
    start = time.perf_counter()
    for _ in range(args.batches):
        mixtures, sources, masks = next(iterator)
        examples += int(mixtures[0].shape[0])
    elapsed = time.perf_counter() - start
    shapes = [tuple(m.shape) for m in mixtures] + [tuple(s.shape) for s in sources] + [tuple(masks.shape)]
    return {
        "train_tracks": len(prepared.splits["train"]), "segments": prepared.segments["train"],
        "shuffle_buffer": data_config.shuffle_buffer, "examples": examples, "seconds": elapsed,
        "warmup_s": warmup,
        "examples_per_s": examples / elapsed, "baseline_rss_mib": baseline,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "shapes": [list(s) for s in shapes],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, nargs="+", default=[4, 16],
                        help="training tracks of each toy dataset (default: 4 16)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of every track (default 30)")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per run (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="runs (fresh processes) per dataset (default 3)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "metatasnet-pipeline-bench"),
                        help="where the toy datasets and caches are kept and reused")
    parser.add_argument("--shuffle-buffer", type=int, default=None,
                        help="segments per shuffle buffer (default: DataConfig's, the recipe's)")
    parser.add_argument("--gpu-tflops", type=float, default=100.0,
                        help="sustained GPU throughput of the estimate, TFLOP/s (default 100)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--cache", help=argparse.SUPPRESS)  # internal: run one measurement here
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cache:
        print(json.dumps(worker(args)))
        return 0
    if args.batches < 1 or args.runs < 1:
        parser.error("--batches and --runs must be positive")

    from tf_metatasnet.presets import get_config

    command_line = shlex.join(["python", "benchmarks/pipeline_throughput.py", *sys.argv[1:]])
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    from tf_metatasnet.data.pipeline import DataConfig

    buffer = DataConfig().shuffle_buffer if args.shuffle_buffer is None else args.shuffle_buffer
    print(f"machine: {os.cpu_count()} CPU cores; pipeline: preset {PRESET} rates "
          f"{get_config(PRESET).stage_rates} Hz, batch {BATCH} x {CROP_SECONDS:g} s, cross-track "
          f"fraction {CROSS_TRACK_FRACTION}, shuffle buffer {buffer} segments"
          f"{'' if args.shuffle_buffer is None else ' (not the default)'}; {WARMUP_BATCHES} warm-up + "
          f"{args.batches} timed batches per run, {args.runs} run(s) per dataset; work dir {work}",
          flush=True)

    rows = []
    for tracks in args.tracks:
        prepared, took = ensure_prepared(work, tracks, args.seconds)
        print(f"{tracks} tracks of {args.seconds:g} s: {len(prepared.splits['train'])} in the train "
              f"split, {prepared.segments['train']} segments, cache {prepared.disk_bytes() / 2**20:.0f} MiB"
              + (f" (prepared in {took:.0f} s)" if took else " (reused)"), flush=True)
        runs = []
        for run in range(args.runs):
            command = [__file__, "--cache", prepared.cache_dir,
                       "--batches", str(args.batches), "--seed", str(run)]
            if args.shuffle_buffer is not None:
                command += ["--shuffle-buffer", str(args.shuffle_buffer)]
            r = run_measurement(command)
            runs.append(r)
            print(f"  run {run + 1}: {r['examples_per_s']:7.1f} examples/s ({r['examples']} in "
                  f"{r['seconds']:.2f} s; warm-up {r['warmup_s']:.1f} s)  RSS before the pipeline "
                  f"{r['baseline_rss_mib']:.0f} MiB, peak {r['peak_rss_mib']:.0f} MiB", flush=True)
        rows.append({"tracks": tracks, "train_tracks": runs[0]["train_tracks"],
                     "segments": runs[0]["segments"],
                     "examples_per_s": statistics.median(r["examples_per_s"] for r in runs),
                     "baseline_rss_mib": statistics.median(r["baseline_rss_mib"] for r in runs),
                     "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs": runs})

    # What a GPU consumes, from the FLOP count.
    config = get_config(PRESET)
    forward = training_gflop_per_example(config, CROP_SECONDS)
    step = 3 * forward  # forward + backward ~ 3x forward
    gpus = [(args.gpu_tflops, "--gpu-tflops")] + ([(V100_TFLOPS, "V100-class")]
                                                 if args.gpu_tflops != V100_TFLOPS else [])
    consumption = [(tflops, label, tflops * 1e3 / step) for tflops, label in gpus]
    print(f"\nmodel: preset {PRESET}, {forward:.0f} GFLOP of matrix products per {CROP_SECONDS:g} s "
          f"example forward (training objective), x3 for forward + backward = {step:.0f} GFLOP "
          f"per example, {step * BATCH / 1e3:.1f} TFLOP per batch of {BATCH}")
    for tflops, label, rate in consumption:
        print(f"  a GPU sustaining {tflops:g} TFLOP/s ({label}) trains on {rate:.1f} examples/s "
              f"({rate / BATCH:.2f} steps/s)")

    print(f"\ncommand: {command_line}")
    print(f"\n| tracks (train split) | segments | pipeline examples/s (median of {args.runs}) | "
          + " | ".join(f"margin over {t:g} TFLOP/s GPU ({r:.1f} ex/s)" for t, _, r in consumption)
          + " | RSS before pipeline | peak RSS |")
    print("|---|---|---|" + "---|" * len(consumption) + "---|---|")
    for row in rows:
        margins = " | ".join(f"{row['examples_per_s'] / r:.1f}x" for _, _, r in consumption)
        print(f"| {row['tracks']} ({row['train_tracks']}) | {row['segments']} | {row['examples_per_s']:.1f} | "
              f"{margins} | {row['baseline_rss_mib']:.0f} MiB | {row['peak_rss_mib']:.0f} MiB |")

    print(f"\ntargets (machine: {os.cpu_count()} CPU cores):")
    gpu_rate = consumption[0][2]
    for row in rows:
        margin = row["examples_per_s"] / gpu_rate
        print(f"  {row['tracks']} tracks: pipeline {row['examples_per_s']:.1f} examples/s = {margin:.1f}x "
              f"a {args.gpu_tflops:g} TFLOP/s GPU's {gpu_rate:.1f} examples/s; target >= "
              f"{MARGIN_TARGET:g}x: {'meets' if margin >= MARGIN_TARGET else 'misses'}")
    if len(rows) > 1:
        low = min(rows, key=lambda r: r["tracks"])
        high = max(rows, key=lambda r: r["tracks"])
        spread = high["peak_rss_mib"] / low["peak_rss_mib"] - 1
        print(f"  peak RSS {high['tracks']} vs {low['tracks']} tracks: {high['peak_rss_mib']:.0f} vs "
              f"{low['peak_rss_mib']:.0f} MiB ({spread * 100:+.1f} %); target: about equal (within "
              f"{RSS_SPREAD_TARGET * 100:.0f} %): {'meets' if abs(spread) <= RSS_SPREAD_TARGET else 'misses'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": command_line, "cpu_cores": os.cpu_count(), "forward_gflop_per_example": forward,
            "step_gflop_per_example": step,
            "gpu_examples_per_s": {str(t): r for t, _, r in consumption}, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
