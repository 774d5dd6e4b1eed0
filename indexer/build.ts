/**
 * Builds index versions: full builds from a stream of embeddings, and
 * incremental updates of the current version. Either way the result is a new
 * version directory that is written, synced and verified (loaded into a fresh
 * object and probed) before CURRENT is flipped to it; the version searched
 * until then is never modified.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { IndexEntry } from "./embedder.js";
import { newGraph, toPlainVector, type Graph } from "./hnsw.js";
import {
  acquireLock,
  flipCurrent,
  fsyncPath,
  IDS_FILE,
  INDEX_FILE,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  newVersionName,
  pruneVersions,
  readCurrent,
  readIds,
  readManifest,
  writeJsonDurable,
  type IndexManifest,
} from "./versions.js";

/*
 * Defaults measured with `vidrecall bench ann` (100k clustered unit vectors,
 * dim 256; the sweep is in indexer/README.md). A search is memory-bound: its
 * cost is the number of vectors it reads, about ef × 2M at the bottom layer,
 * so M 16 with ef 64 reads ~45% of what M 24 with ef 96 did. efConstruction
 * 128 buys the graph quality that keeps recall@10 at ≈ 0.98 with those
 * (0.977 at ef 64, 0.990 at ef 96) for ~10% more build time than 64 at M 24.
 * On isotropic data (the hardest case, unlike real embeddings) raise M.
 */
export const DEFAULT_M = 16;
export const DEFAULT_EF_CONSTRUCTION = 128;
export const DEFAULT_EF = 64;
export const DEFAULT_KEEP_VERSIONS = 3;
/** Deleted slots above this fraction of all slots make an incremental update a full rebuild. */
export const DEFAULT_REBUILD_THRESHOLD = 0.2;
const DEFAULT_SEED = 100;

export type BuildStage = "insert" | "write" | "verify" | "flip";

export interface BuildProgress {
  stage: BuildStage;
  /** Vectors inserted so far (stage "insert"). */
  done?: number;
}

export interface BuildOptions {
  /** Index root, e.g. data/index. */
  root: string;
  modelHash: string;
  dim: number;
  M?: number;
  efConstruction?: number;
  /** Default search ef recorded in the manifest. */
  ef?: number;
  seed?: number;
  /** Expected vector count: sizes the graph up front instead of growing it. */
  expectedCount?: number;
  /** Complete versions kept on disk, the current one included. */
  keep?: number;
  /** Called at each stage; throwing aborts the build before CURRENT moves. */
  onProgress?: (p: BuildProgress) => void;
}

export interface UpdateOptions extends BuildOptions {
  /** Deleted-slot fraction above which a full rebuild replaces the update (default 0.2). */
  rebuildThreshold?: number;
}

export interface IndexChanges {
  /** New videos and videos whose embedding changed. */
  upsert?: AsyncIterable<IndexEntry> | Iterable<IndexEntry>;
  /** Videos to drop from the index; ids not in it are counted and ignored. */
  remove?: Iterable<string>;
}

export interface BuildResult {
  version: string;
  mode: "full" | "incremental";
  /** Why an incremental update became a full rebuild. */
  rebuildReason?: string;
  count: number;
  deleted: number;
  slots: number;
  added: number;
  updated: number;
  removed: number;
  /** Removals of ids the index did not hold. */
  missing: number;
  insert_s: number;
  write_s: number;
  verify_s: number;
  build_s: number;
  pruned: string[];
}

export class ModelMismatchError extends Error {
  constructor(
    readonly indexModelHash: string,
    readonly modelHash: string,
    root: string,
  ) {
    super(
      `index ${root} holds embeddings of model ${indexModelHash}, the new embeddings are from model ${modelHash}: ` +
        `embeddings of different models cannot share an index, run a full rebuild (without --incremental)`,
    );
    this.name = "ModelMismatchError";
  }
}

interface Probe {
  label: number;
  vector: number[];
}

interface Params {
  M: number;
  efConstruction: number;
  ef: number;
  seed: number;
  keep: number;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return v;
}

function params(options: BuildOptions, base?: IndexManifest): Params {
  return {
    M: positiveInt("M", options.M ?? base?.M ?? DEFAULT_M),
    efConstruction: positiveInt("efConstruction", options.efConstruction ?? base?.efConstruction ?? DEFAULT_EF_CONSTRUCTION),
    ef: positiveInt("ef", options.ef ?? base?.ef ?? DEFAULT_EF),
    seed: options.seed ?? DEFAULT_SEED,
    keep: positiveInt("keep", options.keep ?? DEFAULT_KEEP_VERSIONS),
  };
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

/** Holds the lock and removes the half-written directory if the build throws. */
async function withNewVersion<T>(root: string, keep: number, fn: (name: string, dir: string) => Promise<T>): Promise<T & { pruned: string[] }> {
  const release = acquireLock(root);
  try {
    // Leftovers of crashed builds go now; nobody else builds while we hold the lock.
    pruneVersions(root, keep);
    const name = newVersionName(root);
    const dir = join(root, name);
    mkdirSync(dir);
    let result: T;
    try {
      result = await fn(name, dir);
    } catch (err) {
      if (readCurrent(root) !== name) rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return { ...result, pruned: pruneVersions(root, keep) };
  } finally {
    release();
  }
}

interface Written {
  write_s: number;
  verify_s: number;
}

/**
 * Writes graph + ids into `dir`, verifies the files by loading them into a
 * fresh graph, then writes the manifest (marking the version complete) and
 * flips CURRENT.
 */
function writeVerifyFlip(
  root: string,
  name: string,
  graph: Graph,
  ids: (string | null)[],
  probes: Probe[],
  manifest: Omit<IndexManifest, "build_s" | "createdAt">,
  started: number,
  onProgress: BuildOptions["onProgress"],
): Written {
  const dir = join(root, name);
  onProgress?.({ stage: "write" });
  const tw = performance.now();
  // hnswlib allocates max_elements slots on load: trim spare capacity first.
  if (graph.getMaxElements() > ids.length) graph.resizeIndex(ids.length);
  graph.writeIndexSync(join(dir, INDEX_FILE));
  fsyncPath(join(dir, INDEX_FILE));
  writeJsonDurable(join(dir, IDS_FILE), { format: MANIFEST_FORMAT, ids });
  const write_s = seconds(tw);

  onProgress?.({ stage: "verify" });
  const tv = performance.now();
  verifyVersion(dir, graph, ids, withSpreadProbes(graph, ids, probes), Math.max(manifest.ef, 50));
  const verify_s = seconds(tv);

  writeJsonDurable(join(dir, MANIFEST_FILE), { ...manifest, build_s: seconds(started), createdAt: new Date().toISOString() } satisfies IndexManifest);
  fsyncPath(dir);
  fsyncPath(root);
  onProgress?.({ stage: "flip" });
  flipCurrent(root, name);
  return { write_s, verify_s };
}

/**
 * The given probes plus up to four live labels spread over the slots, so a
 * verification touches old and new parts of the graph.
 */
function withSpreadProbes(graph: Graph, ids: (string | null)[], probes: Probe[]): Probe[] {
  const out = [...probes];
  for (let i = 0; i < 4; i++) {
    let label = Math.floor((i * ids.length) / 4);
    while (label < ids.length && ids[label] === null) label++;
    if (label < ids.length && !out.some((p) => p.label === label)) out.push({ label, vector: graph.getPoint(label) });
  }
  return out;
}

/**
 * Loads the written index into a new object and checks it: slot count, the
 * deleted slots really deleted, every probe answered exactly as the graph in
 * memory answers it (the file reproduces the graph), and the probes finding
 * themselves at distance ~0.
 *
 * Self-hits are required of a majority, not of every probe: HNSW leaves a
 * few elements with no incoming links on hard data (measured: element 0 of
 * 100k isotropic 256-d vectors), which no ef can find; that is a recall
 * property of the graph, not a broken file, and the answers-equal check
 * already covers the file.
 */
function verifyVersion(dir: string, built: Graph, ids: (string | null)[], probes: Probe[], ef: number): void {
  const g = newGraph(built.getNumDimensions());
  g.readIndexSync(join(dir, INDEX_FILE));
  const fail = (why: string) => new Error(`verification of ${dir} failed: ${why}`);
  if (g.getCurrentCount() !== ids.length) throw fail(`${g.getCurrentCount()} slots in ${INDEX_FILE}, ${ids.length} in ${IDS_FILE}`);
  let checkedDeleted = 0;
  for (let label = 0; label < ids.length && checkedDeleted < 3; label++) {
    if (ids[label] !== null) continue;
    checkedDeleted++;
    // hnswlib refuses getPoint on a mark-deleted label.
    let readable = true;
    try {
      g.getPoint(label);
    } catch {
      readable = false;
    }
    if (readable) throw fail(`slot ${label} should be deleted but is searchable`);
  }
  const live = ids.length - ids.filter((x) => x === null).length;
  const k = Math.min(10, live);
  g.setEf(ef);
  built.setEf(ef);
  let selfHits = 0;
  for (const p of probes) {
    const res = g.searchKnn(p.vector, k);
    const want = built.searchKnn(p.vector, k);
    if (res.neighbors.join() !== want.neighbors.join()) throw fail(`the loaded index answers probe ${ids[p.label]} differently from the index built`);
    const at = res.neighbors.indexOf(p.label);
    if (at >= 0 && res.distances[at] <= 1e-4) selfHits++;
  }
  if (selfHits * 2 <= probes.length) {
    throw fail(`only ${selfHits} of ${probes.length} probes found themselves`);
  }
}

/**
 * Full build: every vector of `entries` into a new version, which becomes
 * current once verified. Duplicate ids are an error (the input is meant to be
 * one row per video).
 */
export async function buildIndex(entries: AsyncIterable<IndexEntry> | Iterable<IndexEntry>, options: BuildOptions): Promise<BuildResult> {
  const p = params(options);
  positiveInt("dim", options.dim);
  if (!options.modelHash) throw new Error("modelHash is required: an index records which model produced its vectors");
  return withNewVersion(options.root, p.keep, (name) => fullBuild(entries, options, p, name, null));
}

async function fullBuild(
  entries: AsyncIterable<IndexEntry> | Iterable<IndexEntry>,
  options: BuildOptions,
  p: Params,
  name: string,
  rebuildReason: string | null,
  counts: { updated: number; removed: number; missing: number } = { updated: 0, removed: 0, missing: 0 },
): Promise<Omit<BuildResult, "pruned">> {
  const started = performance.now();
  const { dim } = options;
  let capacity = Math.max(16, options.expectedCount ?? 1024);
  const graph = newGraph(dim);
  graph.initIndex(capacity, p.M, p.efConstruction, p.seed);
  const ids: string[] = [];
  const seen = new Set<string>();
  // The most recent insertion: its input vector, so the stored copy is checked too.
  let last: Probe | undefined;
  for await (const e of entries) {
    if (seen.has(e.id)) throw new Error(`duplicate id "${e.id}" in the build input`);
    seen.add(e.id);
    const vec = toPlainVector(e.vector, dim, `video ${e.id}`);
    if (ids.length === capacity) {
      capacity *= 2;
      graph.resizeIndex(capacity);
    }
    const label = ids.length;
    graph.addPoint(vec, label);
    ids.push(e.id);
    last = { label, vector: vec };
    if (label % 1000 === 999) options.onProgress?.({ stage: "insert", done: label + 1 });
  }
  if (ids.length === 0) throw new Error("no vectors to index: a build needs at least one embedding");
  options.onProgress?.({ stage: "insert", done: ids.length });
  const insert_s = seconds(started);
  const probes = [last!];
  const manifest = {
    format: MANIFEST_FORMAT,
    modelHash: options.modelHash,
    dim,
    space: "cosine" as const,
    count: ids.length,
    deleted: 0,
    slots: ids.length,
    M: p.M,
    efConstruction: p.efConstruction,
    ef: p.ef,
    kind: "full" as const,
    parent: null,
  };
  const w = writeVerifyFlip(options.root, name, graph, ids, probes, manifest, started, options.onProgress);
  return {
    version: name,
    mode: "full",
    ...(rebuildReason ? { rebuildReason } : {}),
    count: ids.length,
    deleted: 0,
    slots: ids.length,
    added: ids.length - counts.updated,
    updated: counts.updated,
    removed: counts.removed,
    missing: counts.missing,
    insert_s,
    ...w,
    build_s: seconds(started),
  };
}

/**
 * Incremental update of the current version: removals are mark-deleted,
 * changed vectors are updated in place, new ones fill deleted slots first,
 * then grow the graph. The result is written as a new version. When deleted
 * slots would still exceed `rebuildThreshold` of all slots, the live vectors
 * (after the changes) are rebuilt into a compact graph instead.
 *
 * Slot reuse is done by label rather than with hnswlib's
 * addPoint(…, replaceDeleted=true): that picks an arbitrary deleted slot and
 * silently drops its label, which would leave ids.json unable to tell which
 * label now holds which video. addPoint on a deleted label unmarks it and
 * rewires its neighbours the same way (updatePoint), keeping labels dense.
 */
export async function updateIndex(changes: IndexChanges, options: UpdateOptions): Promise<BuildResult> {
  const { root, dim } = options;
  const threshold = options.rebuildThreshold ?? DEFAULT_REBUILD_THRESHOLD;
  if (!(threshold >= 0 && threshold < 1)) throw new Error(`rebuildThreshold must be in [0, 1), got ${threshold}`);
  const current = existsSync(root) ? readCurrent(root) : null;
  if (!current) throw new Error(`no current index under ${root}: run a full build first`);
  // Checked before taking the lock so a refused update touches nothing; rechecked under it below.
  const checkModel = (m: IndexManifest) => {
    if (m.modelHash !== options.modelHash) throw new ModelMismatchError(m.modelHash, options.modelHash, root);
    if (m.dim !== dim) throw new Error(`index ${root} has dim ${m.dim}, the new embeddings have dim ${dim}: run a full rebuild`);
  };
  checkModel(readManifest(root, current));

  return withNewVersion(root, positiveInt("keep", options.keep ?? DEFAULT_KEEP_VERSIONS), async (name) => {
    const started = performance.now();
    const parent = readCurrent(root);
    if (!parent) throw new Error(`no current index under ${root}: run a full build first`);
    const base = readManifest(root, parent);
    checkModel(base);
    const p = params(options, base);
    const ids = readIds(root, parent);
    // A new object: the file on disk (and any process searching it) is never touched.
    const graph = newGraph(dim);
    graph.readIndexSync(join(root, parent, INDEX_FILE));
    if (graph.getCurrentCount() !== ids.length) throw new Error(`${parent}: ${graph.getCurrentCount()} slots in ${INDEX_FILE}, ${ids.length} in ${IDS_FILE}`);

    const labelOf = new Map<string, number>();
    const free: number[] = [];
    ids.forEach((id, label) => (id === null ? free.push(label) : labelOf.set(id, label)));
    // Reuse the lowest free labels first (pop from the end).
    free.reverse();

    let removed = 0;
    let missing = 0;
    for (const id of changes.remove ?? []) {
      const label = labelOf.get(id);
      if (label === undefined) {
        missing++;
        continue;
      }
      graph.markDelete(label);
      ids[label] = null;
      labelOf.delete(id);
      free.push(label);
      removed++;
    }

    let added = 0;
    let updated = 0;
    const probes: Probe[] = [];
    for await (const e of changes.upsert ?? []) {
      const vec = toPlainVector(e.vector, dim, `video ${e.id}`);
      let label = labelOf.get(e.id);
      if (label !== undefined) {
        updated++;
      } else {
        label = free.pop();
        if (label === undefined) {
          label = ids.length;
          ids.push(null);
          if (ids.length > graph.getMaxElements()) graph.resizeIndex(Math.max(ids.length, Math.ceil(graph.getMaxElements() * 1.25)));
        }
        labelOf.set(e.id, label);
        ids[label] = e.id;
        added++;
      }
      graph.addPoint(vec, label);
      // The first and the latest upsert probe the changed part of the graph.
      if (probes.length < 2) probes.push({ label, vector: vec });
      else probes[1] = { label, vector: vec };
      if ((added + updated) % 1000 === 0) options.onProgress?.({ stage: "insert", done: added + updated });
    }
    options.onProgress?.({ stage: "insert", done: added + updated });
    if (labelOf.size === 0) throw new Error("the update would leave the index empty: run a full build with the remaining videos");

    const deleted = free.length;
    if (deleted / ids.length > threshold) {
      const reason = `${deleted} of ${ids.length} slots deleted (${((100 * deleted) / ids.length).toFixed(1)}% > ${(100 * threshold).toFixed(0)}%)`;
      // The graph now holds exactly the live vectors wanted; read them back into a compact build.
      const live = function* (): Generator<IndexEntry> {
        for (const [id, label] of labelOf) yield { id, vector: Float32Array.from(graph.getPoint(label)) };
      };
      const r = await fullBuild(live(), { ...options, expectedCount: labelOf.size }, p, name, reason, { updated, removed, missing });
      return { ...r, added };
    }

    const insert_s = seconds(started);
    const manifest = {
      format: MANIFEST_FORMAT,
      modelHash: options.modelHash,
      dim,
      space: "cosine" as const,
      count: labelOf.size,
      deleted,
      slots: ids.length,
      M: p.M,
      efConstruction: p.efConstruction,
      ef: p.ef,
      kind: "incremental" as const,
      parent,
    };
    const w = writeVerifyFlip(root, name, graph, ids, probes, manifest, started, options.onProgress);
    return {
      version: name,
      mode: "incremental" as const,
      count: labelOf.size,
      deleted,
      slots: ids.length,
      added,
      updated,
      removed,
      missing,
      insert_s,
      ...w,
      build_s: seconds(started),
    };
  });
}
