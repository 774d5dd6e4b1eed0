"""The `bench train` model (src/bench/trainBench.ts, BENCH_TRAIN_CONFIG) in PyTorch.

Shared by train_nextvlad.py and infer_nextvlad.py. It mirrors the tfjs model
layer for layer (src/model/encoders/nextvlad.ts, layers.ts, fusion.ts,
heads.ts) so that the two frameworks do the same arithmetic:

  per modality, NeXtVLAD (N = B*T, F = lambda*D/G):
    x0 = where(mask, x, 0)                          [N, D]
    e  = x0 W_expand + b_expand                     [N, lambda*D]
    a  = sigmoid(e W_att + b_att) * mask            [N, G]     group attention
    s  = softmax_K(BN(e W_assign))                  [N, G, K]  (no bias: BN follows)
    w  = (s * a) as [B, T*G, K];  xt = e as [B, T*G, F]
    v  = w^T xt - (sum_{t,g} w) (x) C               [B, K, F]  residuals to centres
    v  = v / sqrt(max(sum_F v^2, 1e-12))            intra-normalisation
    y  = CG(BN(dropout_0.5(BN(flatten v)) W_hidden))  (no bias before BN)
    CG(x) = x * sigmoid(W2 relu(BN(W1 x)) + b2), W1: dim -> dim/8, no bias
  concat_se fusion:
    z = concat(v_rgb*p_rgb, v_audio*p_audio, p_rgb, p_audio)   [B, 1026]
    fused = dropout_0.2(CG(z)) W + b                           [B, 512]
  tag head: logits = fused W + b [B, 100]; loss = BCE from logits summed over
  tags, mean over the batch.  embedding = fused / ||fused||.

Conventions matched: Keras/tfjs glorot-uniform kernels and zero biases (the
tag head's bias starts at the prior logit -log(max(2, tags))), batch norm
epsilon 1e-3 and moving-average decay 0.9 (PyTorch momentum 0.1).
Known differences are listed in README.md.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

NORM_EPS = 1e-12  # nextvlad.ts NORM_EPS
L2_EPS = 1e-12  # fusion.ts l2Normalize

# BENCH_TRAIN_CONFIG (src/bench/trainBench.ts), with BENCH_TRAIN_BATCH and BENCH_TRAIN_TAGS.
BENCH = {
    "batch": 32,
    "tags": 100,
    "learning_rate": 1e-3,
    "modalities": {
        "rgb": {"frames": 32, "dim": 1024, "expansion": 2, "groups": 8, "clusters": 32, "hidden": 512, "dropout": 0.5},
        "audio": {"frames": 32, "dim": 128, "expansion": 2, "groups": 4, "clusters": 16, "hidden": 512, "dropout": 0.5},
    },
    "fusion": {"embedding_dim": 512, "dropout": 0.2, "se_reduction": 8},
    "gating_reduction": 8,
}


def dense(in_dim: int, out_dim: int, bias: bool = True) -> nn.Linear:
    """layers.ts Dense: glorot-uniform kernel, zero bias."""
    layer = nn.Linear(in_dim, out_dim, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def batch_norm(channels: int) -> nn.BatchNorm1d:
    """layers.ts BatchNorm: epsilon 1e-3, moving averages with decay 0.9 (PyTorch counts 1 - decay)."""
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.1)


class ContextGate(nn.Module):
    """layers.ts ContextGate: x * sigmoid(excite(relu(BN(squeeze(x)))))."""

    def __init__(self, dim: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, dim // reduction)
        self.squeeze = dense(dim, hidden, bias=False)
        self.bn = batch_norm(hidden)
        self.excite = dense(hidden, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.excite(F.relu(self.bn(self.squeeze(x)))))


class NeXtVlad(nn.Module):
    """encoders/nextvlad.ts NeXtVladEncoder (same op order)."""

    def __init__(self, dim: int, expansion: int, groups: int, clusters: int, hidden: int, dropout: float, gating_reduction: int) -> None:
        super().__init__()
        expanded = expansion * dim
        if expanded % groups != 0:
            raise ValueError(f"expanded dim {expanded} is not divisible by groups {groups}")
        self.dim = dim
        self.groups = groups
        self.clusters = clusters
        self.group_dim = expanded // groups
        self.dropout = dropout
        self.expand = dense(dim, expanded, bias=True)
        self.group_attention = dense(expanded, groups, bias=True)
        self.assignment = dense(expanded, groups * clusters, bias=False)
        self.assignment_bn = batch_norm(groups * clusters)
        centres = torch.empty(clusters, self.group_dim)
        nn.init.xavier_uniform_(centres)  # symmetric in fan-in/fan-out: the same limit as tfjs glorot on [K, F]
        self.centres = nn.Parameter(centres)
        self.vlad_bn = batch_norm(clusters * self.group_dim)
        self.hidden = dense(clusters * self.group_dim, hidden, bias=False)
        self.hidden_bn = batch_norm(hidden)
        self.gate = ContextGate(hidden, gating_reduction)

    def aggregate(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        g, k, f = self.groups, self.clusters, self.group_dim
        n = b * t
        m = mask.reshape(n, 1)
        x0 = torch.where(m > 0, x.reshape(n, d), torch.zeros((), dtype=x.dtype))
        e = self.expand(x0)  # [N, lambda*D]
        alpha = torch.sigmoid(self.group_attention(e)) * m  # [N, G]
        # The tfjs assignment BN takes its statistics over real frames only; with the
        # benchmark's all-ones masks that is the plain batch norm used here.
        logits = self.assignment_bn(self.assignment(e))
        a = torch.softmax(logits.reshape(n, g, k), dim=-1)
        w = (a * alpha.reshape(n, g, 1)).reshape(b, t * g, k)
        xt = e.reshape(b, t * g, f)
        weighted = torch.bmm(w.transpose(1, 2), xt)  # [B, K, F]
        mass = w.sum(dim=1).reshape(b, k, 1)
        v = weighted - mass * self.centres.reshape(1, k, f)
        norm = torch.sqrt(torch.clamp(v.square().sum(dim=-1, keepdim=True), min=NORM_EPS))
        return (v / norm).reshape(b, k * f)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h0 = self.vlad_bn(self.aggregate(x, mask))
        h1 = F.dropout(h0, self.dropout, self.training)
        h2 = self.hidden_bn(self.hidden(h1))
        return self.gate(h2)


class ConcatSeFusion(nn.Module):
    """fusion.ts ConcatSeFusion: concat(v_i*p_i, p_i) -> SE gate -> dropout -> Dense."""

    def __init__(self, input_dims: list[int], embedding_dim: int, dropout: float, se_reduction: int) -> None:
        super().__init__()
        width = sum(input_dims) + len(input_dims)
        self.dropout = dropout
        self.se = ContextGate(width, se_reduction)
        self.dense = dense(width, embedding_dim, bias=True)

    def forward(self, vectors: list[torch.Tensor], present: list[torch.Tensor]) -> torch.Tensor:
        p = [flag.reshape(-1, 1) for flag in present]
        x = torch.cat([v * pi for v, pi in zip(vectors, p)] + p, dim=1)
        return self.dense(F.dropout(self.se(x), self.dropout, self.training))


class BenchModel(nn.Module):
    """model.ts VideoModel for BENCH_TRAIN_CONFIG (heads.mode "tags": no category head)."""

    def __init__(self, num_tags: int = BENCH["tags"]) -> None:
        super().__init__()
        self.modalities = list(BENCH["modalities"].keys())
        self.encoders = nn.ModuleDict(
            {
                name: NeXtVlad(c["dim"], c["expansion"], c["groups"], c["clusters"], c["hidden"], c["dropout"], BENCH["gating_reduction"])
                for name, c in BENCH["modalities"].items()
            }
        )
        fc = BENCH["fusion"]
        dims = [c["hidden"] for c in BENCH["modalities"].values()]
        self.fusion = ConcatSeFusion(dims, fc["embedding_dim"], fc["dropout"], fc["se_reduction"])
        self.tag_head = dense(fc["embedding_dim"], num_tags, bias=True)
        # heads.ts TagHead: every tag starts at a prior of about 1/num_tags (tagPriorLogit).
        nn.init.constant_(self.tag_head.bias, -math.log(max(2, num_tags)))

    def forward(self, inputs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs[m] = (values [B, T, D], mask [B, T], present [B]) -> (embedding [B, E], tag logits [B, tags])."""
        vectors = []
        present = []
        for m in self.modalities:
            values, mask, flags = inputs[m]
            vectors.append(self.encoders[m](values, mask))
            present.append(flags)
        fused = self.fusion(vectors, present)
        embedding = fused * torch.rsqrt(torch.clamp(fused.square().sum(dim=1, keepdim=True), min=L2_EPS))
        return embedding, self.tag_head(fused)


def tag_loss(logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """heads.ts TagHead.loss: BCE from logits summed over tags, mean over rows."""
    return F.binary_cross_entropy_with_logits(logits, tags, reduction="sum") / logits.shape[0]


def loaded_blas() -> str:
    """The BLAS library this process loaded (Debian's torch links the generic libblas.so.3,
    which is the slow reference BLAS unless an optimised one such as OpenBLAS is installed)."""
    import os

    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libblas" in line or "openblas" in line or "libmkl" in line or "blis" in line}
    except OSError:
        return "unknown"
    real = sorted({os.path.realpath(p) for p in paths if p.startswith("/")})
    return ", ".join(real) if real else "unknown"


def count_trainable(model: nn.Module) -> int:
    """Trainable parameters (batch-norm moving statistics are buffers, as they are non-trainable in tfjs)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def synthetic_inputs(batch: int, num_tags: int, seed: int) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]], torch.Tensor]:
    """trainBench.ts syntheticBatch: values uniform in [-2, 2), masks and presence all ones, 3 tags per video."""
    gen = torch.Generator().manual_seed(seed)
    inputs = {}
    for name, c in BENCH["modalities"].items():
        values = torch.rand(batch, c["frames"], c["dim"], generator=gen) * 4 - 2
        inputs[name] = (values, torch.ones(batch, c["frames"]), torch.ones(batch))
    tags = torch.zeros(batch, num_tags)
    idx = torch.randint(0, num_tags, (batch, 3), generator=gen)
    tags.scatter_(1, idx, 1.0)
    return inputs, tags

