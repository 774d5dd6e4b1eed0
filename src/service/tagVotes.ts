/**
 * Neighbour-label voting in POST /classify (NeighbourVoteConfig, on when the
 * served model's config says so): the request's embedding is searched in the
 * served index, and the tags of its nearest labelled videos are blended into
 * the model's tag probabilities — as `vidrecall eval` does against the
 * training split. The video itself (classify by id) never votes for itself,
 * nor do deleted or unlabelled videos.
 */
import type { ModelMetadata } from "../infer/modelBundle.js";
import { blendTagProbs, type VotingNeighbour } from "../model/neighbourVote.js";
import type { ServingRuntime } from "./runtime.js";
import type { SummaryCache } from "./summaryCache.js";

export interface TagVoteResult {
  /** Blended tag probabilities (the model's own when no vote was taken). */
  probs: Float32Array;
  /** What the response reports: who voted, or why nobody did. */
  info: { neighbours: number; index_version?: string; skipped?: string };
}

export class TagVotes {
  /** Tag name → model tag index, for the last model seen. */
  private tagIndex: { hash: string; byName: Map<string, number> } | undefined;

  constructor(
    private readonly runtime: Pick<ServingRuntime, "index" | "tombstones">,
    private readonly summaries: SummaryCache,
  ) {}

  /** Whether `model` asks for votes at all. */
  static wanted(model: ModelMetadata): boolean {
    return model.config.neighbours.enabled && model.numTags > 0;
  }

  async blend(model: ModelMetadata, probs: Float32Array, embedding: Float32Array, selfId: string | undefined): Promise<TagVoteResult> {
    const config = model.config.neighbours;
    const index = this.runtime.index;
    if (!index) return { probs, info: { neighbours: 0, skipped: "no similarity index has been built yet" } };
    if (index.manifest.modelHash !== model.embeddingSha256) {
      // Votes by another model's embedding space would be noise: wait for the reindex.
      return { probs, info: { neighbours: 0, skipped: "the index holds another model's embeddings (reindex pending)" } };
    }
    const tombstones = this.runtime.tombstones;
    const extra = 1 + Math.min(tombstones.size, 1000);
    const { hits, version } = await index.similarToVector(embedding, config.k + extra);
    const candidates = hits.filter((h) => h.id !== selfId && !tombstones.has(h.id));
    const summaries = this.summaries.get(candidates.map((h) => h.id));
    const byName = this.tagNames(model);
    const neighbours: VotingNeighbour[] = [];
    for (const h of candidates) {
      if (neighbours.length === config.k) break;
      const tags = (summaries.get(h.id)?.tags ?? []).map((name) => byName.get(name) ?? -1).filter((t) => t >= 0);
      if (tags.length > 0) neighbours.push({ similarity: h.score, tags });
    }
    return { probs: blendTagProbs(probs, neighbours, config), info: { neighbours: neighbours.length, index_version: version } };
  }

  private tagNames(model: ModelMetadata): Map<string, number> {
    if (this.tagIndex?.hash !== model.sha256) {
      this.tagIndex = { hash: model.sha256, byName: new Map(model.labels.tags.map((name, i) => [name.trim(), i])) };
    }
    return this.tagIndex.byName;
  }
}
