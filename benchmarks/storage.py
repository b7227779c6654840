"""Wall time of the smoke sweep with its storage on a local path, a ``file://`` URI and
(optionally) S3, in one run.

Each run is ``causalmix run sweeps/smoke.yaml --storage <storage> --no-report`` in a fresh
subprocess with empty storage, sides alternating. ``s3`` stores in a bucket of a local moto
S3 server (``pip install 'moto[server]'``), through the same pyarrow S3 filesystem a real
bucket uses; it measures the engine's object-store path, not a network.

    python benchmarks/storage.py [--repeats 3] [--num-cpus 2] [--sides local,file,s3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from smoke_speed import timed_run  # benchmarks/ is this script's folder

REPO = Path(__file__).resolve().parents[1]
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def s3_server() -> tuple[object, str]:
    """A local moto S3 server with the bucket 'bench'; returns (server, 'host:port')."""
    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    fs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http",
                    allow_bucket_creation=True).create_dir("bench")
    return server, f"{host}:{port}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--sides", default="local,file", help="comma-separated: local, file, s3")
    args = ap.parse_args()
    sides = args.sides.split(",")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = None
    if "s3" in sides:
        env.update({k: os.environ.get(k, v) for k, v in S3_ENV.items()})
        os.environ.update({k: env[k] for k in S3_ENV})
        server, endpoint = s3_server()
    times: dict[str, list[float]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for side in sides:
                storage = {"local": str(Path(tmp) / f"local{i}"),
                           "file": (Path(tmp) / f"file{i}").as_uri()}.get(side)
                if side == "s3":
                    storage = f"s3://bench/run{i}?endpoint_override={endpoint}&scheme=http"
                wall = timed_run(REPO, storage, args.num_cpus, env)
                times[side].append(wall)
                print(f"repeat {i} {side:5s} {wall:7.1f} s", flush=True)
    if server is not None:
        server.stop()
    base = statistics.median(times[sides[0]])
    print(f"\n| storage | runs (s) | median wall (s) | vs {sides[0]} |\n|---|---|---|---|")
    for side in sides:
        med = statistics.median(times[side])
        runs = ", ".join(f"{t:.1f}" for t in times[side])
        print(f"| {side} | {runs} | {med:.1f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
