/**
 * Parity between an exported ONNX model (onnxruntime-node) and the tfjs
 * model it came from (inference context), on the same inputs.
 *
 * Error measure, per output: max|onnx − tfjs| / max(1e-6, max|tfjs|) — the
 * worst absolute difference relative to the output's largest magnitude.
 */
import { seededRandom } from "../util/random.js";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { inferenceContext } from "../model/core.js";
import { UNK_ID } from "../model/encoders/embedding.js";
import type { ModelInputs, VideoModel } from "../model/model.js";

export interface ModalityFeed {
  steps: number;
  dim: number;
  /** [B, T, D]. */
  values: Float32Array;
  /** [B, T]. */
  mask: Float32Array;
  /** [B]. */
  present: Float32Array;
}

export interface TitleFeed {
  length: number;
  /** [B, L]. */
  ids: Int32Array;
  mask: Float32Array;
  present: Float32Array;
}

export interface Feeds {
  batch: number;
  modalities: Record<string, ModalityFeed>;
  title?: TitleFeed;
}

export interface OutputValue {
  dims: number[];
  data: Float32Array;
}

export type Outputs = Record<string, OutputValue>;

/** The tfjs model's outputs under the exported names. */
export function tfjsOutputs(model: VideoModel, feeds: Feeds): Outputs {
  const B = feeds.batch;
  const result: Outputs = {};
  tf.tidy(() => {
    const inputs: ModelInputs = { modalities: {} };
    for (const m of model.config.input.modalities) {
      const f = feeds.modalities[m];
      inputs.modalities[m] = {
        values: tf.tensor3d(f.values, [B, f.steps, f.dim]),
        mask: tf.tensor2d(f.mask, [B, f.steps]),
        present: tf.tensor1d(f.present),
      };
    }
    if (model.config.input.useTitle) {
      const t = feeds.title;
      if (!t) throw new Error("feeds lack a title");
      inputs.title = { ids: tf.tensor2d(t.ids, [B, t.length], "int32"), mask: tf.tensor2d(t.mask, [B, t.length]), present: tf.tensor1d(t.present) };
    }
    const out = model.forward(inputs, inferenceContext());
    const put = (name: string, x: tf.Tensor) => {
      result[name] = { dims: x.shape, data: Float32Array.from(x.dataSync() as Float32Array) };
    };
    if (model.categoryHead && out.categoryLogits) put("category_probs", model.categoryHead.probabilities(out.categoryLogits));
    if (model.tagHead && out.tagLogits) put("tag_probs", model.tagHead.probabilities(out.tagLogits));
    put("embedding", out.embedding);
  });
  return result;
}

/** The ORT feeds of the exported contract. */
export function ortFeeds(feeds: Feeds): Record<string, ort.Tensor> {
  const B = feeds.batch;
  const out: Record<string, ort.Tensor> = {};
  for (const [m, f] of Object.entries(feeds.modalities)) {
    out[m] = new ort.Tensor("float32", f.values, [B, f.steps, f.dim]);
    out[`${m}_mask`] = new ort.Tensor("float32", f.mask, [B, f.steps]);
    out[`${m}_present`] = new ort.Tensor("float32", f.present, [B]);
  }
  if (feeds.title) {
    const t = feeds.title;
    out.title_ids = new ort.Tensor("int64", BigInt64Array.from(t.ids, (v) => BigInt(v)), [B, t.length]);
    out.title_mask = new ort.Tensor("float32", t.mask, [B, t.length]);
    out.title_present = new ort.Tensor("float32", t.present, [B]);
  }
  return out;
}

export async function onnxOutputs(session: ort.InferenceSession, feeds: Feeds): Promise<Outputs> {
  const all = ortFeeds(feeds);
  // Only the inputs the graph declares (a modality the model does not use is left out).
  const used = Object.fromEntries(session.inputNames.map((n) => [n, all[n]]));
  const missing = session.inputNames.filter((n) => !all[n]);
  if (missing.length > 0) throw new Error(`feeds lack inputs ${missing.join(", ")}`);
  const res = await session.run(used);
  const result: Outputs = {};
  for (const name of session.outputNames) {
    const t = res[name];
    result[name] = { dims: t.dims.map(Number), data: Float32Array.from(t.data as Float32Array) };
  }
  return result;
}

/** max|a − b| / max(1e-6, max|b|); NaN anywhere gives Infinity. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!Number.isFinite(d)) return Infinity;
    diff = Math.max(diff, d);
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

/** Per-output relative error of `actual` against `expected`; a missing output or a shape mismatch throws. */
export function compareOutputs(actual: Outputs, expected: Outputs): Record<string, number> {
  const names = Object.keys(expected);
  const extra = Object.keys(actual).filter((n) => !(n in expected));
  if (extra.length > 0) throw new Error(`ONNX has outputs the tfjs model lacks: ${extra.join(", ")}`);
  const errors: Record<string, number> = {};
  for (const n of names) {
    const a = actual[n];
    if (!a) throw new Error(`ONNX lacks output ${n}`);
    if (a.dims.join("x") !== expected[n].dims.join("x")) throw new Error(`${n}: ONNX shape [${a.dims}] vs tfjs [${expected[n].dims}]`);
    errors[n] = relativeError(a.data, expected[n].data);
  }
  return errors;
}

/** A seeded PRNG for reproducible test inputs. */
export function prng(seed: number): () => number {
  return seededRandom("verify", seed);
}

export interface RandomFeedOptions {
  batch: number;
  /** Steps per modality (default: the config's frames). */
  frames?: Record<string, number>;
  /** Title length (default: config.input.titleMaxTokens). */
  titleLength?: number;
  seed: number;
  /** Masks with holes (not only a prefix of ones), which tfjs also handles. */
  holes?: boolean;
}

/**
 * Random inputs that hit the masking cases: row 0 full length; other rows
 * padded at random lengths, with finite garbage in padded steps; row 1
 * misses the first modality and row 2 the second (present 0, all-zero mask);
 * titles mix unknown tokens (id 1) with known ones, row 1's title is empty.
 */
export function randomFeeds(model: VideoModel, options: RandomFeedOptions): Feeds {
  const rand = prng(options.seed);
  const B = options.batch;
  const cfg = model.config.input;
  const mask = (steps: number, b: number, missing: boolean): Float32Array => {
    const row = new Float32Array(steps);
    if (missing) return row;
    if (options.holes && b > 0) {
      for (let t = 0; t < steps; t++) row[t] = rand() < 0.6 ? 1 : 0;
      if (!row.some((v) => v > 0)) row[Math.floor(rand() * steps)] = 1;
      return row;
    }
    const n = b === 0 ? steps : 1 + Math.floor(rand() * steps);
    row.fill(1, 0, n);
    return row;
  };
  const modalities: Record<string, ModalityFeed> = {};
  cfg.modalities.forEach((m, mi) => {
    const steps = options.frames?.[m] ?? cfg.features[m].frames;
    const dim = cfg.features[m].dim;
    const f: ModalityFeed = { steps, dim, values: new Float32Array(B * steps * dim), mask: new Float32Array(B * steps), present: new Float32Array(B) };
    for (let b = 0; b < B; b++) {
      const missing = B > 1 && b === 1 + mi;
      const row = mask(steps, b, missing);
      f.mask.set(row, b * steps);
      f.present[b] = missing ? 0 : 1;
      for (let t = 0; t < steps; t++) {
        for (let d = 0; d < dim; d++) {
          // Real steps ~ U(−2, 2); padded steps hold larger garbage that must not leak.
          f.values[(b * steps + t) * dim + d] = row[t] > 0 ? 4 * rand() - 2 : 50 * (rand() - 0.5);
        }
      }
    }
    modalities[m] = f;
  });
  let title: TitleFeed | undefined;
  if (cfg.useTitle) {
    const L = options.titleLength ?? cfg.titleMaxTokens;
    const V = model.vocabSize;
    title = { length: L, ids: new Int32Array(B * L), mask: new Float32Array(B * L), present: new Float32Array(B) };
    for (let b = 0; b < B; b++) {
      const row = mask(L, b, B > 1 && b === 1);
      for (let t = 0; t < L; t++) {
        if (row[t] === 0) continue;
        title.mask[b * L + t] = 1;
        title.ids[b * L + t] = rand() < 0.25 || V <= 2 ? UNK_ID : 2 + Math.floor(rand() * (V - 2));
      }
      title.present[b] = row.some((v) => v > 0) ? 1 : 0;
    }
  }
  return { batch: B, modalities, title };
}

export interface ParityReport {
  /** Worst relative error per output over all cases. */
  errors: Record<string, number>;
  cases: number;
}

/** Runs every feed through tfjs and the ONNX bytes and returns the worst error per output. */
export async function checkParity(model: VideoModel, onnx: Uint8Array | ort.InferenceSession, cases: Feeds[]): Promise<ParityReport> {
  const session = onnx instanceof Uint8Array ? await ort.InferenceSession.create(onnx) : onnx;
  const errors: Record<string, number> = {};
  try {
    for (const feeds of cases) {
      const e = compareOutputs(await onnxOutputs(session, feeds), tfjsOutputs(model, feeds));
      for (const [k, v] of Object.entries(e)) errors[k] = Math.max(errors[k] ?? 0, v);
    }
  } finally {
    if (onnx instanceof Uint8Array) await session.release();
  }
  return { errors, cases: cases.length };
}
