#!/usr/bin/python3
"""PyTorch peer of the inference benchmark: the `bench train` model in eval mode.

The model of bench_model.py (the same as BENCH_TRAIN_CONFIG) with its initial
weights, in eval mode (moving batch-norm statistics, no dropout) under
torch.inference_mode(). Each forward computes what the exported ONNX model
returns for this config: the L2-normalised embedding [B, 512] and the tag
probabilities (sigmoid) [B, 100].

Measures
  - throughput: `--batches` forwards of a 32-video batch after `--warmup`
    untimed ones -> embeddings_per_s;
  - latency: `--runs` forwards of a single video after `--warmup` untimed
    ones, each timed alone -> latency p50 / p99 (nearest rank), ms.

Prints one JSON line:
  {"embeddings_per_s", "batch", "batches", "latency_p50_ms", "latency_p99_ms",
   "latency_mean_ms", "runs", "threads", "torch", "params", "blas", "omp_wait_policy"}
or, when PyTorch cannot be imported, {"unavailable": reason} with exit status 3.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts in the working tree

from peer_env import add_thread_args, configure_threads


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_thread_args(p)
    p.add_argument("--batch", type=int, default=32, help="videos per throughput batch (default 32)")
    p.add_argument("--batches", type=int, default=20, help="timed throughput batches (default 20)")
    p.add_argument("--runs", type=int, default=200, help="timed single-video runs (default 200)")
    p.add_argument("--warmup", type=int, default=5, help="untimed forwards before each measurement (default 5)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if min(args.threads, args.batch, args.batches, args.runs) < 1 or args.warmup < 0:
        p.error("--threads, --batch, --batches and --runs must be >= 1, --warmup >= 0")
    return args


def nearest_rank(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) by the nearest-rank method."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def main() -> int:
    args = parse_args()
    env = configure_threads(args.threads, args.omp_wait_policy)
    try:
        import torch
        from bench_model import BENCH, BenchModel, count_trainable, loaded_blas, synthetic_inputs
    except ImportError as err:
        print(json.dumps({"unavailable": f"PyTorch is not importable ({err}); install it, e.g. apt-get install python3-torch"}), flush=True)
        return 3

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = BenchModel(BENCH["tags"]).eval()
    batch_inputs, _ = synthetic_inputs(args.batch, BENCH["tags"], args.seed)
    single_inputs, _ = synthetic_inputs(1, BENCH["tags"], args.seed + 1)

    def forward(inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        embedding, logits = model(inputs)
        return embedding, torch.sigmoid(logits)

    with torch.inference_mode():
        for _ in range(args.warmup):
            forward(batch_inputs)
        t0 = time.perf_counter()
        for _ in range(args.batches):
            embedding, _ = forward(batch_inputs)
        batch_seconds = time.perf_counter() - t0
        if not bool(torch.isfinite(embedding).all()):
            raise RuntimeError("non-finite embedding")

        for _ in range(args.warmup):
            forward(single_inputs)
        latencies = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            forward(single_inputs)
            latencies.append((time.perf_counter() - t0) * 1000)

    ordered = sorted(latencies)
    print(
        json.dumps(
            {
                "embeddings_per_s": args.batches * args.batch / batch_seconds,
                "batch": args.batch,
                "batches": args.batches,
                "latency_p50_ms": nearest_rank(ordered, 0.5),
                "latency_p99_ms": nearest_rank(ordered, 0.99),
                "latency_mean_ms": sum(latencies) / len(latencies),
                "runs": args.runs,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "params": count_trainable(model),
                "blas": loaded_blas(),
                **env,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
