import { CategoryMetric, type CategoryTargets } from "./base.js";

/**
 * The predicted category of one row: the highest score, with ties resolved
 * against the model as in ranking.ts. If another class ties with the target at
 * the top, the lowest-indexed such other class is predicted, so a tie is never
 * a correct prediction (torch/numpy argmax would take the lowest index).
 */
export function predictedCategory(scores: Float32Array, offset: number, numClasses: number, target: number): number {
  let best = 0;
  for (let c = 1; c < numClasses; c++) {
    const s = scores[offset + c];
    const b = scores[offset + best];
    if (s > b || (s === b && best === target)) best = c;
  }
  return best;
}

/** Top-1 accuracy over videos with a category label (-1 rows are skipped). */
export class CategoryAccuracy extends CategoryMetric {
  private correct = 0;
  private labelled = 0;

  constructor(numClasses: number) {
    super("category accuracy", numClasses);
  }

  protected accumulate(predictions: Float32Array, targets: CategoryTargets, rows: number): void {
    const n = this.numClasses;
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t < 0) continue;
      this.labelled++;
      if (predictedCategory(predictions, r * n, n, t) === t) this.correct++;
    }
  }

  /** NaN when every video seen so far was unlabelled. */
  protected result(): number {
    return this.labelled === 0 ? NaN : this.correct / this.labelled;
  }

  protected clear(): void {
    this.correct = 0;
    this.labelled = 0;
  }
}

/**
 * Macro F1 over categories: per class F1 = 2tp / (2tp + fp + fn), averaged
 * over the classes that occur among the labelled videos' targets or
 * predictions (sklearn's f1_score(average="macro") label set). Classes that
 * never occur would be 0/0 and are left out rather than counted as 0 or 1.
 * Unlabelled (-1) videos contribute nothing, not even their predictions.
 */
export class CategoryMacroF1 extends CategoryMetric {
  private readonly tp: Float64Array;
  private readonly fp: Float64Array;
  private readonly fn: Float64Array;

  constructor(numClasses: number) {
    super("category macro-F1", numClasses);
    this.tp = new Float64Array(numClasses);
    this.fp = new Float64Array(numClasses);
    this.fn = new Float64Array(numClasses);
  }

  protected accumulate(predictions: Float32Array, targets: CategoryTargets, rows: number): void {
    const n = this.numClasses;
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t < 0) continue;
      const p = predictedCategory(predictions, r * n, n, t);
      if (p === t) {
        this.tp[t]++;
      } else {
        this.fp[p]++;
        this.fn[t]++;
      }
    }
  }

  /** F1 per class, NaN for classes that occurred in neither targets nor predictions. */
  computePerClass(): Float64Array {
    this.requireVideos();
    const f1 = new Float64Array(this.numClasses);
    for (let c = 0; c < this.numClasses; c++) {
      const den = 2 * this.tp[c] + this.fp[c] + this.fn[c];
      f1[c] = den === 0 ? NaN : (2 * this.tp[c]) / den;
    }
    return f1;
  }

  /** NaN when every video seen so far was unlabelled. */
  protected result(): number {
    let sum = 0;
    let present = 0;
    for (const f of this.computePerClass()) {
      if (Number.isNaN(f)) continue;
      sum += f;
      present++;
    }
    return present === 0 ? NaN : sum / present;
  }

  protected clear(): void {
    this.tp.fill(0);
    this.fp.fill(0);
    this.fn.fill(0);
  }
}
