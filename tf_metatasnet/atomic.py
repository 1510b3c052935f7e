"""Atomic writes: every file the package writes is written under a temporary name beside
its path, then renamed into place.

A crash or an error while writing never leaves a half-written file at ``path``; an
existing file there stays as it was until the rename replaces it. The temporary file is
created by the writer itself (never by ``mkstemp``), so it gets the usual permissions of
the user's umask.

- :class:`PendingFile`: the temporary name, then ``commit()`` or ``discard()``; for writers
  that stream (audio files, ffmpeg).
- :func:`write_atomically`: ``write(temporary)`` then the rename; for libraries that write
  to a path (Keras, stempeg).
- :func:`write_bytes_atomically`, :func:`write_text_atomically`,
  :func:`write_json_atomically`: the common cases;
- :func:`write_directory_atomically`: a folder (a SavedModel), built beside its path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from typing import Any, Callable

#: Every temporary name starts with this (hidden, and recognisable as unfinished).
TEMPORARY_PREFIX = ".tmp-"


class PendingFile:
    """A file written under a temporary name beside ``path`` and renamed into place.

    Args:
        path: the destination. Its folder is created if needed.
        suffix: the temporary name's ending. By default the temporary name ends with
            ``path``'s whole name (writers that check the suffix, like Keras's
            ``model.save`` with ``.keras``, accept it); give one where the destination's
            name must not appear at the end (``.part.mp4`` for a ``.stem.mp4``, which musdb
            would otherwise list as a track) or where a tool picks the format by it.

    Use as a context manager (commits on success, discards on an error), or call
    :meth:`commit` / :meth:`discard`.
    """

    def __init__(self, path: "str | os.PathLike", suffix: "str | None" = None):
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        name = os.path.basename(self.path)
        ending = name if suffix is None else f"{name}{suffix}"
        self.temporary = os.path.join(directory, f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:12]}-{ending}")

    def commit(self) -> None:
        """Renames the written temporary file to ``path`` (replacing what was there)."""
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        """Removes the temporary file, if it was written; ``path`` is untouched."""
        if os.path.lexists(self.temporary):
            os.remove(self.temporary)

    def __enter__(self) -> "PendingFile":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()


def write_atomically(path: "str | os.PathLike", write: Callable[[str], None],
                     suffix: "str | None" = None) -> None:
    """Calls ``write(temporary)`` on a fresh name beside ``path``, then renames it to ``path``.

    ``write`` creates the file. On any error the temporary file is removed and the error
    raised again. ``suffix`` as :class:`PendingFile`'s.
    """
    with PendingFile(path, suffix) as pending:
        write(pending.temporary)


def write_bytes_atomically(path: "str | os.PathLike", data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`write_atomically`)."""
    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            file.write(data)

    write_atomically(path, write)


def write_text_atomically(path: "str | os.PathLike", text: str) -> None:
    """Writes ``text`` to ``path`` as UTF-8, atomically (see :func:`write_atomically`)."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_json_atomically(path: "str | os.PathLike", value: Any, **options: Any) -> None:
    """Writes ``value`` as indented JSON with a final newline, atomically.

    ``options`` go to ``json.dumps`` (e.g. ``allow_nan=False``).
    """
    write_text_atomically(path, json.dumps(value, indent=2, **options) + "\n")


def write_directory_atomically(path: "str | os.PathLike", write: Callable[[str], None]) -> str:
    """Calls ``write(temporary)`` on a fresh folder beside ``path``, then puts it at ``path``.

    A folder already at ``path`` is moved aside, replaced and then deleted: whether it may
    be replaced is the caller's decision, taken before (``export_saved_model`` replaces only
    a SavedModel, and only when asked). On any error the new folder is removed and ``path``
    keeps what it had. Returns ``path`` (absolute).
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=TEMPORARY_PREFIX, dir=parent)
    os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp makes 0700; a SavedModel is shared
    try:
        write(temporary)
        if os.path.lexists(path):
            old = tempfile.mkdtemp(prefix=".old-", dir=parent)
            os.replace(path, os.path.join(old, "replaced"))
            os.replace(temporary, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return path


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
