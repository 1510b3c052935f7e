"""Helpers shared by the benchmark scripts (not a library module; scripts import it by path)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Where the authors' PyTorch code and its timing scripts are (``train_step_reference.py``,
#: ``inference_reference.py``, ``separate_reference.py``): the workplace's
#: ``shared/reference`` beside the clone, or ``$METATASNET_REFERENCE``. They are run, never
#: imported or copied.
DEFAULT_REFERENCE = Path(os.environ.get("METATASNET_REFERENCE", ROOT.parent / "shared" / "reference"))

#: The float32 peak the figures are a percentage of, in GFLOP/s: by default measured at the
#: start of each benchmark (:func:`measure_peak_gflops`, the best large matmul TensorFlow
#: runs on this machine), or given with ``--peak-gflops``. The issue's nominal figure for
#: the 2 AMD EPYC cores (AVX2 FMA at 2.45 GHz) was 157; the cores measured here also run
#: AVX-512 and reach more.
PEAK_GFLOPS = None

#: Matmul and convolution FLOP of the paper model's forward pass per second of mono audio
#: (all three stages, all four instruments), counted on the authors' model.
PAPER_GFLOP_PER_SECOND = 36.3


def run_measurement(command: list[str]) -> dict:
    """Runs a measuring subprocess (its own peak RSS) and returns the JSON of its last line.

    The child gets ``PYTHONPATH`` = the repository and a quiet TensorFlow log.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_child(command: list[str], cwd: "str | None" = None) -> tuple[float, float, str]:
    """Runs ``command`` in a fresh process: ``(wall seconds, its peak RSS in MiB, its stdout)``.

    A small Python wrapper starts it and reads ``RUSAGE_CHILDREN``, so the figure is the
    command's own peak (largest of its process tree's members), not this script's.
    """
    wrapper = ("import resource, subprocess, sys, json; "
               "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True); "
               "sys.stdout.write(r.stdout); "
               "print(json.dumps([r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True,
                            cwd=cwd, env=env)
    wall = time.perf_counter() - start
    lines = result.stdout.strip().splitlines()
    code, rss_kib = json.loads(lines[-1]) if lines else (result.returncode, 0)
    if code != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stderr[-3000:]}")
    return wall, rss_kib / 1024, "\n".join(lines[:-1])


def reference_script(folder: Path, name: str) -> "Path | None":
    """The authors' timing script ``name`` in ``folder``, or ``None`` (with the reason printed
    by the caller) when that folder or torch is missing."""
    path = Path(folder) / name
    return path if path.is_file() else None


def measure_peak_gflops(size: int = 2048, calls: int = 8) -> float:
    """The best float32 matmul throughput TensorFlow reaches here, in GFLOP/s (a few seconds;
    in a child process, so that the measuring script's own process stays free of TensorFlow)."""
    code = ("import time, tensorflow as tf\n"
            f"a = tf.random.normal(({size}, {size})); best = 1e9\n"
            f"for _ in range({calls}):\n"
            "    t = time.perf_counter(); tf.linalg.matmul(a, a).numpy(); best = min(best, time.perf_counter() - t)\n"
            f"print(2 * {size} ** 3 / best / 1e9)\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def percent_of_peak(gflop: float, seconds: float, peak_gflops: float) -> float:
    """How much of the CPU's peak ``gflop`` done in ``seconds`` is, in percent."""
    return 100.0 * gflop / seconds / peak_gflops
