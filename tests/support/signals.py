"""Random model inputs for the tests."""

import numpy as np


def random_mixtures(config, batch=2, frames=40, seed=0):
    """One random mixture per stage, ``(batch, frames * W_i)``."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, frames * config.stride(i))).astype("float32")
            for i in range(config.stages_num)]
