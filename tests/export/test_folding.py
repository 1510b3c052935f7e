"""Folding the generator into constant weights: same outputs, no generator."""

import keras
import numpy as np
import tensorflow as tf
from signals import random_mixtures

import tf_metatasnet as tm
from tf_metatasnet.export.folding import fold_generator
from tf_metatasnet.export.graph import extract_instrument, make_exportable
from tf_metatasnet.layers import InstrumentConv1x1, LogSpectrogram
from tf_metatasnet.layers.traversal import sublayers


def test_folded_model_has_static_weights_and_the_same_outputs():
    keras.utils.set_random_seed(1)
    model = tm.build_model("tiny")
    folded = fold_generator(model)
    assert folded.config.independent_params and not model.config.independent_params
    assert not any("generator" in v.path or "instrument_embedding" in v.path for v in folded.weights)
    mixtures = random_mixtures(model.config, batch=2, frames=64)
    for expected, actual in zip(model(mixtures), folded(mixtures)):  # every stage
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_folding_a_static_model_copies_it():
    keras.utils.set_random_seed(2)
    model = tm.build_model("tiny", independent_params=True)
    folded = fold_generator(model)
    mixtures = random_mixtures(model.config, batch=1, frames=64)
    np.testing.assert_array_equal(folded.separate(mixtures), model.separate(mixtures))


def test_extracting_one_instrument_equals_the_separation():
    keras.utils.set_random_seed(3)
    model = tm.build_model("tiny")
    mixtures = random_mixtures(model.config, batch=2, frames=64)
    everything = model.separate(mixtures).numpy()
    for index in range(4):
        one = extract_instrument(model, [tf.constant(m) for m in mixtures], index).numpy()
        np.testing.assert_allclose(one, everything[:, index], rtol=1e-5, atol=1e-6)


def test_export_formulations_give_the_same_values():
    keras.utils.set_random_seed(4)
    model = tm.build_model("tiny")
    exportable = make_exportable(fold_generator(model))
    switched = [layer for layer in sublayers(exportable) if getattr(layer, "exportable", False)]
    assert {type(layer) for layer in switched} == {LogSpectrogram, InstrumentConv1x1}
    assert len(switched) == len([layer for layer in sublayers(model)
                                 if isinstance(layer, (LogSpectrogram, InstrumentConv1x1))])
    assert not any(getattr(layer, "exportable", False) for layer in sublayers(model))
    mixtures = random_mixtures(model.config, batch=2, frames=64)
    np.testing.assert_allclose(exportable.separate(mixtures), model.separate(mixtures), rtol=1e-4, atol=1e-6)
    # The switch is not part of the saved configuration.
    assert "exportable" not in str(exportable.get_config()) and exportable.get_config() == \
        fold_generator(model).get_config() | {"name": exportable.get_config()["name"]}

