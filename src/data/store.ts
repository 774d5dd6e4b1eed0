/**
 * The video store: the only module that speaks SQL. Everything else goes
 * through these typed methods.
 */
import Database from "better-sqlite3";
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { decodeFeatures, encodeFeatures, type EncodedFeatures, type FeatureEncoding } from "./featureCodec.js";
import type { FeatureMatrix } from "./featureMatrix.js";
import { migrate, SECONDARY_INDEXES } from "./migrations.js";
import { assignSplit, DEFAULT_SPLIT_FRACTIONS, type Split, type SplitFractions } from "./split.js";
import { TokenVocabulary } from "./tokenize.js";

export type LabelSpace = "category" | "tags";
export const LABEL_SPACES: readonly LabelSpace[] = ["category", "tags"];
export type Provenance = "imported" | "manual" | "predicted";

/** A modality's frames, to be encoded with `encoding`, or already encoded (by an import worker). */
export type ModalityInput = { matrix: FeatureMatrix; encoding: FeatureEncoding } | { encoded: EncodedFeatures };

export interface VideoInput {
  id: string;
  title?: string | null;
  /** Explicit split; otherwise kept from an earlier import, or assigned from the id's hash. */
  split?: Split;
  features: Record<string, ModalityInput>;
  /** Category name; undefined leaves the current one, null clears it. */
  category?: string | null;
  /** Tag names; undefined leaves the current ones, [] clears them. */
  tags?: string[];
}

export interface LabelAssignment {
  name: string;
  index: number;
  provenance: Provenance;
  assignedAt: number;
}

export interface VideoMeta {
  id: string;
  title: string | null;
  split: Split;
  source: string;
  createdAt: number;
  updatedAt: number;
}

export interface VideoRecord extends VideoMeta {
  category: LabelAssignment | null;
  tags: LabelAssignment[];
  modalities: { modality: string; frames: number; dim: number; encoding: FeatureEncoding }[];
}

/** A video with decoded features and label indices: what training and export read. */
export interface VideoExample {
  id: string;
  title: string | null;
  split: Split;
  features: Record<string, FeatureMatrix>;
  category: number | null;
  tags: number[];
}

export interface Label {
  index: number;
  name: string;
}

export interface StoreStats {
  videos: number;
  splits: Record<Split, number>;
  categories: number;
  tags: number;
  top_tags: { name: string; index: number; videos: number }[];
}

export interface UpsertOptions {
  source: string;
  provenance?: Provenance;
  splitFractions?: SplitFractions;
  now?: number;
}

/** Label names are compared trimmed: " Nova" and "Nova" are one label. */
export function normalizeLabelName(space: LabelSpace, name: string): string {
  const trimmed = name.trim();
  if (trimmed === "") throw new Error(`empty ${space} label name`);
  return trimmed;
}

interface FeatureRow {
  modality: string;
  frames: number;
  dim: number;
  encoding: FeatureEncoding;
  data: Buffer;
}

export class VideoStore {
  readonly db: Database.Database;
  private readonly labelCache = new Map<LabelSpace, Map<string, number>>();
  private readonly stmts;
  /** getExamples' statements, prepared on first use. */
  private batchStmts?: {
    videos: Database.Statement<[string], { pk: number; id: string; title: string | null; split: Split }>;
    labels: Database.Statement<[string], { video_pk: number; space: LabelSpace; label_idx: number }>;
    features: Database.Statement<[string], FeatureRow & { video_pk: number }>;
  };

  private constructor(db: Database.Database) {
    this.db = db;
    this.stmts = {
      // Returns no row when the id exists: one statement decides insert vs update.
      insertVideo: db.prepare<[string, string | null, string, string, number, number], { pk: number }>(
        `INSERT INTO videos (id, title, split, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING RETURNING pk`,
      ),
      updateVideo: db.prepare<[string | null, string, string, number, number]>(
        `UPDATE videos SET title = ?, split = ?, source = ?, updated_at = ? WHERE pk = ?`,
      ),
      existing: db.prepare<[string], { pk: number; split: Split }>(`SELECT pk, split FROM videos WHERE id = ?`),
      putFeature: db.prepare<[number, string, number, number, string, Buffer]>(
        `INSERT OR REPLACE INTO features (video_pk, modality, frames, dim, encoding, data) VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      clearLabels: db.prepare<[number, string]>(`DELETE FROM assignments WHERE video_pk = ? AND space = ?`),
      insertLabel: db.prepare<[string, number, string, number]>(`INSERT INTO labels (space, idx, name, created_at) VALUES (?, ?, ?, ?)`),
      pkOf: db.prepare<[string], { pk: number }>(`SELECT pk FROM videos WHERE id = ?`),
      video: db.prepare<[string], { pk: number; id: string; title: string | null; split: Split; source: string; created_at: number; updated_at: number }>(
        `SELECT pk, id, title, split, source, created_at, updated_at FROM videos WHERE id = ?`,
      ),
      videoLabels: db.prepare<[number], { space: LabelSpace; idx: number; name: string; provenance: Provenance; assigned_at: number }>(
        `SELECT a.space, a.label_idx AS idx, l.name, a.provenance, a.assigned_at FROM assignments a
         JOIN labels l ON l.space = a.space AND l.idx = a.label_idx WHERE a.video_pk = ? ORDER BY a.space, a.label_idx`,
      ),
      videoFeatures: db.prepare<[number], FeatureRow>(`SELECT modality, frames, dim, encoding, data FROM features WHERE video_pk = ? ORDER BY modality`),
      deleteVideo: db.prepare<[string]>(`DELETE FROM videos WHERE id = ?`),
      clearEmbeddings: db.prepare<[number]>(`DELETE FROM embeddings WHERE video_pk = ?`),
    };
  }

  /** Opens (creating if needed) a store; `readonly` refuses writes and migrations. */
  static open(path: string, options: { readonly?: boolean } = {}): VideoStore {
    if (!options.readonly && path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    if (options.readonly && path !== ":memory:" && !existsSync(path)) throw new Error(`no database at ${path}`);
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
    } catch (err) {
      throw new Error(`${path}: ${(err as Error).message}`);
    }
    try {
      if (!options.readonly) db.pragma("journal_mode = WAL");
      db.pragma("foreign_keys = ON");
      db.pragma("synchronous = NORMAL");
      // 16 MiB page cache: imports append in key order, so a small cache keeps the hot
      // b-tree pages resident, and memory stops growing once a database passes 16 MiB.
      db.pragma("cache_size = -16384");
      if (options.readonly) {
        const v = db.pragma("user_version", { simple: true }) as number;
        if (v === 0) throw new Error(`${path}: not a vidrecall database (schema version 0)`);
      }
      migrate(db, undefined, path);
      if (!options.readonly) for (const ix of SECONDARY_INDEXES) db.exec(ix.sql);
    } catch (err) {
      db.close();
      throw err;
    }
    return new VideoStore(db);
  }

  /** Writes a consistent copy of the whole database to `path` (which must not exist), e.g. to experiment on. */
  copyTo(path: string): void {
    if (existsSync(path)) throw new Error(`${path} already exists`);
    mkdirSync(dirname(path), { recursive: true });
    this.db.prepare(`VACUUM INTO ?`).run(path);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs fn in one transaction: all of its writes land, or none. */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      // Labels created inside the rolled-back work are gone: drop the cache.
      this.labelCache.clear();
      throw err;
    }
  }

  /**
   * Opens a transaction that spans asynchronous work (an import reading a
   * file). Only one may be open at a time on a store.
   */
  beginBatch(): { commit(): void; rollback(): void } {
    this.db.exec("BEGIN IMMEDIATE");
    let open = true;
    return {
      commit: () => {
        if (open) this.db.exec("COMMIT");
        open = false;
      },
      rollback: () => {
        if (open && this.db.inTransaction) this.db.exec("ROLLBACK");
        open = false;
        // Cached label indices may name rows that were just rolled back.
        this.labelCache.clear();
      },
    };
  }

  /** Enters or leaves bulk-load mode (see importer.ts withBulkLoad). */
  setBulkLoad(on: boolean, dropIndexes: boolean): void {
    if (on) {
      this.db.pragma("wal_autocheckpoint = 16384");
      if (dropIndexes) for (const ix of SECONDARY_INDEXES) this.db.exec(`DROP INDEX IF EXISTS ${ix.name}`);
      return;
    }
    for (const ix of SECONDARY_INDEXES) this.db.exec(ix.sql);
    this.db.pragma("wal_autocheckpoint = 1000");
    this.db.pragma("wal_checkpoint(TRUNCATE)");
  }

  /** Feature dimension per modality, as stored so far (the first video fixes it). */
  modalityDims(): Map<string, number> {
    const rows = this.db.prepare<[], { modality: string; dim: number }>(`SELECT modality, MIN(dim) AS dim FROM features GROUP BY modality`).all();
    return new Map(rows.map((r) => [r.modality, r.dim]));
  }

  // ---- labels -------------------------------------------------------------

  private labelMap(space: LabelSpace): Map<string, number> {
    let m = this.labelCache.get(space);
    if (!m) {
      m = new Map();
      for (const row of this.db.prepare<[string], Label>(`SELECT idx AS "index", name FROM labels WHERE space = ?`).all(space)) {
        m.set(row.name, row.index);
      }
      this.labelCache.set(space, m);
    }
    return m;
  }

  /** The label's index, adding it (with the next free index) if new: old indices never change. */
  ensureLabel(space: LabelSpace, name: string, now = Date.now()): number {
    const trimmed = normalizeLabelName(space, name);
    const m = this.labelMap(space);
    const known = m.get(trimmed);
    if (known !== undefined) return known;
    const next = (this.db.prepare<[string], { n: number | null }>(`SELECT MAX(idx) AS n FROM labels WHERE space = ?`).get(space)?.n ?? -1) + 1;
    this.stmts.insertLabel.run(space, next, trimmed, now);
    m.set(trimmed, next);
    return next;
  }

  /** Registers a label at a fixed index (e.g. a YouTube-8M vocabulary index); refuses to move an existing one. */
  defineLabel(space: LabelSpace, index: number, rawName: string, now = Date.now()): void {
    const name = normalizeLabelName(space, rawName);
    const m = this.labelMap(space);
    const known = m.get(name);
    if (known === index) return;
    if (known !== undefined) throw new Error(`${space} label "${name}" already has index ${known}, cannot redefine it as ${index}`);
    this.stmts.insertLabel.run(space, index, name, now);
    m.set(name, index);
  }

  labelIndex(space: LabelSpace, name: string): number | undefined {
    return this.labelMap(space).get(name.trim());
  }

  labels(space: LabelSpace): Label[] {
    return this.db.prepare<[string], Label>(`SELECT idx AS "index", name FROM labels WHERE space = ? ORDER BY idx`).all(space);
  }

  /** Size of the label space's index range (max index + 1). */
  labelSpaceSize(space: LabelSpace): number {
    return (this.db.prepare<[string], { n: number | null }>(`SELECT MAX(idx) AS n FROM labels WHERE space = ?`).get(space)?.n ?? -1) + 1;
  }

  /** Replaces the video's labels in one space. */
  setLabels(videoId: string, space: LabelSpace, names: string[], provenance: Provenance, now = Date.now()): void {
    const pk = this.pkOf(videoId);
    if (space === "category" && names.length > 1) throw new Error(`video ${videoId}: category is single-label, got ${names.length} names`);
    this.transaction(() => this.writeLabels(pk, space, names, provenance, now));
  }

  /**
   * Adds labels to a video's labels in one space, keeping the ones it has
   * (category is single-label: there the new name replaces the old one).
   */
  addLabels(videoId: string, space: LabelSpace, names: string[], provenance: Provenance, now = Date.now()): void {
    if (space === "category") return this.setLabels(videoId, space, names, provenance, now);
    const pk = this.pkOf(videoId);
    this.transaction(() => this.writeLabels(pk, space, names, provenance, now, true));
  }

  /** Ids of the videos that carry a label, in storage order. */
  videosWithLabel(space: LabelSpace, name: string): string[] {
    const idx = this.labelIndex(space, name);
    if (idx === undefined) return [];
    return this.db
      .prepare(`SELECT v.id FROM assignments a JOIN videos v ON v.pk = a.video_pk WHERE a.space = ? AND a.label_idx = ? ORDER BY v.pk`)
      .pluck()
      .all(space, idx) as string[];
  }

  /**
   * Removes a label and every assignment of it, in one transaction; every
   * other label keeps its index. Returns how many videos lost the label.
   */
  deleteLabel(space: LabelSpace, name: string): number {
    const idx = this.labelIndex(space, name);
    if (idx === undefined) throw new Error(`no ${space} label named "${name.trim()}"`);
    return this.transaction(() => {
      const removed = this.db.prepare(`DELETE FROM assignments WHERE space = ? AND label_idx = ?`).run(space, idx).changes;
      this.db.prepare(`DELETE FROM labels WHERE space = ? AND idx = ?`).run(space, idx);
      this.labelCache.delete(space);
      return removed;
    });
  }

  /** Label indices (category, tags) of the given videos, by id, in one query (an unknown id gets no labels). */
  labelsByVideo(ids: readonly string[]): Map<string, { category: number | null; tags: number[] }> {
    const out = new Map<string, { category: number | null; tags: number[] }>();
    for (const id of ids) out.set(id, { category: null, tags: [] });
    const rows = this.db
      .prepare<[string], { id: string; space: LabelSpace; label_idx: number }>(
        `SELECT v.id, a.space, a.label_idx FROM assignments a JOIN videos v ON v.pk = a.video_pk
         WHERE v.id IN (SELECT value FROM json_each(?)) ORDER BY a.video_pk, a.space, a.label_idx`,
      )
      .all(JSON.stringify(ids));
    for (const r of rows) {
      const v = out.get(r.id)!;
      if (r.space === "category") v.category = r.label_idx;
      else v.tags.push(r.label_idx);
    }
    return out;
  }

  /** Each video's last feature/title update time (ms), by id: what a cache of per-video model outputs keys on. */
  videoUpdateTimes(): Map<string, number> {
    const rows = this.db.prepare<[], { id: string; updated_at: number }>(`SELECT id, updated_at FROM videos`).all();
    return new Map(rows.map((r) => [r.id, r.updated_at]));
  }

  private readonly assignStatements: Database.Statement<unknown[]>[] = [];
  private assignRows(n: number): Database.Statement<unknown[]> {
    let stmt = this.assignStatements[n];
    if (!stmt) {
      const values = Array.from({ length: n }, () => "(?, ?, ?, ?, ?)").join(", ");
      stmt = this.db.prepare(`INSERT OR REPLACE INTO assignments (video_pk, space, label_idx, provenance, assigned_at) VALUES ${values}`);
      this.assignStatements[n] = stmt;
    }
    return stmt;
  }

  private writeLabels(pk: number, space: LabelSpace, names: string[], provenance: Provenance, now: number, isNew = false): void {
    if (!isNew) this.stmts.clearLabels.run(pk, space);
    const indices = [...new Set(names.map((name) => this.ensureLabel(space, name, now)))];
    // Up to 16 rows per statement: per-call overhead dominated the import profile.
    for (let start = 0; start < indices.length; start += 16) {
      const part = indices.slice(start, start + 16);
      const params: (number | string)[] = [];
      for (const idx of part) params.push(pk, space, idx, provenance, now);
      this.assignRows(part.length).run(params);
    }
  }

  // ---- videos -------------------------------------------------------------

  private pkOf(videoId: string): number {
    const row = this.stmts.pkOf.get(videoId);
    if (!row) throw new Error(`unknown video id "${videoId}"`);
    return row.pk;
  }

  /**
   * Inserts or updates one video. Call inside `transaction` for batches; on
   * its own it is not atomic across features and labels.
   */
  upsertVideo(v: VideoInput, options: UpsertOptions): void {
    const now = options.now ?? Date.now();
    const split = v.split ?? assignSplit(v.id, options.splitFractions ?? DEFAULT_SPLIT_FRACTIONS);
    const inserted = this.stmts.insertVideo.get(v.id, v.title ?? null, split, options.source, now, now);
    let pk: number;
    if (inserted) {
      pk = inserted.pk;
    } else {
      // Re-import: keep the video's split unless one was given explicitly.
      const existing = this.stmts.existing.get(v.id);
      if (!existing) throw new Error(`video ${v.id}: neither inserted nor found`);
      pk = existing.pk;
      this.stmts.updateVideo.run(v.title ?? null, v.split ?? existing.split, options.source, now, pk);
      // New features or title make every stored embedding of this video stale.
      this.stmts.clearEmbeddings.run(pk);
    }
    const isNew = inserted !== undefined;
    for (const [modality, input] of Object.entries(v.features)) {
      const enc = "encoded" in input ? input.encoded : encodeFeatures(input.matrix, input.encoding);
      this.stmts.putFeature.run(pk, modality, enc.frames, enc.dim, enc.encoding, enc.data);
    }
    const provenance = options.provenance ?? "imported";
    // A new video has no labels yet: skipping the DELETE matters at import speed.
    if (v.category !== undefined) this.writeLabels(pk, "category", v.category === null ? [] : [v.category], provenance, now, isNew);
    if (v.tags !== undefined) this.writeLabels(pk, "tags", v.tags, provenance, now, isNew);
  }

  /** Upserts many videos atomically. */
  upsertVideos(videos: VideoInput[], options: UpsertOptions): void {
    this.transaction(() => {
      for (const v of videos) this.upsertVideo(v, options);
    });
  }

  deleteVideo(videoId: string): boolean {
    return this.stmts.deleteVideo.run(videoId).changes > 0;
  }

  getVideo(videoId: string): VideoRecord | undefined {
    const v = this.stmts.video.get(videoId);
    if (!v) return undefined;
    const labels = this.stmts.videoLabels.all(v.pk);
    const toAssignment = (l: (typeof labels)[number]): LabelAssignment => ({
      name: l.name,
      index: l.idx,
      provenance: l.provenance,
      assignedAt: l.assigned_at,
    });
    const category = labels.find((l) => l.space === "category");
    return {
      id: v.id,
      title: v.title,
      split: v.split,
      source: v.source,
      createdAt: v.created_at,
      updatedAt: v.updated_at,
      category: category ? toAssignment(category) : null,
      tags: labels.filter((l) => l.space === "tags").map(toAssignment),
      modalities: this.stmts.videoFeatures.all(v.pk).map(({ modality, frames, dim, encoding }) => ({ modality, frames, dim, encoding })),
    };
  }

  /** Stored (encoded) features of one video, by modality. */
  getEncodedFeatures(videoId: string): Record<string, EncodedFeatures> {
    const out: Record<string, EncodedFeatures> = {};
    for (const r of this.stmts.videoFeatures.all(this.pkOf(videoId))) out[r.modality] = { frames: r.frames, dim: r.dim, encoding: r.encoding, data: r.data };
    return out;
  }

  getExample(videoId: string): VideoExample {
    const v = this.getVideo(videoId);
    if (!v) throw new Error(`unknown video id "${videoId}"`);
    const features: Record<string, FeatureMatrix> = {};
    for (const [m, e] of Object.entries(this.getEncodedFeatures(videoId))) features[m] = { frames: e.frames, dim: e.dim, values: decodeFeatures(e) };
    return { id: v.id, title: v.title, split: v.split, features, category: v.category?.index ?? null, tags: v.tags.map((t) => t.index) };
  }

  /**
   * Decoded examples of many videos in three queries (videos, labels,
   * features), returned in the requested order; a repeated id yields the same
   * example object at each of its positions. An unknown id is an error naming
   * it. The ids travel as one JSON array (json_each), so there is no limit on
   * how many are asked for at once beyond memory.
   */
  getExamples(ids: readonly string[]): VideoExample[] {
    if (ids.length === 0) return [];
    const s = (this.batchStmts ??= {
      videos: this.db.prepare<[string], { pk: number; id: string; title: string | null; split: Split }>(
        `SELECT pk, id, title, split FROM videos WHERE id IN (SELECT value FROM json_each(?))`,
      ),
      labels: this.db.prepare<[string], { video_pk: number; space: LabelSpace; label_idx: number }>(
        `SELECT video_pk, space, label_idx FROM assignments WHERE video_pk IN (SELECT value FROM json_each(?)) ORDER BY video_pk, space, label_idx`,
      ),
      features: this.db.prepare<[string], FeatureRow & { video_pk: number }>(
        `SELECT video_pk, modality, frames, dim, encoding, data FROM features WHERE video_pk IN (SELECT value FROM json_each(?)) ORDER BY video_pk, modality`,
      ),
    });
    const byPk = new Map<number, VideoExample>();
    const byId = new Map<string, VideoExample>();
    for (const r of s.videos.all(JSON.stringify(ids))) {
      const ex: VideoExample = { id: r.id, title: r.title, split: r.split, features: {}, category: null, tags: [] };
      byPk.set(r.pk, ex);
      byId.set(r.id, ex);
    }
    const out = ids.map((id) => {
      const ex = byId.get(id);
      if (!ex) throw new Error(`unknown video id "${id}"`);
      return ex;
    });
    const pks = JSON.stringify([...byPk.keys()]);
    for (const l of s.labels.all(pks)) {
      const ex = byPk.get(l.video_pk);
      if (!ex) continue;
      if (l.space === "category") ex.category = l.label_idx;
      else ex.tags.push(l.label_idx);
    }
    for (const f of s.features.all(pks)) {
      const ex = byPk.get(f.video_pk);
      if (ex) ex.features[f.modality] = { frames: f.frames, dim: f.dim, values: decodeFeatures(f) };
    }
    return out;
  }

  /** Video ids in insertion order, optionally of one split. */
  videoIds(split?: Split): string[] {
    const sql = split ? `SELECT id FROM videos WHERE split = ? ORDER BY pk` : `SELECT id FROM videos ORDER BY pk`;
    const stmt = this.db.prepare<unknown[], { id: string }>(sql).pluck();
    return (split ? stmt.all(split) : stmt.all()) as unknown as string[];
  }

  /**
   * Streams decoded examples in storage order, `pageSize` videos per query so
   * memory stays flat however large the store is.
   */
  *iterateExamples(options: { split?: Split; pageSize?: number } = {}): Generator<VideoExample> {
    const pageSize = options.pageSize ?? 512;
    const page = this.db.prepare<[number, number], { pk: number; id: string; title: string | null; split: Split }>(
      options.split
        ? `SELECT pk, id, title, split FROM videos WHERE pk > ? AND split = '${options.split}' ORDER BY pk LIMIT ?`
        : `SELECT pk, id, title, split FROM videos WHERE pk > ? ORDER BY pk LIMIT ?`,
    );
    const labels = this.db.prepare<[number, number], { video_pk: number; space: LabelSpace; label_idx: number }>(
      `SELECT video_pk, space, label_idx FROM assignments WHERE video_pk BETWEEN ? AND ? ORDER BY video_pk, space, label_idx`,
    );
    const feats = this.db.prepare<[number, number], FeatureRow & { video_pk: number }>(
      `SELECT video_pk, modality, frames, dim, encoding, data FROM features WHERE video_pk BETWEEN ? AND ?`,
    );
    let after = 0;
    for (;;) {
      const rows = page.all(after, pageSize);
      if (rows.length === 0) return;
      const lo = rows[0].pk;
      const hi = rows[rows.length - 1].pk;
      const byPk = new Map<number, VideoExample>();
      for (const r of rows) byPk.set(r.pk, { id: r.id, title: r.title, split: r.split, features: {}, category: null, tags: [] });
      for (const l of labels.all(lo, hi)) {
        const ex = byPk.get(l.video_pk);
        if (!ex) continue;
        if (l.space === "category") ex.category = l.label_idx;
        else ex.tags.push(l.label_idx);
      }
      for (const f of feats.all(lo, hi)) {
        const ex = byPk.get(f.video_pk);
        if (ex) ex.features[f.modality] = { frames: f.frames, dim: f.dim, values: decodeFeatures(f) };
      }
      yield* byPk.values();
      after = hi;
    }
  }

  // ---- embeddings ----------------------------------------------------------

  /** Stores one model's embeddings (float32) for videos by id, atomically. */
  putEmbeddings(modelHash: string, entries: readonly { id: string; vector: Float32Array }[], now = Date.now()): void {
    const put = this.db.prepare<[string, number, number, Buffer, number]>(
      `INSERT OR REPLACE INTO embeddings (model_hash, video_pk, dim, vector, created_at) VALUES (?, ?, ?, ?, ?)`,
    );
    this.transaction(() => {
      for (const e of entries) {
        const bytes = Buffer.from(e.vector.buffer, e.vector.byteOffset, e.vector.byteLength);
        put.run(modelHash, this.pkOf(e.id), e.vector.length, bytes, now);
      }
    });
  }

  /** Ids of videos with no embedding from `modelHash` (new, changed, or never embedded), in storage order. */
  videosWithoutEmbedding(modelHash: string): string[] {
    return this.db
      .prepare(`SELECT v.id FROM videos v WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model_hash = ? AND e.video_pk = v.pk) ORDER BY v.pk`)
      .pluck()
      .all(modelHash) as string[];
  }

  /** Ids of videos whose `modelHash` embedding was written at or after `sinceMs`. */
  embeddedSince(modelHash: string, sinceMs: number): string[] {
    return this.db
      .prepare(`SELECT v.id FROM embeddings e JOIN videos v ON v.pk = e.video_pk WHERE e.model_hash = ? AND e.created_at >= ? ORDER BY e.video_pk`)
      .pluck()
      .all(modelHash, sinceMs) as string[];
  }

  /** How many videos have an embedding from `modelHash`. */
  countEmbeddings(modelHash: string): number {
    return this.db.prepare(`SELECT COUNT(*) FROM embeddings WHERE model_hash = ?`).pluck().get(modelHash) as number;
  }

  /** One model's embeddings by id, for the given ids (missing ones are absent from the map). */
  getEmbeddings(modelHash: string, ids: readonly string[]): Map<string, Float32Array> {
    const get = this.db.prepare<[string, string], { vector: Buffer }>(
      `SELECT e.vector FROM embeddings e JOIN videos v ON v.pk = e.video_pk WHERE e.model_hash = ? AND v.id = ?`,
    );
    const out = new Map<string, Float32Array>();
    for (const id of ids) {
      const row = get.get(modelHash, id);
      if (row) out.set(id, bufferToFloat32(row.vector));
    }
    return out;
  }

  /**
   * Streams one model's embeddings in storage order, a page at a time, so a
   * full index build never holds the whole table in JS memory twice.
   */
  *iterateEmbeddings(modelHash: string, pageSize = 4096): Generator<{ id: string; vector: Float32Array }> {
    const page = this.db.prepare<[string, number, number], { pk: number; id: string; vector: Buffer }>(
      `SELECT e.video_pk AS pk, v.id, e.vector FROM embeddings e JOIN videos v ON v.pk = e.video_pk
       WHERE e.model_hash = ? AND e.video_pk > ? ORDER BY e.video_pk LIMIT ?`,
    );
    let after = 0;
    for (;;) {
      const rows = page.all(modelHash, after, pageSize);
      if (rows.length === 0) return;
      for (const r of rows) yield { id: r.id, vector: bufferToFloat32(r.vector) };
      after = rows[rows.length - 1].pk;
    }
  }

  /** Drops embeddings of every model not in `keep`; returns the rows removed. */
  pruneEmbeddings(keep: readonly string[]): number {
    const placeholders = keep.map(() => "?").join(", ");
    const sql = keep.length ? `DELETE FROM embeddings WHERE model_hash NOT IN (${placeholders})` : `DELETE FROM embeddings`;
    return this.db.prepare(sql).run(...keep).changes;
  }

  // ---- title vocabulary ---------------------------------------------------

  saveTokenVocabulary(vocabulary: TokenVocabulary, counts: Map<string, number>): void {
    this.transaction(() => {
      this.db.prepare(`DELETE FROM title_tokens`).run();
      const ins = this.db.prepare<[number, string, number]>(`INSERT INTO title_tokens (id, token, count) VALUES (?, ?, ?)`);
      vocabulary.tokens.forEach((t, i) => ins.run(i, t, counts.get(t) ?? 0));
    });
  }

  loadTokenVocabulary(): TokenVocabulary | undefined {
    const tokens = this.db.prepare(`SELECT token FROM title_tokens ORDER BY id`).pluck().all() as string[];
    return tokens.length ? new TokenVocabulary(tokens) : undefined;
  }

  /** Builds the title vocabulary from the training split's titles and stores it. */
  buildTokenVocabulary(minCount = 2, maxSize = 50_000): TokenVocabulary {
    const titles = this.db.prepare(`SELECT title FROM videos WHERE split = 'train' AND title IS NOT NULL`).pluck().iterate() as IterableIterator<string>;
    const { vocabulary, counts } = TokenVocabulary.build(titles, minCount, maxSize);
    this.saveTokenVocabulary(vocabulary, counts);
    return vocabulary;
  }

  // ---- stats -------------------------------------------------------------

  countVideos(): number {
    return this.db.prepare(`SELECT COUNT(*) FROM videos`).pluck().get() as number;
  }

  stats(topN = 10): StoreStats {
    const splits: Record<Split, number> = { train: 0, validate: 0, test: 0 };
    for (const r of this.db.prepare<[], { split: Split; n: number }>(`SELECT split, COUNT(*) AS n FROM videos GROUP BY split`).all()) splits[r.split] = r.n;
    const count = (space: LabelSpace) => this.db.prepare(`SELECT COUNT(*) FROM labels WHERE space = ?`).pluck().get(space) as number;
    const top_tags = this.db
      .prepare<[number], { name: string; index: number; videos: number }>(
        `SELECT l.name, l.idx AS "index", COUNT(*) AS videos FROM assignments a JOIN labels l ON l.space = a.space AND l.idx = a.label_idx
         WHERE a.space = 'tags' GROUP BY a.label_idx ORDER BY videos DESC, l.idx LIMIT ?`,
      )
      .all(topN);
    return { videos: splits.train + splits.validate + splits.test, splits, categories: count("category"), tags: count("tags"), top_tags };
  }

  // ---- serving (the HTTP service's read paths) ------------------------------
  // Added for the HTTP service (server/, src/service): batched metadata reads so
  // one request costs a fixed number of queries however many videos it names.

  /**
   * Title, category and tag names of many videos (two queries), by id; unknown
   * ids are absent. Tags in label-index order.
   */
  videoSummaries(ids: readonly string[]): Map<string, VideoSummary> {
    const out = new Map<string, VideoSummary>();
    if (ids.length === 0) return out;
    const s = (this.summaryStmts ??= {
      videos: this.db.prepare<[string], { pk: number; id: string; title: string | null }>(`SELECT pk, id, title FROM videos WHERE id IN (SELECT value FROM json_each(?))`),
      labels: this.db.prepare<[string], { video_pk: number; space: LabelSpace; name: string }>(
        `SELECT a.video_pk, a.space, l.name FROM assignments a JOIN labels l ON l.space = a.space AND l.idx = a.label_idx
         WHERE a.video_pk IN (SELECT value FROM json_each(?)) ORDER BY a.video_pk, a.space, a.label_idx`,
      ),
    });
    const byPk = new Map<number, VideoSummary>();
    for (const r of s.videos.all(JSON.stringify(ids))) {
      const summary: VideoSummary = { id: r.id, title: r.title, category: null, tags: [] };
      byPk.set(r.pk, summary);
      out.set(r.id, summary);
    }
    if (byPk.size === 0) return out;
    for (const l of s.labels.all(JSON.stringify([...byPk.keys()]))) {
      const v = byPk.get(l.video_pk);
      if (!v) continue;
      if (l.space === "category") v.category = l.name;
      else v.tags.push(l.name);
    }
    return out;
  }
  private summaryStmts?: {
    videos: Database.Statement<[string], { pk: number; id: string; title: string | null }>;
    labels: Database.Statement<[string], { video_pk: number; space: LabelSpace; name: string }>;
  };

  /**
   * One page of videos in storage order, after the video `after` (exclusive;
   * undefined: from the start). Throws for an `after` id that is not stored.
   */
  listVideos(limit: number, after?: string): VideoSummary[] {
    let afterPk = 0;
    if (after !== undefined) afterPk = this.pkOf(after);
    const ids = this.db.prepare<[number, number], string>(`SELECT id FROM videos WHERE pk > ? ORDER BY pk LIMIT ?`).pluck().all(afterPk, limit) as unknown as string[];
    const summaries = this.videoSummaries(ids);
    return ids.map((id) => summaries.get(id)!);
  }

  /** Every video's category name (null: none), in one query: what a similarity index's category filter reads. */
  videoCategories(): Map<string, string | null> {
    const rows = this.db
      .prepare<[], { id: string; name: string | null }>(
        `SELECT v.id, l.name FROM videos v LEFT JOIN assignments a ON a.video_pk = v.pk AND a.space = 'category'
         LEFT JOIN labels l ON l.space = 'category' AND l.idx = a.label_idx`,
      )
      .all();
    return new Map(rows.map((r) => [r.id, r.name]));
  }
}

/** A video's title and label names, for listings and search results. */
export interface VideoSummary {
  id: string;
  title: string | null;
  category: string | null;
  tags: string[];
}

/** Copies a SQLite blob into an aligned Float32Array (blobs need not be 4-byte aligned). */
function bufferToFloat32(b: Buffer): Float32Array {
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}
