"""Prints the TF_CONFIG of one worker of a MultiWorkerMirroredStrategy cluster.

    python training/launch/tf_config.py gpu-a:12345,gpu-b:12345 0

The first argument lists every worker (host:port, the same on every machine); the second is
this machine's position in it (0, the chief, writes the run's files). See
tf_config.example.json for the output's form.
"""

import json
import sys


def tf_config(workers: str, index: str) -> str:
    hosts = [host.strip() for host in workers.split(",") if host.strip()]
    if not hosts or any(":" not in host for host in hosts):
        raise SystemExit(f"WORKERS must be host:port,host:port,...; got {workers!r}")
    if not index.isdigit() or int(index) >= len(hosts):
        raise SystemExit(f"INDEX must be a position in WORKERS (0 to {len(hosts) - 1}); got {index!r}")
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": int(index)}})


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(tf_config(sys.argv[1], sys.argv[2]))
