"""Prior sampling speed: the numpy sampler (prior.py) vs the batched torch one (prior_torch.py).

Draws the pretraining batches of steps ``0..--steps-1`` (about ``--tokens`` rows each, context
sizes log-uniform in 32-1,024 as in pretraining) with each sampler and reports the median over
``--repeats`` runs of batches/s and tasks/s, on one CPU thread and on CUDA when present.

    python benchmarks/prior_speed.py [--steps 10] [--repeats 5] [--threads 1]
    python benchmarks/prior_speed.py --loss [--checkpoint PATH]   # held-out loss per sampler

``--loss`` instead scores a checkpoint (default: the bundled one) on 96 held-out tasks with
256 context rows from each sampler: numpy, torch with leading slots, torch with random slots.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from engine.models.prior import PriorConfig, sample_batch, sample_context_size
from engine.models.prior_torch import (
    make_generator,
    sample_batch_torch,
    sample_context_size_torch,
)


def _numpy_run(cfg: PriorConfig, steps: int, tokens: int) -> tuple[float, int]:
    t0, tasks = time.perf_counter(), 0
    for s in range(steps):
        rng = np.random.default_rng([0, s])
        n_ctx = sample_context_size(rng, 32, 1024)
        batch = sample_batch(rng, cfg, max(1, tokens // (n_ctx + cfg.n_query)), n_ctx)
        tasks += batch.x.shape[0]
    return time.perf_counter() - t0, tasks


def _torch_run(cfg: PriorConfig, steps: int, tokens: int, device: str) -> tuple[float, int]:
    if device == "cuda":
        torch.cuda.synchronize()
    t0, tasks = time.perf_counter(), 0
    for s in range(steps):
        gen = make_generator(0, s, device)
        n_ctx = sample_context_size_torch(gen, 32, 1024)
        batch = sample_batch_torch(gen, cfg, max(1, tokens // (n_ctx + cfg.n_query)), n_ctx)
        tasks += batch.x.shape[0]
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, tasks


@torch.no_grad()
def held_out_loss(checkpoint: str | None) -> None:
    from engine.models.pfn import build_pfn
    from engine.models.pretrain import task_loss

    net = build_pfn(checkpoint=checkpoint).module.eval()
    cfg = PriorConfig()
    print(f"{'held-out tasks (96, 256 context rows)':40s} {'loss':>6s} {'acc':>6s}")
    for name in ("numpy", "torch, leading slots", "torch, random slots"):
        losses, accs = [], []
        for s in range(12):
            if name == "numpy":
                batch = sample_batch(np.random.default_rng([7, s]), cfg, 8, 256)
            else:
                slot = 1.0 if "random" in name else 0.0
                batch = sample_batch_torch(make_generator(7, s), cfg, 8, 256,
                                           random_slot_prob=slot)
            loss, acc = task_loss(net, batch)
            losses.append(loss.item())
            accs.append(acc.item())
        print(f"{name:40s} {np.mean(losses):6.3f} {np.mean(accs):6.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=6144)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--loss", action="store_true", help="held-out loss per sampler instead")
    ap.add_argument("--checkpoint", default=None, help="--loss: PFN weights (default: bundled)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.loss:
        held_out_loss(args.checkpoint)
        return
    cfg = PriorConfig(random_slot_prob=0.5)
    runs = {"numpy (prior.py), cpu": lambda: _numpy_run(cfg, args.steps, args.tokens),
            "torch (prior_torch.py), cpu": lambda: _torch_run(cfg, args.steps, args.tokens, "cpu")}
    if torch.cuda.is_available():
        runs["torch (prior_torch.py), cuda"] = lambda: _torch_run(
            cfg, args.steps, args.tokens, "cuda")
    print(f"{args.steps} pretraining batches of ~{args.tokens} rows, median of {args.repeats}, "
          f"{args.threads} CPU thread(s)")
    print(f"{'sampler':32s} {'batches/s':>10s} {'tasks/s':>9s} {'s/batch':>8s}")
    for name, fn in runs.items():
        fn()  # warm-up
        res = [fn() for _ in range(args.repeats)]
        sec = float(np.median([r[0] for r in res]))
        tasks = res[0][1]
        print(f"{name:32s} {args.steps / sec:10.2f} {tasks / sec:9.1f} {sec / args.steps:8.3f}")


if __name__ == "__main__":
    main()
