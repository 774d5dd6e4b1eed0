/**
 * Similar-video search off the event loop. An HNSW search is synchronous
 * native work (~0.2–0.3 ms at 100k videos, M 16, ef 64): run on the main thread it caps
 * a server at one core of searches and makes every other request wait behind
 * them. The pool runs `threads` worker threads, each with its own loaded
 * copy of the current index version (memory: one graph per thread), and
 * sends each query to the thread with the fewest outstanding ones.
 *
 * The main thread keeps what it needs without a graph: the version's
 * manifest and its ids (membership for "is it indexed", 404s, tombstones).
 * `load()` makes every thread load CURRENT (with fresh categories) and then
 * switches the main-thread view; a query meanwhile is answered by whichever
 * version its thread holds, never fails.
 *
 * With 0 threads the pool searches inline, on the calling thread. That is for
 * `serve --processes N`: each of N processes searches on its own event loop,
 * and a request costs no hop to a thread and back (on 2 cores that hop, with
 * its wake-ups, cost more main-thread time than the express route itself).
 */
import type { Worker } from "node:worker_threads";
import type { Neighbor, SearchStats, SimilarOptions } from "../../indexer/search.js";
import { SimilarityIndex, UnknownVideoError } from "../../indexer/search.js";
import { readCurrent, readIds, readManifest, type IndexManifest } from "../../indexer/versions.js";
import { startWorker } from "../data/yt8mParse.js";

export type ToSearchWorker =
  | { type: "load"; seq: number; root: string; categories: [string, string | null][] }
  | ({ type: "search" } & SearchRequest)
  /** The queries of one event-loop turn, in one message (one wake-up of the thread, one reply). */
  | { type: "searches"; items: SearchRequest[] }
  | { type: "close" };

export interface SearchRequest {
  seq: number;
  /** Neighbours of a stored video … */
  id?: string;
  /** … or of a query vector (e.g. a /classify request's embedding). */
  vector?: number[];
  k: number;
  options: SimilarOptions;
}

type SearchResult = Extract<FromSearchWorker, { type: "result" }>;

export type FromSearchWorker =
  | { type: "loaded"; seq: number; version?: string; error?: string }
  | { type: "result"; seq: number; version?: string; hits?: Neighbor[]; stats?: SearchStats; error?: { name: string; message: string } }
  | { type: "results"; items: Extract<FromSearchWorker, { type: "result" }>[] };

interface Pending {
  resolve: (v: FromSearchWorker) => void;
  reject: (e: Error) => void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  alive: boolean;
  /** Loaded a version: may take queries. */
  ready: boolean;
  stats: SearchStats;
  /** Queries of this event-loop turn not sent yet (flushed by setImmediate). */
  outbox: SearchRequest[];
}

export interface SimilarResult {
  /** The version that answered. */
  version: string;
  hits: Neighbor[];
}

const MAX_RESPAWNS = 5;

export class SearchPool {
  private readonly threads: Thread[] = [];
  private seq = 0;
  /** The loaded version's live ids: a Set read from the ids file, or (inline) the index itself. */
  private view: { version: string; manifest: IndexManifest; ids: Pick<SimilarityIndex, "has" | "size" | "ids"> } | undefined;
  private categories: [string, string | null][] = [];
  private respawns = 0;
  private closed = false;
  /** threads = 0: the index searched on this thread. */
  private inline: SimilarityIndex | undefined;

  private constructor(
    private readonly root: string,
    threads: number,
  ) {
    if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`search threads must be an integer ≥ 0 (0: search on the calling thread), got ${threads}`);
    for (let i = 0; i < threads; i++) this.threads.push(this.spawn());
  }

  /** Whether searches run on the calling thread (a pool of 0 threads). */
  get isInline(): boolean {
    return this.threads.length === 0;
  }

  /** Starts the threads and loads CURRENT in each (0 threads: loads it here). */
  static async open(root: string, categoryOf: Map<string, string | null>, threads: number): Promise<SearchPool> {
    const pool = new SearchPool(root, threads);
    try {
      await pool.load(categoryOf);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get version(): string {
    return this.requireView().version;
  }

  get manifest(): IndexManifest {
    return this.requireView().manifest;
  }

  /** Live videos. */
  get size(): number {
    return this.requireView().ids.size;
  }

  has(id: string): boolean {
    return this.view?.ids.has(id) ?? false;
  }

  ids(): string[] {
    return this.requireView().ids.ids();
  }

  /** Summed over the threads (as of their last answers). */
  get stats(): SearchStats {
    if (this.inline) return { ...this.inline.stats };
    const out: SearchStats = { graph: 0, postFilter: 0, exact: 0, fallback: 0 };
    for (const t of this.threads) for (const k of Object.keys(out) as (keyof SearchStats)[]) out[k] += t.stats[k];
    return out;
  }

  /** Loads CURRENT (with these categories) in every thread, then switches the view. */
  async load(categoryOf: Map<string, string | null>): Promise<void> {
    const version = readCurrent(this.root);
    if (!version) throw new Error(`no index under ${this.root}: build one first`);
    this.categories = [...categoryOf];
    if (this.isInline) {
      if (this.inline) await this.inline.reload({ categoryOf });
      else this.inline = await SimilarityIndex.open(this.root, { categoryOf });
      this.view = { version: this.inline.version, manifest: this.inline.manifest, ids: this.inline };
      return;
    }
    const loaded = await Promise.all(this.threads.filter((t) => t.alive).map((t) => this.loadOn(t)));
    // Threads read CURRENT themselves; a build flipping it meanwhile is picked up by the next load.
    const v = loaded[0];
    const live = new Set(readIds(this.root, v).filter((id): id is string => id !== null));
    this.view = { version: v, manifest: readManifest(this.root, v), ids: { has: (id) => live.has(id), size: live.size, ids: () => [...live] } };
  }

  /** The k videos most similar to `id` (UnknownVideoError when it is not in the index). */
  async similar(id: string, k: number, options: SimilarOptions = {}): Promise<SimilarResult> {
    if (this.closed) throw new Error("the search pool is closed");
    if (this.inline) return { version: this.inline.version, hits: this.inline.similar(id, k, options) };
    return this.query({ seq: ++this.seq, id, k, options });
  }

  /** The k indexed videos most similar to a query vector (normalised here). */
  async similarToVector(vector: ArrayLike<number>, k: number, options: SimilarOptions = {}): Promise<SimilarResult> {
    if (this.closed) throw new Error("the search pool is closed");
    if (this.inline) return { version: this.inline.version, hits: this.inline.similarToVector(vector, k, options) };
    return this.query({ seq: ++this.seq, vector: Array.from(vector), k, options });
  }

  private async query(q: SearchRequest): Promise<SimilarResult> {
    let best: Thread | undefined;
    for (const t of this.threads) if (t.alive && t.ready && (!best || t.pending.size < best.pending.size)) best = t;
    if (!best) throw new Error("no search thread is running");
    const r = await this.enqueue(best, q);
    if (r.stats) best.stats = r.stats;
    if (r.error) {
      if (r.error.name === "UnknownVideoError") throw new UnknownVideoError(q.id ?? "");
      const err = new Error(r.error.message);
      // Bad arguments (k, ef) are the caller's: keep their kind.
      if (r.error.name === "RangeError") throw new RangeError(r.error.message);
      throw err;
    }
    return { version: r.version!, hits: r.hits! };
  }

  /** Ends the threads after the queries they hold. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.threads.map(async (t) => {
        if (!t.alive) return;
        // Queries queued this turn go first: the thread answers them before it ends.
        this.flush(t);
        t.alive = false;
        const exited = new Promise<void>((r) => t.worker.once("exit", () => r()));
        t.worker.postMessage({ type: "close" } satisfies ToSearchWorker);
        await exited;
      }),
    );
  }

  private requireView() {
    if (!this.view) throw new Error("no index loaded");
    return this.view;
  }

  private async loadOn(t: Thread): Promise<string> {
    const r = await this.send(t, { type: "load", seq: ++this.seq, root: this.root, categories: this.categories });
    if (r.type !== "loaded" || r.error || !r.version) throw new Error(`search thread could not load the index: ${r.type === "loaded" ? r.error : r.type}`);
    t.ready = true;
    return r.version;
  }

  /**
   * Queues a query for the thread; the queries of one event-loop turn go in
   * one message after the turn's I/O (setImmediate), so that concurrent
   * requests cost one wake-up of the thread and one reply, not one each.
   */
  private enqueue(t: Thread, q: SearchRequest): Promise<SearchResult> {
    return new Promise((resolve, reject) => {
      t.pending.set(q.seq, { resolve: resolve as (v: FromSearchWorker) => void, reject });
      if (t.outbox.push(q) === 1) setImmediate(() => this.flush(t));
    });
  }

  private flush(t: Thread): void {
    const items = t.outbox;
    if (items.length === 0) return;
    t.outbox = [];
    // A thread that died meanwhile has already failed these queries (onThreadDown).
    if (!t.alive) return;
    t.worker.postMessage(items.length === 1 ? ({ type: "search", ...items[0] } satisfies ToSearchWorker) : ({ type: "searches", items } satisfies ToSearchWorker));
  }

  private send(t: Thread, m: Extract<ToSearchWorker, { type: "load" }>): Promise<FromSearchWorker> {
    return new Promise((resolve, reject) => {
      t.pending.set(m.seq, { resolve, reject });
      t.worker.postMessage(m);
    });
  }

  private spawn(): Thread {
    const worker = startWorker(new URL("./searchWorker.js", import.meta.url), null);
    const t: Thread = { worker, pending: new Map(), alive: true, ready: false, stats: { graph: 0, postFilter: 0, exact: 0, fallback: 0 }, outbox: [] };
    worker.on("message", (m: FromSearchWorker) => {
      if (m.type === "results") {
        for (const r of m.items) {
          const p = t.pending.get(r.seq);
          t.pending.delete(r.seq);
          p?.resolve(r);
        }
        return;
      }
      const p = t.pending.get(m.seq);
      t.pending.delete(m.seq);
      p?.resolve(m);
    });
    const down = (err: Error) => this.onThreadDown(t, err);
    worker.on("error", down);
    worker.on("exit", (code) => down(new Error(`search thread exited (code ${code})`)));
    return t;
  }

  /** A thread died: fail what it held and start a replacement on the current version. */
  private onThreadDown(t: Thread, err: Error): void {
    const wasAlive = t.alive;
    t.alive = false;
    t.ready = false;
    for (const p of t.pending.values()) p.reject(new Error(`search thread failed: ${err.message}`));
    t.pending.clear();
    t.outbox = [];
    if (!wasAlive || this.closed || this.respawns >= MAX_RESPAWNS) return;
    this.respawns++;
    const next = this.spawn();
    this.threads[this.threads.indexOf(t)] = next;
    if (this.view) this.loadOn(next).catch(() => undefined);
  }
}
