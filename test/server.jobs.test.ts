/**
 * The job runner on real child processes (small node scripts that speak the
 * `--progress jsonl` protocol): progress and result parsing, failures with
 * the child's message, one job per kind (409), the lock that queues index
 * builds, and cancellation at shutdown.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { AsyncLock } from "../src/service/asyncLock.js";
import { runCli } from "../src/service/cliRunner.js";
import { ConflictError } from "../src/service/errors.js";
import { JobService, type JobView } from "../src/service/jobService.js";

/** argv that runs `body` as a node script; the job's args follow as process.argv[2..]. */
const node = (body: string) => [process.execPath, "-e", body];

const SUCCEEDS = node(`
  const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
  console.log("some plain log line");
  out({ event: "progress", stage: "embed", done: 1, total: 2 });
  out({ event: "progress", stage: "embed", done: 2, total: 2 });
  out({ event: "result", version: "v-1-0", args: process.argv.slice(1) });
`);
const FAILS = node(`
  process.stdout.write(JSON.stringify({ event: "progress", stage: "insert", done: 5 }) + "\\n");
  process.stdout.write(JSON.stringify({ event: "error", message: "the model hash differs: run a full rebuild" }) + "\\n");
  process.stderr.write("vidrecall: error: the model hash differs: run a full rebuild\\n");
  process.exit(1);
`);
const CRASHES = node(`process.stderr.write("vidrecall: error: no such command 'retrain'\\n"); process.exit(1);`);
const SLEEPS = node(`setTimeout(() => {}, 60000);`);

const logger = pino({ level: "silent" });

async function finished(jobs: JobService, id: string): Promise<JobView> {
  for (;;) {
    const j = jobs.get(id);
    if (j.finished_at !== null) return j;
    await new Promise((r) => setTimeout(r, 20));
  }
}

it("runCli parses progress, result and plain output of a real child", async () => {
  const seen: number[] = [];
  const logs: string[] = [];
  const r = await runCli([...SUCCEEDS, "reindex", "--incremental"], { onProgress: (p) => seen.push(p.done), onLog: (_s, l) => logs.push(l) });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.deepEqual(seen, [1, 2], "progress events in order");
  assert.equal(r.result?.version, "v-1-0");
  assert.deepEqual(r.result?.args, ["reindex", "--incremental"], "the job's arguments reach the child");
  assert.deepEqual(logs, ["some plain log line"], "non-protocol stdout is passed on as log");
  const failed = await runCli(FAILS);
  assert.equal(failed.ok, false);
  assert.equal(failed.error, "the model hash differs: run a full rebuild", "the error event's message");
  const crashed = await runCli(CRASHES);
  assert.equal(crashed.error, "no such command 'retrain'", "without an error event: the CLI's error line");
  await assert.rejects(runCli(["/no/such/binary"]), /cannot start/);
});

it("JobService: state, progress and result; failures; one job per kind", async () => {
  const finishedHook: string[] = [];
  const ok = new JobService({ command: SUCCEEDS, logger, onFinished: (j) => void finishedHook.push(`${j.id}:${j.state}`) });
  const job = ok.start("reindex", ["reindex"]);
  assert.equal(job.state, "queued");
  assert.throws(() => ok.start("reindex", ["reindex"]), (e: unknown) => e instanceof ConflictError && /already/.test(e.message), "second job of a kind");
  const other = ok.start("retrain", ["retrain"]);
  const done = await finished(ok, job.id);
  assert.equal(done.state, "succeeded");
  assert.deepEqual(done.progress, { stage: "embed", done: 2, total: 2 });
  assert.equal(done.result?.version, "v-1-0");
  assert.ok(done.started_at && done.finished_at);
  assert.equal((await finished(ok, other.id)).state, "succeeded", "another kind runs alongside");
  assert.ok(finishedHook.includes(`${job.id}:succeeded`), "the hook sees the final state");
  const again = ok.start("reindex", ["reindex"]);
  assert.equal((await finished(ok, again.id)).state, "succeeded", "a new job once the previous one finished");

  const bad = new JobService({ command: FAILS, logger });
  const failed = await finished(bad, bad.start("reindex", []).id);
  assert.equal(failed.state, "failed");
  assert.equal(failed.error, "the model hash differs: run a full rebuild");
  assert.deepEqual(failed.progress, { stage: "insert", done: 5, total: null });
  assert.deepEqual(
    bad.counts().find((c) => c.kind === "reindex"),
    { kind: "reindex", state: "failed", n: 1 },
  );
});

it("JobService: a held lock queues the job; close() cancels queued and running jobs", async () => {
  const lock = new AsyncLock();
  const release = await lock.acquire();
  const jobs = new JobService({ command: SLEEPS, logger });
  const queued = jobs.start("reindex", [], { lock });
  const running = jobs.start("retrain", []);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(jobs.get(queued.id).state, "queued", "waits for the lock");
  assert.equal(jobs.get(running.id).state, "running");
  await jobs.close(5000);
  release();
  const after = await lock.acquire();
  after();
  assert.equal((await finished(jobs, running.id)).state, "cancelled", "running child stopped");
  assert.equal((await finished(jobs, queued.id)).state, "cancelled", "queued job never started");
  assert.throws(() => jobs.start("reindex", []), ConflictError, "no new jobs after close");
});
