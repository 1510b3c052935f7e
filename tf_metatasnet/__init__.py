"""tf-metatasnet: Meta-TasNet music source separation in TensorFlow / Keras.

Samuel, Ganeshan, Naradowsky, "Meta-learning Extractors for Music Source Separation",
ICASSP 2020.

The public API is re-exported here. The names whose modules import TensorFlow are
loaded on first use (PEP 562), so that importing the package, e.g. for ``metatasnet
--help``, does not load TensorFlow. Code that loads this project's ``.keras`` files with
plain ``keras.saving.load_model`` must import ``tf_metatasnet.models`` first (it
registers the layers); ``tf_metatasnet.load_model`` does.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tf_metatasnet.config import MetaTasNetConfig  # noqa: E402
from tf_metatasnet.presets import PRESETS, get_config, preset_names  # noqa: E402
from tf_metatasnet.sources import SOURCES  # noqa: E402

__version__ = "0.1.0"

#: Public names whose modules import TensorFlow: loaded when first used.
_LAZY = {
    "MetaTasNet": "tf_metatasnet.models.metatasnet",
    "build_model": "tf_metatasnet.models.metatasnet",
    "load_model": "tf_metatasnet.checkpoints.saving",
    "save_model": "tf_metatasnet.checkpoints.saving",
    "from_preset": "tf_metatasnet.checkpoints.pretrained",
    "Separator": "tf_metatasnet.inference.separator",
}

__all__ = [
    "PRESETS", "SOURCES", "MetaTasNet", "MetaTasNetConfig", "Separator", "build_model",
    "from_preset", "get_config", "load_model", "preset_names", "save_model", "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tf_metatasnet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
