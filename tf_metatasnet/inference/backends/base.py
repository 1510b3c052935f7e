"""What a :class:`~tf_metatasnet.inference.separator.Separator` needs of a model: a backend.

A backend separates one batch of chunks, already resampled to the stage rates and
normalised; the separator (and :func:`~tf_metatasnet.inference.apply.apply_chunked`) does
everything else of a song. Three implement it: :class:`KerasBackend` (a ``MetaTasNet`` in
this process), :class:`~tf_metatasnet.inference.backends.serving.RestBackend` /
:class:`~tf_metatasnet.inference.backends.serving.GrpcBackend` (TF Serving) and
:class:`~tf_metatasnet.inference.backends.tflite.TFLiteBackend` (one instrument's TFLite
model); :func:`~tf_metatasnet.inference.backends.factory.make_backend` picks one by name.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Sequence

import numpy as np

#: How a backend's estimates are scaled back after the separator divided each input by
#: its standard deviation.
RESCALES = ("lstsq", "std")


class Backend(abc.ABC):
    """Separates one batch of normalised chunks.

    Attributes:
        name: the backend's name in ``make_backend`` and ``--backend`` (class attribute).
        rates: the input rates, the first stage's (the *base* rate) first.
        stride: the model's stride in base samples; windows are multiples of it.
        sources: the names of the estimates, in order.
        window: the fixed input length in base samples, or ``None`` for any multiple of
            ``stride``.
        rescale: ``"lstsq"``: the estimates are all four sources, rescaled to the mixture
            by least squares (as the authors' evaluation does); ``"std"``: multiplied by
            the last input's standard deviation (a backend of one instrument).
    """

    name: ClassVar[str]
    rates: tuple[int, ...]
    stride: int
    sources: tuple[str, ...]
    window: "int | None" = None
    rescale: str = "lstsq"

    @abc.abstractmethod
    def separate_chunk(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """One ``(n, samples_i)`` float32 array per rate (``samples_i = samples_0 * rate_i /
        rate_0``) -> the estimates, ``(n, len(sources), samples_last)`` float32."""

    def __call__(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """The same as :meth:`separate_chunk`: a backend is the ``segment_fn`` of ``apply_chunked``."""
        return self.separate_chunk(inputs)

    def check(self) -> "Backend":
        """Raises a ``ValueError`` naming the attribute a subclass set wrong; returns ``self``."""
        rates = tuple(self.rates)
        if not rates or any(int(r) != r or r <= 0 or r % rates[0] for r in rates):
            raise ValueError(f"{self}: rates must be positive multiples of the first, got {rates}")
        if int(self.stride) != self.stride or self.stride < 1:
            raise ValueError(f"{self}: stride must be a positive integer, got {self.stride!r}")
        if not self.sources or not all(isinstance(s, str) for s in self.sources):
            raise ValueError(f"{self}: sources must be names, got {self.sources!r}")
        if self.window is not None and (self.window < 1 or self.window % self.stride):
            raise ValueError(f"{self}: window must be a multiple of the stride, got {self.window!r}")
        if self.rescale not in RESCALES:
            raise ValueError(f"{self}: rescale must be one of {', '.join(RESCALES)}, got {self.rescale!r}")
        if self.rescale == "lstsq" and len(self.sources) < 2:
            raise ValueError(f"{self}: least-squares rescaling needs several sources")
        return self
