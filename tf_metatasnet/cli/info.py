"""``metatasnet info``: a model's stages, size and configuration."""

from __future__ import annotations

from tf_metatasnet.cli.options import add_model_limit_option


def register(commands) -> None:
    parser = commands.add_parser("info", help="print a model's configuration")
    parser.add_argument("model", help="a .keras model or an authors' .pt checkpoint")
    add_model_limit_option(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
    from tf_metatasnet.checkpoints.saving import load_model

    model = load_model(args.model, args.max_model_gib)
    print(f"{args.model}: {model.config.stages_num} stages at {', '.join(map(str, model.config.stage_rates))} Hz, "
          f"{model.count_params():,} values")
    print(model.config.to_json())
    return 0
