"""Wall time and peak memory of ``metatasnet separate`` on a whole song, against the authors'.

Writes a music-like stereo 44.1 kHz song of each requested length, separates it with a
random-weight model of the chosen preset in a fresh process (``metatasnet separate``, the
real command, its default chunking), and reports wall time (start-up, compilation,
resampling and writing included), the real-time factor and that process's peak RSS. Memory
must not grow with the song's length: the separator streams from file to file.

In the same run, each song is also separated by the authors' evaluation procedure, run as
it is: ``separate_reference.py SONG OUT`` from ``--reference`` (default
``../shared/reference`` beside the clone, or ``$METATASNET_REFERENCE``; their
``evaluate.py``: librosa ``kaiser_best`` resampling, 8 chunks per channel, paper model,
2 threads), also in a fresh process. The sides alternate, ``--runs`` times each; medians.

    python benchmarks/separate_song.py                       # paper, 1-min song, 3 runs
    python benchmarks/separate_song.py --minutes 1 10 --runs 1 --no-reference
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_REFERENCE, PAPER_GFLOP_PER_SECOND, PEAK_GFLOPS, measure_peak_gflops, percent_of_peak, reference_script, run_child  # noqa: E402,E501

TARGET_SPEEDUP = 3.0  # at least 3x faster than the authors' procedure, start-up included


def write_song(path: str, minutes: float, rate: int = 44100, seed: int = 0) -> None:
    """A stereo song, written block by block (it never needs to be in memory)."""
    rng = np.random.default_rng(seed)
    block = rate * 10
    with soundfile.SoundFile(path, "w", rate, 2, subtype="PCM_16") as file:
        for start in range(0, int(minutes * 60 * rate), block):
            t = (start + np.arange(block)) / rate
            notes = 220 * 2 ** (rng.integers(0, 12, size=len(t) // (rate // 4) + 1) / 12)
            melody = 0.25 * np.sin(2 * np.pi * notes[((t - t[0]) * 4).astype(int)] * t) * np.exp(-4 * (t % 0.25))
            bass = 0.2 * np.sin(2 * np.pi * 55 * 2 ** (int(t[0] / 2) % 5 / 12) * t)
            hits = 0.15 * rng.standard_normal(len(t)) * np.exp(-40 * (t % 0.5))
            mono = melody + bass + hits
            file.write(np.stack([mono + 0.02 * hits, 0.8 * mono - 0.02 * hits], axis=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0])
    parser.add_argument("--runs", type=int, default=3, help="runs per length and side (median reported)")
    parser.add_argument("--chunk-seconds", type=float, help="ours: the kept region (default: the CLI's)")
    parser.add_argument("--context-seconds", type=float, help="ours: context each side (default: the CLI's)")
    parser.add_argument("--no-xla", action="store_true")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                        help="the folder of the authors' timing scripts (default: %(default)s)")
    parser.add_argument("--no-reference", action="store_true", help="time tf_metatasnet only")
    parser.add_argument("--peak-gflops", type=float, default=PEAK_GFLOPS,
                        help="the CPU's float32 peak for the percentages (default: measured)")
    args = parser.parse_args()

    if args.peak_gflops is None:
        args.peak_gflops = measure_peak_gflops()
        print(f"float32 peak measured here (best 2048x2048 TensorFlow matmul): {args.peak_gflops:.0f} GFLOP/s")
    import tf_metatasnet as tm

    script = None
    if not args.no_reference:
        script = reference_script(args.reference, "separate_reference.py")
        if script is None:
            print(f"authors' code: {args.reference / 'separate_reference.py'} not found (--reference DIR); skipped")
        elif args.preset != "paper":
            print("authors' code: their script separates with the paper configuration only; skipped")
            script = None
    print(f"machine: {os.cpu_count()} CPU cores; preset {args.preset} (random weights); "
          f"{'no XLA' if args.no_xla else 'XLA'}; {args.runs} run(s) a side", flush=True)
    with tempfile.TemporaryDirectory(prefix="metatasnet-bench-") as work:
        model_path = os.path.join(work, "model.keras")
        tm.save_model(tm.build_model(args.preset), model_path)
        rows = []
        for minutes in args.minutes:
            song = os.path.join(work, f"song_{minutes:g}min.wav")
            write_song(song, minutes)
            ours, theirs = [], []
            for run in range(args.runs):
                command = [sys.executable, "-m", "tf_metatasnet.cli", "separate", song, "-o",
                           os.path.join(work, "out"), "--model", model_path]
                if args.chunk_seconds is not None:
                    command += ["--chunk-seconds", str(args.chunk_seconds)]
                if args.context_seconds is not None:
                    command += ["--context-seconds", str(args.context_seconds)]
                if args.no_xla:
                    command.append("--no-xla")
                wall, peak, _ = run_child(command)
                ours.append((wall, peak))
                print(f"  [{run + 1}] {minutes:g} min, metatasnet separate: {wall:.1f} s wall, "
                      f"peak RSS {peak:.0f} MiB", flush=True)
                if script is not None:
                    wall, peak, _ = run_child([sys.executable, str(script), song, os.path.join(work, "theirs")])
                    theirs.append((wall, peak))
                    print(f"  [{run + 1}] {minutes:g} min, separate_reference.py: {wall:.1f} s wall, "
                          f"peak RSS {peak:.0f} MiB", flush=True)
            rows.append((minutes, "tf_metatasnet (metatasnet separate)", ours))
            if theirs:
                rows.append((minutes, "authors' evaluate.py procedure", theirs))
    print(f"\n| song | implementation | wall time (median of {args.runs}) | x real time | "
          f"% of {args.peak_gflops:.0f} GFLOP/s | peak RSS (largest) |")
    print("|---|---|---|---|---|---|")
    for minutes, name, runs in rows:
        wall = statistics.median(w for w, _ in runs)
        gflop = PAPER_GFLOP_PER_SECOND * minutes * 60 * 2  # two channels of model work
        share = f"{percent_of_peak(gflop, wall, args.peak_gflops):.0f} %" if args.preset == "paper" else "-"
        print(f"| {minutes:g} min stereo 44.1 kHz | {name} | {wall:.0f} s | {minutes * 60 / wall:.2f} | {share} | "
              f"{max(p for _, p in runs):.0f} MiB |")
    by_length = {}
    for minutes, name, runs in rows:
        by_length.setdefault(minutes, []).append(runs)
    for minutes, sides in by_length.items():
        if len(sides) == 2:
            ours, theirs = sides
            speedup = statistics.median(w for w, _ in theirs) / statistics.median(w for w, _ in ours)
            memory = max(p for _, p in ours) / max(p for _, p in theirs)
            print(f"{minutes:g} min: {speedup:.2f}x faster than the authors' procedure; goal >= "
                  f"{TARGET_SPEEDUP:g}x: {'met' if speedup >= TARGET_SPEEDUP else 'missed'}; peak RSS "
                  f"{memory:.2f}x theirs; goal <= 1x: {'met' if memory <= 1 else 'missed'}")
    ours_peaks = [max(p for _, p in runs) for _, name, runs in rows if name.startswith("tf_")]
    if len(ours_peaks) > 1:
        low, high = min(ours_peaks), max(ours_peaks)
        print(f"our peak RSS spread across lengths: {high - low:.0f} MiB ({(high / low - 1) * 100:.1f} %); "
              "goal: flat in song length")


if __name__ == "__main__":
    main()
