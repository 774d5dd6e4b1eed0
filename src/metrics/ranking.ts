/**
 * Ranking primitives shared by the ranking metrics (GAP, mAP, Hit@1, PERR,
 * category top-1).
 *
 * Tie policy (deliberate difference from YouTube-8M): upstream shuffles with a
 * fixed seed and then sorts (average_precision_calculator._shuffle) or picks by
 * numpy argpartition/argmax, so tied scores land in an order that depends on the
 * input order. Here ties are resolved *against the model*: among equal scores a
 * negative ranks ahead of a positive, then the lower class index goes first.
 * The result is a deterministic lower bound that does not depend on batch split
 * or video order, and constant predictions (e.g. all zeros) cannot earn credit.
 */

/** Does class a rank ahead of class b in one video's row under the tie policy above? */
export function ranksAhead(
  scores: Float32Array,
  labels: ArrayLike<number>,
  offset: number,
  a: number,
  b: number,
): boolean {
  const sa = scores[offset + a];
  const sb = scores[offset + b];
  if (sa !== sb) return sa > sb;
  const la = labels[offset + a];
  const lb = labels[offset + b];
  if (la !== lb) return la < lb;
  return a < b;
}

/** The top-ranked class of one row under the tie policy. */
export function topClass(scores: Float32Array, labels: ArrayLike<number>, offset: number, numClasses: number): number {
  let best = 0;
  for (let c = 1; c < numClasses; c++) {
    if (ranksAhead(scores, labels, offset, c, best)) best = c;
  }
  return best;
}

/**
 * Writes the k top-ranked classes of one row into out[0..n) (in no particular
 * order) and returns n = min(k, numClasses). A size-k heap keeps the cost at
 * O(numClasses log k) instead of sorting the whole row.
 */
export function selectTopK(
  scores: Float32Array,
  labels: ArrayLike<number>,
  offset: number,
  numClasses: number,
  k: number,
  out: Int32Array,
): number {
  if (k >= numClasses) {
    for (let c = 0; c < numClasses; c++) out[c] = c;
    return numClasses;
  }
  // Heap whose root is the worst-ranked kept class, so it is the one to evict.
  let size = 0;
  for (let c = 0; c < numClasses; c++) {
    if (size < k) {
      let i = size++;
      out[i] = c;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!ranksAhead(scores, labels, offset, out[p], out[i])) break;
        const t = out[p];
        out[p] = out[i];
        out[i] = t;
        i = p;
      }
    } else if (ranksAhead(scores, labels, offset, c, out[0])) {
      out[0] = c;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let worst = i;
        if (l < size && ranksAhead(scores, labels, offset, out[worst], out[l])) worst = l;
        if (r < size && ranksAhead(scores, labels, offset, out[worst], out[r])) worst = r;
        if (worst === i) break;
        const t = out[worst];
        out[worst] = out[i];
        out[i] = t;
        i = worst;
      }
    }
  }
  return size;
}

/** Append-only Float32 buffer that doubles its capacity as it grows. */
export class ScoreBuffer {
  private data = new Float32Array(16);
  private used = 0;

  get length(): number {
    return this.used;
  }

  push(value: number): void {
    if (this.used === this.data.length) {
      const bigger = new Float32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.used++] = value;
  }

  /** A live view of the stored scores; callers may reorder it (the buffer is a multiset). */
  view(): Float32Array {
    return this.data.subarray(0, this.used);
  }

  clear(): void {
    this.data = new Float32Array(16);
    this.used = 0;
  }
}

/**
 * Non-interpolated average precision of a ranked list, as upstream's
 * AveragePrecisionCalculator.ap_at_n with n=None: walk the list by score
 * descending, add precision@rank at every positive, divide by totalPositives
 * (which may exceed positives.length when positives were cut from the list,
 * as GAP's top-k does). Positive and negative scores come in separate arrays
 * so a plain numeric sort suffices; at equal scores negatives rank first (see
 * the tie policy above). Sorts both arrays in place. Returns NaN when
 * totalPositives is 0 (upstream returns 0; AP is undefined there).
 */
export function averagePrecision(positives: Float32Array, negatives: Float32Array, totalPositives: number): number {
  if (totalPositives < positives.length) {
    throw new RangeError(
      `averagePrecision: totalPositives=${totalPositives} is smaller than the ${positives.length} positives in the list`,
    );
  }
  if (totalPositives === 0) return NaN;
  positives.sort();
  negatives.sort();
  let ni = negatives.length - 1;
  let negativesAhead = 0;
  let sum = 0;
  let hits = 0;
  for (let pi = positives.length - 1; pi >= 0; pi--) {
    const s = positives[pi];
    while (ni >= 0 && negatives[ni] >= s) {
      ni--;
      negativesAhead++;
    }
    hits++;
    sum += hits / (hits + negativesAhead);
  }
  return sum / totalPositives;
}
