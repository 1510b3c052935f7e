"""``metatasnet prepare``: MUSDB18 resampled once into a TFDS cache for training."""

from __future__ import annotations

from tf_metatasnet.data.splits import SPLITS


def register(commands) -> None:
    parser = commands.add_parser(
        "prepare", help="resample MUSDB18 once and store it as a TFDS dataset for training",
        description="Resample every track of MUSDB18 (or MUSDB18-HQ) to the model's rates with "
                    "soxr and build the musdb_multirate TensorFlow Datasets dataset in the "
                    "cache folder (fixed-length int16 segments, aligned across rates). "
                    "Re-running resumes where an interrupted run stopped.")
    parser.add_argument("--musdb", required=True, help="root of MUSDB18 (or MUSDB18-HQ with --is-wav)")
    parser.add_argument("--is-wav", action="store_true", help="the MUSDB18-HQ layout (wav folders)")
    parser.add_argument("-o", "--output", required=True, help="cache folder")
    parser.add_argument("--crop-seconds", type=float, default=8.0,
                        help="training crop; segments are twice as long (default: 8)")
    parser.add_argument("--splits", default=",".join(SPLITS),
                        help=f"musdb splits to prepare (default: {','.join(SPLITS)})")
    parser.add_argument("--rates", default="8000,16000,32000",
                        help="sample rates, each a multiple of the first (default: 8000,16000,32000)")
    parser.add_argument("--keep-resampled", action="store_true",
                        help="keep CACHE_DIR/resampled (the per-track .npy files) after the build")
    parser.set_defaults(run=run)


def run(args) -> int:
    # Imported here, not at the top: TensorFlow loads only when the command runs.
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
