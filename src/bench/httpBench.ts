/**
 * `vidrecall bench http`: the HTTP service under load, over loopback, with
 * autocannon's programmatic API.
 *
 * Fixture (made once under --work-dir, reused by later runs):
 *   - a database of `videos` videos with titles, a category and tags each
 *     (metadata only: /similar reads titles and labels, never features);
 *   - an index of `videos` synthetic 256-d clustered unit vectors (the
 *     `bench ann` generator; clusters = categories), stamped with the model's
 *     embedding hash as a reindex would;
 *   - the model: the demo-small preset (what `npm start` serves) with random
 *     initial weights, exported to ONNX, unless --model names one. Inference
 *     cost does not depend on the weights' values.
 *
 * The server is the real `vidrecall serve` in a child process (log level
 * warn: request logs would otherwise measure the terminal), so the load
 * generator and the server do not share an event loop. It runs as
 * `--processes 2` by default (one server process per core of this machine;
 * README, HTTP service), `--processes 1` for the single process with search
 * threads. Each endpoint gets a
 * short untimed warm-up, then `durationS` seconds: /similar/:id with k=10 for
 * uniformly random indexed ids; /classify with one of 64 distinct 32-frame
 * payloads (rgb 32×256 and audio 32×128 as base64 float32, and a title).
 * RSS of the server (summed over its processes) is read from /proc before
 * the first and after the last timed run.
 */
import autocannon from "autocannon";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { availableParallelism, loadavg } from "node:os";
import { createInterface } from "node:readline";
import * as tf from "@tensorflow/tfjs";
import { buildIndex, DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_M } from "../../indexer/build.js";
import { SimilarityIndex } from "../../indexer/search.js";
import { readCurrent, readManifest } from "../../indexer/versions.js";
import { VideoStore, type VideoInput } from "../data/store.js";
import { PAD_TOKEN, UNK_TOKEN } from "../data/tokenize.js";
import { readModelMetadata } from "../infer/modelBundle.js";
import { parseModelConfig } from "../model/config.js";
import { PRESETS } from "../model/presets.js";
import { cliCommand } from "../service/cliRunner.js";
import { seededRandom } from "../util/random.js";
import { generateClustered } from "./annBench.js";
import { exportUntrainedModel } from "../export/untrainedModel.js";

/**
 * Untimed seconds per endpoint before the first RSS reading. /similar returns
 * each hit's title and labels from a cache of video summaries: over 100,000
 * uniformly drawn ids it takes ~30 s at 2,000 req/s to hold most of them
 * (and V8's old space to grow to its working size around them). Read earlier,
 * RSS growth measures that fill, not a leak: 10 s gave 16% that flattens by
 * ~60 s (the samples in the result show it). With --processes 2 each process
 * fills its own cache from half the requests: its RSS climbed from ~400 to
 * ~690 MB over the first 60 s of /similar load and then by ~5% in the next 60
 * (30 s of warm-up read RSS mid-fill: +15.6% in one run).
 */
export const DEFAULT_WARMUP_S = 60;

/**
 * Server processes: one per core here. /similar on this 2-core machine:
 * ~1,950 req/s from one process with 2 search threads, ~2,300–2,600 from two
 * processes searching inline (README, HTTP service).
 */
export const DEFAULT_PROCESSES = 2;

export interface HttpBenchOptions {
  durationS: number;
  videos: number;
  similarConnections: number;
  classifyConnections: number;
  workDir: string;
  model?: string;
  warmupS?: number;
  /** `serve --processes` (default 2). */
  processes?: number;
  log?: (line: string) => void;
}

export interface EndpointResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Connection errors, timeouts and non-2xx responses. */
  errors: number;
  non2xx: number;
  timeouts: number;
  requests: number;
  connections: number;
  duration_s: number;
}

export interface HttpBenchResult {
  similar: EndpointResult;
  classify: EndpointResult;
  rss_before_mb: number;
  rss_after_mb: number;
  rss_growth_pct: number;
  /** The server's RSS every 5 s through both timed runs: a leak climbs, a filled cache flattens. */
  rss_samples_mb: number[];
  videos: number;
  index_version: string;
  model: string;
  /** `serve --processes` the server ran with. */
  processes: number;
  targets: { similar_rps: number; similar_p99_ms: number; classify_rps: number; classify_p99_ms: number; rss_growth_pct: number };
  meets_targets: boolean;
  /** What the machine allowed during the run: load average (1 min) at start and end, and the raw index search rate in this process (no HTTP). */
  context: { cores: number; load_avg_start: number; load_avg_end: number; raw_search_per_s: number };
  notes: string[];
}

const CLUSTERS = 100;
const WORDS = ["street", "food", "guitar", "lesson", "football", "highlights", "cat", "dog", "travel", "vlog", "cooking", "live", "music", "news", "race", "drone", "city", "night", "tutorial", "review"];
const TAGS_PER_CLUSTER = 5;

function catName(c: number): string {
  return `category-${String(c).padStart(3, "0")}`;
}
function tagName(c: number, j: number): string {
  return `tag-${c}-${j}`;
}

/** demo-small with random weights, exported (verified against tfjs on a small batch). */
async function exportRandomDemoSmall(dir: string): Promise<void> {
  await tf.setBackend("cpu");
  await tf.ready();
  const config = parseModelConfig(PRESETS["demo-small"]);
  const labels = { categories: Array.from({ length: CLUSTERS }, (_, c) => catName(c)), tags: Array.from({ length: CLUSTERS * TAGS_PER_CLUSTER }, (_, i) => tagName(Math.floor(i / TAGS_PER_CLUSTER), i % TAGS_PER_CLUSTER)) };
  const tokens = [PAD_TOKEN, UNK_TOKEN, ...WORDS];
  const loaded = await exportUntrainedModel(dir, config, labels, { vocabulary: tokens, verify: { batch: 2 } });
  loaded.model.dispose();
}

function videoId(i: number): string {
  return `b${String(i).padStart(7, "0")}`;
}

/** The database, index and model of the benchmark; made once, reused when they match. */
async function prepareFixture(o: HttpBenchOptions): Promise<{ db: string; indexDir: string; modelDir: string }> {
  const log = o.log ?? (() => {});
  mkdirSync(o.workDir, { recursive: true });
  const modelDir = o.model ?? join(o.workDir, "model");
  if (!existsSync(join(modelDir, "model.json"))) {
    if (o.model) throw new Error(`--model ${o.model}: no model.json (export it first)`);
    log(`exporting a random-weight demo-small model to ${modelDir}`);
    await exportRandomDemoSmall(modelDir);
  }
  const meta = readModelMetadata(modelDir);
  const db = join(o.workDir, "bench.sqlite");
  const indexDir = join(o.workDir, "index");
  const current = existsSync(indexDir) ? readCurrent(indexDir) : null;
  const manifest = current ? readManifest(indexDir, current) : null;
  const store = existsSync(db) ? VideoStore.open(db) : undefined;
  const fresh = store?.countVideos() === o.videos && manifest?.count === o.videos && manifest.modelHash === meta.embeddingSha256 && manifest.dim === meta.embeddingDim &&
    // An index built with other HNSW defaults would measure those.
    manifest.M === DEFAULT_M && manifest.efConstruction === DEFAULT_EF_CONSTRUCTION && manifest.ef === DEFAULT_EF;
  store?.close();
  if (fresh) return { db, indexDir, modelDir };

  for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
  rmSync(indexDir, { recursive: true, force: true });
  log(`generating ${o.videos} synthetic ${meta.embeddingDim}-d vectors in ${CLUSTERS} clusters`);
  const { vectors, cluster } = generateClustered({ n: o.videos, dim: meta.embeddingDim, clusters: CLUSTERS, seed: 1 }, o.videos);
  log(`writing ${o.videos} videos (titles, categories, tags) to ${db}`);
  const rand = seededRandom("http-bench", 1);
  const out = VideoStore.open(db);
  try {
    const batch: VideoInput[] = [];
    const flush = () => {
      out.upsertVideos(batch, { source: "bench" });
      batch.length = 0;
    };
    for (let i = 0; i < o.videos; i++) {
      const c = cluster[i];
      const words = Array.from({ length: 3 + Math.floor(rand() * 4) }, () => WORDS[Math.floor(rand() * WORDS.length)]);
      const tags = Array.from(new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => tagName(c, Math.floor(rand() * TAGS_PER_CLUSTER)))));
      batch.push({ id: videoId(i), title: words.join(" "), features: {}, category: catName(c), tags });
      if (batch.length === 5000) flush();
    }
    if (batch.length) flush();
  } finally {
    out.close();
  }
  log(`building the index (${o.videos} vectors; about a minute on 2 cores)`);
  const dim = meta.embeddingDim;
  const entries = (function* () {
    for (let i = 0; i < o.videos; i++) yield { id: videoId(i), vector: vectors.subarray(i * dim, (i + 1) * dim) };
  })();
  await buildIndex(entries, { root: indexDir, modelHash: meta.embeddingSha256, dim, expectedCount: o.videos });
  return { db, indexDir, modelDir };
}

/** VmRSS of a process and its descendants (the cluster's server processes), in MB. */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1024 + childrenOf(pid).reduce((sum, child) => sum + rssMb(child), 0);
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // Field 4 of stat is the parent pid; the command name (field 2) may hold spaces, so read after its ")".
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(name));
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

/** Starts `vidrecall serve` and resolves with its URL once it listens. */
function startServe(args: string[], log: (s: string) => void): Promise<{ child: ChildProcess; url: string }> {
  const [file, ...rest] = [...cliCommand(), "serve", ...args];
  const env = { ...process.env };
  delete env.VIDRECALL_ADMIN_KEY;
  const child = spawn(file, rest, { env, stdio: ["ignore", "pipe", "pipe"] });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (l) => {
    stderr.push(l);
    if (stderr.length > 30) stderr.shift();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the server did not start within 180 s:\n${stderr.join("\n")}`));
    }, 180_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        log(line);
        resolve({ child, url: m[1] });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}) before listening:\n${stderr.join("\n")}`));
    });
  });
}

function stopServe(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 20_000).unref();
  });
}

function summarize(r: autocannon.Result, connections: number): EndpointResult {
  const requests = r.requests.total;
  return {
    rps: requests / r.duration,
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    max_ms: r.latency.max,
    errors: r.errors + r.non2xx,
    non2xx: r.non2xx,
    timeouts: r.timeouts,
    requests,
    connections,
    duration_s: r.duration,
  };
}

/** One 32-frame demo-shaped classify body: base64 float32 features and a title. */
function classifyPayload(rand: () => number): string {
  const feature = (frames: number, dim: number) => {
    const values = Float32Array.from({ length: frames * dim }, () => 2 * rand() - 1);
    return { encoding: "float32", shape: [frames, dim], data: Buffer.from(values.buffer).toString("base64") };
  };
  const title = Array.from({ length: 5 }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" ");
  return JSON.stringify({ rgb: feature(32, 256), audio: feature(32, 128), title, top: 3, tag_threshold: 0.5 });
}

/** index.similar(k=10) calls per second for `seconds`, in this process: the search cost with no HTTP around it. */
async function rawSearchRate(indexDir: string, videos: number, seconds: number): Promise<number> {
  const ix = await SimilarityIndex.open(indexDir);
  const rand = seededRandom("http-bench-raw", 3);
  for (let i = 0; i < 200; i++) ix.similar(videoId(Math.floor(rand() * videos)), 10);
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < seconds * 1000) {
    ix.similar(videoId(Math.floor(rand() * videos)), 10);
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

export async function benchHttp(o: HttpBenchOptions): Promise<HttpBenchResult> {
  const log = o.log ?? (() => {});
  const { db, indexDir, modelDir } = await prepareFixture(o);
  const loadStart = loadavg()[0];
  const rawSearch = await rawSearchRate(indexDir, o.videos, 3);
  log(`raw index search in this process: ${rawSearch.toFixed(0)}/s (load average ${loadStart.toFixed(1)} on ${availableParallelism()} cores)`);
  const processes = o.processes ?? DEFAULT_PROCESSES;
  const { child, url } = await startServe(["--db", db, "--model", modelDir, "--index-dir", indexDir, "--host", "127.0.0.1", "--port", "0", "--log-level", "warn", "--processes", String(processes)], log);
  try {
    const rand = seededRandom("http-bench-load", 2);
    const similarRequest = {
      method: "GET" as const,
      setupRequest: (req: autocannon.Request) => ({ ...req, path: `/similar/${videoId(Math.floor(rand() * o.videos))}?k=10` }),
    };
    const payloads = Array.from({ length: 64 }, () => classifyPayload(rand));
    let next = 0;
    const classifyRequest = {
      method: "POST" as const,
      path: "/classify",
      headers: { "content-type": "application/json" },
      setupRequest: (req: autocannon.Request) => ({ ...req, body: payloads[next++ % payloads.length] }),
    };
    const run = (request: autocannon.Request, connections: number, duration: number) =>
      autocannon({ url, connections, duration, pipelining: 1, timeout: 10, requests: [request] });

    const warm = o.warmupS ?? DEFAULT_WARMUP_S;
    log(`warm-up ${warm} s per endpoint`);
    await run(similarRequest, o.similarConnections, warm);
    await run(classifyRequest, o.classifyConnections, warm);
    const rssBefore = rssMb(child.pid!);
    const rssSamples = [rssBefore];
    const sampler = setInterval(() => {
      if (child.exitCode === null) rssSamples.push(rssMb(child.pid!));
    }, 5000);
    let similar: EndpointResult;
    let classify: EndpointResult;
    try {
      log(`GET /similar/:id for ${o.durationS} s (${o.similarConnections} connections)`);
      similar = summarize(await run(similarRequest, o.similarConnections, o.durationS), o.similarConnections);
      log(`POST /classify for ${o.durationS} s (${o.classifyConnections} connections)`);
      classify = summarize(await run(classifyRequest, o.classifyConnections, o.durationS), o.classifyConnections);
    } finally {
      clearInterval(sampler);
    }
    const rssAfter = rssMb(child.pid!);
    rssSamples.push(rssAfter);
    const targets = { similar_rps: 2000, similar_p99_ms: 20, classify_rps: 300, classify_p99_ms: 50, rss_growth_pct: 10 };
    const growth = (100 * (rssAfter - rssBefore)) / rssBefore;
    return {
      similar,
      classify,
      rss_before_mb: rssBefore,
      rss_after_mb: rssAfter,
      rss_growth_pct: growth,
      rss_samples_mb: rssSamples.map((mb) => Math.round(mb)),
      videos: o.videos,
      index_version: readCurrent(indexDir)!,
      model: o.model ? modelDir : "demo-small, random initial weights (exported)",
      processes,
      targets,
      context: { cores: availableParallelism(), load_avg_start: loadStart, load_avg_end: loadavg()[0], raw_search_per_s: rawSearch },
      meets_targets:
        similar.rps >= targets.similar_rps &&
        similar.p99_ms <= targets.similar_p99_ms &&
        classify.rps >= targets.classify_rps &&
        classify.p99_ms <= targets.classify_p99_ms &&
        similar.errors === 0 &&
        classify.errors === 0 &&
        growth < targets.rss_growth_pct,
      notes: [
        `server: vidrecall serve --processes ${processes} in a child process, --log-level warn; load: autocannon in this process; loopback`,
        "index: synthetic clustered 256-d vectors (the bench ann generator), one per stored video; the store holds metadata only",
        "classify payload: rgb 32x256 + audio 32x128 base64 float32 + a 5-word title",
        `rss: the server's VmRSS (summed over its processes) after a ${warm} s warm-up per endpoint (before), every 5 s, and after both timed runs (after)`,
      ],
    };
  } finally {
    await stopServe(child);
  }
}
