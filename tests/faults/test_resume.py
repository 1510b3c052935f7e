"""A training run killed with SIGKILL at any point and resumed ends bit-identical to an
uninterrupted run: weights, optimizer state and loss history."""

import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
from locations import SUPPORT

pytestmark = pytest.mark.slow   # three or four training processes


def _run(toy_cache, run, out, *extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(SUPPORT / "resume_worker.py"), str(toy_cache.cache_dir), str(run),
                           str(out), *map(str, extra)], capture_output=True, text=True, timeout=600, env=env)


def _weights(path):
    with np.load(path) as data:
        return {name.split(":", 1)[0] + ":" + name.split("/", 1)[-1]: data[name] for name in data.files}


def test_a_killed_and_resumed_run_is_bit_identical(toy_cache, tmp_path):
    done = _run(toy_cache, tmp_path / "straight", tmp_path / "straight.npz")
    assert done.returncode == 0, done.stderr[-3000:]
    expected = _weights(tmp_path / "straight.npz")

    step = random.SystemRandom().randrange(1, 12)          # anywhere in the 12 steps
    where = f"(killed after step {step}, then after epoch 2's checkpoint)"
    killed = _run(toy_cache, tmp_path / "killed", tmp_path / "never.npz", "--kill-at-step", step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # Killed again right after epoch 2's commit, unless the first kill came after it.
    again = _run(toy_cache, tmp_path / "killed", tmp_path / "resumed.npz", "--resume", "--kill-after-epoch", 2)
    if again.returncode == -signal.SIGKILL:
        assert step <= 8, where
        again = _run(toy_cache, tmp_path / "killed", tmp_path / "resumed.npz", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = _weights(tmp_path / "resumed.npz")
    assert sorted(resumed) == sorted(expected) and not os.path.exists(tmp_path / "never.npz")
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=f"{name} {where}")
    straight = (tmp_path / "straight" / "history.csv").read_text()
    assert (tmp_path / "killed" / "history.csv").read_text() == straight, where
    assert len(straight.strip().splitlines()) == 4                          # header + 3 epochs
