"""Shared fixtures: the authors' parity fixture and small models."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The helpers in tests/support (official_reference, the worker scripts, locations) are
# imported by name; the test files themselves are imported by path (pytest.ini's importlib mode).
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from locations import FIXTURES  # noqa: E402

#: The slowest test files (minutes each on 2 cores), started first: pytest.ini runs the files
#: on two xdist workers, a file per worker at a time (``--dist loadfile``, so a module's
#: fixtures are built once), and the run ends when the longest queue does.
SLOW_FIRST = ("test_train.py", "test_demo.py", "test_convert.py", "test_metatasnet.py",
              "test_evaluate.py", "test_strategies.py")


#: Module fixtures that take a minute or more to build (a TFLite export of every variant,
#: a whole demo run): every test that uses one is ``slow`` (``-m "not slow"`` leaves it out).
SLOW_FIXTURES = {"exported", "demo"}


def pytest_collection_modifyitems(config, items):
    """Marks the tests of ``SLOW_FIXTURES`` slow; puts the files of ``SLOW_FIRST`` first, in
    that order (the rest keep theirs)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)

    def rank(item):
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: tests keep their order within a file


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def official_small(fixture_dir):
    """The fixture's arrays, as a dict."""
    with np.load(fixture_dir / "official_small.npz") as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="session")
def toy_musdb_wav(tmp_path_factory):
    """A small synthetic MUSDB18-HQ (3 train tracks, 1 of them in musdb's valid split; 2 test)."""
    from tf_metatasnet.data.synth.dataset import make_toy_dataset

    root = tmp_path_factory.mktemp("toy-musdb-wav")
    make_toy_dataset(root, tracks=3, test_tracks=2, seconds=6.0, fmt="wav", seed=1)
    return root


@pytest.fixture(scope="session")
def toy_musdb_stem(tmp_path_factory):
    """The same in the MUSDB18 layout (``.stem.mp4``, AAC)."""
    from tf_metatasnet.data.synth.dataset import make_toy_dataset

    root = tmp_path_factory.mktemp("toy-musdb-stem")
    make_toy_dataset(root, tracks=3, test_tracks=2, seconds=6.0, fmt="stem", seed=1)
    return root


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """A seeded tiny model and its TF Serving export (all stems + ``metatasnet_vocals``)."""
    import keras

    import tf_metatasnet as tm
    from tf_metatasnet.export.saved_model import export_saved_model

    keras.utils.set_random_seed(5)
    model = tm.build_model("tiny")
    base = tmp_path_factory.mktemp("serving")
    export_saved_model(model, base, name="metatasnet", version=3, instruments=("vocals",))
    return model, base


@pytest.fixture(scope="session")
def toy_cache(toy_musdb_wav, tmp_path_factory):
    """The toy MUSDB18-HQ prepared with 0.5-s crops (train and valid splits), for training."""
    from tf_metatasnet.data.prepare import prepare_musdb

    return prepare_musdb(toy_musdb_wav, tmp_path_factory.mktemp("train-cache"), is_wav=True,
                         crop_seconds=0.5, splits=("train", "valid"))
