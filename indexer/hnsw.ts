/**
 * The few hnswlib-node calls the indexer makes, in one place. hnswlib-node
 * is CommonJS with named exports the ESM loader cannot see, hence the
 * default import.
 */
import hnswlib from "hnswlib-node";
import type { HierarchicalNSW } from "hnswlib-node";

export type Graph = HierarchicalNSW;

/** Cosine space: hnswlib normalises every vector it stores or is queried with; distance = 1 − cos. */
export function newGraph(dim: number): Graph {
  return new hnswlib.HierarchicalNSW("cosine", dim);
}

/**
 * Converts and checks one embedding: hnswlib-node takes plain Arrays only,
 * and a NaN or a zero vector would be stored silently and poison searches.
 */
export function toPlainVector(vector: ArrayLike<number>, dim: number, what: string): number[] {
  if (vector.length !== dim) throw new Error(`${what}: vector has ${vector.length} values, the index has dim ${dim}`);
  const out = new Array<number>(dim);
  let norm = 0;
  for (let i = 0; i < dim; i++) {
    const v = vector[i];
    if (!Number.isFinite(v)) throw new Error(`${what}: vector value ${i} is ${v}`);
    out[i] = v;
    norm += v * v;
  }
  if (norm === 0) throw new Error(`${what}: zero vector has no direction (cosine similarity is undefined)`);
  return out;
}

/** Vector length in bytes for the memory estimate below. */
export function estimateGraphBytesPerVector(dim: number, M: number): number {
  // hnswlib: level 0 holds (2M links + count) ints, the vector and an 8-byte
  // label per element; upper levels hold ~1/(M−1) of that link block on average,
  // plus the label map entry (~40 bytes in an unordered_map) and the level array.
  const level0 = (2 * M + 1) * 4 + dim * 4 + 8;
  const upper = ((M + 1) * 4) / Math.max(1, M - 1) + 8;
  return Math.round(level0 + upper + 40 + 4);
}
