"""SavedModels for TF Serving: all stems, one model per instrument, and a ``models.config``.

Layout written under ``base_dir`` (TF Serving's: one folder per model, one numbered
folder per version)::

    base_dir/
      models.config                  TF Serving's model config (text protobuf) serving them all
      metatasnet/1/                  all four stems
      metatasnet_vocals/1/           one instrument, generator folded into constant weights
      ...

Each SavedModel's ``serving_default`` signature takes ``mixture_8000``,
``mixture_16000`` and ``mixture_32000`` (for the paper's rates): ``(batch, samples_i)``
float32, the mono mixture resampled to each stage's rate *outside* the graph and divided
by its standard deviation over the whole song, ``samples_i = n * 2**i`` with ``n`` a
multiple of the stride (20); any batch and length. Outputs are named per stem,
``(batch, samples_32000)`` at the last stage's rate, to be multiplied back by the
32 kHz standard deviation (one instrument) or rescaled by least squares to the mixture
(all four, as ``Separator`` does). The graphs hold only standard TensorFlow ops and
constants: TensorFlow alone loads and runs them.

Nothing that was not written here is deleted: an existing version folder is refused unless
``overwrite``, and then replaced (built beside it, renamed into place) only if it is a
SavedModel; model names are single path components.
"""

from __future__ import annotations

import os
import re

from tf_metatasnet.atomic import write_text_atomically
from tf_metatasnet.export.folding import fold_generator
from tf_metatasnet.export.graph import instrument_signature, save_signature, stems_signature


def models_config(models: "dict[str, str]") -> str:
    """TF Serving's ``--model_config_file`` text for ``{name: base_path}``."""
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{path}"\n    model_platform: "tensorflow"\n  }}\n'
        for name, path in models.items())
    return f"model_config_list {{\n{entries}}}\n"


#: What a model name may be: a single path component of letters, digits, ``_``, ``-``, ``.``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ExportError(ValueError):
    """An export that would replace what it did not write, or a bad name; one line."""


def check_name(name: str) -> None:
    """Raises :class:`ExportError` unless ``name`` is a model name TF Serving can serve from
    one folder (no separators, no ``..``)."""
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ExportError(f"--name {name!r}: a model name is letters, digits, '_', '-' and '.', "
                          f"starting with a letter or digit, without '..' or separators")


def _check_target(folder: str, overwrite: bool) -> None:
    """Refuses a version folder that exists, unless ``overwrite`` and it is a SavedModel."""
    if not os.path.lexists(folder):
        return
    if not overwrite:
        raise ExportError(f"{folder}: already exists; --overwrite replaces it (only a SavedModel)")
    if not (os.path.isdir(folder) and not os.path.islink(folder)
            and os.path.isfile(os.path.join(folder, "saved_model.pb"))):
        raise ExportError(f"{folder}: is not a SavedModel (no saved_model.pb); it is not replaced")


def export_saved_model(model, base_dir: "str | os.PathLike", name: str = "metatasnet",
                       version: int = 1, instruments: "tuple[str, ...] | None" = None,
                       serving_root: str = "/models", overwrite: bool = False) -> dict:
    """Writes the SavedModels and ``models.config``; returns ``{model name: folder}``.

    Args:
        model: a ``MetaTasNet``.
        base_dir: TF Serving's model base folder.
        name: the all-stems model's name; per-instrument models are ``<name>_<instrument>``.
        version: the version folder written. Default 1.
        instruments: per-instrument models to write (default: all four; ``()`` for none).
        serving_root: where ``base_dir`` is seen by the TF Serving server, for the
            ``base_path`` entries of ``models.config`` (default ``/models``, the docker
            image's convention: ``-v $PWD/base_dir:/models``).
        overwrite: replace version folders that exist (SavedModels only); without it an
            existing one is an error and nothing is written.

    Raises:
        ExportError: a bad name, or a version folder that may not be replaced (checked for
            every model before anything is written).
    """
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    instruments = tuple(model.sources if instruments is None else instruments)
    unknown = [i for i in instruments if i not in model.sources]
    if unknown:
        raise ValueError(f"unknown instrument(s) {', '.join(unknown)} "
                         f"(choose from {', '.join(model.sources)})")
    check_name(name)
    base_dir = os.fspath(base_dir)
    folders = {model_name: os.path.join(base_dir, model_name, str(version))
               for model_name in [name] + [f"{name}_{instrument}" for instrument in instruments]}
    for folder in folders.values():
        _check_target(folder, overwrite)
    config_path = os.path.join(base_dir, "models.config")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8", errors="replace") as file:
            if not file.read(64).startswith("model_config_list"):
                raise ExportError(f"{config_path}: is not a TF Serving model config; it is not replaced")
    written = {name: save_signature(folders[name], stems_signature(model))}
    if instruments:
        folded = fold_generator(model)
        for instrument in instruments:
            written[f"{name}_{instrument}"] = save_signature(folders[f"{name}_{instrument}"],
                                                             instrument_signature(folded, instrument))
    write_text_atomically(os.path.join(base_dir, "models.config"),
                          models_config({model_name: f"{serving_root.rstrip('/')}/{model_name}"
                                         for model_name in written}))
    return written
