/**
 * Admin jobs: `reindex` and `retrain` as `vidrecall` child processes (see
 * JobService). Arguments are built here from validated options; a request
 * never names a file: the database, model and index paths are the server's.
 */
import { UnknownModelError, type ModelRegistry } from "../registry/modelRegistry.js";
import type { AsyncLock } from "./asyncLock.js";
import { NotFoundError } from "./errors.js";
import type { JobService, JobView } from "./jobService.js";
import type { ServingRuntime } from "./runtime.js";

export interface RetrainOptions {
  mode: "heads" | "full" | "scratch";
  /** Registry id of the starting model (default: the served one). */
  from?: string;
  promote: boolean;
}

export class AdminService {
  constructor(
    private readonly deps: { runtime: ServingRuntime; registry: ModelRegistry; jobs: JobService; db: string; indexLock: AsyncLock },
  ) {}

  /** Embeds videos without an embedding from the served model and builds (or, incremental, updates) the index. */
  reindex(options: { incremental: boolean }): JobView {
    const { runtime } = this.deps;
    const args = ["reindex", "--db", this.deps.db, "--model", runtime.model.dir, "--index-dir", runtime.indexDir, "--progress", "jsonl"];
    // An incremental update needs a version to update: the first build is a full one.
    if (options.incremental && runtime.index) args.push("--incremental");
    return this.deps.jobs.start("reindex", args, { lock: this.deps.indexLock });
  }

  /** Fine-tunes or retrains from a registry model (`vidrecall retrain`); with promote, it gates, exports, reindexes and promotes. */
  retrain(options: RetrainOptions): JobView {
    let from = this.deps.runtime.model.dir;
    if (options.from !== undefined) {
      try {
        from = this.deps.registry.require(options.from).dir;
      } catch (err) {
        if (err instanceof UnknownModelError) throw new NotFoundError(err.message);
        throw err;
      }
    }
    // The served index root: promotion reuses or rebuilds the index there, and the runtime watches its CURRENT.
    const args = ["retrain", "--db", this.deps.db, "--from", from, "--mode", options.mode, "--index-dir", this.deps.runtime.indexDir, "--progress", "jsonl"];
    if (options.promote) args.push("--promote");
    return this.deps.jobs.start("retrain", args);
  }

  job(id: string): JobView {
    return this.deps.jobs.get(id);
  }

  jobs(): JobView[] {
    return this.deps.jobs.list();
  }
}
