/**
 * Shared contract and input checks for every metric in src/metrics.
 *
 * Inputs are plain typed arrays: predictions are a row-major Float32Array of
 * shape [batch, numClasses] (numClasses is fixed when the metric is built, so
 * the batch size is predictions.length / numClasses). Tag targets are multi-hot
 * with the same shape; category targets hold one class index per video, -1
 * meaning "no label".
 */

/** Multi-hot tag targets, same shape as the predictions; every value 0 or 1. */
export type MultiHotTargets = Uint8Array | Float32Array;
/** One category index per video; -1 means the video has no label and is skipped. */
export type CategoryTargets = Int32Array;

/** torchmetrics-style metric: accumulate with update(), read with compute(). */
export interface Metric<TTargets> {
  readonly name: string;
  readonly numClasses: number;
  update(predictions: Float32Array, targets: TTargets): void;
  compute(): number;
  reset(): void;
}

export function checkPositiveInt(what: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${what} must be a positive integer, got ${String(value)}`);
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}

/** Checks the prediction matrix and returns its batch size (number of rows). */
export function checkPredictions(name: string, predictions: Float32Array, numClasses: number): number {
  if (!(predictions instanceof Float32Array)) {
    throw new TypeError(`${name}: predictions must be a Float32Array, got ${describe(predictions)}`);
  }
  const rows = Math.floor(predictions.length / numClasses);
  const extra = predictions.length - rows * numClasses;
  if (extra !== 0) {
    throw new RangeError(
      `${name}: predictions has ${predictions.length} values, which is not a whole number of rows of ` +
        `numClasses=${numClasses} (${rows} full rows and ${extra} left over); every row must hold exactly ${numClasses} scores`,
    );
  }
  // A NaN score has no place in a ranking; sorting would silently scatter it.
  for (let i = 0; i < predictions.length; i++) {
    if (Number.isNaN(predictions[i])) {
      throw new RangeError(
        `${name}: predictions[row ${Math.floor(i / numClasses)}, class ${i % numClasses}] is NaN`,
      );
    }
  }
  return rows;
}

/** Checks predictions plus multi-hot targets of the same shape; returns the batch size. */
export function checkMultiHot(
  name: string,
  predictions: Float32Array,
  targets: MultiHotTargets,
  numClasses: number,
): number {
  const rows = checkPredictions(name, predictions, numClasses);
  if (!(targets instanceof Uint8Array) && !(targets instanceof Float32Array)) {
    throw new TypeError(`${name}: multi-hot targets must be a Uint8Array or Float32Array, got ${describe(targets)}`);
  }
  if (targets.length !== predictions.length) {
    throw new RangeError(
      `${name}: targets has ${targets.length} values but predictions are [${rows} x ${numClasses}] = ` +
        `${predictions.length}; multi-hot targets must have the predictions' shape`,
    );
  }
  // Soft labels would be silently read as positives or negatives; refuse them.
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (t !== 0 && t !== 1) {
      throw new RangeError(
        `${name}: targets[row ${Math.floor(i / numClasses)}, class ${i % numClasses}] is ${t}; ` +
          `multi-hot targets must be exactly 0 or 1`,
      );
    }
  }
  return rows;
}

/** Checks predictions plus one category index (or -1) per row; returns the batch size. */
export function checkCategory(
  name: string,
  predictions: Float32Array,
  targets: CategoryTargets,
  numClasses: number,
): number {
  const rows = checkPredictions(name, predictions, numClasses);
  if (!(targets instanceof Int32Array)) {
    throw new TypeError(`${name}: category targets must be an Int32Array of class indices, got ${describe(targets)}`);
  }
  if (targets.length !== rows) {
    throw new RangeError(
      `${name}: targets has ${targets.length} entries but predictions have ${rows} rows of numClasses=${numClasses}; ` +
        `category targets need exactly one class index (or -1) per video`,
    );
  }
  for (let i = 0; i < rows; i++) {
    const t = targets[i];
    if (t < -1 || t >= numClasses) {
      throw new RangeError(
        `${name}: targets[${i}] is ${t}; a category must be in [0, ${numClasses - 1}] or -1 for "no label"`,
      );
    }
  }
  return rows;
}

/**
 * Common update/compute/reset plumbing. compute() before any video has been
 * seen is a caller bug and throws; a metric that has seen videos but has
 * nothing to average (e.g. GAP with no positive labels) returns NaN instead.
 */
abstract class BaseMetric<TTargets> implements Metric<TTargets> {
  private videosSeen = 0;

  constructor(
    readonly name: string,
    readonly numClasses: number,
  ) {
    checkPositiveInt(`${name}: numClasses`, numClasses);
  }

  /** Number of videos (rows) accumulated since construction or the last reset(). */
  get videos(): number {
    return this.videosSeen;
  }

  update(predictions: Float32Array, targets: TTargets): void {
    // Validate the whole batch before touching any state, so a bad batch leaves the metric unchanged.
    const rows = this.check(predictions, targets);
    this.accumulate(predictions, targets, rows);
    this.videosSeen += rows;
  }

  compute(): number {
    this.requireVideos();
    return this.result();
  }

  reset(): void {
    this.videosSeen = 0;
    this.clear();
  }

  protected requireVideos(): void {
    if (this.videosSeen === 0) {
      throw new Error(`${this.name}: compute() called before any video was passed to update()`);
    }
  }

  protected abstract check(predictions: Float32Array, targets: TTargets): number;
  protected abstract accumulate(predictions: Float32Array, targets: TTargets, rows: number): void;
  protected abstract result(): number;
  protected abstract clear(): void;
}

export abstract class MultiLabelMetric extends BaseMetric<MultiHotTargets> {
  protected check(predictions: Float32Array, targets: MultiHotTargets): number {
    return checkMultiHot(this.name, predictions, targets, this.numClasses);
  }
}

export abstract class CategoryMetric extends BaseMetric<CategoryTargets> {
  protected check(predictions: Float32Array, targets: CategoryTargets): number {
    return checkCategory(this.name, predictions, targets, this.numClasses);
  }
}
