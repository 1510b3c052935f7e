"""The separator's output folders: made and checked before any work, removed again if the
song fails and they are still empty."""

from __future__ import annotations

import os
import tempfile


class OutputError(ValueError):
    """An output folder cannot be made or written; the message names it."""


def check_writable(paths) -> list[str]:
    """Fails early, before any work, when an output folder cannot be written.

    Returns the folders it created (deepest last), to be removed again if the song fails.
    """
    created = []
    for path in paths:
        directory = os.path.dirname(os.path.abspath(path))
        missing, parent = [], directory
        while not os.path.exists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        try:
            os.makedirs(directory, exist_ok=True)
            created.extend(reversed(missing))
        except OSError as error:
            raise OutputError(f"{directory}: cannot create the output folder "
                                  f"({error.strerror})") from None
        try:
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as error:
            raise OutputError(f"{directory}: the output folder is not writable "
                                  f"({error.strerror})") from None
    return created


def remove_empty(folders) -> None:
    """Removes folders this run created, deepest first, where they are still empty."""
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            pass
