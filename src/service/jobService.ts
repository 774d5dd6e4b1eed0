/**
 * Background jobs: a job kind maps to a `vidrecall` command run in a child
 * process (see cliRunner) whose `--progress jsonl` lines become the job's
 * progress and result. One job of each kind at a time (a second one is a
 * ConflictError naming the running job). Jobs live in memory: the last
 * `keep` finished ones stay queryable.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { AsyncLock } from "./asyncLock.js";
import { runCli, type CliOutcome, type ProgressEvent } from "./cliRunner.js";
import { ConflictError, NotFoundError } from "./errors.js";

export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const JOB_STATES: readonly JobState[] = ["queued", "running", "succeeded", "failed", "cancelled"];

export interface JobProgress {
  stage: string;
  done: number;
  total: number | null;
}

export interface JobView {
  id: string;
  kind: string;
  state: JobState;
  /** The command's arguments after `vidrecall`. */
  args: string[];
  progress: JobProgress | null;
  result: Record<string, unknown> | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

interface Job extends JobView {
  abort: AbortController;
  done: Promise<void>;
}

export interface StartJobOptions {
  /** Held while the child runs (the job stays "queued" until it gets it). */
  lock?: AsyncLock;
}

export interface JobServiceOptions {
  /** argv prefix of the CLI (cliCommand()). */
  command: string[];
  logger: Logger;
  /** Called after every job ends (e.g. to pick up a new model or index at once). */
  onFinished?: (job: JobView) => Promise<void> | void;
  /** Finished jobs remembered (default 100). */
  keep?: number;
}

export class JobService {
  private readonly jobs = new Map<string, Job>();
  private closed = false;

  constructor(private readonly options: JobServiceOptions) {}

  /** Starts `vidrecall ...args` as a job of `kind`; throws ConflictError while one of that kind is queued or running. */
  start(kind: string, args: string[], options: StartJobOptions = {}): JobView {
    if (this.closed) throw new ConflictError("the server is shutting down");
    const busy = this.active(kind);
    if (busy) throw new ConflictError(`a ${kind} job is already ${busy.state} (${busy.id}); one ${kind} job at a time`, { job: busy.id });
    const job: Job = {
      id: randomUUID(),
      kind,
      state: "queued",
      args,
      progress: null,
      result: null,
      error: null,
      created_at: new Date().toISOString(),
      started_at: null,
      finished_at: null,
      abort: new AbortController(),
      done: Promise.resolve(),
    };
    this.jobs.set(job.id, job);
    job.done = this.run(job, options.lock);
    this.prune();
    return view(job);
  }

  get(id: string): JobView {
    const job = this.jobs.get(id);
    if (!job) throw new NotFoundError(`no job "${id}" (jobs are kept in memory until the server restarts)`);
    return view(job);
  }

  list(): JobView[] {
    return [...this.jobs.values()].map(view).reverse();
  }

  /** The queued or running job of a kind. */
  active(kind: string): JobView | undefined {
    for (const j of this.jobs.values()) if (j.kind === kind && (j.state === "queued" || j.state === "running")) return view(j);
    return undefined;
  }

  /** Jobs per kind and state, for metrics. */
  counts(): { kind: string; state: JobState; n: number }[] {
    const m = new Map<string, number>();
    for (const j of this.jobs.values()) m.set(`${j.kind}\u0000${j.state}`, (m.get(`${j.kind}\u0000${j.state}`) ?? 0) + 1);
    return [...m].map(([k, n]) => {
      const [kind, state] = k.split("\u0000");
      return { kind, state: state as JobState, n };
    });
  }

  /** Refuses new jobs, stops running ones (SIGTERM) and waits for them, at most `timeoutMs`. */
  async close(timeoutMs = 15_000): Promise<void> {
    this.closed = true;
    const running = [...this.jobs.values()].filter((j) => j.state === "queued" || j.state === "running");
    for (const j of running) j.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map((j) => j.done)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    if (timer) clearTimeout(timer);
  }

  /**
   * Runs the job's child. The final state is set only after the onFinished
   * hook: a job reads "succeeded" once its model or index is live.
   */
  private async run(job: Job, lock: AsyncLock | undefined): Promise<void> {
    // Let start() return the queued job first.
    await Promise.resolve();
    const log = this.options.logger.child({ job: job.id, kind: job.kind });
    let release: (() => void) | undefined;
    let final: { state: JobState; error: string | null };
    try {
      if (lock) {
        const acquiring = lock.acquire();
        const signal = job.abort.signal;
        const aborted = new Promise<null>((r) => (signal.aborted ? r(null) : signal.addEventListener("abort", () => r(null), { once: true })));
        const got = await Promise.race([acquiring, aborted]);
        // Cancelled while queued: hand the lock on as soon as it comes.
        if (got === null) void acquiring.then((r) => r());
        else release = got;
      }
      if (job.abort.signal.aborted) {
        final = { state: "cancelled", error: "cancelled before it started (server shutting down)" };
      } else {
        job.state = "running";
        job.started_at = new Date().toISOString();
        log.info({ args: job.args }, "job started");
        const outcome: CliOutcome = await runCli([...this.options.command, ...job.args], {
          signal: job.abort.signal,
          onProgress: (p: ProgressEvent) => {
            job.progress = { stage: p.stage, done: p.done, total: typeof p.total === "number" ? p.total : null };
          },
          onLog: (stream, line) => log.debug({ stream }, line),
        });
        job.result = outcome.result;
        final = outcome.ok ? { state: "succeeded", error: null } : { state: job.abort.signal.aborted ? "cancelled" : "failed", error: outcome.error };
      }
    } catch (err) {
      final = { state: "failed", error: (err as Error).message };
    } finally {
      release?.();
    }
    try {
      await this.options.onFinished?.({ ...view(job), ...final });
    } catch (err) {
      log.error({ err }, "after-job hook failed");
    }
    job.state = final.state;
    job.error = final.error;
    job.finished_at = new Date().toISOString();
    log[job.state === "succeeded" ? "info" : "error"]({ state: job.state, error: job.error }, "job finished");
  }

  private prune(): void {
    const keep = this.options.keep ?? 100;
    const finished = [...this.jobs.values()].filter((j) => j.finished_at !== null);
    for (const j of finished.slice(0, Math.max(0, finished.length - keep))) this.jobs.delete(j.id);
  }
}

function view(j: Job): JobView {
  return {
    id: j.id,
    kind: j.kind,
    state: j.state,
    args: j.args,
    progress: j.progress,
    result: j.result,
    error: j.error,
    created_at: j.created_at,
    started_at: j.started_at,
    finished_at: j.finished_at,
  };
}
