"""Training: configs, statistics, fit, checkpoints, exact resume, the CLI (strategies:
test_strategies.py)."""

import warnings

import numpy as np
import pytest
import yaml
from locations import REPO as ROOT

from tf_metatasnet.training.callbacks import read_state
from tf_metatasnet.training.config import TrainConfig, TrainError, load_train_config
from tf_metatasnet.training.loop import build_training_model, train
from tf_metatasnet.training.statistics import compute_spectrogram_statistics


def tiny_config(cache, output_dir, **changes):
    values = {
        "model": "tiny",
        "data": {"cache_dir": str(cache.cache_dir), "batch_size": 2, "crop_seconds": 0.5,
                 "shuffle_buffer": 4, "statistics_examples": 4, "validation_batch_size": 4,
                 "seed": 1},
        "optimizer": {"learning_rate": 3e-3, "restart_period": 1000},
        "output_dir": str(output_dir), "epochs": 2, "steps_per_epoch": 4, "seed": 1,
    }
    values.update(changes)
    return TrainConfig.from_dict(values)


# ------------------------------------------------------------------ configs
def test_paper_recipe_file_holds_the_papers_numbers():
    config = load_train_config(ROOT / "training" / "configs" / "paper.yaml")
    assert config.model == "paper" and config.epochs == 250
    assert (config.data.batch_size, config.data.crop_seconds, config.data.cross_track_fraction,
            config.data.gain_min, config.data.gain_max) == (12, 8.0, 0.5, 0.75, 1.25)
    o = config.optimizer
    assert (o.name, o.learning_rate, o.weight_decay, o.clipnorm, o.restart_period, o.restart_decay,
            o.beta_1, o.beta_2, o.epsilon, o.lookahead_steps, o.lookahead_alpha) == (
        "ranger", 1e-3, 5e-4, 5.0, 200_000, 0.85, 0.95, 0.999, 1e-5, 6, 0.5)
    cpu = load_train_config(ROOT / "training" / "configs" / "cpu_small.yaml")
    assert cpu.model == "small"


def test_config_round_trips_and_rejects_mistakes(tmp_path):
    config = TrainConfig.from_dict({"data": {"cache_dir": "c"}, "model": "tiny",
                                    "model_overrides": {"dropout": 0.1}})
    assert TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
    assert config.model_config().dropout == 0.1
    assert config.replace(data={"batch_size": 3}).data.batch_size == 3
    bad = tmp_path / "bad.yaml"
    for text, message in [("model: huge\ndata: {cache_dir: c}", "model must be one of"),
                          ("data: {cache_dir: c}\nepoch: 3", "unknown setting"),
                          ("data: {cache_dir: c, batch: 3}", "unknown data setting"),
                          ("data: {cache_dir: c}\noptimizer: {name: sgd}", "optimizer.name"),
                          ("data: {cache_dir: c}\nstrategy: tpu", "strategy must be"),
                          ("epochs: 3", "data.cache_dir is required"),
                          ("[1, 2", "not valid YAML")]:
        bad.write_text(text)
        with pytest.raises(TrainError, match=message) as error:
            load_train_config(bad)
        assert str(error.value).startswith(str(bad)) and "\n" not in str(error.value)
    with pytest.raises(TrainError, match="cannot read"):
        load_train_config(tmp_path / "missing.yaml")


@pytest.mark.slow
# ------------------------------------------------------------------ statistics
def test_spectrogram_statistics_equal_numpy(toy_cache):
    from tf_metatasnet.data.pipeline import train_dataset

    config = tiny_config(toy_cache, "unused")
    model = build_training_model(config)
    batches = list(train_dataset(toy_cache, config.data, (8000, 16000, 32000), 20, seed=5).take(2))
    mean_std = compute_spectrogram_statistics(model, batches, examples=4)
    for stage, (mean, std) in enumerate(mean_std):
        n_fft, hop = 1024 * 2 ** stage, 256 * 2 ** stage
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
        frames = []
        for mixtures, _, _ in batches:
            for signal in mixtures[stage].numpy().astype(np.float64):
                padded = np.pad(signal, n_fft // 2, mode="reflect")
                for start in range(0, len(padded) - n_fft + 1, hop):
                    spectrum = np.fft.rfft(padded[start:start + n_fft] * window)
                    frames.append(np.log10(np.abs(spectrum) ** 2 + 1e-8))
        frames = np.array(frames)
        np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(std, frames.std(axis=0), rtol=1e-3, atol=5e-3)  # float32 STFT


@pytest.mark.slow
# ------------------------------------------------------------------ fit, resume
def test_fit_lowers_the_loss_and_writes_the_run(toy_cache, tmp_path):
    config = tiny_config(toy_cache, tmp_path / "run", epochs=3, steps_per_epoch=6,
                         validation_steps=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(config)
    losses = result.history["loss"]
    assert losses[-1] < losses[0], losses
    # Neither Keras's "shuffle=True ... will be ignored" nor tf.data's "deterministic has no
    # effect" (TFDS's sequential interleave) nor "Your input ran out of data" after each
    # validation (a pipeline of unknown length) reaches the user.
    noise = [str(w.message) for w in caught if "ignored since the data" in str(w.message)
             or "`deterministic` argument has no effect" in str(w.message)
             or "ran out of data" in str(w.message)]
    assert not noise, noise
    for name in ("config.yaml", "best.keras", "last.keras", "history.csv"):
        assert (tmp_path / "run" / name).is_file(), name
    assert any((tmp_path / "run" / "logs").rglob("events.out.tfevents*"))
    # Per-stage, per-instrument SI-SNR in the history (hence progress bar, CSV, TensorBoard).
    for key in ("si_snr", "si_snr_vocals", "stage0_si_snr_drums", "stage1_si_snr_bass",
                "val_si_snr", "val_stage0_si_snr_other"):
        assert key in result.history, key
    # The last stage's reconstruction SI-SNR, for training and validation.
    recon = result.history["reconstruction_si_snr"]
    assert np.isfinite(recon).all() and "val_reconstruction_si_snr" in result.history
    state = read_state(tmp_path / "run")
    assert state["epoch"] == 3 and state["step"] == 18
    assert state["best"] == pytest.approx(max(result.history["val_si_snr"]))
    # The spectrogram statistics were computed and stored in the saved model.
    import tf_metatasnet as tm

    saved = tm.load_model(tmp_path / "run" / "best.keras")
    assert not np.allclose(saved.stages[0].encoder.spectrogram.mean.numpy(), 0.0)
    with pytest.raises(TrainError, match="--resume"):
        train(config)


@pytest.mark.slow
def test_resume_continues_with_the_same_step_and_optimizer_state(toy_cache, tmp_path):
    import keras

    snapshots = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots[epoch] = [np.array(v.numpy()) for v in self.model.optimizer.variables]
            snapshots["weights"] = [np.array(v.numpy()) for v in self.model.weights]

    first = train(tiny_config(toy_cache, tmp_path / "b", epochs=1), callbacks=[Record()])
    assert int(first.model.optimizer.iterations.numpy()) == 4

    loaded = {}

    class AtResume(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            loaded["iterations"] = int(self.model.optimizer.iterations.numpy())
            loaded["variables"] = [np.array(v.numpy()) for v in self.model.optimizer.variables]
            loaded["weights"] = [np.array(v.numpy()) for v in self.model.weights]

    resumed = train(tiny_config(toy_cache, tmp_path / "b", epochs=2), resume=True,
                    callbacks=[AtResume()])
    assert resumed.initial_epoch == 1
    assert loaded["iterations"] == 4
    # The resumed optimizer state (moments, Lookahead weights, step) is the one the first
    # run had in memory after its epoch: bit for bit.
    assert len(loaded["variables"]) == len(snapshots[0])
    trainable = sum(v.numpy().size for v in resumed.model.trainable_variables)
    assert sum(a.size for a in loaded["variables"]) > 3 * trainable  # m, v, slow and the step
    for a, b in zip(loaded["variables"], snapshots[0]):
        np.testing.assert_array_equal(a, b)
    assert len(loaded["weights"]) == len(snapshots["weights"])  # the model's, statistics included
    for a, b in zip(loaded["weights"], snapshots["weights"]):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.model.optimizer.iterations.numpy()) == 8
    assert read_state(tmp_path / "b")["epoch"] == 2
    lines = (tmp_path / "b" / "history.csv").read_text().strip().splitlines()
    assert len(lines) == 3  # header + one line per epoch, kept in the resume state
    with pytest.raises(TrainError, match="already trained"):
        train(tiny_config(toy_cache, tmp_path / "b", epochs=2), resume=True)


@pytest.mark.slow
def test_initial_weights_start_a_fine_tuning_run(toy_cache, tmp_path):
    import keras

    from tf_metatasnet.checkpoints.saving import save_model

    source = build_training_model(tiny_config(toy_cache, "unused"))
    rng = np.random.default_rng(4)
    values = [w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in source.get_weights()]
    source.set_weights(values)  # not what the seed initialises, spectrogram statistics included
    save_model(source, tmp_path / "start.keras")

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = self.model.get_weights()
            self.pairs = [(slow.numpy(), variable.numpy()) for slow, variable in
                          zip(self.model.optimizer.slow_weights, self.model.trainable_variables)]

    record = Record()
    config = tiny_config(toy_cache, tmp_path / "ft", epochs=1, steps_per_epoch=1, validation_steps=0,
                         initial_weights=str(tmp_path / "start.keras"),
                         model_overrides={"instrument_loss_weights": [1, 1, 3, 1]})
    result = train(config, callbacks=[record])
    assert len(record.weights) == len(values)
    for got, want in zip(record.weights, values):
        np.testing.assert_array_equal(got, want)
    # Lookahead's slow weights start from the loaded weights, not the random initialisation.
    assert len(record.pairs) == len(result.model.trainable_variables)
    for slow, variable in record.pairs:
        np.testing.assert_array_equal(slow, variable)
    assert result.model.config.instrument_loss_weights == (1.0, 1.0, 3.0, 1.0)
    assert load_train_config(tmp_path / "ft" / "config.yaml").initial_weights == str(tmp_path / "start.keras")

    other = tiny_config(toy_cache, tmp_path / "b", initial_weights=str(tmp_path / "start.keras"),
                        model_overrides={"B": 24})
    with pytest.raises(TrainError, match=r"start\.keras: the model has B=16 but the run's model has B=24"):
        train(other)
    with pytest.raises(TrainError, match=r"missing\.keras: no such model file \(initial_weights\)"):
        train(tiny_config(toy_cache, tmp_path / "c", initial_weights=str(tmp_path / "missing.keras")))


@pytest.mark.slow
def test_mixed_precision_trains(toy_cache, tmp_path):
    import keras

    result = train(tiny_config(toy_cache, tmp_path / "mp", epochs=1, steps_per_epoch=2,
                               validation_steps=0, precision="mixed_float16"))
    assert np.isfinite(result.history["loss"]).all()
    assert isinstance(result.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert result.model.stages[0].encoder.spectrogram.compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored


@pytest.mark.slow
# ------------------------------------------------------------------ CLI
def test_cli_train_and_resume(toy_cache, tmp_path):
    from tf_metatasnet import cli

    recipe = tmp_path / "recipe.yaml"
    values = tiny_config(toy_cache, tmp_path / "cli-run", epochs=1, steps_per_epoch=2,
                         validation_steps=1).to_dict()
    recipe.write_text(yaml.safe_dump(values))
    assert cli.main(["train", "--config", str(recipe)]) == 0
    assert read_state(tmp_path / "cli-run")["epoch"] == 1
    assert cli.main(["train", "--config", str(recipe)]) == 1  # would overwrite the run
    assert cli.main(["train", "--config", str(recipe), "--resume", "--epochs", "2"]) == 0
    assert read_state(tmp_path / "cli-run")["epoch"] == 2
    assert cli.main(["train", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert cli.main(["train", "--config", str(recipe), "--output-dir", str(tmp_path / "ft"),
                     "--initial-weights", str(tmp_path / "none.keras")]) == 1
    assert not (tmp_path / "ft").exists()  # refused before anything was written
