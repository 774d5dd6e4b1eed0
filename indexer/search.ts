/**
 * Similar-video search over the current index version.
 *
 * A loaded version is immutable: reload() loads the new CURRENT into a new
 * graph object and swaps one reference, so a search that already holds the
 * old state finishes on it (hnswlib's readIndex on a live object would free
 * memory under it).
 */
import { join } from "node:path";
import { dot, normalized, TopK } from "./exact.js";
import { newGraph, type Graph } from "./hnsw.js";
import { IDS_FILE, INDEX_FILE, readCurrent, readIds, readManifest, type IndexManifest } from "./versions.js";

export type CategoryLookup = ((id: string) => string | null | undefined) | ReadonlyMap<string, string | null>;

export interface LoadOptions {
  /** Each video's category, for category-filtered search. */
  categoryOf?: CategoryLookup;
  /** Search ef (default: the manifest's). */
  ef?: number;
  /**
   * A category holding at most this fraction of the live videos is searched
   * exactly instead of through the filtered graph (see DEFAULT_EXACT_FILTER_FRACTION).
   */
  exactFilterFraction?: number;
  /** Budget for cached per-category vectors used by exact search (default 256 MiB). */
  vectorCacheBytes?: number;
}

export interface SearchOptions {
  category?: string;
  ef?: number;
  /** "auto" (default) picks per query; "hnsw" / "exact" force one, for benchmarks and diagnostics. */
  strategy?: "auto" | "hnsw" | "exact";
}

export interface SimilarOptions extends SearchOptions {
  /** Leave the query video out of its own results (default true). */
  excludeSelf?: boolean;
}

export interface Neighbor {
  id: string;
  /** Cosine similarity, in [−1, 1]. */
  score: number;
}

/*
 * Category filters, measured with `vidrecall bench ann` (100k, dim 256; see
 * indexer/README.md). Exact search over a category costs its size (~0.55 µs
 * per vector). A filtered graph walk costs little when the category is near
 * the query (~1–3 ms) but 40–100 ms when it is not, since hnswlib then walks
 * much of the graph calling the JS filter on each node; for categories
 * unrelated to the embedding it beats exact search above ~7% of the index.
 * So: exact up to 5%; above, an unfiltered probe of the neighbourhood
 * decides (k members in it: answer from it; none: exact; some: filtered walk).
 */
export const DEFAULT_EXACT_FILTER_FRACTION = 0.05;
/** A filtered query's unfiltered probe searches this many times the query's ef. */
const PROBE_WIDTH = 2;
const DEFAULT_VECTOR_CACHE_BYTES = 256 * 1024 * 1024;
/** Cache key of "every live label" in the exact-search vector cache. */
const ALL = -1;

export class UnknownVideoError extends Error {
  constructor(readonly id: string) {
    super(`video "${id}" is not in the similarity index`);
    this.name = "UnknownVideoError";
  }
}

interface State {
  root: string;
  version: string;
  manifest: IndexManifest;
  graph: Graph;
  ef: number;
  /** label → id; null for deleted slots. */
  ids: (string | null)[];
  labelOf: Map<string, number>;
  /** Category code per label (−1: none or deleted). */
  categoryCode: Int32Array;
  categories: Map<string, number>;
  /** Live labels per category code. */
  categoryLabels: Int32Array[];
  liveLabels: Int32Array;
  hasCategories: boolean;
  /** Flat unit vectors per category code (or ALL) for exact search, filled on first use. */
  vectorCache: Map<number, Float32Array>;
  cachedBytes: number;
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
}

function lookup(categoryOf: CategoryLookup | undefined): ((id: string) => string | null | undefined) | undefined {
  if (!categoryOf) return undefined;
  if (typeof categoryOf === "function") return categoryOf;
  return (id) => categoryOf.get(id);
}

/**
 * Loads CURRENT. A builder in another process may flip CURRENT and prune the
 * version named a moment ago; then the newer CURRENT is loaded instead.
 */
async function loadCurrent(root: string, options: LoadOptions): Promise<State> {
  const version = readCurrent(root);
  if (!version) throw new Error(`no index under ${root}: build one first`);
  try {
    return await loadState(root, version, options);
  } catch (err) {
    const now = readCurrent(root);
    if (now && now !== version) return loadState(root, now, options);
    throw err;
  }
}

async function loadState(root: string, version: string, options: LoadOptions): Promise<State> {
  const manifest = readManifest(root, version);
  const ids = readIds(root, version);
  const graph = newGraph(manifest.dim);
  // Async read: a server keeps answering (from the old state) while a reload loads.
  await graph.readIndex(join(root, version, INDEX_FILE));
  if (graph.getCurrentCount() !== ids.length) {
    throw new Error(`${version}: ${graph.getCurrentCount()} slots in ${INDEX_FILE}, ${ids.length} in ${IDS_FILE}`);
  }
  const ef = options.ef ?? manifest.ef;
  checkK(ef);
  // ef is not stored in the index file: set it after every load.
  graph.setEf(ef);

  const labelOf = new Map<string, number>();
  const live: number[] = [];
  ids.forEach((id, label) => {
    if (id === null) return;
    labelOf.set(id, label);
    live.push(label);
  });
  const categoryCode = new Int32Array(ids.length).fill(-1);
  const categories = new Map<string, number>();
  const members: number[][] = [];
  const categoryOf = lookup(options.categoryOf);
  if (categoryOf) {
    for (const label of live) {
      const c = categoryOf(ids[label]!);
      if (c === null || c === undefined) continue;
      let code = categories.get(c);
      if (code === undefined) {
        code = members.length;
        categories.set(c, code);
        members.push([]);
      }
      categoryCode[label] = code;
      members[code].push(label);
    }
  }
  return {
    root,
    version,
    manifest,
    graph,
    ef,
    ids,
    labelOf,
    categoryCode,
    categories,
    categoryLabels: members.map((m) => Int32Array.from(m)),
    liveLabels: Int32Array.from(live),
    hasCategories: categoryOf !== undefined,
    vectorCache: new Map(),
    cachedBytes: 0,
  };
}

export interface SearchStats {
  /** Queries answered by a graph search (filtered or not). */
  graph: number;
  /** Filtered queries answered from an unfiltered probe that held k members of the category. */
  postFilter: number;
  /** Queries answered by exact search (selective filters, forced). */
  exact: number;
  /** Graph answers that came back short of k and were redone exactly. */
  fallback: number;
}

export class SimilarityIndex {
  /** How searches were answered since the index was opened, for metrics. */
  readonly stats: SearchStats = { graph: 0, postFilter: 0, exact: 0, fallback: 0 };
  private state: State;
  private options: LoadOptions;
  private reloading: Promise<boolean> = Promise.resolve(false);

  private constructor(state: State, options: LoadOptions) {
    this.state = state;
    this.options = options;
  }

  /** Loads the current version under `root`. */
  static async open(root: string, options: LoadOptions = {}): Promise<SimilarityIndex> {
    return new SimilarityIndex(await loadCurrent(root, options), options);
  }

  /** Loads a given version (for inspection or rollback checks); reload() still follows CURRENT. */
  static async openVersion(root: string, version: string, options: LoadOptions = {}): Promise<SimilarityIndex> {
    return new SimilarityIndex(await loadState(root, version, options), options);
  }

  get version(): string {
    return this.state.version;
  }

  get manifest(): IndexManifest {
    return this.state.manifest;
  }

  /** Live videos. */
  get size(): number {
    return this.state.labelOf.size;
  }

  has(id: string): boolean {
    return this.state.labelOf.has(id);
  }

  ids(): string[] {
    return [...this.state.labelOf.keys()];
  }

  /** Live videos per category (empty without a categoryOf). */
  categoryCounts(): Map<string, number> {
    const s = this.state;
    return new Map([...s.categories].map(([name, code]) => [name, s.categoryLabels[code].length]));
  }

  /**
   * Loads CURRENT if it moved (or always, when options are given, e.g. a
   * fresh categoryOf) and swaps it in; resolves true when it swapped.
   * Searches running meanwhile use the old version.
   */
  reload(options?: Partial<LoadOptions>): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      const merged = { ...this.options, ...options };
      if (readCurrent(this.state.root) === this.state.version && !options) return false;
      const next = await loadCurrent(this.state.root, merged);
      this.state = next;
      this.options = merged;
      return true;
    };
    // Serialised: each load starts after the previous one and re-reads CURRENT.
    const p = this.reloading.catch(() => false).then(run);
    this.reloading = p;
    return p;
  }

  /** The stored (unit) embedding of a video. */
  vectorOf(id: string): Float32Array {
    const s = this.state;
    const label = s.labelOf.get(id);
    if (label === undefined) throw new UnknownVideoError(id);
    return Float32Array.from(s.graph.getPoint(label));
  }

  /** The k videos most similar to video `id`, best first. */
  similar(id: string, k: number, options: SimilarOptions = {}): Neighbor[] {
    checkK(k);
    const s = this.state;
    const label = s.labelOf.get(id);
    if (label === undefined) throw new UnknownVideoError(id);
    const excludeSelf = options.excludeSelf ?? true;
    // Stored points are unit vectors already, and a plain Array is what searchKnn takes: no copies.
    const query = s.graph.getPoint(label);
    // Ask for one more so dropping the video itself still leaves k.
    const hits = this.search(s, query, excludeSelf ? k + 1 : k, options);
    const out = excludeSelf ? hits.filter((h) => h.label !== label) : hits;
    return out.slice(0, k).map((h) => ({ id: s.ids[h.label]!, score: h.score }));
  }

  /** The k videos most similar to an embedding, best first. */
  similarToVector(vector: ArrayLike<number>, k: number, options: SearchOptions = {}): Neighbor[] {
    checkK(k);
    const s = this.state;
    if (vector.length !== s.manifest.dim) throw new Error(`query vector has ${vector.length} values, the index has dim ${s.manifest.dim}`);
    const hits = this.search(s, Array.from(normalized(vector)), k, options);
    return hits.map((h) => ({ id: s.ids[h.label]!, score: h.score }));
  }

  private search(s: State, query: number[], k: number, options: SearchOptions): { label: number; score: number }[] {
    const strategy = options.strategy ?? "auto";
    let candidates: number;
    let code = ALL;
    if (options.category !== undefined) {
      if (!s.hasCategories) throw new Error("category filter needs a categoryOf lookup when the index is loaded");
      const c = s.categories.get(options.category);
      if (c === undefined) return [];
      code = c;
      candidates = s.categoryLabels[code].length;
    } else {
      candidates = s.labelOf.size;
    }
    // k beyond the candidates returns all of them.
    const want = Math.min(k, candidates);
    if (want === 0) return [];
    const fraction = this.options.exactFilterFraction ?? DEFAULT_EXACT_FILTER_FRACTION;
    if (strategy === "exact" || (strategy === "auto" && code !== ALL && candidates <= fraction * s.labelOf.size)) {
      this.stats.exact++;
      return this.exact(s, query, want, code);
    }
    if (strategy === "auto" && code !== ALL) {
      // Probe the query's neighbourhood unfiltered (ef bounds the work, so
      // asking for ef results costs what asking for k does). The category's
      // k nearest sit deeper in that list than the overall k nearest, where
      // a search of width ef is less exact: probe twice as wide (a 19%
      // category at ef 64: recall@10 0.940 with width 1, 0.990 with 2).
      const probeEf = PROBE_WIDTH * (options.ef ?? s.ef);
      const probe = this.hnsw(s, query, Math.min(s.labelOf.size, Math.max(want, probeEf)), ALL, probeEf);
      const members = probe.filter((h) => s.categoryCode[h.label] === code);
      // Enough of the category among the nearest overall: they are its nearest.
      if (members.length >= want) {
        this.stats.postFilter++;
        return members.slice(0, want);
      }
      // None nearby: a filtered graph walk would cross much of the graph to
      // reach the category (measured 40–100 ms at 100k); scanning it is cheaper.
      if (members.length === 0) {
        this.stats.exact++;
        return this.exact(s, query, want, code);
      }
    }
    const hits = this.hnsw(s, query, want, code, options.ef);
    // The graph can come back short (a filter or deletions cutting it off); exact search cannot.
    if (hits.length >= want || strategy === "hnsw") {
      this.stats.graph++;
      return hits;
    }
    this.stats.fallback++;
    this.stats.exact++;
    return this.exact(s, query, want, code);
  }

  private hnsw(s: State, query: number[], k: number, code: number, ef: number | undefined): { label: number; score: number }[] {
    const codes = s.categoryCode;
    const filter = code === ALL ? undefined : (label: number) => codes[label] === code;
    let res;
    if (ef !== undefined && ef !== s.ef) {
      checkK(ef);
      // setEf is per object and searches are synchronous: set, search, restore.
      s.graph.setEf(ef);
      try {
        res = s.graph.searchKnn(query, k, filter);
      } finally {
        s.graph.setEf(s.ef);
      }
    } else {
      res = s.graph.searchKnn(query, k, filter);
    }
    return res.neighbors.map((label, i) => ({ label, score: 1 - res.distances[i] }));
  }

  private exact(s: State, plainQuery: number[], k: number, code: number): { label: number; score: number }[] {
    const query = Float32Array.from(plainQuery);
    const labels = code === ALL ? s.liveLabels : s.categoryLabels[code];
    const flat = this.vectors(s, code, labels);
    const dim = s.manifest.dim;
    const top = new TopK(Math.min(k, labels.length));
    for (let r = 0, off = 0; r < labels.length; r++, off += dim) {
      const score = dot(flat, off, query, 0, dim);
      if (score > top.threshold) top.push(r, score);
    }
    return top.sorted().map((h) => ({ label: labels[h.row], score: h.score }));
  }

  /**
   * The unit vectors of `labels`, flat. hnswlib-node can only hand them out
   * one getPoint() Array at a time (tens of µs each), so a category's block
   * is built once per loaded version and kept, least recently used first out.
   */
  private vectors(s: State, code: number, labels: Int32Array): Float32Array {
    const cached = s.vectorCache.get(code);
    if (cached) {
      // Re-insert: Map order doubles as the LRU order.
      s.vectorCache.delete(code);
      s.vectorCache.set(code, cached);
      return cached;
    }
    const dim = s.manifest.dim;
    const flat = new Float32Array(labels.length * dim);
    for (let r = 0; r < labels.length; r++) flat.set(s.graph.getPoint(labels[r]), r * dim);
    const budget = this.options.vectorCacheBytes ?? DEFAULT_VECTOR_CACHE_BYTES;
    if (flat.byteLength <= budget) {
      for (const [key, v] of s.vectorCache) {
        if (s.cachedBytes + flat.byteLength <= budget) break;
        s.vectorCache.delete(key);
        s.cachedBytes -= v.byteLength;
      }
      s.vectorCache.set(code, flat);
      s.cachedBytes += flat.byteLength;
    }
    return flat;
  }
}
