/**
 * Mixup (Zhang et al. 2018) for the trainer: each training batch is mixed
 * with a shuffled copy of itself, x̃ = λ·x + (1 − λ)·x[π], and the loss is the
 * same mix of the two label sets' losses, λ·L(y) + (1 − λ)·L(y[π]) (for the
 * tag and category cross-entropies that is exactly the loss of the mixed
 * targets). λ ~ Beta(α, α), folded to λ ≥ ½ so the first video dominates.
 *
 * The mix is applied to each input's representation inside the model (after
 * input.normalize, before an adversarial perturbation; title embeddings after
 * lookup), see VideoModel.forward. Padded frames/tokens are zero before they
 * are mixed and the mixed mask is the union of the two masks, so a frame that
 * only one of the two videos has keeps that video's (scaled) frame.
 *
 * λ and π come from the step's seed: a run (and a resumed run) is reproducible.
 */
import * as tf from "@tensorflow/tfjs";
import { gatherRows } from "./layers.js";
import { seededRandom, type Rng } from "../util/random.js";

export interface MixPlan {
  /** Weight of the batch itself (≥ ½). */
  lambda: number;
  /** π: row i is mixed with row permutation[i]. */
  permutation: Int32Array;
}

/** A Gamma(shape, 1) draw (Marsaglia–Tsang; shape < 1 by the boost u^(1/shape)). */
export function sampleGamma(shape: number, rng: Rng): number {
  if (!(shape > 0)) throw new Error(`gamma shape must be > 0, got ${shape}`);
  if (shape < 1) return sampleGamma(shape + 1, rng) * Math.pow(Math.max(rng(), 1e-300), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      // Standard normal by Box–Muller.
      x = Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-300))) * Math.cos(2 * Math.PI * rng());
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(Math.max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** A Beta(α, α) draw. */
export function sampleBeta(alpha: number, rng: Rng): number {
  const a = sampleGamma(alpha, rng);
  const b = sampleGamma(alpha, rng);
  return a + b > 0 ? a / (a + b) : 0.5;
}

/** λ and π for one batch of `size` rows, from `seed` (deterministic). */
export function planMix(alpha: number, size: number, seed: number): MixPlan {
  const rng = seededRandom("mixup", seed);
  const l = sampleBeta(alpha, rng);
  const permutation = Int32Array.from({ length: size }, (_, i) => i);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [permutation[i], permutation[j]] = [permutation[j], permutation[i]];
  }
  return { lambda: Math.max(l, 1 - l), permutation };
}

/** λ·a + (1 − λ)·a[π] along the batch axis (0); differentiable on every backend (gatherRows). */
export function mixRows<T extends tf.Tensor>(a: T, plan: MixPlan): T {
  return tf.tidy(() => {
    const flat = tf.reshape(a, [a.shape[0], -1]) as tf.Tensor2D;
    const shuffled = tf.reshape(gatherRows(flat, tf.tensor1d(plan.permutation, "int32")), a.shape);
    return tf.add(tf.mul(a, plan.lambda), tf.mul(shuffled, 1 - plan.lambda)) as T;
  });
}

/** max(a, a[π]) along the batch axis: the union of two 0/1 masks or presence flags. */
export function unionRows<T extends tf.Tensor>(a: T, plan: MixPlan): T {
  return tf.tidy(() => tf.maximum(a, tf.gather(a, tf.tensor1d(plan.permutation, "int32"))) as T);
}

/** a[π] along the batch axis (the second label set). */
export function permuteRows<T extends tf.Tensor>(a: T, plan: MixPlan): T {
  return tf.tidy(() => tf.gather(a, tf.tensor1d(plan.permutation, "int32")) as T);
}
