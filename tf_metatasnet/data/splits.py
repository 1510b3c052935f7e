"""The dataset splits: musdb's names, the prepared cache's TFDS names, and the mapping.

musdb divides MUSDB18 into ``train`` (with its own ``valid`` part of 14 tracks) and
``test``; the prepared cache (``metatasnet prepare``) stores each as a TFDS split, the
``valid`` part under TFDS's usual name ``validation``. Everything that names a split reads
it from here.
"""

from __future__ import annotations

#: The splits a cache can hold, in musdb's names and in this order.
SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: The TFDS split (and the resampled data's folder) of each musdb split.
TFDS_SPLITS: dict[str, str] = {"train": "train", "valid": "validation", "test": "test"}


def split_key(split: str) -> str:
    """The musdb name of ``split``: ``valid`` and ``validation`` name the same split.

    Raises:
        ValueError: an unknown split (the message lists the known ones).
    """
    if split == "validation":
        return "valid"
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (train, valid, validation or test)")
    return split
