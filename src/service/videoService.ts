/**
 * The video catalogue: listing, one video with its labels (and whether the
 * served model learned them), ingestion in the JSONL importer's format, and
 * deletion. Ingestion with `index` waits for a coalesced incremental reindex
 * (IndexUpdater); deletion hides the video from /similar at once (a
 * tombstone) and schedules one.
 */
import { encodeFeatures } from "../data/featureCodec.js";
import { FieldError, parseVideoLine, type VideoJson } from "../data/jsonl.js";
import type { LabelAssignment, VideoInput, VideoSummary } from "../data/store.js";
import { BadRequestError, NotFoundError, ServiceError, type FieldProblem } from "./errors.js";
import { NO_PEERS, type IndexUpdates, type Peers } from "./peers.js";
import type { ServingRuntime } from "./runtime.js";

export interface LabelView {
  name: string;
  index: number;
  provenance: string;
  assigned_at: string;
  /** Whether the served model has this label (false: added after it was trained). */
  learned: boolean;
}

export interface VideoView {
  id: string;
  title: string | null;
  split: string;
  source: string;
  created_at: string;
  updated_at: string;
  category: LabelView | null;
  tags: LabelView[];
  modalities: { modality: string; frames: number; dim: number; encoding: string }[];
  /** Searchable by /similar now. */
  indexed: boolean;
}

export interface UpsertResult {
  upserted: string[];
  /** With ?index=true: the ids searchable after the update. */
  indexed?: string[];
  index_version?: string | null;
  /** Label names that did not exist before (the model has not learned them). */
  new_labels: { space: "category" | "tags"; name: string }[];
}

export class VideoService {
  constructor(
    private readonly runtime: ServingRuntime,
    private readonly indexUpdater: IndexUpdates,
    /** The other server processes (serve --processes): told of tombstones and category changes before a request is answered. */
    private readonly peers: Peers = NO_PEERS,
  ) {}

  list(limit: number, after?: string): { videos: VideoSummary[]; next: string | null } {
    const store = this.runtime.store;
    if (after !== undefined && !store.getVideo(after)) throw new BadRequestError(`query.after: no video "${after}" to continue after`, [{ field: "query.after", message: `no video "${after}"` }]);
    const videos = store.listVideos(limit, after);
    return { videos, next: videos.length === limit ? videos[videos.length - 1].id : null };
  }

  get(id: string): VideoView {
    const v = this.runtime.store.getVideo(id);
    if (!v) throw new NotFoundError(`no video "${id}"`);
    const known = this.runtime.modelLabels();
    const label = (space: "category" | "tags", a: LabelAssignment): LabelView => ({
      name: a.name,
      index: a.index,
      provenance: a.provenance,
      assigned_at: new Date(a.assignedAt).toISOString(),
      learned: known[space].has(a.name),
    });
    return {
      id: v.id,
      title: v.title,
      split: v.split,
      source: v.source,
      created_at: new Date(v.createdAt).toISOString(),
      updated_at: new Date(v.updatedAt).toISOString(),
      category: v.category ? label("category", v.category) : null,
      tags: v.tags.map((t) => label("tags", t)),
      modalities: v.modalities,
      indexed: this.runtime.isIndexed(v.id),
    };
  }

  /**
   * Validates every record (the importer's own parser, so the API accepts
   * exactly what `vidrecall import jsonl` does), then writes them in one
   * transaction: all or nothing.
   */
  async upsert(records: VideoJson[], options: { index: boolean }): Promise<UpsertResult> {
    const store = this.runtime.store;
    const dims = store.modalityDims();
    const problems: FieldProblem[] = [];
    const inputs: VideoInput[] = [];
    const seen = new Set<string>();
    records.forEach((record, i) => {
      const where = records.length === 1 ? "body" : `body[${i}]`;
      try {
        const v = parseVideoLine(JSON.stringify(record), dims);
        if (seen.has(v.id)) throw new FieldError("id", `"${v.id}" appears twice in this request`);
        seen.add(v.id);
        // Encode here (as the store would) so a value the storage encoding cannot hold is this field's 400.
        for (const [modality, input] of Object.entries(v.features)) {
          if (!("matrix" in input)) continue;
          try {
            v.features[modality] = { encoded: encodeFeatures(input.matrix, input.encoding) };
          } catch (err) {
            throw new FieldError(modality === "rgb" || modality === "audio" ? modality : `features.${modality}`, (err as Error).message);
          }
        }
        inputs.push(v);
      } catch (err) {
        if (!(err instanceof FieldError)) throw err;
        problems.push({ field: `${where}.${err.field}`, message: err.message.slice(err.field.length + 2) });
      }
    });
    if (problems.length) throw new BadRequestError(`invalid videos, nothing stored: ${problems.slice(0, 5).map((p) => `${p.field}: ${p.message}`).join("; ")}`, problems);
    const newLabels: UpsertResult["new_labels"] = [];
    const noteLabel = (space: "category" | "tags", name: string) => {
      if (store.labelIndex(space, name) === undefined && !newLabels.some((l) => l.space === space && l.name === name.trim())) newLabels.push({ space, name: name.trim() });
    };
    for (const v of inputs) {
      if (v.category) noteLabel("category", v.category);
      for (const t of v.tags ?? []) noteLabel("tags", t);
    }
    store.upsertVideos(inputs, { source: "api", provenance: "manual" });
    const ids = inputs.map((v) => v.id);
    const untombstoned = ids.filter((id) => this.runtime.tombstones.delete(id));
    if (untombstoned.length) await this.peers.notify({ type: "tombstones", add: [], remove: untombstoned });
    if (inputs.some((v) => v.category !== undefined)) {
      this.runtime.markCategoriesChanged();
      await this.peers.notify({ type: "categories" });
    }
    const out: UpsertResult = { upserted: ids, new_labels: newLabels };
    if (!options.index) return out;
    let run;
    try {
      run = await this.indexUpdater.request();
    } catch (err) {
      throw new ServiceError(500, "index_failed", `the videos were stored, but indexing them failed: ${(err as Error).message}`, { upserted: ids });
    }
    out.indexed = ids.filter((id) => this.runtime.isIndexed(id));
    out.index_version = run.version;
    return out;
  }

  async delete(id: string): Promise<{ deleted: string; index_update: "scheduled" | "none" }> {
    if (!this.runtime.store.deleteVideo(id)) throw new NotFoundError(`no video "${id}"`);
    const inIndex = this.runtime.index?.has(id) ?? false;
    if (inIndex) {
      this.runtime.tombstones.add(id);
      await this.peers.notify({ type: "tombstones", add: [id], remove: [] });
      this.indexUpdater.schedule();
    }
    return { deleted: id, index_update: inIndex ? "scheduled" : "none" };
  }
}
