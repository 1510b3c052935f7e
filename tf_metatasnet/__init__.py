"""tf-metatasnet: Meta-TasNet music source separation in TensorFlow / Keras.

Samuel, Ganeshan, Naradowsky, "Meta-learning Extractors for Music Source Separation",
ICASSP 2020.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tf_metatasnet.config import PRESETS, SOURCES, MetaTasNetConfig, get_config  # noqa: E402
from tf_metatasnet.model import MetaTasNet, build_model  # noqa: E402
from tf_metatasnet.saving import load_model, save_model  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "PRESETS", "SOURCES", "MetaTasNet", "MetaTasNetConfig", "build_model", "get_config",
    "load_model", "save_model", "__version__",
]
