/**
 * `bench ann` on YouTube-8M: do the model's embeddings find related videos?
 *
 * Label-precision@10: for a query video, the share of its 10 nearest
 * neighbours (itself excluded) that have at least one tag in common with it,
 * averaged over queries. Two indexes over every video in the store, built and
 * searched the same way (HNSW, cosine, the product's defaults):
 *   - model: the trained model's embeddings (what `reindex` indexes);
 *   - raw:   the video-level features as given, mean_rgb ⧺ mean_audio.
 * Queries are drawn from the split holding the report shards (the
 * `bench quality` database stores shards 0060–0079 as `test`), so the model
 * never trained on a query's labels.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { buildIndex, DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_M } from "../../indexer/build.js";
import { reindex } from "../../indexer/reindex.js";
import { SimilarityIndex } from "../../indexer/search.js";
import type { Split } from "../data/split.js";
import { VideoStore } from "../data/store.js";
import { exportModel } from "../export/exportModel.js";
import { InferenceService } from "../infer/inferenceService.js";
import { storeEmbedder } from "../infer/storeEmbedder.js";
import { loadTrainedModel } from "../train/modelFiles.js";
import { seededRandom } from "../util/random.js";

export interface Yt8mAnnOptions {
  /** A store with YouTube-8M videos, e.g. the `bench quality` database. */
  db: string;
  /** Trained model directory (exported model.onnx, or a checkpoint to export). */
  model: string;
  querySplit?: Split;
  queries?: number;
  M?: number;
  efConstruction?: number;
  ef?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface Yt8mAnnResult {
  db: string;
  model_dir: string;
  model_hash: string;
  videos: number;
  queries: number;
  query_split: Split;
  k: number;
  label_precision_at_10_model: number;
  label_precision_at_10_raw: number;
  dims: { model: number; raw: number };
  embed_s: number;
  build_s: { model: number; raw: number };
}

const RAW_MODALITIES = ["rgb", "audio"] as const;

/** mean_rgb ⧺ mean_audio of a video-level example (frame-level features are averaged first). */
function rawVector(features: Record<string, { frames: number; dim: number; values: Float32Array }>, id: string): Float32Array {
  const parts = RAW_MODALITIES.map((m) => {
    const f = features[m];
    if (!f) throw new Error(`video ${id}: no ${m} features; the raw baseline needs mean_rgb and mean_audio`);
    const mean = new Float32Array(f.dim);
    for (let t = 0; t < f.frames; t++) for (let d = 0; d < f.dim; d++) mean[d] += f.values[t * f.dim + d] / f.frames;
    return mean;
  });
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function sharesLabel(a: ReadonlySet<number>, b: ReadonlySet<number> | undefined): boolean {
  if (!b) return false;
  for (const x of a) if (b.has(x)) return true;
  return false;
}

/**
 * Mean over queries of the share of a query's k nearest neighbours (itself
 * excluded) with at least one tag in common with it. A neighbour slot left
 * empty (fewer than k videos) counts as a miss.
 */
export function labelPrecisionAtK(index: Pick<SimilarityIndex, "similar">, queries: readonly string[], tags: ReadonlyMap<string, ReadonlySet<number>>, k: number): number {
  if (queries.length === 0) throw new Error("label precision needs at least one query");
  let sum = 0;
  for (const q of queries) {
    const mine = tags.get(q);
    if (!mine || mine.size === 0) throw new Error(`query ${q} has no tags: label precision is undefined for it`);
    let shared = 0;
    for (const h of index.similar(q, k, { excludeSelf: true })) if (sharesLabel(mine, tags.get(h.id))) shared++;
    sum += shared / k;
  }
  return sum / queries.length;
}

/** The model directory's model.onnx, exporting the checkpoint into `scratch` when there is none. */
async function servableModel(dir: string, scratch: string, log: (s: string) => void): Promise<string> {
  if (existsSync(join(dir, "model.onnx"))) return dir;
  log(`no model.onnx in ${dir}: exporting its best checkpoint`);
  // The checkpoint's variables need a tfjs backend; cpu is always there and the parity check is small.
  await tf.setBackend("cpu");
  await tf.ready();
  const loaded = loadTrainedModel(dir);
  const out = join(scratch, "model");
  try {
    await exportModel(loaded, out, { verify: {} });
  } finally {
    loaded.model.dispose();
  }
  return out;
}

export async function benchAnnYt8m(options: Yt8mAnnOptions): Promise<Yt8mAnnResult> {
  const log = options.log ?? (() => undefined);
  const k = 10;
  const querySplit = options.querySplit ?? "test";
  const M = options.M ?? DEFAULT_M;
  const efConstruction = options.efConstruction ?? DEFAULT_EF_CONSTRUCTION;
  const ef = options.ef ?? DEFAULT_EF;
  const scratch = mkdtempSync(join(tmpdir(), "vidrecall-ann-yt8m-"));
  const store = VideoStore.open(options.db);
  let service: InferenceService | undefined;
  try {
    const videos = store.countVideos();
    if (videos === 0) throw new Error(`${options.db}: no videos`);
    const modelDir = await servableModel(options.model, scratch, log);
    service = await InferenceService.create(modelDir);

    // Model index: the product's own path (embeddings stored in the database, reused on reruns).
    log(`embedding ${videos} videos with ${modelDir} and indexing them…`);
    const embedder = storeEmbedder(service, store);
    const modelRoot = join(scratch, "index-model");
    const r = await reindex({ store, embedder, root: modelRoot, M, efConstruction, ef, pruneEmbeddings: false });
    await service.close();
    service = undefined;

    // Raw index and everyone's tags, in one pass over the store.
    log("indexing the raw mean_rgb ⧺ mean_audio features…");
    const tags = new Map<string, Set<number>>();
    let rawDim = 0;
    const raw = function* () {
      for (const ex of store.iterateExamples()) {
        tags.set(ex.id, new Set(ex.tags));
        const vector = rawVector(ex.features, ex.id);
        rawDim = vector.length;
        yield { id: ex.id, vector };
      }
    };
    const rawRoot = join(scratch, "index-raw");
    const first = store.iterateExamples({ pageSize: 1 }).next();
    if (first.done) throw new Error(`${options.db}: no videos`);
    const dim = rawVector(first.value.features, first.value.id).length;
    const rawBuild = await buildIndex(raw(), { root: rawRoot, modelHash: "raw:mean_rgb+mean_audio", dim, M, efConstruction, ef, expectedCount: videos });

    // Queries: labelled videos of the report split, a seeded sample.
    const candidates = store.videoIds(querySplit).filter((id) => (tags.get(id)?.size ?? 0) > 0);
    if (candidates.length === 0) throw new Error(`${options.db}: no labelled videos in split "${querySplit}" to query with`);
    const rand = seededRandom(options.seed ?? 1);
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
    }
    const queries = candidates.slice(0, Math.min(options.queries ?? 2000, candidates.length));

    log(`searching ${queries.length} queries from split "${querySplit}"…`);
    const modelIx = await SimilarityIndex.open(modelRoot);
    const rawIx = await SimilarityIndex.open(rawRoot);
    const result: Yt8mAnnResult = {
      db: options.db,
      model_dir: options.model,
      model_hash: embedder.modelHash,
      videos,
      queries: queries.length,
      query_split: querySplit,
      k,
      label_precision_at_10_model: labelPrecisionAtK(modelIx, queries, tags, k),
      label_precision_at_10_raw: labelPrecisionAtK(rawIx, queries, tags, k),
      dims: { model: embedder.dim, raw: rawDim || dim },
      embed_s: r.embed_s,
      build_s: { model: r.build_s, raw: rawBuild.build_s },
    };
    return result;
  } finally {
    await service?.close();
    store.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}
