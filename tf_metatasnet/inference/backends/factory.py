"""``make_backend``: a backend by name."""

from __future__ import annotations

from tf_metatasnet.inference.backends import BACKENDS
from tf_metatasnet.inference.backends.base import Backend
from tf_metatasnet.inference.backends.keras import KerasBackend
from tf_metatasnet.inference.backends.serving import serving_backend
from tf_metatasnet.inference.backends.tflite import TFLiteBackend


def make_backend(name: str, target, **options) -> Backend:
    """The backend called ``name`` for ``target``.

    Args:
        name: ``keras``, ``serving`` or ``tflite`` (``BACKENDS``).
        target: for ``keras`` a ``MetaTasNet``; for ``serving`` the server URL
            (``http://host:8501/v1/models/NAME`` or ``grpc://host:8500/NAME``); for
            ``tflite`` the ``.tflite`` file (its metadata JSON beside it).
        **options: the backend's own: ``jit_compile``, ``device`` (keras); ``sources``,
            ``timeout`` (serving); ``num_threads`` (tflite).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name == "keras":
        return KerasBackend(target, **options)
    if name == "serving":
        return serving_backend(target, **options)
    if name == "tflite":
        return TFLiteBackend(target, **options)
    raise ValueError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
