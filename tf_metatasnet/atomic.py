"""Atomic writes: a file is written under a temporary name beside its path, then renamed.

A crash or an error while writing never leaves a half-written file at ``path``; an
existing file there stays as it was until the rename replaces it.
"""

from __future__ import annotations

import os
import uuid
from typing import Callable


def write_atomically(path: "str | os.PathLike", write: Callable[[str], None]) -> None:
    """Calls ``write(temporary)`` on a fresh name beside ``path``, then renames it to ``path``.

    The temporary name ends with ``path``'s whole name (writers that check the suffix,
    like Keras's ``model.save`` and ``save_weights`` with ``.weights.h5``, accept it) and
    ``write`` creates the file, so it gets the usual
    permissions. The folder is created if needed; on any error the temporary file is
    removed and the error raised again.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:12]}-{os.path.basename(path)}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_bytes_atomically(path: "str | os.PathLike", data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`write_atomically`)."""
    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            file.write(data)

    write_atomically(path, write)


def write_text_atomically(path: "str | os.PathLike", text: str) -> None:
    """Writes ``text`` to ``path`` as UTF-8, atomically (see :func:`write_atomically`)."""
    write_bytes_atomically(path, text.encode("utf-8"))
