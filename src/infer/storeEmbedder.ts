/**
 * The indexer's view of the model (indexer/embedder.ts `Embedder`, matched
 * structurally): embeddings of store videos by id, from an InferenceService.
 *
 * The embedder is pinned to the model served when it was made: if the service
 * swaps models while an index is being built, the next `embed` rejects with
 * ModelChangedError instead of mixing vectors of two models in one index.
 */
import type { VideoStore } from "../data/store.js";
import type { InferenceService } from "./inferenceService.js";

export interface StoreEmbedder {
  /** sha256 of the model.onnx every vector comes from. */
  readonly modelHash: string;
  readonly dim: number;
  /** One L2-normalised vector per id, in the order asked; an unknown id rejects. */
  embed(videoIds: string[]): Promise<Float32Array[]>;
}

export function storeEmbedder(service: InferenceService, store: VideoStore): StoreEmbedder {
  const modelHash = service.modelHash;
  const dim = service.embeddingDim;
  return {
    modelHash,
    dim,
    async embed(videoIds: string[]): Promise<Float32Array[]> {
      return service.embed(store.getExamples(videoIds), { modelHash });
    },
  };
}
