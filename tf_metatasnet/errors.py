"""Turning an error from a dependency into the one line a message quotes."""

from __future__ import annotations


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
