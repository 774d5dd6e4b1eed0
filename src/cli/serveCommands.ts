/**
 * `vidrecall serve` (the HTTP service; `npm start` runs it with --bootstrap,
 * the embedded default) and `vidrecall bench http`.
 */
import { type Command, Option } from "commander";
import cluster from "node:cluster";
import { resolve } from "node:path";
import { setFlagsFromString } from "node:v8";
import { joinCluster, startPrimary } from "../../server/cluster.js";
import { startServer, DEFAULT_BODY_LIMIT, type RunningServer } from "../../server/server.js";
import { benchHttp, DEFAULT_PROCESSES, DEFAULT_WARMUP_S, type HttpBenchResult } from "../bench/httpBench.js";
import { writeBenchResult } from "../bench/report.js";
import { bootstrap } from "./bootstrap.js";
import { DEFAULT_INDEX_DIR } from "./indexCommands.js";
import { dbOption, parseNonNegativeInt, parsePositiveInt } from "./options.js";

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = "127.0.0.1";
/** Where --bootstrap trains the demo model. */
export const DEFAULT_BOOTSTRAP_MODEL_DIR = "data/models/demo-small";

/**
 * V8 lets the old space grow to up to 4× its live size between full
 * collections. Under /similar load a server process's heap then swung between
 * ~95 and ~390 MB of which 95 were live, and RSS with it (400–800 MB per
 * process, measured with --trace-gc and /proc). Growing by at most 1.5× kept
 * RSS within ~435–450 MB at no measurable cost in req/s (a full collection
 * takes 10–20 ms, mostly incremental). `node --heap-growing-percent=N` wins.
 */
const HEAP_GROWING_PERCENT = 50;

function boundHeapGrowth(): void {
  if (process.execArgv.some((a) => a.startsWith("--heap-growing-percent") || a.startsWith("--heap_growing_percent"))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be an integer in [0, 65535], got "${v}"`);
  return n;
}

function parseBodyLimit(v: string): string {
  if (!/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i.test(v.trim())) throw new Error(`--body-limit must be a size like 16mb, 512kb or 1048576, got "${v}"`);
  return v.trim();
}

export interface ServeCommandOptions {
  db: string;
  model?: string;
  indexDir: string;
  host: string;
  port: number;
  bodyLimit: string;
  watchInterval: number;
  shutdownTimeout: number;
  logLevel: string;
  workers?: number;
  searchThreads?: number;
  processes: number;
  bootstrap?: boolean;
  demoVideos: number;
  bootstrapModelDir: string;
}

export function registerServeCommands(program: Command): void {
  program
    .command("serve")
    .description("the HTTP service: similar videos, classification, ingestion, labels, admin jobs (see README, HTTP service)")
    .addOption(dbOption())
    .option("--model <dir>", "exported model to serve when the registry has no active model")
    .addOption(new Option("--index-dir <dir>", "index root (versions + CURRENT)").default(DEFAULT_INDEX_DIR))
    .addOption(new Option("--host <host>", "address to listen on (0.0.0.0: every interface)").env("HOST").default(DEFAULT_HOST))
    .addOption(new Option("--port <n>", "port (0: any free port)").env("PORT").argParser(parsePort).default(DEFAULT_PORT))
    .addOption(new Option("--body-limit <size>", "largest request body (larger: 413)").env("VIDRECALL_BODY_LIMIT").argParser(parseBodyLimit).default(DEFAULT_BODY_LIMIT))
    .option("--watch-interval <ms>", "how often to look for a newly promoted model or index version", parsePositiveInt("--watch-interval"), 2000)
    .option("--shutdown-timeout <ms>", "how long requests in flight may take to finish at shutdown", parsePositiveInt("--shutdown-timeout"), 10_000)
    .addOption(new Option("--log-level <level>", "pino log level").env("VIDRECALL_LOG_LEVEL").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"))
    .option("--workers <n>", "inference session workers (default: 1 up to 4 cores, else 2)", parsePositiveInt("--workers"))
    .option("--search-threads <n>", "similar-video search threads per process, each with a copy of the index in memory; 0: search on the event loop (default: 2, or 0 with --processes > 1)", parseNonNegativeInt("--search-threads"))
    .addOption(
      new Option("--processes <n>", "server processes on the one port (node:cluster), each with its own model and index copy; 2 on a 2-core machine serves /similar ~1.3× faster (README, HTTP service)")
        .env("VIDRECALL_PROCESSES")
        .argParser(parsePositiveInt("--processes"))
        .default(1),
    )
    .option("--bootstrap", "the embedded default: make whatever is missing first (demo data, the demo-small model, the index)")
    .option("--demo-videos <n>", "with --bootstrap: demo videos to generate into an empty database", parsePositiveInt("--demo-videos"), 5000)
    .option("--bootstrap-model-dir <dir>", "with --bootstrap: where the demo model is trained", DEFAULT_BOOTSTRAP_MODEL_DIR)
    .action(async (opts: ServeCommandOptions) => {
      const log = (line: string) => process.stderr.write(`vidrecall: ${line}\n`);
      boundHeapGrowth();
      const inCluster = opts.processes > 1;
      let model = opts.model;
      if (cluster.isWorker) {
        // The primary has bootstrapped already; the registry (or this directory) names the model.
        if (opts.bootstrap) model ??= resolve(opts.bootstrapModelDir);
      } else if (opts.bootstrap) {
        const started = Date.now();
        const r = await bootstrap({ db: opts.db, modelDir: opts.bootstrapModelDir, indexDir: opts.indexDir, videos: opts.demoVideos, preset: "demo-small", log });
        if (r.made.length) log(`set up ${r.made.join(", ")} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
        model ??= r.modelDir;
      }
      if (inCluster && cluster.isPrimary) {
        const primary = startPrimary({
          processes: opts.processes,
          log,
          shutdownTimeoutMs: opts.shutdownTimeout,
          onReady: (info) => process.stdout.write(info.lines.map((l) => l + "\n").join("")),
        });
        let signals = 0;
        const onSignal = (signal: string) => {
          if (++signals > 1) {
            log(`${signal} again: exiting now`);
            process.exit(1);
          }
          primary.stop(signal);
        };
        process.on("SIGTERM", () => onSignal("SIGTERM"));
        process.on("SIGINT", () => onSignal("SIGINT"));
        process.exit(await primary.exited);
      }
      const link = cluster.isWorker ? joinCluster() : undefined;
      const server = await startServer({
        db: opts.db,
        model,
        indexDir: opts.indexDir,
        host: opts.host,
        port: opts.port,
        adminKey: process.env.VIDRECALL_ADMIN_KEY,
        bodyLimit: opts.bodyLimit,
        watchIntervalMs: opts.watchInterval,
        shutdownTimeoutMs: opts.shutdownTimeout,
        logLevel: opts.logLevel,
        inference: opts.workers ? { workers: opts.workers } : undefined,
        searchThreads: opts.searchThreads ?? (inCluster ? 0 : undefined),
        cluster: link,
      });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          log(`${signal} again: exiting now`);
          process.exit(1);
        }
        stopping = true;
        log(`${signal}: shutting down (finishing requests in flight)`);
        server.close().then(
          () => process.exit(0),
          (err: unknown) => {
            log(`shutdown failed: ${(err as Error).message}`);
            process.exit(1);
          },
        );
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
      const lines = listeningLines(server, opts.processes);
      // In a cluster the primary prints them once every process listens.
      if (link) {
        link.onShutdown(() => stop("shutdown"));
        link.ready({ url: server.url, lines });
      } else {
        process.stdout.write(lines.map((l) => l + "\n").join(""));
      }
    });
}

/** The last lines of a start, on stdout, so scripts (and bench http) can read the address. */
function listeningLines(server: RunningServer, processes: number): string[] {
  const rt = server.context.runtime;
  const example = rt.index?.ids().find((id) => !rt.tombstones.has(id)) ?? rt.store.listVideos(1)[0]?.id;
  const admin = process.env.VIDRECALL_ADMIN_KEY ? "admin routes enabled" : "admin routes disabled (set VIDRECALL_ADMIN_KEY)";
  const procs = processes > 1 ? `${processes} processes; ` : "";
  const what = `${procs}model ${rt.model.id ?? rt.model.dir}, ${rt.index ? `index ${rt.index.version} (${rt.index.size} videos)` : "no index yet"}; ${admin}`;
  return [`vidrecall: listening on ${server.url} (${what})`, example ? `  try: curl '${server.url}/similar/${encodeURIComponent(example)}?k=5'` : `  try: curl '${server.url}/readyz'`];
}

/** `vidrecall bench http`, registered on the existing bench group. */
export function registerHttpBench(program: Command): void {
  const bench = program.commands.find((c) => c.name() === "bench");
  if (!bench) throw new Error("registerHttpBench: register the bench commands first");
  bench
    .command("http")
    .description("HTTP service throughput and latency (autocannon, loopback): /similar over 100,000 indexed videos, /classify with 32-frame feature payloads; RSS before/after")
    .option("--json <file>", "also write the JSON result here")
    .option("--duration <s>", "seconds per endpoint", parsePositiveInt("--duration"), 60)
    .option("--videos <n>", "indexed videos", parsePositiveInt("--videos"), 100_000)
    .option("--similar-connections <n>", "concurrent connections for /similar", parsePositiveInt("--similar-connections"), 8)
    .option("--classify-connections <n>", "concurrent connections for /classify", parsePositiveInt("--classify-connections"), 8)
    .option("--warmup <s>", "untimed seconds per endpoint before RSS is first read", parsePositiveInt("--warmup"), DEFAULT_WARMUP_S)
    .option("--processes <n>", "server processes (serve --processes)", parsePositiveInt("--processes"), DEFAULT_PROCESSES)
    .option("--work-dir <dir>", "where the fixture (database, synthetic index, model) is made once and reused", ".bench/http")
    .option("--model <dir>", "serve this exported demo-small-shaped model instead of a random-weight demo-small export")
    .action(async (opts) => {
      const result: HttpBenchResult = await benchHttp({
        durationS: opts.duration,
        videos: opts.videos,
        similarConnections: opts.similarConnections,
        classifyConnections: opts.classifyConnections,
        workDir: resolve(opts.workDir as string),
        model: opts.model as string | undefined,
        warmupS: opts.warmup as number,
        processes: opts.processes as number,
        log: (s) => process.stderr.write(s + "\n"),
      });
      const row = (name: string, r: HttpBenchResult["similar"]) => [name, r.rps.toFixed(0), r.p50_ms.toFixed(2), r.p99_ms.toFixed(2), String(r.errors), String(r.requests)];
      writeBenchResult(result, opts.json, [
        ["endpoint", "req/s", "p50 ms", "p99 ms", "errors", "requests"],
        row("GET /similar/:id", result.similar),
        row("POST /classify", result.classify),
        ["RSS MB before → after", `${result.rss_before_mb.toFixed(0)} → ${result.rss_after_mb.toFixed(0)}`, `${result.rss_growth_pct.toFixed(1)}%`, "", "", ""],
      ]);
    });
}
