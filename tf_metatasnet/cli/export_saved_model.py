"""``metatasnet export saved-model``: SavedModels in TF Serving's layout and a models.config."""

from __future__ import annotations

import os

from tf_metatasnet.cli.options import SOURCE_CHOICES, add_model_limit_option


def register(formats) -> None:
    parser = formats.add_parser(
        "saved-model", help="SavedModels in TF Serving's layout and a models.config",
        description="Write BASE_DIR/NAME/VERSION (all stems) and BASE_DIR/NAME_INSTRUMENT/VERSION "
                    "(one instrument, generator folded) SavedModels whose serving_default takes "
                    "mixture_8000/16000/32000 (normalised, resampled outside) and returns one "
                    "output per stem, plus BASE_DIR/models.config serving them all.")
    parser.add_argument("--model", required=True, help="a .keras model or an authors' .pt checkpoint")
    add_model_limit_option(parser)
    parser.add_argument("-o", "--output", required=True, help="TF Serving's model base folder")
    parser.add_argument("--name", default="metatasnet", help="model name (default: metatasnet)")
    parser.add_argument("--version", type=int, default=1, help="version folder (default: 1)")
    parser.add_argument("--instrument", nargs="*", choices=SOURCE_CHOICES, default=None,
                        help="per-instrument models to write (default: all four; none with no value)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace version folders that already hold a SavedModel (default: refuse)")
    parser.add_argument("--serving-root", default="/models",
                        help="where the server sees BASE_DIR, for models.config (default: /models)")
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
    from tf_metatasnet.checkpoints.saving import load_model
    from tf_metatasnet.export.saved_model import export_saved_model

    written = export_saved_model(load_model(args.model, args.max_model_gib), args.output, name=args.name,
                                 version=args.version, instruments=args.instrument,
                                 serving_root=args.serving_root, overwrite=args.overwrite)
    for name, folder in written.items():
        print(f"{name}: {folder}")
    print(f"{os.path.join(args.output, 'models.config')}: serves {', '.join(written)}")
    return 0
