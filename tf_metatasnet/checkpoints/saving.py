"""Loading and saving models: ``.keras`` files of this project and the authors' ``.pt`` checkpoints."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile

import h5py
import keras
import numpy as np

from tf_metatasnet.atomic import write_atomically
from tf_metatasnet.checkpoints.files import ModelFileError, read_keras_config
from tf_metatasnet.checkpoints.importer import import_official
from tf_metatasnet.errors import one_line

# Imported for its side effect too: it registers the model's classes for ``load_model``.
from tf_metatasnet.models.metatasnet import MetaTasNet
from tf_metatasnet.models.size import DEFAULT_LIMIT_GIB, check_size


def save_model(model, path: "str | os.PathLike", recompress: bool = False,
               weights_dtype: str = "float32") -> None:
    """Saves ``model`` as a ``.keras`` file, atomically (a crash leaves no half-written file).

    Args:
        model: a ``MetaTasNet``; a compiled one also saves its optimizer's state (training
            checkpoints), a loaded one (``load_model``) only the model.
        path: the ``.keras`` file.
        recompress: rewrite the archive at deflate's highest level. The weights file holds
            one HDF5 dataset per variable with kilobytes of mostly-zero metadata each, so
            this shrinks small models a lot (the previous, 4-layer default model: 6.4 to 4.2 MB).
        weights_dtype: ``"float16"`` stores the trainable weights rounded to float16: half
            the bytes, for shipping a trained model. ``load_model`` reads them back into the
            model's float32 variables. The non-trainable variables (the STFT windows and the
            spectrogram statistics) stay float32: a Hann window rounded to float16 lifts the
            spectrogram's leakage floor in the quiet bins, which alone costs the ``compact``
            model 20 dB of SI-SDR against its float32 self. Do not use it for training
            checkpoints. A weight outside float16's range is an error.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: model files must end in .keras")
    if weights_dtype not in ("float32", "float16"):
        raise ValueError(f"{path}: weights_dtype must be float32 or float16, got {weights_dtype!r}")

    def write(temporary: str) -> None:
        model.save(temporary)
        if recompress or weights_dtype != "float32":
            # Which stored arrays stay float32: those equal to a non-trainable variable.
            keep = ({_fingerprint(variable.numpy()) for variable in model.non_trainable_weights}
                    if weights_dtype != "float32" else set())
            _rewrite_archive(temporary, path, recompress, weights_dtype, keep)

    write_atomically(path, write)


#: The member of a ``.keras`` archive that holds the weights.
_WEIGHTS = "model.weights.h5"


def _fingerprint(values) -> tuple:
    """An array's shape, dtype and the sha256 of its bytes: equal arrays, equal fingerprints."""
    values = np.ascontiguousarray(values)
    return values.shape, values.dtype.str, hashlib.sha256(values.tobytes()).hexdigest()


def _rewrite_archive(archive: str, path: str, recompress: bool, weights_dtype: str,
                     keep: "set[tuple]" = frozenset()) -> None:
    """Rewrites the zip ``archive`` in place: members deflated at level 9 when ``recompress``,
    the weights stored as ``weights_dtype`` except arrays whose ``_fingerprint`` is in
    ``keep``; ``path`` names the model in errors."""
    rewritten = archive + ".zip"
    try:
        with zipfile.ZipFile(archive) as source, zipfile.ZipFile(rewritten, "w") as target:
            for member in source.infolist():
                data = source.read(member.filename)
                if member.filename == _WEIGHTS and weights_dtype != "float32":
                    data = _weights_as(data, weights_dtype, path, keep)
                if recompress:
                    target.writestr(member, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
                else:
                    target.writestr(member, data)
        os.replace(rewritten, archive)
    finally:
        if os.path.exists(rewritten):
            os.remove(rewritten)


def _weights_as(content: bytes, dtype: str, path: str, keep: "set[tuple]" = frozenset()) -> bytes:
    """A copy of the HDF5 weights file ``content`` with its float32 datasets cast to ``dtype``,
    except those whose ``_fingerprint`` is in ``keep``.

    The copy is written afresh (HDF5 does not give back the space of replaced datasets);
    groups, datasets and attributes keep their names, shapes and order.
    """
    limit = float(np.finfo(dtype).max)
    with tempfile.TemporaryDirectory() as work:
        source_path, target_path = os.path.join(work, "source.h5"), os.path.join(work, "target.h5")
        with open(source_path, "wb") as file:
            file.write(content)
        with h5py.File(source_path, "r") as source, h5py.File(target_path, "w") as target:
            target.attrs.update(source.attrs)

            def copy(name, item):
                if isinstance(item, h5py.Group):
                    target.require_group(name).attrs.update(item.attrs)
                    return
                values = item[()]
                if values.dtype == np.float32 and _fingerprint(values) not in keep:
                    largest = float(np.max(np.abs(values), initial=0.0))
                    if not largest <= limit:
                        raise ValueError(f"{path}: weight {name} does not fit in {dtype} "
                                         f"(largest magnitude {largest:.3g})")
                    values = values.astype(dtype)
                target.create_dataset(name, data=values).attrs.update(item.attrs)

            source.visititems(copy)
        with open(target_path, "rb") as file:
            return file.read()


def load_model(path: "str | os.PathLike", max_gib: "float | None" = DEFAULT_LIMIT_GIB) -> MetaTasNet:
    """Loads a ready ``MetaTasNet``: a ``.keras`` file saved by this project, or a ``.pt``
    checkpoint of the authors' code (needs the ``torch`` extra; see ``import_official``).

    The file is untrusted: its configuration is read and checked against the configuration's
    bounds and ``max_gib`` (``tf_metatasnet.models.size.check_size``; ``None``: no limit)
    before any weight is allocated, and every loaded weight must be finite.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: one line naming the file and the problem (``ModelFileError``,
            ``CheckpointError``, ``ModelTooLargeError``).
    """
    path = os.fspath(path)
    if path.endswith(".pt") or path.endswith(".pth"):
        return import_official(path, max_gib)
    check_size(read_keras_config(path), path, max_gib)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a damaged archive; all mean this
        raise ModelFileError(f"{path}: not a readable tf-metatasnet model ({one_line(error)})") from None
    if not isinstance(model, MetaTasNet):
        raise ModelFileError(f"{path}: holds a {type(model).__name__}, not a Meta-TasNet")
    for variable in model.weights:
        if not np.isfinite(variable.numpy()).all():
            raise ModelFileError(f"{path}: weight {variable.path} has NaN or infinite values")
    return model
