/**
 * Titles and label names of videos (what /similar returns with each hit),
 * kept in memory so that a search does not cost a SQLite lookup of its hits.
 *
 * Invalidation is by the database's own change counters, read (one cheap
 * statement, a few µs) on every lookup: `PRAGMA data_version` moves when
 * another connection (a job's child process, an import, another process's
 * label edit) commits, and `total_changes()` moves when this connection
 * writes (the server's own POST /videos, DELETE, labels, registry). Any
 * change empties the cache; entries are then read again as they are asked
 * for. So an answer is never staler than the last commit before its lookup,
 * exactly as with a query per request.
 */
import type Database from "better-sqlite3";
import type { VideoStore, VideoSummary } from "../data/store.js";

/** More entries than this (a very large store): start over rather than grow without bound. */
const DEFAULT_MAX_ENTRIES = 250_000;

export class SummaryCache {
  /** null: looked up and not stored. */
  private readonly entries = new Map<string, VideoSummary | null>();
  /** One string per distinct label name (every video with a label shares it). */
  private readonly names = new Map<string, string>();
  private readonly versionStmt: Database.Statement<[], { dv: number; tc: number }>;
  private dataVersion = -1;
  private totalChanges = -1;

  constructor(
    private readonly store: VideoStore,
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
  ) {
    this.versionStmt = store.db.prepare<[], { dv: number; tc: number }>(`SELECT (SELECT data_version FROM pragma_data_version) AS dv, total_changes() AS tc`);
  }

  /** Like VideoStore.videoSummaries (ids that are not stored are absent); the summaries are shared: do not modify them. */
  get(ids: readonly string[]): Map<string, VideoSummary> {
    const { dv, tc } = this.versionStmt.get()!;
    if (dv !== this.dataVersion || tc !== this.totalChanges) {
      this.entries.clear();
      this.names.clear();
      this.dataVersion = dv;
      this.totalChanges = tc;
    }
    const out = new Map<string, VideoSummary>();
    let missing: string[] | undefined;
    for (const id of ids) {
      const s = this.entries.get(id);
      if (s === undefined) (missing ??= []).push(id);
      else if (s !== null) out.set(id, s);
    }
    if (missing) {
      const found = this.store.videoSummaries(missing);
      if (this.entries.size + missing.length > this.maxEntries) {
        this.entries.clear();
        this.names.clear();
      }
      for (const id of missing) {
        const s = found.get(id);
        if (s) {
          if (s.category !== null) s.category = this.intern(s.category);
          for (let i = 0; i < s.tags.length; i++) s.tags[i] = this.intern(s.tags[i]);
          out.set(id, s);
        }
        this.entries.set(id, s ?? null);
      }
    }
    return out;
  }

  /**
   * Reads the summaries of `ids` (up to the entry limit) ahead of the first
   * requests, in chunks; returns how many are cached. A server calls it once
   * at start: first requests then cost no SQLite reads, and memory reaches
   * its working size before the first request rather than over the first
   * minutes of traffic. Returns how many of them are stored (and cached).
   */
  preload(ids: readonly string[], chunk = 5000): number {
    const take = ids.slice(0, this.maxEntries);
    let found = 0;
    for (let i = 0; i < take.length; i += chunk) found += this.get(take.slice(i, i + chunk)).size;
    return found;
  }

  private intern(name: string): string {
    const had = this.names.get(name);
    if (had !== undefined) return had;
    this.names.set(name, name);
    return name;
  }
}
