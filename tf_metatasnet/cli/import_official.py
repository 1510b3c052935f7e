"""``metatasnet import-official``: the authors' PyTorch checkpoint to a ``.keras`` model."""

from __future__ import annotations

from tf_metatasnet.cli.options import add_model_limit_option


def register(commands) -> None:
    parser = commands.add_parser(
        "import-official", help="convert a checkpoint of the authors' PyTorch code to a .keras model",
        description="Convert a checkpoint of the authors' PyTorch implementation (e.g. their "
                    "released best_model.pt) to a .keras model. Needs the torch extra: "
                    "pip install 'tf-metatasnet[torch]'.")
    parser.add_argument("checkpoint", help="the authors' .pt checkpoint")
    parser.add_argument("-o", "--output", required=True, help="the .keras file to write")
    add_model_limit_option(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
    from tf_metatasnet.checkpoints.importer import import_official
    from tf_metatasnet.checkpoints.saving import save_model

    model = import_official(args.checkpoint, args.max_model_gib)
    save_model(model, args.output)
    config = model.config
    print(f"{args.checkpoint}: imported a {config.stages_num}-stage Meta-TasNet "
          f"({model.count_params():,} values, {'static' if config.independent_params else 'generated'} "
          f"weights) -> {args.output}")
    return 0
