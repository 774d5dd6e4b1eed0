/**
 * Exact (brute-force) cosine search over a flat Float32Array of unit
 * vectors: the fallback for selective category filters and the ground truth
 * of the ANN benchmark. One contiguous buffer and a 4-way unrolled dot
 * product keep it memory-bound rather than allocation-bound.
 */

export interface ScoredRow {
  row: number;
  score: number;
}

export function dot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < dim; i += 4) {
    s0 += a[aOff + i] * b[bOff + i];
    s1 += a[aOff + i + 1] * b[bOff + i + 1];
    s2 += a[aOff + i + 2] * b[bOff + i + 2];
    s3 += a[aOff + i + 3] * b[bOff + i + 3];
  }
  for (; i < dim; i++) s0 += a[aOff + i] * b[bOff + i];
  return s0 + s1 + s2 + s3;
}

/** A unit-length copy of `v` (throws on a zero or non-finite vector). */
export function normalized(v: ArrayLike<number>): Float32Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  if (!Number.isFinite(n) || n === 0) throw new Error("query vector must be finite and non-zero");
  const inv = 1 / Math.sqrt(n);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * inv;
  return out;
}

/**
 * Keeps the k highest scores seen: a min-heap on score, so each candidate
 * costs one comparison against the worst kept unless it enters.
 */
export class TopK {
  private readonly rows: Int32Array;
  private readonly scores: Float64Array;
  private size = 0;

  constructor(readonly k: number) {
    this.rows = new Int32Array(k);
    this.scores = new Float64Array(k);
  }

  /** The score a candidate must beat to enter (−∞ until k are kept). */
  get threshold(): number {
    return this.size < this.k ? -Infinity : this.scores[0];
  }

  push(row: number, score: number): void {
    if (this.k === 0) return;
    if (this.size < this.k) {
      let i = this.size++;
      // Sift up.
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (this.scores[p] <= score) break;
        this.rows[i] = this.rows[p];
        this.scores[i] = this.scores[p];
        i = p;
      }
      this.rows[i] = row;
      this.scores[i] = score;
      return;
    }
    if (score <= this.scores[0]) return;
    // Replace the root and sift down.
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.size) break;
      const r = l + 1;
      const c = r < this.size && this.scores[r] < this.scores[l] ? r : l;
      if (this.scores[c] >= score) break;
      this.rows[i] = this.rows[c];
      this.scores[i] = this.scores[c];
      i = c;
    }
    this.rows[i] = row;
    this.scores[i] = score;
  }

  /** Kept rows, best first (ties: lower row first, for stable results). */
  sorted(): ScoredRow[] {
    const out: ScoredRow[] = [];
    for (let i = 0; i < this.size; i++) out.push({ row: this.rows[i], score: this.scores[i] });
    return out.sort((a, b) => b.score - a.score || a.row - b.row);
  }
}

/**
 * The k rows of `flat` (rows × dim, unit vectors) most similar to the unit
 * vector `query`, best first. k larger than the row count returns every row.
 */
export function exactSearch(flat: Float32Array, dim: number, query: Float32Array, k: number, rows = flat.length / dim): ScoredRow[] {
  const top = new TopK(Math.min(k, rows));
  for (let r = 0, off = 0; r < rows; r++, off += dim) {
    const s = dot(flat, off, query, 0, dim);
    if (s > top.threshold) top.push(r, s);
  }
  return top.sorted();
}
