#!/usr/bin/python3
"""Checks that bench_model.py computes the same function as the tfjs bench model.

Reads a directory written by test/peers.test.ts: `manifest.json` lists
float32 tensors (name, shape, byte offset) stored in `tensors.bin`: every tfjs
parameter of the bench model under its tfjs name ("model/encoder_rgb/expand/
kernel", …, batch-norm moving statistics included), a batch
("input/<modality>/values|mask|present", "labels/tags"). Loads the parameters
into BenchModel (kernels transposed to PyTorch's [out, in]), turns dropout off
(the test's tfjs model is built with dropout 0 so that training mode is
deterministic), and prints one JSON line with, for eval mode (moving
statistics) and then training mode (batch statistics), the embedding, the tag
logits and the loss, as flat row-major lists:
  {"eval": {"embedding", "tag_logits", "loss"}, "train": {…}, "loaded": count}
or {"unavailable": reason} with exit status 3 without PyTorch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts in the working tree

from peer_env import add_thread_args, configure_threads


def torch_name(tfjs_name: str) -> tuple[str, bool]:
    """The BenchModel state-dict key for a tfjs parameter name, and whether it is a kernel to transpose."""
    parts = tfjs_name.split("/")
    if parts[0] != "model":
        raise ValueError(f"unexpected parameter {tfjs_name}")
    parts = parts[1:]
    if parts[0].startswith("encoder_"):
        parts = ["encoders", parts[0][len("encoder_"):]] + parts[1:]
    elif parts[0] == "head_tags":
        if parts[1:] and parts[1] == "dense":
            parts = ["tag_head"] + parts[2:]
    parts = ["bn" if p == "squeeze_bn" else p for p in parts]
    leaf = {"kernel": "weight", "gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}.get(parts[-1], parts[-1])
    return ".".join(parts[:-1] + [leaf]), parts[-1] == "kernel"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="directory with manifest.json and tensors.bin")
    add_thread_args(p)
    args = p.parse_args()
    configure_threads(args.threads, args.omp_wait_policy)
    try:
        import torch
        from bench_model import BENCH, BenchModel, tag_loss
    except ImportError as err:
        print(json.dumps({"unavailable": f"PyTorch is not importable ({err}); install it, e.g. apt-get install python3-torch"}), flush=True)
        return 3
    torch.set_num_threads(args.threads)

    with open(os.path.join(args.dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    with open(os.path.join(args.dir, "tensors.bin"), "rb") as f:
        blob = bytearray(f.read())
    tensors = {}
    for t in manifest["tensors"]:
        count = 1
        for d in t["shape"]:
            count *= d
        tensors[t["name"]] = torch.frombuffer(blob, dtype=torch.float32, count=count, offset=t["offset"]).reshape(t["shape"]).clone()

    model = BenchModel(BENCH["tags"])
    state = model.state_dict()
    expected = {k for k in state if not k.endswith("num_batches_tracked")}
    loaded = set()
    with torch.no_grad():
        for name, value in tensors.items():
            if not name.startswith("model/"):
                continue
            key, transpose = torch_name(name)
            if key not in state:
                raise KeyError(f"tfjs parameter {name} maps to {key}, which BenchModel does not have")
            v = value.t() if transpose else value
            if tuple(v.shape) != tuple(state[key].shape):
                raise ValueError(f"{name} -> {key}: shape {tuple(v.shape)} vs {tuple(state[key].shape)}")
            state[key].copy_(v)
            loaded.add(key)
    missing = expected - loaded
    if missing:
        raise KeyError(f"BenchModel parameters with no tfjs value: {sorted(missing)}")

    for enc in model.encoders.values():
        enc.dropout = 0.0
    model.fusion.dropout = 0.0
    inputs = {m: tuple(tensors[f"input/{m}/{part}"] for part in ("values", "mask", "present")) for m in model.modalities}
    tags = tensors["labels/tags"]

    out = {"loaded": len(loaded)}
    with torch.no_grad():
        for mode in ("eval", "train"):  # eval first: the training pass updates the moving statistics
            model.train(mode == "train")
            embedding, logits = model(inputs)
            out[mode] = {
                "embedding": embedding.reshape(-1).tolist(),
                "tag_logits": logits.reshape(-1).tolist(),
                "loss": tag_loss(logits, tags).item(),
            }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
