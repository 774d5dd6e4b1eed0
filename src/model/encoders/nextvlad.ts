/**
 * NeXtVLAD frame aggregation (Lin, Xiao, Fan 2018): expand each frame, split
 * it into G groups, softly assign every group feature to K learned centres
 * with a per-group attention, and sum the residuals over frames and groups.
 * Padded frames are excluded everywhere: from the input (zeroed), from the
 * assignment batch-norm statistics (row weights) and from the residual sum
 * (attention multiplied by the mask), so they contribute exactly nothing.
 *
 * Op order (mirrored by the ONNX exporter), N = B·T, F = λD/G:
 *   x0 = where(mask, x, 0)                          [N, D]
 *   e  = x0·W_expand + b_expand                     [N, λD]
 *   α  = sigmoid(e·W_att + b_att) ⊙ mask            [N, G]
 *   a  = softmax_K(reshape(BN_assign(e·W_assign)))  [N, G, K]
 *   w  = reshape(a ⊙ α, [B, T·G, K]);  x̃ = reshape(e, [B, T·G, F])
 *   v  = wᵀ·x̃ − (Σ_{t,g} w) ⊗ C                    [B, K, F]   (C: centres [K, F])
 *   v  = v / sqrt(max(Σ_F v², 1e-12))               intra-normalisation
 *   y  = CG(BN_hidden(dropout(BN_vlad(flatten(v)))·W_hidden))
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ForwardContext, ParamScope, SequenceEncoder } from "../core.js";
import { BatchNorm, ContextGate, Dense, dropout } from "../layers.js";

export const NeXtVladConfig = z.object({
  /** λ: width multiplier of the per-frame linear expansion (paper: 2). */
  expansion: z.number().int().positive().default(2),
  /** G: groups per expanded frame; λ·D must be divisible by G (paper: 8; audio stream: 4). */
  groups: z.number().int().positive().default(8),
  /**
   * K: clusters. 64 rather than the paper's 128: the FC after aggregation has
   * K·(λD/G)·hidden weights (≈16.8M at D=1024, hidden 1024) and tfjs trains
   * without native bindings, so half the paper's K keeps a step affordable;
   * the audio stream uses K/2.
   */
  clusters: z.number().int().positive().default(64),
  /** Output width (the original framework's FC 1024). */
  hidden: z.number().int().positive().default(1024),
  /** Dropout on the aggregated VLAD vector, the largest and most over-fit-prone tensor (paper: 0.5). */
  dropout: z.number().min(0).max(0.95).default(0.5),
  /** SE context-gating bottleneck reduction (paper: 8). */
  gatingReduction: z.number().int().positive().default(8),
});
export type NeXtVladConfig = z.infer<typeof NeXtVladConfig>;

/** Guards the intra-normalisation against all-zero clusters (e.g. a video with no real frames). */
const NORM_EPS = 1e-12;

export class NeXtVladEncoder implements SequenceEncoder {
  readonly config: NeXtVladConfig;
  readonly outputDim: number;
  /** λD. */
  readonly expandedDim: number;
  /** F = λD / G: width of one group feature and of one centre. */
  readonly groupDim: number;
  readonly expand: Dense;
  readonly attention: Dense;
  readonly assign: Dense;
  readonly assignBn: BatchNorm;
  /** Centres c_k, one row per cluster: [K, F]. */
  readonly centres: tf.Variable;
  readonly vladBn: BatchNorm;
  readonly hiddenFc: Dense;
  readonly hiddenBn: BatchNorm;
  readonly gate: ContextGate;

  constructor(
    config: z.input<typeof NeXtVladConfig>,
    scope: ParamScope,
    readonly inputDim: number,
  ) {
    const c = NeXtVladConfig.parse(config);
    this.config = c;
    if (!Number.isInteger(inputDim) || inputDim <= 0) throw new Error(`NeXtVLAD: bad input dim ${inputDim}`);
    this.expandedDim = c.expansion * inputDim;
    if (this.expandedDim % c.groups !== 0) {
      throw new Error(`NeXtVLAD: expanded dim ${this.expandedDim} (λ·D) is not divisible by groups ${c.groups}`);
    }
    this.groupDim = this.expandedDim / c.groups;
    const K = c.clusters;
    const G = c.groups;
    this.expand = new Dense(scope.scope("expand"), inputDim, this.expandedDim, true);
    this.attention = new Dense(scope.scope("group_attention"), this.expandedDim, G, true);
    // No bias: the batch norm right after would cancel it (and its gradient would be zero).
    this.assign = new Dense(scope.scope("assignment"), this.expandedDim, G * K, false);
    this.assignBn = new BatchNorm(scope.scope("assignment_bn"), G * K);
    this.centres = scope.get("centres", [K, this.groupDim], "glorotUniform");
    this.vladBn = new BatchNorm(scope.scope("vlad_bn"), K * this.groupDim);
    this.hiddenFc = new Dense(scope.scope("hidden"), K * this.groupDim, c.hidden, false);
    this.hiddenBn = new BatchNorm(scope.scope("hidden_bn"), c.hidden);
    this.gate = new ContextGate(scope.scope("gate"), c.hidden, c.gatingReduction);
    this.outputDim = c.hidden;
  }

  /**
   * The intra-normalised VLAD descriptor before the hidden layer: [B, K·F],
   * laid out cluster-major (index k·F + f).
   */
  aggregate(x: tf.Tensor3D, mask: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const [B, T, D] = x.shape;
    if (D !== this.inputDim) throw new Error(`NeXtVLAD: expected input dim ${this.inputDim}, got ${D}`);
    if (mask.shape[0] !== B || mask.shape[1] !== T) throw new Error(`NeXtVLAD: mask ${mask.shape} does not match x ${x.shape}`);
    const G = this.config.groups;
    const K = this.config.clusters;
    const F = this.groupDim;
    const N = B * T;

    const m = mask.reshape([N]) as tf.Tensor1D;
    const mCol = m.reshape([N, 1]);
    // `where`, not a multiply: padded frames may hold anything (even Inf/NaN), and 0·Inf is NaN.
    const x0 = tf.where(tf.greater(mCol, 0), x.reshape([N, D]), 0) as tf.Tensor2D;

    const e = this.expand.apply(x0) as tf.Tensor2D; // [N, λD]
    const alpha = tf.mul(tf.sigmoid(this.attention.apply(e)), mCol); // [N, G], 0 on padded frames
    const logits = this.assignBn.apply(this.assign.apply(e) as tf.Tensor2D, ctx, m); // stats over real frames only
    const a = tf.softmax(logits.reshape([N, G, K]), -1); // soft assignment per group
    const w = tf.mul(a, alpha.reshape([N, G, 1])).reshape([B, T * G, K]);
    const xt = e.reshape([B, T * G, F]);

    const weighted = tf.matMul(w, xt, true, false); // [B, K, F] = Σ_{t,g} w·x̃
    const mass = tf.sum(w, 1).reshape([B, K, 1]); // Σ_{t,g} w per cluster
    const v = tf.sub(weighted, tf.mul(mass, this.centres.reshape([1, K, F])));
    const norm = tf.sqrt(tf.maximum(tf.sum(tf.square(v), -1, true), NORM_EPS));
    return tf.div(v, norm).reshape([B, K * F]) as tf.Tensor2D;
  }

  apply(x: tf.Tensor3D, mask: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const h0 = this.vladBn.apply(this.aggregate(x, mask, ctx), ctx);
    const h1 = dropout(h0, this.config.dropout, ctx);
    const h2 = this.hiddenBn.apply(this.hiddenFc.apply(h1) as tf.Tensor2D, ctx);
    return this.gate.apply(h2, ctx);
  }
}
