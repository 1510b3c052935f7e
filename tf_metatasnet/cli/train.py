"""``metatasnet train``: a training recipe (YAML) run with Keras ``fit``."""

from __future__ import annotations

import argparse

#: Command-line options that override a field of the training config of the same name.
OVERRIDES = ("output_dir", "epochs", "steps_per_epoch", "strategy", "precision", "seed", "initial_weights")


def register(commands) -> None:
    parser = commands.add_parser(
        "train", help="train a model from a prepared MUSDB18 cache (keras fit)",
        description="Train Meta-TasNet with the recipe in a YAML config (training/configs/"
                    "paper.yaml is the paper's). Writes best.keras, last.keras, history.csv, "
                    "TensorBoard logs and resume checkpoints to the config's output_dir.")
    parser.add_argument("--config", required=True, help="YAML training config")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in output_dir from its last checkpoint")
    parser.add_argument("--cache-dir", help="prepared cache (overrides data.cache_dir)")
    parser.add_argument("--output-dir", help="run folder (overrides output_dir)")
    parser.add_argument("--epochs", type=int, help="total epochs (overrides epochs)")
    parser.add_argument("--steps-per-epoch", type=int, help="overrides steps_per_epoch")
    parser.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"),
                        help="one device, every GPU of this machine, or several machines (TF_CONFIG)")
    parser.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"),
                        help="mixed_float16 on GPUs (overrides precision)")
    parser.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                        help="compile the training step with XLA (overrides jit_compile)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--initial-weights", metavar="MODEL",
                        help="fine-tune: start from this .keras model's (or the authors' .pt "
                             "checkpoint's) weights (overrides initial_weights)")
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
    from tf_metatasnet.training.config import load_train_config
    from tf_metatasnet.training.loop import train

    overrides = {name: getattr(args, name) for name in OVERRIDES if getattr(args, name) is not None}
    if args.cache_dir is not None:
        overrides["data"] = {"cache_dir": args.cache_dir}
    if args.xla is not None:
        overrides["jit_compile"] = args.xla
    config = load_train_config(args.config, **overrides)
    result = train(config, resume=args.resume, verbose=1)  # Keras progress bar
    best = "n/a" if result.best is None else f"{result.best:.2f} dB"
    print(f"{config.output_dir}: trained epochs {result.initial_epoch + 1}-{config.epochs}; best "
          f"SI-SNR {best} -> {config.output_dir}/best.keras (last: last.keras)")
    return 0
