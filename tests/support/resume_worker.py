"""Trains the tiny model for the exact-resume test, optionally killing itself (SIGKILL).

    python resume_worker.py CACHE RUN OUT.npz [--resume] [--kill-at-step N] [--kill-after-epoch E]

``--kill-at-step N`` sends SIGKILL to this process after its N-th training step of the run
(counting from the run's start); ``--kill-after-epoch E`` right after epoch E's checkpoint
was committed. Without a kill the final weights (every variable, optimizer included) go to
OUT.npz.
"""

import argparse
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

EPOCHS, STEPS = 3, 4


def make_config(cache, run):
    from tf_metatasnet.training.config import TrainConfig

    return TrainConfig.from_dict({
        "model": "tiny", "model_overrides": {"stages_num": 2, "dropout": 0.1},   # dropout: random states too
        "data": {"cache_dir": str(cache), "batch_size": 2, "crop_seconds": 0.5, "shuffle_buffer": 4,
                 "statistics_examples": 4, "validation_batch_size": 4, "seed": 2},
        "optimizer": {"learning_rate": 3e-3, "restart_period": 6, "lookahead_steps": 3},
        "output_dir": str(run), "epochs": EPOCHS, "steps_per_epoch": STEPS, "validation_steps": 1,
        "seed": 2,
    })


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cache")
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-at-step", type=int)
    parser.add_argument("--kill-after-epoch", type=int)
    args = parser.parse_args()

    import keras

    from tf_metatasnet.training.loop import train

    class Kill(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == args.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)

        def on_epoch_end(self, epoch, logs=None):   # after the Checkpointer's commit
            if epoch + 1 == args.kill_after_epoch:
                os.kill(os.getpid(), signal.SIGKILL)

    result = train(make_config(args.cache, args.run), resume=args.resume, callbacks=[Kill()])
    model = result.model
    np.savez(args.out, **{f"{i}:{v.path}": np.array(v.numpy())
                          for i, v in enumerate(model.variables + model.optimizer.variables)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
