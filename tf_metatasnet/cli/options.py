"""What several commands share: argument types, the inference options, making the separator."""

from __future__ import annotations

import argparse
import sys

from tf_metatasnet.inference.apply import CHUNK_SECONDS, CONTEXT_SECONDS
from tf_metatasnet.inference.backends import BACKENDS
from tf_metatasnet.models.size import DEFAULT_LIMIT_GIB
from tf_metatasnet.sources import SOURCES

#: The stems a user may name (``--stems``, ``--two-stems``, ``--instrument``).
SOURCE_CHOICES = SOURCES


def non_negative_float(text: str) -> float:
    """An ``argparse`` type: a number >= 0."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def add_model_options(parser, model_help: str) -> None:
    """``--backend``, ``--model`` and ``--server``: which model separates, and where it runs."""
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="what runs the model: keras (this process, default), serving (a TF "
                             "Serving server, --server) or tflite (a per-instrument .tflite, --model)")
    parser.add_argument("--model", default=None, help=model_help)
    add_model_limit_option(parser)
    parser.add_argument("--server", default=None,
                        help="the TF Serving model to separate with (--backend serving): "
                             "http://host:8501/v1/models/NAME (REST) or grpc://host:8500/NAME")


def add_model_limit_option(parser) -> None:
    """``--max-model-gib``: the one flag that lets a larger model file load."""
    parser.add_argument("--max-model-gib", type=non_negative_float, default=DEFAULT_LIMIT_GIB,
                        help=f"refuse model files whose model would need more memory than this, "
                             f"in GiB, before building them (default: {DEFAULT_LIMIT_GIB:g})")


def add_inference_options(parser) -> None:
    """Options shared by ``separate`` and ``evaluate``: how a song is run through the model."""
    group = parser.add_argument_group("inference")
    group.add_argument("--chunk-seconds", type=non_negative_float, default=None,
                       help=f"audio kept from each model call (default: {CHUNK_SECONDS:g}; a "
                            f".tflite's own with --backend tflite)")
    group.add_argument("--context-seconds", type=non_negative_float, default=None,
                       help=f"extra audio on each side of a chunk (default: {CONTEXT_SECONDS:g}; the "
                            f"paper uses 8)")
    group.add_argument("--overlap-seconds", type=non_negative_float, default=None,
                       help="crossfade between chunks, at most half the chunk (default: 1 or a "
                            "quarter of the chunk; 0 concatenates)")
    group.add_argument("--batch-size", type=int, default=1, help="chunks per model call (default: 1)")
    group.add_argument("--device", default=None,
                       help="TensorFlow device: cpu, gpu, or e.g. /GPU:1 (default: TensorFlow's choice)")
    group.add_argument("--no-xla", dest="xla", action="store_false",
                       help="do not compile the model with XLA (faster start, slower run)")
    group.add_argument("--downmix", action="store_true",
                       help="mix inputs with more than two channels down to mono (default: error)")


def backend_name(args) -> str:
    """The backend the options ask for; ``--server`` alone means ``serving``."""
    backend = args.backend or ("serving" if args.server else "keras")
    if backend == "serving" and not args.server:
        raise ValueError("--backend serving needs --server URL")
    if backend != "serving" and args.server:
        raise ValueError(f"--server is for --backend serving, not {backend}")
    if backend == "tflite" and not args.model:
        raise ValueError("--backend tflite needs --model FILE.tflite")
    if backend == "keras" and args.model and args.model.endswith(".tflite"):
        raise ValueError(f"{args.model}: a TFLite model; add --backend tflite")
    return backend


def make_separator(args, jobs: "int | None" = None):
    """The ``Separator`` the shared options describe (loads TensorFlow)."""
    # Imported here, not at the top: TensorFlow loads only when a command runs.
    import tensorflow as tf

    from tf_metatasnet.checkpoints.saving import load_model
    from tf_metatasnet.inference.separator import make_separator as separator_for

    backend = backend_name(args)
    if jobs:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(jobs)
        except RuntimeError:  # TensorFlow already started in this process (e.g. called from Python)
            print("metatasnet: --jobs ignored, TensorFlow is already running in this process",
                  file=sys.stderr)
    options = dict(chunk_seconds=args.chunk_seconds, context_seconds=args.context_seconds,
                   overlap_seconds=args.overlap_seconds, batch_size=args.batch_size, downmix=args.downmix)
    if backend == "serving":
        return separator_for("serving", args.server, **_given(options))
    if backend == "tflite":
        return separator_for("tflite", args.model, num_threads=jobs or 1, **_given(options))
    device = {"cpu": "/CPU:0", "gpu": "/GPU:0"}.get((args.device or "").lower(), args.device)
    if device and "GPU" in device.upper() and not tf.config.list_physical_devices("GPU"):
        raise ValueError(f"--device {args.device}: TensorFlow sees no GPU on this machine")
    model = load_model(args.model, args.max_model_gib) if args.model else None   # None: the bundled one
    return separator_for("keras", model, jit_compile=args.xla, device=device, **_given(options))


def _given(options: dict) -> dict:
    """The options the user gave (``None``: the library's default)."""
    return {key: value for key, value in options.items() if value is not None}
