"""The MetaTasNet model: public contract, size, saving, XLA, gradients and Keras fit."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from signals import random_mixtures

import tf_metatasnet as tm
from tf_metatasnet.export.report import si_sdr
from tf_metatasnet.layers import InstrumentDepthwiseConv


@pytest.mark.slow
def test_paper_preset_has_as_many_values_as_the_original_state_dict():
    model = tm.build_model("paper")
    assert model.count_params() == 45_545_602


@pytest.mark.parametrize("preset", ["tiny", pytest.param("compact", marks=pytest.mark.slow)])
def test_receptive_field_is_what_the_built_depthwise_convolutions_reach(preset):
    """``receptive_field_seconds`` against the layers the model actually has: the stages
    are chained frame by frame, so every depthwise convolution's reach adds up."""
    model = tm.build_model(preset)
    model(random_mixtures(model.config, batch=1, frames=4))
    convs = [layer for layer in model._flatten_layers(include_self=False)  # noqa: SLF001
             if isinstance(layer, InstrumentDepthwiseConv)]
    config = model.config
    assert len(convs) == config.stages_num * config.stack * config.layers
    frames = sum(conv.dilation_rate * (conv.kernel_size - 1) // 2 for conv in convs)
    assert config.receptive_field_seconds() == pytest.approx(frames * config.W / config.sampling_rate)


@pytest.mark.parametrize("batch, frames", [(1, 40), (3, 7), (2, 1)])
def test_call_contract_any_batch_and_any_multiple_of_the_stride(batch, frames):
    model = tm.build_model("tiny")
    mixtures = random_mixtures(model.config, batch=batch, frames=frames)
    outputs = model(mixtures)
    assert len(outputs) == model.config.stages_num
    for i, output in enumerate(outputs):
        assert output.shape == (batch, 4, mixtures[i].shape[1])
        assert output.dtype == tf.float32
        assert np.all(np.isfinite(output.numpy()))
    np.testing.assert_allclose(model.separate(mixtures).numpy(), outputs[-1].numpy(), rtol=1e-6, atol=1e-7)


def test_batch_items_are_separated_independently():
    model = tm.build_model("tiny")
    mixtures = random_mixtures(model.config, batch=3, frames=30)
    together = model(mixtures)[-1].numpy()
    alone = model([m[1:2] for m in mixtures])[-1].numpy()
    np.testing.assert_allclose(together[1:2], alone, rtol=1e-4, atol=1e-6)


def test_wrong_inputs_are_clear_errors():
    model = tm.build_model("tiny")
    with pytest.raises(ValueError, match="list of 3 mixtures"):
        model(random_mixtures(model.config)[:2])


@pytest.mark.parametrize("overrides", [{}, {"independent_params": True, "residual_bias": True, "stages_num": 2}])
def test_keras_file_round_trip_gives_identical_outputs(overrides, tmp_path):
    model = tm.build_model("tiny", **overrides)
    mixtures = random_mixtures(model.config)
    path = tmp_path / "nested" / "model.keras"
    tm.save_model(model, path)
    assert sorted(os.listdir(path.parent)) == ["model.keras"]  # no temporary file left
    loaded = tm.load_model(path)
    assert isinstance(loaded, tm.MetaTasNet) and loaded.config == model.config
    for a, b in zip(model(mixtures), loaded(mixtures)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_recompressed_keras_file_is_smaller_and_loads_the_same(tmp_path):
    import zipfile

    model = tm.build_model("tiny")
    tm.save_model(model, tmp_path / "plain.keras")
    tm.save_model(model, tmp_path / "small.keras", recompress=True)
    assert sorted(os.listdir(tmp_path)) == ["plain.keras", "small.keras"]
    assert os.path.getsize(tmp_path / "small.keras") < 0.9 * os.path.getsize(tmp_path / "plain.keras")
    with zipfile.ZipFile(tmp_path / "small.keras") as archive:
        assert archive.testzip() is None
        assert all(member.compress_type == zipfile.ZIP_DEFLATED for member in archive.infolist())
    loaded = tm.load_model(tmp_path / "small.keras")
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_float16_weights_are_half_the_bytes_and_load_as_the_rounded_float32_values(tmp_path):
    import zipfile

    model = tm.build_model("tiny")
    tm.save_model(model, tmp_path / "float32.keras", recompress=True)
    tm.save_model(model, tmp_path / "float16.keras", recompress=True, weights_dtype="float16")
    assert sorted(os.listdir(tmp_path)) == ["float16.keras", "float32.keras"]

    def weight_bytes(name):
        with zipfile.ZipFile(tmp_path / name) as archive:
            return archive.getinfo("model.weights.h5").compress_size

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    saved = weight_bytes("float32.keras") - weight_bytes("float16.keras")
    assert saved > 0.8 * 2 * trainable  # about 2 bytes a value fewer
    loaded = tm.load_model(tmp_path / "float16.keras")
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for original, read in zip(model.weights, loaded.weights):
        values = original.numpy()
        assert read.dtype == "float32"
        if original.trainable:
            np.testing.assert_array_equal(values.astype(np.float16).astype(np.float32), read.numpy())
        else:  # the STFT windows and spectrogram statistics stay exact
            np.testing.assert_array_equal(values, read.numpy())
    assert any("window" in w.path for w in model.non_trainable_weights)
    mixtures = random_mixtures(model.config)
    for a, b in zip(model.separate(mixtures).numpy()[0], loaded.separate(mixtures).numpy()[0]):
        assert si_sdr(b, a) > 50.0


def test_float16_weights_out_of_range_or_an_unknown_dtype_are_one_line_errors(tmp_path):
    model = tm.build_model("tiny")
    weight = model.trainable_weights[0]
    weight.assign(np.full(weight.shape, 1e6, np.float32))
    with pytest.raises(ValueError, match=r"big\.keras: weight .* does not fit in float16"):
        tm.save_model(model, tmp_path / "big.keras", weights_dtype="float16")
    with pytest.raises(ValueError, match="weights_dtype must be float32 or float16"):
        tm.save_model(model, tmp_path / "odd.keras", weights_dtype="int8")
    assert os.listdir(tmp_path) == []  # nothing half-written


def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        tm.load_model(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="junk.keras"):
        tm.load_model(junk)
    with pytest.raises(ValueError, match="must end in .keras"):
        tm.save_model(tm.build_model("tiny"), tmp_path / "model.h5")


@pytest.mark.slow
def test_xla_compiled_model_matches_eager():
    model = tm.build_model("tiny")
    mixtures = [tf.constant(m) for m in random_mixtures(model.config, frames=50)]
    compiled = tf.function(lambda x: model(x), jit_compile=True)
    for a, b in zip(model(mixtures), compiled(mixtures)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("overrides", [{}, {"independent_params": True, "residual_bias": True}])
def test_gradients_reach_every_trainable_variable(overrides):
    model = tm.build_model("tiny", **overrides)
    rng = np.random.default_rng(0)
    sources = [rng.standard_normal((2, 4, 40 * model.config.stride(i))).astype("float32")
               for i in range(model.config.stages_num)]
    mixtures = [s.sum(1) for s in sources]
    with tf.GradientTape() as tape:
        loss, statistics = model.compute_objective(mixtures, sources, training=True)
    gradients = tape.gradient(loss, model.trainable_variables)
    assert statistics.shape == (4 * model.config.stages_num + 3,)
    missing = [v.path for v, g in zip(model.trainable_variables, gradients)
               if g is None or not np.any(g.numpy())]
    assert missing == []
    # The spectrogram's window and statistics are frozen, like the original's.
    frozen = {v.path.split("/")[-1] for v in model.non_trainable_variables}
    assert {"window", "mean", "std"} <= frozen


def test_instrument_loss_weights_scale_each_stages_si_snr_in_the_loss():
    plain = tm.build_model("tiny")
    weighted = tm.build_model("tiny", instrument_loss_weights=(1.0, 0.5, 3.0, 1.0))
    rng = np.random.default_rng(2)
    sources = [rng.standard_normal((2, 4, 40 * plain.config.stride(i))).astype("float32")
               for i in range(plain.config.stages_num)]
    mixtures = [s.sum(1) for s in sources]
    plain(mixtures), weighted(mixtures)
    weighted.set_weights(plain.get_weights())
    loss, statistics = plain.compute_objective(mixtures, sources, training=False)
    loss_w, statistics_w = weighted.compute_objective(mixtures, sources, training=False)
    np.testing.assert_allclose(statistics_w.numpy(), statistics.numpy(), rtol=1e-5, atol=1e-5)
    per_stage = statistics.numpy()[:4 * plain.config.stages_num].reshape(-1, 4)  # (stages, sources)
    # weights - 1 = (0, -0.5, 2, 0) on every stage's separation term
    expected = float(loss) - (np.array([0.0, -0.5, 2.0, 0.0]) * per_stage).sum()
    np.testing.assert_allclose(float(loss_w), expected, rtol=1e-5)


def test_step_metrics_are_the_objectives_statistics():
    model = tm.build_model("tiny")
    rng = np.random.default_rng(6)
    sources = [rng.standard_normal((2, 4, 40 * model.config.stride(i))).astype("float32")
               for i in range(model.config.stages_num)]
    mixtures = [s.sum(1) for s in sources]
    _, statistics = model.compute_objective(mixtures, sources, training=False)
    statistics = statistics.numpy()
    results = {k: float(v) for k, v in model.test_step((mixtures, sources)).items()}
    last = 4 * (model.config.stages_num - 1)
    assert results["si_snr_other"] == pytest.approx(statistics[last + 2], rel=1e-5)
    assert results["stage0_si_snr_bass"] == pytest.approx(statistics[1], rel=1e-5)
    assert results["si_snr"] == pytest.approx(statistics[last:last + 4].mean(), rel=1e-5)
    # decoder(encoder(mixture)) of the last stage, against the mixture, as NumPy computes it
    stage = model.stages[-1]
    latent = model.forward_stages(mixtures, training=False)[-1][2]
    reconstruction = stage.decoder(latent).numpy()
    mixture = mixtures[-1]
    scale = (reconstruction * mixture).sum(-1, keepdims=True) / ((mixture ** 2).sum(-1, keepdims=True) + 1e-8)
    target, error = scale * mixture, reconstruction - scale * mixture
    expected = np.mean(10 * np.log10((target ** 2).sum(-1) / (error ** 2).sum(-1)))
    assert results["reconstruction_si_snr"] == pytest.approx(expected, abs=1e-3)
    assert "reconstruction_si_snr" not in [m.name for m in
                                          tm.build_model("tiny", reconstruction_loss_weight=0.0).metrics]


def test_dropout_only_while_training():
    model = tm.build_model("tiny", dropout=0.5)
    mixtures = random_mixtures(model.config)
    a, b = model(mixtures)[-1].numpy(), model(mixtures)[-1].numpy()
    np.testing.assert_array_equal(a, b)
    trained = model(mixtures, training=True)[-1].numpy()
    assert not np.allclose(trained, a)


@pytest.mark.slow
def test_keras_fit_lowers_the_training_loss():
    keras.utils.set_random_seed(1)
    model = tm.build_model("tiny")
    rng = np.random.default_rng(1)
    t = np.arange(40 * 20) / 8000.0
    base = np.stack([np.sin(2 * np.pi * f * t) for f in (110.0, 55.0, 440.0, 660.0)])  # (4, samples)
    sources = []
    for i in range(model.config.stages_num):
        up = np.repeat(base, 2 ** i, axis=-1)  # crude but aligned across the rates
        sources.append(np.stack([up * g for g in rng.uniform(0.5, 1.5, (4, 4, 1))]).astype("float32"))
    mixtures = [s.sum(1) for s in sources]
    data = tf.data.Dataset.from_tensors((tuple(mixtures), tuple(sources))).repeat(3)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(data, epochs=4, verbose=0).history
    assert set(history) >= {"loss", "si_snr_drums", "si_snr_vocals"}
    assert history["loss"][-1] < history["loss"][0] - 1.0
    evaluation = model.evaluate(data, verbose=0, return_dict=True)
    assert np.isfinite(evaluation["loss"])


@pytest.mark.slow
@pytest.mark.parametrize("silent", [False, True])
def test_xla_compiled_gradients_are_finite_and_equal_the_graph_ones(silent):
    """Training with jit_compile=True: the gradients equal those of the plain graph.

    ``silent``: one source of one item is all zeros, as in most real batches. Its latent is
    then a zero vector, whose norm in the (dis)similarity terms once gave NaN gradients
    under XLA only (and so NaN weights after the first step).
    """
    model = tm.build_model("tiny", stages_num=2)
    rng = np.random.default_rng(3)
    mixtures = [rng.standard_normal((2, 2000 * 2 ** i)).astype("float32") for i in range(2)]
    sources = [rng.standard_normal((2, 4, 2000 * 2 ** i)).astype("float32") for i in range(2)]
    masks = np.ones((2, 4), "float32")
    if silent:
        for stage_sources in sources:
            stage_sources[0, 1] = 0.0
        masks[0, 1] = 0.0

    def gradients():
        with tf.GradientTape() as tape:
            loss, _ = model.compute_objective(mixtures, sources, masks)
        return tape.gradient(loss, model.trainable_variables)

    plain = tf.function(gradients)()
    compiled = tf.function(gradients, jit_compile=True)()
    for variable, a, b in zip(model.trainable_variables, plain, compiled):
        if a is None:
            continue
        assert np.all(np.isfinite(b.numpy())), variable.path
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=2e-3, atol=2e-3 * float(np.abs(a.numpy()).max()) + 1e-6,
                                   err_msg=variable.path)


@pytest.mark.slow
def test_recomputed_tcn_gives_the_same_loss_and_gradients():
    """Gradient checkpointing of the masking TCN (recompute_tcn) changes memory, not results."""
    stored = tm.build_model("tiny", stages_num=2, recompute_tcn=False)
    recomputed = tm.build_model("tiny", stages_num=2, recompute_tcn=True)
    recomputed.set_weights(stored.get_weights())
    rng = np.random.default_rng(5)
    mixtures = [rng.standard_normal((2, 2000 * 2 ** i)).astype("float32") for i in range(2)]
    sources = [rng.standard_normal((2, 4, 2000 * 2 ** i)).astype("float32") for i in range(2)]

    def loss_and_gradients(model):
        """``(loss, gradients, ops in the traced graph)``."""
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                loss, _ = model.compute_objective(mixtures, sources, tf.ones((2, 4)))
            return loss, tape.gradient(loss, model.trainable_variables)
        loss, gradients = run()
        return loss, gradients, len(run.get_concrete_function().graph.get_operations())

    def eager_gradients(model):
        with tf.GradientTape() as tape:
            loss, _ = model.compute_objective(mixtures, sources, tf.ones((2, 4)))
        return loss, tape.gradient(loss, model.trainable_variables)

    loss_a, grads_a, ops_a = loss_and_gradients(stored)
    loss_b, grads_b, ops_b = loss_and_gradients(recomputed)
    # Eagerly the model does not recompute (tf.recompute_grad's eager gradients are wrong).
    # Eager and graph execution differ by float rounding (up to ~1e-3 of a gradient's
    # largest value, depending on the weights), so eager is compared with eager.
    loss_c, grads_c = eager_gradients(recomputed)
    loss_d, grads_d = eager_gradients(stored)
    for (reference_loss, reference), (loss, grads) in (((loss_a, grads_a), (loss_b, grads_b)),
                                                       ((loss_d, grads_d), (loss_c, grads_c))):
        assert float(reference_loss) == pytest.approx(float(loss), rel=1e-6)
        for variable, a, b in zip(stored.trainable_variables, reference, grads):
            assert (a is None) == (b is None), variable.path
            if a is not None:
                np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4,
                                           atol=1e-5 * float(np.abs(a.numpy()).max()) + 1e-9,
                                           err_msg=variable.path)
    assert ops_b > ops_a  # the backward pass really runs the TCN again
