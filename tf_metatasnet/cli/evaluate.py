"""``metatasnet evaluate``: separate a MUSDB18 subset and score it with museval."""

from __future__ import annotations

from tqdm import tqdm

from tf_metatasnet.cli.options import add_inference_options, add_model_options, make_separator


def register(commands) -> None:
    parser = commands.add_parser(
        "evaluate", help="separate and score MUSDB18 with museval (the paper's table)",
        description="Separate every track of a MUSDB18 subset and score it with museval "
                    "(BSS Eval v4): writes museval's per-track JSON and prints the paper's table "
                    "(median over frames, median over tracks).")
    parser.add_argument("--musdb", required=True, help="root of MUSDB18 (or MUSDB18-HQ with --is-wav)")
    parser.add_argument("--is-wav", action="store_true", help="the MUSDB18-HQ layout (wav folders)")
    add_model_options(parser, "a .keras model or an authors' .pt checkpoint (default: the bundled "
                              "default model)")
    parser.add_argument("--baseline", choices=("mixture", "mixture/4"), default=None,
                        help="score a trivial estimate instead of a model: every stem = the mixture, "
                             "or a quarter of it (the floor any model must beat)")
    parser.add_argument("--subset", choices=("train", "test"), default="test", help="default: test")
    parser.add_argument("--tracks", nargs="+", default=None, help="only these tracks (by name)")
    parser.add_argument("-o", "--output", default="eval_results",
                        help="folder for the JSON and the table (default: eval_results)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes scoring tracks in parallel with separation (default: 1)")
    add_inference_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
    from tf_metatasnet.data.musdb import load_musdb
    from tf_metatasnet.inference.evaluate import (
        BASELINE_GAINS,
        BaselineSeparator,
        evaluate_tracks,
        format_table,
        score_table,
    )

    tracks = load_musdb(args.musdb, is_wav=args.is_wav, subset=args.subset, tracks=args.tracks)
    if args.baseline:
        if args.model or args.server:
            raise ValueError("give a model (--model, --server) or --baseline, not both")
        separator = BaselineSeparator(BASELINE_GAINS[args.baseline])
    else:
        separator = make_separator(args)
    with tqdm(total=len(tracks), unit="track", desc=f"evaluate {args.subset}") as bar:
        store = evaluate_tracks(separator, tracks, output_dir=args.output, jobs=args.jobs,
                                progress=lambda name, done, total: bar.update(1))
    what = (f"the baseline '{args.baseline}'" if args.baseline
            else args.server or args.model or "the bundled default model")
    print(f"{what}: BSS Eval v4 (museval), median over frames, median over {len(tracks)} track(s), dB:")
    print(format_table(score_table(store)))
    print(f"per-track JSON, results.pandas and scores.json in {args.output}")
    return 0
