/**
 * The labelled videos that neighbour-label voting (src/model/neighbourVote.ts)
 * draws on in `eval` and `bench quality`: videos of the store embedded by the model
 * being evaluated, searched exactly (a matrix product on the tfjs backend) —
 * a few thousand queries against tens of thousands of videos is seconds, and
 * exact search keeps the evaluation free of ANN recall effects.
 */
import * as tf from "@tensorflow/tfjs";
import type { VideoStore } from "../data/store.js";
import type { TokenVocabulary } from "../data/tokenize.js";
import type { VideoModel } from "../model/model.js";
import type { VotingNeighbour } from "../model/neighbourVote.js";
import { evaluationStream } from "./batches.js";
import { predictBatch } from "./evaluate.js";

export class NeighbourReference {
  private constructor(
    readonly ids: readonly string[],
    private readonly embeddings: tf.Tensor2D,
    private readonly tags: readonly Int32Array[],
  ) {}

  get size(): number {
    return this.ids.length;
  }

  /** Embeds the given videos that have at least one tag the model knows. */
  static build(model: VideoModel, store: VideoStore, videoIds: readonly string[], vocabulary?: TokenVocabulary): NeighbourReference {
    const numTags = model.labels.tags.length;
    const stream = evaluationStream(store, model, { ids: videoIds }, vocabulary);
    const ids: string[] = [];
    const tags: Int32Array[] = [];
    const rows: Float32Array[] = [];
    let dim = 0;
    for (const batch of stream.epoch(0)) {
      const { embedding } = predictBatch(model, batch);
      dim = embedding.length / batch.size;
      for (let i = 0; i < batch.size; i++) {
        const own: number[] = [];
        for (let t = 0; t < numTags; t++) if (batch.tags[i * numTags + t] > 0) own.push(t);
        if (own.length === 0) continue;
        ids.push(batch.ids[i]);
        tags.push(Int32Array.from(own));
        rows.push(embedding.subarray(i * dim, (i + 1) * dim));
      }
    }
    const flat = new Float32Array(ids.length * dim);
    rows.forEach((r, i) => flat.set(r, i * dim));
    return new NeighbourReference(ids, tf.tensor2d(flat, [ids.length, dim]), tags);
  }

  /**
   * The k most similar reference videos of each query (rows of `embeddings`,
   * unit vectors), most similar first; a query never gets itself (same id).
   */
  nearest(queryIds: readonly string[], embeddings: Float32Array, k: number): VotingNeighbour[][] {
    const n = queryIds.length;
    if (n === 0 || this.size === 0) return queryIds.map(() => []);
    const dim = embeddings.length / n;
    const take = Math.min(this.size, k + 1);
    let values: Float32Array = new Float32Array(0);
    let indices: Int32Array = new Int32Array(0);
    // Assigned, not returned: tf.tidy would walk a returned typed array index by index.
    tf.tidy(() => {
      const sims = tf.matMul(tf.tensor2d(embeddings, [n, dim]), this.embeddings, false, true);
      const top = tf.topk(sims, take);
      values = top.values.dataSync() as Float32Array;
      indices = top.indices.dataSync() as Int32Array;
    });
    return queryIds.map((id, q) => {
      const out: VotingNeighbour[] = [];
      for (let j = 0; j < take && out.length < k; j++) {
        const r = indices[q * take + j];
        if (this.ids[r] !== id) out.push({ similarity: values[q * take + j], tags: this.tags[r] });
      }
      return out;
    });
  }

  dispose(): void {
    this.embeddings.dispose();
  }
}
