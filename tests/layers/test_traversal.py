"""Finding the layers inside a layer through its public attributes."""

import keras

import tf_metatasnet as tm
from tf_metatasnet.layers import InstrumentLayer, WeightGenerator
from tf_metatasnet.layers.traversal import sublayers


def test_sublayers_hold_every_weight_once_each():
    for generated in (True, False):
        model = tm.build_model("tiny", independent_params=not generated)
        for stage in model.stages:
            found = sublayers(stage)
            assert len({id(layer) for layer in found}) == len(found) and stage not in found
            # Every weight of the stage is owned by the stage or a layer found, by path.
            owners = {layer.path for layer in found} | {stage.path}
            assert {variable.path.rsplit("/", 1)[0] for variable in stage.weights} <= owners
            assert any(isinstance(layer, InstrumentLayer) for layer in found)
            assert any(isinstance(layer, WeightGenerator) for layer in found) == generated


def test_sublayers_walk_lists_and_dicts_depth_first():
    class Holder(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.first = keras.layers.Dense(2, name="a")
            self.group = [keras.layers.Dense(2, name="b"), {"c": keras.layers.Dense(2, name="c")}]
            self.again = self.first   # the same layer once
            self._hidden = keras.layers.Dense(2, name="hidden")

    outer = keras.layers.Layer(name="outer")
    outer.inner = Holder(name="inner")
    assert [layer.name for layer in sublayers(outer)] == ["inner", "a", "b", "c"]
