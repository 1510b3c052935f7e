"""A folder's files and their checksums, to show that a failed call changed nothing."""

import hashlib
import os
from pathlib import Path


def snapshot(*folders) -> dict:
    """``{path: sha256}`` of every file below ``folders`` (links and FIFOs by their kind)."""
    found = {}
    for folder in folders:
        for parent, dirs, files in os.walk(folder):
            for name in dirs + files:
                path = Path(parent) / name
                if path.is_symlink() or not path.is_file():
                    found[str(path)] = "dir" if path.is_dir() and not path.is_symlink() else "special"
                else:
                    found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def leftovers(*folders) -> list:
    """Temporary files and folders this project makes (``.tmp-*``, ``metatasnet-*``) below ``folders``."""
    return sorted(str(Path(parent) / name) for folder in folders for parent, dirs, files in os.walk(folder)
                  for name in dirs + files if name.startswith((".tmp-", "metatasnet-", ".old-")))


def one_line_error(capsys, *names) -> str:
    """The command's error: no traceback, and one ``metatasnet: error: <file>: <problem>`` line
    naming ``names`` (progress bars aside)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("metatasnet: error: ")]
    assert len(lines) == 1, err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]
