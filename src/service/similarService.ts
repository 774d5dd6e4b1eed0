/** GET /similar/:id: the index's nearest neighbours, without deleted videos, with each hit's title and labels. */
import { UnknownVideoError } from "../../indexer/search.js";
import { NotFoundError, UnavailableError } from "./errors.js";
import type { ServingRuntime } from "./runtime.js";
import { SummaryCache } from "./summaryCache.js";

export interface SimilarQuery {
  k: number;
  category?: string;
  ef?: number;
  /** Tags listed per hit (default 5). */
  tags?: number;
}

export interface SimilarHit {
  id: string;
  /** Cosine similarity of the embeddings, in [−1, 1]. */
  score: number;
  title: string | null;
  category: string | null;
  /** The video's first tags (in label order), at most `tags`. */
  tags: string[];
}

export interface SimilarResponse {
  id: string;
  k: number;
  index_version: string;
  results: SimilarHit[];
}

export class SimilarService {
  constructor(
    private readonly runtime: ServingRuntime,
    /** Shared with /classify's neighbour votes (one copy of the summaries per process). */
    private readonly summaries: SummaryCache = new SummaryCache(runtime.store),
  ) {}

  /** Caches the summaries of the indexed videos (see SummaryCache.preload); returns how many. */
  preloadSummaries(): number {
    const index = this.runtime.index;
    return index ? this.summaries.preload(index.ids()) : 0;
  }

  async similar(id: string, q: SimilarQuery): Promise<SimilarResponse> {
    const index = this.runtime.index;
    if (!index) {
      throw new UnavailableError("no similarity index has been built yet: run `vidrecall reindex` or POST /admin/reindex, then retry");
    }
    const tombstones = this.runtime.tombstones;
    if (tombstones.has(id)) throw new NotFoundError(`video "${id}" was deleted`);
    let hits;
    let version: string;
    // Deleted videos are still in the loaded version until the next update: ask for enough extra.
    const extra = Math.min(tombstones.size, 1000);
    try {
      ({ hits, version } = await index.similar(id, q.k + extra, { category: q.category, ef: q.ef }));
    } catch (err) {
      if (!(err instanceof UnknownVideoError)) throw err;
      if (this.runtime.store.getVideo(id)) {
        throw new NotFoundError(`video "${id}" is stored but not indexed yet (POST /videos?index=true, or a reindex, adds it)`);
      }
      throw new NotFoundError(`no video "${id}"`);
    }
    if (extra > 0) hits = hits.filter((h) => !tombstones.has(h.id));
    hits = hits.slice(0, q.k);
    const summaries = this.summaries.get(hits.map((h) => h.id));
    const maxTags = q.tags ?? 5;
    return {
      id,
      k: q.k,
      index_version: version,
      results: hits.map((h) => {
        const s = summaries.get(h.id);
        return { id: h.id, score: h.score, title: s?.title ?? null, category: s?.category ?? null, tags: (s?.tags ?? []).slice(0, maxTags) };
      }),
    };
  }
}
