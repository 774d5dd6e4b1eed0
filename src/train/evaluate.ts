/**
 * Evaluation of a model over a stream of batches with the YouTube-8M metrics.
 * Labels a model does not know (evaluating on a separately imported
 * database) count as misses: GAP's denominator and category accuracy's
 * include them, as if the model had ranked them last.
 */
import * as tf from "@tensorflow/tfjs";
import { createCategoryMetrics, createTagMetrics } from "../metrics/index.js";
import { inferenceContext } from "../model/core.js";
import { batchToInputs, disposeInputs, type VideoModel } from "../model/model.js";
import { blendTagProbs } from "../model/neighbourVote.js";
import type { NeighbourVoteConfig } from "../model/config.js";
import type { Batch } from "./batches.js";
import type { NeighbourReference } from "./neighbourReference.js";

export interface EvalMetrics {
  gap20?: number;
  map?: number;
  hit1?: number;
  perr?: number;
  tag_precision?: number;
  tag_recall?: number;
  tag_f1?: number;
  category_accuracy?: number;
  category_macro_f1?: number;
  videos: number;
}

export interface Predictions {
  categoryProbs?: Float32Array;
  tagProbs?: Float32Array;
  embedding: Float32Array;
}

/** Runs the model in inference mode on one batch. */
export function predictBatch(model: VideoModel, batch: Batch): Predictions {
  const inputs = batchToInputs(batch, model);
  try {
    let result: Predictions | undefined;
    // The arrays are not returned from the scope: tf.tidy walks a returned container, a typed array index by index.
    tf.tidy(() => {
      const out = model.forward(inputs, inferenceContext());
      result = {
        categoryProbs: out.categoryLogits ? (tf.softmax(out.categoryLogits, 1).dataSync() as Float32Array) : undefined,
        tagProbs: out.tagLogits ? (tf.sigmoid(out.tagLogits).dataSync() as Float32Array) : undefined,
        embedding: out.embedding.dataSync() as Float32Array,
      };
    });
    return result!;
  } finally {
    disposeInputs(inputs);
  }
}

export interface Evaluator {
  update(batch: Batch, predictions: Predictions): void;
  compute(): EvalMetrics;
  /** AP per model tag (NaN where no positives). */
  tagAveragePrecision(): Float64Array | undefined;
}

export function createEvaluator(model: VideoModel): Evaluator {
  const tagMetrics = model.tagHead ? createTagMetrics(model.labels.tags.length) : undefined;
  const categoryMetrics = model.categoryHead ? createCategoryMetrics(model.labels.categories.length) : undefined;
  let videos = 0;
  let tagPositives = 0;
  let tagUnmapped = 0;
  let categoryLabelled = 0;
  let categoryUnmapped = 0;
  return {
    update(batch, p) {
      videos += batch.size;
      if (tagMetrics && p.tagProbs) {
        tagMetrics.update(p.tagProbs, batch.tags);
        for (let i = 0; i < batch.tags.length; i++) tagPositives += batch.tags[i];
        for (let i = 0; i < batch.size; i++) tagUnmapped += batch.tagsUnmapped[i];
      }
      if (categoryMetrics && p.categoryProbs) {
        categoryMetrics.update(p.categoryProbs, batch.category);
        for (let i = 0; i < batch.size; i++) {
          if (batch.category[i] >= 0) categoryLabelled++;
          else if (batch.categoryUnmapped[i]) categoryUnmapped++;
        }
      }
    },
    compute() {
      const out: EvalMetrics = { videos };
      if (tagMetrics) {
        const t = tagMetrics.compute();
        const scale = tagPositives + tagUnmapped > 0 ? tagPositives / (tagPositives + tagUnmapped) : 1;
        Object.assign(out, { gap20: t.gap20 * scale, map: t.map, hit1: t.hit1, perr: t.perr, tag_precision: t.tag_precision, tag_recall: t.tag_recall * scale, tag_f1: t.tag_f1 });
      }
      if (categoryMetrics) {
        const c = categoryMetrics.compute();
        const scale = categoryLabelled + categoryUnmapped > 0 ? categoryLabelled / (categoryLabelled + categoryUnmapped) : 1;
        Object.assign(out, { category_accuracy: c.category_accuracy * scale, category_macro_f1: c.category_macro_f1 });
      }
      return out;
    },
    tagAveragePrecision() {
      return tagMetrics?.metrics.map.computePerClass();
    },
  };
}

/** Evaluates over batches (up to maxVideos, 0 = all). */
export function evaluateModel(model: VideoModel, batches: Iterable<Batch>, maxVideos = 0): EvalMetrics {
  const evaluator = createEvaluator(model);
  let seen = 0;
  for (const batch of batches) {
    evaluator.update(batch, predictBatch(model, batch));
    seen += batch.size;
    if (maxVideos > 0 && seen >= maxVideos) break;
  }
  return evaluator.compute();
}

/**
 * Evaluates with neighbour-label voting (NeighbourVoteConfig) against
 * `reference`, and the model's own probabilities in the same pass.
 */
export function evaluateWithNeighbours(
  model: VideoModel,
  batches: Iterable<Batch>,
  reference: NeighbourReference,
  config: NeighbourVoteConfig,
): { blended: EvalMetrics; modelOnly: EvalMetrics } {
  const blended = createEvaluator(model);
  const modelOnly = createEvaluator(model);
  for (const batch of batches) {
    const p = predictBatch(model, batch);
    modelOnly.update(batch, p);
    if (p.tagProbs) {
      const T = model.labels.tags.length;
      const near = reference.nearest(batch.ids, p.embedding, config.k);
      const tagProbs = new Float32Array(p.tagProbs.length);
      near.forEach((neighbours, i) => tagProbs.set(blendTagProbs(p.tagProbs!.subarray(i * T, (i + 1) * T), neighbours, config), i * T));
      blended.update(batch, { ...p, tagProbs });
    } else blended.update(batch, p);
  }
  return { blended: blended.compute(), modelOnly: modelOnly.compute() };
}
