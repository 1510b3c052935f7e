"""The ``metatasnet`` command line: a thin layer over the library.

TensorFlow is imported inside each command (and the package imports it lazily), so
``metatasnet --help`` takes a fraction of a second.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

#: Stem names, in the model's order (kept here so that ``--help`` needs no TensorFlow).
SOURCE_NAMES = ("drums", "bass", "other", "vocals")


def _import_official(args) -> int:
    from tf_metatasnet.checkpoints.importer import import_official
    from tf_metatasnet.checkpoints.saving import save_model

    model = import_official(args.checkpoint)
    save_model(model, args.output)
    config = model.config
    print(f"{args.checkpoint}: imported a {config.stages_num}-stage Meta-TasNet "
          f"({model.count_params():,} values, {'static' if config.independent_params else 'generated'} "
          f"weights) -> {args.output}")
    return 0


def _info(args) -> int:
    from tf_metatasnet.checkpoints.saving import load_model

    model = load_model(args.model)
    print(f"{args.model}: {model.config.stages_num} stages at {', '.join(map(str, model.config.stage_rates))} Hz, "
          f"{model.count_params():,} values")
    print(model.config.to_json())
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _add_inference_options(parser) -> None:
    """Options shared by ``separate`` and ``evaluate``: how a song is run through the model."""
    group = parser.add_argument_group("inference")
    group.add_argument("--chunk-seconds", type=_positive_float, default=20.0,
                       help="audio kept from each model call (default: 20)")
    group.add_argument("--context-seconds", type=_positive_float, default=4.0,
                       help="extra audio on each side of a chunk (default: 4; the paper uses 8)")
    group.add_argument("--overlap-seconds", type=_positive_float, default=None,
                       help="crossfade between chunks (default: 1 or a quarter of the chunk; "
                            "0 concatenates)")
    group.add_argument("--batch-size", type=int, default=1, help="chunks per model call (default: 1)")
    group.add_argument("--device", default=None,
                       help="TensorFlow device: cpu, gpu, or e.g. /GPU:1 (default: TensorFlow's choice)")
    group.add_argument("--no-xla", dest="xla", action="store_false",
                       help="do not compile the model with XLA (faster start, slower run)")
    group.add_argument("--downmix", action="store_true",
                       help="mix inputs with more than two channels down to mono (default: error)")


def _make_separator(args):
    """Loads the model and builds a Separator from the shared inference options."""
    import tensorflow as tf

    from tf_metatasnet.checkpoints.saving import load_model
    from tf_metatasnet.inference.separator import Separator

    if getattr(args, "jobs", None):
        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.jobs)
        except RuntimeError:  # TensorFlow already started in this process (e.g. called from Python)
            print("metatasnet: --jobs ignored, TensorFlow is already running in this process",
                  file=sys.stderr)
    device = {"cpu": "/CPU:0", "gpu": "/GPU:0"}.get((args.device or "").lower(), args.device)
    if device and "GPU" in device.upper() and not tf.config.list_physical_devices("GPU"):
        raise ValueError(f"--device {args.device}: TensorFlow sees no GPU on this machine")
    options = dict(chunk_seconds=args.chunk_seconds, context_seconds=args.context_seconds,
                   overlap_seconds=args.overlap_seconds, batch_size=args.batch_size, downmix=args.downmix)
    if getattr(args, "server", None):
        from tf_metatasnet.inference.backends.serving import serving_separator

        return serving_separator(args.server, **options)
    if args.model:
        model = args.model
    else:
        from tf_metatasnet.assets import default_model_path

        model = default_model_path()
    return Separator(load_model(model), jit_compile=args.xla, device=device, **options)


def _separate(args) -> int:
    from tqdm import tqdm

    from tf_metatasnet.audio import AudioError
    from tf_metatasnet.inference.separator import SeparationError

    separator = _make_separator(args)
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
            print(f"metatasnet separate: error: {error}", file=sys.stderr)
            failed += 1
            continue
        bar.close()
        print(f"{path}: wrote {', '.join(written)}")
    if failed:
        print(f"metatasnet separate: {failed} of {len(args.files)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _evaluate(args) -> int:
    from tqdm import tqdm

    from tf_metatasnet.data.musdb import load_musdb
    from tf_metatasnet.inference.evaluate import (BASELINE_GAINS, BaselineSeparator, evaluate_tracks, format_table,
                                                  score_table)

    tracks = load_musdb(args.musdb, is_wav=args.is_wav, subset=args.subset, tracks=args.tracks)
    if args.baseline:
        if args.model:
            raise ValueError("give --model or --baseline, not both")
        separator = BaselineSeparator(BASELINE_GAINS[args.baseline])
    else:
        separator = _make_separator(argparse.Namespace(**{**vars(args), "jobs": None}))
    with tqdm(total=len(tracks), unit="track", desc=f"evaluate {args.subset}") as bar:
        store = evaluate_tracks(separator, tracks, output_dir=args.output, jobs=args.jobs,
                                progress=lambda name, done, total: bar.update(1))
    what = f"the baseline '{args.baseline}'" if args.baseline else (args.model or "the bundled default model")
    print(f"{what}: BSS Eval v4 (museval), median over frames, median over {len(tracks)} track(s), dB:")
    print(format_table(score_table(store)))
    print(f"per-track JSON, results.pandas and scores.json in {args.output}")
    return 0


def _demo(args) -> int:
    from tqdm import tqdm

    from tf_metatasnet.demo import format_demo_table, run_demo

    labels = {"loading": "loading", "separating": "separating", "scoring": "scoring (museval)",
              "figure": "spectrograms", "tflite": f"TFLite ({args.quantization})"}
    bars = {}

    def progress(stage, done, total):
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(total=total, desc=f"{labels.get(stage, stage):<18}", leave=True,
                               bar_format="{desc} {percentage:3.0f}%|{bar:20}| [{elapsed}]")
        bar = bars[stage]
        bar.total, bar.n = total, done
        bar.refresh()

    try:
        result = run_demo(args.output, model=args.model, tflite=args.tflite,
                          quantization=args.quantization, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    model = args.model or "the bundled default model"
    print(f"The demo song ({result.seconds:g} s, never seen in training) separated by {model}.")
    print("BSS Eval v4 (museval), median over one-second frames, dB; the last two columns are the "
          "SDR of trivial estimates (every stem = the mixture, or a quarter of it):")
    print(format_demo_table(result))
    print(f"{result.mixture}: the mixture")
    print(f"{os.path.join(result.output_dir, 'stems')}: the separated stems "
          f"({', '.join(os.path.basename(path) for path in result.stems.values())})")
    print(f"{result.figure}: spectrograms, estimate beside ground truth")
    print(f"{result.scores}: the scores")
    if result.tflite:
        print(f"{os.path.dirname(result.tflite[0])}: the TFLite models for the Android demo "
              f"(copy them with their .json into android_demo/app/src/main/assets)")
    return 0


def _make_toy_dataset(args) -> int:
    from tqdm import tqdm

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


def _cmd_prepare(args) -> int:
    from tf_metatasnet.data.cache import PrepareError
    from tf_metatasnet.data.prepare import prepare_musdb

    try:
        rates = [int(rate) for rate in args.rates.split(",") if rate.strip()]
    except ValueError:
        raise PrepareError(f"--rates {args.rates}: not a comma-separated list of integers") from None
    splits = [split.strip() for split in args.splits.split(",") if split.strip()]
    prepared = prepare_musdb(args.musdb, args.output, is_wav=args.is_wav,
                             crop_seconds=args.crop_seconds, rates=rates, splits=splits,
                             keep_resampled=args.keep_resampled, progress=True)  # tqdm bars
    for split, names in prepared.splits.items():
        print(f"{split}: {len(names)} track(s), {prepared.segments[split]} segment(s) of "
              f"{prepared.segment_frames / prepared.rates[0]:g} s")
    print(f"{prepared.cache_dir}: {prepared.disk_bytes() / 2 ** 20:.1f} MiB, sources at "
          f"{', '.join(map(str, prepared.rates))} Hz (TFDS musdb_multirate/{prepared.config_name})")
    print(f"in a training config: data: {{cache_dir: {prepared.cache_dir}}}")
    return 0


def _cmd_train(args) -> int:
    from tf_metatasnet.training.train import load_train_config, train

    overrides = {}
    for name in ("output_dir", "epochs", "steps_per_epoch", "strategy", "precision", "seed",
                 "initial_weights"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
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


def _cmd_export_saved_model(args) -> int:
    from tf_metatasnet.export.saved_model import export_saved_model
    from tf_metatasnet.checkpoints.saving import load_model

    written = export_saved_model(load_model(args.model), args.output, name=args.name,
                                 version=args.version, instruments=args.instrument,
                                 serving_root=args.serving_root)
    for name, folder in written.items():
        print(f"{name}: {folder}")
    print(f"{os.path.join(args.output, 'models.config')}: serves {', '.join(written)}")
    return 0


def _cmd_export_tflite(args) -> int:
    from tf_metatasnet.export.calibration import calibration_windows
    from tf_metatasnet.export.report import format_table, measure, report_song, write_report
    from tf_metatasnet.checkpoints.saving import load_model
    from tf_metatasnet.export.tflite.options import GPTQ_WINDOW_SECONDS, GPTQ_WINDOWS, Chunking
    from tf_metatasnet.export.tflite.export import export_tflite
    from tf_metatasnet.export.tflite.metadata import model_version

    model = load_model(args.model)
    config = model.config
    chunking = Chunking.from_seconds(config.stage_rates[0], config.stride(0), args.chunk_seconds,
                                     args.context_seconds, args.overlap_seconds)
    song = report_song(args.report_audio) if args.report else None   # read first: fail early
    calibration = None
    gptq = args.weight_rounding == "gptq" and {"dynamic", "int8_weights"} & set(args.quantization)
    if "int8" in args.quantization or (gptq and args.calibration):
        source = args.calibration
        if source and len(source) == 1:
            source = source[0]
        # Without int8, only GPTQ's few short statistics windows are cut from them.
        count = args.calibration_windows if "int8" in args.quantization else math.ceil(
            GPTQ_WINDOWS * GPTQ_WINDOW_SECONDS * config.stage_rates[0] / chunking.window)
        calibration = calibration_windows(source, config.stage_rates, chunking.window,
                                          count, stride=config.stride(0))
    paths = export_tflite(model, args.output, args.instrument, args.quantization, chunking,
                          calibration, version=args.model_version or model_version(args.model),
                          progress=print, weight_rounding=args.weight_rounding)
    if args.report:
        audio, rate, described = song
        entries = measure(model, paths, song=(audio, rate), runs=args.runs)
        report = os.path.join(args.output, "export_report.json")
        write_report(entries, report, model=os.path.abspath(args.model), audio=described)
        print(format_table(entries))
        print(f"{report}: written")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from tf_metatasnet.export.tflite.options import (CHUNK_SECONDS, CONTEXT_SECONDS, OVERLAP_SECONDS,
                                                     WEIGHT_ROUNDINGS)

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

    sep = commands.add_parser(
        "separate", help="separate songs into drums, bass, other and vocals",
        description="Separate audio files (wav, flac, ogg, mp3, m4a/aac, ...; any rate; mono or "
                    "stereo) into one file per stem, at the input's rate, length and channels.")
    sep.add_argument("files", nargs="+", help="audio files to separate")
    sep.add_argument("-o", "--output", required=True, help="output folder")
    sep.add_argument("--model", help="a .keras model or an authors' .pt checkpoint "
                                     "(default: the bundled default model)")
    sep.add_argument("--server", default=None,
                     help="separate through TF Serving instead of --model: "
                          "http://host:8501/v1/models/NAME (REST) or grpc://host:8500/NAME")
    sep.add_argument("--stems", nargs="+", choices=SOURCE_NAMES, default=None,
                     help="stems to write (default: all four)")
    sep.add_argument("--two-stems", choices=SOURCE_NAMES, default=None,
                     help="write this stem and the sum of the others as no_STEM (e.g. karaoke: vocals)")
    sep.add_argument("--format", choices=("wav", "flac", "mp3"), default="wav",
                     help="output format (default: wav, 32-bit float)")
    sep.add_argument("--bitrate", type=int, default=320, help="mp3 bitrate in kbit/s (default: 320)")
    sep.add_argument("--filename", default="{track}/{stem}.{ext}",
                     help="output name template with {track}, {stem}, {ext} (default: {track}/{stem}.{ext})")
    sep.add_argument("--jobs", type=int, default=None,
                     help="CPU threads TensorFlow may use (default: all cores)")
    _add_inference_options(sep)
    sep.set_defaults(run=_separate)

    ev = commands.add_parser(
        "evaluate", help="separate and score MUSDB18 with museval (the paper's table)",
        description="Separate every track of a MUSDB18 subset and score it with museval "
                    "(BSS Eval v4): writes museval's per-track JSON and prints the paper's table "
                    "(median over frames, median over tracks).")
    ev.add_argument("--musdb", required=True, help="root of MUSDB18 (or MUSDB18-HQ with --is-wav)")
    ev.add_argument("--is-wav", action="store_true", help="the MUSDB18-HQ layout (wav folders)")
    ev.add_argument("--model", default=None,
                    help="a .keras model or an authors' .pt checkpoint (default: the bundled default model)")
    ev.add_argument("--baseline", choices=("mixture", "mixture/4"), default=None,
                    help="score a trivial estimate instead of a model: every stem = the mixture, "
                         "or a quarter of it (the floor any model must beat)")
    ev.add_argument("--subset", choices=("train", "test"), default="test", help="default: test")
    ev.add_argument("--tracks", nargs="+", default=None, help="only these tracks (by name)")
    ev.add_argument("-o", "--output", default="eval_results",
                    help="folder for the JSON and the table (default: eval_results)")
    ev.add_argument("--jobs", type=int, default=1,
                    help="processes scoring tracks in parallel with separation (default: 1)")
    _add_inference_options(ev)
    ev.set_defaults(run=_evaluate)

    demo = commands.add_parser(
        "demo", help="separate the bundled demo song, score it, draw it, export for Android",
        description="Separate a short song shipped with the package (never seen in training) "
                    "with the bundled default model (or --model), and write to the output folder "
                    "the mixture, the four separated stems, a figure of their spectrograms beside "
                    "the true stems', scores.json (BSS Eval v4) and the per-instrument TFLite "
                    "models of the Android demo. Prints the scores. Needs no network.")
    demo.add_argument("-o", "--output", default="metatasnet-demo",
                      help="output folder (default: metatasnet-demo)")
    demo.add_argument("--model", default=None,
                      help="a .keras model or an authors' .pt checkpoint (default: the bundled default model)")
    demo.add_argument("--no-tflite", dest="tflite", action="store_false",
                      help="skip the TFLite export (the slowest step)")
    demo.add_argument("--quantization", choices=("float32", "float16", "dynamic", "int8_weights"),
                      default="dynamic",
                      help="TFLite variant (default: dynamic; int8 needs calibration: "
                           "metatasnet export tflite)")
    demo.set_defaults(run=_demo)

    toy = commands.add_parser(
        "make-toy-dataset", help="write a synthetic MUSDB18 (music-like stems) to try the pipeline",
        description="Write synthetic songs with true stems (drums, bass line, chords, a sung-like "
                    "melody) in the MUSDB18-HQ (wav) or MUSDB18 (.stem.mp4) layout, readable by musdb.")
    toy.add_argument("-o", "--output", required=True, help="dataset root")
    toy.add_argument("--tracks", type=int, default=8, help="training tracks (default: 8)")
    toy.add_argument("--test-tracks", type=int, default=None, help="test tracks (default: half of --tracks)")
    toy.add_argument("--seconds", type=float, default=20.0, help="length of each track (default: 20)")
    toy.add_argument("--format", choices=("wav", "stem"), default="wav", help="default: wav (MUSDB18-HQ)")
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--renderer", choices=("numpy", "fluidsynth"), default="numpy",
                     help="numpy: synthetic test signals, no dependency (default); fluidsynth: generated "
                          "MIDI rendered with General MIDI instruments (apt-get install fluidsynth "
                          "fluid-soundfont-gm)")
    toy.add_argument("--soundfont", default=None,
                     help="the .sf2 of --renderer fluidsynth (default: the installed FluidR3_GM.sf2)")
    toy.set_defaults(run=_make_toy_dataset)

    prep = commands.add_parser(
        "prepare", help="resample MUSDB18 once and store it as a TFDS dataset for training",
        description="Resample every track of MUSDB18 (or MUSDB18-HQ) to the model's rates with "
                    "soxr and build the musdb_multirate TensorFlow Datasets dataset in the "
                    "cache folder (fixed-length int16 segments, aligned across rates). "
                    "Re-running resumes where an interrupted run stopped.")
    prep.add_argument("--musdb", required=True, help="root of MUSDB18 (or MUSDB18-HQ with --is-wav)")
    prep.add_argument("--is-wav", action="store_true", help="the MUSDB18-HQ layout (wav folders)")
    prep.add_argument("-o", "--output", required=True, help="cache folder")
    prep.add_argument("--crop-seconds", type=float, default=8.0,
                      help="training crop; segments are twice as long (default: 8)")
    prep.add_argument("--splits", default="train,valid,test",
                      help="musdb splits to prepare (default: train,valid,test)")
    prep.add_argument("--rates", default="8000,16000,32000",
                      help="sample rates, each a multiple of the first (default: 8000,16000,32000)")
    prep.add_argument("--keep-resampled", action="store_true",
                      help="keep CACHE_DIR/resampled (the per-track .npy files) after the build")
    prep.set_defaults(run=_cmd_prepare)

    tr = commands.add_parser(
        "train", help="train a model from a prepared MUSDB18 cache (keras fit)",
        description="Train Meta-TasNet with the recipe in a YAML config (training/configs/"
                    "paper.yaml is the paper's). Writes best.keras, last.keras, history.csv, "
                    "TensorBoard logs and resume checkpoints to the config's output_dir.")
    tr.add_argument("--config", required=True, help="YAML training config")
    tr.add_argument("--resume", action="store_true",
                    help="continue the run in output_dir from its last checkpoint")
    tr.add_argument("--cache-dir", help="prepared cache (overrides data.cache_dir)")
    tr.add_argument("--output-dir", help="run folder (overrides output_dir)")
    tr.add_argument("--epochs", type=int, help="total epochs (overrides epochs)")
    tr.add_argument("--steps-per-epoch", type=int, help="overrides steps_per_epoch")
    tr.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"),
                    help="one device, every GPU of this machine, or several machines (TF_CONFIG)")
    tr.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"),
                    help="mixed_float16 on GPUs (overrides precision)")
    tr.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                    help="compile the training step with XLA (overrides jit_compile)")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--initial-weights", metavar="MODEL",
                    help="fine-tune: start from this .keras model's (or the authors' .pt "
                         "checkpoint's) weights (overrides initial_weights)")
    tr.set_defaults(run=_cmd_train)

    export = commands.add_parser(
        "export", help="export for TF Serving (SavedModel) or phones (TFLite per instrument)")
    formats = export.add_subparsers(dest="format", required=True)
    saved = formats.add_parser(
        "saved-model", help="SavedModels in TF Serving's layout and a models.config",
        description="Write BASE_DIR/NAME/VERSION (all stems) and BASE_DIR/NAME_INSTRUMENT/VERSION "
                    "(one instrument, generator folded) SavedModels whose serving_default takes "
                    "mixture_8000/16000/32000 (normalised, resampled outside) and returns one "
                    "output per stem, plus BASE_DIR/models.config serving them all.")
    saved.add_argument("--model", required=True, help="a .keras model or an authors' .pt checkpoint")
    saved.add_argument("-o", "--output", required=True, help="TF Serving's model base folder")
    saved.add_argument("--name", default="metatasnet", help="model name (default: metatasnet)")
    saved.add_argument("--version", type=int, default=1, help="version folder (default: 1)")
    saved.add_argument("--instrument", nargs="*", choices=SOURCE_NAMES, default=None,
                       help="per-instrument models to write (default: all four; none with no value)")
    saved.add_argument("--serving-root", default="/models",
                       help="where the server sees BASE_DIR, for models.config (default: /models)")
    saved.set_defaults(run=_cmd_export_saved_model)

    lite = formats.add_parser(
        "tflite", help="one TFLite model per instrument (builtin ops only) with metadata JSON",
        description="Write INSTRUMENT_QUANTIZATION.tflite and .json per instrument and "
                    "quantization (generator folded, fixed window, TFLite builtin ops only), "
                    "then measure them into DIR/export_report.json and print the table.")
    lite.add_argument("--model", required=True, help="a .keras model or an authors' .pt checkpoint")
    lite.add_argument("-o", "--output", required=True, help="output folder")
    lite.add_argument("--instrument", nargs="+", choices=SOURCE_NAMES, default=None,
                      help="instruments (default: all four)")
    lite.add_argument("--quantization", nargs="+",
                      default=["float32", "float16", "dynamic", "int8_weights", "int8"],
                      choices=("float32", "float16", "dynamic", "int8_weights", "int8"),
                      help="variants to write (default: all five)")
    lite.add_argument("--chunk-seconds", type=_positive_float, default=CHUNK_SECONDS,
                      help=f"kept audio per window (default: {CHUNK_SECONDS:g})")
    lite.add_argument("--context-seconds", type=_positive_float, default=CONTEXT_SECONDS,
                      help=f"context on each side (default: {CONTEXT_SECONDS:g}, the paper "
                           "model's receptive field)")
    lite.add_argument("--overlap-seconds", type=_positive_float, default=OVERLAP_SECONDS,
                      help=f"crossfade between windows (default: {OVERLAP_SECONDS:g})")
    lite.add_argument("--calibration", nargs="+", default=None,
                      help="representative audio, a prepared cache folder or audio files: int8's "
                           "calibration and the statistics of GPTQ's weight rounding (default: "
                           "generated music)")
    lite.add_argument("--calibration-windows", type=int, default=16,
                      help="windows used for int8 calibration (default: 16)")
    lite.add_argument("--weight-rounding", choices=WEIGHT_ROUNDINGS, default="gptq",
                      help="how dynamic and int8_weights round their matmul weights to int8: gptq "
                           "(from the layers' inputs on representative audio, default) or nearest")
    lite.add_argument("--model-version", default=None,
                      help="recorded in the metadata (default: sha256 of the model file, 12 digits)")
    lite.add_argument("--no-report", dest="report", action="store_false",
                      help="skip the measurements (export_report.json)")
    lite.add_argument("--report-audio", metavar="FILE",
                      help="the song the report separates to measure SI-SDR against the Keras "
                           "model (default: the bundled demo song, repeated)")
    lite.add_argument("--runs", type=int, default=3, help="timed runs per latency (default: 3)")
    lite.set_defaults(run=_cmd_export_tflite)
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
