"""``metatasnet separate``: songs to one file per stem."""

from __future__ import annotations

import os
import sys

from tqdm import tqdm

from tf_metatasnet.cli.options import SOURCE_CHOICES, add_inference_options, add_model_options, make_separator


def register(commands) -> None:
    parser = commands.add_parser(
        "separate", help="separate songs into drums, bass, other and vocals",
        description="Separate audio files (wav, flac, ogg, mp3, m4a/aac, ...; any rate; mono or "
                    "stereo) into one file per stem, at the input's rate, length and channels.")
    parser.add_argument("files", nargs="+", help="audio files to separate")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    add_model_options(parser, "a .keras model or an authors' .pt checkpoint (default: the bundled "
                              "default model), or a .tflite with --backend tflite")
    parser.add_argument("--stems", nargs="+", choices=SOURCE_CHOICES, default=None,
                        help="stems to write (default: all four)")
    parser.add_argument("--two-stems", choices=SOURCE_CHOICES, default=None,
                        help="write this stem and the sum of the others as no_STEM (e.g. karaoke: vocals)")
    parser.add_argument("--format", choices=("wav", "flac", "mp3"), default="wav",
                        help="output format (default: wav, 32-bit float)")
    parser.add_argument("--bitrate", type=int, default=320, help="mp3 bitrate in kbit/s (default: 320)")
    parser.add_argument("--filename", default="{track}/{stem}.{ext}",
                        help="output name template with {track}, {stem}, {ext} (default: {track}/{stem}.{ext})")
    parser.add_argument("--jobs", type=int, default=None,
                        help="CPU threads TensorFlow (or the TFLite interpreter) may use (default: all cores)")
    add_inference_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
    from tf_metatasnet.audio import AudioError
    from tf_metatasnet.inference.outputs import plan_outputs
    from tf_metatasnet.inference.separator import SeparationError

    separator = make_separator(args, jobs=args.jobs)
    # Every output path first: a call that would write outside -o, over an input, or one
    # file twice is refused whole, before anything is written.
    plan_outputs(args.files, args.output, separator.output_names(args.stems, args.two_stems),
                 args.filename, args.format)
    failed = 0
    for path in args.files:
        bar = tqdm(total=1, unit="s", desc=os.path.basename(path), leave=True,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")

        def progress(done, total, bar=bar):
            bar.total = round(total, 1)
            bar.n = round(done, 1)
            bar.refresh()

        try:
            written = separator.separate_file(
                path, args.output, stems=args.stems, fmt=args.format, filename=args.filename,
                two_stems=args.two_stems, bitrate=args.bitrate, progress=progress)
        except (SeparationError, AudioError, OSError) as error:
            bar.close()
            print(f"metatasnet: error: {error}", file=sys.stderr)
            failed += 1
            continue
        finally:
            bar.close()   # also when interrupted: the next message starts on its own line
        print(f"{path}: wrote {', '.join(written)}")
    if failed:
        print(f"metatasnet: {failed} of {len(args.files)} files failed; the others were separated",
              file=sys.stderr)
    return 1 if failed else 0
