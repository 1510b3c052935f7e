"""Wall time and peak memory of ``metatasnet separate`` on a whole song.

Writes a music-like stereo 44.1 kHz song of each requested length, separates it with a
random-weight model of the chosen preset in a fresh process (``metatasnet separate``, the
real command), and reports wall time, the real-time factor and that process's peak RSS.
Memory must not grow with the song's length: the separator streams from file to file.

    python benchmarks/separate_song.py --preset paper --minutes 3
    python benchmarks/separate_song.py --preset paper --minutes 1 10 --runs 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile


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


def run_child(command: list[str]) -> tuple[float, float]:
    """Runs a command in a fresh process: (wall seconds, peak RSS in MiB of that process)."""
    wrapper = ("import resource, subprocess, sys, json; "
               "r = subprocess.run(sys.argv[1:]); "
               "print(json.dumps([r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    code, rss_kib = eval(result.stdout.strip().splitlines()[-1])
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return wall, rss_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--minutes", type=float, nargs="+", default=[3.0])
    parser.add_argument("--runs", type=int, default=1, help="runs per length (median reported)")
    parser.add_argument("--chunk-seconds", type=float, default=20.0)
    parser.add_argument("--context-seconds", type=float, default=4.0)
    parser.add_argument("--no-xla", action="store_true")
    args = parser.parse_args()

    import tf_metatasnet as tm

    print(f"machine: {os.cpu_count()} CPU cores; preset {args.preset} (random weights); "
          f"chunk {args.chunk_seconds} s, context {args.context_seconds} s, "
          f"{'no XLA' if args.no_xla else 'XLA'}")
    with tempfile.TemporaryDirectory(prefix="metatasnet-bench-") as work:
        model_path = os.path.join(work, "model.keras")
        tm.save_model(tm.build_model(args.preset), model_path)
        rows = []
        for minutes in args.minutes:
            song = os.path.join(work, f"song_{minutes:g}min.wav")
            write_song(song, minutes)
            walls, peaks = [], []
            for _ in range(args.runs):
                command = [sys.executable, "-m", "tf_metatasnet.cli", "separate", song, "-o",
                           os.path.join(work, "out"), "--model", model_path,
                           "--chunk-seconds", str(args.chunk_seconds),
                           "--context-seconds", str(args.context_seconds)]
                if args.no_xla:
                    command.append("--no-xla")
                wall, peak = run_child(command)
                walls.append(wall)
                peaks.append(peak)
                print(f"  {minutes:g} min: {wall:.1f} s wall, peak RSS {peak:.0f} MiB", flush=True)
            rows.append((minutes, statistics.median(walls), max(peaks)))
    print("\n| song | wall time (median) | x real time | peak RSS |")
    print("|---|---|---|---|")
    for minutes, wall, peak in rows:
        print(f"| {minutes:g} min stereo 44.1 kHz | {wall:.0f} s | {minutes * 60 / wall:.2f} | {peak:.0f} MiB |")
    if len(rows) > 1:
        low, high = min(r[2] for r in rows), max(r[2] for r in rows)
        print(f"peak RSS spread across lengths: {high - low:.0f} MiB ({(high / low - 1) * 100:.1f} %); "
              "target: about equal")


if __name__ == "__main__":
    main()
