/**
 * Index versions on disk. Layout under an index root:
 *
 *   CURRENT                 one line: the name of the current version directory
 *   v-<ms>-<n>/index.hnsw   the hnswlib graph and vectors
 *   v-<ms>-<n>/ids.json     label → video id (label = array position; null = deleted slot)
 *   v-<ms>-<n>/manifest.json  written last: its presence marks a complete, verified version
 *   .lock                   held by the one build running (pid inside)
 *
 * CURRENT is only ever replaced by rename, after the new version has been
 * written, synced and verified, so a crash at any point leaves the previous
 * CURRENT naming a complete version. Directories without a manifest are
 * leftovers of crashed builds: ignored by readers, removed by the next build.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { fsyncPath, writeFileAtomic } from "../src/util/files.js";
import { hostname } from "node:os";
import { join } from "node:path";

export const INDEX_FILE = "index.hnsw";
export const IDS_FILE = "ids.json";
export const MANIFEST_FILE = "manifest.json";
export const CURRENT_FILE = "CURRENT";
const LOCK_FILE = ".lock";
const VERSION_RE = /^v-(\d+)-(\d+)$/;
export const MANIFEST_FORMAT = 1;

export interface IndexManifest {
  format: number;
  /** Hash of the model that produced the embeddings; vectors from different models never share an index. */
  modelHash: string;
  dim: number;
  space: "cosine";
  /** Live (searchable) videos. */
  count: number;
  /** Mark-deleted slots waiting for reuse. */
  deleted: number;
  /** Slots in the graph: count + deleted (hnswlib's element count). */
  slots: number;
  M: number;
  efConstruction: number;
  /** Default search ef: hnswlib does not store it in the index file, so it lives here. */
  ef: number;
  kind: "full" | "incremental";
  /** The version an incremental update started from. */
  parent: string | null;
  build_s: number;
  createdAt: string;
}

export interface IdsFile {
  format: number;
  ids: (string | null)[];
}

export interface VersionInfo {
  name: string;
  dir: string;
  createdMs: number;
  seq: number;
  complete: boolean;
}

export function versionDir(root: string, name: string): string {
  return join(root, name);
}

/** Version directories, oldest first; `complete` is false for a crashed build's leftovers. */
export function listVersions(root: string): VersionInfo[] {
  if (!existsSync(root)) return [];
  const out: VersionInfo[] = [];
  for (const ent of readdirSync(root, { withFileTypes: true })) {
    const m = VERSION_RE.exec(ent.name);
    if (!m || !ent.isDirectory()) continue;
    const dir = join(root, ent.name);
    out.push({ name: ent.name, dir, createdMs: Number(m[1]), seq: Number(m[2]), complete: existsSync(join(dir, MANIFEST_FILE)) });
  }
  return out.sort((a, b) => a.createdMs - b.createdMs || a.seq - b.seq);
}

/** The current version's name, or null when no build has completed yet. */
export function readCurrent(root: string): string | null {
  const file = join(root, CURRENT_FILE);
  if (!existsSync(file)) return null;
  const name = readFileSync(file, "utf8").trim();
  if (!VERSION_RE.test(name)) throw new Error(`${file}: "${name}" is not a version name`);
  if (!existsSync(join(root, name, MANIFEST_FILE))) throw new Error(`${file} names ${name}, which has no ${MANIFEST_FILE} (directory removed by hand?)`);
  return name;
}

export function readManifest(root: string, name: string): IndexManifest {
  const file = join(root, name, MANIFEST_FILE);
  const m = JSON.parse(readFileSync(file, "utf8")) as IndexManifest;
  if (m.format !== MANIFEST_FORMAT) throw new Error(`${file}: manifest format ${m.format}, this vidrecall reads ${MANIFEST_FORMAT}`);
  return m;
}

export function readIds(root: string, name: string): (string | null)[] {
  const file = join(root, name, IDS_FILE);
  const parsed = JSON.parse(readFileSync(file, "utf8")) as IdsFile;
  if (parsed.format !== MANIFEST_FORMAT || !Array.isArray(parsed.ids)) throw new Error(`${file}: not an ids file of format ${MANIFEST_FORMAT}`);
  return parsed.ids;
}

/** A fresh, not yet existing version directory name, ordered after every existing one. */
export function newVersionName(root: string, now = Date.now()): string {
  const existing = listVersions(root);
  const last = existing[existing.length - 1];
  // A clock that went backwards must not sort the new version before older ones.
  const ms = last && last.createdMs > now ? last.createdMs : now;
  let seq = last && last.createdMs === ms ? last.seq + 1 : 0;
  while (existsSync(join(root, `v-${ms}-${seq}`))) seq++;
  return `v-${ms}-${seq}`;
}

export { fsyncPath };

/** Writes a file and syncs it before returning. */
export function writeFileDurable(path: string, data: string): void {
  const fd = openSync(path, "w");
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Points CURRENT at `name`: temp file, fsync, rename, fsync the directory, so
 * readers see either the old name or the new one, never a torn file.
 */
export function flipCurrent(root: string, name: string): void {
  if (!existsSync(join(root, name, MANIFEST_FILE))) throw new Error(`refusing to make ${name} current: it has no ${MANIFEST_FILE}`);
  writeFileAtomic(join(root, CURRENT_FILE), name + "\n");
  fsyncPath(root);
}

/**
 * Removes crashed builds' leftovers and all but the newest `keep` complete
 * versions; the current version is always kept. Call with the lock held.
 */
export function pruneVersions(root: string, keep = 3, exclude: readonly string[] = []): string[] {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`keep must be a positive integer, got ${keep}`);
  const current = readCurrent(root);
  const removed: string[] = [];
  const versions = listVersions(root).filter((v) => !exclude.includes(v.name));
  const complete = versions.filter((v) => v.complete && v.name !== current);
  // The current version counts towards `keep`; the others kept are the newest.
  const keepOthers = new Set(complete.slice(Math.max(0, complete.length - (keep - (current ? 1 : 0)))).map((v) => v.name));
  for (const v of versions) {
    if (v.name === current || keepOthers.has(v.name)) continue;
    rmSync(v.dir, { recursive: true, force: true });
    removed.push(v.name);
  }
  for (const f of readdirSync(root)) if (f.startsWith(`${CURRENT_FILE}.tmp-`)) rmSync(join(root, f), { force: true });
  return removed;
}

export class IndexBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IndexBusyError";
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes the root's build lock (one writer at a time). A lock left by a
 * process that no longer runs on this host is taken over.
 */
export function acquireLock(root: string): () => void {
  mkdirSync(root, { recursive: true });
  const file = join(root, LOCK_FILE);
  const host = hostname();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, JSON.stringify({ pid: process.pid, host, since: new Date().toISOString() }));
      closeSync(fd);
      let held = true;
      return () => {
        if (held) rmSync(file, { force: true });
        held = false;
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let holder: { pid?: number; host?: string } = {};
    try {
      holder = JSON.parse(readFileSync(file, "utf8")) as typeof holder;
    } catch {
      // Empty or torn: its writer died between open and write.
    }
    if (holder.pid !== undefined && holder.host === host && processAlive(holder.pid)) {
      throw new IndexBusyError(`index ${root} is being built by process ${holder.pid} (${file}); wait for it to finish`);
    }
    if (holder.pid !== undefined && holder.host !== undefined && holder.host !== host) {
      throw new IndexBusyError(`index ${root} is locked by process ${holder.pid} on ${holder.host} (${file}); remove the file if that build is gone`);
    }
    rmSync(file, { force: true });
  }
  throw new IndexBusyError(`could not take the lock ${file}`);
}

/** Writes JSON durably (the version directory's small files). */
export function writeJsonDurable(path: string, value: unknown): void {
  writeFileDurable(path, JSON.stringify(value) + "\n");
}
