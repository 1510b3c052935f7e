"""Seconds per training step of Meta-TasNet, and peak memory, against the authors' model.

One training step is ``MetaTasNet.train_step`` in a ``tf.function`` (``--xla``:
``jit_compile=True``; default ``--no-xla``, the trainer's default): the forward pass of every stage, the paper's loss (SI-SNR of every
stage, reconstruction, dissimilarity and similarity terms, ``compute_objective``), the
backward pass and the Ranger update of ``tf_metatasnet.training.optimizers.build_optimizer("ranger")``
(the paper's: Ranger, cosine warm restarts, global clipnorm 5), float32, as ``metatasnet
train`` runs it: the masking TCN recomputed in the backward pass (``recompute_tcn``, the
default; ``--no-recompute`` keeps every activation instead), the C heap's free memory released
after every step (``tf_metatasnet.training.memory``). The input is
random, ``--batch`` x ``--seconds``: per stage a mixture ``(batch, samples_i)`` that is the
sum of 4 random sources ``(batch, 4, samples_i)``, and masks all ones. ``--warmup`` steps
(the first traces and compiles) are not timed; the median of ``--steps`` timed steps is
reported (each ends by fetching the loss, so it is complete; a warning is printed if the
loss is not finite), with the process's peak RSS
(``getrusage`` ``ru_maxrss``). Every measurement runs in a fresh process, ``--runs`` times
(median of the runs' medians, largest peak RSS).

With ``--torch``, the same in another fresh process for the authors' model as
re-implemented in ``tests/support/official_reference.py``, randomly initialised: its own
``forward(mixes, seps, masks)``, which is the authors' training loss (the same terms and
weights as above), ``loss.backward()``, ``torch.nn.utils.clip_grad_norm_(parameters, 5)``
and a ``torch.optim.Adam`` step (lr 1e-3; the authors' Ranger is not part of the
reference, Adam's per-parameter update costs about the same, without Ranger's lookahead
every 6 steps), float32, ``torch.get_num_threads()`` threads.

    python benchmarks/train_step.py --preset paper --batch 2 --seconds 2 --steps 5 --torch
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
from common import run_measurement  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NUM_SOURCES = 4
TARGET_SECONDS = 13.0  # at most half the authors' 26-33 s per step
TARGET_RSS_MIB = 6.3e9 / 2**20  # the authors' 6.3 GB peak RSS, in MiB
TARGET_TEXT = ("The authors' PyTorch code needs about 26–33 s per such step here and 6.3 GB peak RSS. "
               "Target: at most half the time (≤ 13 s), less memory")


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
    from tf_metatasnet.training.memory import release_free_memory
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


def torch_step(args):
    """``(step function, threads)``: one training step of the authors' model (PyTorch)."""
    import torch

    sys.path.insert(0, str(ROOT / "tests" / "support"))
    from official_reference import OfficialMetaTasNet, official_args_for

    from tf_metatasnet.presets import get_config

    config = get_config(args.preset)
    torch.manual_seed(0)
    model = OfficialMetaTasNet(official_args_for(config)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mixtures, sources, masks = random_batch(config, args.batch, args.seconds)
    mixes = [torch.from_numpy(m)[:, None] for m in mixtures]  # (batch, 1, T_i)
    seps = [torch.from_numpy(s)[:, :, None] for s in sources]  # (batch, 4, 1, T_i)
    present = [torch.from_numpy(masks)[..., None]] * config.stages_num  # (batch, 4, 1)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model(mixes, seps, present)
        loss.sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return float(loss.detach().sum())

    return step, torch.get_num_threads()


def worker(args) -> dict:
    """Times one implementation in this process."""
    step, threads = (torch_step if args.impl == "torch" else tensorflow_step)(args)
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


def label(impl: str, xla: bool, recompute: bool = True) -> str:
    if impl == "torch":
        return "authors' model (PyTorch)"
    return f"tf_metatasnet ({'XLA' if xla else 'no XLA'}{'' if recompute else ', no recompute'})"


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
    parser.add_argument("--recompute", action=argparse.BooleanOptionalAction, default=True,
                        help="recompute the masking TCN's activations in the backward pass "
                             "(default, as the model's recompute_tcn)")
    parser.add_argument("--torch", action="store_true",
                        help="also time the authors' model (tests/support/official_reference.py)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--impl", choices=("tf", "torch"), help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.batch < 1 or args.seconds <= 0 or args.steps < 1 or args.warmup < 0 or args.runs < 1:
        parser.error("--batch, --seconds, --steps and --runs must be positive, --warmup >= 0")
    if args.impl:
        print(json.dumps(worker(args)))
        return 0

    command_line = shlex.join(["python", "benchmarks/train_step.py", *sys.argv[1:]])
    impls = ["tf"]
    if args.torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch: not installed, the authors' model is skipped (pip install 'tf-metatasnet[torch]')")
        else:
            impls.append("torch")
    print(f"machine: {os.cpu_count()} CPU cores; preset {args.preset}, batch {args.batch} x "
          f"{args.seconds:g} s, random data, float32; {args.warmup} warm-up + {args.steps} timed "
          f"steps, {args.runs} run(s)", flush=True)
    results = {}
    for impl in impls:
        runs = []
        for _ in range(args.runs):
            command = [__file__, "--impl", impl, "--preset", args.preset,
                       "--batch", str(args.batch), "--seconds", str(args.seconds),
                       "--steps", str(args.steps), "--warmup", str(args.warmup),
                       "--xla" if args.xla else "--no-xla",
                       "--recompute" if args.recompute else "--no-recompute"]
            r = run_measurement(command)
            runs.append(r)
            print(f"{label(impl, args.xla, args.recompute)}: median {r['median_s']:.3f} s/step of "
                  f"{', '.join(f'{t:.3f}' for t in r['times_s'])}  warm-up "
                  f"{', '.join(f'{t:.1f}' for t in r['warmup_s'])} s  last loss {r['loss']:.2f}  "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB  ({r['threads']} threads)", flush=True)
            if not r["finite"]:
                print(f"  WARNING: the loss is not finite ({r['loss']}): this step computes NaN/inf, "
                      f"its time may not be representative", flush=True)
        results[impl] = {"median_s": statistics.median(r["median_s"] for r in runs),
                         "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs": runs}

    print(f"\ncommand: {command_line}")
    print("\n| implementation | s per step (median) | peak RSS |")
    print("|---|---|---|")
    for impl, r in results.items():
        print(f"| {label(impl, args.xla, args.recompute)} | {r['median_s']:.3f} s | {r['peak_rss_mib']:.0f} MiB |")
    print(f"\n{TARGET_TEXT}.")
    tf_result = results["tf"]
    seconds, rss = tf_result["median_s"], tf_result["peak_rss_mib"]
    print(f"  tf_metatasnet: {seconds:.3f} s/step "
          f"{'meets' if seconds <= TARGET_SECONDS else 'misses'} <= {TARGET_SECONDS:g} s; peak RSS "
          f"{rss:.0f} MiB {'meets' if rss < TARGET_RSS_MIB else 'misses'} < {TARGET_RSS_MIB:.0f} MiB "
          f"(6.3 GB)")
    if "torch" in results:
        base = results["torch"]
        print(f"  against the authors' model measured here: {seconds / base['median_s']:.2f}x its time "
              f"({'meets' if seconds <= base['median_s'] / 2 else 'misses'} <= 0.5x), "
              f"{rss / base['peak_rss_mib']:.2f}x its peak RSS "
              f"({'meets' if rss < base['peak_rss_mib'] else 'misses'} < 1x)")
    if args.preset != "paper" or args.batch != 2 or args.seconds != 2:
        print(f"  (the targets are for the paper preset at this script's defaults, batch 2 x 2 s; "
              f"this was {args.preset} at batch {args.batch} x {args.seconds:g} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command_line, "preset": args.preset,
                                               "batch": args.batch, "seconds": args.seconds,
                                               "xla": args.xla, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
