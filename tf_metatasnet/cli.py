"""The ``metatasnet`` command line: a thin layer over the library.

TensorFlow is imported inside each command, so ``metatasnet --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys


def _import_official(args) -> int:
    from tf_metatasnet.importer import import_official
    from tf_metatasnet.saving import save_model

    model = import_official(args.checkpoint)
    save_model(model, args.output)
    config = model.config
    print(f"{args.checkpoint}: imported a {config.stages_num}-stage Meta-TasNet "
          f"({model.count_params():,} values, {'static' if config.independent_params else 'generated'} "
          f"weights) -> {args.output}")
    return 0


def _info(args) -> int:
    from tf_metatasnet.saving import load_model

    model = load_model(args.model)
    print(f"{args.model}: {model.config.stages_num} stages at {', '.join(map(str, model.config.stage_rates))} Hz, "
          f"{model.count_params():,} values")
    print(model.config.to_json())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metatasnet", description="Meta-TasNet music source separation (TensorFlow/Keras).")
    commands = parser.add_subparsers(dest="command", required=True)

    imp = commands.add_parser(
        "import-official", help="convert a checkpoint of the authors' PyTorch code to a .keras model",
        description="Convert a checkpoint of the authors' PyTorch implementation (e.g. their "
                    "released best_model.pt) to a .keras model. Needs the torch extra: "
                    "pip install 'tf-metatasnet[torch]'.")
    imp.add_argument("checkpoint", help="the authors' .pt checkpoint")
    imp.add_argument("-o", "--output", required=True, help="the .keras file to write")
    imp.set_defaults(run=_import_official)

    info = commands.add_parser("info", help="print a model's configuration")
    info.add_argument("model", help="a .keras model or an authors' .pt checkpoint")
    info.set_defaults(run=_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.run(args)
    except (OSError, ValueError, ImportError) as error:
        print(f"metatasnet {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
