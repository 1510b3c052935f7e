"""Ranger and the learning-rate schedule against independent NumPy references."""

import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from locations import REPO

from tf_metatasnet.training.optimizers import Ranger, build_optimizer, cosine_warm_restarts

SHAPES = [(3, 4), (5,), (2, 3, 2), ()]
RTOL, ATOL = 1e-5, 1e-7


# --------------------------------------------------------------------------- reference

def sma(t, beta_2):
    """RAdam's N_sma at step t (float64), as in ranger.py."""
    beta2_t = beta_2 ** t
    n_sma_max = 2 / (1 - beta_2) - 1
    return n_sma_max - 2 * t * beta2_t / (1 - beta2_t)


def ranger_reference(params, grad_steps, lr=1e-3, beta_1=0.95, beta_2=0.999, eps=1e-5, k=6,
                     alpha=0.5, threshold=5.0, weight_decay=0.0, global_clipnorm=None):
    """lessw2020's ranger.py step loop in float64; ``lr`` a float or ``step -> lr``.

    Returns ``(params, m, v, slow, log)``; ``log`` has each step's N_sma and whether
    Lookahead synchronised.
    """
    lr_at = lr if callable(lr) else (lambda step: lr)
    params = [np.array(p, dtype=np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    slow = [p.copy() for p in params]
    log = []
    for t, grads in enumerate(grad_steps, start=1):
        grads = [np.asarray(g, dtype=np.float64) for g in grads]
        if global_clipnorm is not None:  # torch.nn.utils.clip_grad_norm_, before step()
            norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
            grads = [g * min(1.0, global_clipnorm / norm) for g in grads]
        step_lr = lr_at(t - 1)
        beta2_t = beta_2 ** t
        n_sma_max = 2 / (1 - beta_2) - 1
        n_sma = n_sma_max - 2 * t * beta2_t / (1 - beta2_t)
        for i in range(len(params)):
            m[i] = beta_1 * m[i] + (1 - beta_1) * grads[i]
            v[i] = beta_2 * v[i] + (1 - beta_2) * grads[i] * grads[i]
            if weight_decay:
                params[i] = params[i] - weight_decay * step_lr * params[i]
            if n_sma > threshold:
                step_size = math.sqrt((1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4)
                                      * (n_sma - 2) / n_sma * n_sma_max / (n_sma_max - 2)
                                      ) / (1 - beta_1 ** t)
                params[i] = params[i] - step_size * step_lr * m[i] / (np.sqrt(v[i]) + eps)
            else:
                step_size = 1.0 / (1 - beta_1 ** t)
                params[i] = params[i] - step_size * step_lr * m[i]
            if t % k == 0:
                slow[i] = slow[i] + alpha * (params[i] - slow[i])
                params[i] = slow[i].copy()
        log.append((n_sma, t % k == 0))
    return params, m, v, slow, log


def random_problem(steps=20, seed=0, grad_scale=1.0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]
    grads = [[(grad_scale * rng.standard_normal(shape)).astype(np.float32) for shape in SHAPES]
             for _ in range(steps)]
    return params, grads


def state_of(optimizer, variables):
    """``(params, m, v, slow)`` of a built Ranger, as NumPy."""
    return ([np.asarray(x) for x in variables],
            [np.asarray(x) for x in optimizer.slots("momentum")],
            [np.asarray(x) for x in optimizer.slots("velocity")],
            [np.asarray(x) for x in optimizer.slow_weights])


def assert_state_close(actual, expected):
    for name, got, want in zip(("params", "m", "v", "slow"), actual, expected):
        for index, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name}[{index}]")


def numpy_cosine_restarts(step, lr=1e-3, period=200_000, decay=0.85, minimum=0.0):
    restart, fraction = divmod(step, period)
    cosine = 0.5 * decay ** restart * (1 + math.cos(math.pi * fraction / period))
    alpha = minimum / lr
    return lr * ((1 - alpha) * cosine + alpha)


# --------------------------------------------------------------------------- tests

def test_reference_covers_both_phases_and_lookahead():
    """The default problem exercises SMA <= 5 and > 5 and at least 3 Lookahead syncs."""
    _, grads = random_problem()
    params, _ = random_problem()
    *_, log = ranger_reference(params, grads)
    smas = [n for n, _ in log]
    assert [n > 5 for n in smas] == [t >= 6 for t in range(1, 21)]
    assert sma(5, 0.999) == pytest.approx(4.996, abs=1e-3)  # float32 would be 4.986
    assert sum(synced for _, synced in log) == 3


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("weight_decay, global_clipnorm", [
    (None, None), (0.1, None), (None, 3.0), (0.1, 3.0)])
def test_ranger_matches_reference(weight_decay, global_clipnorm, fused):
    params, grads = random_problem(grad_scale=2.0)
    variables = [keras.Variable(p) for p in params]
    optimizer = Ranger(learning_rate=0.01, weight_decay=weight_decay,
                       global_clipnorm=global_clipnorm, fused=fused)
    for step in grads:
        optimizer.apply([tf.constant(g) for g in step], variables)
    assert int(optimizer.iterations) == 20
    expected = ranger_reference(params, grads, lr=0.01, weight_decay=weight_decay or 0.0,
                                global_clipnorm=global_clipnorm)
    assert_state_close(state_of(optimizer, variables), expected[:4])
    if global_clipnorm is not None:  # the clipping changes the result
        unclipped = ranger_reference(params, grads, lr=0.01, weight_decay=weight_decay or 0.0)
        assert not np.allclose(unclipped[0][0], expected[0][0], rtol=1e-3)


@pytest.mark.parametrize("fused", [True, False])
def test_ranger_hyperparameters_and_schedule_match_reference(fused):
    """Non-default betas/eps/k/alpha/threshold, and a restarting schedule (read at t-1)."""
    params, grads = random_problem(steps=16, seed=3)
    schedule = cosine_warm_restarts(0.02, period=5, peak_decay=0.5, minimum=0.002)
    optimizer = Ranger(learning_rate=schedule, beta_1=0.9, beta_2=0.99, epsilon=1e-3,
                       lookahead_steps=4, lookahead_alpha=0.3, sma_threshold=4.0,
                       weight_decay=0.05, fused=fused)
    variables = [keras.Variable(p) for p in params]
    for step in grads:
        optimizer.apply([tf.constant(g) for g in step], variables)
    expected = ranger_reference(
        params, grads, beta_1=0.9, beta_2=0.99, eps=1e-3, k=4, alpha=0.3, threshold=4.0,
        weight_decay=0.05,
        lr=lambda step: numpy_cosine_restarts(step, 0.02, 5, 0.5, 0.002))
    assert_state_close(state_of(optimizer, variables), expected[:4])


@pytest.mark.parametrize("fused", [True, False])
def test_ranger_in_jit_compiled_tf_function_builds_inside(fused):
    """Built during the first XLA trace: the slow weights copy the initial values once."""
    params, grads = random_problem(seed=1)
    variables = [keras.Variable(p) for p in params]
    optimizer = Ranger(learning_rate=0.01, weight_decay=0.1, fused=fused)

    @tf.function(jit_compile=True)
    def train_step(step_grads):
        optimizer.apply(step_grads, variables)

    train_step([tf.constant(g) for g in grads[0]])
    traces = train_step.experimental_get_tracing_count()  # 2: TF retraces after creation
    for step in grads[1:]:
        train_step([tf.constant(g) for g in step])
    assert train_step.experimental_get_tracing_count() == traces  # one graph for every t
    expected = ranger_reference(params, grads, lr=0.01, weight_decay=0.1)
    assert_state_close(state_of(optimizer, variables), expected[:4])


def test_gradient_accumulation_counts_real_updates():
    """With accumulation, t (and so Lookahead) counts applied updates, not micro-steps."""
    params, micro = random_problem(steps=28, seed=4)
    variables = [keras.Variable(p) for p in params]
    optimizer = Ranger(learning_rate=0.01, gradient_accumulation_steps=2)
    assert not optimizer.fused  # Keras accumulates per variable
    for step in micro:
        optimizer.apply([tf.constant(g) for g in step], variables)
    assert int(optimizer.iterations) == 14 and int(optimizer._iterations) == 28
    averaged = [[(a.astype(np.float64) + b) / 2 for a, b in zip(first, second)]
                for first, second in zip(micro[0::2], micro[1::2])]
    expected = ranger_reference(params, averaged, lr=0.01)
    assert_state_close(state_of(optimizer, variables), expected[:4])


@pytest.mark.parametrize("fused", [True, False])
def test_loss_scale_optimizer_applies_and_skips(fused):
    """Wrapped for mixed precision: scaled grads are unscaled; a non-finite step is skipped."""
    params, grads = random_problem(steps=13, seed=5)
    variables = [keras.Variable(p) for p in params]
    optimizer = keras.optimizers.LossScaleOptimizer(Ranger(learning_rate=0.01, fused=fused))
    scale = float(optimizer.scale_loss(1.0))
    for index, step in enumerate(grads):
        optimizer.apply([tf.constant(g * scale) for g in step], variables)
        if index == 6:  # an overflowing step, between two syncs
            before = [np.asarray(x).copy() for x in variables]
            bad = [tf.constant(np.full(g.shape, np.inf, np.float32)) for g in step]
            optimizer.apply(bad, variables)
            for b, x in zip(before, variables):
                np.testing.assert_array_equal(b, np.asarray(x))
            assert float(optimizer.scale_loss(1.0)) == scale / 2
            scale /= 2
    inner = optimizer.inner_optimizer
    assert int(optimizer.iterations) == int(inner.iterations) == 13
    expected = ranger_reference(params, grads, lr=0.01)
    assert_state_close(state_of(inner, variables), expected[:4])
    # The wrapper reports the inner optimizer's slow weights among its variables.
    slow_ids = {id(s) for s in inner.state_variables("slow")}
    assert len(slow_ids) == (1 if fused else len(variables))
    assert slow_ids <= {id(x) for x in optimizer.variables}


def test_config_round_trip():
    optimizer = Ranger(learning_rate=0.02, beta_1=0.9, beta_2=0.98, epsilon=1e-4,
                       lookahead_steps=5, lookahead_alpha=0.25, sma_threshold=6.0,
                       weight_decay=1e-3, global_clipnorm=2.0, name="my_ranger")
    config = optimizer.get_config()
    for key, value in dict(beta_1=0.9, beta_2=0.98, epsilon=1e-4, lookahead_steps=5,
                           lookahead_alpha=0.25, sma_threshold=6.0, weight_decay=1e-3,
                           global_clipnorm=2.0, name="my_ranger", fused=True).items():
        assert config[key] == value, key
    assert config["learning_rate"] == pytest.approx(0.02)
    clone = Ranger.from_config(optimizer.get_config())
    assert type(clone) is Ranger and clone.get_config() == config

    serialized = keras.optimizers.serialize(optimizer)
    assert serialized["registered_name"] == "tf_metatasnet>Ranger"
    restored = keras.optimizers.deserialize(json.loads(json.dumps(serialized)))
    assert type(restored) is Ranger and restored.get_config() == config

    scheduled = build_optimizer()
    restored = keras.optimizers.deserialize(
        json.loads(json.dumps(keras.optimizers.serialize(scheduled))))
    assert isinstance(restored._learning_rate,
                      keras.optimizers.schedules.CosineDecayRestarts)
    assert restored.get_config() == scheduled.get_config()


def _small_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                             keras.layers.Dense(2)])


def test_saved_model_resumes_with_identical_optimizer_state(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    model = _small_model(0)
    initial = [np.asarray(w).copy() for w in model.trainable_variables]
    model.compile(optimizer=build_optimizer(learning_rate=0.05), loss="mse")
    for _ in range(8):  # one Lookahead sync at step 6, then two fast steps
        model.train_on_batch(x, y)
    optimizer = model.optimizer
    slow = [np.asarray(s) for s in optimizer.slow_weights]
    for s, w0, w in zip(slow, initial, model.trainable_variables):
        assert not np.allclose(s, w0) and not np.allclose(s, np.asarray(w))

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is Ranger
    assert loaded.optimizer.get_config() == optimizer.get_config()
    assert len(loaded.optimizer.variables) == len(optimizer.variables)
    for a, b in zip(optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    for a, b in zip(slow, loaded.optimizer.slow_weights):
        np.testing.assert_array_equal(a, np.asarray(b))

    for _ in range(5):  # crosses the next sync at step 12
        model.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
    for a, b in zip(model.trainable_variables, loaded.trainable_variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_cosine_warm_restarts_matches_numpy():
    schedule = cosine_warm_restarts()
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecayRestarts)
    lr = lambda step: float(schedule(step))  # noqa: E731
    assert lr(0) == pytest.approx(1e-3, rel=1e-6)
    assert lr(199_999) == pytest.approx(0.0, abs=1e-9)
    assert lr(200_000) == pytest.approx(0.85e-3, rel=1e-5)
    assert lr(400_000) == pytest.approx(0.85 ** 2 * 1e-3, rel=1e-5)
    for step in (1, 50_000, 100_000, 150_000, 250_000, 333_333, 599_999, 1_000_000):
        assert lr(step) == pytest.approx(numpy_cosine_restarts(step), rel=1e-4, abs=1e-10)

    floored = cosine_warm_restarts(2e-3, period=100, peak_decay=0.5, minimum=1e-4)
    for step in (0, 30, 99, 100, 150, 250):
        assert float(floored(step)) == pytest.approx(
            numpy_cosine_restarts(step, 2e-3, 100, 0.5, 1e-4), rel=1e-5)
    config = keras.optimizers.schedules.serialize(floored)
    clone = keras.optimizers.schedules.deserialize(json.loads(json.dumps(config)))
    assert float(clone(150)) == pytest.approx(float(floored(150)))
    with pytest.raises(ValueError):
        cosine_warm_restarts(1e-3, minimum=2e-3)


def test_build_optimizer_recipe_and_alternatives():
    ranger = build_optimizer()
    assert type(ranger) is Ranger
    assert (ranger.beta_1, ranger.beta_2, ranger.epsilon) == (0.95, 0.999, 1e-5)
    assert (ranger.lookahead_steps, ranger.lookahead_alpha) == (6, 0.5)
    assert ranger.weight_decay == 5e-4
    # Ranger clips the whole batch's gradient itself (``apply``), Keras's own clipping is off.
    assert ranger.clip_global_norm == 5.0 and ranger.global_clipnorm is None and ranger.clipnorm is None
    assert ranger.get_config()["global_clipnorm"] == 5.0
    schedule = ranger._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecayRestarts)
    assert schedule.get_config()["first_decay_steps"] == 200_000
    assert schedule.get_config()["m_mul"] == 0.85
    assert float(schedule(200_000)) == pytest.approx(0.85e-3, rel=1e-5)

    constant = build_optimizer(learning_rate=3e-4, schedule=False, clipnorm=None,
                               lookahead_steps=4)
    assert float(constant.learning_rate) == pytest.approx(3e-4)
    assert constant.clip_global_norm is None and constant.lookahead_steps == 4

    adamw = build_optimizer("AdamW")
    assert type(adamw) is keras.optimizers.AdamW
    assert adamw.weight_decay == 5e-4 and adamw.global_clipnorm == 5.0

    with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
        build_optimizer("sgd")


@pytest.mark.parametrize("kwargs", [
    dict(lookahead_steps=0), dict(lookahead_steps=2.5), dict(lookahead_alpha=0.0),
    dict(lookahead_alpha=1.5), dict(beta_1=1.0), dict(beta_2=1.0)])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        Ranger(**kwargs)


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tf_metatasnet.training.optimizers import Ranger

    data = np.load(sys.argv[1])
    param, grads = data["p"], data["g"]  # grads: (steps, replicas, 4)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        variable = keras.Variable(param)
        optimizer = Ranger(learning_rate=0.01, weight_decay=0.1, global_clipnorm=float(sys.argv[2]),
                       fused=sys.argv[3] == "fused")
        # Built up front, as fit() does: TF cannot create mirrored variables lazily
        # inside a distributed tf.function (Keras' Adam fails the same way).
        optimizer.build([variable])

    def replica_step(grad):
        optimizer.apply([grad], [variable])

    @tf.function
    def train_step(per_replica):
        strategy.run(replica_step, args=(per_replica,))

    for step in grads:
        train_step(strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(step[ctx.replica_id_in_sync_group])))
    values = [np.asarray(x).tolist() for x in strategy.experimental_local_results(
        variable.value)]
    slows = [np.asarray(x).tolist() for x in strategy.experimental_local_results(
        optimizer.state_variables("slow")[0].value)]
    print("RESULT" + json.dumps(dict(values=values, slows=slows,
                                     iterations=int(optimizer.iterations.numpy()))))
""")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["fused", "per-variable"])
def test_mirrored_strategy_matches_reference(tmp_path, layout):
    """Two CPU replicas (in a subprocess: logical devices must precede TF's start-up)."""
    rng = np.random.default_rng(7)
    param = rng.standard_normal(4).astype(np.float32)
    grads = rng.standard_normal((14, 2, 4)).astype(np.float32)
    np.savez(tmp_path / "data.npz", p=param, g=grads)
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "data.npz"), "1.5", layout],
                          capture_output=True, text=True, timeout=300, env=env,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    result = json.loads(line[len("RESULT"):])
    assert result["iterations"] == 14
    # Keras all-reduces (sums) the replicas' gradients before the update; the clip applies
    # to that sum (the authors' clip_grad_norm_), not to each replica's share.
    per_replica_norm = np.linalg.norm(grads, axis=2)
    assert (per_replica_norm > 1.5).any() and (np.linalg.norm(grads.sum(axis=1), axis=1) > 1.5).any()
    expected = ranger_reference([param], [[g.sum(axis=0)] for g in grads], lr=0.01,
                                weight_decay=0.1, global_clipnorm=1.5)
    for value, slow in zip(result["values"], result["slows"]):
        np.testing.assert_allclose(value, expected[0][0], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(slow, expected[3][0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("fused, most", [(True, 10), (False, 65)])
def test_step_scalars_and_schedule_are_computed_once_per_step_not_per_variable(fused, most):
    """The graph of an update grows by a few ops per variable: RAdam's rectification, the
    Lookahead sync and the learning-rate schedule (weight decay) are shared by all, and
    fused, the arithmetic too."""
    def update_ops(count):
        variables = [tf.Variable(tf.ones((3,))) for _ in range(count)]
        optimizer = build_optimizer("ranger", fused=fused)  # the recipe: schedule, decay, clip
        optimizer.build(variables)

        @tf.function
        def step():
            optimizer.apply([tf.ones((3,))] * count, variables)
        return len(step.get_concrete_function().graph.get_operations())

    per_variable = (update_ops(40) - update_ops(20)) / 20
    assert per_variable < most, per_variable  # 9 fused, 52 not; 130 when each evaluated them


# --------------------------------------------------------------------------- fused layout

def test_fused_is_the_default_unless_keras_works_per_variable():
    assert Ranger().fused and build_optimizer().fused
    for kwargs in (dict(clipnorm=1.0), dict(clipvalue=1.0), dict(use_ema=True),
                   dict(gradient_accumulation_steps=2)):
        assert not Ranger(**kwargs).fused
        with pytest.raises(ValueError, match="fused=False"):
            Ranger(fused=True, **kwargs)
    assert not Ranger(fused=False).fused


def test_fused_across_several_buckets_matches_reference(monkeypatch):
    """Buckets of at most 13 elements: (3, 4) and (5,) stand alone, (2, 3, 2) and () share."""
    from tf_metatasnet.training import flat_state
    monkeypatch.setattr(flat_state, "DEFAULT_BUCKET_SIZE", 13)
    params, grads = random_problem(grad_scale=2.0, seed=8)
    variables = [keras.Variable(p) for p in params]
    optimizer = Ranger(learning_rate=0.01, weight_decay=0.1, global_clipnorm=3.0)
    for step in grads:
        optimizer.apply([tf.constant(g) for g in step], variables)
    assert len(optimizer.state_variables("slow")) == 3
    expected = ranger_reference(params, grads, lr=0.01, weight_decay=0.1, global_clipnorm=3.0)
    assert_state_close(state_of(optimizer, variables), expected[:4])


def test_fused_and_per_variable_agree_on_exclusions_and_missing_gradients():
    """Weight decay excluded by variable and by name, and a variable without a gradient
    on some steps (Keras skips it: no decay, no moment update) give the same states."""
    params, grads = random_problem(seed=9)
    states = []
    for fused in (True, False):
        variables = [keras.Variable(p, name=f"w{i}") for i, p in enumerate(params)]
        variables[2] = keras.Variable(params[2], name="bias")
        optimizer = Ranger(learning_rate=0.01, weight_decay=0.2, global_clipnorm=2.0, fused=fused)
        optimizer.exclude_from_weight_decay(var_list=[variables[0]], var_names=["bias"])
        optimizer.build(variables)
        for t, step in enumerate(grads):
            step = [tf.constant(g) for g in step]
            if t % 3 == 1:
                step[3] = None
            with __import__("warnings").catch_warnings():
                __import__("warnings").simplefilter("ignore")  # Keras warns of the None
                optimizer.apply(step, variables)
        states.append(state_of(optimizer, variables))
    assert_state_close(*states)
    untouched = [p.copy() for p in params]
    assert not np.allclose(states[0][0][1], untouched[1])


def _compiled(fused, seed=0):
    model = _small_model(seed)
    model.compile(optimizer=build_optimizer(learning_rate=0.05, fused=fused), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


@pytest.mark.parametrize("saved, loaded", [(False, True), (True, False)])
def test_state_saved_in_one_layout_loads_into_the_other(tmp_path, saved, loaded):
    """A training checkpoint of the per-variable layout resumes with the fused optimizer
    (and back): the state is converted, not skipped."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    source = _compiled(saved)
    for _ in range(7):
        source.train_on_batch(x, y)
    source.save_weights(tmp_path / "state.weights.h5")
    target = _compiled(loaded, seed=1)
    target.load_weights(tmp_path / "state.weights.h5")
    assert int(target.optimizer.iterations) == 7
    for name in ("momentum", "velocity", "slow"):
        for a, b in zip(source.optimizer.slots(name), target.optimizer.slots(name)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    for _ in range(6):  # across the next Lookahead sync at step 12
        source.train_on_batch(x, y)
        target.train_on_batch(x, y)
    for a, b in zip(source.trainable_variables, target.trainable_variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
