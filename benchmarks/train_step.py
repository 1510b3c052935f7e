"""Seconds per training step of Meta-TasNet, and peak memory, against the authors' model.

One training step is ``MetaTasNet.train_step`` in a ``tf.function`` (``--xla``:
``jit_compile=True``; default ``--no-xla``, the trainer's default): the forward pass of every stage, the paper's loss (SI-SNR of every
stage, reconstruction, dissimilarity and similarity terms, ``compute_objective``), the
backward pass and the Ranger update of ``tf_metatasnet.training.optimizers.build_optimizer("ranger")``
(the paper's: Ranger, cosine warm restarts, global clipnorm 5), float32, as ``metatasnet
train`` runs it: the masking TCN's activations kept for the backward pass (the model's
default; ``--recompute`` recomputes them instead, ``recompute_tcn``), the C heap's free memory released
after every step (``tf_metatasnet.memory``). The input is
random, ``--batch`` x ``--seconds``: per stage a mixture ``(batch, samples_i)`` that is the
sum of 4 random sources ``(batch, 4, samples_i)``, and masks all ones. ``--warmup`` steps
(the first traces and compiles) are not timed; the median of ``--steps`` timed steps is
reported (each ends by fetching the loss, so it is complete; a warning is printed if the
loss is not finite), with the process's peak RSS
(``getrusage`` ``ru_maxrss``). Every measurement runs in a fresh process, ``--runs`` times
(median of the runs' medians, largest peak RSS).

The authors' side is their own code, run as it is: ``train_step_reference.py`` from the
folder ``--reference`` (default ``../shared/reference`` beside the clone, or
``$METATASNET_REFERENCE``), in a fresh process of the same run, with the same batch: their
``MultiTasNet`` forward pass with their loss, ``backward``, ``clip_grad_norm_(5)`` and their
Ranger, float32, 2 threads, median of 3 timed steps after one untimed. Its peak RSS is taken
from the same process. It times the paper configuration only.

    python benchmarks/train_step.py --preset paper --batch 2 --seconds 2 --runs 3
    python benchmarks/train_step.py --preset paper --xla
    python benchmarks/train_step.py --preset tiny --steps 3    # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (DEFAULT_REFERENCE, PAPER_GFLOP_PER_SECOND, PEAK_GFLOPS, measure_peak_gflops, percent_of_peak,  # noqa: E402
                    reference_script, run_child, run_measurement)

ROOT = Path(__file__).resolve().parents[1]
NUM_SOURCES = 4
TARGET_RATIO = 0.5         # at most half the authors' step time
TARGET_FIRST_STEP_S = 60.0  # the first step (tracing, optimisation, compilation) within a minute
TRAIN_FLOP_FACTOR = 3.0    # a training step costs about 3x the forward pass (forward + backward)


def random_batch(config, batch: int, seconds: float, seed: int = 0):
    """Per stage: mixtures ``(batch, T_i)``, sources ``(batch, 4, T_i)``; masks ``(batch, 4)`` ones.

    ``T_0`` is ``seconds`` at the base rate rounded down to a multiple of the stride ``W``.
    """
    rng = np.random.default_rng(seed)
    frames = max(1, int(seconds * config.sampling_rate) // config.W) * config.W
    sources = [rng.standard_normal((batch, NUM_SOURCES, frames * 2 ** i)).astype(np.float32)
               for i in range(config.stages_num)]
    mixtures = [s.sum(axis=1) for s in sources]
    masks = np.ones((batch, NUM_SOURCES), np.float32)
    return mixtures, sources, masks


def tensorflow_step(args):
    """``(step function, threads)``: one compiled ``train_step`` on a fixed random batch."""
    import tensorflow as tf

    import tf_metatasnet as tm
    from tf_metatasnet.memory import release_free_memory
    from tf_metatasnet.training.optimizers import build_optimizer

    model = tm.build_model(args.preset, recompute_tcn=args.recompute)
    model.compile(optimizer=build_optimizer("ranger"), jit_compile=args.xla)
    model.optimizer.build(model.trainable_variables)
    mixtures, sources, masks = random_batch(model.config, args.batch, args.seconds)
    data = (tuple(tf.constant(m) for m in mixtures), tuple(tf.constant(s) for s in sources),
            tf.constant(masks))
    compiled = tf.function(model.train_step, jit_compile=args.xla)

    def step():
        loss = float(compiled(data)["loss"].numpy())
        release_free_memory()  # as metatasnet train does after every batch
        return loss

    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    return step, threads


def worker(args) -> dict:
    """Times one implementation in this process."""
    step, threads = tensorflow_step(args)
    warmup = []
    for _ in range(args.warmup):
        start = time.perf_counter()
        loss = step()
        warmup.append(time.perf_counter() - start)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    return {"impl": args.impl, "warmup_s": warmup, "times_s": times, "median_s": float(np.median(times)),
            "loss": loss, "finite": bool(np.isfinite(loss)), "threads": threads,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def label(impl: str, xla: bool, recompute: bool = False) -> str:
    if impl == "authors":
        return "authors' code (PyTorch, train_step_reference.py)"
    return f"tf_metatasnet ({'XLA' if xla else 'no XLA'}{', recompute' if recompute else ''})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--batch", type=int, default=2, help="examples per step (default 2)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of audio per example (default 2)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--runs", type=int, default=1, help="fresh processes per implementation (default 1)")
    parser.add_argument("--xla", action=argparse.BooleanOptionalAction, default=False,
                        help="compile the TensorFlow step with XLA (default: --no-xla, as "
                             "TrainConfig.jit_compile)")
    parser.add_argument("--recompute", action=argparse.BooleanOptionalAction, default=False,
                        help="recompute the masking TCN's activations in the backward pass "
                             "(default: --no-recompute, as the model's recompute_tcn)")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                        help="the folder of the authors' timing scripts (default: %(default)s)")
    parser.add_argument("--no-reference", action="store_true", help="time tf_metatasnet only")
    parser.add_argument("--peak-gflops", type=float, default=PEAK_GFLOPS,
                        help="the CPU's float32 peak for the percentages (default: measured)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--impl", choices=("tf",), help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.batch < 1 or args.seconds <= 0 or args.steps < 1 or args.warmup < 0 or args.runs < 1:
        parser.error("--batch, --seconds, --steps and --runs must be positive, --warmup >= 0")
    if args.impl:
        print(json.dumps(worker(args)))
        return 0

    if args.peak_gflops is None:
        args.peak_gflops = measure_peak_gflops()
        print(f"float32 peak measured here (best 2048x2048 TensorFlow matmul): {args.peak_gflops:.0f} GFLOP/s")
    command_line = shlex.join(["python", "benchmarks/train_step.py", *sys.argv[1:]])
    script = None
    if not args.no_reference:
        script = reference_script(args.reference, "train_step_reference.py")
        if script is None:
            print(f"authors' code: {args.reference / 'train_step_reference.py'} not found "
                  "(--reference DIR); timing tf_metatasnet only")
        elif args.preset != "paper":
            print("authors' code: their script times the paper configuration only; skipped")
            script = None
    print(f"machine: {os.cpu_count()} CPU cores; preset {args.preset}, batch {args.batch} x "
          f"{args.seconds:g} s, random data, float32; {args.warmup} warm-up + {args.steps} timed "
          f"steps, {args.runs} run(s)", flush=True)
    results = {}
    runs = []
    for _ in range(args.runs):
        command = [__file__, "--impl", "tf", "--preset", args.preset,
                   "--batch", str(args.batch), "--seconds", str(args.seconds),
                   "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--xla" if args.xla else "--no-xla",
                   "--recompute" if args.recompute else "--no-recompute"]
        r = run_measurement(command)
        runs.append(r)
        print(f"{label('tf', args.xla, args.recompute)}: median {r['median_s']:.3f} s/step of "
              f"{', '.join(f'{t:.3f}' for t in r['times_s'])}  first steps "
              f"{', '.join(f'{t:.1f}' for t in r['warmup_s'])} s  last loss {r['loss']:.2f}  "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB  ({r['threads']} threads)", flush=True)
        if not r["finite"]:
            print(f"  WARNING: the loss is not finite ({r['loss']}): this step computes NaN/inf, "
                  f"its time may not be representative", flush=True)
        if script is not None:  # the authors' step, in the same run, right after ours
            wall, peak, out = run_child([sys.executable, str(script), str(args.batch), str(args.seconds)])
            seconds = float(out.strip().splitlines()[-1])
            results.setdefault("authors", {"runs": []})["runs"].append(
                {"median_s": seconds, "peak_rss_mib": peak, "wall_s": wall})
            print(f"{label('authors', False)}: median {seconds:.3f} s/step  peak RSS {peak:.0f} MiB  "
                  f"(process {wall:.0f} s)", flush=True)
    results["tf"] = {"median_s": statistics.median(r["median_s"] for r in runs),
                     "first_step_s": statistics.median(r["warmup_s"][0] for r in runs) if args.warmup else None,
                     "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs": runs}
    if "authors" in results:
        authors = results["authors"]
        authors["median_s"] = statistics.median(r["median_s"] for r in authors["runs"])
        authors["peak_rss_mib"] = max(r["peak_rss_mib"] for r in authors["runs"])

    print(f"\ncommand: {command_line}")
    gflop = TRAIN_FLOP_FACTOR * PAPER_GFLOP_PER_SECOND * args.batch * args.seconds
    print(f"\n| implementation | s per step (median of {args.runs}) | % of {args.peak_gflops:.0f} GFLOP/s peak "
          "| peak RSS |")
    print("|---|---|---|---|")
    for impl, r in reversed(list(results.items())):
        share = (f"{percent_of_peak(gflop, r['median_s'], args.peak_gflops):.0f} %"
                 if args.preset == "paper" else "-")
        print(f"| {label(impl, args.xla, args.recompute)} | {r['median_s']:.3f} s | {share} | "
              f"{r['peak_rss_mib']:.0f} MiB |")
    if args.preset == "paper":
        print(f"(a paper step of batch {args.batch} x {args.seconds:g} s is about {gflop:.0f} GFLOP: "
              f"{TRAIN_FLOP_FACTOR:g} x {PAPER_GFLOP_PER_SECOND} GFLOP per second of audio)")
    ours = results["tf"]
    if ours["first_step_s"] is not None:
        first = ours["first_step_s"]
        print(f"\nfirst step (tracing, graph optimisation, compilation and the step): {first:.1f} s; "
              f"goal <= {TARGET_FIRST_STEP_S:g} s: {'met' if first <= TARGET_FIRST_STEP_S else 'missed'}")
    if "authors" in results:
        base = results["authors"]
        ratio, memory = ours["median_s"] / base["median_s"], ours["peak_rss_mib"] / base["peak_rss_mib"]
        print(f"step time: {ratio:.2f}x the authors'; goal <= {TARGET_RATIO:g}x: "
              f"{'met' if ratio <= TARGET_RATIO else 'missed'}")
        print(f"peak RSS: {memory:.2f}x the authors'; goal <= 1x: {'met' if memory <= 1 else 'missed'}")
    if args.preset != "paper" or args.batch != 2 or args.seconds != 2:
        print(f"(the goals are for the paper preset at batch 2 x 2 s; this was {args.preset} at batch "
              f"{args.batch} x {args.seconds:g} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command_line, "preset": args.preset,
                                               "batch": args.batch, "seconds": args.seconds,
                                               "xla": args.xla, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
