/**
 * The model registry: every trained model with its lineage, data snapshot,
 * holdout metrics and status, in the store's database (table `models`,
 * schema v3). At most one model is active (a partial unique index enforces
 * it); promotion and rollback move that role in one transaction, so readers
 * (the server polls `active()`) never see zero or two active models.
 */
import { resolve } from "node:path";
import type { VideoStore } from "../data/store.js";

export type ModelStatus = "candidate" | "active" | "retired";

/** What the model was trained on. */
export interface DataSnapshot {
  videos: number;
  labelSpaces: { category: number; tags: number };
  /** Videos per split, when recorded. */
  splits?: { train: number; validate: number; test: number };
}

export interface ModelRecord {
  id: string;
  /** Directory holding the checkpoint, model.onnx and model.json. */
  dir: string;
  parent: string | null;
  status: ModelStatus;
  /** How it was trained: "scratch", "heads", "full", "import". */
  mode: string;
  config: unknown;
  snapshot: DataSnapshot;
  metrics: Record<string, unknown> | null;
  /** sha256 of model.onnx once exported. */
  modelHash: string | null;
  /** Index version built from this model's embeddings (or reused from its parent). */
  indexVersion: string | null;
  /** sha256 of the weights and config below the heads: equal hashes embed every video identically (schema v4). */
  embeddingHash: string | null;
  /** Why the gate kept it a candidate, or why it was retired. */
  reason: string | null;
  createdAt: number;
  promotedAt: number | null;
}

export interface NewModel {
  id: string;
  dir: string;
  parent?: string | null;
  mode: string;
  config: unknown;
  snapshot: DataSnapshot;
  metrics?: Record<string, unknown> | null;
  modelHash?: string | null;
  indexVersion?: string | null;
  embeddingHash?: string | null;
  /** Why it is (still) a candidate, e.g. the gate's verdict. */
  reason?: string | null;
}

interface Row {
  id: string;
  dir: string;
  parent: string | null;
  status: ModelStatus;
  mode: string;
  config: string;
  snapshot: string;
  metrics: string | null;
  model_hash: string | null;
  index_version: string | null;
  embedding_hash: string | null;
  reason: string | null;
  created_at: number;
  promoted_at: number | null;
}

function fromRow(r: Row): ModelRecord {
  return {
    id: r.id,
    dir: r.dir,
    parent: r.parent,
    status: r.status,
    mode: r.mode,
    config: JSON.parse(r.config) as unknown,
    snapshot: JSON.parse(r.snapshot) as DataSnapshot,
    metrics: r.metrics === null ? null : (JSON.parse(r.metrics) as Record<string, unknown>),
    modelHash: r.model_hash,
    indexVersion: r.index_version,
    embeddingHash: r.embedding_hash,
    reason: r.reason,
    createdAt: r.created_at,
    promotedAt: r.promoted_at,
  };
}

export class UnknownModelError extends Error {
  constructor(readonly id: string) {
    super(`no model "${id}" in the registry (see \`vidrecall models list\`)`);
    this.name = "UnknownModelError";
  }
}

export class ModelRegistry {
  constructor(private readonly store: VideoStore) {}

  private get db() {
    return this.store.db;
  }

  register(m: NewModel, now = Date.now()): ModelRecord {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(m.id)) throw new Error(`model id "${m.id}": use letters, digits, ".", "_", "-" (at most 128)`);
    if (m.parent && !this.get(m.parent)) throw new UnknownModelError(m.parent);
    if (this.get(m.id)) throw new Error(`model "${m.id}" is already registered`);
    this.db
      .prepare(
        `INSERT INTO models (id, dir, parent, status, mode, config, snapshot, metrics, model_hash, index_version, embedding_hash, reason, created_at, promoted_at)
         VALUES (?, ?, ?, 'candidate', ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
      )
      .run(
        m.id,
        m.dir,
        m.parent ?? null,
        m.mode,
        JSON.stringify(m.config),
        JSON.stringify(m.snapshot),
        m.metrics ? JSON.stringify(m.metrics) : null,
        m.modelHash ?? null,
        m.indexVersion ?? null,
        m.embeddingHash ?? null,
        m.reason ?? null,
        now,
      );
    return this.get(m.id)!;
  }

  get(id: string): ModelRecord | undefined {
    const r = this.db.prepare<[string], Row>(`SELECT * FROM models WHERE id = ?`).get(id);
    return r ? fromRow(r) : undefined;
  }

  require(id: string): ModelRecord {
    const m = this.get(id);
    if (!m) throw new UnknownModelError(id);
    return m;
  }

  /** Newest first. */
  list(): ModelRecord[] {
    return this.db.prepare<[], Row>(`SELECT * FROM models ORDER BY created_at DESC, rowid DESC`).all().map(fromRow);
  }

  active(): ModelRecord | undefined {
    const r = this.db.prepare<[], Row>(`SELECT * FROM models WHERE status = 'active'`).get();
    return r ? fromRow(r) : undefined;
  }

  update(
    id: string,
    fields: { metrics?: Record<string, unknown>; modelHash?: string; indexVersion?: string | null; embeddingHash?: string; reason?: string | null },
  ): ModelRecord {
    this.require(id);
    const sets: string[] = [];
    const args: unknown[] = [];
    const put = (column: string, value: unknown) => {
      sets.push(`${column} = ?`);
      args.push(value);
    };
    if (fields.metrics !== undefined) put("metrics", JSON.stringify(fields.metrics));
    if (fields.modelHash !== undefined) put("model_hash", fields.modelHash);
    if (fields.indexVersion !== undefined) put("index_version", fields.indexVersion);
    if (fields.embeddingHash !== undefined) put("embedding_hash", fields.embeddingHash);
    if (fields.reason !== undefined) put("reason", fields.reason);
    if (sets.length) this.db.prepare(`UPDATE models SET ${sets.join(", ")} WHERE id = ?`).run(...args, id);
    return this.require(id);
  }

  /** The registered model whose directory is `dir` (compared as absolute paths), if any. */
  findByDir(dir: string): ModelRecord | undefined {
    const want = resolve(dir);
    return this.list().find((m) => resolve(m.dir) === want);
  }

  /** Index versions that a rollback may need: those of the active model and of every model that was ever active. */
  pinnedIndexVersions(): string[] {
    return [...new Set(this.list().filter((m) => m.indexVersion && (m.status === "active" || m.promotedAt !== null)).map((m) => m.indexVersion!))];
  }

  /** The model `rollback()` would restore (see there), if any. */
  previous(): ModelRecord | undefined {
    const current = this.active();
    if (!current) return undefined;
    const r = this.db
      .prepare<[number], Row>(
        `SELECT * FROM models WHERE status = 'retired' AND promoted_at IS NOT NULL AND promoted_at <= ? ORDER BY promoted_at DESC, rowid DESC LIMIT 1`,
      )
      .get(current.promotedAt ?? Date.now());
    return r ? fromRow(r) : undefined;
  }

  /** Makes `id` the active model; the previous active one is retired. One transaction. */
  promote(id: string, now = Date.now()): ModelRecord {
    return this.store.transaction(() => {
      const m = this.require(id);
      if (m.status === "active") return m;
      this.db.prepare(`UPDATE models SET status = 'retired', reason = ? WHERE status = 'active'`).run(`replaced by ${id}`);
      this.db.prepare(`UPDATE models SET status = 'active', promoted_at = ?, reason = NULL WHERE id = ?`).run(now, id);
      return this.require(id);
    });
  }

  /**
   * Restores the model that was active before the current one (the retired
   * model promoted most recently before it); the current one is retired.
   */
  rollback(now = Date.now()): { from: ModelRecord; to: ModelRecord } {
    return this.store.transaction(() => {
      const current = this.active();
      if (!current) throw new Error("no active model to roll back from");
      const prev = this.db
        .prepare<[number], Row>(
          `SELECT * FROM models WHERE status = 'retired' AND promoted_at IS NOT NULL AND promoted_at <= ? ORDER BY promoted_at DESC, rowid DESC LIMIT 1`,
        )
        .get(current.promotedAt ?? now);
      if (!prev) throw new Error(`model "${current.id}" has no previously active model to roll back to`);
      this.db.prepare(`UPDATE models SET status = 'retired', reason = ? WHERE id = ?`).run(`rolled back to ${prev.id}`, current.id);
      // promoted_at is left as it was: a second rollback goes further back in history.
      this.db.prepare(`UPDATE models SET status = 'active', reason = NULL WHERE id = ?`).run(prev.id);
      return { from: this.require(current.id), to: this.require(prev.id) };
    });
  }
}
