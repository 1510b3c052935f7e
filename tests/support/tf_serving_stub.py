"""A stand-in for TF Serving's REST and gRPC APIs, executing real SavedModels (for tests).

TF Serving itself cannot be installed here. This server implements what its documentation
specifies for ``POST /v1/models/<name>[/versions/<v>]:predict``: the columnar request
``{"signature_name", "inputs": {name: nested lists}}`` answered with ``{"outputs": {name:
lists}}`` (or ``{"outputs": lists}`` for a single output), the row request ``{"instances":
[{name: ...}, ...]}`` answered with ``{"predictions": [...]}``, errors as ``{"error": msg}``;
and ``PredictionService.Predict`` over gRPC with ``tensorflow-serving-api``'s messages.
"""

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import tensorflow as tf

_PREDICT = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")


class ModelStore:
    """``{name: base folder}`` -> the newest version's ``serving_default`` (or a given one)."""

    def __init__(self, models: dict):
        self.models, self._loaded = models, {}

    def signature(self, name, version=None):
        folder = self.models[name]
        version = version or max(int(v) for v in os.listdir(folder) if v.isdigit())
        key = (name, int(version))
        if key not in self._loaded:
            self._loaded[key] = tf.saved_model.load(f"{folder}/{version}").signatures["serving_default"]
        return self._loaded[key]


def _run(signature, inputs):
    outputs = signature(**{name: tf.constant(np.asarray(value, np.float32)) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


class _Handler(BaseHTTPRequestHandler):
    store: ModelStore = None

    def log_message(self, *args):
        pass

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        match = _PREDICT.match(self.path)
        if not match or match.group(1) not in self.store.models:
            return self._reply(404, {"error": f"Servable not found for request: {self.path}"})
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if request.get("signature_name", "serving_default") != "serving_default":
            return self._reply(400, {"error": "unknown signature"})
        signature = self.store.signature(match.group(1), match.group(2))
        if "inputs" in request:
            outputs = _run(signature, request["inputs"])
            body = ({"outputs": next(iter(outputs.values())).tolist()} if len(outputs) == 1
                    else {"outputs": {name: value.tolist() for name, value in outputs.items()}})
        elif "instances" in request:
            instances = request["instances"]
            outputs = _run(signature, {name: [item[name] for item in instances] for name in instances[0]})
            body = {"predictions": [{name: value[k].tolist() for name, value in outputs.items()}
                                    for k in range(len(instances))]}
        else:
            return self._reply(400, {"error": "request needs 'inputs' or 'instances'"})
        self._reply(200, body)


def start_rest_server(models: dict):
    """Serves ``{name: base folder}`` on a free localhost port; returns ``(server, url)``."""
    handler = type("Handler", (_Handler,), {"store": ModelStore(models)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def start_grpc_server(models: dict):
    """The same behind ``PredictionService.Predict``; returns ``(server, "host:port")``."""
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    store = ModelStore(models)

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            signature = store.signature(request.model_spec.name)
            outputs = _run(signature, {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()})
            response = predict_pb2.PredictResponse()
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response

    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"
