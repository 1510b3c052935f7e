"""Helpers shared by the benchmark scripts (not a library module; scripts import it by path)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_measurement(command: list[str]) -> dict:
    """Runs a measuring subprocess (its own peak RSS) and returns the JSON of its last line.

    The child gets ``PYTHONPATH`` = the repository and a quiet TensorFlow log.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
