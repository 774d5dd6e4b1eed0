import { MultiLabelMetric, type MultiHotTargets } from "./base.js";

/**
 * Micro-averaged counts for multi-label tags at a fixed score threshold: every
 * (video, tag) cell is one binary decision, predicted positive when
 * score > threshold (strict, as torchmetrics binarises; scores are used as
 * given, no sigmoid is applied). Precision, recall and F1 are then taken from
 * the pooled tp/fp/fn. A 0/0 ratio is 0, the sklearn/torchmetrics
 * zero_division default, so a model that predicts no tags scores 0 precision.
 */
abstract class MicroStatScores extends MultiLabelMetric {
  protected tp = 0;
  protected fp = 0;
  protected fn = 0;

  constructor(
    name: string,
    numClasses: number,
    readonly threshold: number,
  ) {
    super(name, numClasses);
    if (!Number.isFinite(threshold)) {
      throw new RangeError(`${name}: threshold must be a finite number, got ${String(threshold)}`);
    }
  }

  protected accumulate(predictions: Float32Array, targets: MultiHotTargets, rows: number): void {
    const cells = rows * this.numClasses;
    for (let i = 0; i < cells; i++) {
      const predicted = predictions[i] > this.threshold;
      if (targets[i] === 1) {
        if (predicted) this.tp++;
        else this.fn++;
      } else if (predicted) {
        this.fp++;
      }
    }
  }

  protected clear(): void {
    this.tp = 0;
    this.fp = 0;
    this.fn = 0;
  }
}

function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

export class MicroPrecision extends MicroStatScores {
  constructor(numClasses: number, threshold = 0.5) {
    super(`precision@${threshold}`, numClasses, threshold);
  }

  protected result(): number {
    return ratio(this.tp, this.tp + this.fp);
  }
}

export class MicroRecall extends MicroStatScores {
  constructor(numClasses: number, threshold = 0.5) {
    super(`recall@${threshold}`, numClasses, threshold);
  }

  protected result(): number {
    return ratio(this.tp, this.tp + this.fn);
  }
}

export class MicroF1 extends MicroStatScores {
  constructor(numClasses: number, threshold = 0.5) {
    super(`f1@${threshold}`, numClasses, threshold);
  }

  /** 2tp / (2tp + fp + fn): the harmonic mean of precision and recall, without their 0/0 cases. */
  protected result(): number {
    return ratio(2 * this.tp, 2 * this.tp + this.fp + this.fn);
  }
}
