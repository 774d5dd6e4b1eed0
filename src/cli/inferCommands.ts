/**
 * `vidrecall classify`: top categories and tags of videos from the store or a
 * JSONL file, with an exported model (model.onnx + model.json) served by
 * InferenceService; and `vidrecall bench infer`.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { writeBenchResult } from "../bench/report.js";
import type { FeatureMatrix } from "../data/featureMatrix.js";
import { FieldError, parseVideoLine } from "../data/jsonl.js";
import { VideoStore } from "../data/store.js";
import { benchInfer } from "../infer/inferBench.js";
import { InferenceService, type Classification, type ClassifyOptions, type InferenceVideo } from "../infer/inferenceService.js";
import { DEFAULT_DB, parsePositiveInt } from "./options.js";

export interface ClassifyCommandOptions {
  model: string;
  db?: string;
  ids?: string;
  jsonl?: string;
  top: number;
  tagThreshold: number;
  maxTags: number;
  embedding?: boolean;
  workers?: number;
}

/** Videos per classify call: bounds memory on big JSONL files; the service splits them into runs. */
const CHUNK = 256;

function parseProbability(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!(x >= 0 && x <= 1)) throw new Error(`${name} must be a number in [0, 1], got "${v}"`);
    return x;
  };
}

function parseCount(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
    return n;
  };
}

/** JSONL records as service inputs, in chunks, with the line of any bad record in its error. */
async function* jsonlVideos(file: string): AsyncGenerator<InferenceVideo[]> {
  const dims = new Map<string, number>();
  const lines = createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity });
  let chunk: InferenceVideo[] = [];
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === "") continue;
    let video;
    try {
      video = parseVideoLine(line, dims);
    } catch (err) {
      const what = err instanceof FieldError ? err.message : (err as Error).message;
      throw new Error(`${file} line ${lineNo}: ${what}`);
    }
    const features: Record<string, FeatureMatrix> = {};
    for (const [m, f] of Object.entries(video.features)) if ("matrix" in f) features[m] = f.matrix;
    chunk.push({ id: video.id, title: video.title ?? null, features });
    if (chunk.length >= CHUNK) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

function* storeVideos(db: string, ids: string[]): Generator<InferenceVideo[]> {
  const store = VideoStore.open(db, { readonly: true });
  try {
    for (let i = 0; i < ids.length; i += CHUNK) yield store.getExamples(ids.slice(i, i + CHUNK));
  } finally {
    store.close();
  }
}

/** Classifies the selected videos; returns one result per video, in input order. */
export async function runClassify(opts: ClassifyCommandOptions): Promise<Classification[]> {
  if ((opts.jsonl === undefined) === (opts.ids === undefined)) throw new Error("give either --jsonl FILE or --ids a,b,c (with --db)");
  if (opts.jsonl !== undefined && opts.db !== undefined) throw new Error("--db goes with --ids, not with --jsonl");
  const service = await InferenceService.create(opts.model, { workers: opts.workers });
  if (service.model.config.neighbours.enabled && service.model.numTags > 0) {
    process.stderr.write("note: this model's neighbour votes need labelled neighbours (vidrecall eval, POST /classify); the tags here are the tag head's alone\n");
  }
  try {
    const classifyOptions: ClassifyOptions = { topCategories: opts.top, tagThreshold: opts.tagThreshold, maxTags: opts.maxTags, embedding: opts.embedding };
    let source: AsyncIterable<InferenceVideo[]> | Iterable<InferenceVideo[]>;
    if (opts.jsonl !== undefined) {
      source = jsonlVideos(opts.jsonl);
    } else {
      const ids = (opts.ids ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (ids.length === 0) throw new Error("--ids: no video ids given");
      source = storeVideos(opts.db ?? DEFAULT_DB, ids);
    }
    const results: Classification[] = [];
    for await (const videos of source) results.push(...(await service.classify(videos, classifyOptions)));
    return results;
  } finally {
    await service.close();
  }
}

/** The human-readable table: one line per video, labels with probabilities. */
export function formatClassifications(results: readonly Classification[]): string {
  const scores = (xs: { label: string; probability: number }[]) => (xs.length ? xs.map((x) => `${x.label} ${x.probability.toFixed(3)}`).join(", ") : "-");
  const rows = [["id", "categories", "tags"], ...results.map((r) => [r.id, scores(r.categories), scores(r.tags)])];
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => [r[0].padEnd(widths[0]), r[1].padEnd(widths[1]), r[2]].join("  ").trimEnd()).join("\n");
}

export function classificationsToJson(results: readonly Classification[]): unknown[] {
  return results.map((r) => ({
    id: r.id,
    categories: r.categories.map(({ label, probability }) => ({ label, probability })),
    tags: r.tags.map(({ label, probability }) => ({ label, probability })),
    ...(r.embedding ? { embedding: Array.from(r.embedding) } : {}),
  }));
}

export function registerInferCommands(program: Command): void {
  program
    .command("classify")
    .description("top categories and tags of videos, with an exported model (vidrecall export)")
    .requiredOption("--model <dir>", "exported model directory (model.onnx + model.json)")
    .option("--db <path>", `SQLite database the --ids are read from (default ${DEFAULT_DB})`)
    .option("--ids <list>", "comma-separated video ids from the database")
    .option("--jsonl <file>", "videos in the JSONL import format instead of the database")
    .option("--top <n>", "categories per video", parseCount("--top"), 3)
    .option("--tag-threshold <p>", "tags with probability at least this (0: the plain top --max-tags)", parseProbability("--tag-threshold"), 0.5)
    .option("--max-tags <n>", "at most this many tags per video", parseCount("--max-tags"), 20)
    .option("--embedding", "include the embedding (with --json)")
    .option("--workers <n>", "session workers (default: 1 up to 4 cores, else 2)", parsePositiveInt("--workers"))
    .option("--json", "print JSON instead of a table")
    .action(async (opts: ClassifyCommandOptions & { json?: boolean }) => {
      const results = await runClassify(opts);
      process.stdout.write((opts.json ? JSON.stringify(classificationsToJson(results), null, 2) : formatClassifications(results)) + "\n");
    });
}

export function registerInferBench(bench: Command): void {
  bench
    .command("infer")
    .description("serving speed on the frame-level benchmark model exported to ONNX: embeddings/s, latency, GFLOP/s vs an ORT sgemm, and the PyTorch peer")
    .option("--json <file>", "also write the JSON result here")
    .option("--rounds <n>", "measurement rounds (medians reported)", parsePositiveInt("--rounds"), 5)
    .option("--batches <n>", "timed batch-32 runs per round", parsePositiveInt("--batches"), 10)
    .option("--latency-runs <n>", "timed single-video runs per round", parsePositiveInt("--latency-runs"), 100)
    .option("--warmup <n>", "untimed runs before each measurement", parseCount("--warmup"), 3)
    .option("--workers <n>", "session workers (default: 1 up to 4 cores, else 2)", parsePositiveInt("--workers"))
    .option("--intra-op-threads <n>", "ORT threads per worker (default: cores / workers)", parsePositiveInt("--intra-op-threads"))
    .option("--batch-window-ms <ms>", "micro-batching window (default 0: calls of one event-loop turn share a run)", (v) => Number(v))
    .option("--no-peer", "skip the PyTorch peer")
    .option("--peer-timeout <s>", "PyTorch peer time limit, seconds", parsePositiveInt("--peer-timeout"), 900)
    .action(async (opts) => {
      const result = await benchInfer({
        rounds: opts.rounds,
        batches: opts.batches,
        latencyRuns: opts.latencyRuns,
        warmup: opts.warmup,
        workers: opts.workers,
        intraOpThreads: opts.intraOpThreads,
        batchWindowMs: opts.batchWindowMs,
        peer: opts.peer !== false,
        peerTimeoutMs: opts.peerTimeout * 1000,
        log: (s) => process.stderr.write(s + "\n"),
      });
      const f = (x: number | null, d = 1) => (x === null ? "-" : x.toFixed(d));
      writeBenchResult(result, opts.json, [
        ["", "emb/s (b=32)", "p50 ms (b=1)", "p99 ms (b=1)", "GFLOP/s"],
        ["ours: service", f(result.ours_embeddings_per_s), f(result.latency_p50_ms, 2), f(result.latency_p99_ms, 2), f(result.gflops_achieved)],
        ["ours: raw session", f(result.raw_session.embeddings_per_s), f(result.raw_session.latency_p50_ms, 2), f(result.raw_session.latency_p99_ms, 2), f(result.raw_session.gflops)],
        [
          "pytorch",
          f(result.pytorch_embeddings_per_s),
          f(result.pytorch_latency_p50_ms, 2),
          f(result.pytorch_latency_p99_ms, 2),
          f(result.pytorch_embeddings_per_s === null ? null : (result.pytorch_embeddings_per_s * result.flops_per_video) / 1e9),
        ],
        ["ORT sgemm 1024 (ceiling)", "", "", "", f(result.gflops_sgemm_ceiling)],
      ]);
      if (result.ratio !== null) process.stderr.write(`ours / pytorch: ${result.ratio.toFixed(2)}×; achieved / ceiling: ${(100 * result.fraction_of_ceiling).toFixed(0)}%\n`);
      else process.stderr.write(`pytorch: ${result.pytorch_unavailable}\n`);
    });
}
