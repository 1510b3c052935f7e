"""Separating songs through TF Serving (REST or gRPC), chunk by chunk.

:class:`RestBackend` and :class:`GrpcBackend` are :class:`~tf_metatasnet.inference.separator.Separator`
backends (:class:`~tf_metatasnet.inference.backends.base.Backend`): the song is resampled, normalised and cut into windows with context by
:func:`tf_metatasnet.inference.apply.apply_chunked` here, and each window is one ``Predict``
request to a model exported by ``metatasnet export saved-model``, so requests stay the
size of a window whatever the song's length.

REST uses TF Serving's documented ``:predict`` API in the columnar ("inputs") format::

    POST {url}:predict  {"signature_name": "serving_default",
                         "inputs": {"mixture_8000": [[...]], "mixture_16000": ..., ...}}
    ->  {"outputs": {"drums": [[...]], ...}}   (one output: {"outputs": [[...]]})

with ``url`` the model's address, ``http://host:8501/v1/models/<name>`` (optionally
``/versions/<n>``). gRPC uses ``tensorflow-serving-api`` (the ``serving`` extra) with
``grpc://host:8500/<name>``.

    separator = make_separator("serving", "http://localhost:8501/v1/models/metatasnet")
    separator.separate_file("song.mp3", "separated")
"""

from __future__ import annotations

import abc
import json
import urllib.error
import urllib.request
from typing import Sequence
from urllib.parse import urlparse

import numpy as np
import tensorflow as tf

from tf_metatasnet.config import MetaTasNetConfig
from tf_metatasnet.inference.backends.base import Backend
from tf_metatasnet.sources import SOURCES

#: The stage rates and stride of every preset (``MetaTasNetConfig``'s defaults).
DEFAULT_RATES = MetaTasNetConfig().stage_rates
DEFAULT_STRIDE = MetaTasNetConfig().stride(0)


class ServingError(OSError):
    """A request to the server failed; the message names the server and the problem.

    An ``OSError``, so that ``metatasnet separate`` reports it as one line per file.
    """


class ServingBackend(Backend):
    """What the REST and gRPC backends share: the model's interface; each defines ``predict``.

    Args:
        sources: the served model's outputs, in order: all four stems (rescaled to the
            mixture by least squares) or one instrument (``metatasnet_vocals``: multiplied
            back by the input's standard deviation).
        rates: the stage rates; inputs are named ``mixture_<rate>``.
        stride: the model's stride in base samples.
    """

    name = "serving"
    window = None

    def __init__(self, sources: Sequence[str] = SOURCES, rates: Sequence[int] = DEFAULT_RATES,
                 stride: int = DEFAULT_STRIDE):
        self.sources = tuple(sources)
        self.rates = tuple(rates)
        self.stride = stride
        self.rescale = "lstsq" if len(self.sources) > 1 else "std"
        self.input_names = [f"mixture_{rate}" for rate in self.rates]
        self.check()

    @abc.abstractmethod
    def predict(self, inputs: dict) -> dict:
        """``{input name: array}`` -> ``{output name: array}``."""

    def separate_chunk(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        outputs = self.predict(dict(zip(self.input_names, inputs)))
        missing = [name for name in self.sources if name not in outputs]
        if missing:
            raise ServingError(f"{self}: the response has no output {', '.join(missing)}")
        return np.stack([np.asarray(outputs[name], np.float32) for name in self.sources], axis=1)


class RestBackend(ServingBackend):
    """TF Serving's REST ``:predict`` API (columnar ``inputs`` format).

    Args:
        url: the model's address, ``http://host:8501/v1/models/<name>[/versions/<n>]``.
        timeout: seconds per request (default 600).
        **kwargs: ``sources``, ``rates``, ``stride`` (see ``ServingBackend``).
    """

    def __init__(self, url: str, timeout: float = 600.0, **kwargs):
        super().__init__(**kwargs)
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __str__(self) -> str:
        return self.url

    def predict(self, inputs: dict) -> dict:
        body = json.dumps({"signature_name": "serving_default",
                           "inputs": {name: np.asarray(x).tolist() for name, x in inputs.items()}})
        request = urllib.request.Request(f"{self.url}:predict", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            raise ServingError(f"{self.url}: HTTP {error.code} ({detail})") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise ServingError(f"{self.url}: request failed ({error})") from None
        if "error" in reply:
            raise ServingError(f"{self.url}: {reply['error']}")
        outputs = reply.get("outputs")
        if outputs is None:
            raise ServingError(f"{self.url}: the response has no 'outputs'")
        if not isinstance(outputs, dict):  # one output: TF Serving omits its name
            outputs = {self.sources[0]: outputs}
        return outputs


class GrpcBackend(ServingBackend):
    """TF Serving's gRPC ``PredictionService.Predict`` (needs ``tensorflow-serving-api``).

    Args:
        target: ``host:port`` of the server's gRPC port (8500 by default in TF Serving).
        model: the model name.
        timeout: seconds per request (default 600).
        **kwargs: ``sources``, ``rates``, ``stride`` (see ``ServingBackend``).
    """

    def __init__(self, target: str, model: str, timeout: float = 600.0, **kwargs):
        super().__init__(**kwargs)
        try:  # optional: the ``serving`` extra
            import grpc
            from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
        except ImportError:
            raise ImportError("gRPC serving needs tensorflow-serving-api: "
                              "pip install 'tf-metatasnet[serving]'") from None

        self.target, self.model, self.timeout = target, model, timeout
        self._predict_pb2 = predict_pb2
        # A window's inputs exceed gRPC's default 4 MB message limit.
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(target, options=options))
        self._grpc = grpc

    def __str__(self) -> str:
        return f"grpc://{self.target}/{self.model}"

    def predict(self, inputs: dict) -> dict:
        request = self._predict_pb2.PredictRequest()
        request.model_spec.name = self.model
        request.model_spec.signature_name = "serving_default"
        for name, x in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(x, np.float32)))
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except self._grpc.RpcError as error:
            raise ServingError(f"{self}: {error.code().name} ({error.details()})") from None
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def serving_backend(url: str, sources: "Sequence[str] | None" = None, **kwargs) -> ServingBackend:
    """The backend for ``url``: ``http(s)://host:port/v1/models/<name>[/versions/<n>]``
    (REST) or ``grpc://host:port/<name>`` (gRPC).

    ``sources`` defaults to all four stems, or to ``("<instrument>",)`` for a model named
    ``<anything>_<instrument>`` (the per-instrument models of ``export saved-model``).
    """
    parsed = urlparse(url)
    name = parsed.path.rstrip("/").split("/versions/")[0].rsplit("/", 1)[-1]
    if sources is None:
        suffix = name.rsplit("_", 1)[-1]
        sources = (suffix,) if "_" in name and suffix in SOURCES else SOURCES
    if parsed.scheme in ("http", "https"):
        if "/v1/models/" not in parsed.path:
            raise ValueError(f"{url}: expected http://host:port/v1/models/<name>")
        return RestBackend(url, sources=sources, **kwargs)
    if parsed.scheme == "grpc":
        if not name or not parsed.netloc:
            raise ValueError(f"{url}: expected grpc://host:port/<name>")
        return GrpcBackend(parsed.netloc, name, sources=sources, **kwargs)
    raise ValueError(f"{url}: the server URL must start with http://, https:// or grpc://")
