/**
 * Gated attention pooling (Ilse et al. 2018): a cheap alternative to NeXtVLAD.
 * Each real frame gets a score s_t = wᵀ(tanh(V x_t) ⊙ σ(U x_t)); the weights
 * are a softmax over the real frames only, and the output is Σ_t a_t x_t,
 * optionally projected to `hidden` and batch-normalised.
 *
 * Op order (mirrored by the ONNX exporter):
 *   x0 = where(mask, x, 0)
 *   s  = (tanh(x0·V + b_V) ⊙ sigmoid(x0·U + b_U))·w                   [B, T]
 *   s' = s + (1 − mask)·(−1e9);  e = exp(s' − max_t s') ⊙ mask
 *   a  = e / max(Σ_t e, 1e-12)                                          (all-padded video: a = 0)
 *   y  = Σ_t a_t x0_t                                                   [B, D]
 *   y  = BN(y·W_out)                                                    when hidden > 0
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ForwardContext, ParamScope, SequenceEncoder } from "../core.js";
import { BatchNorm, Dense, dropout } from "../layers.js";

export const AttentionPoolConfig = z.object({
  /** Width of the V/U attention branches (Ilse et al. use 128). */
  attentionDim: z.number().int().positive().default(128),
  /** Output projection width; 0 keeps the pooled input (outputDim = input dim). */
  hidden: z.number().int().nonnegative().default(1024),
  /** Dropout on the pooled vector before the projection (only used when hidden > 0). */
  dropout: z.number().min(0).max(0.95).default(0.2),
});
export type AttentionPoolConfig = z.infer<typeof AttentionPoolConfig>;

/** Added to padded scores: exp of it underflows to exactly 0 next to any real score. */
const MASKED_SCORE = -1e9;

export class AttentionPoolEncoder implements SequenceEncoder {
  readonly config: AttentionPoolConfig;
  readonly outputDim: number;
  readonly v: Dense;
  readonly u: Dense;
  readonly w: Dense;
  readonly out?: Dense;
  readonly outBn?: BatchNorm;

  constructor(
    config: z.input<typeof AttentionPoolConfig>,
    scope: ParamScope,
    readonly inputDim: number,
  ) {
    const c = AttentionPoolConfig.parse(config);
    this.config = c;
    if (!Number.isInteger(inputDim) || inputDim <= 0) throw new Error(`attention pool: bad input dim ${inputDim}`);
    this.v = new Dense(scope.scope("attention_v"), inputDim, c.attentionDim, true);
    this.u = new Dense(scope.scope("attention_u"), inputDim, c.attentionDim, true);
    // No bias: a constant added to every score cancels in the softmax.
    this.w = new Dense(scope.scope("attention_w"), c.attentionDim, 1, false);
    if (c.hidden > 0) {
      this.out = new Dense(scope.scope("out"), inputDim, c.hidden, false); // BN follows, so no bias
      this.outBn = new BatchNorm(scope.scope("out_bn"), c.hidden);
    }
    this.outputDim = c.hidden > 0 ? c.hidden : inputDim;
  }

  /** Attention weights [B, T]: zero on padded frames, summing to 1 over real ones (0 if none). */
  weights(x0: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = mask.shape;
    const gated = tf.mul(tf.tanh(this.v.apply(x0)), tf.sigmoid(this.u.apply(x0)));
    const s = this.w.apply(gated).reshape([B, T]);
    const masked = tf.add(s, tf.mul(tf.sub(1, mask), MASKED_SCORE));
    const e = tf.mul(tf.exp(tf.sub(masked, tf.max(masked, 1, true))), mask);
    return tf.div(e, tf.maximum(tf.sum(e, 1, true), 1e-12)) as tf.Tensor2D;
  }

  apply(x: tf.Tensor3D, mask: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const [B, T, D] = x.shape;
    if (D !== this.inputDim) throw new Error(`attention pool: expected input dim ${this.inputDim}, got ${D}`);
    if (mask.shape[0] !== B || mask.shape[1] !== T) throw new Error(`attention pool: mask ${mask.shape} does not match x ${x.shape}`);
    // `where`, not a multiply: padded frames may hold anything (even Inf/NaN), and 0·Inf is NaN.
    const x0 = tf.where(tf.greater(mask.reshape([B, T, 1]), 0), x, 0) as tf.Tensor3D;
    const a = this.weights(x0, mask);
    const pooled = tf.sum(tf.mul(x0, a.reshape([B, T, 1])), 1) as tf.Tensor2D; // [B, D]
    if (!this.out || !this.outBn) return pooled;
    const h = this.out.apply(dropout(pooled, this.config.dropout, ctx)) as tf.Tensor2D;
    return this.outBn.apply(h, ctx);
  }
}
