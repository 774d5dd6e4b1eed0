/**
 * `vidrecall serve --processes 2` as a user runs it: two server processes on
 * one port. Every request here opens its own connection, so the primary
 * hands them to the processes in turn, and each check is made against both
 * (the answering pid comes back from /healthz). The watcher interval is a
 * minute: whatever the second process knows within the test, it was told.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { cliCommand } from "../src/service/cliRunner.js";
import { makeDemoStore, registerModel, trainTiny } from "./helpers/serverFixture.js";
import { tempDir } from "./helpers/tmp.js";

const KEY = "cluster-admin-key";
const dir = tempDir("vidrecall-cluster-");
const db = join(dir, "db.sqlite");
const indexDir = join(dir, "index");
let child: ChildProcess;
let exited: Promise<number | null>;
const stdout: string[] = [];
const stderr: string[] = [];
let port = 0;
/** /similar requests this test sent (the cluster's metrics must count each once). */
let similarSent = 0;

interface Reply {
  status: number;
  json: Record<string, unknown>;
}

/** One request on a new connection (no keep-alive pool). */
function fresh(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  if (path.startsWith("/similar/")) similarSent++;
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host: "127.0.0.1", port, path, method, agent: false, headers: { ...headers, ...(payload ? { "content-type": "application/json" } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: Record<string, unknown>;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = { text };
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

const admin = { authorization: `Bearer ${KEY}` };

/** The pids of the processes answering now (asks until it has seen `n`, or fails). */
async function pids(n = 2): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < 40 && seen.size < n; i++) seen.add((await fresh("GET", "/healthz")).json.pid as number);
  assert.equal(seen.size, n, `requests on new connections reached ${seen.size} processes, expected ${n}`);
  return seen;
}

/**
 * Sends `path` on 8 new connections in turn: the primary deals new
 * connections to the processes round-robin (pids() checks both get some), so
 * each process answers several of them.
 */
async function fromEach(method: string, path: string): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let i = 0; i < 8; i++) replies.push(await fresh(method, path, undefined, admin));
  return replies;
}

async function waitJob(id: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const r = await fresh("GET", `/admin/jobs/${id}`, undefined, admin);
    assert.equal(r.status, 200, `GET /admin/jobs/${id} from any process: ${JSON.stringify(r.json)}`);
    if (r.json.state !== "queued" && r.json.state !== "running") return r.json;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`job ${id} did not finish`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  makeDemoStore(db);
  registerModel(db, "tiny-a", await trainTiny(db, join(dir, "model-a"), 7), true);
  const [file, ...rest] = [...cliCommand(), "serve", "--processes", "2", "--db", db, "--index-dir", indexDir, "--port", "0", "--watch-interval", "60000", "--log-level", "warn", "--workers", "1"];
  child = spawn(file, rest, { env: { ...process.env, VIDRECALL_ADMIN_KEY: KEY }, stdio: ["ignore", "pipe", "pipe"] });
  createInterface({ input: child.stdout! }).on("line", (l) => stdout.push(l));
  createInterface({ input: child.stderr! }).on("line", (l) => stderr.push(l));
  exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  for (let i = 0; i < 600 && !stdout.some((l) => l.includes("try: curl")) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  const line = stdout.find((l) => l.includes("listening on"));
  assert.ok(line, `no listening line; stdout: ${stdout.join("\n")}; stderr: ${stderr.join("\n")}`);
  assert.match(line, /\(2 processes; /, "the start line says how many processes serve");
  port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line)![1]);
});

after(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
});

describe("serve --processes 2", () => {
  it("serves from two processes on one port", async () => {
    const seen = await pids(2);
    assert.ok(!seen.has(child.pid!), "the primary serves nothing itself");
    for (const r of await fromEach("GET", "/similar/demo-000001")) assert.equal(r.status, 503, `no index yet, in each process: ${JSON.stringify(r.json)}`);
  });

  it("runs one reindex at a time across the processes; its job is visible from each, and each then serves the index", async () => {
    const [a, b] = await Promise.all([fresh("POST", "/admin/reindex", {}, admin), fresh("POST", "/admin/reindex", {}, admin)]);
    const statuses = [a.status, b.status].sort();
    assert.deepEqual(statuses, [202, 409], `two concurrent reindex requests on two connections: ${JSON.stringify([a.json, b.json])}`);
    const started = a.status === 202 ? a : b;
    const job = await waitJob(started.json.id as string);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    // The second process was told to load the new index when the job finished (its watcher would take a minute).
    for (const r of await fromEach("GET", "/similar/demo-000001?k=5")) {
      assert.equal(r.status, 200, `similar after the job, in each process: ${JSON.stringify(r.json)}`);
      assert.equal((r.json.results as unknown[]).length, 5);
    }
    for (const r of await fromEach("GET", `/admin/jobs/${started.json.id as string}`)) assert.equal(r.json.state, "succeeded", "each process reports the leader's job");
  });

  it("hides a deleted video in every process at once", async () => {
    const before = await fresh("GET", "/similar/demo-000002?k=50");
    const victim = (before.json.results as { id: string }[])[0].id;
    const del = await fresh("DELETE", `/videos/${victim}`);
    assert.equal(del.status, 200, JSON.stringify(del.json));
    for (const r of await fromEach("GET", `/similar/${victim}`)) assert.equal(r.status, 404, `the deleted video, in each process: ${JSON.stringify(r.json)}`);
    for (const r of await fromEach("GET", "/similar/demo-000002?k=50")) {
      assert.equal(r.status, 200);
      const got = (r.json.results as { id: string }[]).map((h) => h.id);
      assert.ok(!got.includes(victim), `${victim} is not a result in any process`);
      assert.equal(got.length, 50, "k results without it");
    }
  });

  it("indexes an ingested video and every process finds it when the request returns", async () => {
    const record = { id: "cluster-new", title: "funny cat video", rgb: [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], audio: [[0.5, 0.4, 0.3, 0.2, 0.1, 0, 0.1, 0.2]] };
    const r = await fresh("POST", "/videos?index=true", record);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.indexed, ["cluster-new"]);
    for (const s of await fromEach("GET", "/similar/cluster-new?k=3")) assert.equal(s.status, 200, `the new video, in each process: ${JSON.stringify(s.json)}`);
  });

  it("sums the processes' metrics", async () => {
    const text = (await fresh("GET", "/metrics")).json.text as string;
    const counted = [...text.matchAll(/^vidrecall_http_requests_total\{method="GET",route="\/similar\/:id",status="\d+"\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
    assert.equal(counted, similarSent, `GET /similar requests counted over both processes (metrics:\n${text.split("\n").filter((l) => l.startsWith("vidrecall_http_requests_total")).join("\n")})`);
    assert.match(text, /^vidrecall_index_videos \d+$/m, "one index size, not one per process summed");
    const size = Number(/^vidrecall_index_videos (\d+)$/m.exec(text)![1]);
    assert.ok(size > 0 && size <= 161, `index size ${size}: the one index, not the sum of two copies`);
  });

  it("replaces a process that dies, and shuts down every process on SIGTERM", async () => {
    const before = await pids(2);
    const victim = [...before][1];
    process.kill(victim, "SIGKILL");
    let now = new Set<number>();
    for (let i = 0; i < 300; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        now = await pids(2);
        if (!now.has(victim)) break;
      } catch {
        // The replacement is still starting.
      }
    }
    assert.ok(!now.has(victim) && now.size === 2, `a new process replaced ${victim}: ${[...now].join(", ")}; stderr: ${stderr.join("\n")}`);
    assert.ok(stderr.some((l) => /server process \d exited \(signal SIGKILL\): starting a new one/.test(l)), "the primary says it replaced one");
    child.kill("SIGTERM");
    assert.equal(await exited, 0, `exit code after SIGTERM; stderr: ${stderr.join("\n")}`);
    for (const pid of now) assert.ok(!alive(pid), `server process ${pid} exited too`);
    assert.ok(stderr.some((l) => /SIGTERM: shutting down 2 server processes/.test(l)), stderr.join("\n"));
  });
});
