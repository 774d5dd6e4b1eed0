/**
 * What the indexer needs from the model: the inference service implements
 * this. `modelHash` identifies the weights, so an index never mixes vectors
 * from two models.
 */
export interface Embedder {
  modelHash: string;
  dim: number;
  /** One L2-normalised vector per id, in the order asked. */
  embed(videoIds: string[]): Promise<Float32Array[]>;
}

export interface IndexEntry {
  id: string;
  vector: Float32Array;
}

/**
 * Embeds `ids` in batches and yields index entries, checking that the
 * embedder keeps its promise (one vector of `dim` per id).
 */
export async function* embedEntries(embedder: Embedder, ids: Iterable<string>, batchSize = 256): AsyncGenerator<IndexEntry> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  let batch: string[] = [];
  const flush = async function* (): AsyncGenerator<IndexEntry> {
    const vectors = await embedder.embed(batch);
    if (vectors.length !== batch.length) throw new Error(`embedder returned ${vectors.length} vectors for ${batch.length} ids`);
    for (let i = 0; i < batch.length; i++) {
      if (vectors[i].length !== embedder.dim) throw new Error(`embedder returned a vector of length ${vectors[i].length} for ${batch[i]}, expected ${embedder.dim}`);
      yield { id: batch[i], vector: vectors[i] };
    }
    batch = [];
  };
  for (const id of ids) {
    batch.push(id);
    if (batch.length >= batchSize) yield* flush();
  }
  if (batch.length > 0) yield* flush();
}
