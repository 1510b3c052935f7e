"""Where the first training step's time goes: import, build, trace, first call, warm calls.

Builds a model of ``PRESET`` (``key=value`` overrides, e.g. ``N=32 B=16 H=16 num_mels=16``
for a proxy with the paper's structure and small channels), compiles it with the trainer's
optimizer (Ranger) and traces ``train_step`` in a ``tf.function`` on a random batch of 2 x 2 s
(masks all ones), then calls it. Prints one JSON line:

- ``build_s``: building the model and the optimizer's variables;
- ``trace_s``: Python tracing of the step (forward, loss, gradient, optimizer update);
- ``first_call_s``: the first call: TensorFlow's graph optimisation (Grappler; XLA with
  ``--xla``), the executor's set-up and one step;
- ``warm_s``: the next calls;
- ``graph_ops``: the operations of the traced graph.

``--no-grappler`` turns TensorFlow's graph optimiser off, ``--off-PASS`` one of its passes
(``memory_optimization``, ``remapping``, ...), ``--recompute`` recomputes the TCN's
activations in the backward pass instead of keeping them (``recompute_tcn``; off by default,
as in the model's config).

    python benchmarks/first_step.py paper
    python benchmarks/first_step.py paper N=32 B=16 H=16 num_mels=16 stages_num=1 --no-grappler
"""
import json
import os
import sys
import time

start = time.perf_counter()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_metatasnet as tm  # noqa: E402
from tf_metatasnet.training.optimizers import build_optimizer  # noqa: E402


def main() -> None:
    import_s = time.perf_counter() - start
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    if not args:
        sys.exit(__doc__)
    overrides = {k: int(v) if v.isdigit() else v for k, v in (a.split("=", 1) for a in args[1:])}
    if "--no-grappler" in flags:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    for name in [f[len("--off-"):] for f in flags if f.startswith("--off-")]:
        tf.config.optimizer.set_experimental_options({name: False})
    xla = "--xla" in flags
    t = time.perf_counter()
    model = tm.build_model(args[0], recompute_tcn="--recompute" in flags, **overrides)
    model.compile(optimizer=build_optimizer("ranger"), jit_compile=xla)
    model.optimizer.build(model.trainable_variables)
    config = model.config
    frames = int(2 * config.sampling_rate) // config.W * config.W
    rng = np.random.default_rng(0)
    sources = [rng.standard_normal((2, 4, frames * 2 ** i)).astype(np.float32) for i in range(config.stages_num)]
    data = (tuple(tf.constant(s.sum(1)) for s in sources), tuple(tf.constant(s) for s in sources), tf.ones((2, 4)))
    build_s = time.perf_counter() - t
    step = tf.function(model.train_step, jit_compile=xla)
    t = time.perf_counter()
    graph = step.get_concrete_function(data).graph
    trace_s = time.perf_counter() - t
    t = time.perf_counter()
    float(step(data)["loss"])
    first_s = time.perf_counter() - t
    warm = []
    for _ in range(int(os.environ.get("WARM", 2))):
        t = time.perf_counter()
        float(step(data)["loss"])
        warm.append(round(time.perf_counter() - t, 2))
    print(json.dumps({"preset": args[0], "overrides": overrides, "flags": sorted(flags),
                      "variables": len(model.trainable_variables), "import_s": round(import_s, 1),
                      "build_s": round(build_s, 1), "trace_s": round(trace_s, 1),
                      "first_call_s": round(first_s, 1), "warm_s": warm,
                      "graph_ops": len(graph.get_operations())}))


if __name__ == "__main__":
    main()
