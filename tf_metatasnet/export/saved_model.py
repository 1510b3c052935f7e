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
"""

from __future__ import annotations

import os

from tf_metatasnet.atomic import write_text_atomically
from tf_metatasnet.export.folding import fold_generator
from tf_metatasnet.export.graph import instrument_signature, save_signature, stems_signature


def models_config(models: "dict[str, str]") -> str:
    """TF Serving's ``--model_config_file`` text for ``{name: base_path}``."""
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{path}"\n    model_platform: "tensorflow"\n  }}\n'
        for name, path in models.items())
    return f"model_config_list {{\n{entries}}}\n"


def export_saved_model(model, base_dir: "str | os.PathLike", name: str = "metatasnet",
                       version: int = 1, instruments: "tuple[str, ...] | None" = None,
                       serving_root: str = "/models") -> dict:
    """Writes the SavedModels and ``models.config``; returns ``{model name: folder}``.

    Args:
        model: a ``MetaTasNet``.
        base_dir: TF Serving's model base folder.
        name: the all-stems model's name; per-instrument models are ``<name>_<instrument>``.
        version: the version folder written (replaced if it exists). Default 1.
        instruments: per-instrument models to write (default: all four; ``()`` for none).
        serving_root: where ``base_dir`` is seen by the TF Serving server, for the
            ``base_path`` entries of ``models.config`` (default ``/models``, the docker
            image's convention: ``-v $PWD/base_dir:/models``).
    """
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    instruments = tuple(model.sources if instruments is None else instruments)
    unknown = [i for i in instruments if i not in model.sources]
    if unknown:
        raise ValueError(f"unknown instrument(s) {', '.join(unknown)} "
                         f"(choose from {', '.join(model.sources)})")
    base_dir = os.fspath(base_dir)
    written = {name: save_signature(os.path.join(base_dir, name, str(version)), stems_signature(model))}
    if instruments:
        folded = fold_generator(model)
        for instrument in instruments:
            folder = os.path.join(base_dir, f"{name}_{instrument}", str(version))
            written[f"{name}_{instrument}"] = save_signature(
                folder, instrument_signature(folded, instrument))
    write_text_atomically(os.path.join(base_dir, "models.config"),
                          models_config({model_name: f"{serving_root.rstrip('/')}/{model_name}"
                                         for model_name in written}))
    return written
