"""Turning an error from a dependency into the one line a message quotes."""

from __future__ import annotations

import errno
import os

#: Below this many free bytes a failed write is reported as a full disk.
_NEARLY_FULL = 1 << 20


def one_line(error: BaseException) -> str:
    """The most telling line of an error: ffmpeg's last stderr line when there is one,
    else the first line of its message, else its type's name."""
    stderr = getattr(error, "stderr", None)
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    if isinstance(stderr, str) and stderr.strip():
        return stderr.strip().splitlines()[-1].strip()
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def write_failure(error: BaseException, path: str) -> str:
    """Why writing ``path`` failed, in words: ``no space left on the device`` when its
    file system is (nearly) full (libsndfile and NumPy report that without an errno),
    else the error's own line."""
    if getattr(error, "errno", None) == errno.ENOSPC:
        return "no space left on the device"
    folder = os.path.dirname(os.path.abspath(path))
    try:
        stats = os.statvfs(folder)
        if stats.f_bavail * stats.f_frsize < _NEARLY_FULL:
            return "no space left on the device"
    except OSError:
        pass
    return getattr(error, "strerror", None) or one_line(error)
