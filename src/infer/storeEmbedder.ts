/**
 * The indexer's view of the model (indexer/embedder.ts `Embedder`, matched
 * structurally): embeddings of store videos by id, from an InferenceService.
 *
 * Its `modelHash` (what stored embeddings and index versions are keyed by)
 * is the model's embedding hash, not the graph's: models that differ only in
 * their heads embed identically and share them.
 *
 * The embedder is pinned to the model served when it was made: if the service
 * swaps models while an index is being built, the next `embed` rejects with
 * ModelChangedError instead of mixing vectors of two models in one index.
 */
import type { VideoStore } from "../data/store.js";
import type { InferenceService } from "./inferenceService.js";

export interface StoreEmbedder {
  /** Embedding hash of the model every vector comes from (model.json `embedding.sha256`). */
  readonly modelHash: string;
  readonly dim: number;
  /** One L2-normalised vector per id, in the order asked; an unknown id rejects. */
  embed(videoIds: string[]): Promise<Float32Array[]>;
}

export function storeEmbedder(service: InferenceService, store: VideoStore): StoreEmbedder {
  const servedModel = service.modelHash;
  const dim = service.embeddingDim;
  return {
    modelHash: service.embeddingHash,
    dim,
    async embed(videoIds: string[]): Promise<Float32Array[]> {
      return service.embed(store.getExamples(videoIds), { modelHash: servedModel });
    },
  };
}
