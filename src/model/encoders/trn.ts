/**
 * Multi-scale temporal relation network (Zhou et al. 2018), used as a frame
 * encoder: MT(V) = Σ_{d=2..S} h^d( mean over sampled ordered d-tuples of
 * g^d(f_i1 ‖ … ‖ f_id) ), with f the frames projected to a small bottleneck.
 *
 * Tuples are drawn only from a video's real frames (mask = 1), at their true
 * positions, so padding never enters the output. Sampling happens on the CPU
 * (indices only depend on the mask and a seed): evenly spaced in evaluation,
 * uniformly random ordered tuples (seeded by ctx.nextSeed()) in training.
 * A video with n < d real frames repeats frames, i_j = floor((j + ½)·n/d),
 * which keeps the order and uses every frame; a video with no real frame gets
 * a zero relation vector (its output is h(0) = 0 through the final BN).
 *
 * Op order per scale d (mirrored by the ONNX exporter; the exporter takes the
 * evaluation indices as an input computed the same way):
 *   p   = relu(where(mask, x, 0)·W_proj + b_proj)          [B·T, P]
 *   r   = reshape(gather(p, idx_d), [B·k, d·P])            idx_d = b·T + frame, [B·k·d]
 *   g   = mean_k(relu(r·W_g^d + b_g^d)) ⊙ hasFrames          [B, R]
 *   out = BN(Σ_d dropout(g)·W_h^d)                          [B, hidden]
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ForwardContext, ParamScope, SequenceEncoder } from "../core.js";
import { seededRandom } from "../../util/random.js";
import { BatchNorm, Dense, dropout, gatherRows } from "../layers.js";

export const TrnConfig = z.object({
  /** Per-frame projection width; relations concatenate d of these, so it sets the cost. */
  bottleneck: z.number().int().positive().default(256),
  /** S: relation scales d = 2..S (the original framework's TRN-style encoder used up to 4-frame relations). */
  maxScale: z.number().int().min(2).default(4),
  /** Ordered tuples sampled per scale and video (TRN samples 3 per scale). */
  tuplesPerScale: z.number().int().positive().default(3),
  /** Width of g_θ^d. */
  relationDim: z.number().int().positive().default(256),
  /** Output width. */
  hidden: z.number().int().positive().default(512),
  /** Dropout on the pooled relation features before h_φ. */
  dropout: z.number().min(0).max(0.95).default(0.2),
});
export type TrnConfig = z.infer<typeof TrnConfig>;


/**
 * Positions (into `real`, the sorted real-frame positions) of `k` ordered
 * d-tuples. With `rand`, each tuple is a uniform random d-subset (sorted);
 * without, tuple j takes from each of d equal segments the point at relative
 * offset (j + ½)/k. When n < d both fall back to the repeating tuple
 * floor((i + ½)·n/d).
 */
export function sampleTuples(n: number, d: number, k: number, rand?: () => number): number[][] {
  const tuples: number[][] = [];
  for (let j = 0; j < k; j++) {
    const t: number[] = [];
    if (n >= d && rand) {
      // Partial Fisher–Yates over 0..n-1, then sort: a uniform d-subset in time order.
      const pool = Array.from({ length: n }, (_, i) => i);
      for (let i = 0; i < d; i++) {
        const r = i + Math.floor(rand() * (n - i));
        [pool[i], pool[r]] = [pool[r], pool[i]];
        t.push(pool[i]);
      }
      t.sort((p, q) => p - q);
    } else {
      // Segment m covers [m·n/d, (m+1)·n/d); for n ≥ d each has length ≥ 1, so
      // the picks are strictly increasing; for n < d they repeat frames in order.
      const offset = n >= d ? (j + 0.5) / k : 0.5;
      for (let m = 0; m < d; m++) t.push(Math.min(n - 1, Math.floor(((m + offset) * n) / d)));
    }
    tuples.push(t);
  }
  return tuples;
}

export class TrnEncoder implements SequenceEncoder {
  readonly config: TrnConfig;
  readonly outputDim: number;
  readonly proj: Dense;
  readonly g: Dense[] = [];
  readonly h: Dense[] = [];
  readonly outBn: BatchNorm;

  constructor(
    config: z.input<typeof TrnConfig>,
    scope: ParamScope,
    readonly inputDim: number,
  ) {
    const c = TrnConfig.parse(config);
    this.config = c;
    if (!Number.isInteger(inputDim) || inputDim <= 0) throw new Error(`TRN: bad input dim ${inputDim}`);
    this.proj = new Dense(scope.scope("proj"), inputDim, c.bottleneck, true);
    for (let d = 2; d <= c.maxScale; d++) {
      this.g.push(new Dense(scope.scope(`g${d}`), d * c.bottleneck, c.relationDim, true));
      // No bias: the scales are summed and batch-normalised, which would cancel it.
      this.h.push(new Dense(scope.scope(`h${d}`), c.relationDim, c.hidden, false));
    }
    this.outBn = new BatchNorm(scope.scope("out_bn"), c.hidden);
    this.outputDim = c.hidden;
  }

  /** Flat gather indices [B·k·d] into the [B·T, P] frame matrix for every scale d = 2..S. */
  tupleIndices(mask: tf.Tensor2D, ctx: ForwardContext): { perScale: Int32Array[]; hasFrames: Float32Array } {
    const [B, T] = mask.shape;
    const m = mask.dataSync();
    const rand = ctx.training ? seededRandom(ctx.nextSeed()) : undefined;
    const real: number[][] = [];
    const hasFrames = new Float32Array(B);
    for (let b = 0; b < B; b++) {
      const pos: number[] = [];
      for (let t = 0; t < T; t++) if (m[b * T + t] > 0) pos.push(t);
      real.push(pos);
      hasFrames[b] = pos.length > 0 ? 1 : 0;
    }
    const k = this.config.tuplesPerScale;
    const perScale: Int32Array[] = [];
    for (let d = 2; d <= this.config.maxScale; d++) {
      const idx = new Int32Array(B * k * d);
      for (let b = 0; b < B; b++) {
        const pos = real[b];
        if (pos.length === 0) {
          // Any in-range row will do: the video's pooled relation is multiplied by hasFrames = 0.
          idx.fill(b * T, b * k * d, (b + 1) * k * d);
          continue;
        }
        const tuples = sampleTuples(pos.length, d, k, rand);
        for (let j = 0; j < k; j++) for (let i = 0; i < d; i++) idx[(b * k + j) * d + i] = b * T + pos[tuples[j][i]];
      }
      perScale.push(idx);
    }
    return { perScale, hasFrames };
  }

  apply(x: tf.Tensor3D, mask: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const [B, T, D] = x.shape;
    if (D !== this.inputDim) throw new Error(`TRN: expected input dim ${this.inputDim}, got ${D}`);
    if (mask.shape[0] !== B || mask.shape[1] !== T) throw new Error(`TRN: mask ${mask.shape} does not match x ${x.shape}`);
    const { bottleneck: P, tuplesPerScale: k, relationDim: R } = this.config;
    // Draw the sampling seed before any dropout seed, so the seed order is fixed.
    const { perScale, hasFrames } = this.tupleIndices(mask, ctx);

    const mCol = mask.reshape([B * T, 1]);
    const x0 = tf.where(tf.greater(mCol, 0), x.reshape([B * T, D]), 0); // padded frames may hold anything
    const p = tf.relu(this.proj.apply(x0)) as tf.Tensor2D; // [B·T, P]
    const has = tf.tensor2d(hasFrames, [B, 1]);

    let sum: tf.Tensor | undefined;
    for (let s = 0; s < perScale.length; s++) {
      const d = s + 2;
      const rows = gatherRows(p as tf.Tensor2D, tf.tensor1d(perScale[s], "int32")); // [B·k·d, P] (gatherRows: its gradient runs on wasm)
      const r = rows.reshape([B * k, d * P]);
      const g = tf.relu(this.g[s].apply(r)).reshape([B, k, R]);
      const pooled = tf.mul(tf.mean(g, 1), has); // average over tuples; zero for frame-less videos
      const hd = this.h[s].apply(dropout(pooled, this.config.dropout, ctx));
      sum = sum ? tf.add(sum, hd) : hd;
    }
    return this.outBn.apply(sum as tf.Tensor2D, ctx);
  }
}
