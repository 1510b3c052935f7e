"""Backends: what runs the model for a :class:`~tf_metatasnet.inference.separator.Separator`.

Every backend implements :class:`~tf_metatasnet.inference.backends.base.Backend`
("separate a chunk"); :func:`~tf_metatasnet.inference.backends.factory.make_backend`
makes one by name, as ``metatasnet separate --backend`` does:

- ``keras``: a ``MetaTasNet`` in this process (``keras.KerasBackend``);
- ``serving``: a model on a TF Serving server, over REST or gRPC (``serving.RestBackend``,
  ``serving.GrpcBackend``);
- ``tflite``: one instrument's exported TFLite model (``tflite.TFLiteBackend``).

This file imports nothing, so that the CLI can list the names without TensorFlow.
"""

#: The backends' names, in ``make_backend``'s and ``--backend``'s order.
BACKENDS: tuple[str, ...] = ("keras", "serving", "tflite")
