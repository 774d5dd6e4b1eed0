/**
 * Deterministic sampling for the batch pipeline: the epoch's shuffled order
 * and which frames of a video fill the model's T time steps.
 *
 * Every random choice is a pure function of its key — (seed, epoch) for the
 * order, (seed, epoch, video id) for a video's frames — never of a PRNG
 * stream shared across videos, so a run resumed mid-epoch reproduces the
 * remaining batches exactly, and a video's frames do not depend on which
 * batch or position it landed in.
 */
import { seededRandom, type Rng } from "../util/random.js";

export type FrameSampling = "segment" | "pad";

export type { Rng };
/** Alea keyed by the given parts (joined with NUL, which no id contains in practice). */
export const keyedRng = seededRandom;

/** Fisher–Yates shuffle in place with `rng`; returns `items`. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  return items;
}

/** The epoch's order of `ids`: a permutation determined by (seed, epoch) alone. */
export function epochOrder(ids: readonly string[], seed: number, epoch: number): string[] {
  return shuffleInPlace(ids.slice(), keyedRng("order", seed, epoch));
}

/**
 * `count` uniforms for a video's segment choices in one epoch: a pure
 * function of (seed, epoch, video id). All modalities of the video share
 * them (segment k uses u[k]), so modalities with aligned frames (YouTube-8M's
 * rgb and audio, one row per second) sample the same moments.
 */
export function frameUniforms(seed: number, epoch: number, videoId: string, count: number): Float64Array {
  const rng = keyedRng("frames", seed, epoch, videoId);
  const u = new Float64Array(count);
  for (let i = 0; i < count; i++) u[i] = rng();
  return u;
}

/** Segment k of T over n frames (n ≥ T): frames [start, end), never empty. */
export function segmentBounds(n: number, segments: number, k: number): { start: number; end: number } {
  return { start: Math.floor((k * n) / segments), end: Math.floor(((k + 1) * n) / segments) };
}

/**
 * Which of a video's `n` real frames fill the first slots of the T steps
 * (the rest are padding). Always increasing, length min(n, T).
 *
 * - `pad`: the first min(n, T) frames.
 * - `segment`, n ≤ T: all n frames in order.
 * - `segment`, n > T: the frames split into T contiguous segments
 *   [⌊kn/T⌋, ⌊(k+1)n/T⌋); with `uniforms` (training) segment k takes frame
 *   start + ⌊u[k]·len⌋, without (evaluation) its centre start + ⌊len/2⌋.
 */
export function frameIndices(n: number, steps: number, sampling: FrameSampling, uniforms?: ArrayLike<number>): Int32Array {
  const kept = Math.min(n, steps);
  const out = new Int32Array(kept);
  if (sampling === "pad" || n <= steps) {
    for (let i = 0; i < kept; i++) out[i] = i;
    return out;
  }
  if (uniforms && uniforms.length < steps) throw new Error(`frameIndices: ${uniforms.length} uniforms for ${steps} segments`);
  for (let k = 0; k < steps; k++) {
    const { start, end } = segmentBounds(n, steps, k);
    const len = end - start;
    const offset = uniforms ? Math.min(len - 1, Math.floor(uniforms[k] * len)) : Math.floor(len / 2);
    out[k] = start + offset;
  }
  return out;
}
