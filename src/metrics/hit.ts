import { MultiLabelMetric, type MultiHotTargets } from "./base.js";
import { selectTopK, topClass } from "./ranking.js";

/**
 * Hit@1, as upstream calculate_hit_at_one: the fraction of videos whose
 * top-scored class is a positive. Videos without positives count as misses,
 * as upstream. A tie for the top score counts as a miss whenever a negative
 * class shares it (upstream argmax takes the lowest index instead).
 */
export class HitAtOne extends MultiLabelMetric {
  private hits = 0;

  constructor(numClasses: number) {
    super("Hit@1", numClasses);
  }

  protected accumulate(predictions: Float32Array, targets: MultiHotTargets, rows: number): void {
    const n = this.numClasses;
    for (let r = 0; r < rows; r++) {
      const off = r * n;
      this.hits += targets[off + topClass(predictions, targets, off, n)];
    }
  }

  protected result(): number {
    return this.hits / this.videos;
  }

  protected clear(): void {
    this.hits = 0;
  }
}

/**
 * Precision at equal recall rate, as upstream
 * calculate_precision_at_equal_recall_rate: for a video with r positive labels,
 * the fraction of its r top-scored classes that are positive.
 *
 * Deliberate differences: the mean is over videos with at least one positive
 * (upstream divides by all videos, so label-less videos drag it down); a
 * top-r positive counts whatever its score (upstream ignores scores <= 0,
 * which only makes sense for probabilities and stands in for a tie rule);
 * ties at the cut-off follow ranking.ts (negatives first).
 */
export class PrecisionAtEqualRecallRate extends MultiLabelMetric {
  // hitsByPositives[r] sums top-r hits over videos with r positives. Integer
  // sums, divided once in result(), make PERR independent of video order
  // (a running float sum of per-video precisions is not).
  private readonly hitsByPositives: Float64Array;
  private labelledVideos = 0;
  private readonly picked: Int32Array;

  constructor(numClasses: number) {
    super("PERR", numClasses);
    this.picked = new Int32Array(numClasses);
    this.hitsByPositives = new Float64Array(numClasses + 1);
  }

  protected accumulate(predictions: Float32Array, targets: MultiHotTargets, rows: number): void {
    const n = this.numClasses;
    for (let r = 0; r < rows; r++) {
      const off = r * n;
      let positives = 0;
      for (let c = 0; c < n; c++) positives += targets[off + c];
      if (positives === 0) continue;
      const kept = selectTopK(predictions, targets, off, n, positives, this.picked);
      let hits = 0;
      for (let j = 0; j < kept; j++) hits += targets[off + this.picked[j]];
      this.hitsByPositives[positives] += hits;
      this.labelledVideos++;
    }
  }

  /** NaN when no video had a positive label. */
  protected result(): number {
    if (this.labelledVideos === 0) return NaN;
    let sum = 0;
    for (let r = 1; r <= this.numClasses; r++) sum += this.hitsByPositives[r] / r;
    return sum / this.labelledVideos;
  }

  protected clear(): void {
    this.hitsByPositives.fill(0);
    this.labelledVideos = 0;
  }
}
