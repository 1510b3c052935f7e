"""The data shipped inside the package: the default model and the demo song.

Both live in ``tf_metatasnet/assets/`` and are installed with the package (``package_data``
in ``setup.py``), so ``metatasnet separate`` without ``--model`` and ``metatasnet demo``
work on a fresh machine with no download:

- ``default_model.keras``: the default model (the ``compact`` preset with 6-layer stacks, float16 weights), with
  ``default_model.yaml``, the training config it was made with
  (``training/make_default_model.sh`` makes both);
- ``demo_song/{drums,bass,other,vocals}.flac``: the true stems of a short song no model
  was trained on (``tf_metatasnet.demo.render_demo_song`` made them); the mixture is their
  sum.

The paths come from ``importlib.resources``, so they are right in a source checkout, an
editable install and a regular ``pip install .`` alike.
"""

from __future__ import annotations

import os
from importlib import resources

from tf_metatasnet.sources import SOURCES

#: File names inside the assets folder.
DEFAULT_MODEL = "default_model.keras"
DEFAULT_MODEL_CONFIG = "default_model.yaml"
DEMO_SONG = "demo_song"


def assets_dir() -> str:
    """The package's ``assets`` folder (it may be missing if installed without its data)."""
    return os.fspath(resources.files("tf_metatasnet") / "assets")


def asset_path(name: str, root: "str | os.PathLike | None" = None, what: str = "file") -> str:
    """The path of the asset file ``name`` (e.g. ``default_model.keras``).

    Args:
        name: a file name inside the assets folder.
        root: the assets folder (default: :func:`assets_dir`); for tests.
        what: what the file is, for the error message.

    Raises:
        FileNotFoundError: the file is missing (one line, naming it).
    """
    path = os.path.join(os.fspath(root) if root is not None else assets_dir(), name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: no bundled {what} (the package was installed without its data, or the "
            f"model has not been trained yet: training/make_default_model.sh makes it); pass --model")
    return path


def default_model_path(root: "str | os.PathLike | None" = None) -> str:
    """The path of the bundled default model, ``assets/default_model.keras`` (see :func:`asset_path`)."""
    return asset_path(DEFAULT_MODEL, root, "default model")


def demo_song_dir(root: "str | os.PathLike | None" = None) -> str:
    """The folder of the bundled demo song's stems, ``assets/demo_song/<source>.flac``.

    Args:
        root: the assets folder (default: :func:`assets_dir`); for tests.

    Raises:
        FileNotFoundError: a stem is missing (one line, naming it).
    """
    folder = os.path.join(os.fspath(root) if root is not None else assets_dir(), DEMO_SONG)
    for name in SOURCES:
        path = os.path.join(folder, f"{name}.flac")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path}: no bundled demo song (the package was installed without its data; "
                f"tf_metatasnet.demo.render_demo_song makes it)")
    return folder
