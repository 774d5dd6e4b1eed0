/**
 * `vidrecall index …`: the similar-video index (status, similar, build from
 * precomputed embeddings, prune); `vidrecall reindex` (embed the store with a
 * model, then build or update the index); and `vidrecall bench ann`.
 */
import { type Command, Option } from "commander";
import { createReadStream, existsSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { buildIndex, DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_KEEP_VERSIONS, DEFAULT_M, DEFAULT_REBUILD_THRESHOLD, updateIndex, type BuildResult } from "../../indexer/build.js";
import type { IndexEntry } from "../../indexer/embedder.js";
import { reindex, DEFAULT_EMBED_BATCH, type ReindexProgress, type ReindexResult } from "../../indexer/reindex.js";
import { SimilarityIndex } from "../../indexer/search.js";
import { InferenceService } from "../infer/inferenceService.js";
import { storeEmbedder } from "../infer/storeEmbedder.js";
import { acquireLock, listVersions, pruneVersions, readCurrent, readManifest } from "../../indexer/versions.js";
import { benchAnn, type AnnBenchResult } from "../bench/annBench.js";
import { benchAnnYt8m, type Yt8mAnnResult } from "../bench/annYt8m.js";
import { formatTable, writeBenchResult } from "../bench/report.js";
import { VideoStore } from "../data/store.js";
import { dbOption, parsePositiveInt } from "./options.js";
import { createProgress } from "./progress.js";

export const DEFAULT_INDEX_DIR = "data/index";
const DEFAULT_YT8M_DB = ".bench/quality/yt8m.sqlite";
const DEFAULT_YT8M_MODEL = ".bench/quality/models/video-level";

function indexDirOption(): Option {
  return new Option("--index-dir <dir>", "index root (versions + CURRENT)").default(DEFAULT_INDEX_DIR);
}

function parseFraction(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n >= 0 && n < 1)) throw new Error(`${name} must be in [0, 1), got "${v}"`);
    return n;
  };
}

/**
 * Reads `{"id": "...", "vector": [..]}` lines. The first vector fixes dim;
 * `dim` is filled in before the first entry is yielded.
 */
async function* readVectorsJsonl(file: string, shape: { dim?: number }): AsyncGenerator<IndexEntry> {
  if (!existsSync(file)) throw new Error(`no such file: ${file}`);
  const lines = createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === "") continue;
    let row: { id?: unknown; vector?: unknown };
    try {
      row = JSON.parse(line) as typeof row;
    } catch (err) {
      throw new Error(`${file}:${n}: ${(err as Error).message}`);
    }
    if (typeof row.id !== "string" || row.id === "" || !Array.isArray(row.vector)) throw new Error(`${file}:${n}: expected {"id": string, "vector": number[]}`);
    shape.dim ??= row.vector.length;
    if (row.vector.length !== shape.dim) throw new Error(`${file}:${n}: vector of length ${row.vector.length}, earlier ones have ${shape.dim}`);
    yield { id: row.id, vector: Float32Array.from(row.vector as number[]) };
  }
}

/** Peeks the first entry so dim is known before building, then replays it. */
async function withDim(source: AsyncGenerator<IndexEntry>, shape: { dim?: number }): Promise<{ dim: number; entries: AsyncGenerator<IndexEntry> }> {
  const first = await source.next();
  if (first.done) throw new Error("no vectors in the input");
  const entries = (async function* () {
    yield first.value;
    yield* source;
  })();
  return { dim: shape.dim!, entries };
}

function printBuild(r: BuildResult): void {
  process.stdout.write(JSON.stringify(r, null, 2) + "\n");
  const how = r.mode === "full" ? (r.rebuildReason ? `full rebuild (${r.rebuildReason})` : "full build") : "incremental update";
  process.stderr.write(`${how}: ${r.version} is current, ${r.count} videos (${r.deleted} deleted slots), ${r.build_s.toFixed(1)} s\n`);
}

export type ProgressFormat = "bar" | "jsonl" | "none";

/** `--progress`: a bar (or log lines) on stderr, JSON lines on stdout for a supervising process, or nothing. */
export function progressFormatOption(): Option {
  return new Option("--progress <format>", "progress display: bar (stderr), jsonl (stdout, one JSON object per line, for job runners), none")
    .choices(["bar", "jsonl", "none"])
    .default("bar");
}

/** Emits one JSON line on stdout (the jsonl progress protocol: progress, result, error events). */
export function emitJsonl(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + "\n");
}

export interface ReindexCommandOptions {
  db: string;
  model: string;
  indexDir: string;
  incremental?: boolean;
  batchSize: number;
  m: number;
  efConstruction: number;
  ef: number;
  keep: number;
  rebuildThreshold: number;
  progress: ProgressFormat;
}

/** Embeds the store with the model in `--model` and builds (or updates) the index; exported for the embedded default. */
export async function runReindex(opts: ReindexCommandOptions): Promise<ReindexResult> {
  const store = VideoStore.open(opts.db);
  let service: InferenceService | undefined;
  const bars = new Map<string, ReturnType<typeof createProgress>>();
  const onProgress = (p: ReindexProgress) => {
    if (opts.progress === "jsonl") return emitJsonl({ event: "progress", ...p });
    if (opts.progress === "none") return;
    let bar = bars.get(p.stage);
    if (!bar && (p.stage === "embed" || p.stage === "insert")) {
      for (const b of bars.values()) b.stop();
      bar = createProgress(p.stage === "embed" ? "embed" : "index", p.total, p.stage === "embed" ? "videos" : "vectors");
      bars.set(p.stage, bar);
    }
    bar?.update(p.done);
  };
  try {
    service = await InferenceService.create(opts.model);
    const result = await reindex({
      store,
      embedder: storeEmbedder(service, store),
      root: opts.indexDir,
      incremental: opts.incremental,
      batchSize: opts.batchSize,
      M: opts.m,
      efConstruction: opts.efConstruction,
      ef: opts.ef,
      keep: opts.keep,
      rebuildThreshold: opts.rebuildThreshold,
      onProgress,
    });
    return result;
  } finally {
    for (const b of bars.values()) b.stop();
    await service?.close();
    store.close();
  }
}

export function registerReindexCommand(program: Command): void {
  const reindexCommand = program
    .command("reindex")
    .description("embed every video lacking an embedding from --model (resumable), store the embeddings, then build a new verified index version (or update the current one) and make it current")
    .requiredOption("--model <dir>", "exported model directory (model.onnx + model.json)")
    .addOption(dbOption())
    .addOption(indexDirOption())
    .option("--incremental", "update the current version: add new and changed videos, remove deleted ones (refuses if the index is from another model)")
    .option("--batch-size <n>", "videos per embedding batch (each batch is committed on its own)", parsePositiveInt("--batch-size"), DEFAULT_EMBED_BATCH)
    .addOption(progressFormatOption());
  addBuildOptions(reindexCommand).action(async (opts: ReindexCommandOptions) => {
      try {
        const r = await runReindex(opts);
        if (opts.progress === "jsonl") emitJsonl({ event: "result", ...r });
        else {
          process.stdout.write(JSON.stringify(r, null, 2) + "\n");
          const how = r.mode === "full" ? (r.rebuildReason ? `full rebuild (${r.rebuildReason})` : "full build") : "incremental update";
          process.stderr.write(
            `reindex: embedded ${r.embedded} videos (${r.reused} reused) in ${r.embed_s.toFixed(1)} s; ${how}: ${r.version} is current, ${r.count} videos, ${r.total_s.toFixed(1)} s total\n`,
          );
        }
      } catch (err) {
        if (opts.progress === "jsonl") emitJsonl({ event: "error", message: (err as Error).message });
        throw err;
      }
    });
}

/** The HNSW and version-keeping options shared by `reindex` and `index build`. */
function addBuildOptions(command: Command): Command {
  return command
    .option("--m <n>", "HNSW M (links per node; full builds)", parsePositiveInt("--m"), DEFAULT_M)
    .option("--ef-construction <n>", "HNSW efConstruction (full builds)", parsePositiveInt("--ef-construction"), DEFAULT_EF_CONSTRUCTION)
    .option("--ef <n>", "default search ef, stored in the manifest", parsePositiveInt("--ef"), DEFAULT_EF)
    .option("--keep <n>", "complete versions kept on disk", parsePositiveInt("--keep"), DEFAULT_KEEP_VERSIONS)
    .option("--rebuild-threshold <f>", "with --incremental: deleted-slot fraction that triggers a full rebuild", parseFraction("--rebuild-threshold"), DEFAULT_REBUILD_THRESHOLD);
}

export function registerIndexCommands(program: Command): void {
  const index = program.command("index").description("the similar-video index: status, similar, build, prune");

  index
    .command("status")
    .description("the current version's manifest and the versions on disk")
    .addOption(indexDirOption())
    .action((opts) => {
      const root = opts.indexDir as string;
      const current = existsSync(root) ? readCurrent(root) : null;
      const out = {
        root,
        current,
        manifest: current ? readManifest(root, current) : null,
        versions: listVersions(root).map((v) => ({ name: v.name, complete: v.complete, current: v.name === current })),
      };
      process.stdout.write(JSON.stringify(out, null, 2) + "\n");
    });

  index
    .command("similar <id>")
    .description("the videos most similar to a video, as JSON lines {id, score}")
    .addOption(indexDirOption())
    .addOption(dbOption())
    .option("-k, --k <n>", "results", parsePositiveInt("--k"), 10)
    .option("--category <name>", "only videos of this category (read from the database)")
    .option("--ef <n>", "search ef (default: the index's)", parsePositiveInt("--ef"))
    .option("--include-self", "keep the video itself in the results")
    .action(async (id: string, opts) => {
      let store: VideoStore | undefined;
      try {
        // Categories come from the store, only when a filter needs them.
        if (opts.category !== undefined) store = VideoStore.open(opts.db as string, { readonly: true });
        const s = store;
        const ix = await SimilarityIndex.open(opts.indexDir as string, s ? { categoryOf: (vid) => s.getVideo(vid)?.category?.name ?? null } : {});
        for (const hit of ix.similar(id, opts.k as number, { category: opts.category as string | undefined, ef: opts.ef as number | undefined, excludeSelf: !opts.includeSelf })) {
          process.stdout.write(JSON.stringify(hit) + "\n");
        }
      } finally {
        store?.close();
      }
    });

  const buildCommand = index
    .command("build")
    .description("build a new index version from precomputed embeddings (JSONL lines {\"id\", \"vector\"}), verify it, make it current")
    .requiredOption("--vectors <file>", "JSONL of embeddings")
    .requiredOption("--model-hash <hash>", "the model that produced the embeddings")
    .addOption(indexDirOption())
    .option("--incremental", "update the current version: upsert these vectors (and remove --remove ids) instead of rebuilding")
    .option("--remove <file>", "with --incremental: ids to drop, one per line");
  addBuildOptions(buildCommand).action(async (opts) => {
      const root = opts.indexDir as string;
      const shape: { dim?: number } = {};
      const { dim, entries } = await withDim(readVectorsJsonl(opts.vectors as string, shape), shape);
      const progress = createProgress(opts.incremental ? "update" : "build", undefined, "vectors");
      const common = {
        root,
        modelHash: opts.modelHash as string,
        dim,
        keep: opts.keep as number,
        onProgress: (p: { stage: string; done?: number }) => {
          if (p.stage === "insert" && p.done !== undefined) progress.update(p.done);
        },
      };
      try {
        if (opts.incremental) {
          const remove = opts.remove
            ? readFileSync(opts.remove as string, "utf8")
                .split("\n")
                .map((l) => l.trim())
                .filter((l) => l !== "")
            : [];
          printBuild(await updateIndex({ upsert: entries, remove }, { ...common, rebuildThreshold: opts.rebuildThreshold as number }));
        } else {
          if (opts.remove) throw new Error("--remove only applies with --incremental (a full build indexes exactly the vectors given)");
          printBuild(await buildIndex(entries, { ...common, M: opts.m as number, efConstruction: opts.efConstruction as number, ef: opts.ef as number }));
        }
      } finally {
        progress.stop();
      }
    });

  index
    .command("prune")
    .description("remove crashed builds' leftovers and all but the newest --keep versions (never the current one)")
    .addOption(indexDirOption())
    .option("--keep <n>", "complete versions kept, the current one included", parsePositiveInt("--keep"), DEFAULT_KEEP_VERSIONS)
    .action((opts) => {
      const root = opts.indexDir as string;
      // The build lock: a build in progress owns its half-written directory.
      const release = acquireLock(root);
      try {
        const removed = pruneVersions(root, opts.keep as number);
        process.stdout.write(JSON.stringify({ removed }) + "\n");
      } finally {
        release();
      }
    });
}

/** `vidrecall bench ann`: registered on the existing bench command group. */
export function registerAnnBench(bench: Command): void {
  bench
    .command("ann")
    .description("HNSW index vs exact search on synthetic clustered vectors: recall@10, queries/s, build time, bytes per vector, peak RSS")
    .option("--json <file>", "also write the JSON result here")
    .option("--n <n>", "indexed vectors", parsePositiveInt("--n"), 100_000)
    .option("--dim <n>", "dimensions", parsePositiveInt("--dim"), 256)
    .option("--clusters <n>", "clusters (Zipf-sized; they double as categories)", parsePositiveInt("--clusters"), 100)
    .option("--intrinsic-dim <n>", "dimensions of the within-cluster variation (= --dim: isotropic, hardest)", parsePositiveInt("--intrinsic-dim"), 32)
    .option("--spread <x>", "within-cluster noise norm relative to the unit centre", (v) => Number(v), 1)
    .option("--queries <n>", "held-out queries", parsePositiveInt("--queries"), 1000)
    .option("--seed <n>", "data seed", parsePositiveInt("--seed"), 1)
    .option("--m <n>", "HNSW M", parsePositiveInt("--m"), DEFAULT_M)
    .option("--ef-construction <n>", "HNSW efConstruction", parsePositiveInt("--ef-construction"), DEFAULT_EF_CONSTRUCTION)
    .option("--ef <n>", "search ef of the headline numbers", parsePositiveInt("--ef"), DEFAULT_EF)
    .option("--no-filter", "skip the category-filter measurement")
    .option("--no-synthetic", "skip the synthetic measurement (YouTube-8M part only)")
    .option("--yt8m-db <file>", "YouTube-8M store for label-precision@10 (default: the `bench quality` database, when present)", DEFAULT_YT8M_DB)
    .option("--yt8m-model <dir>", "model trained on shards 0000–0059 (default: the `bench quality` model, when present)", DEFAULT_YT8M_MODEL)
    .option("--yt8m-queries <n>", "queries drawn from the report shards (0060–0079)", parsePositiveInt("--yt8m-queries"), 2000)
    .action(async (opts) => {
      const log = (s: string) => process.stderr.write(s + "\n");
      const out: { synthetic?: AnnBenchResult["synthetic"]; yt8m?: Yt8mAnnResult } & Partial<AnnBenchResult> = {};
      const table: string[][] = [["", "recall@10", "queries/s", "build s", "B/vector disk", "B/vector mem", "peak RSS MB"]];
      if (opts.synthetic !== false) {
        const result = await benchAnn({
          synthetic: { n: opts.n, dim: opts.dim, clusters: opts.clusters, intrinsicDim: opts.intrinsicDim, spread: opts.spread, seed: opts.seed },
          queries: opts.queries,
          M: opts.m,
          efConstruction: opts.efConstruction,
          ef: opts.ef,
          filter: opts.filter !== false,
          log,
        });
        Object.assign(out, result);
        const s = result.synthetic;
        table.push(
          [`hnsw (ef ${s.ef})`, s.recall_at_10.toFixed(4), s.qps.toFixed(0), s.build_s.toFixed(1), s.disk_bytes_per_vector.toFixed(0), s.memory_bytes_per_vector.toFixed(0), s.peak_rss_mb.toFixed(0)],
          ["exact", "1.0000", s.exact_qps.toFixed(1), "-", "-", "-", "-"],
        );
      }
      const db = opts.yt8mDb as string;
      const model = opts.yt8mModel as string;
      if (existsSync(db) && existsSync(model)) {
        out.yt8m = await benchAnnYt8m({ db, model, queries: opts.yt8mQueries, M: opts.m, efConstruction: opts.efConstruction, ef: opts.ef, seed: opts.seed, log });
      } else {
        log(`YouTube-8M part skipped: needs --yt8m-db (${db}) and --yt8m-model (${model}); \`vidrecall bench quality\` creates both`);
      }
      if (!out.synthetic && !out.yt8m) throw new Error("nothing measured: --no-synthetic needs a YouTube-8M store and model (--yt8m-db, --yt8m-model)");
      const y = out.yt8m;
      const yt8mTable = y
        ? [
            ["YouTube-8M neighbours", "label-precision@10", "dim", "build s"],
            ["model embeddings", y.label_precision_at_10_model.toFixed(4), String(y.dims.model), y.build_s.model.toFixed(1)],
            ["raw mean_rgb ⧺ mean_audio", y.label_precision_at_10_raw.toFixed(4), String(y.dims.raw), y.build_s.raw.toFixed(1)],
          ]
        : [];
      writeBenchResult(out, opts.json, table.length > 1 ? table : yt8mTable);
      if (table.length > 1 && y) process.stderr.write("\n" + formatTable(yt8mTable) + "\n");
    });
}
