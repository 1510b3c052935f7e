"""The ``metatasnet`` command line: a thin layer over the library, one module per command.

Each command module has ``register(subparsers)``, which adds its parser, and ``run(args)``,
which calls the library and prints. TensorFlow is imported inside each ``run`` (and the
package imports it lazily), so ``metatasnet --help`` takes a fraction of a second.
Errors from the library (``OSError``, ``ValueError``, ``ImportError``) are printed as one
line, ``metatasnet: error: <file>: <problem>``, with exit status 1. SIGINT and SIGTERM
unwind the command (every temporary file and folder is removed, no output is left
half-written) and exit with 130 and 143.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

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


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like ``KeyboardInterrupt`` is for SIGINT, so that
    every ``finally`` and context manager runs: temporary files and folders are removed and
    no half-written output is left."""


def _terminate(signum, frame):
    raise Terminated()


#: Exit statuses of an interrupted command, as a shell reports a process killed by the signal.
SIGINT_STATUS, SIGTERM_STATUS = 128 + signal.SIGINT, 128 + signal.SIGTERM


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return args.run(args)
    except (OSError, ValueError, ImportError) as error:
        print(f"metatasnet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("metatasnet: interrupted; nothing half-written was left", file=sys.stderr)
        return SIGINT_STATUS
    except Terminated:
        print("metatasnet: terminated; nothing half-written was left", file=sys.stderr)
        return SIGTERM_STATUS
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
