#!/usr/bin/python3
"""PyTorch peer of `vidrecall bench train`: training throughput of the same model.

Same architecture (bench_model.py), batch (32 videos, 32 frames x 1024 rgb +
128 audio, masks all ones, 100 tags, 3 per video), loss and optimiser (Adam,
lr 1e-3, no warm-up, no decay, no clipping) as measureTrainSteps in
src/bench/trainBench.ts. Each step: forward in training mode (dropout, batch
statistics), summed BCE, backward, the global gradient norm checked for
finiteness (as src/train/optimizer.ts does), Adam update, loss read back.

Prints one JSON line:
  {"videos_per_s", "step_ms", "step_ms_median", "steps", "warmup", "batch",
   "threads", "torch", "params", "blas", "omp_wait_policy", "first_loss", "last_loss"}
or, when PyTorch cannot be imported, {"unavailable": reason} with exit status 3.
`--count-params` only builds the model and prints {"params", "torch"}.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts in the working tree

from peer_env import add_thread_args, configure_threads


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_thread_args(p)
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10, as `bench train --steps`)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count-params", action="store_true", help="print the trainable parameter count and exit")
    args = p.parse_args()
    if args.threads < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--threads and --steps must be >= 1, --warmup >= 0")
    return args


def main() -> int:
    args = parse_args()
    env = configure_threads(args.threads, args.omp_wait_policy)
    try:
        import torch
        from bench_model import BENCH, BenchModel, count_trainable, loaded_blas, synthetic_inputs, tag_loss
    except ImportError as err:
        print(json.dumps({"unavailable": f"PyTorch is not importable ({err}); install it, e.g. apt-get install python3-torch"}), flush=True)
        return 3

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = BenchModel(BENCH["tags"])
    params = count_trainable(model)
    if args.count_params:
        print(json.dumps({"params": params, "torch": torch.__version__}), flush=True)
        return 0

    model.train()
    # tfjs Adam (src/train/optimizer.ts): beta1 0.9, beta2 0.999, epsilon 1e-7.
    optimizer = torch.optim.Adam(model.parameters(), lr=BENCH["learning_rate"], betas=(0.9, 0.999), eps=1e-7)
    inputs, tags = synthetic_inputs(BENCH["batch"], BENCH["tags"], args.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        _, logits = model(inputs)
        loss = tag_loss(logits, tags)
        loss.backward()
        norm = torch.sqrt(sum(p.grad.square().sum() for p in trainable)).item()
        if not math.isfinite(norm):
            raise RuntimeError(f"gradient norm is {norm}: training diverged")
        optimizer.step()
        return loss.item()

    first_loss = last_loss = float("nan")
    for i in range(args.warmup):
        loss = step()
        if i == 0:
            first_loss = loss
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        last_loss = step()
        times.append(time.perf_counter() - t0)
        if args.warmup == 0 and i == 0:
            first_loss = last_loss
    total = sum(times)
    print(
        json.dumps(
            {
                "videos_per_s": args.steps * BENCH["batch"] / total,
                "step_ms": total * 1000 / args.steps,
                "step_ms_median": statistics.median(times) * 1000,
                "steps": args.steps,
                "warmup": args.warmup,
                "batch": BENCH["batch"],
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "params": params,
                "blas": loaded_blas(),
                **env,
                "first_loss": first_loss,
                "last_loss": last_loss,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
