"""An optimizer's per-variable state kept as a few flat vectors ("buckets").

Ranger's update is a dozen element-wise operations per variable; written per variable,
the paper model's 1,518 variables put about 40 operations each into the training graph
(half the graph: tracing, Grappler and the executor pay for every one). Kept as flat
vectors, the same arithmetic is a dozen operations per bucket, and each variable costs
only its read, reshape and write-back.

- ``plan_buckets``: which variables share a bucket (same dtype, at most ``max_size``
  elements, so the update's temporaries stay small).
- ``flatten`` / ``unflatten``: tensors to one bucket vector and back.
- ``regroup``: saved state from one layout to another (per variable, or buckets of
  another size) by concatenating and re-splitting it, so files of either layout load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

__all__ = ["Bucket", "flatten", "plan_buckets", "regroup", "unflatten"]

#: Elements per bucket (16 MiB of float32): the paper model's 45 M weights make 13 buckets.
DEFAULT_BUCKET_SIZE = 1 << 22


@dataclass(frozen=True)
class Bucket:
    """Variables ``indices`` (positions in the optimizer's variable list), flattened and
    concatenated in that order into one vector of ``dtype``."""

    indices: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtype: str

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(shape) for shape in self.shapes)

    @property
    def size(self) -> int:
        return sum(self.sizes)


def plan_buckets(variables, max_size: int = DEFAULT_BUCKET_SIZE) -> list[Bucket]:
    """Consecutive variables of one dtype, grouped up to ``max_size`` elements a bucket
    (a larger variable gets a bucket of its own). Keeps the variables' order."""
    if max_size < 1:
        raise ValueError(f"`max_size` must be >= 1. Received: {max_size}")
    buckets: list[Bucket] = []
    indices: list[int] = []
    shapes: list[tuple[int, ...]] = []
    dtype = None

    def close():
        if indices:
            buckets.append(Bucket(tuple(indices), tuple(shapes), dtype))

    for index, variable in enumerate(variables):
        shape = tuple(int(d) for d in variable.shape)
        kind = tf.as_dtype(variable.dtype).name
        size = math.prod(shape)
        if indices and (kind != dtype or sum(map(math.prod, shapes)) + size > max_size):
            close()
            indices, shapes = [], []
        dtype = kind
        indices.append(index)
        shapes.append(shape)
    close()
    return buckets


def flatten(tensors) -> tf.Tensor:
    """``tensors`` raveled and concatenated: ``(sum of sizes,)``."""
    tensors = [tf.reshape(t, [-1]) for t in tensors]  # (size,) each
    return tensors[0] if len(tensors) == 1 else tf.concat(tensors, axis=0)


def unflatten(flat: tf.Tensor, bucket: Bucket) -> list[tf.Tensor]:
    """``flat`` (``(bucket.size,)``) cut back into tensors of ``bucket.shapes``."""
    parts = [flat] if len(bucket.shapes) == 1 else tf.split(flat, bucket.sizes)
    return [tf.reshape(part, shape) for part, shape in zip(parts, bucket.shapes)]


def regroup(arrays, sizes) -> list[np.ndarray] | None:
    """``arrays`` (one layout's parts of a state, in order) re-cut into 1-D parts of
    ``sizes``; ``None`` when their total size differs. Reads each array once."""
    arrays = list(arrays)
    if sum(int(np.prod(np.shape(a))) for a in arrays) != sum(sizes):
        return None
    flat = np.concatenate([np.ravel(np.asarray(a)) for a in arrays]) if arrays else np.zeros(0)
    return np.split(flat, np.cumsum(sizes)[:-1]) if sizes else []
