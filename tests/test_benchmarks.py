"""The benchmark scripts run end to end on a tiny model (our side only: the authors' code
is not part of the repository, and the tests never read outside it)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "train_step": (["--preset", "tiny", "--steps", "1", "--warmup", "1", "--no-reference"],
                   [r"tf_metatasnet \(no XLA\): median", r"first step \(tracing"]),
    "inference_speed": (["--preset", "tiny", "--modes", "xla,authors", "--repeats", "1", "--runs", "1",
                         "--reference", "nowhere"],
                        [r"inference_reference.py not found", r"\| tf_metatasnet \(xla\) \|"]),
    "separate_song": (["--preset", "tiny", "--minutes", "0.1", "--runs", "1", "--no-reference"],
                      [r"0.1 min, metatasnet separate: .* s wall, peak RSS", r"\| 0.1 min stereo 44.1 kHz \|"]),
}


@pytest.mark.slow  # each starts TensorFlow in two or three processes
@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_and_prints_its_table(script):
    arguments, expected = CASES[script]
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *arguments,
                             "--peak-gflops", "100"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]

    for pattern in expected:
        assert re.search(pattern, result.stdout), (pattern, result.stdout)
