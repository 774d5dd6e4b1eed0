/**
 * Fusion of the per-modality vectors (video, audio, title, …) into the video
 * embedding [B, embeddingDim].
 *
 * A missing modality is masked, not imputed: its vector is zeroed and the
 * block is told it is missing (concat_se appends the presence flags to its
 * input; gate masks that modality's gate out and renormalises the others), so
 * the output cannot depend on whatever the missing vector held.
 *
 * Modality dropout (training only) removes whole modalities per video at a
 * configurable rate, never all the present ones of a video, so the model
 * learns to cope with the missing-modality case it will meet at inference.
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ForwardContext, ParamScope } from "./core.js";
import { ContextGate, Dense, dropout } from "./layers.js";

const common = {
  embeddingDim: z.number().int().positive().default(256),
  /** Dropout on the fusion's input side (reference: keep 0.8). */
  dropout: z.number().min(0).lt(1).default(0.2),
  /** Per video and modality, probability of dropping a present modality in training. */
  modalityDropout: z.number().min(0).lt(1).default(0),
};

export const ConcatSeFusionConfig = z.object({
  type: z.literal("concat_se"),
  /** SE bottleneck reduction (reference: 8). */
  seReduction: z.number().int().positive().default(8),
  ...common,
});
export type ConcatSeFusionConfig = z.infer<typeof ConcatSeFusionConfig>;

export const GateFusionConfig = z.object({ type: z.literal("gate"), ...common });
export type GateFusionConfig = z.infer<typeof GateFusionConfig>;

export const FusionConfig = z.discriminatedUnion("type", [ConcatSeFusionConfig, GateFusionConfig]);
export type FusionConfig = z.infer<typeof FusionConfig>;

/** A fusion config as written by a user: `type` may be left out for the default concat_se. */
export type FusionConfigInput = z.input<typeof FusionConfig> | Omit<z.input<typeof ConcatSeFusionConfig>, "type">;

export function parseFusionConfig(config: FusionConfigInput = {}): FusionConfig {
  return FusionConfig.parse("type" in config ? config : { ...config, type: "concat_se" });
}

export interface Fusion {
  readonly embeddingDim: number;
  /**
   * vectors[i] [B, D_i]; present[i] [B] (1 = modality i present for that
   * video). Returns the fused vector [B, embeddingDim].
   */
  apply(vectors: tf.Tensor2D[], present: tf.Tensor1D[], ctx: ForwardContext): tf.Tensor2D;
}

/**
 * Drops each present modality of each video with probability `rate`, from one
 * uniform draw [B, M] with `seed`. If that would drop every present modality
 * of a video, the one with the largest draw is kept. Returns new flags.
 */
export function dropModalities(present: tf.Tensor1D[], rate: number, seed: number): tf.Tensor1D[] {
  // With one modality there is nothing that may be dropped.
  if (present.length < 2) return present.map((x) => tf.cast(x, "float32") as tf.Tensor1D);
  return tf.tidy(() => {
    const m = present.length;
    const p = tf.stack(present.map((x) => tf.cast(x, "float32")), 1) as tf.Tensor2D; // [B, M]
    const b = p.shape[0];
    const u = tf.randomUniform([b, m], 0, 1, "float32", seed);
    const kept = tf.mul(p, tf.cast(tf.greaterEqual(u, rate), "float32"));
    const anyKept = tf.max(kept, 1, true); // [B, 1]
    // Largest draw among present modalities (absent ones pushed below 0).
    const uPresent = tf.add(tf.mul(u, p), tf.sub(p, 1));
    const rescue = tf.mul(tf.oneHot(tf.argMax(uPresent, 1), m).toFloat(), p);
    const out = tf.add(kept, tf.mul(rescue, tf.sub(1, anyKept)));
    return tf.unstack(out, 1) as tf.Tensor1D[];
  });
}

function checkInputs(vectors: tf.Tensor2D[], present: tf.Tensor1D[], dims: number[]): void {
  if (vectors.length !== dims.length || present.length !== dims.length) {
    throw new Error(`fusion: built for ${dims.length} modalities, got ${vectors.length} vectors and ${present.length} presence flags`);
  }
  vectors.forEach((v, i) => {
    if (v.shape[1] !== dims[i]) throw new Error(`fusion: modality ${i} is ${v.shape[1]}-d, expected ${dims[i]}`);
  });
}

/** Presence flags after modality dropout (training only), as float [B, 1] columns. */
function effectivePresence(present: tf.Tensor1D[], rate: number, ctx: ForwardContext): tf.Tensor2D[] {
  const flags = ctx.training && rate > 0 ? dropModalities(present, rate, ctx.nextSeed()) : present;
  return flags.map((f) => tf.cast(f, "float32").reshape([-1, 1]) as tf.Tensor2D);
}

/** concat(v_i·p_i …, p_1 … p_M) → SE gate → dropout → Dense(embeddingDim). */
export class ConcatSeFusion implements Fusion {
  readonly embeddingDim: number;
  readonly gate: ContextGate;
  readonly dense: Dense;
  constructor(
    readonly config: ConcatSeFusionConfig,
    scope: ParamScope,
    readonly inputDims: number[],
  ) {
    const width = inputDims.reduce((a, d) => a + d, 0) + inputDims.length;
    this.gate = new ContextGate(scope.scope("se"), width, config.seReduction);
    this.dense = new Dense(scope.scope("dense"), width, config.embeddingDim);
    this.embeddingDim = config.embeddingDim;
  }

  apply(vectors: tf.Tensor2D[], present: tf.Tensor1D[], ctx: ForwardContext): tf.Tensor2D {
    checkInputs(vectors, present, this.inputDims);
    return tf.tidy(() => {
      const p = effectivePresence(present, this.config.modalityDropout, ctx);
      const x = tf.concat([...vectors.map((v, i) => tf.mul(v, p[i])), ...p], 1) as tf.Tensor2D;
      const gated = this.gate.apply(x, ctx);
      return this.dense.apply(dropout(gated, this.config.dropout, ctx)) as tf.Tensor2D;
    });
  }
}

/**
 * Gate fusion: y = Σ_i g̃_i · W_i(v_i), with g = σ(Dense(concat(v_i·p_i …,
 * p …))) [B, M] and g̃_i = g_i·p_i / (Σ_j g_j·p_j + ε): missing modalities get
 * weight 0 and the present ones are renormalised.
 */
export class GateFusion implements Fusion {
  static readonly EPS = 1e-6;
  readonly embeddingDim: number;
  readonly projections: Dense[];
  readonly gateDense: Dense;
  constructor(
    readonly config: GateFusionConfig,
    scope: ParamScope,
    readonly inputDims: number[],
  ) {
    this.projections = inputDims.map((d, i) => new Dense(scope.scope(`proj_${i}`), d, config.embeddingDim));
    const width = inputDims.reduce((a, d) => a + d, 0) + inputDims.length;
    this.gateDense = new Dense(scope.scope("gate"), width, inputDims.length);
    this.embeddingDim = config.embeddingDim;
  }

  apply(vectors: tf.Tensor2D[], present: tf.Tensor1D[], ctx: ForwardContext): tf.Tensor2D {
    return this.forward(vectors, present, ctx).fused;
  }

  /** The renormalised gate weights [B, M] (0 for a missing modality), for inspection. */
  gateWeights(vectors: tf.Tensor2D[], present: tf.Tensor1D[], ctx: ForwardContext): tf.Tensor2D {
    return this.forward(vectors, present, ctx).weights;
  }

  private forward(vectors: tf.Tensor2D[], present: tf.Tensor1D[], ctx: ForwardContext): { fused: tf.Tensor2D; weights: tf.Tensor2D } {
    checkInputs(vectors, present, this.inputDims);
    return tf.tidy(() => {
      const p = effectivePresence(present, this.config.modalityDropout, ctx);
      const zeroed = vectors.map((v, i) => dropout(tf.mul(v, p[i]) as tf.Tensor2D, this.config.dropout, ctx));
      const pm = tf.concat(p, 1); // [B, M]
      const g = tf.mul(tf.sigmoid(this.gateDense.apply(tf.concat([...zeroed, ...p], 1))), pm);
      const weights = tf.div(g, tf.add(tf.sum(g, 1, true), GateFusion.EPS)) as tf.Tensor2D; // [B, M]
      let y: tf.Tensor = tf.zeros([vectors[0].shape[0], this.embeddingDim]);
      for (let i = 0; i < vectors.length; i++) {
        const wi = tf.slice(weights, [0, i], [-1, 1]);
        y = tf.add(y, tf.mul(this.projections[i].apply(zeroed[i]), wi));
      }
      return { fused: y as tf.Tensor2D, weights };
    });
  }
}

export function buildFusion(config: FusionConfigInput, scope: ParamScope, inputDims: number[]): Fusion {
  if (inputDims.length === 0) throw new Error("fusion needs at least one modality");
  const c = parseFusionConfig(config);
  return c.type === "concat_se" ? new ConcatSeFusion(c, scope, inputDims) : new GateFusion(c, scope, inputDims);
}

/** Row-wise x / ‖x‖₂ (ε-guarded so a zero row stays zero): the exported embedding. */
export function l2Normalize(x: tf.Tensor2D, epsilon = 1e-12): tf.Tensor2D {
  return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), 1, true), epsilon))) as tf.Tensor2D);
}
