"""Process set-up shared by the peers; must run before `import torch` (the libraries read it on load)."""

from __future__ import annotations

import argparse
import os

WAIT_POLICIES = ("passive", "active", "default")


def add_thread_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and the BLAS thread count (default 2)")
    parser.add_argument(
        "--omp-wait-policy",
        choices=WAIT_POLICIES,
        default="passive",
        help="OMP_WAIT_POLICY for torch's OpenMP threads: passive (default; idle threads sleep, as our "
        "onnxruntime sessions do), active (spin), default (libgomp's own: spin a while, then sleep)",
    )


def configure_threads(threads: int, wait_policy: str) -> dict[str, str]:
    """Thread settings for the native libraries under Debian's torch, returned for the result line.

    - OPENBLAS_NUM_THREADS / BLIS_NUM_THREADS = threads: Debian's torch calls a generic
      libblas.so.3 and cannot size an optimised BLAS's thread pool itself.
    - OMP_WAIT_POLICY: see add_thread_args. With libgomp's default on a shared 2-core machine,
      a waiting thread spins while the thread it waits for is descheduled: a training batch
      norm on [1024, 256] took 46 ms instead of 0.2 ms (README.md).
    """
    for var in ("OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if wait_policy == "default":
        os.environ.pop("OMP_WAIT_POLICY", None)
    else:
        os.environ["OMP_WAIT_POLICY"] = wait_policy.upper()
    return {"omp_wait_policy": wait_policy}
