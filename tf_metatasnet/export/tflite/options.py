"""The TFLite export's options and their defaults: quantizations, weight rounding, and how a
song is cut for a fixed-window model.

TensorFlow-free, so that the CLI can show them in ``--help``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tf_metatasnet.inference.apply import default_overlap, window_alignment

#: The phone models' default window, in seconds. The context covers the paper model's
#: receptive field (1.42 s each side, ``MetaTasNetConfig.receptive_field_seconds``); more
#: would only be recomputed in every window, and a long chunk spreads its cost: 33-s
#: windows that advance by 29 s. (Whole-song separation keeps 4 s of context.)
CHUNK_SECONDS, CONTEXT_SECONDS, OVERLAP_SECONDS = 30.0, 1.5, 1.0


@dataclasses.dataclass(frozen=True)
class Chunking:
    """How a song is cut for a fixed-window model, in base samples (see ``tf_metatasnet.inference.apply.plan_windows``).

    Attributes:
        chunk: kept region per window.
        context: context on each side.
        overlap: crossfade between neighbouring kept regions.
        align: where windows start (a common frame of the encoder and the STFT); the
            other three are multiples of it.
    """

    chunk: int
    context: int
    overlap: int
    align: int

    @property
    def window(self) -> int:
        """The model's fixed input length in base samples: ``chunk + 2 * context``."""
        return self.chunk + 2 * self.context

    @classmethod
    def from_seconds(cls, base_rate: int, stride: int, chunk_seconds: float = CHUNK_SECONDS,
                     context_seconds: float = CONTEXT_SECONDS,
                     overlap_seconds: "float | None" = OVERLAP_SECONDS) -> "Chunking":
        """Lengths in seconds rounded up to whole alignment units; ``overlap_seconds=None``
        takes the separator's default for the chunk (1 s, or a quarter of a short chunk)."""
        align = window_alignment(base_rate, stride)

        def units(seconds):
            return int(np.ceil(round(seconds * base_rate) / align)) * align

        chunk, context = units(chunk_seconds), units(context_seconds)
        if overlap_seconds is None:   # the default, rounded up but never past half the chunk
            overlap = min(units(default_overlap(chunk_seconds)), chunk // 2 // align * align)
        else:
            overlap = units(overlap_seconds)
        if chunk <= 0 or not 0 <= 2 * overlap <= chunk:
            raise ValueError(f"need a positive chunk at least twice the overlap, got chunk {chunk}, "
                             f"overlap {overlap} samples at {base_rate} Hz")
        return cls(chunk, context, overlap, align)


#: The variants ``export_tflite`` writes (``tf_metatasnet.export.tflite.convert`` says what each is).
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8_weights", "int8")
#: Those that need no calibration audio (``metatasnet demo`` offers these).
UNCALIBRATED_QUANTIZATIONS = tuple(q for q in QUANTIZATIONS if q != "int8")

#: How ``dynamic`` and ``int8_weights`` round their ``FULLY_CONNECTED`` weights: ``gptq``
#: (``weights.gptq_round``, from the float model's inputs to each layer) or
#: ``nearest``. GPTQ's statistics come from ``GPTQ_WINDOWS`` windows of
#: ``GPTQ_WINDOW_SECONDS``, cut from the calibration windows (generated songs without
#: them): short, because every intermediate tensor of the model is kept to read them.
WEIGHT_ROUNDINGS = ("gptq", "nearest")
GPTQ_WINDOWS, GPTQ_WINDOW_SECONDS = 8, 2.0


def check_weight_rounding(weight_rounding: str) -> None:
    """Raises a one-line ``ValueError`` unless ``weight_rounding`` is one of ``WEIGHT_ROUNDINGS``."""
    if weight_rounding not in WEIGHT_ROUNDINGS:
        raise ValueError(f"unknown weight rounding {weight_rounding!r} (choose from {', '.join(WEIGHT_ROUNDINGS)})")
