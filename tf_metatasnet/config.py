"""Model configuration: one dataclass with the paper's defaults.

The field names are those of the paper and of the authors' command line (``N``, ``L``,
``W``, ``B``, ``H``, ``E_1``, ``E_2`` ...) so that a checkpoint's ``args`` map onto it
one to one. This module is the single source of the defaults: the model, the importer,
the CLI and the recipes all read them from here; the named presets are in
``tf_metatasnet.presets``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping

from tf_metatasnet.sources import SOURCES

#: Number of groups of every group normalisation of the masking network.
NORM_GROUPS = 8

#: The largest value each size field may take. A configuration read from an untrusted file
#: (a checkpoint, a ``.keras`` model) is refused beyond them before anything is built; the
#: paper's model is far inside (N=440, B=H=160, 6 layers x 3 stacks, 3 stages). The whole
#: model's memory is bounded as well (``tf_metatasnet.models.size``).
UPPER_BOUNDS: dict[str, int] = {
    "N": 4096, "L": 1024, "W": 1024, "B": 4096, "H": 4096, "layers": 16, "stack": 16, "kernel": 63,
    "filters": 8, "num_mels": 4096, "E_1": 1024, "E_2": 1024, "stages_num": 6, "sampling_rate": 192_000,
}
#: The highest stage rate allowed, in Hz (``sampling_rate * 2**(stages_num - 1)``).
MAX_STAGE_RATE = 384_000


@dataclasses.dataclass(frozen=True)
class MetaTasNetConfig:
    """Every hyper-parameter of Meta-TasNet; the defaults are the published model.

    Args:
        N: latent channels of stage 0; stage ``i`` has ``N * 2**i``. Default 440.
        L: base encoder kernel; stage ``i`` uses ``L * 2**i``. Default 20.
        W: encoder stride; stage ``i`` uses ``W * 2**i``, so every stage has the same
            number of frames per second. Default 20.
        B: bottleneck channels of the masking TCN. Default 160.
        H: hidden channels of the masking TCN. Default 160.
        layers: TCN layers per stack, dilations ``1, 2, ..., 2**(layers-1)``. Default 6.
        stack: number of TCN stacks. Default 3.
        kernel: kernel size of the dilated depthwise convolutions (odd). Default 3.
        filters: parallel encoder convolutions, kernels ``L * 2**l``. Default 3.
        num_mels: channels of the learned "mel" projection of the spectrogram. Default 256.
        E_1: instrument embedding size. Default 8.
        E_2: generator bottleneck size. Default 5.
        stages_num: number of stages, at ``sampling_rate * 2**i`` Hz. Default 3.
        sampling_rate: rate of stage 0 in Hz (a multiple of 8000). Default 8000.
        independent_params: ``True`` for the baseline with static per-instrument weights
            instead of the generator. Default ``False``.
        residual_bias: bias on the residual and skip 1x1 convs of the TCN. Default ``False``.
        dropout: channel dropout on the mixture latent before masking (training only).
        reconstruction_loss_weight: weight of the encoder/decoder reconstruction SI-SNR.
        dissimilarity_loss_weight: weight of the latent dissimilarity term.
        similarity_loss_weight: weight of the latent similarity term.
        instrument_loss_weights: weight of each instrument's SI-SNR in the separation
            term, in ``SOURCES`` order. The paper sums them with weight 1 (the default);
            raising one instrument's weight trains more for it, e.g. to fine-tune a model
            whose weakest instrument lags (see ``training/README.md``).
        recompute_tcn: in training, recompute the masking TCN's activations during the
            backward pass instead of keeping them (gradient checkpointing, see
            ``MaskingTCN``): less memory for more time. A training step of the ``paper``
            model at batch 2 x 2 s on CPU keeps its activations in 5.4-5.6 GB peak memory
            (less than the authors' code) at 3.4-4.2 s; recomputing them takes 4.4-4.8 GB
            and about 1.4x the time. For larger batches or crops than memory allows.
            Outputs and gradients are unchanged. Applied inside ``tf.function`` only (as
            ``fit`` runs). Default ``False``.
    """

    N: int = 440
    L: int = 20
    W: int = 20
    B: int = 160
    H: int = 160
    layers: int = 6
    stack: int = 3
    kernel: int = 3
    filters: int = 3
    num_mels: int = 256
    E_1: int = 8
    E_2: int = 5
    stages_num: int = 3
    sampling_rate: int = 8000
    independent_params: bool = False
    residual_bias: bool = False
    dropout: float = 0.0
    reconstruction_loss_weight: float = 0.05
    dissimilarity_loss_weight: float = 3.0
    similarity_loss_weight: float = 2.0
    instrument_loss_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    recompute_tcn: bool = False

    def __post_init__(self):
        # JSON and YAML give lists; the frozen config keeps a (hashable) tuple of floats.
        weights = self.instrument_loss_weights
        if isinstance(weights, (list, tuple)) and all(
                isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            object.__setattr__(self, "instrument_loss_weights", tuple(float(w) for w in weights))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raises ``ValueError`` naming the first field that cannot build a model."""
        positive = ("N", "L", "W", "B", "H", "layers", "stack", "kernel", "filters",
                    "num_mels", "E_1", "E_2", "stages_num", "sampling_rate")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"config field {name} must be a positive integer, got {value!r}")
            if value > UPPER_BOUNDS[name]:
                raise ValueError(f"config field {name} must be at most {UPPER_BOUNDS[name]}, got {value}")
        for name in ("independent_params", "residual_bias", "recompute_tcn"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"config field {name} must be true or false, got {getattr(self, name)!r}")
        for name in ("dropout", "reconstruction_loss_weight", "dissimilarity_loss_weight", "similarity_loss_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"config field {name} must be a number, got {value!r}")
        if self.sampling_rate * 2 ** (self.stages_num - 1) > MAX_STAGE_RATE:
            raise ValueError(f"config fields sampling_rate={self.sampling_rate}, stages_num={self.stages_num}: "
                             f"the last stage's rate must be at most {MAX_STAGE_RATE} Hz")
        if self.kernel % 2 != 1:
            raise ValueError(f"config field kernel must be odd (length-preserving), got {self.kernel}")
        if self.sampling_rate % 8000:
            raise ValueError(
                f"config field sampling_rate must be a multiple of 8000, got {self.sampling_rate}")
        if self.N % 4:
            raise ValueError(f"config field N must be divisible by 4, got {self.N}")
        if self.N // 2 ** self.filters < 1:
            raise ValueError(f"config field filters={self.filters} leaves an empty decoder "
                             f"filter for N={self.N}")
        for name, channels in (("N", self.N), ("B", self.B), ("H", self.H)):
            if channels % NORM_GROUPS:
                raise ValueError(f"config field {name} must be divisible by {NORM_GROUPS} "
                                 f"(group normalisation), got {channels}")
        weights = self.instrument_loss_weights
        if (not isinstance(weights, tuple) or len(weights) != len(SOURCES)
                or not all(isinstance(w, float) and math.isfinite(w) and w >= 0 for w in weights)
                or not any(weights)):
            raise ValueError(f"config field instrument_loss_weights must be {len(SOURCES)} "
                             f"non-negative numbers ({', '.join(SOURCES)}), not all zero; "
                             f"got {self.instrument_loss_weights!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"config field dropout must be in [0, 1), got {self.dropout}")
        for i in range(self.stages_num):
            stride, base = self.stride(i), self.kernel_size(i)
            for l in range(self.filters):
                k = base * 2 ** l
                if k < stride or (k - stride) % 2:
                    # Shorter kernels, or odd padding, make the parallel convs disagree on the
                    # frame count (the authors' code fails there too).
                    raise ValueError(f"config fields L={self.L}, W={self.W}: encoder kernel {k} of "
                                     f"stage {i} must be at least the stride {stride} and differ "
                                     f"from it by an even number")

    # ----------------------------------------------------------- per-stage values
    def stage_rate(self, stage: int) -> int:
        """Sample rate of ``stage`` in Hz."""
        return self.sampling_rate * 2 ** stage

    def stage_channels(self, stage: int) -> int:
        """Latent channels ``N_i`` of ``stage``."""
        return self.N * 2 ** stage

    def kernel_size(self, stage: int) -> int:
        """Base encoder kernel ``L_i`` of ``stage``."""
        return self.L * 2 ** stage

    def stride(self, stage: int) -> int:
        """Encoder stride ``W_i`` of ``stage`` (the hop between latent frames)."""
        return self.W * 2 ** stage

    def receptive_field_seconds(self) -> float:
        """How far the masking networks see on each side of a frame, in seconds.

        Each stack's dilated depthwise convolutions reach ``(kernel - 1) / 2 * (2**layers - 1)``
        frames on each side, and the stages add up, because each stage's masks take the
        previous stage's latents frame by frame: 567 frames, 1.42 s, for the paper model.
        Left out: the encoders' kernels (10 ms at most) and the group norms, whose
        statistics cover the whole input. A chunk's context should be at least this long.
        """
        frames = self.stages_num * self.stack * (self.kernel - 1) // 2 * (2 ** self.layers - 1)
        return frames * self.W / self.sampling_rate  # every stage has sampling_rate / W frames a second

    @property
    def stage_rates(self) -> tuple[int, ...]:
        return tuple(self.stage_rate(i) for i in range(self.stages_num))

    @property
    def output_rate(self) -> int:
        """Rate of the last stage, the model's answer."""
        return self.stage_rate(self.stages_num - 1)

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, strict: bool = True) -> "MetaTasNetConfig":
        """Builds a config from a mapping; unknown keys are an error when ``strict``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if strict and unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "MetaTasNetConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> "MetaTasNetConfig":
        return dataclasses.replace(self, **changes)
