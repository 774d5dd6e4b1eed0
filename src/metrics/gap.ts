import { checkPositiveInt, MultiLabelMetric, type MultiHotTargets } from "./base.js";
import { averagePrecision, ScoreBuffer, selectTopK } from "./ranking.js";

/**
 * Global Average Precision at k, as YouTube-8M's eval_util.calculate_gap /
 * EvaluationMetrics: each video contributes its top-k (score, isPositive) pairs
 * to one pooled list; GAP is the average precision of that list sorted by score,
 * divided by the number of positive labels over all videos, including positives
 * that fell outside their video's top-k (upstream's num_positives).
 *
 * Memory is bounded at k scores per video: only the selected pairs are kept.
 * Ties follow the policy in ranking.ts (negatives first), both when picking a
 * video's top-k and when ordering the pooled list; upstream leaves both to
 * argpartition and a seeded shuffle.
 */
export class GlobalAveragePrecision extends MultiLabelMetric {
  private readonly positives = new ScoreBuffer();
  private readonly negatives = new ScoreBuffer();
  private totalPositives = 0;
  private readonly picked: Int32Array;

  constructor(
    numClasses: number,
    readonly k = 20,
  ) {
    super(`GAP@${k}`, numClasses);
    checkPositiveInt(`GAP@${k}: k`, k);
    // k beyond numClasses keeps every class, as upstream's min(k, num_classes).
    this.picked = new Int32Array(Math.min(k, numClasses));
  }

  protected accumulate(predictions: Float32Array, targets: MultiHotTargets, rows: number): void {
    const n = this.numClasses;
    for (let r = 0; r < rows; r++) {
      const off = r * n;
      for (let c = 0; c < n; c++) this.totalPositives += targets[off + c];
      const kept = selectTopK(predictions, targets, off, n, this.k, this.picked);
      for (let j = 0; j < kept; j++) {
        const c = this.picked[j];
        (targets[off + c] === 1 ? this.positives : this.negatives).push(predictions[off + c]);
      }
    }
  }

  /** NaN when no video had a positive label (upstream returns 0). */
  protected result(): number {
    return averagePrecision(this.positives.view(), this.negatives.view(), this.totalPositives);
  }

  protected clear(): void {
    this.positives.clear();
    this.negatives.clear();
    this.totalPositives = 0;
  }
}
