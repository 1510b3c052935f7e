"""Loading and saving models: ``.keras`` files of this project and the authors' ``.pt`` checkpoints."""

from __future__ import annotations

import os

import keras

from tf_metatasnet.atomic import write_atomically


def save_model(model, path: "str | os.PathLike", recompress: bool = False) -> None:
    """Saves ``model`` as a ``.keras`` file, atomically (a crash leaves no half-written file).

    Args:
        model: a ``MetaTasNet``; a compiled one also saves its optimizer's state (training
            checkpoints), a loaded one (``load_model``) only the model.
        path: the ``.keras`` file.
        recompress: rewrite the archive at deflate's highest level. The weights file holds
            one HDF5 dataset per variable with kilobytes of mostly-zero metadata each, so
            this shrinks small models a lot (the bundled default model: 6.4 to 4.2 MB).
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: model files must end in .keras")

    def write(temporary: str) -> None:
        model.save(temporary)
        if recompress:
            _recompress(temporary)

    write_atomically(path, write)


def _recompress(path: str) -> None:
    """Rewrites the zip archive ``path`` in place with every member deflated at level 9."""
    import zipfile

    rewritten = path + ".zip"
    try:
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
            for member in source.infolist():
                target.writestr(member, source.read(member.filename),
                                compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        os.replace(rewritten, path)
    finally:
        if os.path.exists(rewritten):
            os.remove(rewritten)


def load_model(path: "str | os.PathLike"):
    """Loads a ready ``MetaTasNet``: a ``.keras`` file saved by this project, or a ``.pt``
    checkpoint of the authors' code (needs the ``torch`` extra; see ``import_official``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such model file")
    if path.endswith(".pt") or path.endswith(".pth"):
        from tf_metatasnet.importer import import_official

        return import_official(path)
    import tf_metatasnet.model  # noqa: F401  (registers the classes)

    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, OSError, KeyError) as error:
        raise ValueError(f"{path}: not a readable tf-metatasnet model ({error})") from None
