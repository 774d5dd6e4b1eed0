/**
 * Neighbour-label voting: the tags of the videos most similar to a query (by
 * embedding) as a second opinion next to the tag head. On small labelled sets
 * the head underfits rare tags that a near-duplicate neighbour carries; the
 * blend is p = w·p_model + (1 − w)·votes (see NeighbourVoteConfig).
 * Pure functions: `eval` feeds them brute-force neighbours from the training
 * split (src/train/neighbourReference.ts), POST /classify the served index's.
 */
import type { NeighbourVoteConfig } from "./config.js";

export interface VotingNeighbour {
  /** Cosine similarity of the embeddings. */
  similarity: number;
  /** The neighbour's tags as model tag indices (others are ignored). */
  tags: ArrayLike<number>;
}

/**
 * Per tag, the softmax(temperature·similarity) weight of the neighbours that
 * carry it: in [0, 1], and all zero when there are no neighbours.
 */
export function neighbourVotes(neighbours: readonly VotingNeighbour[], numTags: number, temperature: number): Float32Array {
  const votes = new Float32Array(numTags);
  if (neighbours.length === 0) return votes;
  let max = -Infinity;
  for (const n of neighbours) max = Math.max(max, n.similarity);
  // Shifted by the largest similarity so exp cannot overflow.
  const weights = neighbours.map((n) => Math.exp(temperature * (n.similarity - max)));
  const total = weights.reduce((a, b) => a + b, 0);
  neighbours.forEach((n, j) => {
    const w = weights[j] / total;
    for (let i = 0; i < n.tags.length; i++) {
      const t = n.tags[i];
      if (t >= 0 && t < numTags) votes[t] += w;
    }
  });
  return votes;
}

/**
 * The blended tag probabilities (a new array). With no neighbours the model's
 * probabilities stand unchanged: an empty vote is no evidence against a tag.
 */
export function blendTagProbs(probs: Float32Array, neighbours: readonly VotingNeighbour[], config: Pick<NeighbourVoteConfig, "temperature" | "modelWeight">): Float32Array {
  if (neighbours.length === 0) return probs.slice();
  const votes = neighbourVotes(neighbours, probs.length, config.temperature);
  const w = config.modelWeight;
  const out = new Float32Array(probs.length);
  for (let i = 0; i < probs.length; i++) out[i] = w * probs[i] + (1 - w) * votes[i];
  return out;
}
