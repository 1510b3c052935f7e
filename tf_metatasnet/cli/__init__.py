"""The ``metatasnet`` command line: a thin layer over the library, one module per command.

Each command module has ``register(subparsers)``, which adds its parser, and ``run(args)``,
which calls the library and prints. TensorFlow is imported inside each ``run`` (and the
package imports it lazily), so ``metatasnet --help`` takes a fraction of a second.
Errors from the library (``OSError``, ``ValueError``, ``ImportError``) are printed as one
line, ``metatasnet <command>: error: <message>``, with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from tf_metatasnet.cli import (
    demo,
    evaluate,
    export_saved_model,
    export_tflite,
    import_official,
    info,
    make_toy_dataset,
    prepare,
    separate,
    train,
)

#: The commands, in ``--help``'s order.
COMMANDS = (import_official, info, separate, evaluate, demo, make_toy_dataset, prepare, train)


def build_parser() -> argparse.ArgumentParser:
    """The ``metatasnet`` parser: every command's, and ``export`` with its two formats."""
    parser = argparse.ArgumentParser(
        prog="metatasnet", description="Meta-TasNet music source separation (TensorFlow/Keras).")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(commands)
    export = commands.add_parser(
        "export", help="export for TF Serving (SavedModel) or phones (TFLite per instrument)")
    formats = export.add_subparsers(dest="format", required=True)
    export_saved_model.register(formats)
    export_tflite.register(formats)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.run(args)
    except (OSError, ValueError, ImportError) as error:
        print(f"metatasnet {args.command}: error: {error}", file=sys.stderr)
        return 1
