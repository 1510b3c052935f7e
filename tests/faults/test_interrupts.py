"""SIGINT and SIGTERM leave nothing behind; a full disk gives one line and no partial stem."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import soundfile
from snapshot import leftovers, snapshot

from tf_metatasnet.data.synth.toy import synthesize_track

RATE = 22050


def _start(tiny_model_file, song, out, tmp, *extra):
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # SIGINT as at a terminal: a shell's background job (as CI may run the tests) starts its
    # children with SIGINT ignored, and Python then never raises KeyboardInterrupt.
    return subprocess.Popen([sys.executable, "-m", "tf_metatasnet.cli", "separate", str(song), "-o", str(out),
                             "--model", str(tiny_model_file), "--no-xla", "--chunk-seconds", "2", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_work(process, tmp, timeout=120):
    """Until the separator's working folder exists in ``tmp`` (the song is being separated)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(name.startswith("metatasnet-") for name in os.listdir(tmp)):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the separation did not start")


@pytest.fixture
def long_song(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "long.wav"
    soundfile.write(path, synthesize_track(40.0, RATE, seed=3)["mixture"], RATE)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("signum, status, word", [(signal.SIGTERM, 143, "terminated"),
                                                  (signal.SIGINT, 130, "interrupted")])
def test_a_signal_removes_every_temporary_file_and_exits_like_a_shell(signum, status, word, tiny_model_file,
                                                                    long_song, tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    before = snapshot(long_song.parent)
    process = _start(tiny_model_file, long_song, out, tmp)
    _wait_for_work(process, tmp)
    time.sleep(0.5)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    messages = [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("metatasnet:")]
    assert messages == [f"metatasnet: {word}; nothing half-written was left"], stderr[-2000:]
    assert os.listdir(tmp) == [], "temporary files were left in TMPDIR"
    assert not out.exists() or not [f for _, _, files in os.walk(out) for f in files]
    assert not leftovers(tmp_path) and snapshot(long_song.parent) == before


def _tmpfs_command(folder, size):
    """A prefix that runs a command with a ``size`` tmpfs mounted on ``folder`` in a private
    mount namespace (``unshare``; nothing outside sees it), then lists what is left on it
    (``LEFT <path>`` lines on stdout) and exits with the command's status."""
    if shutil.which("unshare") is None:
        raise AssertionError("unshare (util-linux) is needed to make a small file system")
    script = (f'mount -t tmpfs -o size={size} tmpfs "{folder}" || exit 99; "$@"; status=$?; '
              f'find "{folder}" -mindepth 1 -printf "LEFT %p\\n"; exit $status')
    return ["unshare", "--mount", "--map-root-user", "--propagation", "private", "sh", "-c", script, "sh"]


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_partial_stem(tiny_model_file, song, tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    before = snapshot(song.parent)
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(_tmpfs_command(out, "96k") + [
        sys.executable, "-m", "tf_metatasnet.cli", "separate", str(song), "-o", str(out), "--model",
        str(tiny_model_file), "--no-xla"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("metatasnet")]
    assert lines[0].startswith(f"metatasnet: error: {out / 'song'}") or str(song) in lines[0], lines
    assert "no space left on the device" in lines[0] and len([l for l in lines if "error" in l]) == 1
    assert os.listdir(tmp) == [] and snapshot(song.parent) == before
    left = [line for line in done.stdout.splitlines() if line.startswith("LEFT ")]
    assert left == [], f"left on the full file system: {left}"
