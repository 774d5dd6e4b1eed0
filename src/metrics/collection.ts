import {
  checkCategory,
  checkMultiHot,
  checkPositiveInt,
  type CategoryTargets,
  type Metric,
  type MultiHotTargets,
} from "./base.js";
import { CategoryAccuracy, CategoryMacroF1 } from "./category.js";
import { GlobalAveragePrecision } from "./gap.js";
import { HitAtOne, PrecisionAtEqualRecallRate } from "./hit.js";
import { MeanAveragePrecision } from "./map.js";
import { MicroF1, MicroPrecision, MicroRecall } from "./threshold.js";

/** Several metrics over the same inputs, updated together, computed into a plain object. */
export class MetricCollection<TTargets, M extends { [key: string]: Metric<TTargets> }> {
  constructor(readonly metrics: M) {
    const entries = Object.entries(metrics);
    if (entries.length === 0) throw new RangeError("MetricCollection: needs at least one metric");
    const numClasses = entries[0][1].numClasses;
    for (const [key, metric] of entries) {
      if (metric.numClasses !== numClasses) {
        throw new RangeError(
          `MetricCollection: metric "${key}" has numClasses=${metric.numClasses} but "${entries[0][0]}" has ${numClasses}; ` +
            `all metrics in a collection read the same predictions`,
        );
      }
    }
  }

  /**
   * Every metric validates the same way, so a bad batch is rejected by the
   * first one before any metric has accumulated it.
   */
  update(predictions: Float32Array, targets: TTargets): void {
    for (const metric of Object.values(this.metrics)) metric.update(predictions, targets);
  }

  compute(): { [K in keyof M]: number } {
    const out: { [key: string]: number } = {};
    for (const [key, metric] of Object.entries(this.metrics)) out[key] = metric.compute();
    return out as { [K in keyof M]: number };
  }

  reset(): void {
    for (const metric of Object.values(this.metrics)) metric.reset();
  }
}

export interface TagMetricOptions {
  /** Top-k per video for GAP; the result key is `gap${k}`. Default 20. */
  k?: number;
  /** Score threshold for micro precision/recall/F1 (predicted when score > threshold). Default 0.5. */
  threshold?: number;
  /** Passed to MeanAveragePrecision; unset = exact mAP over all videos. */
  mapTopK?: number;
}

export type TagMetrics = {
  [gap: `gap${number}`]: GlobalAveragePrecision;
  map: MeanAveragePrecision;
  hit1: HitAtOne;
  perr: PrecisionAtEqualRecallRate;
  tag_precision: MicroPrecision;
  tag_recall: MicroRecall;
  tag_f1: MicroF1;
};

export type CategoryMetrics = {
  category_accuracy: CategoryAccuracy;
  category_macro_f1: CategoryMacroF1;
};

export type TagMetricValues = { [K in keyof TagMetrics]: number };
export type CategoryMetricValues = { [K in keyof CategoryMetrics]: number };
export type VideoMetricValues = TagMetricValues & CategoryMetricValues;

export function createTagMetrics(
  numTags: number,
  options: TagMetricOptions = {},
): MetricCollection<MultiHotTargets, TagMetrics> {
  const k = options.k ?? 20;
  const threshold = options.threshold ?? 0.5;
  const metrics: TagMetrics = {
    map: new MeanAveragePrecision(numTags, { topK: options.mapTopK }),
    hit1: new HitAtOne(numTags),
    perr: new PrecisionAtEqualRecallRate(numTags),
    tag_precision: new MicroPrecision(numTags, threshold),
    tag_recall: new MicroRecall(numTags, threshold),
    tag_f1: new MicroF1(numTags, threshold),
  };
  metrics[`gap${k}`] = new GlobalAveragePrecision(numTags, k);
  return new MetricCollection(metrics);
}

export function createCategoryMetrics(numCategories: number): MetricCollection<CategoryTargets, CategoryMetrics> {
  return new MetricCollection({
    category_accuracy: new CategoryAccuracy(numCategories),
    category_macro_f1: new CategoryMacroF1(numCategories),
  });
}

/** One batch of videos: tag scores/targets and category scores/targets for the same rows. */
export interface VideoBatch {
  tagScores: Float32Array;
  tagTargets: MultiHotTargets;
  categoryScores: Float32Array;
  categoryTargets: CategoryTargets;
}

export interface VideoEvaluatorOptions extends TagMetricOptions {
  numTags: number;
  numCategories: number;
}

/** All tag and category metrics of the project, fed from the same batches. */
export class VideoEvaluator {
  readonly tags: MetricCollection<MultiHotTargets, TagMetrics>;
  readonly category: MetricCollection<CategoryTargets, CategoryMetrics>;
  private readonly numTags: number;
  private readonly numCategories: number;

  constructor(options: VideoEvaluatorOptions) {
    checkPositiveInt("VideoEvaluator: numTags", options.numTags);
    checkPositiveInt("VideoEvaluator: numCategories", options.numCategories);
    this.numTags = options.numTags;
    this.numCategories = options.numCategories;
    this.tags = createTagMetrics(options.numTags, options);
    this.category = createCategoryMetrics(options.numCategories);
  }

  update(batch: VideoBatch): void {
    // Check both heads first so a bad category batch cannot leave the tag metrics half-updated.
    const tagRows = checkMultiHot("VideoEvaluator tags", batch.tagScores, batch.tagTargets, this.numTags);
    const categoryRows = checkCategory(
      "VideoEvaluator category",
      batch.categoryScores,
      batch.categoryTargets,
      this.numCategories,
    );
    if (tagRows !== categoryRows) {
      throw new RangeError(
        `VideoEvaluator: tag batch has ${tagRows} videos but category batch has ${categoryRows}; both heads must describe the same videos`,
      );
    }
    this.tags.update(batch.tagScores, batch.tagTargets);
    this.category.update(batch.categoryScores, batch.categoryTargets);
  }

  compute(): VideoMetricValues {
    return { ...this.tags.compute(), ...this.category.compute() };
  }

  /** AP per tag, indexed by tag id; NaN for tags with no positive label. */
  tagAveragePrecision(): Float64Array {
    return this.tags.metrics.map.computePerClass();
  }

  reset(): void {
    this.tags.reset();
    this.category.reset();
  }
}

/** Runs every batch through a fresh VideoEvaluator and returns the metric values. */
export function evaluate(batches: Iterable<VideoBatch>, options: VideoEvaluatorOptions): VideoMetricValues {
  const evaluator = new VideoEvaluator(options);
  for (const batch of batches) evaluator.update(batch);
  return evaluator.compute();
}

/** evaluate() for batches produced asynchronously (e.g. a streaming data loader). */
export async function evaluateAsync(
  batches: AsyncIterable<VideoBatch> | Iterable<VideoBatch>,
  options: VideoEvaluatorOptions,
): Promise<VideoMetricValues> {
  const evaluator = new VideoEvaluator(options);
  for await (const batch of batches) evaluator.update(batch);
  return evaluator.compute();
}
