"""Training with ``tf.distribute``: MirroredStrategy on two logical CPU devices and
MultiWorkerMirroredStrategy with two worker processes on localhost, each against
single-device training on the same data for ten steps (``distributed_worker.py`` runs both
sides), equal within float32 rounding."""

import json
import os
import socket
import subprocess
import sys

import distributed_worker
import numpy as np
import pytest
from locations import SUPPORT

#: Each runs training in worker processes: half a minute or more.
pytestmark = pytest.mark.slow


def _reference(toy_cache, replicas, pipelines, initial_file):
    with np.load(initial_file) as data:
        initial = dict(data)
    return distributed_worker.reference_weights(toy_cache.cache_dir, replicas, pipelines, initial)


#: What may differ: float32 rounding. The distributed run sums each replica's gradient
#: computed in another process (or thread) with other summation orders, so every step may
#: round differently by a few units in the last place; with the updates bounded by the
#: recipe's clipping nothing amplifies that. Allowed: 4 float32 ulps per step, relative to
#: the weight (and absolutely, for weights near zero), over the run's steps.
TOLERANCE = 4 * np.finfo(np.float32).eps * distributed_worker.STEPS


def _compare(weights, reference, initial_file):
    """Equal within float32 rounding over the steps; training moved the weights far more."""
    with np.load(initial_file) as data:
        initial = {name.split(":", 1)[1]: data[name] for name in data.files}  # by path
    assert sorted(weights) == sorted(reference)
    moved = max(np.abs(value - initial[name.split(":", 1)[1]]).max() for name, value in reference.items())
    assert moved > 100 * TOLERANCE, moved
    for name, value in reference.items():
        np.testing.assert_allclose(weights[name], value, rtol=TOLERANCE, atol=TOLERANCE, err_msg=name)


def test_mirrored_strategy_on_two_cpu_devices_agrees_with_one_device(toy_cache, tmp_path):
    out = tmp_path / "mirrored.npz"
    subprocess.run([sys.executable, str(SUPPORT / "distributed_worker.py"), "mirrored",
                    str(toy_cache.cache_dir), str(out), "--cpu-devices", "2"],
                   check=True, timeout=600)
    with np.load(out) as data:
        weights = dict(data)
    initial = tmp_path / "mirrored.initial.npz"
    _compare(weights, _reference(toy_cache, 2, 1, initial), initial)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_strategy_with_two_processes_agrees_with_one_device(toy_cache, tmp_path):
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, str(SUPPORT / "distributed_worker.py"), "multi_worker",
             str(toy_cache.cache_dir), str(tmp_path / f"worker{index}.npz")], env=env))
    for process in processes:
        assert process.wait(timeout=600) == 0
    initial = tmp_path / "worker0.initial.npz"
    reference = _reference(toy_cache, 2, 2, initial)
    for index in range(2):
        with np.load(tmp_path / f"worker{index}.npz") as data:
            _compare(dict(data), reference, initial)
