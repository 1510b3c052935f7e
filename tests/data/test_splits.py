"""The dataset splits' names: musdb's, the cache's TFDS names, and the mapping."""

import pytest

from tf_metatasnet.data.splits import SPLITS, TFDS_SPLITS, split_key


def test_every_split_has_one_tfds_name_and_validation_is_valid():
    assert SPLITS == ("train", "valid", "test") and set(TFDS_SPLITS) == set(SPLITS)
    assert TFDS_SPLITS["valid"] == "validation"
    assert [split_key(name) for name in ("train", "valid", "validation", "test")] == \
        ["train", "valid", "valid", "test"]
    with pytest.raises(ValueError, match=r"unknown split 'training' \(train, valid, validation or test\)"):
        split_key("training")
