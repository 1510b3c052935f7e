"""The multi-stage Meta-TasNet model and its factory."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_metatasnet.compat import SelfBuildingModelMixin
from tf_metatasnet.config import MetaTasNetConfig
from tf_metatasnet.layers.stage import Stage
from tf_metatasnet.models.losses import source_masks, stage_objective
from tf_metatasnet.presets import get_config
from tf_metatasnet.sources import SOURCES


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class MetaTasNet(SelfBuildingModelMixin, keras.Model):
    """Meta-TasNet: stages at ``8000 * 2**i`` Hz, each refining the previous stage's separation.

    The model maps one segment to stems and knows nothing of chunking, files or
    resampling (see ``tf_metatasnet.separate`` for whole songs).

    Args:
        config: a ``MetaTasNetConfig``, its dict, or a preset name. Default ``"paper"``.

    Call arguments:
        mixtures: a list with one mono mixture per stage, each ``(batch, samples_i)``
            float32 at ``8000 * 2**i`` Hz; ``samples_i = samples_0 * 2**i`` and a multiple
            of the stage's stride ``W * 2**i``.
        training: enables dropout.

    Returns:
        a list of per-stage estimates, each ``(batch, 4, samples_i)``, sources in the
        order drums, bass, other, vocals. The last stage's is the model's answer.
    """

    def __init__(self, config: "MetaTasNetConfig | dict | str" = "paper", **kwargs):
        super().__init__(**kwargs)
        self.config = get_config(config)
        c = self.config
        self.stages = [
            Stage(
                c.stage_channels(i), c.kernel_size(i), c.stride(i), c.B, c.H, c.layers, c.stack,
                tcn_kernel_size=c.kernel, filters=c.filters, num_mels=c.num_mels,
                sample_rate=c.stage_rate(i), generated=not c.independent_params,
                embedding_dim=c.E_1, bottleneck_dim=c.E_2, residual_bias=c.residual_bias,
                dropout=c.dropout, previous_channels=c.stage_channels(i - 1) if i else 0,
                num_instruments=len(SOURCES), recompute_tcn=c.recompute_tcn, name=f"stage_{i}")
            for i in range(c.stages_num)
        ]
        # Metrics: the loss, the last stage's mean SI-SNR over instruments (the paper's
        # validation criterion) and per instrument, every earlier stage's per instrument,
        # and the last stage's reconstruction SI-SNR.
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.si_snr_tracker = keras.metrics.Mean(name="si_snr")
        self.si_snr_trackers = [
            keras.metrics.Mean(name=(f"stage{i}_" if i < c.stages_num - 1 else "") + f"si_snr_{source}")
            for i in range(c.stages_num) for source in SOURCES]
        # How well the last stage's decoder inverts its encoder on the mixture: the sum of
        # the estimates cannot be closer to the mixture than this. Logged when it is trained.
        self.reconstruction_tracker = (keras.metrics.Mean(name="reconstruction_si_snr")
                                       if c.reconstruction_loss_weight > 0 else None)
        self.build()

    @property
    def sources(self) -> tuple[str, ...]:
        return SOURCES

    def build(self, input_shape=None):
        for stage in self.stages:
            stage.build()
        self.built = True

    # ------------------------------------------------------------------ forward
    def _check_inputs(self, mixtures):
        if not isinstance(mixtures, (list, tuple)) or len(mixtures) != self.config.stages_num:
            raise ValueError(f"MetaTasNet expects a list of {self.config.stages_num} mixtures "
                             f"(one per stage, at {self.config.stage_rates} Hz)")

    def forward_stages(self, mixtures, training=False, decode_all=True):
        """Runs every stage: a list of ``(estimates, separated_latents, mixture_latent)``.

        With ``decode_all=False`` only the last stage decodes waveforms (the others'
        estimates are ``None``), which is all that separation needs.
        """
        self._check_inputs(mixtures)
        outputs, previous = [], None
        last = len(self.stages) - 1
        for i, (stage, mixture) in enumerate(zip(self.stages, mixtures)):
            estimates, previous, mixture_latent = stage(
                tf.cast(mixture, self.compute_dtype), previous, training=training,
                decode=decode_all or i == last)
            outputs.append((estimates, previous, mixture_latent))
        return outputs

    def call(self, mixtures, training=False):
        # float32 outputs whatever the dtype policy (mixed precision computes in float16).
        return [tf.cast(estimates, tf.float32)
                for estimates, _, _ in self.forward_stages(mixtures, training)]

    def separate(self, mixtures):
        """The model's answer only: the last stage's ``(batch, 4, samples_last)`` estimates.

        Same values as ``model(mixtures)[-1]``, without decoding the earlier stages.
        """
        estimates = self.forward_stages(mixtures, training=False, decode_all=False)[-1][0]
        return tf.cast(estimates, tf.float32)

    # ---------------------------------------------------------------- objective
    def compute_objective(self, mixtures, sources, masks=None, training=True):
        """The paper's training loss, summed over stages, and the authors' statistics vector.

        Args:
            mixtures: list of ``(batch, samples_i)``, one per stage.
            sources: list of ``(batch, 4, samples_i)`` true sources, one per stage.
            masks: ``(batch, 4)``, 1 where a source is present; by default from the last
                stage's sources (any non-zero sample).
            training: enables dropout.

        Returns:
            ``(loss, statistics)``: a scalar, and ``(4 * stages + 3,)``: the per-instrument
            SI-SNR of every stage followed by the last stage's reconstruction SI-SNR,
            dissimilarity and similarity (the layout of the authors' ``stats``).
        """
        c = self.config
        if masks is None:
            masks = source_masks(tf.convert_to_tensor(sources[-1], tf.float32))
        masks = tf.convert_to_tensor(masks, tf.float32)
        total, statistics = 0.0, []
        for stage, mixture, reference, (estimates, _, mixture_latent) in zip(
                self.stages, mixtures, sources, self.forward_stages(mixtures, training)):
            reference = tf.convert_to_tensor(reference, tf.float32)
            shape = tf.shape(reference)
            source_latents = stage.encoder(tf.reshape(reference, (-1, shape[-1])))  # (batch*4, frames, N)
            source_latents = tf.reshape(
                source_latents, (shape[0], shape[1], -1, stage.channels))  # (batch, 4, frames, N)
            # The objective is computed in float32, also under mixed precision.
            loss, stats = stage_objective(
                tf.cast(estimates, tf.float32), reference, masks, tf.convert_to_tensor(mixture, tf.float32),
                tf.cast(stage.decoder(mixture_latent), tf.float32), tf.cast(source_latents, tf.float32),
                c.reconstruction_loss_weight, c.dissimilarity_loss_weight, c.similarity_loss_weight,
                c.instrument_loss_weights)
            total += loss
            statistics.append(stats[:len(SOURCES)])
        return total, tf.concat([*statistics, stats[len(SOURCES):]], axis=0)

    # -------------------------------------------------------------- Keras fit
    @property
    def metrics(self):
        extra = [self.reconstruction_tracker] if self.reconstruction_tracker is not None else []
        return [self.loss_tracker, self.si_snr_tracker, *self.si_snr_trackers, *extra]

    def _update_metrics(self, loss, statistics):
        """``statistics`` as ``compute_objective``'s: per-stage, per-instrument SI-SNR first."""
        self.loss_tracker.update_state(loss)
        count = len(SOURCES) * self.config.stages_num
        for i, tracker in enumerate(self.si_snr_trackers):
            tracker.update_state(statistics[i])
        self.si_snr_tracker.update_state(tf.reduce_mean(statistics[count - len(SOURCES):count]))
        if self.reconstruction_tracker is not None:
            self.reconstruction_tracker.update_state(statistics[count])
        results = {metric.name: metric.result() for metric in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras averages the workers' results with reduce(MEAN, axis=0), which needs an axis.
            results = {name: tf.reshape(value, (1,)) for name, value in results.items()}
        return results

    # The steps are plain TensorFlow code with no Python control flow on tensors: AutoGraph,
    # which Keras's tf.function would apply to them and to everything they call, only costs
    # tracing time (about a fifth of the paper step's tracing, measured).
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        """``data`` = ``(mixtures, sources)`` or ``(mixtures, sources, masks)``.

        Under a ``tf.distribute`` strategy each replica's loss is divided by the number of
        replicas, so that the summed gradients are the mean of the replicas' gradients.
        """
        mixtures, sources, masks = (tuple(data) + (None,))[:3]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, statistics = self.compute_objective(mixtures, sources, masks, training=True)
            scaled = self.optimizer.scale_loss(loss / replicas)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(loss, statistics)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        mixtures, sources, masks = (tuple(data) + (None,))[:3]
        loss, statistics = self.compute_objective(mixtures, sources, masks, training=False)
        return self._update_metrics(loss, statistics)

    # ----------------------------------------------------------- serialisation
    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(config=MetaTasNetConfig.from_dict(config.pop("config")), **config)


def build_model(preset_or_config: "str | dict | MetaTasNetConfig" = "paper", **overrides) -> MetaTasNet:
    """A new ``MetaTasNet`` with random weights.

    Args:
        preset_or_config: a preset name (``"paper"``, ``"small"``, ``"tiny"``), a path to a
            JSON config, a dict, or a ``MetaTasNetConfig``.
        **overrides: config fields to change, e.g. ``stages_num=2``.
    """
    config = get_config(preset_or_config)
    if overrides:
        config = config.replace(**overrides)
    return MetaTasNet(config)
