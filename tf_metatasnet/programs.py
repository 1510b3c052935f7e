"""The external programs the package runs (ffmpeg, fluidsynth): found on the ``PATH``, or a
one-line error that says what needs them and how to install them."""

from __future__ import annotations

import shutil


def find_program(name: str, needed_for: str, package: "str | None" = None) -> str:
    """The path of the program ``name``.

    Raises:
        FileNotFoundError: ``"<name> is not installed (needed for <needed_for>; e.g. apt-get
            install <package>)"``; ``package`` defaults to ``name``.
    """
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (needed for {needed_for}; "
                                f"e.g. apt-get install {package or name})")
    return path
