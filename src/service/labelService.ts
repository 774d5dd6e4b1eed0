/**
 * POST /videos/:id/labels: sets a video's category and/or tags by name
 * (provenance "manual"). A name not in the label space grows it: the label
 * gets the next index, and is reported as not learned by the served model
 * until a model trained with it is active.
 */
import { BadRequestError, NotFoundError } from "./errors.js";
import { NO_PEERS, type Peers } from "./peers.js";
import type { ServingRuntime } from "./runtime.js";
import type { VideoService, VideoView } from "./videoService.js";

export interface LabelUpdate {
  /** A name, or null to clear; absent leaves the category alone. */
  category?: string | null;
  /** Replaces the tags; absent leaves them alone. */
  tags?: string[];
}

export interface LabelResult {
  video: VideoView;
  /** Labels this request created. */
  new_labels: { space: "category" | "tags"; name: string; index: number; learned: false }[];
}

export class LabelService {
  constructor(
    private readonly runtime: ServingRuntime,
    private readonly videos: VideoService,
    private readonly peers: Peers = NO_PEERS,
  ) {}

  async setLabels(id: string, update: LabelUpdate): Promise<LabelResult> {
    const store = this.runtime.store;
    if (update.category === undefined && update.tags === undefined) {
      throw new BadRequestError(`give "category" (a name or null) and/or "tags" (names)`, [{ field: "body", message: "neither category nor tags given" }]);
    }
    if (!store.getVideo(id)) throw new NotFoundError(`no video "${id}"`);
    const before = { category: new Set(store.labels("category").map((l) => l.name)), tags: new Set(store.labels("tags").map((l) => l.name)) };
    store.transaction(() => {
      if (update.category !== undefined) store.setLabels(id, "category", update.category === null ? [] : [update.category], "manual");
      if (update.tags !== undefined) store.setLabels(id, "tags", update.tags, "manual");
    });
    if (update.category !== undefined) {
      this.runtime.markCategoriesChanged();
      await this.peers.notify({ type: "categories" });
    }
    const created: LabelResult["new_labels"] = [];
    for (const space of ["category", "tags"] as const) {
      const names = space === "category" ? (update.category ? [update.category] : []) : (update.tags ?? []);
      for (const raw of names) {
        const name = raw.trim();
        if (before[space].has(name) || created.some((c) => c.space === space && c.name === name)) continue;
        created.push({ space, name, index: store.labelIndex(space, name)!, learned: false });
      }
    }
    return { video: this.videos.get(id), new_labels: created };
  }
}
