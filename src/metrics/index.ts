/** Public API of the evaluation metrics (YouTube-8M definitions, torchmetrics-style update/compute). */
export {
  checkCategory,
  checkMultiHot,
  checkPredictions,
  CategoryMetric,
  MultiLabelMetric,
  type CategoryTargets,
  type Metric,
  type MultiHotTargets,
} from "./base.js";
export { averagePrecision, ranksAhead } from "./ranking.js";
export { GlobalAveragePrecision } from "./gap.js";
export { MeanAveragePrecision, type MeanAveragePrecisionOptions } from "./map.js";
export { HitAtOne, PrecisionAtEqualRecallRate } from "./hit.js";
export { MicroF1, MicroPrecision, MicroRecall } from "./threshold.js";
export { CategoryAccuracy, CategoryMacroF1, predictedCategory } from "./category.js";
export {
  createCategoryMetrics,
  createTagMetrics,
  evaluate,
  evaluateAsync,
  MetricCollection,
  VideoEvaluator,
  type CategoryMetrics,
  type CategoryMetricValues,
  type TagMetricOptions,
  type TagMetrics,
  type TagMetricValues,
  type VideoBatch,
  type VideoEvaluatorOptions,
  type VideoMetricValues,
} from "./collection.js";
