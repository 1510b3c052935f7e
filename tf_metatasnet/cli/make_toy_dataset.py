"""``metatasnet make-toy-dataset``: a synthetic MUSDB18 to try the pipeline."""

from __future__ import annotations

from tqdm import tqdm


def register(commands) -> None:
    parser = commands.add_parser(
        "make-toy-dataset", help="write a synthetic MUSDB18 (music-like stems) to try the pipeline",
        description="Write synthetic songs with true stems (drums, bass line, chords, a sung-like "
                    "melody) in the MUSDB18-HQ (wav) or MUSDB18 (.stem.mp4) layout, readable by musdb.")
    parser.add_argument("-o", "--output", required=True, help="dataset root")
    parser.add_argument("--tracks", type=int, default=8, help="training tracks (default: 8)")
    parser.add_argument("--test-tracks", type=int, default=None, help="test tracks (default: half of --tracks)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each track (default: 20)")
    parser.add_argument("--format", choices=("wav", "stem"), default="wav", help="default: wav (MUSDB18-HQ)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--renderer", choices=("numpy", "fluidsynth"), default="numpy",
                        help="numpy: synthetic test signals, no dependency (default); fluidsynth: generated "
                             "MIDI rendered with General MIDI instruments (apt-get install fluidsynth "
                             "fluid-soundfont-gm)")
    parser.add_argument("--soundfont", default=None,
                        help="the .sf2 of --renderer fluidsynth (default: the installed FluidR3_GM.sf2)")
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: musdb and the renderers load only when the command runs.
    from tf_metatasnet.data.synth.dataset import make_toy_dataset, validation_track_names

    with tqdm(unit="track", desc="make-toy-dataset") as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        paths = make_toy_dataset(args.output, tracks=args.tracks, seconds=args.seconds,
                                 fmt=args.format, test_tracks=args.test_tracks, seed=args.seed,
                                 renderer=args.renderer, soundfont=args.soundfont, progress=progress)
    train = [path for path in paths if path.parent.name == "train"]
    valid = [path for path in train if path.name.removesuffix(".stem.mp4") in validation_track_names()]
    layout = "MUSDB18-HQ layout (read with --is-wav)" if args.format == "wav" else "MUSDB18 layout (.stem.mp4)"
    print(f"{args.output}: {len(train)} training ({len(valid)} in musdb's valid split) and "
          f"{len(paths) - len(train)} test tracks of {args.seconds:g} s, {layout}")
    return 0
