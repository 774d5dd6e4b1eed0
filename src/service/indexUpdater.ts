/**
 * Coalesced incremental reindexing for ingestion (POST /videos?index=true,
 * DELETE /videos/:id). Each run is `vidrecall reindex --incremental` in a
 * child process: it embeds the videos that have no embedding from the served
 * model, adds them, removes videos no longer stored, and flips CURRENT; the
 * runtime then loads the new version. Requests that arrive while a run is
 * going wait for the next run, which covers all of them; so a burst of N
 * requests costs two runs, not N.
 */
import type { Logger } from "pino";
import type { AsyncLock } from "./asyncLock.js";
import { runCli, type CliOutcome } from "./cliRunner.js";
import { NO_PEERS, type IndexUpdates, type Peers } from "./peers.js";
import type { ServingRuntime } from "./runtime.js";

export interface IndexUpdaterOptions {
  command: string[];
  runtime: ServingRuntime;
  /** The database path the child opens. */
  db: string;
  /** Shared with admin reindex jobs: one build at a time. */
  lock: AsyncLock;
  logger: Logger;
  /** The other server processes (serve --processes): they load the new version before a run resolves. */
  peers?: Peers;
}

export interface IndexRun {
  outcome: CliOutcome;
  /** The index version loaded after the run. */
  version: string | null;
}

interface Pending {
  promise: Promise<IndexRun>;
  resolve: (r: IndexRun) => void;
  reject: (e: Error) => void;
}

export class IndexUpdater implements IndexUpdates {
  private pending: Pending | undefined;
  private running = false;
  private readonly abort = new AbortController();
  runs = 0;

  constructor(private readonly options: IndexUpdaterOptions) {}

  /** Joins the next run (starting one if none is going); resolves when it is done and loaded. */
  request(): Promise<IndexRun> {
    if (!this.pending) {
      let resolve!: (r: IndexRun) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<IndexRun>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.pending = { promise, resolve, reject };
    }
    const p = this.pending.promise;
    if (!this.running) void this.loop();
    return p;
  }

  /** Like request(), for callers that do not wait: failures are logged. */
  schedule(): void {
    this.request().catch((err: Error) => this.options.logger.error({ err }, "scheduled index update failed"));
  }

  get busy(): boolean {
    return this.running;
  }

  /** Stops a run in progress (server shutdown). */
  stop(): void {
    this.abort.abort();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.pending) {
        const take = this.pending;
        this.pending = undefined;
        try {
          take.resolve(await this.runOnce());
        } catch (err) {
          take.reject(err as Error);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async runOnce(): Promise<IndexRun> {
    const { runtime, logger } = this.options;
    if (this.abort.signal.aborted) throw new Error("the server is shutting down");
    const release = await this.options.lock.acquire();
    let outcome: CliOutcome;
    try {
      const args = ["reindex", "--db", this.options.db, "--model", runtime.model.dir, "--index-dir", runtime.indexDir, "--progress", "jsonl"];
      // The first build of an index is a full one.
      if (runtime.index) args.push("--incremental");
      this.runs++;
      logger.info({ args }, "index update started");
      outcome = await runCli([...this.options.command, ...args], { signal: this.abort.signal, onLog: (stream, line) => logger.debug({ stream }, line) });
    } finally {
      release();
    }
    if (!outcome.ok) throw new Error(`index update failed: ${outcome.error}`);
    await runtime.refresh();
    await (this.options.peers ?? NO_PEERS).notify({ type: "refresh" });
    logger.info({ version: runtime.index?.version, result: outcome.result }, "index update done");
    return { outcome, version: runtime.index?.version ?? null };
  }
}
