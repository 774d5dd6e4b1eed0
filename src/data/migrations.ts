/**
 * Schema migrations by version number (SQLite's `user_version`). Opening an
 * older database applies the missing steps in one transaction; a newer one is
 * refused, since this build cannot know what its extra tables mean.
 */
import type Database from "better-sqlite3";

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "videos, per-modality features, label spaces, label assignments",
    sql: `
      CREATE TABLE videos (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        title TEXT,
        split TEXT NOT NULL CHECK (split IN ('train', 'validate', 'test')),
        source TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE features (
        video_pk INTEGER NOT NULL REFERENCES videos (pk) ON DELETE CASCADE,
        modality TEXT NOT NULL,
        frames INTEGER NOT NULL CHECK (frames > 0),
        dim INTEGER NOT NULL CHECK (dim > 0),
        encoding TEXT NOT NULL CHECK (encoding IN ('uint8', 'float16')),
        data BLOB NOT NULL,
        PRIMARY KEY (video_pk, modality)
      );
      CREATE TABLE label_spaces (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('single', 'multi'))
      );
      INSERT INTO label_spaces (name, kind) VALUES ('category', 'single'), ('tags', 'multi');
      CREATE TABLE labels (
        space TEXT NOT NULL REFERENCES label_spaces (name),
        idx INTEGER NOT NULL CHECK (idx >= 0),
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (space, idx),
        UNIQUE (space, name)
      );
      CREATE TABLE assignments (
        video_pk INTEGER NOT NULL REFERENCES videos (pk) ON DELETE CASCADE,
        space TEXT NOT NULL,
        label_idx INTEGER NOT NULL,
        provenance TEXT NOT NULL CHECK (provenance IN ('imported', 'manual', 'predicted')),
        assigned_at INTEGER NOT NULL,
        PRIMARY KEY (video_pk, space, label_idx),
        FOREIGN KEY (space, label_idx) REFERENCES labels (space, idx)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    description: "title token vocabulary",
    sql: `
      CREATE TABLE title_tokens (
        id INTEGER PRIMARY KEY CHECK (id >= 0),
        token TEXT NOT NULL UNIQUE,
        count INTEGER NOT NULL
      );
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 3,
    description: "video embeddings per model; model registry",
    sql: `
      -- One vector per (model, video). A video's row is deleted when its
      -- features change, so "no row" means "needs embedding" for reindex.
      CREATE TABLE embeddings (
        model_hash TEXT NOT NULL,
        video_pk INTEGER NOT NULL REFERENCES videos (pk) ON DELETE CASCADE,
        dim INTEGER NOT NULL CHECK (dim > 0),
        vector BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (model_hash, video_pk)
      ) WITHOUT ROWID;
      CREATE INDEX embeddings_video ON embeddings (video_pk);
      CREATE TABLE models (
        id TEXT PRIMARY KEY,
        dir TEXT NOT NULL,
        parent TEXT REFERENCES models (id),
        status TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'retired')),
        mode TEXT NOT NULL,
        config TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        metrics TEXT,
        model_hash TEXT,
        index_version TEXT,
        reason TEXT,
        created_at INTEGER NOT NULL,
        promoted_at INTEGER
      );
      CREATE UNIQUE INDEX models_one_active ON models (status) WHERE status = 'active';
    `,
  },
  {
    version: 4,
    description: "model registry: backbone hash (models with equal hashes embed every video identically)",
    sql: `
      ALTER TABLE models ADD COLUMN embedding_hash TEXT;
    `,
  },
];

/**
 * Indexes that only speed up reads. Kept out of the migrations so bulk loads
 * can drop and rebuild them; `VideoStore.open` recreates any that are missing.
 */
export const SECONDARY_INDEXES: readonly { name: string; sql: string }[] = [
  { name: "videos_split", sql: "CREATE INDEX IF NOT EXISTS videos_split ON videos (split)" },
  { name: "assignments_label", sql: "CREATE INDEX IF NOT EXISTS assignments_label ON assignments (space, label_idx)" },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Brings `db` to `target` (default: the latest), refusing databases newer than this build. */
export function migrate(db: Database.Database, target = SCHEMA_VERSION, path = "database"): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `${path}: schema version ${current} is newer than this vidrecall supports (${SCHEMA_VERSION}); upgrade vidrecall to open it`,
    );
  }
  const pending = MIGRATIONS.filter((m) => m.version > current && m.version <= target);
  if (pending.length === 0) return current;
  db.transaction(() => {
    for (const m of pending) {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
  })();
  return target;
}
