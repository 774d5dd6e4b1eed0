/**
 * Gated MLP for video-level features (one vector per video, as in the
 * YouTube-8M video-level shards: 1024-d mean RGB ‖ 128-d mean audio = 1152-d).
 * It still takes the [B, T, D] + mask contract: the frames are averaged over
 * the real ones first, which for T = 1 is the frame itself.
 *
 * Op order (mirrored by the ONNX exporter):
 *   p = Σ_t where(mask, x, 0)_t / max(Σ_t mask_t, 1)     [B, D]   (all-padded video: 0)
 *   h = dropout(relu(BN1(dropout_in(p)·W1)))
 *   y = CG(BN2(h·W2))
 * Both dense layers omit the bias: the batch norm after each would cancel it.
 * The batch norms also equalise the very different scales of the RGB and
 * audio parts of the input, which is what lets this train well on raw 1152-d
 * features without a separate input normalisation.
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ForwardContext, ParamScope, SequenceEncoder } from "../core.js";
import { BatchNorm, ContextGate, Dense, dropout } from "../layers.js";

export const GatedMlpConfig = z.object({
  /** Width of both layers and of the output. */
  hidden: z.number().int().positive().default(1024),
  /** Dropout between the two layers (the original framework's keep-probability 0.8). */
  dropout: z.number().min(0).max(0.95).default(0.2),
  /**
   * Dropout on the pooled input features, before the first layer: with one
   * vector per video and few videos per label, the first layer otherwise
   * learns individual feature values of the training videos. 0 = off.
   */
  inputDropout: z.number().min(0).max(0.95).default(0),
  /** SE context-gating bottleneck reduction. */
  gatingReduction: z.number().int().positive().default(8),
});
export type GatedMlpConfig = z.infer<typeof GatedMlpConfig>;

export class GatedMlpEncoder implements SequenceEncoder {
  readonly config: GatedMlpConfig;
  readonly outputDim: number;
  readonly fc1: Dense;
  readonly bn1: BatchNorm;
  readonly fc2: Dense;
  readonly bn2: BatchNorm;
  readonly gate: ContextGate;

  constructor(
    config: z.input<typeof GatedMlpConfig>,
    scope: ParamScope,
    readonly inputDim: number,
  ) {
    const c = GatedMlpConfig.parse(config);
    this.config = c;
    if (!Number.isInteger(inputDim) || inputDim <= 0) throw new Error(`gated MLP: bad input dim ${inputDim}`);
    this.fc1 = new Dense(scope.scope("fc1"), inputDim, c.hidden, false);
    this.bn1 = new BatchNorm(scope.scope("bn1"), c.hidden);
    this.fc2 = new Dense(scope.scope("fc2"), c.hidden, c.hidden, false);
    this.bn2 = new BatchNorm(scope.scope("bn2"), c.hidden);
    this.gate = new ContextGate(scope.scope("gate"), c.hidden, c.gatingReduction);
    this.outputDim = c.hidden;
  }

  apply(x: tf.Tensor3D, mask: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const [B, T, D] = x.shape;
    if (D !== this.inputDim) throw new Error(`gated MLP: expected input dim ${this.inputDim}, got ${D}`);
    if (mask.shape[0] !== B || mask.shape[1] !== T) throw new Error(`gated MLP: mask ${mask.shape} does not match x ${x.shape}`);
    // `where`, not a multiply: padded frames may hold anything (even Inf/NaN), and 0·Inf is NaN.
    const x0 = tf.where(tf.greater(mask.reshape([B, T, 1]), 0), x, 0);
    const count = tf.maximum(tf.sum(mask, 1, true), 1); // [B, 1]
    const pooled = tf.div(tf.sum(x0, 1), count) as tf.Tensor2D;
    const input = dropout(pooled, this.config.inputDropout, ctx);
    const h = dropout(tf.relu(this.bn1.apply(this.fc1.apply(input) as tf.Tensor2D, ctx)), this.config.dropout, ctx);
    return this.gate.apply(this.bn2.apply(this.fc2.apply(h) as tf.Tensor2D, ctx), ctx);
  }
}
