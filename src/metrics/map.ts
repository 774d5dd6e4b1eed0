import { checkPositiveInt, MultiLabelMetric, type MultiHotTargets } from "./base.js";
import { averagePrecision, ScoreBuffer, selectTopK } from "./ranking.js";

export interface MeanAveragePrecisionOptions {
  /**
   * Rank only each video's top-k classes, as upstream eval.py does (it feeds
   * MeanAveragePrecisionCalculator the same top-20 triplets as GAP). Scores
   * outside a video's top-k then never enter that class's list, though the
   * class's positive count still includes them. Bounds memory at k scores per
   * video. Leave unset for the exact per-class AP over all videos.
   */
  topK?: number;
}

/**
 * Macro mean average precision over classes. Each class's AP is the
 * non-interpolated AP of that class's scores over all videos (precision at
 * every positive, sorted by score, divided by the class's positive count), as
 * AveragePrecisionCalculator.ap computes it.
 *
 * Deliberate differences from upstream: classes without any positive label are
 * skipped (upstream scores them 0 and eval.py averages them in, so mAP there
 * depends on how many classes never occur); and by default every video's score
 * enters every class's list (upstream only keeps each video's top-20, see
 * `topK`). Exact mAP has to keep all numClasses scores per video.
 */
export class MeanAveragePrecision extends MultiLabelMetric {
  readonly topK: number | undefined;
  private readonly positives: ScoreBuffer[] = [];
  private readonly negatives: ScoreBuffer[] = [];
  private readonly positiveCounts: Float64Array;
  private readonly picked: Int32Array;

  constructor(numClasses: number, options: MeanAveragePrecisionOptions = {}) {
    super("mAP", numClasses);
    if (options.topK !== undefined) checkPositiveInt("mAP: topK", options.topK);
    this.topK = options.topK;
    for (let c = 0; c < numClasses; c++) {
      this.positives.push(new ScoreBuffer());
      this.negatives.push(new ScoreBuffer());
    }
    this.positiveCounts = new Float64Array(numClasses);
    this.picked = new Int32Array(Math.min(options.topK ?? numClasses, numClasses));
  }

  protected accumulate(predictions: Float32Array, targets: MultiHotTargets, rows: number): void {
    const n = this.numClasses;
    const k = this.topK ?? n;
    for (let r = 0; r < rows; r++) {
      const off = r * n;
      for (let c = 0; c < n; c++) this.positiveCounts[c] += targets[off + c];
      const kept = selectTopK(predictions, targets, off, n, k, this.picked);
      for (let j = 0; j < kept; j++) {
        const c = this.picked[j];
        (targets[off + c] === 1 ? this.positives[c] : this.negatives[c]).push(predictions[off + c]);
      }
    }
  }

  /** AP of every class, indexed by class; NaN for classes with no positive label so far. */
  computePerClass(): Float64Array {
    this.requireVideos();
    const aps = new Float64Array(this.numClasses);
    for (let c = 0; c < this.numClasses; c++) {
      aps[c] = averagePrecision(this.positives[c].view(), this.negatives[c].view(), this.positiveCounts[c]);
    }
    return aps;
  }

  /** Number of positive labels seen per class (so callers can tell skipped classes apart). */
  positivesPerClass(): Float64Array {
    return this.positiveCounts.slice();
  }

  /** Mean AP over classes with at least one positive; NaN if there are none. */
  protected result(): number {
    const aps = this.computePerClass();
    let sum = 0;
    let counted = 0;
    for (const ap of aps) {
      if (Number.isNaN(ap)) continue;
      sum += ap;
      counted++;
    }
    return counted === 0 ? NaN : sum / counted;
  }

  protected clear(): void {
    for (let c = 0; c < this.numClasses; c++) {
      this.positives[c].clear();
      this.negatives[c].clear();
    }
    this.positiveCounts.fill(0);
  }
}
